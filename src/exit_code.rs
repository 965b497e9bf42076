//! The process exit codes, fixed so CI scripts can branch on them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; for `stats compare`, no regression |
//! | 1 | `stats compare` found a regression |
//! | 2 | usage or data error (bad flags, `--alpha`/`--fdr` out of range, a side that matches nothing, an unreadable database or policy) |
//! | 3 | `stats compare --strict`: every regression is low-n (only the dual gate could judge it) |

/// Success; for `stats compare`, no regression.
pub const SUCCESS: u8 = 0;
/// `stats compare` found at least one regression.
pub const REGRESSION: u8 = 1;
/// Bad usage (flags, arguments) or bad data (unreadable database, a side that matches
/// nothing, a malformed policy file). Also clap's own usage-error code.
pub const USAGE_OR_DATA_ERROR: u8 = 2;
/// `stats compare --strict`: regressions were found, but the noise gate could evaluate none
/// of them (too few runs per side, no history): more repeats are needed to trust them.
pub const LOW_N_REGRESSION: u8 = 3;
