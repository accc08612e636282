//! The native ChatKit protocol endpoint over real TCP: whole conversations, JSON and SSE answers,
//! bad input, user isolation, body limits, and a client that goes away mid-answer.

mod common;

use std::time::Duration;

use bytes::Bytes;
use chatkit_tower::auth::{AuthLayer, StaticTokens};
use chatkit_tower::chatkit::{
    Assistant, ChatKitService, EchoAssistant, EventStream, InMemoryAttachmentStore, InMemoryStore,
    PageQuery, RequestContext, Store, StreamError, ThreadHandle,
};
use chatkit_tower::protocol::{
    ClientToolCallItem, FreeformInput, MultipleChoiceInput, Order, SdkHiddenContextItem,
    StructuredInput, StructuredInputItem, StructuredInputOption, StructuredInputStatus, ThreadItem,
    ThreadStreamEvent, Timestamp, ToolCallStatus, UserMessageItem, WidgetItem,
};
use common::{chatkit_call, post, within, Answer, TestServer};
use futures_util::stream::{self, StreamExt};
use http::Request;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

const ALICE: &str = "Bearer alice-token";
const BOB: &str = "Bearer bob-token";

fn tokens() -> StaticTokens {
    StaticTokens::parse("alice-token=alice,bob-token=bob").unwrap()
}

async fn serve_with(assistant: impl Assistant, store: InMemoryStore) -> TestServer {
    let chatkit = ChatKitService::builder(assistant, store)
        .attachment_store(InMemoryAttachmentStore::new("http://127.0.0.1/uploads"))
        .body_limit(64 * 1024)
        .build()
        .unwrap();
    common::serve(tower::Layer::layer(&AuthLayer::new(tokens()), chatkit)).await
}

async fn serve_echo() -> (TestServer, InMemoryStore) {
    let store = InMemoryStore::new();
    (
        serve_with(EchoAssistant::new(Duration::ZERO), store.clone()).await,
        store,
    )
}

/// The JSON of each `data:` event of an SSE answer, checking the framing on the way.
fn events(answer: &Answer) -> Vec<Value> {
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "text/event-stream");
    assert_eq!(answer.headers["cache-control"], "no-cache");
    assert_eq!(answer.headers["x-accel-buffering"], "no");
    let text = answer.text();
    assert!(text.ends_with("\n\n"), "{text}");
    text.trim_end_matches("\n\n")
        .split("\n\n")
        .map(|frame| {
            let data = frame
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {frame:?}"));
            assert!(!data.contains('\n'));
            serde_json::from_str(data).unwrap()
        })
        .collect()
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "thread.item.updated" => format!("updated:{}", e["update"]["type"].as_str().unwrap()),
            "thread.item.done" | "thread.item.added" => {
                format!(
                    "{}:{}",
                    e["type"].as_str().unwrap(),
                    e["item"]["type"].as_str().unwrap()
                )
            }
            other => other.to_owned(),
        })
        .collect()
}

fn json_body(answer: &Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.headers["content-type"], "application/json");
    answer.json()
}

fn message(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "inference_options": {}})
}

