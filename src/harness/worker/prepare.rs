//! What a worker's loop needs that takes allocating, opening a file or reading the
//! environment: made in the parent before the fork ([`Prepared::for_member`]), so the child
//! only uses it (see [`super`] on why). What the loops do with it is [`super::loops`]'s.

use std::hint::black_box;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

use super::work_type::{Phase, WorkType};
use crate::harness::measure::CPU_IDS;

/// Bytes IoSync and Sequence's I/O phases write per `fdatasync`.
const IO_BLOCK: usize = 64 * 1024;

/// One worker's resources. The parent drops its copy right after the fork; the child's copy
/// lives until the child exits.
#[derive(Default)]
pub(super) struct Prepared {
    /// IoSync's or the I/O phases' unlinked temp file; `None` when not needed or it could not
    /// be created (the loop then does no I/O, as before).
    pub io_file: Option<OwnedFd>,
    /// The block written to `io_file`.
    pub io_block: Vec<u8>,
    /// The cache types' buffer.
    pub buffer: Vec<u8>,
    /// Room for AffinityChurn's CPU list, filled in the child (its cgroup decides the CPUs,
    /// and it is placed there only after the fork).
    pub cpus: Vec<usize>,
    /// FanOutCompute workers' matrices (not the dispatcher's).
    pub matrices: Option<Matrices>,
}

impl Prepared {
    /// The resources of member `index` of a group of `work_type`.
    pub(super) fn for_member(work_type: WorkType, index: usize) -> Prepared {
        let io = |fill: u8| Prepared {
            io_file: tempfile_fd(),
            io_block: vec![fill; IO_BLOCK],
            ..Prepared::default()
        };
        match work_type {
            WorkType::IoSync => io(0xA5),
            WorkType::Sequence { first, rest }
                if std::iter::once(&first).chain(rest).any(|p| matches!(p, Phase::Io(_))) =>
            {
                io(0x5A)
            }
            WorkType::CachePressure { size_kb, .. }
            | WorkType::CacheYield { size_kb, .. }
            | WorkType::CachePipe { size_kb, .. } => {
                Prepared { buffer: vec![0; (size_kb * 1024) as usize], ..Prepared::default() }
            }
            WorkType::AffinityChurn { .. } => {
                Prepared { cpus: Vec::with_capacity(CPU_IDS), ..Prepared::default() }
            }
            WorkType::FanOutCompute { cache_footprint_kb, .. } if index > 0 => Prepared {
                matrices: Some(Matrices::new(cache_footprint_kb)),
                ..Prepared::default()
            },
            _ => Prepared::default(),
        }
    }

    /// The fd the child must keep open, if any.
    pub(super) fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.io_file.as_ref().map(|f| f.as_fd())
    }
}

/// An unlinked file in the temp directory (which comes from the environment).
fn tempfile_fd() -> Option<OwnedFd> {
    let dir = std::ffi::CString::new(std::env::temp_dir().to_string_lossy().as_bytes()).ok()?;
    // SAFETY: open with a valid C string; O_TMPFILE creates an unnamed file.
    let fd = unsafe {
        libc::open(dir.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600)
    };
    // SAFETY: fd is fresh and owned here.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    let mut cpus = Vec::with_capacity(CPU_IDS);
    allowed_cpus_into(&mut cpus);
    cpus
}

/// Replace `cpus` with the CPUs this process may run on; allocation-free when `cpus` has
/// room for [`CPU_IDS`] entries, so a forked worker may call it.
pub(super) fn allowed_cpus_into(cpus: &mut Vec<usize>) {
    cpus.clear();
    // SAFETY: sched_getaffinity fills a zeroed cpu_set_t of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return;
        }
        for c in (0..CPU_IDS).filter(|&c| libc::CPU_ISSET(c, &set)) {
            cpus.push(c);
        }
    }
}

/// Three square matrices sized so together they take about `footprint_kb`.
pub(super) struct Matrices {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

impl Matrices {
    fn new(footprint_kb: u64) -> Matrices {
        let cells = (footprint_kb as usize * 1024 / (3 * 8)).max(16);
        let n = (cells as f64).sqrt() as usize;
        let a = (0..n * n).map(|i| (i % 7) as f64 + 0.5).collect();
        let b = (0..n * n).map(|i| (i % 5) as f64 - 1.5).collect();
        Matrices { n, a, b, c: vec![0.0; n * n] }
    }

    /// c = a × b (i-k-j order, so the inner loop walks rows).
    pub(super) fn multiply(&mut self) {
        let n = self.n;
        self.c.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..n {
            for k in 0..n {
                let aik = self.a[i * n + k];
                for j in 0..n {
                    self.c[i * n + j] += aik * self.b[k * n + j];
                }
            }
        }
        black_box(&self.c);
    }
}
