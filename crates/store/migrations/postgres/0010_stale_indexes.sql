-- rostersync schema v10: the stale report's candidates. Links that missed a complete pull
-- and SIS people not active or disabled are few; the report reads them through these
-- partial indexes instead of walking every link in account order (docs/console.md,
-- "Reports at scale"). IF NOT EXISTS: a database set back to an older version (the tests do)
-- meets this again.
CREATE INDEX IF NOT EXISTS sis_links_missed ON sis_links (user_id) WHERE misses > 0;
CREATE INDEX IF NOT EXISTS sis_people_inactive ON sis_people (source, sourced_id)
    WHERE status <> 'active' OR enabled = FALSE;