#[tokio::test]
async fn a_whole_conversation_streams_and_lists_like_the_sdk() {
    let (server, _store) = serve_echo().await;

    let created = chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.create", "params": {"input": message("hello brave world")}}),
    )
    .await;
    let evs = events(&created);
    assert_eq!(
        types(&evs),
        [
            "thread.created",
            "thread.item.done:user_message",
            "stream_options",
            "thread.item.added:assistant_message",
            "updated:assistant_message.content_part.added",
            "updated:assistant_message.content_part.text_delta",
            "updated:assistant_message.content_part.text_delta",
            "updated:assistant_message.content_part.text_delta",
            "updated:assistant_message.content_part.done",
            "thread.item.done:assistant_message",
            "thread.updated",
        ]
    );
    let thread_id = evs[0]["thread"]["id"].as_str().unwrap().to_owned();
    assert!(thread_id.starts_with("thr_") && thread_id.len() == 12);
    assert_eq!(evs[0]["thread"]["metadata"], json!({}));
    assert_eq!(
        evs[0]["thread"]["items"],
        json!({"data": [], "has_more": false})
    );
    assert_eq!(evs[1]["item"]["attachments"], json!([]));
    assert_eq!(
        evs[2],
        json!({"type": "stream_options", "stream_options": {"allow_cancel": true}})
    );
    assert_eq!(evs[5]["update"]["delta"], "hello ");
    assert_eq!(
        evs[9]["item"]["content"],
        json!([{"annotations": [], "text": "hello brave world", "type": "output_text"}])
    );
    assert_eq!(evs[10]["thread"]["title"], "hello brave world");
    let user_id = evs[1]["item"]["id"].as_str().unwrap().to_owned();

    let added = chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": message("again")}}),
    )
    .await;
    let evs = events(&added);
    assert_eq!(
        types(&evs)[..3],
        [
            "thread.item.done:user_message",
            "stream_options",
            "thread.item.added:assistant_message"
        ]
    );
    assert_eq!(
        types(&evs).last().unwrap(),
        "thread.item.done:assistant_message",
        "the title is set once"
    );

    // Items, oldest first, one per page.
    let mut seen = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = json_body(
            &chatkit_call(&server, ALICE, json!({"type": "items.list", "params": {"thread_id": thread_id, "limit": 1, "order": "asc", "after": after}})).await,
        );
        assert_eq!(page["data"].as_array().unwrap().len(), 1);
        seen.push(page["data"][0]["type"].as_str().unwrap().to_owned());
        if !page["has_more"].as_bool().unwrap() {
            assert!(page.get("after").is_none());
            break;
        }
        after = page["after"].clone();
    }
    assert_eq!(
        seen,
        [
            "user_message",
            "assistant_message",
            "user_message",
            "assistant_message"
        ]
    );

    let second = chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.create", "params": {"input": message("second thread")}}),
    )
    .await;
    let second_id = events(&second)[0]["thread"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = json_body(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.list", "params": {"limit": 1}}),
        )
        .await,
    );
    assert_eq!(
        list["data"][0]["id"],
        second_id.as_str(),
        "newest first by default"
    );
    assert_eq!(list["has_more"], true);
    assert_eq!(
        list["data"][0]["items"],
        json!({"data": [], "has_more": false})
    );
    let rest = json_body(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.list", "params": {"limit": 1, "after": list["after"]}}),
        )
        .await,
    );
    assert_eq!(rest["data"][0]["id"], thread_id.as_str());
    assert_eq!(rest["has_more"], false);

    let renamed = json_body(&chatkit_call(&server, ALICE, json!({"type": "threads.update", "params": {"thread_id": thread_id, "title": "Renamed"}})).await);
    assert_eq!(renamed["title"], "Renamed");
    assert_eq!(renamed["items"]["data"], json!([]));

    let feedback = chatkit_call(&server, ALICE, json!({"type": "items.feedback", "params": {"thread_id": thread_id, "item_ids": [user_id], "kind": "positive"}})).await;
    assert_eq!(feedback.body, "{}");

    let retried = chatkit_call(&server, ALICE, json!({"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": user_id}})).await;
    let evs = events(&retried);
    assert_eq!(
        types(&evs)[..2],
        ["stream_options", "thread.item.added:assistant_message"]
    );
    let thread = json_body(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}),
        )
        .await,
    );
    let kinds: Vec<_> = thread["items"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["user_message", "assistant_message"],
        "retry removed the later items"
    );
    assert_eq!(thread["title"], "Renamed");

    let action = chatkit_call(&server, ALICE, json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "action": {"type": "save", "payload": {"id": 1}}}})).await;
    let evs = events(&action);
    assert_eq!(
        evs.last().unwrap()["item"]["content"][0]["text"],
        "You sent the action save."
    );

    let sync = chatkit_call(&server, ALICE, json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread_id, "action": {"type": "toggle"}}})).await;
    assert_eq!(sync.body, "{}");

    let heard = json_body(&chatkit_call(&server, ALICE, json!({"type": "input.transcribe", "params": {"audio_base64": "AAAA", "mime_type": "audio/webm;codecs=opus"}})).await);
    assert_eq!(heard, json!({"text": "3 bytes of audio/webm"}));

    let deleted = chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.delete", "params": {"thread_id": thread_id}}),
    )
    .await;
    assert_eq!(deleted.body, "{}");
    chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
}

