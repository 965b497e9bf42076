//! Ctrl-C for the commands that run long (`test`, `stats ingest --watch`): one signal handler
//! that records the request and, while a child is registered, passes the signal on to it.
//!
//! What to do about an interrupt is the caller's business: loops poll [`stop_flag`] and wind
//! down at their next step, so work already done (sidecars written, a batch ingested) is
//! kept. Nothing here exits the process.
//!
//! # Why `sigaction`
//! `signal(2)` leaves the semantics to the C library: System V behaviour resets the handler
//! after one delivery (a second Ctrl-C kills us mid-cleanup) and does not restart interrupted
//! system calls. `sigaction` states them: the handler stays installed, and `SA_RESTART`
//! restarts reads and waits the signal interrupted, so `wait(2)` on a child survives it.
//!
//! # Why the handler does so little
//! A signal can arrive while the interrupted thread holds any lock (the allocator's, stdout's),
//! so the handler may only do what is async-signal-safe: lock-free atomic loads and stores and
//! `kill(2)`. It allocates nothing, prints nothing, and saves and restores `errno`, which
//! `kill` may set under the interrupted code's feet.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set by the handler; never cleared.
static STOP: AtomicBool = AtomicBool::new(false);
/// The pid a received signal is forwarded to; 0 = none.
static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot, valid for the thread's life.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above; reading and writing our own thread's errno is async-signal-safe.
    let saved = unsafe { *errno };
    STOP.store(true, Ordering::SeqCst);
    let child = FORWARD_TO.load(Ordering::SeqCst);
    if child > 0 {
        // SAFETY: kill is async-signal-safe; a pid is registered only while its child runs.
        unsafe { libc::kill(child, signal) };
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// Install the handler for each of `signals` (e.g. `SIGINT`, `SIGTERM`).
pub fn install(signals: &[libc::c_int]) -> io::Result<()> {
    for &signal in signals {
        // SAFETY: a zeroed sigaction is a valid starting value; the handler is a plain
        // one-argument function (no SA_SIGINFO) that only does async-signal-safe work.
        let installed = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if installed != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether an installed signal has arrived (or a caller set the flag).
pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The flag the handler sets, for a loop that polls it. A caller may also set it to stop
/// that same loop for a reason of its own.
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// Forward each signal received from now on to `pid` (the running child), or to nobody.
pub fn forward_to(pid: Option<u32>) {
    // Invariant: a live child's pid fits in pid_t.
    FORWARD_TO.store(pid.map_or(0, |p| p as i32), Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    use super::*;

    /// One test, since the flag is process-wide and never cleared. SIGUSR1 stands in for
    /// SIGINT so a test runner's own Ctrl-C handling is not involved.
    #[test]
    fn a_signal_sets_the_flag_and_reaches_the_registered_child() {
        install(&[libc::SIGUSR1]).unwrap();
        assert!(!requested());
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        forward_to(Some(child.id()));
        // SAFETY: raising a signal whose handler was installed above.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        forward_to(None);
        assert!(requested(), "the handler ran and set the flag");
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGUSR1), "the child got the same signal");
        // SAFETY: as above; with no child registered only the flag is touched.
        assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
        assert!(stop_flag().load(Ordering::SeqCst));
    }
}
