//! The sidecar: the per-test JSON file that is the contract between producers (the harness,
//! ktstr itself) and consumers (the warehouse).
//!
//! - [`model`]: the document's types, byte-compatible with ktstr's.
//! - [`read`]: the discovery walk and the tolerant parser.

pub mod model;
pub mod read;

pub use model::{HostContext, Provenance, SidecarResult};
pub use read::{ReadError, ReadErrorKind, is_sidecar_filename, read_sidecar};