#[tokio::test]
async fn bad_input_gets_a_clear_400_and_never_a_panic() {
    let (server, _) = serve_echo().await;
    let cases: &[(&str, &str)] = &[
        ("not json at all", "not valid JSON"),
        ("[1,2]", "must be a JSON object"),
        (r#"{"params":{}}"#, "missing field `type`"),
        (
            r#"{"type":"threads.explode","params":{}}"#,
            "unknown request type \"threads.explode\"",
        ),
        (
            r#"{"type":"threads.create","params":{}}"#,
            "params: missing field `input`",
        ),
        (r#"{"type":"threads.create"}"#, "missing field `input`"),
        (
            r#"{"type":"threads.get_by_id","params":{"thread_id":42}}"#,
            "params.thread_id: invalid type",
        ),
        (
            r#"{"type":"items.feedback","params":{"thread_id":"t","item_ids":[],"kind":"meh"}}"#,
            "params.kind: unknown variant",
        ),
        (
            r#"{"type":"threads.create","params":{"input":{"content":[{"type":"input_text"}]}}}"#,
            "params.input.content[0]",
        ),
        (
            r#"{"type":"threads.list","params":{},"metadata":"x"}"#,
            "`metadata` must be an object",
        ),
        (
            r#"{"type":"threads.list","params":{"limit":-1}}"#,
            "limit must not be negative",
        ),
        (
            r#"{"type":"threads.list","params":{"after":"thr_nothere"}}"#,
            "is not a cursor",
        ),
        (
            r#"{"type":"input.transcribe","params":{"audio_base64":"%%%","mime_type":"audio/webm"}}"#,
            "not base64",
        ),
    ];
    for (body, words) in cases {
        let answer = post(&server.url("/chatkit"), &[("authorization", ALICE)], body).await;
        let json = answer.assert_error(400, "BAD_REQUEST");
        assert!(
            json["details"].as_str().unwrap().contains(words),
            "{body} → {json}"
        );
    }
}

#[tokio::test]
async fn nobody_reads_lists_or_changes_another_users_thread() {
    let (server, store) = serve_echo().await;
    let created = chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.create", "params": {"input": message("secret plans")}}),
    )
    .await;
    let evs = events(&created);
    let thread_id = evs[0]["thread"]["id"].as_str().unwrap();
    let item_id = evs[1]["item"]["id"].as_str().unwrap();
    let action = json!({"type": "x"});
    let thread_scoped = [
        json!({"type": "threads.get_by_id", "params": {"thread_id": thread_id}}),
        json!({"type": "items.list", "params": {"thread_id": thread_id}}),
        json!({"type": "items.feedback", "params": {"thread_id": thread_id, "item_ids": [item_id], "kind": "negative"}}),
        json!({"type": "threads.update", "params": {"thread_id": thread_id, "title": "mine now"}}),
        json!({"type": "threads.delete", "params": {"thread_id": thread_id}}),
        json!({"type": "threads.add_user_message", "params": {"thread_id": thread_id, "input": message("hi")}}),
        json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread_id, "result": {}}}),
        json!({"type": "threads.add_structured_input", "params": {"thread_id": thread_id, "item_id": item_id, "input": {}}}),
        json!({"type": "threads.retry_after_item", "params": {"thread_id": thread_id, "item_id": item_id}}),
        json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "action": action}}),
        json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread_id, "action": action}}),
    ];
    for request in &thread_scoped {
        let answer = chatkit_call(&server, BOB, request.clone()).await;
        let json = answer.assert_error(404, "NOT_FOUND");
        assert!(!json.to_string().contains("secret"), "{json}");
    }
    let bobs =
        json_body(&chatkit_call(&server, BOB, json!({"type": "threads.list", "params": {}})).await);
    assert_eq!(bobs["data"], json!([]));
    // Alice's thread is untouched.
    let alice = RequestContext::new("alice");
    let thread = within(store.load_thread(thread_id, &alice)).await.unwrap();
    assert_eq!(thread.title.as_deref(), Some("secret plans"));
    let items =
        within(store.load_thread_items(thread_id, PageQuery::first(10, Order::Asc), &alice))
            .await
            .unwrap();
    assert_eq!(items.data.len(), 2);
    // Bob cannot even use Alice's thread id as a cursor.
    chatkit_call(
        &server,
        BOB,
        json!({"type": "threads.list", "params": {"after": thread_id}}),
    )
    .await
    .assert_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn a_huge_message_is_413_and_no_user_is_401() {
    let (server, _) = serve_echo().await;
    let huge = "word ".repeat(20_000);
    chatkit_call(
        &server,
        ALICE,
        json!({"type": "threads.create", "params": {"input": message(&huge)}}),
    )
    .await
    .assert_error(413, "PAYLOAD_TOO_LARGE");
    post(
        &server.url("/chatkit"),
        &[],
        r#"{"type":"threads.list","params":{}}"#,
    )
    .await
    .assert_error(401, "UNAUTHORIZED");
    let get = common::send(
        Request::get(server.url("/chatkit"))
            .header("authorization", ALICE)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    get.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(get.headers["allow"], "POST");
}

#[tokio::test]
async fn attachments_are_created_bound_to_the_thread_and_private() {
    let (server, store) = serve_echo().await;
    let created = json_body(
        &chatkit_call(&server, ALICE, json!({"type": "attachments.create", "params": {"name": "a.png", "size": 3, "mime_type": "image/png"}})).await,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("atc_"));
    assert_eq!(created["type"], "image");
    assert_eq!(created["upload_descriptor"]["method"], "PUT");
    assert_eq!(
        created["upload_descriptor"]["url"],
        format!("http://127.0.0.1/uploads/{id}")
    );

    let mut with_file = message("look");
    with_file["attachments"] = json!([id]);
    chatkit_call(
        &server,
        BOB,
        json!({"type": "threads.create", "params": {"input": with_file}}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    chatkit_call(
        &server,
        BOB,
        json!({"type": "attachments.delete", "params": {"attachment_id": id}}),
    )
    .await
    .assert_error(404, "NOT_FOUND");
    let evs = events(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.create", "params": {"input": with_file}}),
        )
        .await,
    );
    let thread_id = evs[0]["thread"]["id"].as_str().unwrap();
    assert_eq!(evs[1]["item"]["attachments"][0]["thread_id"], thread_id);
    assert_eq!(evs[1]["item"]["attachments"][0]["id"], id.as_str());
    let saved = store
        .load_attachment(&id, &RequestContext::new("alice"))
        .await
        .unwrap();
    assert_eq!(saved.thread_id(), Some(thread_id));

    let deleted = chatkit_call(
        &server,
        ALICE,
        json!({"type": "attachments.delete", "params": {"attachment_id": id}}),
    )
    .await;
    assert_eq!(deleted.body, "{}");
    assert!(store
        .load_attachment(&id, &RequestContext::new("alice"))
        .await
        .is_err());
}

#[tokio::test]
async fn client_tool_output_and_structured_input_continue_the_answer() {
    let (server, store) = serve_echo().await;
    let evs = events(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.create", "params": {"input": message("hi")}}),
        )
        .await,
    );
    let thread_id = evs[0]["thread"]["id"].as_str().unwrap().to_owned();
    let alice = RequestContext::new("alice");

    chatkit_call(&server, ALICE, json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread_id, "result": {"ok": true}}}))
        .await
        .assert_error(400, "BAD_REQUEST");
    let call_item = ThreadItem::ClientToolCall(ClientToolCallItem {
        id: "tc_00000001".into(),
        thread_id: thread_id.clone(),
        created_at: Timestamp::now(),
        status: ToolCallStatus::Pending,
        call_id: "call_1".into(),
        name: "switch_theme".into(),
        arguments: serde_json::from_str(r#"{"theme":"dark"}"#).unwrap(),
        output: None,
    });
    store
        .add_thread_item(&thread_id, &call_item, &alice)
        .await
        .unwrap();
    let evs = events(&chatkit_call(&server, ALICE, json!({"type": "threads.add_client_tool_output", "params": {"thread_id": thread_id, "result": {"ok": true}}})).await);
    assert_eq!(
        types(&evs)[..2],
        ["stream_options", "thread.item.added:assistant_message"]
    );
    let ThreadItem::ClientToolCall(done) = store
        .load_item(&thread_id, "tc_00000001", &alice)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(done.status, ToolCallStatus::Completed);
    assert_eq!(done.output, Some(json!({"ok": true})));

    let question = ThreadItem::StructuredInput(StructuredInputItem {
        id: "si_1".into(),
        thread_id: thread_id.clone(),
        created_at: Timestamp::now(),
        status: StructuredInputStatus::Pending,
        inputs: vec![
            StructuredInput::MultipleChoice(MultipleChoiceInput {
                id: "color".into(),
                question: "Which color?".into(),
                answer: None,
                options: vec![
                    StructuredInputOption {
                        value: "red".into(),
                    },
                    StructuredInputOption {
                        value: "blue".into(),
                    },
                ],
                multiple: false,
            }),
            StructuredInput::Freeform(FreeformInput {
                id: "why".into(),
                question: "Why?".into(),
                answer: None,
                description: None,
            }),
        ],
    });
    store
        .add_thread_item(&thread_id, &question, &alice)
        .await
        .unwrap();
    let submit = json!({"type": "threads.add_structured_input", "params": {"thread_id": thread_id, "item_id": "si_1",
        "input": {"status": "answered", "answers": {"color": {"values": ["blue", "red"]}}}}});
    let evs = events(&chatkit_call(&server, ALICE, submit.clone()).await);
    assert_eq!(types(&evs)[..2], ["stream_options", "thread.item.replaced"]);
    assert_eq!(evs[1]["item"]["status"], "answered");
    assert_eq!(
        evs[1]["item"]["inputs"][0]["answer"],
        json!({"values": ["blue"], "skipped": false})
    );
    assert_eq!(
        evs[1]["item"]["inputs"][1]["answer"],
        json!({"values": [], "skipped": true})
    );
    assert!(
        matches!(within(store.load_item(&thread_id, "si_1", &alice)).await.unwrap(),
        ThreadItem::StructuredInput(ref s) if s.status == StructuredInputStatus::Answered)
    );
    chatkit_call(&server, ALICE, submit)
        .await
        .assert_error(400, "BAD_REQUEST");
}

