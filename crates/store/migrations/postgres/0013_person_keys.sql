-- rostersync schema v13: the SIS people's match keys, stored and indexed, so the unlinked
-- accounts report looks up the people a page of accounts could be instead of computing
-- every person's keys per page (1.2-1.6 s at 3 M people). `name_key` is the folded
-- "given family", `email_key` the email's local part, `username_key` the username in
-- lower case when it is not the email's local part (NULL otherwise: the common case
-- stores nothing there). Computed in Rust (`reports::person_key_columns`), written with
-- every person (`roster::write_people`) and filled for existing people by the store
-- right after this script (`reports::refresh_person_keys`), again whenever the rule's
-- version changes.
ALTER TABLE sis_people ADD COLUMN name_key TEXT COLLATE "C";
ALTER TABLE sis_people ADD COLUMN email_key TEXT COLLATE "C";
ALTER TABLE sis_people ADD COLUMN username_key TEXT COLLATE "C";
CREATE INDEX sis_people_name_key ON sis_people (name_key);
CREATE INDEX sis_people_email_key ON sis_people (email_key);
CREATE INDEX sis_people_username_key ON sis_people (username_key) WHERE username_key IS NOT NULL;
