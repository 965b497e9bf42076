//! The single integration-test binary: every test here drives the real `cargo-ktstr` binary
//! on files built in a temporary directory.

mod cli_test;
mod compare;
mod harness_e2e;
mod host_confinement;
mod machine_lock;
mod macros_ui;
mod migrations;
mod read_commands;
mod sched_crate;
mod test_interrupt;
mod util;
mod vm_e2e;
mod warehouse_cli;
