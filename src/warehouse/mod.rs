//! The SQLite warehouse: an index of every sidecar ever ingested. The only module that
//! writes SQL. See `migrations/V1__initial_schema.sql` for the schema and its stable views.