#[tokio::test]
async fn actions_from_widgets_and_from_other_items() {
    let (server, store) = serve_echo().await;
    let evs = events(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.create", "params": {"input": message("hi")}}),
        )
        .await,
    );
    let thread_id = evs[0]["thread"]["id"].as_str().unwrap().to_owned();
    let user_item = evs[1]["item"]["id"].as_str().unwrap().to_owned();
    let widget = ThreadItem::Widget(WidgetItem {
        id: "msg_widget01".into(),
        thread_id: thread_id.clone(),
        created_at: Timestamp::now(),
        widget: json!({"type": "Card", "children": [{"type": "Text", "value": "hi"}]}),
        copy_text: None,
    });
    store
        .add_thread_item(&thread_id, &widget, &RequestContext::new("alice"))
        .await
        .unwrap();

    let sync = json_body(&chatkit_call(&server, ALICE, json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread_id, "item_id": "msg_widget01", "action": {"type": "toggle"}}})).await);
    assert_eq!(sync["updated_item"]["copy_text"], "toggle");
    assert_eq!(
        sync["updated_item"]["widget"],
        json!({"type": "Card", "children": [{"type": "Text", "value": "hi"}]})
    );
    chatkit_call(&server, ALICE, json!({"type": "threads.sync_custom_action", "params": {"thread_id": thread_id, "item_id": user_item, "action": {"type": "toggle"}}}))
        .await
        .assert_error(400, "BAD_REQUEST");
    // As the SDK: an action "sent" by a non-widget item is one error event, nothing else.
    let evs = events(&chatkit_call(&server, ALICE, json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": user_item, "action": {"type": "toggle"}}})).await);
    assert_eq!(
        evs,
        [json!({"type": "error", "code": "stream.error", "allow_retry": false})]
    );
    let evs = events(&chatkit_call(&server, ALICE, json!({"type": "threads.custom_action", "params": {"thread_id": thread_id, "item_id": "msg_widget01", "action": {"type": "toggle"}}})).await);
    assert_eq!(
        evs.last().unwrap()["item"]["content"][0]["text"],
        "You sent the action toggle."
    );
}

/// Stores a hidden item, reports progress, renames the thread, then fails.
struct Failing;

impl Assistant for Failing {
    fn respond(
        &self,
        thread: ThreadHandle,
        _input: Option<UserMessageItem>,
        _ctx: RequestContext,
    ) -> EventStream {
        let hidden = ThreadItem::SdkHiddenContext(SdkHiddenContextItem {
            id: "shcx_00000001".into(),
            thread_id: thread.id(),
            created_at: Timestamp::now(),
            content: "for the model only".into(),
        });
        stream::iter(vec![
            Ok(ThreadStreamEvent::ItemDone { item: hidden }),
            Ok(ThreadStreamEvent::ProgressUpdate {
                icon: None,
                text: "Thinking".into(),
            }),
        ])
        .chain(stream::once(async move {
            thread.update(|t| t.title = Some("Renamed mid-answer".into()));
            Err(StreamError::custom("Out of credits", false))
        }))
        .boxed()
    }
}

#[tokio::test]
async fn hidden_items_are_stored_not_sent_and_a_failure_is_an_error_event() {
    let store = InMemoryStore::new();
    let server = serve_with(Failing, store.clone()).await;
    let evs = events(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "threads.create", "params": {"input": message("hi")}}),
        )
        .await,
    );
    assert_eq!(
        types(&evs),
        [
            "thread.created",
            "thread.item.done:user_message",
            "stream_options",
            "progress_update",
            "error",
            "thread.updated"
        ]
    );
    assert_eq!(
        evs[4],
        json!({"type": "error", "code": "custom", "message": "Out of credits", "allow_retry": false})
    );
    assert_eq!(evs[5]["thread"]["title"], "Renamed mid-answer");
    let thread_id = evs[0]["thread"]["id"].as_str().unwrap();
    let alice = RequestContext::new("alice");
    assert!(store
        .load_item(thread_id, "shcx_00000001", &alice)
        .await
        .is_ok());
    assert_eq!(
        store
            .load_thread(thread_id, &alice)
            .await
            .unwrap()
            .title
            .as_deref(),
        Some("Renamed mid-answer")
    );
    let listed = json_body(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "items.list", "params": {"thread_id": thread_id}}),
        )
        .await,
    );
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        1,
        "hidden items are not listed: {listed}"
    );
}

