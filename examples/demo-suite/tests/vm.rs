//! Tests meant for the VM backend, under the kernel's own scheduler (EEVDF):
//! `cargo ktstr test --kernel 7.3 -- --features vm --test vm` boots each topology once and
//! runs its tests in the guest (the two 1n1l2c1t tests share one boot). `tests/vm_bpfland.rs`
//! runs the same tests under scx_bpfland; both come from `ktstr_demo_suite::vm_tests!`.
//! They build only with `--features vm`; without `--kernel` they then run on the host like
//! any other test, and the NUMA one is skipped on a host too small for it.

use ktstr::prelude::*;

ktstr_demo_suite::vm_tests!("eevdf");
