//! The work loops: one function per work type, each running until the stop request and
//! counting its work through the [`Meter`]. [`run_work`] picks the loop.
//!
//! These run in the forked child, so they use only what [`super::prepare`] made before the
//! fork, system calls and the group's shared state ([`super::sync`]); none allocates.

use std::hint::black_box;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::prepare::{Prepared, allowed_cpus_into};
use super::sync::{
    GroupState, Link, Stop, fan_ack, fan_publish, fan_receive, futex_wait, futex_wake, mutex_lock,
    mutex_unlock, recv_byte, send_byte,
};
use super::work_type::{Phase, WorkType, receivers};
use crate::harness::measure::{CHECKPOINT_UNITS, Meter};

/// The work loop of one worker: member `link` of its group, with its prepared resources.
pub(super) fn run_work(wt: WorkType, m: &mut Meter, stop: &Stop, link: &Link, prep: &mut Prepared) {
    match wt {
        WorkType::CpuSpin => cpu_spin(m, stop),
        WorkType::YieldHeavy => yield_heavy(m, stop),
        WorkType::Mixed => mixed(m, stop),
        WorkType::IoSync => io_sync(m, stop, prep),
        WorkType::Bursty { burst_ms, sleep_ms } => bursty(m, stop, burst_ms, sleep_ms),
        WorkType::PipeIo { burst_iters } => {
            pipe_loop(m, stop, link, |_| spin(burst_iters), burst_iters)
        }
        WorkType::CachePipe { burst_iters, .. } => {
            let buf = &mut prep.buffer;
            pipe_loop(
                m,
                stop,
                link,
                |_| {
                    cache_pass(buf, 64);
                },
                burst_iters,
            )
        }
        WorkType::FutexPingPong { spin_iters } => futex_ping_pong(m, stop, link, spin_iters),
        WorkType::CachePressure { stride, .. } => cache_pressure(m, stop, prep, stride, false),
        WorkType::CacheYield { stride, .. } => cache_pressure(m, stop, prep, stride, true),
        WorkType::ForkExit => fork_exit(m, stop),
        WorkType::NiceSweep => nice_sweep(m, stop),
        WorkType::AffinityChurn { spin_iters } => affinity_churn(m, stop, prep, spin_iters),
        WorkType::PolicyChurn { spin_iters } => policy_churn(m, stop, spin_iters),
        WorkType::PageFaultChurn { region_kb, touches_per_cycle, spin_iters } => {
            page_fault_churn(m, stop, region_kb, touches_per_cycle, spin_iters)
        }
        WorkType::FutexFanOut { fan_out, spin_iters } => {
            let Some((state, index)) = link.state() else { return };
            futex_fan_out(m, stop, state, index, receivers(fan_out), spin_iters)
        }
        WorkType::FanOutCompute { fan_out, operations, sleep_usec, .. } => {
            let Some((state, index)) = link.state() else { return };
            let n = receivers(fan_out);
            match &mut prep.matrices {
                Some(mats) if index > 0 => {
                    fan_out_compute_worker(m, stop, state, n, mats, operations)
                }
                _ => fan_out_compute_dispatcher(m, stop, state, n, sleep_usec),
            }
        }
        WorkType::Sequence { first, rest } => {
            for phase in std::iter::once(&first).chain(rest).cycle() {
                if stop.is_set() {
                    break;
                }
                run_phase(*phase, m, stop, prep);
            }
        }
        WorkType::MutexContention { hold_iters, work_iters, .. } => {
            let Some((state, _)) = link.state() else { return };
            mutex_contention(m, stop, state, hold_iters, work_iters)
        }
        WorkType::Custom { run, .. } => run(m, stop),
    }
}

/// One unit of CPU work: a few dependent multiply-adds the optimizer cannot drop.
#[inline]
pub fn spin(units: u64) {
    let mut x = black_box(0x2545_F491_4F6C_DD1Du64);
    for i in 0..units * 16 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    black_box(x);
}

/// Run `f` and record how long it blocked.
#[inline]
fn timed<T>(meter: &mut Meter, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    meter.record_wake(t.elapsed().as_nanos() as u64);
    r
}

fn sched_yield() {
    // SAFETY: sched_yield has no preconditions.
    unsafe { libc::sched_yield() };
}

fn sleep_for(d: Duration) {
    // Interrupted early by the stop signal, which is what we want.
    let ts = libc::timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 };
    // SAFETY: nanosleep with a valid request and no remainder pointer.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

/// Spin in checkpoint-sized steps until `end` or the stop request.
fn spin_until(m: &mut Meter, stop: &Stop, end: Instant) {
    while Instant::now() < end && !stop.is_set() {
        spin(CHECKPOINT_UNITS);
        m.add_units(CHECKPOINT_UNITS);
    }
}

