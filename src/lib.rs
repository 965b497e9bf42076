//! ktstr: a results warehouse and test harness for Linux process schedulers.
//!
//! Data flows one way, and the modules are declared in that order:
//!
//! ```text
//!  harness (host runner)  ─┐
//!                          ├─> sidecar ──> warehouse ──> compare ──> report
//!  vm backend (later)     ─┘   (JSON file)   (SQLite)     (A/B, gate)  (text, JSON)
//! ```
//!
//! - [`sidecar`]: the per-test JSON document, byte-compatible with ktstr's, where it lives and
//!   how it is named, written and read.
//! - [`git`] and [`host`]: facts about the project tree and the machine that go into a sidecar.
//! - [`metric`]: the registry of metrics compare gates on.
//! - [`warehouse`]: the SQLite index of sidecars; the only module that writes SQL.
//! - [`compare`]: pure A/B logic over rows the warehouse returns.
//! - [`report`]: rendering of typed results as human text or JSON.
//! - [`cli`]: the `cargo ktstr` command line; the only module that parses arguments or
//!   decides where output goes.

pub mod cli;
pub mod compare;
pub mod exit_code;
pub mod git;
pub mod harness;
pub mod host;
pub mod metric;
pub mod report;
pub mod sidecar;
pub mod timefmt;
pub mod warehouse;
