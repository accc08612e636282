"""The reference twin of tests/chatkit_differential.rs.

Runs openai-chatkit's own ChatKitServer (the SDK under test: 1.6.5) with an in-memory store and
an echo assistant that behaves like chatkit_tower's EchoAssistant with no pace. Reads one JSON
object per line on stdin, {"user": ..., "request": {...}}, and answers each with one JSON line:

    {"kind": "json", "body": <the JSON answer>}
    {"kind": "sse", "events": [<each data: event>]}
    {"kind": "error", "status": <the HTTP status chatkit-tower uses for it>, "error": "..."}

Answers are printed as soon as they are ready, so the driver can use ids from one answer in the
next request.
"""

import json
import re
import sys
import traceback
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from chatkit.server import ChatKitServer, StreamingResult
from chatkit.store import AttachmentStore, NotFoundError, Store, default_generate_id
from chatkit.types import (
    AssistantMessageContent,
    AssistantMessageContentPartAdded,
    AssistantMessageContentPartDone,
    AssistantMessageContentPartTextDelta,
    AssistantMessageItem,
    AttachmentUploadDescriptor,
    FileAttachment,
    ImageAttachment,
    Page,
    SyncCustomActionResponse,
    ThreadItemAddedEvent,
    ThreadItemDoneEvent,
    ThreadItemUpdatedEvent,
    ThreadMetadata,
    TranscriptionResult,
)

UPLOAD_BASE = "http://127.0.0.1/uploads"
TITLE_CHARS = 40


class MemoryStore(Store[dict]):
    """Owner-scoped, ordered by (created_at, insertion), cursor = id of the last result."""

    def __init__(self):
        self.seq = 0
        self.threads = {}  # id -> [owner, seq, ThreadMetadata]
        self.items = {}  # thread id -> list of [seq, item]
        self.attachments = {}  # id -> [owner, attachment]

    def _next(self):
        self.seq += 1
        return self.seq

    def _thread(self, thread_id, context):
        record = self.threads.get(thread_id)
        if record is None or record[0] != context["user_id"]:
            raise NotFoundError(f"thread {thread_id} not found")
        return record

    @staticmethod
    def _page(records, after, limit, order):
        records = sorted(records, key=lambda r: (r[0], r[1]))
        if order == "desc":
            records.reverse()
        start = 0
        if after is not None:
            ids = [r[2] for r in records]
            if after not in ids:
                raise ValueError(f"{after} is not a cursor of this list")
            start = ids.index(after) + 1
        rest = records[start:]
        taken = rest[:limit]
        has_more = len(rest) > limit
        return Page(
            data=[r[3] for r in taken],
            has_more=has_more,
            after=taken[-1][2] if has_more and taken else None,
        )

    async def load_thread(self, thread_id, context):
        return self._thread(thread_id, context)[2].model_copy(deep=True)

    async def save_thread(self, thread, context):
        # Keep the metadata only, as a serializing store does (the SDK may pass a Thread).
        thread = ThreadMetadata.model_validate(thread.model_dump(exclude={"items"}))
        record = self.threads.get(thread.id)
        if record is None:
            self.threads[thread.id] = [context["user_id"], self._next(), thread.model_copy(deep=True)]
            self.items[thread.id] = []
        elif record[0] != context["user_id"]:
            raise NotFoundError(f"thread {thread.id} not found")
        else:
            record[2] = thread.model_copy(deep=True)

    async def load_threads(self, limit, after, order, context):
        records = [
            (t[2].created_at, t[1], tid, t[2].model_copy(deep=True))
            for tid, t in self.threads.items()
            if t[0] == context["user_id"]
        ]
        return self._page(records, after, limit, order)

    async def delete_thread(self, thread_id, context):
        self._thread(thread_id, context)
        del self.threads[thread_id]
        del self.items[thread_id]

    async def load_thread_items(self, thread_id, after, limit, order, context):
        self._thread(thread_id, context)
        records = [
            (item.created_at, seq, item.id, item.model_copy(deep=True))
            for seq, item in self.items[thread_id]
        ]
        return self._page(records, after, limit, order)

    async def add_thread_item(self, thread_id, item, context):
        await self.save_item(thread_id, item, context)

    async def save_item(self, thread_id, item, context):
        self._thread(thread_id, context)
        seq = self._next()
        for record in self.items[thread_id]:
            if record[1].id == item.id:
                record[1] = item.model_copy(deep=True)
                return
        self.items[thread_id].append([seq, item.model_copy(deep=True)])

    async def load_item(self, thread_id, item_id, context):
        self._thread(thread_id, context)
        for _, item in self.items[thread_id]:
            if item.id == item_id:
                return item.model_copy(deep=True)
        raise NotFoundError(f"item {item_id} not found in thread {thread_id}")

    async def delete_thread_item(self, thread_id, item_id, context):
        self._thread(thread_id, context)
        self.items[thread_id] = [r for r in self.items[thread_id] if r[1].id != item_id]

    async def save_attachment(self, attachment, context):
        record = self.attachments.get(attachment.id)
        if record is not None and record[0] != context["user_id"]:
            raise NotFoundError(f"attachment {attachment.id} not found")
        self.attachments[attachment.id] = [context["user_id"], attachment.model_copy(deep=True)]

    async def load_attachment(self, attachment_id, context):
        record = self.attachments.get(attachment_id)
        if record is None or record[0] != context["user_id"]:
            raise NotFoundError(f"attachment {attachment_id} not found")
        return record[1].model_copy(deep=True)

    async def delete_attachment(self, attachment_id, context):
        record = self.attachments.get(attachment_id)
        if record is not None and record[0] == context["user_id"]:
            del self.attachments[attachment_id]


