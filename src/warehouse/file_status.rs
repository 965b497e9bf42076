//! What ingest concluded about a sidecar file: the `source_file.status` column, as a type.
//!
//! The four spellings here are the only ones the column's CHECK constraint accepts
//! (migrations/V5); a test pins the two against each other. Deciding which status a file
//! gets is ingest's job ([`super::ingest`]), acting on it the incremental plan's
//! ([`super::incremental`]).

use rusqlite::ToSql;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};

/// The status of one `source_file` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Parsed and stored as a new sidecar.
    Ingested,
    /// Parsed; the warehouse already held its content (a re-ingest, a copy or a move).
    Duplicate,
    /// Empty or truncated and young: probably mid-write, read again by the next ingest.
    Pending,
    /// Unusable; read again only when its size or mtime changes.
    Corrupt,
}

impl FileStatus {
    pub const ALL: [FileStatus; 4] =
        [FileStatus::Ingested, FileStatus::Duplicate, FileStatus::Pending, FileStatus::Corrupt];

    /// The stored spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            FileStatus::Ingested => "ingested",
            FileStatus::Duplicate => "duplicate",
            FileStatus::Pending => "pending",
            FileStatus::Corrupt => "corrupt",
        }
    }
}

impl ToSql for FileStatus {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for FileStatus {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        FileStatus::ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| {
            FromSqlError::Other(format!("unknown source_file status {text:?}").into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warehouse::Warehouse;

    fn record(wh: &Warehouse, rel_path: &str, status: &dyn ToSql) -> rusqlite::Result<usize> {
        wh.conn().execute(
            "INSERT INTO source_file (root_id, rel_path, size, mtime_ns, status, last_seen) \
             VALUES (1, ?1, 0, 0, ?2, 't')",
            rusqlite::params![rel_path, status],
        )
    }

    #[test]
    fn the_check_constraint_accepts_exactly_the_four_statuses() {
        let wh = Warehouse::open_in_memory().unwrap();
        wh.conn().execute("INSERT INTO runs_root (root_id, path) VALUES (1, '/r')", []).unwrap();
        for status in FileStatus::ALL {
            record(&wh, status.as_str(), &status).unwrap();
            let back: FileStatus = wh
                .conn()
                .query_row(
                    "SELECT status FROM source_file WHERE rel_path = ?1",
                    [status.as_str()],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(back, status);
        }
        for bogus in ["Ingested", "gone", ""] {
            let err = record(&wh, "bogus", &bogus).unwrap_err();
            assert!(err.to_string().contains("CHECK constraint failed"), "{bogus:?}: {err}");
        }
    }

    #[test]
    fn an_unknown_stored_status_is_an_error_not_a_guess() {
        let err = FileStatus::column_result(ValueRef::Text(b"gone")).unwrap_err();
        assert!(err.to_string().contains("unknown source_file status \"gone\""), "{err}");
        assert!(FileStatus::column_result(ValueRef::Integer(1)).is_err());
    }
}
