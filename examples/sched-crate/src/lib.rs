//! The scheduler crate of the A/B walkthrough. Its scheduler is scx_bpfland 1.1.4 (from
//! crates.io, installed by ktstr's `scripts/deps/20-scx-bpfland.sh`), configured by the
//! arguments its test suite declares in `tests/sched.rs`; changing those arguments is this
//! crate's "code change" between branch A and branch B.
