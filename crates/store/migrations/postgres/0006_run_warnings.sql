-- rostersync schema v6 (PostgreSQL): runs keep their reader warnings.
--
-- `warnings` is a JSON array of strings (incomplete collections, skipped malformed rows,
-- unreadable values, people the pull missed, …), at most 100 entries; NULL: none (runs
-- recorded before this version, and runs without warnings).

ALTER TABLE runs ADD COLUMN warnings TEXT;
