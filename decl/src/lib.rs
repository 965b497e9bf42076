//! The vocabulary of a `#[ktstr_test]` declaration, shared by the proc-macro (`ktstr-macros`,
//! which validates a declaration at compile time) and the runtime (`ktstr`, which runs it), so
//! the two cannot disagree about what a declaration means or how a mistake in it is worded.
//!
//! - [`topology`]: the [`Topology`] type, the `{n}n{l}l{c}c{t}t` string form and its rules.
//! - [`presets`]: the gauntlet's named topology presets.
//! - [`thresholds`]: the list of assertion thresholds (name, value kind, how the host
//!   backend checks each one).
//!
//! It owns no behaviour beyond parsing and describing: running tests, measuring and judging
//! them is `ktstr`'s; turning attributes into code is `ktstr-macros`'.

pub mod presets;
pub mod thresholds;
pub mod topology;

pub use topology::{Impossible, Topology, TopologyError};
