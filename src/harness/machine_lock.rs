//! The machine-wide scenario lock: one measured scenario (a host-backend test body, a VM
//! boot) at a time per machine, whoever started it, so measurements never compete for CPUs
//! even when a crate runs its tests in parallel (nextest's default, `cargo test` threads).
//!
//! [`MachineLock::acquire`] takes an exclusive `flock(2)` on `ktstr-machine.lock` in
//! `KTSTR_LOCK_DIR` (default `/tmp`, shared by every user of the machine) and returns a
//! [`MachineLockGuard`]; dropping the guard releases it. The wait is bounded
//! (`KTSTR_LOCK_TIMEOUT_S`, default [`DEFAULT_TIMEOUT`]) and reported: a waiter prints one
//! line naming the holder's pid and what it is running, and a timeout is an error naming the
//! holder. The holder writes `{pid} {what}` into the file so waiters can say what they wait for.
//!
//! Why it is safe against crashes: the kernel drops a flock when the last descriptor of its
//! open file goes away, so a killed holder never blocks anyone. The descriptor is opened
//! `O_CLOEXEC`, so programs the holder starts (QEMU, a scheduler) never inherit it; forked
//! workers do share it while the lock is held, so release is an explicit `LOCK_UN`, which
//! frees the lock for every sharer at once. flock locks belong to an open file, not to a
//! process, so two threads of one process exclude each other like two processes do; taking
//! the lock again on a thread that already holds it is an error instead of a deadlock.
//!
//! What it does not own: which code takes the lock (the host runner takes it around each
//! body, see [`super::runner`]); reserving particular CPUs (everyone waits for everyone).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// The lock file's name inside the lock directory.
pub const LOCK_FILE: &str = "ktstr-machine.lock";
/// How long [`MachineLock::acquire`] waits unless `KTSTR_LOCK_TIMEOUT_S` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Longest pause between two attempts while waiting.
const MAX_POLL: Duration = Duration::from_millis(20);

/// The threads that took a [`MachineLockGuard`] still alive (taking another would deadlock).
static HOLDING_THREADS: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());

fn holding_threads() -> std::sync::MutexGuard<'static, Vec<ThreadId>> {
    HOLDING_THREADS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Who holds the lock, as far as can be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    /// What the holder said it runs (e.g. `spin_steady [base]`), when it said so.
    pub what: Option<String>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.pid, &self.what) {
            (Some(pid), Some(what)) => write!(f, "pid {pid} ({what})"),
            (Some(pid), None) => write!(f, "pid {pid}"),
            (None, _) => write!(f, "another process"),
        }
    }
}

/// Why the lock could not be taken: one line naming the file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum MachineLockError {
    #[error(
        "cannot open the machine lock {path}: {source}; set KTSTR_LOCK_DIR to a writable directory"
    )]
    Open { path: PathBuf, source: std::io::Error },
    #[error(
        "waited {waited_s:.0}s for the machine lock {path}, still held by {holder}; let it \
         finish or raise KTSTR_LOCK_TIMEOUT_S"
    )]
    TimedOut { path: PathBuf, waited_s: f64, holder: Holder },
    #[error("this thread already holds the machine lock {path}; taking it again would deadlock")]
    Reentrant { path: PathBuf },
}

/// The machine-wide lock; see the [module docs](self).
#[derive(Debug)]
pub struct MachineLock;

