-- rostersync schema v17: one index of a run's items by outcome, not two. `run_items_outcome`
-- (run, outcome, sourcedId; schema 1) answers nothing `run_items_outcome_natural` (run,
-- outcome, natural order of sourcedIds; schema 12) does not: every query that names an
-- outcome also names the run, and lists in natural order. A first import writes one item
-- per person, each into every index of the table.
DROP INDEX IF EXISTS run_items_outcome;
