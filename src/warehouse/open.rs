//! Opening the warehouse: connection pragmas, schema migrations, and the version check that
//! keeps an older binary from touching a newer database.
//!
//! # Locking
//! SQLite in WAL mode lets readers run beside one writer. Writers are serialized explicitly,
//! not by SQLite's busy handler, which polls and is unfair: under five or six concurrent
//! ingests one of them could wait out any timeout. An ingest that has something to write holds
//! an exclusive advisory lock on `{db}.write-lock` for the whole write ([`WriteLock`]), waiting
//! for it at most [`WRITE_LOCK_TIMEOUT`]; the 30 s busy timeout is left for the few short
//! statements outside it. Opening for writing (the WAL switch and any migration) runs under
//! another exclusive lock, on `{db}.setup-lock`, so two processes opening a fresh database
//! neither race to create the schema nor trip over the journal-mode change; it is held for a
//! few statements only, so read commands never wait behind an ingest. Neither lock file is
//! created before the file is known to be an SQLite database (or new).
//!
//! # Read-only warehouses
//! A warehouse on a read-only mount, or owned by another user, is still readable: read
//! commands fall back to [`Warehouse::open_read_only`]. SQLite documents (walformat.html,
//! "operations that require locks") that a WAL database whose `-wal` and `-shm` files exist
//! can be opened read-only by a process without write permission on any of them, and that
//! when they are missing such a process can open it only as `immutable`. So every writable
//! connection sets `SQLITE_FCNTL_PERSIST_WAL`: the last one to close still checkpoints (and,
//! with `journal_size_limit` set, truncates the WAL to zero bytes) but leaves both files in
//! place. `immutable=1` is used only when they are missing and the file system is mounted
//! read-only, where nothing can write: SQLite's guarantee for `immutable` holds there.
//!
//! # Compatibility
//! The schema version is the highest refinery migration applied. The objects generated from
//! the metric registry (views, `registry_metric` rows) are brought up to date after the
//! migrations on every writable open (see [`super::registry_schema`]). A database whose version is
//! higher than this binary knows is refused with [`OpenError::NewerSchema`] before anything is
//! written, never migrated "down" or half-read.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// How long a statement waits for SQLite's own write lock (outside [`WriteLock`]).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an ingest waits for another process's ingest into the same warehouse.
pub const WRITE_LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Why the warehouse could not be opened. Each variant names the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "{} is not a ktstr warehouse (not an SQLite database); point --db at a warehouse file \
         or move this file away",
        path.display()
    )]
    NotSqlite { path: PathBuf },
    #[error(
        "{} was written by a newer ktstr (schema version {found}, this binary knows up to \
         {known}); upgrade cargo-ktstr to read it",
        path.display()
    )]
    NewerSchema { path: PathBuf, found: i64, known: i64 },
    #[error(
        "cannot create or write the warehouse {}: {reason}; pass --db FILE on a writable path",
        path.display()
    )]
    NotWritable { path: PathBuf, reason: String },
    #[error(
        "cannot read the warehouse {} without writing to it: its -wal and -shm files are \
         missing and this user cannot create them; have its owner run `cargo ktstr stats \
         ingest` once (this version keeps them), or copy the file somewhere writable",
        path.display()
    )]
    NoWalFiles { path: PathBuf },
    // SQLite's message only, once: rusqlite's error chain repeats it ("database is locked:
    // database is locked: Error code 5"), so it is not this error's source.
    #[error("cannot open the warehouse {}: {}", path.display(), sqlite_message(cause))]
    Sqlite { path: PathBuf, cause: rusqlite::Error },
    #[error("cannot update the warehouse schema of {}: {reason}", path.display())]
    Migration { path: PathBuf, reason: String },
}

