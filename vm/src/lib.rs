//! ktstr-vm boots Linux guests under QEMU with a declared CPU and NUMA topology, hands each
//! guest a request, and returns its checksummed result frames and console log.
//!
//! Host side: [`kernel`] resolves and fetches kernels, [`initramfs`] packs the guest's `/init`,
//! [`topology`] maps `{n}n{l}l{c}c{t}t` to QEMU, [`qemu`] runs QEMU, [`boot`] judges a run.
//! Guest side: [`guest`] is what an `/init` built on this crate calls. [`frame`] and
//! [`request`] are the two directions of the wire. The crate knows nothing of tests, sidecars
//! or schedulers beyond naming them in a request.

pub mod boot;
pub mod cache_dirs;
pub mod frame;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
pub mod request;
pub mod topology;

pub use boot::{BootError, BootOptions, BootOutcome, boot};
pub use qemu::accel::Accel;
pub use qemu::{Backend, TcgClock};
pub use request::Request;
pub use topology::Topology;
