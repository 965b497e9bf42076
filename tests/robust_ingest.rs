//! Ingest and read commands on hostile trees and shared archives, through the real binary:
//! special files named like sidecars, unreadable files and directories, non-UTF-8 names,
//! symlink loops, read-only and foreign-owned warehouses, concurrent writers, and Ctrl-C
//! during `--watch`'s first ingest.
//!
//! Permission cases need a user the permissions apply to: as root (CI) the command runs as
//! `nobody` (uid/gid 65534, no supplementary groups) on a tree `nobody` owns; as any other
//! user it runs as that user. Read-only mounts need root and print `skipped: needs root`
//! otherwise.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Run, SidecarSpec, TestDir, sidecar_json};

const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Wait for `child` at most `limit`; kill it and fail the test if it is still running.
fn finish_within(mut child: Child, limit: Duration, what: &str) -> Run {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = Run::from(child.wait_with_output().unwrap());
            panic!("{what} still running after {limit:?}; stderr:\n{}", out.stderr);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Run::from(child.wait_with_output().unwrap())
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn cargo-ktstr")
}

/// A test dir whose runs root an unprivileged user owns; commands from [`unprivileged`] run
/// as that user.
fn unprivileged_dir() -> TestDir {
    let t = TestDir::new();
    fs::create_dir_all(t.root()).unwrap();
    if is_root() {
        fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }
    t
}

/// Hand the whole test dir to `nobody` (as root; otherwise it is already ours).
fn give_to_nobody(t: &TestDir) {
    if is_root() {
        chown_tree(t.path(), NOBODY);
    }
}

fn chown_tree(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
    if fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid);
        }
    }
}

/// `cargo-ktstr ARGS…` as an unprivileged user (see the module doc).
fn unprivileged(t: &TestDir, args: &[&str]) -> Run {
    let mut cmd = t.cmd();
    cmd.args(args);
    if is_root() {
        // std drops the supplementary groups when root sets a uid.
        cmd.uid(NOBODY).gid(NOBODY);
    }
    Run::from(cmd.output().expect("spawn cargo-ktstr"))
}

fn count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo {path:?}");
}

#[test]
fn a_fifo_named_like_a_sidecar_is_skipped_with_its_kind_and_blocks_nothing() {
    let t = TestDir::new();
    t.sidecar("run", "good", 1);
    let fifo = t.root().join("run/x.ktstr.json");
    mkfifo(&fifo);
    let limit = Duration::from_secs(60);
    let ingest = finish_within(spawn(t.cmd().args(["stats", "ingest"])), limit, "ingest");
    ingest.expect_code(0);
    assert!(ingest.stdout.contains("1 new sidecar,"), "{}", ingest.stdout);
    assert!(!ingest.stdout.contains("no problems"), "{}", ingest.stdout);
    let line = format!("ktstr: skipping {}: is a FIFO", fifo.display());
    assert!(ingest.stderr.contains(&line), "{}", ingest.stderr);
    for args in [
        &["stats", "list-values"][..],
        &["stats", "sql", "--csv", "SELECT count(*) AS n FROM sidecar"][..],
    ] {
        let run = finish_within(spawn(t.cmd().args(args)), limit, "read command");
        run.expect_code(0);
        assert!(run.stderr.contains("is a FIFO"), "{args:?}: {}", run.stderr);
    }
    assert_eq!(count(&t.default_db(), "SELECT count(*) FROM source_file"), 1);
}

#[test]
fn a_file_unreadable_for_a_while_is_read_once_it_is_readable() {
    let t = unprivileged_dir();
    t.sidecar("run", "a", 1);
    let locked = t.sidecar("run", "b", 2);
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    fs::File::options().write(true).open(&locked).unwrap().set_modified(an_hour_ago).unwrap();
    give_to_nobody(&t);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let first = unprivileged(&t, &["stats", "ingest"]);
    first.expect_code(0);
    assert!(first.stdout.contains("1 new sidecar,"), "{}", first.stdout);
    assert!(first.stderr.contains("Permission denied"), "{}", first.stderr);
    assert!(first.stderr.contains("(will retry on the next ingest)"), "{}", first.stderr);

    // chmod changes neither size nor mtime: the file is still read again.
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
    let second = unprivileged(&t, &["stats", "ingest"]);
    second.expect_code(0);
    assert!(second.stdout.contains("1 new sidecar,"), "{}", second.stdout);
    assert!(second.stdout.contains("no problems"), "{}", second.stdout);
    assert!(!second.stdout.contains("still unreadable"), "{}", second.stdout);
}

