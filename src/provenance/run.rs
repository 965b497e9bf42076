//! Which run a sidecar belongs to: the suite-run token, the repeat, the run id, and the run
//! source.
//!
//! The token groups every test process of one `cargo ktstr test` (the writer pre-clears a run
//! directory once per token); the repeat says which pass of a repeated run this is; the run id
//! names one written document; the run source says whether CI produced it. Each rule has a twin taking the environment as an [`EnvLookup`], so
//! it is tested without touching the process environment.

use std::fs;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sidecar::layout::{EnvLookup, process_env};
use crate::sidecar::write::REPEAT_JOB_PREFIX;
use crate::timefmt;

/// [`run_token_from`] the process environment.
pub fn run_token() -> String {
    run_token_from(&process_env)
}

/// The suite-run token: `KTSTR_RUN_TOKEN` (set by `cargo ktstr test`), else `NEXTEST_RUN_ID`,
/// else one token for this process alone.
pub fn run_token_from(env: EnvLookup<'_>) -> String {
    let non_empty = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    non_empty("KTSTR_RUN_TOKEN")
        .or_else(|| non_empty("NEXTEST_RUN_ID"))
        .unwrap_or_else(|| process_token().to_string())
}

/// [`repeat_index_from`] the process environment.
pub fn repeat_index() -> Option<u32> {
    repeat_index_from(&process_env)
}

/// The repeat a test process belongs to: `i` when `KTSTR_JOB` is `repeat-{i}` (what
/// `cargo ktstr test --repeat` and `cargo ktstr ab` set), else `None`. Read from the job name
/// so the recorded repeat and the job subdirectory the sidecar lands in can never disagree.
pub fn repeat_index_from(env: EnvLookup<'_>) -> Option<u32> {
    env("KTSTR_JOB")?.strip_prefix(REPEAT_JOB_PREFIX)?.parse().ok()
}

/// `pid-{pid}-{start}`: the pid alone is reused, the pair of pid and process start time
/// (clock ticks since boot, from /proc/self/stat) is not. Falls back to the wall clock at
/// first use when /proc is unavailable.
fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let start = fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
            // Fields after the parenthesised command name; starttime is field 22 overall.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(19).map(str::to_string)
        });
        let start = start.unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            format!("t{}", now.map_or(0, |d| d.as_nanos()))
        });
        format!("pid-{}-{start}", std::process::id())
    })
}

/// `{YYYYMMDDTHHMMSSZ}-{n}`: the stamp is fixed at the first call in this process and `n`
/// counts calls from 0.
///
/// As in ktstr the stamp is per *process*, so under nextest it differs between the tests of
/// one suite run (§7.2 #3); `provenance.run_token` is what groups a run's sidecars.
pub fn next_run_id() -> String {
    static STAMP: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stamp = STAMP.get_or_init(timefmt::now_compact);
    format!("{stamp}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// `ci` when `KTSTR_CI` is set and non-empty, else `local`. `archive` is never written; the
/// reader applies it to pools loaded with `--dir`.
pub fn detect_run_source() -> &'static str {
    detect_run_source_from(&process_env)
}

/// [`detect_run_source`] with the environment given.
pub fn detect_run_source_from(env: EnvLookup<'_>) -> &'static str {
    if env("KTSTR_CI").is_some_and(|v| !v.is_empty()) { "ci" } else { "local" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(
        pairs: &'static [(&'static str, &'static str)],
    ) -> impl Fn(&str) -> Option<String> + use<> {
        move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn run_token_prefers_ktstr_then_nextest_then_the_process() {
        let both = env(&[("KTSTR_RUN_TOKEN", "k"), ("NEXTEST_RUN_ID", "n")]);
        assert_eq!(run_token_from(&both), "k");
        let nextest = env(&[("KTSTR_RUN_TOKEN", ""), ("NEXTEST_RUN_ID", "n")]);
        assert_eq!(run_token_from(&nextest), "n");
        let none = env(&[]);
        let own = run_token_from(&none);
        assert!(own.starts_with(&format!("pid-{}-", std::process::id())), "{own}");
        assert_eq!(run_token_from(&none), own, "stable within the process");
    }

    #[test]
    fn the_repeat_is_read_from_a_repeat_job_name_only() {
        assert_eq!(repeat_index_from(&env(&[("KTSTR_JOB", "repeat-0")])), Some(0));
        assert_eq!(repeat_index_from(&env(&[("KTSTR_JOB", "repeat-12")])), Some(12));
        assert_eq!(repeat_index_from(&env(&[])), None);
        for other in ["nightly", "repeat-", "repeat-x", "repeat--1", "xrepeat-1"] {
            let job = |k: &str| (k == "KTSTR_JOB").then(|| other.to_string());
            assert_eq!(repeat_index_from(&job), None, "{other}");
        }
    }

    #[test]
    fn run_ids_share_the_process_stamp_and_count_up() {
        let a = next_run_id();
        let b = next_run_id();
        let (stamp_a, n_a) = a.rsplit_once('-').unwrap();
        let (stamp_b, n_b) = b.rsplit_once('-').unwrap();
        assert_eq!(stamp_a, stamp_b);
        assert_eq!(stamp_a.len(), 16);
        assert!(n_b.parse::<u64>().unwrap() > n_a.parse::<u64>().unwrap());
    }

    #[test]
    fn run_source_is_ci_only_for_a_non_empty_ktstr_ci() {
        assert_eq!(detect_run_source_from(&env(&[])), "local");
        assert_eq!(detect_run_source_from(&env(&[("KTSTR_CI", "")])), "local");
        assert_eq!(detect_run_source_from(&env(&[("KTSTR_CI", "1")])), "ci");
    }
}