#[tokio::test]
async fn a_client_that_goes_away_mid_answer_keeps_the_text_streamed_so_far() {
    let store = InMemoryStore::new();
    let server = serve_with(EchoAssistant::new(Duration::from_millis(30)), store.clone()).await;
    let words = "one two three four five six seven eight nine ten ".repeat(10);
    let body = json!({"type": "threads.create", "params": {"input": message(&words)}}).to_string();
    let req = Request::post(server.url("/chatkit"))
        .header("authorization", ALICE)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let client = common::client();
    let res = within(client.request(req)).await.unwrap();
    assert_eq!(res.status(), 200);
    let mut body = res.into_body();
    let mut seen = String::new();
    // Read until a few words have streamed, then hang up.
    while seen.matches("text_delta").count() < 3 {
        let frame = within(body.frame()).await.unwrap().unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let thread_id = seen
        .split("\"thr_")
        .nth(1)
        .map(|rest| format!("thr_{}", &rest[..8]))
        .unwrap();
    drop(body);
    drop(client);

    let alice = RequestContext::new("alice");
    let items = within(async {
        loop {
            let items = store
                .load_thread_items(&thread_id, PageQuery::first(10, Order::Asc), &alice)
                .await
                .unwrap();
            if items
                .data
                .iter()
                .any(|i| matches!(i, ThreadItem::SdkHiddenContext(_)))
            {
                break items.data;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let kinds: Vec<_> = items.iter().map(ThreadItem::type_name).collect();
    assert_eq!(
        kinds,
        ["user_message", "assistant_message", "sdk_hidden_context"]
    );
    let ThreadItem::AssistantMessage(partial) = &items[1] else {
        panic!()
    };
    let text = &partial.content[0].text;
    assert!(text.starts_with("one two three"), "{text:?}");
    assert!(
        text.len() < words.len(),
        "the answer was cut short: {text:?}"
    );

    // After reconnecting, the saved part is there; the hidden note is not shown.
    let listed = json_body(
        &chatkit_call(
            &server,
            ALICE,
            json!({"type": "items.list", "params": {"thread_id": thread_id, "order": "asc"}}),
        )
        .await,
    );
    let kinds: Vec<_> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user_message", "assistant_message"]);
}
