//! Shared helpers for the integration tests: a temporary runs root with sidecar writers, and a
//! builder for the real `cargo-ktstr` binary with a hermetic environment.
//!
//! Every test owns a [`TestDir`]; nothing reads the machine's own `target/` or `KTSTR_*`
//! variables, because [`TestDir::cmd`] clears them and points `CARGO_TARGET_DIR` at the temp
//! dir. Assertions on the output are left to the tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ktstr::sidecar::SidecarResult;

/// A temporary directory holding a runs root (`root()`) and anything else a test needs.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir { dir: tempfile::tempdir().expect("create a temp dir") }
    }

    /// The temp dir itself.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The default runs root the binary resolves: `$CARGO_TARGET_DIR/ktstr`.
    pub fn root(&self) -> PathBuf {
        self.path().join("target").join("ktstr")
    }

    /// The default database inside the runs root.
    pub fn default_db(&self) -> PathBuf {
        self.root().join("warehouse.sqlite")
    }

    /// Write `body` at `rel` under the runs root, creating directories; returns the path.
    pub fn write(&self, rel: &str, body: &str) -> PathBuf {
        let path = self.root().join(rel);
        fs::create_dir_all(path.parent().expect("rel has a parent")).expect("create dirs");
        fs::write(&path, body).expect("write file");
        path
    }

    /// Write a valid sidecar for `test` at `{run}/{test}-{n}.ktstr.json`.
    pub fn sidecar(&self, run: &str, test: &str, n: u64) -> PathBuf {
        let body = sidecar_json(&SidecarSpec { test, iterations: 1000 + n, ..Default::default() });
        self.write(&format!("{run}/{test}-{n}.ktstr.json"), &body)
    }

    /// A `cargo-ktstr` command running in the temp dir with a clean, hermetic environment.
    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-ktstr"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("KTSTR_") {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(self.path())
            .env("CARGO_TARGET_DIR", self.path().join("target"))
            .env("RUST_BACKTRACE", "0")
            .env("NO_COLOR", "1");
        cmd
    }

    /// Run `cargo-ktstr ARGS…` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).output().expect("spawn cargo-ktstr"))
    }
}

impl Default for TestDir {
    fn default() -> Self {
        TestDir::new()
    }
}

/// A finished command: exit code and decoded output.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Panic with both streams unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, Some(code), "stdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        self
    }
}

/// The fields of a test sidecar that tests usually vary.
#[derive(Debug, Clone)]
pub struct SidecarSpec<'a> {
    pub test: &'a str,
    pub scheduler: &'a str,
    pub topology: &'a str,
    pub project_commit: &'a str,
    pub kernel_version: &'a str,
    pub flags: &'a [&'a str],
    pub iterations: u64,
    pub spread: f64,
}

impl Default for SidecarSpec<'_> {
    fn default() -> Self {
        SidecarSpec {
            test: "cgroup_steady",
            scheduler: "scx_rusty",
            topology: "1n2l4c1t",
            project_commit: "abc1234",
            kernel_version: "6.14.2",
            flags: &["llc"],
            iterations: 1000,
            spread: 3.5,
        }
    }
}

/// A complete, parseable sidecar document for `spec`.
pub fn sidecar_json(spec: &SidecarSpec<'_>) -> String {
    let mut s = SidecarResult::empty(spec.test);
    s.scheduler = spec.scheduler.into();
    s.topology = spec.topology.into();
    s.project_commit = Some(spec.project_commit.into());
    s.kernel_version = Some(spec.kernel_version.into());
    s.active_flags = spec.flags.iter().map(|f| f.to_string()).collect();
    s.stats.total_iterations = spec.iterations;
    s.stats.worst_spread = spec.spread;
    s.timestamp = "2026-04-27T09:15:02Z".into();
    s.run_id = "20260427T091455Z-0".into();
    s.to_json_pretty()
}

/// Run `cmd` with its stdout closed before it writes, as `| head -0` would; stdout in the
/// result is empty.
pub fn output_into_closed_pipe(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn cargo-ktstr");
    drop(child.stdout.take());
    child.wait_with_output().expect("wait for cargo-ktstr")
}

/// Run `git` in `dir` with a fixed identity (test machines may have none configured) and
/// return its trimmed stdout; panics with git's stderr when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Mark the warehouse at `db` as written by a future binary (schema version 999).
pub fn mark_newer_schema(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.execute(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (999, 'future', '', '0')",
        [],
    )
    .unwrap();
}

/// A fake `cargo` for tests that must not build anything: `{temp}/fake/cargo` running
/// `script`, next to `sidecar.json` (a valid sidecar of test `done`) for it to copy. Returns
/// the `fake` directory.
pub fn fake_cargo(t: &TestDir, script: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let fake = t.path().join("fake");
    fs::create_dir_all(&fake).unwrap();
    let spec = SidecarSpec { test: "done", ..Default::default() };
    fs::write(fake.join("sidecar.json"), sidecar_json(&spec)).unwrap();
    let cargo = fake.join("cargo");
    fs::write(&cargo, script).unwrap();
    fs::set_permissions(&cargo, fs::Permissions::from_mode(0o755)).unwrap();
    fake
}