#[test]
fn entries_the_walk_cannot_take_are_counted_and_reported() {
    use std::os::unix::ffi::OsStrExt;
    let t = unprivileged_dir();
    t.sidecar("r1", "a", 1);
    t.sidecar("r2", "b", 2);
    give_to_nobody(&t);
    let first = unprivileged(&t, &["stats", "ingest", "--json"]);
    first.expect_code(0);

    let r2 = t.root().join("r2");
    fs::set_permissions(&r2, fs::Permissions::from_mode(0o000)).unwrap();
    let odd = t.root().join("r1").join(std::ffi::OsStr::from_bytes(b"bad\xff-1.ktstr.json"));
    fs::write(&odd, "{}").unwrap();
    give_to_nobody(&t);
    let run = unprivileged(&t, &["stats", "ingest"]);
    fs::set_permissions(&r2, fs::Permissions::from_mode(0o755)).unwrap();
    run.expect_code(0);
    assert!(!run.stdout.contains("no problems"), "{}", run.stdout);
    assert!(run.stdout.contains("2 problems"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("gone from disk"),
        "an unreadable run is not gone: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains(&format!("skipping {}: cannot list", r2.display())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not valid UTF-8"), "{}", run.stderr);
    let present = "SELECT count(*) FROM source_file WHERE present";
    assert_eq!(count(&t.default_db(), present), 2, "r2's file is still recorded as present");
}

#[test]
fn a_run_directory_symlinked_back_into_the_root_is_not_walked_twice() {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    std::os::unix::fs::symlink(t.root(), t.root().join("loop")).unwrap();
    std::os::unix::fs::symlink(t.root().join("run"), t.root().join("latest")).unwrap();
    let run = t.run(&["stats", "ingest"]);
    run.expect_code(0);
    assert!(run.stdout.contains("1 sidecar file seen, 1 new sidecar"), "{}", run.stdout);
    assert!(run.stderr.contains("leads back inside the runs root"), "{}", run.stderr);
    assert_eq!(count(&t.default_db(), "SELECT count(*) FROM source_file"), 1);
}

