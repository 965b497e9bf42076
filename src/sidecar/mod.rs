//! The sidecar: the per-test JSON file that is the contract between producers (the harness,
//! ktstr itself) and consumers (the warehouse).
//!
//! Producers build a complete document and hand it over; nothing here detects run context
//! (git, host, kernel, run token) or imports anything that does.
//!
//! - [`model`]: the document's types, byte-compatible with ktstr's.
//! - [`name`]: the file name, from the canonical flag order and the variant hash.
//! - [`layout`]: the runs root and run directories.
//! - [`write`]: writing a finished document under lock with pre-clear.
//! - [`read`]: the discovery walk and the tolerant parser.
//! - [`explain`]: which optional fields of a sidecar are null, and why.
//! - [`run_key`]: validating `--run` keys (run directory names) and suggesting near misses.

pub mod explain;
pub mod layout;
pub mod model;
pub mod name;
pub mod read;
pub mod run_key;
pub mod write;

pub use layout::{DEFAULT_DB_FILE_NAME, run_dir_name, runs_root};
pub use model::{HostContext, Provenance, SidecarResult};
pub use name::{canonicalize_flags, sidecar_file_name, variant_hash};
pub use read::{ReadError, ReadErrorKind, is_sidecar_filename, read_sidecar};
pub use write::{WriteError, WriteOptions, write_sidecar};
