//! The process exit codes, fixed so CI scripts can branch on them.

/// Success; for `stats compare`, no regression.
pub const SUCCESS: u8 = 0;
/// `stats compare` found at least one regression.
pub const REGRESSION: u8 = 1;
/// Bad usage (flags, arguments) or bad data (unreadable database, a side that matches
/// nothing, a malformed policy file). Also clap's own usage-error code.
pub const USAGE_OR_DATA_ERROR: u8 = 2;
