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
    let name_ok = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.contains(".ktstr."));
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
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
    let err = |kind| ReadError { path: path.to_path_buf(), kind };
    let file = fs::File::open(path).map_err(|e| err(ReadErrorKind::Io(e.to_string())))?;
    let len = file.metadata().map_err(|e| err(ReadErrorKind::Io(e.to_string())))?.len();
    if len > MAX_SIDECAR_BYTES {
        return Err(err(ReadErrorKind::TooLarge(len)));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    // `take` bounds memory even if the file grows between the stat and the read.
    file.take(MAX_SIDECAR_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(ReadErrorKind::Io(e.to_string())))?;
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

/// Sidecar files of one run directory: its own sidecars, then those one level down
/// (job subdirectories). Deeper levels are ignored, as in ktstr. Sorted by path.
/// An unreadable directory yields nothing.
pub fn run_dir_sidecar_paths(run_dir: &Path) -> Vec<PathBuf> {
    let mut top = Vec::new();
    let mut nested = Vec::new();
    for entry in sorted_entries(run_dir) {
        if entry.is_dir() {
            nested.extend(
                sorted_entries(&entry)
                    .into_iter()
                    .filter(|p| !p.is_dir() && is_sidecar_filename(p)),
            );
        } else if is_sidecar_filename(&entry) {
            top.push(entry);
        }
    }
    top.extend(nested);
    top
}

/// Every sidecar path in the pool under `root`: each directory directly under `root` walked
/// with [`run_dir_sidecar_paths`]. Files directly in `root` are not part of the pool.
pub fn pool_sidecar_paths(root: &Path) -> Vec<PathBuf> {
    sorted_entries(root)
        .into_iter()
        .filter(|p| p.is_dir())
        .flat_map(|run| run_dir_sidecar_paths(&run))
        .collect()
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}