impl MachineLock {
    /// The lock file: `$KTSTR_LOCK_DIR/ktstr-machine.lock`, `/tmp/ktstr-machine.lock` by default.
    pub fn path() -> PathBuf {
        let dir = std::env::var_os("KTSTR_LOCK_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
        dir.join(LOCK_FILE)
    }

    /// The wait bound: `KTSTR_LOCK_TIMEOUT_S` seconds, else [`DEFAULT_TIMEOUT`].
    pub fn timeout() -> Duration {
        std::env::var("KTSTR_LOCK_TIMEOUT_S")
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
    }

    /// Take the lock for `what` (a test name, `vm boot 2n2l2c1t`, ...), waiting up to
    /// [`MachineLock::timeout`]. While it waits, one line on stderr names the holder.
    pub fn acquire(what: &str) -> Result<MachineLockGuard, MachineLockError> {
        Self::acquire_at(&Self::path(), what, Self::timeout(), |holder, path| {
            eprintln!("ktstr: waiting for the machine lock {}, held by {holder}", path.display());
        })
    }

    /// [`MachineLock::acquire`] on an explicit file and bound; `on_wait` is called once, with
    /// the holder, if the lock is busy at the first attempt.
    pub fn acquire_at(
        path: &Path,
        what: &str,
        timeout: Duration,
        on_wait: impl FnOnce(&Holder, &Path),
    ) -> Result<MachineLockGuard, MachineLockError> {
        let me = std::thread::current().id();
        if holding_threads().contains(&me) {
            return Err(MachineLockError::Reentrant { path: path.to_path_buf() });
        }
        let file = open(path)
            .map_err(|source| MachineLockError::Open { path: path.to_path_buf(), source })?;
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        let mut pause = Duration::from_millis(1);
        while !try_lock(&file)
            .map_err(|source| MachineLockError::Open { path: path.to_path_buf(), source })?
        {
            if let Some(report) = on_wait.take() {
                report(&holder_of(&file), path);
            }
            if started.elapsed() >= timeout {
                return Err(MachineLockError::TimedOut {
                    path: path.to_path_buf(),
                    waited_s: started.elapsed().as_secs_f64(),
                    holder: holder_of(&file),
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(MAX_POLL);
        }
        let mut guard = MachineLockGuard {
            file,
            path: path.to_path_buf(),
            waited: started.elapsed(),
            taken_by: me,
        };
        guard.announce(what);
        holding_threads().push(me);
        Ok(guard)
    }

    /// Who holds the lock at `path` right now; `None` when nobody does (or it cannot be read).
    pub fn holder(path: &Path) -> Option<Holder> {
        let file = open(path).ok()?;
        if try_lock(&file).ok()? {
            // SAFETY: flock on an fd we own; releases the probe's own lock.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return None;
        }
        Some(holder_of(&file))
    }
}

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct MachineLockGuard {
    file: File,
    path: PathBuf,
    waited: Duration,
    taken_by: ThreadId,
}

impl MachineLockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long taking the lock waited for other holders.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Write `{pid} {what}` for waiters. Best effort: a lock file of another user is opened
    /// read-only (flock works on it all the same), and then waiters only learn the pid.
    fn announce(&mut self, what: &str) {
        let line = format!("{} {}\n", std::process::id(), what.replace('\n', " "));
        let _ = self.file.set_len(0).and_then(|()| {
            self.file.rewind()?;
            self.file.write_all(line.as_bytes())
        });
    }
}

impl Drop for MachineLockGuard {
    fn drop(&mut self) {
        // Explicit, so forked workers still sharing the descriptor do not keep it locked.
        // SAFETY: flock on the fd this guard owns.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
        let mut threads = holding_threads();
        if let Some(i) = threads.iter().position(|t| *t == self.taken_by) {
            threads.swap_remove(i);
        }
    }
}

/// Open (creating if needed) the lock file, read-write when allowed, else read-only.
/// `O_CLOEXEC` is std's default for every open.
fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Never truncate here: the file says who holds the lock, and a waiter must not wipe it.
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o666)
        .open(path);
    match rw {
        Ok(f) => {
            // Let other users open it read-write too, whatever this process's umask.
            let _ = f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => File::open(path),
        Err(e) => Err(e),
    }
}

/// One non-blocking attempt: `Ok(true)` when the lock is now ours.
fn try_lock(file: &File) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

/// The holder of `file`'s lock: the pid from `/proc/locks` (the kernel's word), and what the
/// file says it runs when the file was written by that same pid.
fn holder_of(file: &File) -> Holder {
    let mut text = String::new();
    let mut reader = file;
    let _ = reader.rewind().and_then(|()| reader.read_to_string(&mut text));
    let (file_pid, what) = match text.trim_end().split_once(' ') {
        Some((pid, what)) => (pid.parse::<u32>().ok(), Some(what.to_string())),
        None => (text.trim().parse::<u32>().ok(), None),
    };
    let kernel_pid = file.metadata().ok().and_then(|m| {
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        flock_holder(&locks, m.dev(), m.ino())
    });
    match kernel_pid {
        Some(pid) => Holder { pid: Some(pid), what: what.filter(|_| file_pid == Some(pid)) },
        None => Holder { pid: file_pid, what },
    }
}

/// The pid holding a FLOCK on (`dev`, `ino`) in `/proc/locks` text, whose lines read
/// `1: FLOCK  ADVISORY  WRITE 4242 00:1f:1234 0 EOF` (blocked waiters have a `->` marker).
fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let want = format!("{:02x}:{:02x}:{ino}", libc::major(dev), libc::minor(dev));
    locks.lines().filter(|l| !l.contains("->")).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&"FLOCK") && f.get(5) == Some(&want.as_str()))
            .then(|| f.get(4)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn quiet(_: &Holder, _: &Path) {}

    #[test]
    fn a_second_taker_waits_for_the_first_and_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let first =
            MachineLock::acquire_at(&path, "first_test [base]", DEFAULT_TIMEOUT, quiet).unwrap();
        let me = std::process::id();
        let holder = MachineLock::holder(&path).expect("held");
        assert_eq!(holder, Holder { pid: Some(me), what: Some("first_test [base]".into()) });

        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let waiter = std::thread::spawn(move || {
            let g = MachineLock::acquire_at(&p, "second", DEFAULT_TIMEOUT, |h, _| {
                tx.send(h.clone()).unwrap();
            })
            .unwrap();
            let held_at = Instant::now();
            drop(g);
            held_at
        });
        let seen = rx.recv_timeout(Duration::from_secs(10)).expect("the waiter reports");
        assert_eq!(seen.to_string(), format!("pid {me} (first_test [base])"));
        std::thread::sleep(Duration::from_millis(100));
        assert!(!waiter.is_finished(), "the second taker did not wait");
        let released_at = Instant::now();
        drop(first);
        let held_at = waiter.join().unwrap();
        assert!(held_at >= released_at);
        assert_eq!(MachineLock::holder(&path), None, "released on drop");
    }

    #[test]
    fn a_wait_past_the_bound_is_an_error_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let _held = MachineLock::acquire_at(&path, "slow_test", DEFAULT_TIMEOUT, quiet).unwrap();
        let p = path.clone();
        let err = std::thread::spawn(move || {
            MachineLock::acquire_at(&p, "x", Duration::from_millis(100), quiet).unwrap_err()
        })
        .join()
        .unwrap();
        let msg = err.to_string();
        assert!(msg.starts_with("waited 0s for the machine lock"), "{msg}");
        assert!(msg.contains(&format!("still held by pid {} (slow_test)", std::process::id())));
        assert!(msg.contains("KTSTR_LOCK_TIMEOUT_S"), "{msg}");
    }

    #[test]
    fn taking_it_twice_on_one_thread_is_an_error_not_a_deadlock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        let g = MachineLock::acquire_at(&path, "a", DEFAULT_TIMEOUT, quiet).unwrap();
        let err = MachineLock::acquire_at(&path, "b", DEFAULT_TIMEOUT, quiet).unwrap_err();
        assert!(matches!(err, MachineLockError::Reentrant { .. }), "{err}");
        drop(g);
        drop(MachineLock::acquire_at(&path, "c", DEFAULT_TIMEOUT, quiet).unwrap());
    }

    #[test]
    fn the_descriptor_is_close_on_exec() {
        let dir = tempfile::tempdir().unwrap();
        let g = MachineLock::acquire_at(&dir.path().join(LOCK_FILE), "a", DEFAULT_TIMEOUT, quiet)
            .unwrap();
        // SAFETY: fcntl F_GETFD on an fd the guard owns.
        let flags = unsafe { libc::fcntl(g.file.as_raw_fd(), libc::F_GETFD) };
        assert!(flags >= 0 && flags & libc::FD_CLOEXEC != 0, "{flags}");
    }

    #[test]
    fn proc_locks_lines_name_the_flock_holder() {
        let locks = "1: POSIX  ADVISORY  WRITE 11 00:1f:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 00:1f:77 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 5151 00:1f:77 0 EOF\n";
        let dev = libc::makedev(0, 0x1f);
        assert_eq!(flock_holder(locks, dev, 77), Some(4242));
        assert_eq!(flock_holder(locks, dev, 78), None);
    }
}
