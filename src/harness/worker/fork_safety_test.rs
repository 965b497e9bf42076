//! Worker start while another thread of the parent keeps the allocator busy.
//!
//! glibc's malloc takes its own locks around `fork`, so with the system allocator alone a
//! child that allocates usually gets away with it; any other lock a thread holds at fork time
//! (another allocator's, std's environment lock, the output-capture mutex) stays locked in
//! the child forever. This binary's global allocator models that: while [`LOCKING`] is on,
//! every allocation and free goes through one plain mutex that knows nothing about `fork`.
//! A worker child that allocates after the fork while the busy thread holds it blocks for
//! good, misses its stop deadline and is reported as killed.
//!
//! The allocator is the whole lib test binary's, so it passes straight through to
//! [`System`] unless a test switches [`LOCKING`] on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Phase, StartGate, WorkType, WorkerSet};

/// Route every allocation through [`LOCK`].
static LOCKING: AtomicBool = AtomicBool::new(false);
static LOCK: Mutex<()> = Mutex::new(());

struct ForkUnawareAllocator;

fn locked<T>(f: impl FnOnce() -> T) -> T {
    if LOCKING.load(Ordering::Acquire) {
        let _held = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        f()
    } else {
        f()
    }
}

// SAFETY: every call forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for ForkUnawareAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        locked(|| unsafe { System.alloc(layout) })
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        locked(|| unsafe { System.alloc_zeroed(layout) })
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        locked(|| unsafe { System.dealloc(ptr, layout) })
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        locked(|| unsafe { System.realloc(ptr, layout, new_size) })
    }
}

#[global_allocator]
static ALLOCATOR: ForkUnawareAllocator = ForkUnawareAllocator;

/// One work type of each kind of preparation a worker needs: none, pipes, shared state,
/// a temp file (the environment), buffers, a CPU list, matrices, a phase list.
fn kinds() -> Vec<WorkType> {
    static PHASES: &[Phase] = &[Phase::Io(Duration::from_millis(2))];
    vec![
        WorkType::CpuSpin,
        WorkType::PipeIo { burst_iters: 64 },
        WorkType::FutexFanOut { fan_out: 2, spin_iters: 64 },
        WorkType::IoSync,
        WorkType::CachePressure { size_kb: 64, stride: 64 },
        WorkType::AffinityChurn { spin_iters: 64 },
        WorkType::FanOutCompute {
            fan_out: 2,
            cache_footprint_kb: 16,
            operations: 1,
            sleep_usec: 50,
        },
        WorkType::Sequence { first: Phase::Spin(Duration::from_millis(2)), rest: PHASES },
    ]
}

#[test]
fn workers_start_and_report_while_another_thread_keeps_the_allocator_busy() {
    const ROUNDS: usize = 20;
    let done = std::sync::Arc::new(AtomicBool::new(false));
    LOCKING.store(true, Ordering::Release);
    let busy = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                // Large blocks: each allocation and free is an mmap/munmap under the lock.
                let mut block = vec![0u8; 1 << 20];
                block[0] = 1;
                std::hint::black_box(&block);
            }
        })
    };
    let started = Instant::now();
    let mut outcome = Ok(0);
    'rounds: for round in 0..ROUNDS {
        let mut gate = StartGate::new().unwrap();
        let mut sets = Vec::new();
        for wt in kinds() {
            sets.push(WorkerSet::spawn(wt, wt.group_size(), &gate).unwrap());
        }
        gate.release();
        std::thread::sleep(Duration::from_millis(10));
        for set in &mut sets {
            let expected = set.pids().len();
            match set.stop_and_collect(Duration::from_secs(2)) {
                Ok(r) if r.len() == expected && r.iter().all(|w| w.completed) => {
                    outcome = outcome.map(|n| n + r.len())
                }
                other => {
                    outcome = Err(format!("round {round}, {}: {other:?}", set.work_type().name()));
                    break 'rounds;
                }
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    LOCKING.store(false, Ordering::Release);
    let took = started.elapsed();
    let reported = outcome.unwrap_or_else(|e| panic!("a worker did not report: {e}"));
    assert_eq!(reported, ROUNDS * kinds().iter().map(WorkType::group_size).sum::<usize>());
    assert!(took < Duration::from_secs(60), "{ROUNDS} rounds took {took:?}");
}