fn cache_pass(buf: &mut [u8], stride: usize) -> u64 {
    let stride = stride.max(1);
    let mut n = 0;
    let mut i = 0;
    while i < buf.len() {
        buf[i] = buf[i].wrapping_add(1);
        i += stride;
        n += 1;
    }
    black_box(&buf);
    n
}

/// One 64 KiB write and `fdatasync`, the latter timed when `time_sync`.
fn write_and_sync(fd: BorrowedFd<'_>, block: &[u8], m: &mut Meter, time_sync: bool) {
    let fd = fd.as_raw_fd();
    // SAFETY: writing from a valid buffer to our own fd.
    unsafe { libc::pwrite(fd, block.as_ptr().cast(), block.len(), 0) };
    // SAFETY: fdatasync on our own fd.
    let sync = || unsafe { libc::fdatasync(fd) };
    if time_sync {
        timed(m, sync);
    } else {
        sync();
    }
}

fn cpu_spin(m: &mut Meter, stop: &Stop) {
    while !stop.is_set() {
        spin(CHECKPOINT_UNITS);
        m.add_units(CHECKPOINT_UNITS);
    }
}

fn yield_heavy(m: &mut Meter, stop: &Stop) {
    while !stop.is_set() {
        timed(m, sched_yield);
        m.add_units(1);
    }
}

fn mixed(m: &mut Meter, stop: &Stop) {
    while !stop.is_set() {
        spin(CHECKPOINT_UNITS);
        timed(m, sched_yield);
        m.add_units(CHECKPOINT_UNITS);
    }
}

fn io_sync(m: &mut Meter, stop: &Stop, prep: &Prepared) {
    let Some(file) = prep.fd() else { return };
    while !stop.is_set() {
        write_and_sync(file, &prep.io_block, m, false);
        timed(m, || sleep_for(Duration::from_micros(100)));
        m.add_units(1);
    }
}

fn bursty(m: &mut Meter, stop: &Stop, burst_ms: u64, sleep_ms: u64) {
    while !stop.is_set() {
        spin_until(m, stop, Instant::now() + Duration::from_millis(burst_ms));
        if !stop.is_set() {
            timed(m, || sleep_for(Duration::from_millis(sleep_ms)));
        }
    }
}

fn pipe_loop(
    m: &mut Meter,
    stop: &Stop,
    link: &Link,
    mut work: impl FnMut(&mut Meter),
    units: u64,
) {
    let Link::Pipes { rx, tx, leader } = link else { return };
    let (rx, tx) = (rx.as_raw_fd(), tx.as_raw_fd());
    if *leader {
        send_byte(tx);
    }
    while !stop.is_set() {
        let t = Instant::now();
        if !recv_byte(rx, stop) {
            break;
        }
        m.record_wake(t.elapsed().as_nanos() as u64);
        work(m);
        send_byte(tx);
        m.add_units(units);
    }
}

fn futex_ping_pong(m: &mut Meter, stop: &Stop, link: &Link, spin_iters: u64) {
    let Some((state, index)) = link.state() else { return };
    let word = &state.word;
    let (mine, theirs) = if index == 0 { (0, 1) } else { (1, 0) };
    while !stop.is_set() {
        // Wait for our turn: the word equals `mine`.
        let t = Instant::now();
        while word.load(Ordering::Acquire) != mine && !stop.is_set() {
            futex_wait(word, theirs);
        }
        if stop.is_set() {
            break;
        }
        m.record_wake(t.elapsed().as_nanos() as u64);
        spin(spin_iters);
        word.store(theirs, Ordering::Release);
        futex_wake(word);
        m.add_units(spin_iters);
    }
}

fn cache_pressure(m: &mut Meter, stop: &Stop, prep: &mut Prepared, stride: u64, yields: bool) {
    while !stop.is_set() {
        let n = cache_pass(&mut prep.buffer, stride as usize);
        if yields {
            timed(m, sched_yield);
        }
        m.add_units(n);
    }
}

fn fork_exit(m: &mut Meter, stop: &Stop) {
    while !stop.is_set() {
        // SAFETY: this worker is single-threaded; the child leaves at once through _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        if pid > 0 {
            let mut st = 0;
            // SAFETY: waiting for our own child with a valid status pointer.
            timed(m, || unsafe { libc::waitpid(pid, &mut st, 0) });
        }
        m.add_units(1);
    }
}

fn nice_sweep(m: &mut Meter, stop: &Stop) {
    let mut nice = -20;
    while !stop.is_set() {
        // SAFETY: setpriority on this process.
        unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        nice = if nice >= 19 { -20 } else { nice + 1 };
        spin(CHECKPOINT_UNITS);
        m.add_units(CHECKPOINT_UNITS);
    }
}

