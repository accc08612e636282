-- ChatKit store, version 2 (SQLite). The same change as postgres_2_attachment_threads.sql.
-- An attachment's thread (its `thread_id`, once the user message holding it is saved) gets a
-- column and an index, so deleting a thread deletes its attachment records in one index range.

ALTER TABLE chatkit_attachments ADD COLUMN thread_id TEXT;
UPDATE chatkit_attachments SET thread_id = json_extract(body, '$.thread_id');
CREATE INDEX chatkit_attachments_thread ON chatkit_attachments (owner, thread_id);
