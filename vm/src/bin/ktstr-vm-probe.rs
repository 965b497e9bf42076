//! `ktstr-vm-probe`: a guest `/init` that exercises the boot path, for this crate's tests and
//! boot benchmark. It runs only as PID 1 in a ktstr-vm guest.
//!
//! Request tests: `facts` (default) reports what the guest sees and powers off; `hang` sleeps
//! forever after saying so; `exit` returns from `/init`, which makes the kernel panic.

use ktstr_vm::guest::{Guest, is_guest_init};
use serde_json::json;
use std::path::Path;

fn main() {
    if !is_guest_init() {
        eprintln!(
            "ktstr-vm-probe runs as /init inside a ktstr-vm guest; boot it with ktstr_vm::boot"
        );
        std::process::exit(2);
    }
    let mut guest = Guest::start();
    match guest.request().tests.first().map(|t| t.name.clone()).as_deref() {
        None | Some("facts") => {
            guest.send_json("facts", &facts());
            guest.finish()
        }
        Some("hang") => {
            guest.send("hanging", b"");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        Some("exit") => {
            guest.send("exiting", b"");
            std::process::exit(0)
        }
        Some(other) => guest.fail(&format!("ktstr-vm-probe has no test '{other}'")),
    }
}

/// What the guest's environment looks like, for the host to check in one boot.
fn facts() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
    let release = read("/proc/sys/kernel/osrelease").unwrap_or_default();
    let interfaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let mounts = read("/proc/mounts").unwrap_or_default();
    let mounted: Vec<&str> = mounts.lines().filter_map(|l| l.split_whitespace().nth(1)).collect();
    json!({
        "release": release,
        "boot_config": Path::new(&format!("/boot/config-{release}")).is_file(),
        "cgroup_controllers": read("/sys/fs/cgroup/cgroup.controllers"),
        "sched_ext_state": read("/sys/kernel/sched_ext/state"),
        "net_interfaces": interfaces,
        "mounts": mounted,
        "uptime_s": read("/proc/uptime").and_then(|u| u.split_whitespace().next().map(String::from)),
    })
}
