-- rostersync schema v16 (PostgreSQL): a wide write pauses the console counts' triggers too.
--
-- The statement triggers of schema 11 that keep `account_counts` and `location_counts` cost
-- a first import of 100 k people 2.6-3.9 s of its ~12 s apply (docs/performance.md,
-- "PostgreSQL's first import"). A write wide enough to count everything again
-- (`counts::paused_if_wide`: a first import, a restore) sets `rostersync.derived_paused`
-- for its transaction, as it already did for the reports' keys (0014) and unlinked
-- accounts (0015); these triggers then do not run at all (their `WHEN`, checked once per
-- statement), and the write counts everything again at its end under a lock on both
-- tables. Another transaction never sees the setting, so its writes are counted as before.
--
-- The duplicates report's key counts (0014) get the same `WHEN`: filling the keys again
-- (`counts::recount_dup_keys`) counts them in one pass after, where their trigger upserted
-- the counts of every key as they went in.
--
-- Each trigger is made again as it is, with the `WHEN` added; one that has it already is
-- left alone (a database set back to an older version, as the tests do, meets this again).
DO $$
DECLARE
    t RECORD;
    def TEXT;
BEGIN
    FOR t IN
        SELECT tg.tgname, c.relname, pg_get_triggerdef(tg.oid) AS def
        FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
        WHERE NOT tg.tgisinternal AND c.relnamespace = current_schema()::regnamespace
          AND (tg.tgname LIKE 'account\_counts\_%' OR tg.tgname LIKE 'location\_counts\_%'
               OR tg.tgname LIKE 'duplicate\_keys\_count\_%')
        ORDER BY tg.tgname
    LOOP
        CONTINUE WHEN position(' WHEN (' IN t.def) > 0;
        def := replace(t.def, 'FOR EACH STATEMENT EXECUTE',
            $w$FOR EACH STATEMENT WHEN (current_setting('rostersync.derived_paused', true) IS DISTINCT FROM 'on') EXECUTE$w$);
        IF def = t.def THEN
            RAISE EXCEPTION 'trigger % on % is not a statement trigger: %', t.tgname, t.relname, t.def;
        END IF;
        EXECUTE format('DROP TRIGGER %I ON %I', t.tgname, t.relname);
        EXECUTE def;
    END LOOP;
END $$;
