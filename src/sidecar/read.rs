//! Finding and parsing sidecar files: the discovery walk and the tolerant parser.
//!
//! Owns the reference's discovery rules (stats-reference §1.6): a file is a sidecar when its
//! extension is exactly `json` and its name contains `.ktstr.`; a *pool* is every directory
//! directly under a runs root, each walked one level deep (`{root}/{run}/*.ktstr.json` and
//! `{root}/{run}/{job}/*.ktstr.json`). Files directly in the root are never part of the pool,
//! which is why the warehouse database can live there.
//!
//! Parsing never panics: every failure is a [`ReadError`] carrying the path and a
//! [`ReadErrorKind`] that says what to do. It does not decide what a failure *means* for a
//! batch (retry, report, skip); that is the ingester's job.
//!
//! # Differences from ktstr
//! Walk order is sorted by path, not `read_dir` order, so every listing is deterministic.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::model::SidecarResult;

/// Files larger than this are refused without being read: real sidecars are kilobytes, and
/// a runaway file must not take the ingester's memory with it.
pub const MAX_SIDECAR_BYTES: u64 = 16 * 1024 * 1024;

/// True when `path`'s file name marks it as a sidecar (`*.ktstr.*.json` / `*.ktstr.json`).
pub fn is_sidecar_filename(path: &Path) -> bool {
    let ext_ok = path.extension().is_some_and(|e| e == "json");
    // On the name's bytes, so a name that is not UTF-8 is still recognised (and reported by
    // the ingester, which cannot record it) instead of silently not being a sidecar.
    let name_ok = path.file_name().is_some_and(|n| {
        use std::os::unix::ffi::OsStrExt;
        n.as_bytes().windows(7).any(|w| w == b".ktstr.")
    });
    ext_ok && name_ok
}

/// Why a sidecar could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadErrorKind {
    /// The file could not be opened or read.
    Io(String),
    /// Zero bytes: usually a file caught between create and write.
    Empty,
    /// Valid JSON up to an unexpected end: usually a file caught mid-write.
    Truncated(String),
    /// Not JSON at all.
    NotJson(String),
    /// JSON, but a required key is missing: an older or foreign schema.
    MissingField(String),
    /// JSON, but a value has the wrong type or the document the wrong shape.
    Schema(String),
    /// Larger than [`MAX_SIDECAR_BYTES`].
    TooLarge(u64),
    /// Nested deeper than the parser allows.
    TooDeep,
    /// Permission denied: a state of the file, not of its content; worth reading again.
    PermissionDenied(String),
    /// Not a regular file (a FIFO, socket or device named like a sidecar); never read.
    NotRegular(&'static str),
}

impl ReadErrorKind {
    /// Whether this failure may go away if the file is read again later (a writer was
    /// still busy with it). Such files are retried, not recorded as corrupt forever.
    pub fn may_be_in_progress(&self) -> bool {
        matches!(self, ReadErrorKind::Empty | ReadErrorKind::Truncated(_))
    }

    /// Short stable label, used in reports and the warehouse's `source_file.status`.
    pub fn label(&self) -> &'static str {
        match self {
            ReadErrorKind::Io(_) => "unreadable",
            ReadErrorKind::Empty => "empty",
            ReadErrorKind::Truncated(_) => "truncated",
            ReadErrorKind::NotJson(_) => "not-json",
            ReadErrorKind::MissingField(_) => "missing-field",
            ReadErrorKind::Schema(_) => "wrong-schema",
            ReadErrorKind::TooLarge(_) => "too-large",
            ReadErrorKind::TooDeep => "too-deep",
            ReadErrorKind::PermissionDenied(_) => "permission-denied",
            ReadErrorKind::NotRegular(_) => "not-a-regular-file",
        }
    }
}