/// SQLite's own message for `e`, without rusqlite's repetitions of it.
pub fn sqlite_message(e: &rusqlite::Error) -> String {
    match e {
        rusqlite::Error::SqliteFailure(code, Some(msg)) if msg.is_empty() => code.to_string(),
        rusqlite::Error::SqliteFailure(_, Some(msg)) => msg.clone(),
        rusqlite::Error::SqliteFailure(code, None) => code.to_string(),
        other => other.to_string(),
    }
}

/// An open warehouse database.
pub struct Warehouse {
    pub(crate) conn: Connection,
    path: Option<PathBuf>,
}

/// The exclusive writer lock on `{db}.write-lock`, held while an ingest writes; released on
/// drop. An in-memory warehouse has no file and no other writers: its lock is empty.
pub struct WriteLock {
    _file: Option<File>,
    /// How long taking it waited for another writer.
    pub waited: Duration,
}

/// Why [`Warehouse::lock_for_writing`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum WriteLockError {
    #[error(
        "another process has been writing to the warehouse {} for over {} s; try again when \
         it has finished",
        path.display(),
        waited.as_secs()
    )]
    TimedOut { path: PathBuf, waited: Duration },
    #[error(transparent)]
    Open(#[from] OpenError),
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warehouse").field("path", &self.path).finish()
    }
}

/// The newest schema version this binary embeds: the highest `migrations/V<n>__*.sql`,
/// found by `build.rs` when the migrations are embedded. A constant, so a read command does
/// not build refinery's runner (parsing every migration) just to learn it.
const KNOWN_SCHEMA_VERSION: i64 = parse_version(env!("KTSTR_SCHEMA_VERSION"));

const fn parse_version(digits: &str) -> i64 {
    let bytes = digits.as_bytes();
    let mut value = 0i64;
    let mut i = 0;
    while i < bytes.len() {
        assert!(bytes[i].is_ascii_digit(), "KTSTR_SCHEMA_VERSION is a number");
        value = value * 10 + (bytes[i] - b'0') as i64;
        i += 1;
    }
    value
}

/// The newest schema version this binary embeds.
pub fn known_schema_version() -> i64 {
    KNOWN_SCHEMA_VERSION
}