fn affinity_churn(m: &mut Meter, stop: &Stop, prep: &mut Prepared, spin_iters: u64) {
    // Read here, not before the fork: the cgroup this worker was placed in decides.
    allowed_cpus_into(&mut prep.cpus);
    let allowed = &prep.cpus;
    while !stop.is_set() {
        if !allowed.is_empty() {
            let cpu = allowed[(m.next_rand() % allowed.len() as u64) as usize];
            pin_to(cpu);
        }
        spin(spin_iters);
        m.add_units(spin_iters);
    }
}

fn pin_to(cpu: usize) {
    // SAFETY: sched_setaffinity with a zeroed cpu_set_t of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn policy_churn(m: &mut Meter, stop: &Stop, spin_iters: u64) {
    let policies = [libc::SCHED_OTHER, libc::SCHED_BATCH, libc::SCHED_IDLE];
    let mut i = 0;
    while !stop.is_set() {
        let p = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler on this process with a valid param.
        unsafe { libc::sched_setscheduler(0, policies[i % policies.len()], &p) };
        i += 1;
        spin(spin_iters);
        m.add_units(spin_iters);
    }
}

fn page_fault_churn(m: &mut Meter, stop: &Stop, region_kb: u64, touches: u64, spin_iters: u64) {
    let len = (region_kb * 1024) as usize;
    // SAFETY: a private anonymous mapping (a system call, no allocator involved); checked.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if region == libc::MAP_FAILED {
        return;
    }
    let pages = (len / 4096).max(1) as u64;
    while !stop.is_set() {
        for _ in 0..touches {
            let off = (m.next_rand() % pages) as usize * 4096;
            // SAFETY: `off` is a page offset inside the mapping.
            unsafe { *(region as *mut u8).add(off) = 1 };
        }
        // SAFETY: dropping the pages of our own mapping.
        unsafe { libc::madvise(region, len, libc::MADV_DONTNEED) };
        spin(spin_iters);
        m.add_units(touches);
    }
    // SAFETY: unmapping what was mapped above.
    unsafe { libc::munmap(region, len) };
}

fn futex_fan_out(m: &mut Meter, stop: &Stop, s: &GroupState, index: usize, n: u32, iters: u64) {
    if index == 0 {
        while !stop.is_set() {
            spin(iters);
            if !fan_publish(s, n, m, stop) {
                break;
            }
            m.add_units(iters);
        }
    } else {
        let mut seen = 0;
        while !stop.is_set() && fan_receive(s, &mut seen, m, stop) {
            spin(iters);
            fan_ack(s, n);
            m.add_units(iters);
        }
    }
}

fn fan_out_compute_dispatcher(m: &mut Meter, stop: &Stop, s: &GroupState, n: u32, usec: u64) {
    while !stop.is_set() {
        sleep_for(Duration::from_micros(usec));
        if stop.is_set() || !fan_publish(s, n, m, stop) {
            break;
        }
        m.add_units(1);
    }
}

fn fan_out_compute_worker(
    m: &mut Meter,
    stop: &Stop,
    s: &GroupState,
    n: u32,
    mats: &mut super::prepare::Matrices,
    operations: u64,
) {
    let mut seen = 0;
    while !stop.is_set() && fan_receive(s, &mut seen, m, stop) {
        for _ in 0..operations {
            mats.multiply();
        }
        fan_ack(s, n);
        m.add_units(operations);
    }
}

/// Run one [`Phase`] of a Sequence.
fn run_phase(phase: Phase, m: &mut Meter, stop: &Stop, prep: &Prepared) {
    match phase {
        Phase::Spin(d) => spin_until(m, stop, Instant::now() + d),
        Phase::Sleep(d) => {
            timed(m, || sleep_for(d));
            m.add_units(1);
        }
        Phase::Yield(d) => {
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.is_set() {
                timed(m, sched_yield);
                m.add_units(1);
            }
        }
        Phase::Io(d) => {
            let Some(file) = prep.fd() else {
                // No temp file: the phase cannot do I/O; wait it out so the cycle keeps time.
                timed(m, || sleep_for(d));
                return;
            };
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.is_set() {
                write_and_sync(file, &prep.io_block, m, true);
                m.add_units(1);
            }
        }
    }
}

