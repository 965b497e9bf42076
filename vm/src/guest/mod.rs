//! The guest side, for a binary running as `/init` (PID 1) in a ktstr-vm guest: set the system
//! up, read the host's [`Request`], verify the topology, write result frames, power off.
//!
//! [`Guest::start`] returns only in a guest whose topology matches the request, so the code
//! after it never runs a test on the wrong machine shape. What a test does is the caller's
//! business; this module only provides the channel and the ending.

pub mod system;

use crate::frame::FrameWriter;
use crate::request::Request;
use crate::topology::sysfs::read_topology;
use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The second serial port, which carries the result frames.
pub const RESULTS_TTY: &str = "/dev/ttyS1";
/// Frame holding the topology read back from sysfs, as `{n}n{l}l{c}c{t}t` JSON string.
pub const TOPOLOGY_FRAME: &str = "topology";
/// Frame holding a guest-side failure message (the guest could not do what was asked).
pub const ERROR_FRAME: &str = "error";

/// A started guest with an open result channel.
pub struct Guest {
    request: Request,
    writer: FrameWriter<File>,
}

impl Guest {
    /// Mounts proc, sys, devtmpfs, tmp, cgroup2, debugfs and bpffs, reads the request from
    /// `/proc/cmdline`, opens the result port and reports the topology read back from sysfs.
    /// If any step fails, or the topology differs from the request's, it reports why and powers
    /// off instead of returning.
    pub fn start() -> Guest {
        if let Err(e) = system::mount_all() {
            fatal(&e);
        }
        let file = system::open_raw_tty(RESULTS_TTY)
            .unwrap_or_else(|e| fatal(&format!("open {RESULTS_TTY}: {e}")));
        let writer = FrameWriter::begin(file)
            .unwrap_or_else(|e| fatal(&format!("write {RESULTS_TTY}: {e}")));
        let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
        let request = match Request::from_cmdline(&cmdline) {
            Ok(request) => request,
            Err(e) => Guest::fail_before_request(writer, &e.to_string()),
        };
        let mut guest = Guest { request, writer };
        match read_topology(Path::new("/")) {
            Ok(found) => {
                guest.send_json(TOPOLOGY_FRAME, &found.to_string());
                if found != guest.request.topology {
                    let expected = guest.request.topology;
                    guest.fail(&format!(
                        "topology mismatch: expected {expected}, sysfs shows {found}"
                    ));
                }
            }
            Err(e) => guest.fail(&format!("topology readback failed: {e}")),
        }
        guest
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// Sends one frame; a broken result channel ends the guest (the host will see why).
    pub fn send(&mut self, kind: &str, payload: &[u8]) {
        if let Err(e) = self.writer.frame(kind, payload) {
            fatal(&format!("write {RESULTS_TTY}: {e}"));
        }
    }

    pub fn send_json<T: serde::Serialize + ?Sized>(&mut self, kind: &str, value: &T) {
        let json = serde_json::to_vec(value).expect("frame payloads serialise");
        self.send(kind, &json);
    }

    /// Closes the result stream (end sentinel), waits for it to leave the port, powers off.
    pub fn finish(self) -> ! {
        match self.writer.end() {
            Ok(file) => system::drain(&file),
            Err(e) => eprintln!("ktstr-vm guest: closing {RESULTS_TTY}: {e}"),
        }
        system::power_off()
    }

    /// Reports a guest-side failure in an error frame, then finishes.
    pub fn fail(mut self, message: &str) -> ! {
        eprintln!("ktstr-vm guest: {message}");
        self.send(ERROR_FRAME, message.as_bytes());
        self.finish()
    }

    fn fail_before_request(mut writer: FrameWriter<File>, message: &str) -> ! {
        eprintln!("ktstr-vm guest: {message}");
        let _ = writer.frame(ERROR_FRAME, message.as_bytes());
        if let Ok(file) = writer.end() {
            system::drain(&file);
        }
        system::power_off()
    }
}

/// Reports on the console (the host keeps its tail) and powers off.
fn fatal(message: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "ktstr-vm guest: fatal: {message}");
    system::power_off()
}

/// Whether this process is a guest's `/init`.
pub fn is_guest_init() -> bool {
    std::process::id() == 1
}