impl Warehouse {
    /// Open (creating if needed) the warehouse at `path` for reading and writing, and bring
    /// its schema up to date.
    pub fn open(path: &Path) -> Result<Warehouse, OpenError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|e| OpenError::NotWritable {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        }
        let conn = Connection::open(path).map_err(|e| classify(path, e))?;
        let mut wh = Warehouse { conn, path: Some(path.to_path_buf()) };
        // A file that is not a database is refused before any lock file is made beside it.
        wh.conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| classify(path, e))?;
        wh.schema_version()?;
        // Switching a new file to WAL is a lock SQLite does not wait for with the busy
        // handler, so two processes creating the same database at once would see "database
        // is locked". Setup (journal mode, schema) is serialized between processes instead;
        // the lock is held only for these few statements and released on drop.
        let _setup = lock_for_setup(path)?;
        wh.configure()?;
        wh.migrate()?;
        Ok(wh)
    }

    /// Open an existing warehouse without ever writing to it (no migration, no ingest), also
    /// when this process may not write it (see the module doc, "Read-only warehouses").
    pub fn open_read_only(path: &Path) -> Result<Warehouse, OpenError> {
        let conn = read_only_connection(path)?;
        let wh = Warehouse { conn, path: Some(path.to_path_buf()) };
        let found = wh.schema_version()?;
        let known = known_schema_version();
        if found > known {
            return Err(OpenError::NewerSchema { path: path.to_path_buf(), found, known });
        }
        if found < known {
            return Err(OpenError::Migration {
                path: path.to_path_buf(),
                reason: format!(
                    "it has schema version {found} and this binary needs {known}; run \
                     `cargo ktstr stats ingest` on it once (as a user who can write it) to \
                     upgrade it"
                ),
            });
        }
        Ok(wh)
    }

    /// A private in-memory warehouse (tests, benchmarks).
    pub fn open_in_memory() -> Result<Warehouse, OpenError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| classify(&path, e))?;
        let mut wh = Warehouse { conn, path: None };
        wh.configure()?;
        wh.migrate()?;
        Ok(wh)
    }

    /// The database file, `None` for an in-memory warehouse.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The underlying connection, for the warehouse's own query modules; everything outside
    /// the warehouse goes through their functions.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    fn display_path(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(|| PathBuf::from(":memory:"))
    }

    /// Take the writer lock, waiting at most `timeout` for another process's ingest;
    /// `on_wait` is called once if it has to wait at all.
    pub fn lock_for_writing(
        &self,
        timeout: Duration,
        on_wait: &mut dyn FnMut(),
    ) -> Result<WriteLock, WriteLockError> {
        let Some(db) = self.path.as_deref() else {
            return Ok(WriteLock { _file: None, waited: Duration::ZERO });
        };
        let lock_path = lock_file_path(db, ".write-lock");
        let file = open_lock_file(&lock_path)?;
        let started = std::time::Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(WriteLock { _file: Some(file), waited: started.elapsed() }),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(e)) => {
                    let reason = e.to_string();
                    return Err(OpenError::NotWritable { path: lock_path, reason }.into());
                }
            }
            if !told {
                told = true;
                on_wait();
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(WriteLockError::TimedOut { path: db.to_path_buf(), waited });
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn configure(&mut self) -> Result<(), OpenError> {
        let path = self.display_path();
        self.conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| classify(&path, e))?;
        if self.path.is_some() {
            keep_wal_files(&self.conn).map_err(|e| classify(&path, e))?;
        }
        // The first statement that touches the file is where "not a database" surfaces.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| self.conn.pragma_update(None, "synchronous", "NORMAL"))
            .and_then(|_| self.conn.pragma_update(None, "foreign_keys", "ON"))
            // Ingest updates ten B-tree indexes at random positions; with SQLite's default
            // 2 MB page cache most of those pages are re-read from the OS for every row.
            .and_then(|_| self.conn.pragma_update(None, "cache_size", -65536))
            // An upsert inside a multi-statement transaction keeps a statement journal; in a
            // temp file that cost a pwrite per touched page (a sixth of a cold ingest).
            .and_then(|_| self.conn.pragma_update(None, "temp_store", "MEMORY"))
            // With the WAL kept (`keep_wal_files`), the last close truncates it to zero bytes
            // instead of leaving an ingest's worth of frames on disk.
            .and_then(|_| self.conn.pragma_update(None, "journal_size_limit", 64 << 20))
            .map_err(|e| classify(&path, e))
    }

    /// Highest applied migration version, 0 for a database without a schema yet.
    pub fn schema_version(&self) -> Result<i64, OpenError> {
        let path = self.display_path();
        let has_history: bool = self
            .conn
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master \
                 WHERE type = 'table' AND name = 'refinery_schema_history'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| classify(&path, e))?;
        if !has_history {
            return Ok(0);
        }
        self.conn
            .query_row("SELECT coalesce(max(version), 0) FROM refinery_schema_history", [], |r| {
                r.get(0)
            })
            .map_err(|e| classify(&path, e))
    }

    fn migrate(&mut self) -> Result<(), OpenError> {
        let path = self.display_path();
        let known = known_schema_version();
        let found = self.schema_version()?;
        if found > known {
            return Err(OpenError::NewerSchema { path, found, known });
        }
        // File-backed warehouses get here holding the setup lock (see `open`).
        if found < known {
            embedded::migrations::runner()
                .set_grouped(true)
                .run(&mut self.conn)
                .map_err(|e| OpenError::Migration { path: path.clone(), reason: e.to_string() })?;
        }
        // After the migrations, which own the tables: what the metric registry generates.
        super::registry_schema::reconcile(&mut self.conn)
            .map_err(|e| OpenError::Migration { path, reason: e.to_string() })
    }
}

