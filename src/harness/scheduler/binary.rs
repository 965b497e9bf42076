//! Finding a declared scheduler's binary: a path checked as given, a name looked up on `$PATH`
//! then in ktstr's scheduler cache, or a workspace package's binary built with cargo.
//!
//! Every failure is one line saying which scheduler, what is wrong and what to do. Running the
//! binary is [`super::lifecycle`]'s job.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::decl::{Scheduler, SchedulerBinary};

/// Where `scripts/deps/20-scx-bpfland.sh` installs schedulers: `<cache>/scx/bin`, the cache
/// being `$KTSTR_CACHE_DIR`, else `$XDG_CACHE_HOME/ktstr`, else `~/.cache/ktstr`.
pub fn scheduler_cache_bin(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    let cache = if let Some(dir) = non_empty("KTSTR_CACHE_DIR") {
        PathBuf::from(dir)
    } else if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        Path::new(&xdg).join("ktstr")
    } else {
        Path::new(&non_empty("HOME")?).join(".cache/ktstr")
    };
    Some(cache.join("scx/bin"))
}

/// The binary to run for `sched`, built first when it is a workspace package's.
pub fn resolve(sched: &Scheduler) -> Result<PathBuf, String> {
    let env = |k: &str| std::env::var(k).ok();
    match sched.binary {
        SchedulerBinary::Path(p) => check_executable(sched.name, Path::new(p)),
        SchedulerBinary::OnPath(name) => find_on_path(sched.name, name, &env),
        SchedulerBinary::Package { package, bin } => build_package(sched.name, package, bin),
    }
}

/// A regular file with an execute bit, or why not.
pub fn check_executable(sched: &str, path: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!("scheduler {sched}: binary {} cannot be used ({e}); fix its path", path.display())
    })?;
    if !meta.is_file() {
        return Err(format!("scheduler {sched}: {} is not a file; fix its path", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "scheduler {sched}: binary {} is not executable; chmod +x it",
            path.display()
        ));
    }
    Ok(path.to_path_buf())
}

/// `name` in a `$PATH` directory, else in the scheduler cache.
pub fn find_on_path(
    sched: &str,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, String> {
    let path_var = env("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path_var).collect();
    dirs.extend(scheduler_cache_bin(env));
    let found = dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
    match found {
        Some(p) => check_executable(sched, &p),
        None => Err(format!(
            "scheduler {sched}: {name} is not on $PATH nor in {}; install it (for scx_bpfland: \
             scripts/deps/20-scx-bpfland.sh) or declare its path",
            dirs.last().map_or("the scheduler cache".into(), |d| d.display().to_string())
        )),
    }
}

/// Packages already built by this process: cargo runs once per (package, bin).
static BUILT: Mutex<Option<HashMap<(String, String), PathBuf>>> = Mutex::new(None);

/// `cargo build -p <package> --bin <bin>` in the current workspace; the binary cargo reports.
fn build_package(sched: &str, package: &str, bin: &str) -> Result<PathBuf, String> {
    let key = (package.to_string(), bin.to_string());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(&key) {
        return Ok(p.clone());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(&cargo)
        .args(["build", "--quiet", "--message-format=json-render-diagnostics"])
        .args(["-p", package, "--bin", bin])
        .output()
        .map_err(|e| format!("scheduler {sched}: cannot run {cargo}: {e}"))?;
    let command = format!("cargo build -p {package} --bin {bin}");
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "scheduler {sched}: `{command}` failed: {}",
            cargo_error(&stderr).unwrap_or_else(|| format!("exit {}", out.status))
        ));
    }
    let exe = built_executable(&String::from_utf8_lossy(&out.stdout), bin).ok_or_else(|| {
        format!("scheduler {sched}: `{command}` succeeded but reported no binary named {bin}")
    })?;
    let exe = check_executable(sched, &exe)?;
    built.get_or_insert_with(HashMap::new).insert(key, exe.clone());
    Ok(exe)
}

/// Cargo's error lines, joined: what a failed build says, in one line.
fn cargo_error(stderr: &str) -> Option<String> {
    let errors: Vec<&str> =
        stderr.lines().map(str::trim).filter(|l| l.starts_with("error")).take(3).collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// The `executable` of the `compiler-artifact` message for bin target `bin`.
fn built_executable(json_lines: &str, bin: &str) -> Option<PathBuf> {
    json_lines.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).find_map(
        |m| {
            let is_bin = m["reason"] == "compiler-artifact"
                && m["target"]["name"] == bin
                && m["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin"));
            is_bin.then(|| m["executable"].as_str().map(PathBuf::from)).flatten()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    fn write_file(path: &Path, mode: u32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_missing_or_non_executable_path_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = check_executable("s", &missing).unwrap_err();
        assert!(
            err.starts_with("scheduler s: binary ") && err.ends_with("; fix its path"),
            "{err}"
        );
        let plain = dir.path().join("plain");
        write_file(&plain, 0o644);
        let err = check_executable("s", &plain).unwrap_err();
        assert!(err.ends_with("is not executable; chmod +x it"), "{err}");
        write_file(&plain, 0o755);
        assert_eq!(check_executable("s", &plain).unwrap(), plain);
    }

    #[test]
    fn a_name_is_found_on_path_first_then_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let on_path = dir.path().join("bin/scx_x");
        let cached = dir.path().join("cache/scx/bin/scx_x");
        write_file(&cached, 0o755);
        let env = env_of(&[
            ("PATH", dir.path().join("bin").display().to_string()),
            ("KTSTR_CACHE_DIR", dir.path().join("cache").display().to_string()),
        ]);
        assert_eq!(find_on_path("x", "scx_x", &env).unwrap(), cached);
        write_file(&on_path, 0o755);
        assert_eq!(find_on_path("x", "scx_x", &env).unwrap(), on_path);
        let err = find_on_path("x", "scx_none", &env).unwrap_err();
        assert!(err.contains("scx_none is not on $PATH nor in ") && err.contains("install it"));
    }

    #[test]
    fn the_cache_follows_ktstr_cache_dir_then_xdg_then_home() {
        let at = |pairs: &[(&str, String)]| scheduler_cache_bin(&env_of(pairs));
        assert_eq!(at(&[("KTSTR_CACHE_DIR", "/c".into())]), Some("/c/scx/bin".into()));
        assert_eq!(
            at(&[("XDG_CACHE_HOME", "/x".into()), ("HOME", "/h".into())]),
            Some("/x/ktstr/scx/bin".into())
        );
        assert_eq!(at(&[("HOME", "/h".into())]), Some("/h/.cache/ktstr/scx/bin".into()));
        assert_eq!(at(&[]), None);
    }

    #[test]
    fn cargo_output_gives_the_bin_artifact_and_the_error_lines() {
        let lines = r#"{"reason":"compiler-artifact","target":{"name":"lib","kind":["lib"]},"executable":null}
{"reason":"compiler-artifact","target":{"name":"my_sched","kind":["bin"]},"executable":"/t/debug/my_sched"}
{"reason":"build-finished","success":true}"#;
        assert_eq!(built_executable(lines, "my_sched"), Some("/t/debug/my_sched".into()));
        assert_eq!(built_executable(lines, "other"), None);
        let stderr = "   Compiling x\nerror[E0425]: cannot find value `y`\n  --> src/main.rs\nerror: could not compile `x`\n";
        assert_eq!(
            cargo_error(stderr).unwrap(),
            "error[E0425]: cannot find value `y`; error: could not compile `x`"
        );
    }
}
