//! How workers synchronise: the stop request from the parent, memory shared between a parent
//! and the children it forks ([`SharedMapping`]), what one group of workers shares
//! ([`GroupShare`], [`Link`]) and the futex protocols its members run over that.
//!
//! Everything a child uses here is a system call, an atomic or memory that existed before the
//! fork; nothing allocates (see [`super`] on why that matters). The loops that use these
//! protocols are [`super::loops`]'s; forking is [`super::process`]'s.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::work_type::WorkType;
use crate::harness::measure::Meter;

/// Set by the SIGUSR1 handler inside a worker.
static STOP: AtomicBool = AtomicBool::new(false);

/// The stop request a work loop polls.
pub struct Stop(());

impl Stop {
    #[inline]
    pub fn is_set(&self) -> bool {
        STOP.load(Ordering::Relaxed)
    }

    /// Install the SIGUSR1 handler that sets the stop request, in a freshly forked worker.
    /// No `SA_RESTART`: a blocking call returns `EINTR`, so the loop sees the stop.
    pub(super) fn install() -> Stop {
        // SAFETY: sigaction with a zeroed struct naming an async-signal-safe handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigusr1 as *const () as usize;
            sa.sa_flags = 0;
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        }
        Stop(())
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// A pipe with both ends close-on-exec: `(read, write)`.
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into a 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Write all of `buf` to `fd`, retrying on `EINTR`; gives up on any other error.
fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

pub(super) fn send_byte(fd: i32) {
    write_all(fd, &[1]);
}

/// Wait until `fd` is readable and read one byte; `false` if stopped first.
pub(super) fn recv_byte(fd: i32, stop: &Stop) -> bool {
    loop {
        if stop.is_set() {
            return false;
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll/read on our own fds with valid buffers.
        unsafe {
            if libc::poll(&mut p, 1, 20) > 0 {
                let mut b = 0u8;
                let n = libc::read(fd, (&mut b as *mut u8).cast(), 1);
                return n == 1;
            }
        }
    }
}

/// A type that can live in a [`SharedMapping`].
///
/// # Safety
/// All-zero bytes must be a valid value of the type (a fresh mapping is zero-filled), and
/// every field must be safe to use from several processes at once through `&Self`: atomics,
/// or arrays and structs of atomics.
pub(super) unsafe trait SharedState: Sync {}

/// One `T` in an anonymous `MAP_SHARED` mapping, zero-filled: the process that maps it and
/// every child it forks afterwards see the same memory. Dropping it unmaps this process's
/// view only; a child keeps its own until it exits.
pub(super) struct SharedMapping<T: SharedState> {
    ptr: NonNull<T>,
    _owns: PhantomData<T>,
}

// SAFETY: the mapping is only reached through `&T`, and `T: SharedState` is `Sync`.
unsafe impl<T: SharedState> Send for SharedMapping<T> {}
// SAFETY: as above.
unsafe impl<T: SharedState> Sync for SharedMapping<T> {}

impl<T: SharedState> SharedMapping<T> {
    pub(super) fn new() -> io::Result<SharedMapping<T>> {
        // SAFETY: an anonymous shared mapping of T's size; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size_of::<T>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // mmap returns page-aligned memory, aligned enough for any T.
        let ptr = NonNull::new(p.cast::<T>()).ok_or_else(io::Error::last_os_error)?;
        Ok(SharedMapping { ptr, _owns: PhantomData })
    }
}

impl<T: SharedState> std::ops::Deref for SharedMapping<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: mapped, zero-filled (valid for T by SharedState) and unmapped only on drop.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T: SharedState> Drop for SharedMapping<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped; no reference outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), size_of::<T>()) };
    }
}