#[test]
fn a_dir_that_is_a_file_is_named_as_such_and_junk_db_leaves_no_lock_file() {
    let t = TestDir::new();
    let file = t.sidecar("run", "a", 1);
    let dir = file.to_str().unwrap();
    for args in
        [&["stats", "ingest", "--dir", dir][..], &["stats", "sql", "--dir", dir, "SELECT 1"][..]]
    {
        let run = t.run(args);
        run.expect_code(2);
        assert!(run.stderr.contains("is not a directory"), "{args:?}: {}", run.stderr);
    }

    let junk = t.path().join("notes.db");
    fs::write(&junk, "not a database at all, just some text long enough\n".repeat(50)).unwrap();
    let run = t.run(&["stats", "ingest", "--db", junk.to_str().unwrap()]);
    run.expect_code(2);
    let leftovers: Vec<PathBuf> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("notes.db."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// `total` sidecars of distinct content spread over `runs` run directories.
fn write_distinct_sidecars(t: &TestDir, total: u64, runs: u64) {
    for n in 0..total {
        let body = sidecar_json(&SidecarSpec { iterations: n, ..Default::default() });
        t.write(&format!("run-{}/t-{n}.ktstr.json", n % runs), &body);
    }
}

#[test]
fn six_concurrent_ingests_into_one_db_all_finish_without_duplicates() {
    let t = TestDir::new();
    let total = 4000;
    write_distinct_sidecars(&t, total, 8);
    let db = t.path().join("shared.sqlite");
    let db_arg = db.to_str().unwrap();
    let children: Vec<Child> =
        (0..6).map(|_| spawn(t.cmd().args(["stats", "ingest", "--db", db_arg]))).collect();
    for child in children {
        let out = finish_within(child, Duration::from_secs(600), "concurrent ingest");
        out.expect_code(0);
        assert!(!out.stderr.contains("locked"), "{}", out.stderr);
    }
    assert_eq!(count(&db, "SELECT count(*) FROM ingested_sidecar"), total as i64);
    // Every file recorded once, by the ingest that read it first, not as a copy of itself.
    let ingested = "SELECT count(*) FROM source_file WHERE status = 'ingested'";
    assert_eq!(count(&db, ingested), total as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM source_file"), total as i64);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[test]
fn sigint_during_the_first_watch_ingest_stops_at_a_batch_boundary() {
    let t = TestDir::new();
    let total = 8000;
    write_distinct_sidecars(&t, total, 4);
    let child = spawn(t.cmd().args(["stats", "ingest", "--watch"]));
    let db = t.default_db();
    let committed = || {
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM source_file", [], |r| r.get(0)))
            .unwrap_or(0i64)
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while committed() == 0 {
        assert!(Instant::now() < deadline, "no batch committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = finish_within(child, Duration::from_secs(120), "interrupted watch");
    out.expect_code(0);
    let kept = committed();
    assert!(kept < total as i64, "the whole first ingest ran despite SIGINT ({kept} files)");
    assert!(out.stdout.contains("interrupted"), "{}", out.stdout);
    let rest = t.run(&["stats", "ingest"]);
    rest.expect_code(0);
    assert_eq!(committed(), total as i64);
    assert_eq!(count(&db, "SELECT count(*) FROM ingested_sidecar"), total as i64);
}

/// A read-only bind mount of `source` at `target`, unmounted on drop.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(source: &Path, target: &Path) -> ReadOnlyMount {
        fs::create_dir_all(target).unwrap();
        let mount = |args: &[&str]| {
            let ok = Command::new("mount").args(args).status().unwrap().success();
            assert!(ok, "mount {args:?}");
        };
        mount(&["--bind", source.to_str().unwrap(), target.to_str().unwrap()]);
        let guard = ReadOnlyMount(target.to_path_buf());
        mount(&["-o", "remount,bind,ro", target.to_str().unwrap()]);
        guard
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

const SKIP_LINE: &str = "skipped the ingest step: the warehouse";

#[test]
fn a_warehouse_on_a_read_only_mount_is_read_and_the_skip_said_once() {
    if !is_root() {
        eprintln!("skipped: needs root for a read-only bind mount");
        return;
    }
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    t.run(&["stats", "ingest"]).expect_code(0);
    // As the last ingest left it (-wal and -shm kept), and a bare copy without them.
    let bare = t.path().join("bare");
    fs::create_dir_all(&bare).unwrap();
    fs::copy(t.default_db(), bare.join("warehouse.sqlite")).unwrap();
    let ro = ReadOnlyMount::new(&t.root(), &t.path().join("ro"));
    let ro_bare = ReadOnlyMount::new(&bare, &t.path().join("ro-bare"));
    for dir in [&ro.0, &ro_bare.0] {
        let dir = dir.to_str().unwrap();
        let query = "SELECT count(*) AS n FROM sidecar";
        let quiet = t.run(&["stats", "sql", "--csv", "--no-ingest", "--dir", dir, query]);
        quiet.expect_code(0);
        assert_eq!(quiet.stdout, "n\r\n1\r\n", "{dir}");
        assert!(quiet.stderr.is_empty(), "{}", quiet.stderr);
        for args in [
            &["stats", "sql", "--csv", "--dir", dir, query][..],
            &["stats", "list-values", "--dir", dir][..],
        ] {
            let run = t.run(args);
            run.expect_code(0);
            assert_eq!(run.stderr.matches(SKIP_LINE).count(), 1, "{args:?}: {}", run.stderr);
            assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        }
    }
}

#[test]
fn another_users_warehouse_is_read_without_writing_it() {
    if !is_root() {
        eprintln!("skipped: needs root to read a warehouse as another user");
        return;
    }
    let t = unprivileged_dir();
    t.sidecar("run", "a", 1);
    t.run(&["stats", "ingest"]).expect_code(0);
    let before = fs::read(t.default_db()).unwrap();
    let query = "SELECT count(*) AS n FROM sidecar";
    let quiet = unprivileged(&t, &["stats", "sql", "--csv", "--no-ingest", query]);
    quiet.expect_code(0);
    assert_eq!(quiet.stdout, "n\r\n1\r\n");
    let run = unprivileged(&t, &["stats", "sql", "--csv", query]);
    run.expect_code(0);
    assert_eq!(run.stdout, "n\r\n1\r\n");
    assert_eq!(run.stderr.matches(SKIP_LINE).count(), 1, "{}", run.stderr);
    assert!(!run.stderr.contains("--no-ingest"), "no hint that would not help: {}", run.stderr);
    assert_eq!(fs::read(t.default_db()).unwrap(), before);
}
