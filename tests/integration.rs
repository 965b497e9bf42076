//! The single integration-test binary: every test here drives the real `cargo-ktstr` binary
//! on files built in a temporary directory.

mod ab_cli;
mod ab_e2e;
mod archive;
mod cli_test;
mod compare;
mod compare_gates;
mod demo_schedulers;
mod fuzz_readers;
mod harness_e2e;
mod host_confinement;
mod machine_lock;
mod macros_ui;
mod migrations;
mod noise_gate;
mod pairing_record;
mod query_plan;
mod read_commands;
mod robust_ingest;
mod sched_crate;
mod sched_vm;
mod sql_query;
mod test_interrupt;
mod util;
mod vm_e2e;
mod vm_sched;
mod warehouse_cli;