/// The state one futex pair, fan-out group or mutex group shares. Futex calls on it are not
/// `FUTEX_PRIVATE_FLAG`: the waiters are different processes.
#[repr(C)]
#[derive(Default)]
pub(super) struct GroupState {
    /// Ping-pong: whose turn it is (0 the leader's). Fan-out: the generation the messenger
    /// published. Mutex: 0 free, 1 locked, 2 locked with waiters.
    pub word: AtomicU32,
    /// Fan-out: receivers done with the current generation.
    pub acks: AtomicU32,
    /// CLOCK_MONOTONIC ns. Fan-out: when the messenger woke the receivers. Mutex: the last
    /// release that had waiters.
    pub stamp_ns: AtomicU64,
    /// Fan-out: the latest acknowledgement (only ever grows).
    pub ack_ns: AtomicU64,
}

// SAFETY: atomics only; zero is every field's starting state.
unsafe impl SharedState for GroupState {}

/// What one group of workers shares, created before its members are forked so all inherit
/// it. The parent drops it once the group is forked: each child keeps its own copies.
pub(super) enum GroupShare {
    Nothing,
    /// Two members ping-ponging over two pipes: member `i` reads `rx[i]` and writes `tx[i]`.
    Pipes {
        rx: [OwnedFd; 2],
        tx: [OwnedFd; 2],
    },
    State(SharedMapping<GroupState>),
}

/// One member's view of its [`GroupShare`].
pub(super) enum Link<'a> {
    Alone,
    Pipes {
        rx: BorrowedFd<'a>,
        tx: BorrowedFd<'a>,
        leader: bool,
    },
    /// Member `index` of a group sharing `state` (index 0 leads the ping-pong, is the
    /// fan-out messenger).
    State {
        state: &'a GroupState,
        index: usize,
    },
}

impl GroupShare {
    pub(super) fn new(work_type: WorkType) -> io::Result<GroupShare> {
        Ok(match work_type {
            WorkType::PipeIo { .. } | WorkType::CachePipe { .. } => {
                let (a_rx, b_tx) = pipe()?;
                let (b_rx, a_tx) = pipe()?;
                GroupShare::Pipes { rx: [a_rx, b_rx], tx: [a_tx, b_tx] }
            }
            WorkType::FutexPingPong { .. }
            | WorkType::FutexFanOut { .. }
            | WorkType::FanOutCompute { .. }
            | WorkType::MutexContention { .. } => GroupShare::State(SharedMapping::new()?),
            _ => GroupShare::Nothing,
        })
    }

    /// Member `index`'s link.
    pub(super) fn link(&self, index: usize) -> Link<'_> {
        match self {
            GroupShare::Nothing => Link::Alone,
            GroupShare::Pipes { rx, tx } => {
                Link::Pipes { rx: rx[index].as_fd(), tx: tx[index].as_fd(), leader: index == 0 }
            }
            GroupShare::State(state) => Link::State { state, index },
        }
    }
}

impl Link<'_> {
    /// The fds this member uses, to keep open in its child.
    pub(super) fn fds(&self) -> Option<[BorrowedFd<'_>; 2]> {
        match self {
            Link::Pipes { rx, tx, .. } => Some([*rx, *tx]),
            Link::Alone | Link::State { .. } => None,
        }
    }

    /// This member's group state and its index in the group.
    pub(super) fn state(&self) -> Option<(&GroupState, usize)> {
        match self {
            Link::State { state, index } => Some((state, *index)),
            Link::Alone | Link::Pipes { .. } => None,
        }
    }
}

pub(super) fn futex_wait(word: &AtomicU32, expected: u32) {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
    // SAFETY: FUTEX_WAIT on a live shared word with a relative timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts);
    }
}

pub(super) fn futex_wake(word: &AtomicU32) {
    futex_wake_n(word, 1);
}

