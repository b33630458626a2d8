-- rostersync schema v4 (SQLite): safeguards, the review queue, merges and undo.
--
-- A held run keeps its plan (serde JSON) and the safeguards it tripped until it is
-- approved, discarded or superseded; every run may carry a note (who discarded it, what
-- superseded it). Admins' decisions on review cases stick per (source, sourcedId). A review
-- case is open at most once per person. `run_items.link_before` keeps, for the items whose
-- link undo must put back, the link rows as they were before the run.

ALTER TABLE runs ADD COLUMN plan TEXT;
ALTER TABLE runs ADD COLUMN hold TEXT;
ALTER TABLE runs ADD COLUMN note TEXT;
-- The highest revision id when the run applied: undo tells later changes by it. An undone
-- run keeps the ids of the revisions its undo wrote: undoing an earlier run after a later
-- one discounts both.
ALTER TABLE runs ADD COLUMN revision_mark INTEGER;
ALTER TABLE runs ADD COLUMN undo_first_revision INTEGER;
ALTER TABLE runs ADD COLUMN undo_last_revision INTEGER;
CREATE INDEX runs_source_status ON runs (source, status, id);

ALTER TABLE run_items ADD COLUMN link_before TEXT;

CREATE TABLE match_decisions (
    source     TEXT NOT NULL,
    sourced_id TEXT NOT NULL,
    decision   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (source, sourced_id)
) STRICT, WITHOUT ROWID;

-- candidates: a JSON array of account ids; evidence: the SIS person as a JSON object.
CREATE TABLE review_cases (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    sourced_id  TEXT NOT NULL,
    status      TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason      TEXT NOT NULL,
    candidates  TEXT NOT NULL,
    evidence    TEXT NOT NULL,
    opened_run  INTEGER,
    last_run    INTEGER,
    opened_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    resolution  TEXT,
    resolved_by TEXT,
    resolved_at TEXT
) STRICT;
CREATE UNIQUE INDEX review_cases_open ON review_cases (source, sourced_id) WHERE status = 'open';
CREATE INDEX review_cases_status ON review_cases (status, id);