/// A connection that never writes `path`: read-only, and `immutable` where that is safe.
pub fn read_only_connection(path: &Path) -> Result<Connection, OpenError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let checked = |conn: Connection| -> rusqlite::Result<Connection> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        bound_read_memory(&conn)?;
        // Opening is lazy: the first read is where a missing -shm surfaces.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    };
    let err = match Connection::open_with_flags(path, flags).and_then(checked) {
        Ok(conn) => return Ok(conn),
        Err(e) => e,
    };
    // CANTOPEN (no -shm to open) or READONLY (one it may not initialize).
    let cannot_open = matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly)
    );
    if !cannot_open || !path.exists() || wal_file(path, "-wal").exists() {
        return Err(classify(path, err));
    }
    // SQLite: without the -wal and -shm files a process that cannot create them may open the
    // database only as immutable, which is safe only while nothing writes it. A read-only
    // mount guarantees that; a directory this user may not write does not (its owner may be
    // ingesting right now), so there the missing files are named instead.
    if !on_read_only_mount(path) {
        return Err(OpenError::NoWalFiles { path: path.to_path_buf() });
    }
    let uri = immutable_uri(path);
    Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
        .and_then(checked)
        .map_err(|e| classify(path, e))
}

/// What a read command's SQLite may hold in memory, whatever the archive's size: an 8 MiB
/// page cache (a compare reads its two sides' rows and index pages, a few MB at 1M sidecars),
/// no memory map (mapped pages of a multi-GB file would count as resident), and sorts and
/// temporary B-trees that spill to a temporary file past the cache instead of growing in RAM.
fn bound_read_memory(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -8192)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "temp_store", "FILE")
}

/// `file:` URI of `path` with `immutable=1`, percent-encoding what a URI path may not hold.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Whether the file system holding `path` is mounted read-only (`statvfs`'s `ST_RDONLY`).
fn on_read_only_mount(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return false };
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c_path.as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0
    }
}

/// `{db}{suffix}`, e.g. the `-wal` file.
fn wal_file(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Keep the `-wal` and `-shm` files when the last connection closes (module doc).
fn keep_wal_files(conn: &Connection) -> rusqlite::Result<()> {
    let mut on: std::ffi::c_int = 1;
    // SAFETY: the handle is this open connection's; SQLITE_FCNTL_PERSIST_WAL reads and writes
    // one int through the pointer, which outlives the call.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&raw mut on).cast(),
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rc), None))
    }
}

fn lock_file_path(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    db.with_file_name(name)
}

fn open_lock_file(lock_path: &Path) -> Result<File, OpenError> {
    File::options().create(true).truncate(false).write(true).open(lock_path).map_err(|e| {
        OpenError::NotWritable { path: lock_path.to_path_buf(), reason: e.to_string() }
    })
}

fn lock_for_setup(db: &Path) -> Result<File, OpenError> {
    let lock_path = lock_file_path(db, ".setup-lock");
    let file = open_lock_file(&lock_path)?;
    file.lock()
        .map_err(|e| OpenError::NotWritable { path: lock_path.clone(), reason: e.to_string() })?;
    Ok(file)
}

