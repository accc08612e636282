-- ChatKit store, version 2 (PostgreSQL). The same change as sqlite_2_attachment_threads.sql.
-- An attachment's thread (its `thread_id`, once the user message holding it is saved) gets a
-- column and an index, so deleting a thread deletes its attachment records in one index range.

ALTER TABLE chatkit_attachments ADD COLUMN thread_id TEXT;
UPDATE chatkit_attachments SET thread_id = body::json ->> 'thread_id';
CREATE INDEX chatkit_attachments_thread ON chatkit_attachments (owner, thread_id);