fn mutex_contention(m: &mut Meter, stop: &Stop, s: &GroupState, hold: u64, work: u64) {
    while !stop.is_set() && mutex_lock(s, m, stop) {
        spin(hold);
        mutex_unlock(s);
        spin(work);
        m.add_units(hold + work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::measure::WorkerReport;
    use crate::harness::worker::testing::run;

    /// Fan-out rounds are lockstep: no member can be more than one round ahead of another.
    fn assert_lockstep(r: &[WorkerReport]) {
        let rounds: Vec<u64> = r.iter().map(|w| w.iterations).collect();
        let (lo, hi) = (rounds.iter().min().unwrap(), rounds.iter().max().unwrap());
        assert!(*lo > 0 && hi - lo <= 1, "rounds per member: {rounds:?}");
    }

    #[test]
    fn futex_fan_out_wakes_every_receiver_each_round() {
        let wt = WorkType::FutexFanOut { fan_out: 3, spin_iters: 64 };
        let (_, r) = run(wt, 4, Duration::from_millis(300), Duration::from_secs(2));
        let r = r.unwrap();
        assert_eq!(r.len(), 4);
        assert_lockstep(&r);
        for w in &r[1..] {
            assert!(w.wake_sample_total >= w.iterations, "receiver missed wakes: {w:?}");
            assert!(w.resume_latencies_ns.iter().all(|&l| l < 2_000_000_000), "{w:?}");
        }
    }

    #[test]
    fn fan_out_compute_runs_the_operations_after_each_wake() {
        let wt = WorkType::FanOutCompute {
            fan_out: 2,
            cache_footprint_kb: 16,
            operations: 3,
            sleep_usec: 100,
        };
        let (_, r) = run(wt, 6, Duration::from_millis(300), Duration::from_secs(2));
        let r = r.unwrap();
        assert_eq!(r.len(), 6);
        // Two groups of one dispatcher and two workers, each group in lockstep.
        for g in r.chunks(3) {
            assert_lockstep(g);
            for w in &g[1..] {
                assert_eq!(w.work_units, 3 * w.iterations, "{w:?}");
                assert!(w.wake_sample_total > 0);
            }
        }
    }

    #[test]
    fn sequence_cycles_through_its_phases() {
        static REST: &[Phase] = &[
            Phase::Sleep(Duration::from_millis(15)),
            Phase::Yield(Duration::from_millis(5)),
            Phase::Io(Duration::from_millis(5)),
        ];
        let wt = WorkType::Sequence { first: Phase::Spin(Duration::from_millis(10)), rest: REST };
        let (_, r) = run(wt, 1, Duration::from_millis(400), Duration::from_secs(2));
        let w = &r.unwrap()[0];
        assert!(w.work_units > CHECKPOINT_UNITS, "spin phase did no work: {w:?}");
        // The Sleep phase ran (at least once) for its whole duration.
        let slept = w.resume_latencies_ns.iter().filter(|&&l| l >= 15_000_000).count();
        assert!(slept >= 1, "{:?}", w.resume_latencies_ns);
        assert!(w.wake_sample_total > slept as u64, "yield/io phases recorded nothing");
        assert!(w.off_cpu_ns > 0);
    }

    #[test]
    fn mutex_contention_blocks_and_records_wakes() {
        let wt = WorkType::MutexContention { contenders: 4, hold_iters: 4096, work_iters: 16 };
        let (_, r) = run(wt, 4, Duration::from_millis(300), Duration::from_secs(2));
        let r = r.unwrap();
        assert!(r.len() == 4 && r.iter().all(|w| w.completed), "{r:?}");
        // The lock changes hands; that every contender gets it within 300 ms is the host's
        // fairness, not the work type's: on a busy host a woken waiter can lose every race
        // to a contender already running (seen: one of four with 0 iterations at load 7).
        let progressed = r.iter().filter(|w| w.iterations > 0).count();
        assert!(progressed >= 2, "the lock never passed between contenders: {r:?}");
        let waits: u64 = r.iter().map(|w| w.wake_sample_total).sum();
        assert!(waits > 0, "four contenders on one lock never waited");
    }

    #[test]
    fn cpu_spin_reports_real_work() {
        let (_, r) = run(WorkType::CpuSpin, 2, Duration::from_millis(200), Duration::from_secs(2));
        let r = r.unwrap();
        assert_eq!(r.len(), 2);
        for w in &r {
            assert!(w.iterations > 0 && w.cpu_time_ns > 0 && w.wall_time_ns > 0, "{w:?}");
            assert!(w.completed);
        }
    }

    #[test]
    fn pipe_io_records_wake_latencies() {
        let (_, r) = run(
            WorkType::PipeIo { burst_iters: 64 },
            2,
            Duration::from_millis(200),
            Duration::from_secs(2),
        );
        let r = r.unwrap();
        assert!(r.iter().all(|w| w.wake_sample_total > 0 && !w.resume_latencies_ns.is_empty()));
    }
}