fn classify(path: &Path, e: rusqlite::Error) -> OpenError {
    use rusqlite::ErrorCode;
    let path = path.to_path_buf();
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => OpenError::NotSqlite { path },
        Some(ErrorCode::ReadOnly)
        | Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::PermissionDenied) => {
            OpenError::NotWritable { path, reason: sqlite_message(&e) }
        }
        _ => OpenError::Sqlite { path, cause: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_warehouse_upgrades_and_keeps_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.sqlite");
        let root = dir.path().join("runs");
        std::fs::create_dir(&root).unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        // A database as schema-2 binaries left it: one run, its document lz4-compressed.
        let body = crate::sidecar::SidecarResult::empty("old").to_json_pretty();
        let mut conn = Connection::open(&db).unwrap();
        embedded::migrations::runner()
            .set_target(refinery::Target::Version(2))
            .run(&mut conn)
            .unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO runs_root (root_id, path) VALUES (1, '{}');
             INSERT INTO ingested_sidecar (sidecar_id, content_hash, root_id, run_dir, path,
                 test_name, topology, scheduler, work_type, flags, passed, skipped, run_id,
                 timestamp, ingested_at)
             VALUES (1, x'00', 1, 'r1', 'r1/old.ktstr.json', 'old', '1n1l1c1t', 'eevdf',
                 'SpinWait', '[]', 1, 0, 'x', 't', 't');
             INSERT INTO source_file (root_id, rel_path, size, mtime_ns, status, sidecar_id,
                 last_seen) VALUES (1, 'r1/old.ktstr.json', 1, 1, 'ingested', 1, 't');",
            root.display()
        ))
        .unwrap();
        conn.execute(
            "INSERT INTO sidecar_document (sidecar_id, codec, document) VALUES (1, 'lz4', ?1)",
            [lz4_flex::compress_prepend_size(body.as_bytes())],
        )
        .unwrap();
        drop(conn);

        let mut wh = Warehouse::open(&db).unwrap();
        assert_eq!(wh.schema_version().unwrap(), known_schema_version());
        let (codec, dict_id, doc): (String, Option<i64>, Vec<u8>) = wh
            .conn
            .query_row("SELECT codec, dict_id, document FROM sidecar_document", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        let decoded = super::super::document::decode(&wh.conn, &codec, dict_id, &doc).unwrap();
        assert_eq!(decoded, body.as_bytes());
        // The run ingested before run digests existed is examined again, so the next ingest
        // notices that it is gone.
        let report = super::super::ingest::ingest_root(&mut wh, &root, None).unwrap();
        assert_eq!(report.vanished, 1);
        let present: i64 =
            wh.conn.query_row("SELECT present FROM source_file", [], |r| r.get(0)).unwrap();
        assert_eq!(present, 0);
    }

    /// Every row of `table`, every column, in the order of its first column.
    fn dump(conn: &Connection, table: &str) -> Vec<Vec<rusqlite::types::Value>> {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2")).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get(i)).collect())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_version_4_warehouse_gets_the_status_check_and_keeps_its_files_and_views() {
        use super::super::registry_schema::{sample_view_sql, sidecar_view_sql};
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.sqlite");
        let root = dir.path().join("runs");
        let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
        let put = |rel: &str, body: &str, old: bool| {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, body).unwrap();
            if old {
                File::options().write(true).open(&path).unwrap().set_modified(an_hour_ago).unwrap();
            }
        };
        let body = crate::sidecar::SidecarResult::empty("t").to_json_pretty();
        put("r1/t.ktstr.json", &body, true);
        put("r2/copy.ktstr.json", &body, true);
        put("r2/bad.ktstr.json", "{ nope", true);
        put("r3/late.ktstr.json", &body[..body.len() / 2], false);
        // A database as schema-4 binaries left it, filled by a real ingest: one file of each
        // status (ingested, duplicate, corrupt, pending).
        let mut conn = Connection::open(&db).unwrap();
        embedded::migrations::runner()
            .set_target(refinery::Target::Version(4))
            .run(&mut conn)
            .unwrap();
        let mut old = Warehouse { conn, path: Some(db.clone()) };
        old.configure().unwrap();
        // Today's ingest writes columns later migrations added (V6's `repeat`); they exist
        // only for the fill and are dropped again, leaving the schema-4 tables.
        old.conn.execute_batch("ALTER TABLE ingested_sidecar ADD COLUMN repeat INTEGER").unwrap();
        super::super::ingest::ingest_root(&mut old, &root, None).unwrap();
        old.conn.execute_batch("ALTER TABLE ingested_sidecar DROP COLUMN repeat").unwrap();
        let statuses: Vec<String> = old
            .conn
            .prepare("SELECT status FROM source_file ORDER BY status")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(statuses, ["corrupt", "duplicate", "ingested", "pending"]);
        let files = dump(&old.conn, "source_file");
        let runs = dump(&old.conn, "run_dir_state");
        drop(old);

        let mut wh = Warehouse::open(&db).unwrap();
        assert_eq!(wh.schema_version().unwrap(), known_schema_version());
        assert_eq!(dump(&wh.conn, "source_file"), files);
        assert_eq!(dump(&wh.conn, "run_dir_state"), runs);
        let check = |sql: &str| -> Vec<String> {
            let mut stmt = wh.conn.prepare(sql).unwrap();
            stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
        };
        assert_eq!(check("PRAGMA integrity_check"), ["ok"]);
        assert!(check("SELECT \"table\" FROM pragma_foreign_key_check").is_empty());
        assert_eq!(
            check("SELECT \"table\" FROM pragma_foreign_key_list('source_file') ORDER BY 1"),
            ["ingested_sidecar", "runs_root"]
        );
        let mut explain = wh
            .conn
            .prepare("EXPLAIN QUERY PLAN SELECT 1 FROM source_file WHERE sidecar_id = 1")
            .unwrap();
        let plan: Vec<String> =
            explain.query_map([], |r| r.get(3)).unwrap().collect::<Result<_, _>>().unwrap();
        drop(explain);
        assert!(plan.iter().any(|l| l.contains("source_file_sidecar")), "{plan:?}");
        let views = check("SELECT sql FROM sqlite_master WHERE type = 'view' ORDER BY name");
        assert_eq!(views, [sample_view_sql(), sidecar_view_sql()]);
        assert_eq!(check("SELECT test_name FROM sidecar"), ["t"]);
        let err = wh
            .conn
            .execute("UPDATE source_file SET status = 'gone' WHERE status = 'corrupt'", [])
            .unwrap_err();
        assert!(err.to_string().contains("CHECK constraint failed"), "{err}");

        // The settled run directories are still settled; the pending file is read again.
        let again = super::super::ingest::ingest_root(&mut wh, &root, None).unwrap();
        assert_eq!((again.unchanged, again.parsed, again.known_corrupt), (3, 1, 1));
    }

    #[test]
    fn the_build_time_version_is_the_newest_embedded_migration() {
        let embedded = embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| i64::from(m.version()))
            .max();
        assert_eq!(Some(known_schema_version()), embedded);
    }

    #[test]
    fn fresh_database_gets_the_full_schema_and_views() {
        let wh = Warehouse::open_in_memory().unwrap();
        assert_eq!(wh.schema_version().unwrap(), known_schema_version());
        let n: i64 =
            wh.conn.query_row("SELECT count(*) FROM registry_metric", [], |r| r.get(0)).unwrap();
        assert_eq!(n, crate::metric::METRICS.len() as i64);
        for view in ["sidecar", "sample"] {
            wh.conn.prepare(&format!("SELECT * FROM {view} LIMIT 0")).unwrap();
        }
    }

    fn columns(wh: &Warehouse, view: &str) -> Vec<String> {
        let stmt = wh.conn.prepare(&format!("SELECT * FROM {view} LIMIT 0")).unwrap();
        stmt.column_names().map(String::from).collect()
    }

    /// The views are the SQL contract users script against: their columns may grow, never
    /// shrink or be renamed.
    #[test]
    fn stable_views_keep_their_documented_columns() {
        let wh = Warehouse::open_in_memory().unwrap();
        let dims = [
            "sidecar_id",
            "test_name",
            "topology",
            "scheduler",
            "work_type",
            "flags",
            "kernel_version",
            "kernel_commit",
            "project_commit",
            "run_source",
            "passed",
            "skipped",
            "run_id",
            "timestamp",
            "path",
        ];
        let sidecar = columns(&wh, "sidecar");
        for col in dims.iter().copied().chain(crate::metric::METRICS.iter().map(|m| m.name)) {
            assert!(sidecar.iter().any(|c| c == col), "sidecar view lacks {col}: {sidecar:?}");
        }
        let sample = columns(&wh, "sample");
        for col in dims.iter().copied().chain(["metric_origin", "metric", "value"]) {
            assert!(sample.iter().any(|c| c == col), "sample view lacks {col}: {sample:?}");
        }
    }

    #[test]
    fn registry_table_matches_the_rust_registry() {
        let wh = Warehouse::open_in_memory().unwrap();
        let mut stmt = wh
            .conn
            .prepare("SELECT name, polarity, default_abs, default_rel, unit FROM registry_metric ORDER BY position")
            .unwrap();
        let rows: Vec<(String, String, f64, f64, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), crate::metric::METRICS.len());
        for (row, def) in rows.iter().zip(crate::metric::METRICS.iter()) {
            assert_eq!(row.0, def.name);
            assert_eq!(row.1, format!("{:?}", def.polarity));
            assert_eq!((row.2, row.3), (def.default_abs, def.default_rel));
            assert_eq!(row.4, def.display_unit);
        }
    }

    #[test]
    fn reopening_is_a_no_op_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.sqlite");
        drop(Warehouse::open(&db).unwrap());
        let wh = Warehouse::open(&db).unwrap();
        wh.conn
            .execute(
                "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
                 VALUES (9999, 'future', '', '0')",
                [],
            )
            .unwrap();
        drop(wh);
        let err = Warehouse::open(&db).unwrap_err();
        assert!(matches!(err, OpenError::NewerSchema { found: 9999, .. }), "{err}");
        assert!(err.to_string().contains("upgrade cargo-ktstr"));
        let err = Warehouse::open_read_only(&db).unwrap_err();
        assert!(matches!(err, OpenError::NewerSchema { .. }));
    }

    #[test]
    fn many_openers_of_one_fresh_database_all_succeed() {
        for round in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join(format!("fresh-{round}.sqlite"));
            let barrier = std::sync::Barrier::new(6);
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..6)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            Warehouse::open(&db).map(|_| ())
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap().unwrap();
                }
            });
        }
    }

    #[test]
    fn sqlites_message_is_printed_once() {
        let busy = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("database is locked".into()),
            )
        };
        let open = anyhow::Error::new(OpenError::Sqlite { path: "w.sqlite".into(), cause: busy() });
        let ingest = anyhow::Error::new(crate::warehouse::ingest::IngestError::from(busy()));
        for err in [open, ingest] {
            let text = format!("{err:#}");
            assert_eq!(text.matches("database is locked").count(), 1, "{text}");
            assert!(!text.contains("Error code"), "{text}");
        }
    }

    #[test]
    fn a_second_writer_waits_for_the_lock_and_gives_up_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.sqlite");
        let (first, second) = (Warehouse::open(&db).unwrap(), Warehouse::open(&db).unwrap());
        let held = first.lock_for_writing(Duration::ZERO, &mut || panic!("no wait")).unwrap();
        let mut waits = 0;
        let err = second
            .lock_for_writing(Duration::from_millis(100), &mut || waits += 1)
            .err()
            .expect("the lock is held");
        assert!(matches!(err, WriteLockError::TimedOut { .. }), "{err}");
        assert_eq!(waits, 1, "the wait is reported once");
        drop(held);
        second.lock_for_writing(Duration::ZERO, &mut || panic!("no wait")).unwrap();
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_named_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("notes.sqlite");
        let junk =
            "this is not a database, it is a text file long enough to have a header\n".repeat(20);
        fs::write(&db, &junk).unwrap();
        let err = Warehouse::open(&db).unwrap_err();
        assert!(matches!(err, OpenError::NotSqlite { .. }), "{err}");
        assert_eq!(fs::read_to_string(&db).unwrap(), junk);
    }
}
