-- rostersync schema v17 (SQLite): a held run's plan in parts. `runs.plan` keeps the plan
-- without its items and SIS records (its counts, roster, review records...); each part
-- holds a slice of them, in the plan's order, so that holding, checking and approving a
-- plan of millions of people reads and writes one part at a time (a whole plan of three
-- million people is larger than the most one value may hold). Every record of a part
-- belongs to an item of that part or an earlier one. A plan held before v17 keeps its
-- items in `runs.plan` and has no parts.
CREATE TABLE held_plan_parts (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    seq    INTEGER NOT NULL,
    part   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) STRICT;
