-- Collection tasks as staff work them: who has a task, what came of each
-- contact, and the promises to pay that pause the ladder. The task row
-- holds the current state; every change is a note, never an edit of one.
ALTER TABLE collection_tasks ADD COLUMN outcome TEXT
    CHECK (outcome IS NULL OR outcome IN ('contacted', 'no_answer', 'promised', 'disputed', 'paid', 'other'));

CREATE TABLE collection_task_notes (
    id              INTEGER PRIMARY KEY,
    task_id         INTEGER NOT NULL REFERENCES collection_tasks(id),
    at              TEXT NOT NULL,
    by              TEXT NOT NULL,
    changes         TEXT NOT NULL DEFAULT '{}',   -- JSON: the fields this update set, with their new values
    outcome         TEXT,
    note            TEXT
);
CREATE INDEX collection_task_notes_task ON collection_task_notes(task_id, id);
CREATE INDEX collection_tasks_assigned ON collection_tasks(assigned_to, status) WHERE assigned_to IS NOT NULL;

CREATE TRIGGER collection_task_notes_append_only_u BEFORE UPDATE ON collection_task_notes
BEGIN SELECT RAISE(ABORT, 'collection task notes are append-only'); END;
CREATE TRIGGER collection_task_notes_append_only_d BEFORE DELETE ON collection_task_notes
BEGIN SELECT RAISE(ABORT, 'collection task notes are append-only'); END;
