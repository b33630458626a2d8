-- rostersync schema v16 (SQLite): nothing to change. PostgreSQL's version lets a wide write
-- pause the console counts' triggers; SQLite's wide write already takes every counting
-- trigger away and creates it again at its end (`counts::paused_if_wide`).
SELECT 1;
