-- rostersync schema v17 (PostgreSQL): a held run's plan in parts (see the SQLite script).
CREATE TABLE held_plan_parts (
    run_id BIGINT NOT NULL REFERENCES runs (id),
    seq    BIGINT NOT NULL,
    part   TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
