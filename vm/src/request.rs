//! What the host asks of a guest, and how it travels: JSON, hex-encoded into one kernel
//! command-line parameter (`ktstr.request=…`), which the guest reads from `/proc/cmdline`.
//!
//! Hex keeps the parameter free of spaces and quotes whatever the JSON holds. The kernel's
//! command line is limited to 2048 bytes on x86, so a request stays small: names and arguments,
//! never file contents (those go into the initramfs).

use crate::topology::Topology;
use serde::{Deserialize, Serialize};

/// The command-line parameter carrying the request.
pub const CMDLINE_PARAM: &str = "ktstr.request";

/// Longest encoded parameter accepted, leaving room for the fixed boot parameters.
const MAX_PARAM_LEN: usize = 1400;

/// A sched_ext scheduler the guest should start before its first test, keep attached across
/// the tests, and stop after the last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerRequest {
    /// The declared name, for messages and records.
    pub name: String,
    /// Path of the scheduler binary inside the guest, e.g. `/scheduler`.
    pub path: String,
    pub args: Vec<String>,
    /// How long attaching may take, seconds.
    pub attach_timeout_s: u64,
}

/// One test the guest should run, in the order given. Keys are one letter because the whole
/// request must fit the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedTest {
    /// The test's name.
    #[serde(rename = "n")]
    pub name: String,
    /// Which run of the test (the caller's label, e.g. `base`).
    #[serde(rename = "v")]
    pub variant: String,
    /// Flags active in this run.
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

/// One guest run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The topology the guest must find in sysfs before doing anything else.
    #[serde(with = "crate::topology::notation")]
    pub topology: Topology,
    /// The tests the guest's `/init` should run, in order; empty for a bare boot.
    pub tests: Vec<RequestedTest>,
    /// A scheduler to start first; `None` keeps the kernel's default scheduler.
    pub scheduler: Option<SchedulerRequest>,
    /// Extra arguments for the test.
    pub args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(
        "the kernel command line has no {CMDLINE_PARAM}= parameter; was this guest booted by ktstr-vm?"
    )]
    Missing,
    #[error("{CMDLINE_PARAM} is not valid hex-encoded JSON: {0}")]
    Corrupt(String),
    #[error("the request is {0} bytes on the kernel command line; the limit is {MAX_PARAM_LEN}")]
    TooLong(usize),
}

impl Request {
    pub fn new(topology: Topology) -> Self {
        Request { topology, tests: Vec::new(), scheduler: None, args: Vec::new() }
    }

    /// Adds the base run of `test`, without flags.
    pub fn with_test(mut self, test: &str) -> Self {
        self.tests.push(RequestedTest {
            name: test.to_string(),
            variant: "base".to_string(),
            flags: Vec::new(),
        });
        self
    }

    /// Whether this request fits the kernel command line.
    pub fn fits_cmdline(&self) -> bool {
        self.to_cmdline_param().is_ok()
    }

    /// The `ktstr.request=<hex>` parameter for the kernel command line.
    pub fn to_cmdline_param(&self) -> Result<String, RequestError> {
        let json = serde_json::to_vec(self).expect("a request always serialises");
        let mut param = format!("{CMDLINE_PARAM}=");
        for byte in json {
            param.push_str(&format!("{byte:02x}"));
        }
        if param.len() > MAX_PARAM_LEN {
            return Err(RequestError::TooLong(param.len()));
        }
        Ok(param)
    }

    /// Finds and decodes the request in a kernel command line (the text of `/proc/cmdline`).
    pub fn from_cmdline(cmdline: &str) -> Result<Self, RequestError> {
        let prefix = format!("{CMDLINE_PARAM}=");
        let hex = cmdline
            .split_ascii_whitespace()
            .find_map(|word| word.strip_prefix(&prefix))
            .ok_or(RequestError::Missing)?;
        let bytes = decode_hex(hex)
            .ok_or_else(|| RequestError::Corrupt("odd length or non-hex digit".into()))?;
        serde_json::from_slice(&bytes).map_err(|e| RequestError::Corrupt(e.to_string()))
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_the_kernel_command_line() {
        let mut req = Request::new("2n2l2c1t".parse().unwrap()).with_test("my test \"quoted\"");
        req.scheduler = Some(SchedulerRequest {
            name: "scx_bpfland".into(),
            path: "/scheduler".into(),
            args: vec!["--slice-us".into(), "500".into()],
            attach_timeout_s: 30,
        });
        let param = req.to_cmdline_param().unwrap();
        assert!(!param.contains(char::is_whitespace));
        let cmdline = format!("console=ttyS0 quiet {param} panic=-1\n");
        assert_eq!(Request::from_cmdline(&cmdline).unwrap(), req);
    }

    #[test]
    fn missing_corrupt_and_oversized_requests_are_errors() {
        assert!(matches!(Request::from_cmdline("console=ttyS0"), Err(RequestError::Missing)));
        assert!(matches!(
            Request::from_cmdline("ktstr.request=abc"),
            Err(RequestError::Corrupt(_))
        ));
        assert!(matches!(Request::from_cmdline("ktstr.request=zz"), Err(RequestError::Corrupt(_))));
        assert!(matches!(
            Request::from_cmdline("ktstr.request=7b7d"),
            Err(RequestError::Corrupt(_))
        ));
        let mut req = Request::new("1n1l1c1t".parse().unwrap());
        req.args = vec!["x".repeat(800)];
        assert!(matches!(req.to_cmdline_param(), Err(RequestError::TooLong(_))));
    }
}
