-- rostersync schema v12: how many items of each run have each outcome and reason code,
-- kept as the items are written (`runs::insert_items`, `runs::delete_items`) instead of
-- counted per request: a run's page (its outcome links) read a first import of 3 M people's
-- items on every view (3 s). Derived from `run_items`: a backup leaves it out, and the
-- migration and a restore count it again (`runs::recount_item_counts`). IF NOT EXISTS: a
-- database set back to an older version (the tests do) meets this again.
CREATE TABLE IF NOT EXISTS run_item_counts (
    run_id      BIGINT NOT NULL,
    outcome     TEXT COLLATE "C" NOT NULL,
    reason_code TEXT COLLATE "C" NOT NULL,
    items       BIGINT NOT NULL,
    PRIMARY KEY (run_id, outcome, reason_code)
);

-- A run's page lists its items in natural order (`usr-9` before `usr-10`: shorter
-- sourcedIds first), all of them, one outcome's, or the rekeyed ones: these indexes hold
-- that order, so the first page of a 3 M-item run reads 101 entries instead of sorting
-- every item (1.2 s).
CREATE INDEX IF NOT EXISTS run_items_natural ON run_items (run_id, length(sourced_id), sourced_id);
CREATE INDEX IF NOT EXISTS run_items_outcome_natural
    ON run_items (run_id, outcome, length(sourced_id), sourced_id);
CREATE INDEX IF NOT EXISTS run_items_rekeyed_natural
    ON run_items (run_id, length(sourced_id), sourced_id) WHERE reason_code = 'rekeyed';