impl fmt::Display for ReadErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadErrorKind::Io(e) => write!(f, "cannot read file: {e}"),
            ReadErrorKind::Empty => write!(f, "file is empty (a writer may still be busy with it)"),
            ReadErrorKind::Truncated(e) => {
                write!(f, "file ends early, truncated or still being written ({e})")
            }
            ReadErrorKind::NotJson(e) => write!(f, "not a JSON document ({e})"),
            ReadErrorKind::MissingField(name) => write!(
                f,
                "required key `{name}` is missing; the file is from an older or foreign \
                 sidecar schema, re-run the test to write a current sidecar"
            ),
            ReadErrorKind::Schema(e) => write!(f, "not a sidecar document ({e})"),
            ReadErrorKind::TooLarge(n) => write!(
                f,
                "file is {n} bytes, over the {MAX_SIDECAR_BYTES}-byte sidecar limit; \
                 it is not a sidecar ktstr writes"
            ),
            ReadErrorKind::TooDeep => write!(f, "JSON is nested too deeply to be a sidecar"),
            ReadErrorKind::PermissionDenied(e) => write!(f, "cannot read file: {e}"),
            ReadErrorKind::NotRegular(kind) => write!(f, "is a {kind}, not a regular file"),
        }
    }
}

/// A sidecar that could not be read, with its path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct ReadError {
    pub path: PathBuf,
    pub kind: ReadErrorKind,
}

