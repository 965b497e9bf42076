//! Boot benchmark (prints figures, asserts nothing): initramfs cache hits, and boot to the
//! guest's first step plus power-off at 2, 4 and 8 vCPUs, under TCG unless
//! `$KTSTR_VM_ACCEL` says otherwise. Needs scripts/deps/10-vm.sh to have run.
//!
//!     cargo bench --profile dev -p ktstr-vm --bench boot [-- RUNS] [-- initramfs]
//!
//! `initramfs` measures only the cache hit (no boots).

use ktstr_vm::boot::{BootOptions, boot};
use ktstr_vm::cache_dirs::{initramfs_cache_dir, vmlinux_cache_dir};
use ktstr_vm::initramfs::InitramfsBuilder;
use ktstr_vm::kernel::cache::KernelCache;
use ktstr_vm::kernel::{KernelSpec, resolve};
use ktstr_vm::topology::qemu_args::Machine;
use ktstr_vm::{Accel, Request, Topology};
use std::time::{Duration, Instant};

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(3);
    let kernel =
        resolve(&KernelSpec::parse("7.3"), &KernelCache::default_location(), &vmlinux_cache_dir())
            .unwrap_or_else(|e| panic!("{e}; run scripts/deps/10-vm.sh first"));
    let config = kernel.config.clone().expect("the cached kernel has a config");
    let builder = InitramfsBuilder::new(env!("CARGO_BIN_EXE_ktstr-vm-probe"))
        .kernel_config(&kernel.release, &config);
    let initramfs = builder.build(&initramfs_cache_dir()).expect("initramfs");
    let host_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "kernel {} ({}), {host_cpus} host CPUs, load average {}",
        kernel.label(),
        kernel.boot_image().display(),
        load.trim()
    );

    let hits: Vec<Duration> = (0..5)
        .map(|_| {
            let started = Instant::now();
            builder.build(&initramfs_cache_dir()).expect("initramfs");
            started.elapsed()
        })
        .collect();
    let size_mb = std::fs::metadata(&initramfs).map_or(0.0, |m| m.len() as f64 / 1e6);
    println!(
        "initramfs cache hit: median {:.1} ms over 5 ({size_mb:.1} MB archive)",
        ms(median(hits))
    );

    if std::env::args().any(|a| a == "initramfs") {
        return;
    }
    let accel = Accel::from_env().ok().filter(|a| *a != Accel::Auto).unwrap_or(Accel::Tcg);
    for topology in ["1n1l2c1t", "1n1l4c1t", "1n2l2c2t", "2n2l2c1t"] {
        let topology: Topology = topology.parse().unwrap();
        let mut options = BootOptions::new(topology);
        options.accel = accel;
        let (mut walls, mut guest_init) = (Vec::new(), Vec::new());
        let mut backend = String::new();
        for _ in 0..runs {
            let outcome = boot(&kernel, &initramfs, &Request::new(topology), &options)
                .unwrap_or_else(|e| panic!("{e}"));
            walls.push(outcome.wall);
            backend = outcome.backend.to_string();
            let facts = outcome.frames.iter().find(|f| f.kind == "facts").expect("facts");
            let facts: serde_json::Value = serde_json::from_slice(&facts.payload).unwrap();
            let uptime =
                facts["uptime_s"].as_str().and_then(|u| u.parse::<f64>().ok()).unwrap_or(f64::NAN);
            guest_init.push(Duration::from_secs_f64(uptime));
        }
        let vcpus = topology.total_cpus() as usize;
        let overcommit = if vcpus > host_cpus {
            format!(", overcommitted on {host_cpus} host CPUs")
        } else {
            String::new()
        };
        let machine = match Machine::for_topology(&topology) {
            Machine::Microvm => "microvm",
            Machine::Pc => "pc+qboot",
        };
        let (min, max) = (walls.iter().min().unwrap(), walls.iter().max().unwrap());
        println!(
            "boot {topology} ({vcpus} vCPU, {machine}, {backend}{overcommit}): QEMU start to exit median {:.2} s (min {:.2}, max {:.2}, {runs} runs); guest at first step after {:.2} s guest time",
            secs(median(walls.clone())),
            secs(*min),
            secs(*max),
            secs(median(guest_init)),
        );
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
