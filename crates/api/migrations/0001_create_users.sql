-- The users resource. Ids are never reused (AUTOINCREMENT), so a deleted
-- user's id cannot come back as somebody else. `email_key` is the address
-- folded to lower case: the unique index on it makes addresses unique without
-- regard to case while `email` keeps the spelling the user gave.
CREATE TABLE users (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    email_key  TEXT    NOT NULL UNIQUE,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
) STRICT;