/// Read a sidecar file's bytes, refusing oversized files before reading them.
///
/// Only a regular file is read. The type is checked on the opened descriptor, not on the path,
/// so a FIFO swapped in after the walk's `stat` is refused too; the open is non-blocking, so
/// opening a FIFO with no writer returns at once instead of waiting for one.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |kind| ReadError { path: path.to_path_buf(), kind };
    let io_err = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::PermissionDenied => err(ReadErrorKind::PermissionDenied(e.to_string())),
        _ => err(ReadErrorKind::Io(e.to_string())),
    };
    let file = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if let Some(kind) = special_file_kind(&meta.file_type()) {
        return Err(err(ReadErrorKind::NotRegular(kind)));
    }
    // O_NONBLOCK has no effect on a regular file's reads.
    let len = meta.len();
    if len > MAX_SIDECAR_BYTES {
        return Err(err(ReadErrorKind::TooLarge(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` bounds memory even if the file grows between the stat and the read.
    file.take(MAX_SIDECAR_BYTES + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > MAX_SIDECAR_BYTES {
        return Err(err(ReadErrorKind::TooLarge(bytes.len() as u64)));
    }
    Ok(bytes)
}

/// Parse sidecar bytes. `path` is only used to label the error.
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<SidecarResult, ReadError> {
    let err = |kind| ReadError { path: path.to_path_buf(), kind };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(err(ReadErrorKind::Empty));
    }
    serde_json::from_slice::<SidecarResult>(bytes).map_err(|e| err(classify(&e)))
}

/// Read and parse one sidecar file.
pub fn read_sidecar(path: &Path) -> Result<SidecarResult, ReadError> {
    let bytes = read_bytes(path)?;
    parse_bytes(path, &bytes)
}

fn classify(e: &serde_json::Error) -> ReadErrorKind {
    use serde_json::error::Category;
    let msg = e.to_string();
    match e.classify() {
        Category::Eof => ReadErrorKind::Truncated(msg),
        Category::Io => ReadErrorKind::Io(msg),
        Category::Syntax if msg.contains("recursion limit") => ReadErrorKind::TooDeep,
        Category::Syntax => ReadErrorKind::NotJson(msg),
        Category::Data => match missing_field_name(&msg) {
            Some(name) => ReadErrorKind::MissingField(name),
            None => ReadErrorKind::Schema(msg),
        },
    }
}

/// serde's message is "missing field `name` at line L column C".
fn missing_field_name(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// What a file is when it is not a regular file (or a directory): the name reports use.
pub fn special_file_kind(t: &fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_fifo() {
        Some("FIFO")
    } else if t.is_socket() {
        Some("socket")
    } else if t.is_char_device() {
        Some("character device")
    } else if t.is_block_device() {
        Some("block device")
    } else if t.is_dir() {
        Some("directory")
    } else {
        Some("special file")
    }
}

/// An entry the pool walk did not take, and why. Nothing the walk leaves out goes unsaid.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedEntry {
    pub path: PathBuf,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SkipReason {
    /// A run or job directory (or one of its entries) could not be listed.
    Unreadable(String),
    /// A symlink whose target is inside the runs root: that target is walked where it is,
    /// so following the link would count its files twice (or loop).
    SymlinkIntoRoot,
}

/// One run directory's sidecar files, and the entries under it that could not be taken.
#[derive(Debug, Default)]
pub struct RunDirWalk {
    pub files: Vec<PathBuf>,
    pub skipped: Vec<SkippedEntry>,
}

/// Sidecar files of one run directory: its own sidecars, then those one level down
/// (job subdirectories). Deeper levels are ignored, as in ktstr. Sorted by path.
/// An unreadable directory yields nothing.
pub fn run_dir_sidecar_paths(run_dir: &Path) -> Vec<PathBuf> {
    walk_run_dir(run_dir, None).files
}

/// [`run_dir_sidecar_paths`], also reporting what it could not take: directories it could not
/// list and, when `root` (canonical) is given, symlinks that lead back inside it.
pub fn walk_run_dir(run_dir: &Path, root: Option<&Path>) -> RunDirWalk {
    let mut walk = RunDirWalk::default();
    let mut nested = Vec::new();
    for (entry, is_dir) in sorted_entries(run_dir, root, &mut walk.skipped) {
        if is_dir {
            nested.extend(
                sorted_entries(&entry, root, &mut walk.skipped)
                    .into_iter()
                    .filter(|(p, is_dir)| !is_dir && is_sidecar_filename(p))
                    .map(|(p, _)| p),
            );
        } else if is_sidecar_filename(&entry) {
            walk.files.push(entry);
        }
    }
    walk.files.extend(nested);
    walk
}

/// The directories directly under a runs root (each a run), sorted. Files there, such as
/// the warehouse database, are not runs.
pub fn run_dirs(root: &Path) -> Vec<PathBuf> {
    walk_run_dirs(root, false).0
}

/// [`run_dirs`] of a canonical `root`, with what could not be taken: the root itself when
/// it cannot be listed and, when `checked`, symlinks that lead back inside it.
pub fn walk_run_dirs(root: &Path, checked: bool) -> (Vec<PathBuf>, Vec<SkippedEntry>) {
    let mut skipped = Vec::new();
    let inside = checked.then_some(root);
    let dirs = sorted_entries(root, inside, &mut skipped)
        .into_iter()
        .filter(|(_, is_dir)| *is_dir)
        .map(|(p, _)| p)
        .collect();
    (dirs, skipped)
}

/// Every sidecar path in the pool under `root`: each of its [`run_dirs`] walked with
/// [`run_dir_sidecar_paths`].
pub fn pool_sidecar_paths(root: &Path) -> Vec<PathBuf> {
    run_dirs(root).iter().flat_map(|run| run_dir_sidecar_paths(run)).collect()
}

/// A directory's entries, sorted, each with whether it is a directory. The type comes from
/// the directory listing itself, so an unchanged tree costs one `stat` per file (the
/// ingester's size and mtime check), not two; only symlinks are followed with a `stat`, and
/// with `root` given, a symlink that resolves inside it is left out (and reported).
fn sorted_entries(
    dir: &Path,
    root: Option<&Path>,
    skipped: &mut Vec<SkippedEntry>,
) -> Vec<(PathBuf, bool)> {
    let unreadable = |path: &Path, e: std::io::Error| SkippedEntry {
        path: path.to_path_buf(),
        reason: SkipReason::Unreadable(e.to_string()),
    };
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) => {
            skipped.push(unreadable(dir, e));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let e = match entry {
            Ok(e) => e,
            Err(err) => {
                skipped.push(unreadable(dir, err));
                continue;
            }
        };
        let path = e.path();
        let is_dir = match e.file_type() {
            Ok(t) if t.is_symlink() => {
                if let Some(root) = root
                    && fs::canonicalize(&path).is_ok_and(|target| target.starts_with(root))
                {
                    skipped.push(SkippedEntry { path, reason: SkipReason::SymlinkIntoRoot });
                    continue;
                }
                path.is_dir()
            }
            Ok(t) => t.is_dir(),
            Err(_) => path.is_dir(),
        };
        out.push((path, is_dir));
    }
    // All entries share the parent, so this is the path order without comparing whole
    // paths component by component.
    out.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::sidecar::write::{WriteOptions, write_sidecar};

    const REQUIRED: [&str; 15] = [
        "test_name",
        "topology",
        "scheduler",
        "metrics",
        "passed",
        "skipped",
        "stats",
        "stimulus_events",
        "work_type",
        "active_flags",
        "verifier_stats",
        "sysctls",
        "kargs",
        "timestamp",
        "run_id",
    ];

    #[test]
    fn symlinked_run_and_job_directories_are_walked_like_real_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(elsewhere.join("job")).unwrap();
        fs::write(elsewhere.join("a.ktstr.json"), "{}").unwrap();
        fs::write(elsewhere.join("job/b.ktstr.json"), "{}").unwrap();
        let root = tmp.path().join("root");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("run")).unwrap();
        fs::write(root.join("warehouse.sqlite"), "").unwrap();
        let found = pool_sidecar_paths(&root);
        assert_eq!(found, [root.join("run/a.ktstr.json"), root.join("run/job/b.ktstr.json")]);
        assert_eq!(run_dirs(&root), [root.join("run")]);
    }

    fn base_value() -> Value {
        let mut sc = SidecarResult::empty("alpha");
        sc.timestamp = "2026-04-27T09:15:02Z".into();
        sc.run_id = "20260427T091455Z-0".into();
        sc.run_source = Some("local".into());
        serde_json::to_value(&sc).unwrap()
    }

    fn parse_value(v: &Value) -> Result<SidecarResult, ReadError> {
        parse_bytes(Path::new("x.ktstr.json"), serde_json::to_string(v).unwrap().as_bytes())
    }

    fn kind_of(bytes: &[u8]) -> ReadErrorKind {
        parse_bytes(Path::new("x.ktstr.json"), bytes).unwrap_err().kind
    }

    #[test]
    fn every_required_top_level_key_is_required_by_name() {
        assert!(parse_value(&base_value()).is_ok());
        for key in REQUIRED {
            let mut v = base_value();
            v.as_object_mut().unwrap().remove(key).expect("key present in a full sidecar");
            let err = parse_value(&v).unwrap_err();
            assert_eq!(err.kind, ReadErrorKind::MissingField(key.to_string()), "{key}");
            assert!(err.to_string().contains(&format!("`{key}`")), "{err}");
        }
    }

    #[test]
    fn optional_keys_may_be_absent_and_unknown_keys_are_ignored() {
        let mut v = base_value();
        let obj = v.as_object_mut().unwrap();
        for key in ["scheduler_commit", "project_commit", "payload", "monitor", "kvm_stats"] {
            obj.remove(key);
        }
        for key in ["kernel_version", "kernel_commit", "host", "cleanup_duration_ms"] {
            obj.remove(key);
        }
        obj.insert("future_key".into(), json!({"nested": [1, 2]}));
        v["stats"]["future_stat"] = json!(3);
        let sc = parse_value(&v).unwrap();
        assert_eq!(sc.test_name, "alpha");
        assert_eq!(sc.host, None);
        assert!(sc.provenance.is_empty(), "unknown top-level keys are not provenance");
    }

    #[test]
    fn missing_run_source_and_the_old_source_key_read_as_none() {
        let mut v = base_value();
        v.as_object_mut().unwrap().remove("run_source");
        assert_eq!(parse_value(&v).unwrap().run_source, None);
        v["source"] = json!("ci");
        assert_eq!(parse_value(&v).unwrap().run_source, None, "no alias for the old key");
    }

    #[test]
    fn null_in_a_required_float_reads_as_nan() {
        let mut v = base_value();
        v["stats"]["worst_spread"] = Value::Null;
        let sc = parse_value(&v).unwrap();
        assert!(sc.stats.worst_spread.is_nan());
        // A null in a required integer is still a schema error, not a silent zero.
        v["stats"]["total_workers"] = Value::Null;
        assert!(matches!(parse_value(&v).unwrap_err().kind, ReadErrorKind::Schema(_)));
    }

    #[test]
    fn broken_files_are_classified() {
        assert_eq!(kind_of(b""), ReadErrorKind::Empty);
        assert_eq!(kind_of(b" \n\t"), ReadErrorKind::Empty);
        let full = serde_json::to_string_pretty(&base_value()).unwrap();
        let cut = &full.as_bytes()[..full.len() / 2];
        assert!(matches!(kind_of(cut), ReadErrorKind::Truncated(_)));
        assert!(kind_of(cut).may_be_in_progress());
        assert!(matches!(kind_of(b"hello"), ReadErrorKind::NotJson(_)));
        assert!(matches!(kind_of(b"{\"a\": }"), ReadErrorKind::NotJson(_)));
        assert!(matches!(kind_of(b"[1, 2]"), ReadErrorKind::Schema(_)));
        let mut wrong_type = base_value();
        wrong_type["passed"] = json!("yes");
        let err = parse_value(&wrong_type).unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::Schema(_)));
        assert!(!err.kind.may_be_in_progress());

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.ktstr.json");
        let err = read_sidecar(&missing).unwrap_err();
        assert!(matches!(err.kind, ReadErrorKind::Io(_)));
        assert_eq!(err.path, missing);
    }

    #[test]
    fn discovery_walks_one_job_level_and_only_sidecar_names() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("6.14.2-abc1234");
        let touch = |rel: &str| {
            let p = root.path().join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "{}").unwrap();
        };
        touch("6.14.2-abc1234/a-0000000000000001.ktstr.json");
        touch("6.14.2-abc1234/job1/b-0000000000000002.ktstr.json");
        touch("6.14.2-abc1234/job1/deeper/c-0000000000000003.ktstr.json");
        touch("6.14.2-abc1234/data.json");
        touch("6.14.2-abc1234/notes.ktstr.txt");
        touch("6.14.2-abc1234/.a.ktstr.json.1-0.tmp");
        touch("stray-0000000000000004.ktstr.json");
        touch(".locks/6.14.2-abc1234.lock");

        let expected = [
            run.join("a-0000000000000001.ktstr.json"),
            run.join("job1/b-0000000000000002.ktstr.json"),
        ];
        assert_eq!(run_dir_sidecar_paths(&run), expected);
        assert_eq!(pool_sidecar_paths(root.path()), expected, "root files are never pooled");
        assert!(run_dir_sidecar_paths(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn write_then_read_round_trips_exactly() {
        let fixture = include_str!("../../tests/fixtures/reference-example.ktstr.json");
        let mut sc: SidecarResult = serde_json::from_str(fixture).unwrap();
        sc.active_flags = vec!["steal".into(), "llc".into()];
        sc.host = Some(crate::provenance::host::capture_host_context());
        sc.provenance.dirty_fingerprint = Some("0123456789abcdef".into());
        sc.provenance.other.insert("later_field".into(), json!({"kept": true}));

        let root = tempfile::tempdir().unwrap();
        let opts = WriteOptions {
            sidecar_dir_override: None,
            runs_root: root.path().to_path_buf(),
            run_token: "run1".into(),
            lock_timeout: Duration::from_secs(5),
            job: None,
        };
        let path = write_sidecar(&sc, &opts).unwrap();
        let back = read_sidecar(&path).unwrap();
        assert_eq!(back, sc);
        assert_eq!(back.to_json_pretty(), fs::read_to_string(&path).unwrap());
        assert_eq!(pool_sidecar_paths(root.path()), [path]);
    }
}
