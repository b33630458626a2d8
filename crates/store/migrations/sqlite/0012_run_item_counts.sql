-- rostersync schema v12: how many items of each run have each outcome and reason code,
-- kept as the items are written (`runs::insert_items`, `runs::delete_items`) instead of
-- counted per request: a run's page (its outcome links) read a first import of 3 M people's
-- items on every view (3 s). Derived from `run_items`: a backup leaves it out, and the
-- migration and a restore count it again (`runs::recount_item_counts`). IF NOT EXISTS: a
-- database set back to an older version (the tests do) meets this again.
CREATE TABLE IF NOT EXISTS run_item_counts (
    run_id      INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    items       INTEGER NOT NULL,
    PRIMARY KEY (run_id, outcome, reason_code)
) STRICT, WITHOUT ROWID;