class MemoryFiles(AttachmentStore[dict]):
    """Two-phase uploads to UPLOAD_BASE/<id> with PUT, like InMemoryAttachmentStore."""

    async def create_attachment(self, input, context):
        attachment_id = self.generate_attachment_id(input.mime_type, context)
        url = f"{UPLOAD_BASE}/{attachment_id}"
        descriptor = AttachmentUploadDescriptor(url=url, method="PUT", headers={})
        if input.mime_type.startswith("image/"):
            return ImageAttachment(
                id=attachment_id,
                name=input.name,
                mime_type=input.mime_type,
                upload_descriptor=descriptor,
                preview_url=url,
            )
        return FileAttachment(
            id=attachment_id, name=input.name, mime_type=input.mime_type, upload_descriptor=descriptor
        )

    async def delete_attachment(self, attachment_id, context):
        pass


def words(text):
    """The pieces Rust's str::split_inclusive(char::is_whitespace) gives."""
    return re.findall(r"\S*\s|\S+$", text)


def title_of(text):
    return " ".join(text.split())[:TITLE_CHARS]


class Echo(ChatKitServer[dict]):
    """chatkit_tower's EchoAssistant, pace 0."""

    def _say(self, thread, text, title):
        async def events():
            item = AssistantMessageItem(
                id=default_generate_id("message"),
                thread_id=thread.id,
                created_at=datetime.now(),
                content=[],
            )
            yield ThreadItemAddedEvent(item=item)
            yield ThreadItemUpdatedEvent(
                item_id=item.id,
                update=AssistantMessageContentPartAdded(
                    content_index=0, content=AssistantMessageContent(text="")
                ),
            )
            for word in words(text):
                yield ThreadItemUpdatedEvent(
                    item_id=item.id,
                    update=AssistantMessageContentPartTextDelta(content_index=0, delta=word),
                )
            yield ThreadItemUpdatedEvent(
                item_id=item.id,
                update=AssistantMessageContentPartDone(
                    content_index=0, content=AssistantMessageContent(text=text)
                ),
            )
            yield ThreadItemDoneEvent(
                item=item.model_copy(update={"content": [AssistantMessageContent(text=text)]})
            )
            if title and thread.title is None:
                thread.title = title

        return events()

    def respond(self, thread, input_user_message, context):
        if input_user_message is None:
            return self._say(thread, "Thanks, got it.", None)
        text = "".join(part.text for part in input_user_message.content)
        return self._say(thread, text, title_of(text))

    def action(self, thread, action, sender, context):
        return self._say(thread, f"You sent the action {action.type}.", None)

    async def sync_action(self, thread, action, sender, context):
        if sender is None:
            return SyncCustomActionResponse()
        return SyncCustomActionResponse(updated_item=sender.model_copy(update={"copy_text": action.type}))

    async def transcribe(self, audio_input, context):
        return TranscriptionResult(text=f"{len(audio_input.data)} bytes of {audio_input.media_type}")


def status_of(error: BaseException) -> int:
    if isinstance(error, (ValidationError, ValueError)) and not isinstance(error, NotFoundError):
        return 400
    if isinstance(error, NotFoundError):
        return 404
    return 500


async def answer(server, line):
    step = json.loads(line)
    context = {"user_id": step["user"]}
    events = []
    try:
        result = await server.process(json.dumps(step["request"]), context)
        if isinstance(result, StreamingResult):
            async for chunk in result:
                assert chunk.startswith(b"data: ") and chunk.endswith(b"\n\n"), chunk
                events.append(json.loads(chunk[len(b"data: ") : -2]))
            return {"kind": "sse", "events": events}
        return {"kind": "json", "body": json.loads(result.json)}
    except Exception as error:  # noqa: BLE001 - every failure is an answer here
        out = {
            "kind": "error",
            "status": status_of(error),
            "error": "".join(traceback.format_exception_only(error)).strip()[:300],
        }
        if events:
            out["events_before_error"] = events
        return out


async def main():
    server = Echo(MemoryStore(), MemoryFiles())
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(await answer(server, line)), flush=True)


if __name__ == "__main__":
    import asyncio

    asyncio.run(main())
