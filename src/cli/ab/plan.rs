//! The order `cargo ktstr ab` runs things in, and the record it keeps of a session.
//!
//! Repeats are interleaved — A, B, A, B, … — with every kernel of a repeat run for A and then
//! for B, so a drift of the machine over the session (thermal, a neighbour's load) hits both
//! sides alike instead of looking like a regression. Repeat `i` of A and repeat `i` of B ran
//! next to each other: that is pair `i`, recorded in their sidecars as `provenance.repeat`.
//!
//! The session record (`{runs root}/.ab/{run token}.json`, a dot directory no reader treats
//! as a run) says which commits were compared, which runs finished, and how the session ended:
//! `complete`, `interrupted` (Ctrl-C: the sidecars written so far are kept, and this record
//! marks them as a partial session) or `build-failed`. It is rewritten after every run, so a
//! session killed outright is left `running`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::compare::Side;

/// One suite run of the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub repeat: u32,
    pub kernel: Option<String>,
    pub side: Side,
}

/// Every run, in the order they happen: per repeat, per kernel, A then B.
pub fn schedule(repeats: u32, kernels: &[String]) -> Vec<Step> {
    let kernels: Vec<Option<String>> =
        if kernels.is_empty() { vec![None] } else { kernels.iter().cloned().map(Some).collect() };
    let mut steps = Vec::new();
    for repeat in 0..repeats {
        for kernel in &kernels {
            for side in [Side::A, Side::B] {
                steps.push(Step { repeat, kernel: kernel.clone(), side });
            }
        }
    }
    steps
}

/// How a session ended (so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Running,
    Complete,
    Interrupted,
    BuildFailed,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideRecord {
    pub spec: String,
    pub commit: String,
    /// The `project_commit` its sidecars record (`{short}`, or `{short}-dirty` if the run
    /// changed tracked files in the worktree).
    pub project_commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub side: &'static str,
    pub repeat: u32,
    pub kernel: Option<String>,
    /// `cargo nextest run`'s exit code.
    pub exit_code: u8,
    pub started: String,
    pub finished: String,
}

/// The session record, as written to disk.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub run_token: String,
    pub status: Status,
    pub a: SideRecord,
    pub b: SideRecord,
    pub repeats: u32,
    pub kernels: Vec<String>,
    pub planned_runs: usize,
    pub runs: Vec<RunRecord>,
}

impl Session {
    /// Where the record of session `token` lives under `runs_root`.
    pub fn path(runs_root: &Path, token: &str) -> PathBuf {
        runs_root.join(".ab").join(format!("{token}.json"))
    }

    /// Write the record atomically (a temporary file renamed into place).
    pub fn save(&self, runs_root: &Path) -> std::io::Result<PathBuf> {
        let path = Session::path(runs_root, &self.run_token);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        // Serializing plain data with string keys cannot fail.
        let text = serde_json::to_string_pretty(self).expect("session serializes");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| {
                format!("{}{}{}", s.side.letter(), s.repeat, s.kernel.as_deref().unwrap_or(""))
            })
            .collect()
    }

    #[test]
    fn repeats_alternate_a_and_b() {
        assert_eq!(order(&schedule(3, &[])), ["A0", "B0", "A1", "B1", "A2", "B2"]);
    }

    #[test]
    fn each_kernel_of_a_repeat_runs_a_then_b() {
        let k = ["6.14".to_string(), "7.0".to_string()];
        assert_eq!(
            order(&schedule(2, &k)),
            ["A06.14", "B06.14", "A07.0", "B07.0", "A16.14", "B16.14", "A17.0", "B17.0"]
        );
    }

    #[test]
    fn the_record_names_its_status_in_kebab_case_and_lands_in_a_dot_directory() {
        let dir = std::env::temp_dir().join(format!("ktstr-ab-plan-test-{}", std::process::id()));
        let side = |c: &str| SideRecord {
            spec: c.into(),
            commit: c.repeat(40 / c.len()),
            project_commit: c.repeat(7 / c.len()),
        };
        let s = Session {
            run_token: "tok".into(),
            status: Status::BuildFailed,
            a: side("a"),
            b: side("b"),
            repeats: 1,
            kernels: vec![],
            planned_runs: 2,
            runs: vec![],
        };
        let path = s.save(&dir).unwrap();
        assert_eq!(path, dir.join(".ab/tok.json"));
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["status"], "build-failed");
        assert_eq!(back["b"]["project_commit"], "bbbbbbb");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
