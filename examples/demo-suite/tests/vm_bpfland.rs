//! The VM tests of `tests/vm.rs` under scx_bpfland (installed into ktstr's scheduler cache by
//! `scripts/deps/20-scx-bpfland.sh`): same names, so `cargo ktstr stats compare
//! --a-scheduler eevdf --b-scheduler scx_bpfland` pairs each with its EEVDF run.
//! `cargo ktstr test --kernel 7.3 -- --features vm --test vm --test vm_bpfland` runs both
//! binaries, one boot per (topology, scheduler).
//!
//! Found by cargo's test auto-discovery and empty without the `vm` feature, like `tests/vm.rs`
//! (which its `[[test]]` entry gates).
#![cfg(feature = "vm")]

use ktstr::prelude::*;

/// The one sched_ext scheduler of the demo, with bpfland's defaults.
#[derive(Clone, Copy, Schedulers)]
pub enum Sched {
    #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland")]
    Bpfland,
}

ktstr_demo_suite::vm_tests!("scx_bpfland");