pub(super) fn futex_wake_n(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE on a live shared word.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

/// CLOCK_MONOTONIC in ns: comparable between processes, unlike `Instant`.
pub(super) fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Messenger side of one fan-out round: publish a new generation, wake every receiver and
/// wait until all `n` acknowledged it. `false` if stopped first.
pub(super) fn fan_publish(s: &GroupState, n: u32, m: &mut Meter, stop: &Stop) -> bool {
    // Every receiver acknowledged the previous round, so no stale ack can land after this.
    s.acks.store(0, Ordering::Relaxed);
    s.stamp_ns.store(mono_ns(), Ordering::Relaxed);
    s.word.fetch_add(1, Ordering::Release);
    futex_wake_n(&s.word, i32::MAX);
    let mut slept = false;
    loop {
        let a = s.acks.load(Ordering::Acquire);
        if a >= n {
            break;
        }
        if stop.is_set() {
            return false;
        }
        futex_wait(&s.acks, a);
        slept = true;
    }
    if slept {
        m.record_wake(mono_ns().saturating_sub(s.ack_ns.load(Ordering::Relaxed)));
    }
    true
}

/// Receiver side: wait for a generation newer than `seen` and record the latency from the
/// messenger's wake stamp. `false` if stopped first.
pub(super) fn fan_receive(s: &GroupState, seen: &mut u32, m: &mut Meter, stop: &Stop) -> bool {
    loop {
        let g = s.word.load(Ordering::Acquire);
        if g != *seen {
            *seen = g;
            break;
        }
        if stop.is_set() {
            return false;
        }
        futex_wait(&s.word, g);
    }
    // The messenger cannot start another round before this receiver acknowledges, so the
    // stamp is this round's.
    m.record_wake(mono_ns().saturating_sub(s.stamp_ns.load(Ordering::Relaxed)));
    true
}

/// Receiver side: this round is done; the last of `n` receivers wakes the messenger.
pub(super) fn fan_ack(s: &GroupState, n: u32) {
    // fetch_max, not store: receivers race, and the messenger wants the latest ack.
    s.ack_ns.fetch_max(mono_ns(), Ordering::Relaxed);
    if s.acks.fetch_add(1, Ordering::AcqRel) + 1 >= n {
        futex_wake_n(&s.acks, 1);
    }
}

/// Take the group's mutex (Drepper's three-state futex mutex); a waiter that slept records
/// the time since the release that woke it. `false` if stopped before getting it.
pub(super) fn mutex_lock(s: &GroupState, m: &mut Meter, stop: &Stop) -> bool {
    let w = &s.word;
    if w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
        return true;
    }
    let mut c = w.swap(2, Ordering::Acquire);
    let mut slept = false;
    while c != 0 {
        if stop.is_set() {
            // Leaving the word at 2 only costs the holder one spare wake.
            return false;
        }
        futex_wait(w, 2);
        slept = true;
        c = w.swap(2, Ordering::Acquire);
    }
    if slept {
        m.record_wake(mono_ns().saturating_sub(s.stamp_ns.load(Ordering::Relaxed)));
    }
    true
}

pub(super) fn mutex_unlock(s: &GroupState) {
    if s.word.fetch_sub(1, Ordering::Release) != 1 {
        // Someone is (or was) waiting: stamp the release, free the word, wake one.
        s.stamp_ns.store(mono_ns(), Ordering::Relaxed);
        s.word.store(0, Ordering::Release);
        futex_wake_n(&s.word, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn futex_mutex_excludes() {
        // Threads stand in for processes: the futex word works the same way.
        let shared = GroupState {
            word: AtomicU32::new(0),
            acks: AtomicU32::new(0),
            stamp_ns: AtomicU64::new(0),
            ack_ns: AtomicU64::new(0),
        };
        let counter = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut m = Meter::start();
                    for _ in 0..5000 {
                        assert!(mutex_lock(&shared, &mut m, &Stop(())));
                        // A non-atomic read-modify-write: loses updates without exclusion.
                        let v = counter.load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        counter.store(v + 1, Ordering::Relaxed);
                        mutex_unlock(&shared);
                    }
                });
            }
        });
        assert_eq!(counter.load(Ordering::Relaxed), 20_000);
        assert_eq!(shared.word.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_shared_mapping_is_shared_with_a_forked_child() {
        let m = SharedMapping::<GroupState>::new().unwrap();
        assert_eq!(m.word.load(Ordering::Relaxed), 0, "a fresh mapping is zero-filled");
        // SAFETY: the child only stores to the mapping and leaves through _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            m.word.store(7, Ordering::Release);
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(m.word.load(Ordering::Acquire), 7);
    }
}
