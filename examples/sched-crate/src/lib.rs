//! The scheduler crate of the A/B walkthrough. Its scheduler is scx_bpfland 1.1.4 (from
//! crates.io, installed by ktstr's `scripts/deps/20-scx-bpfland.sh`), configured by the
//! arguments its test suite declares in `tests/sched.rs`; changing those arguments is this
//! crate's "code change" between branch A and branch B.
//!
//! `ab-policy.json` is the crate's compare policy (`cargo ktstr stats compare --policy
//! ab-policy.json`): the wake-latency tail of `wake_behind_spinners` is the metric this crate's
//! branches are about, gated at +100 %; every other metric is gated at +1000 %, because with
//! one run per side in TCG guests on a loaded host some metric clears the registry's default
//! gates in almost every compare of a commit against itself.
