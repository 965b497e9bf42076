//! The sidecar: the per-test JSON file that is the contract between producers (the harness,
//! ktstr itself) and consumers (the warehouse).
//!
//! - [`model`]: the document's types, byte-compatible with ktstr's.
//! - [`name`]: the file name, from the canonical flag order and the variant hash.
//! - [`layout`]: the runs root, run directories, and the kernel and run-source facts that
//!   choose them.
//! - [`write`]: stamping the run context and writing files under lock with pre-clear.
//! - [`read`]: the discovery walk and the tolerant parser.

pub mod layout;
pub mod model;
pub mod name;
pub mod read;
pub mod write;

pub use layout::{DEFAULT_DB_FILE_NAME, run_dir_name, runs_root};
pub use model::{HostContext, Provenance, SidecarResult};
pub use name::{canonicalize_flags, sidecar_file_name, variant_hash};
pub use read::{ReadError, ReadErrorKind, is_sidecar_filename, read_sidecar};
pub use write::{WriteError, WriteOptions, fill_run_context, write_sidecar};
