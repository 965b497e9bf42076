//! Rendering: typed results in, text or JSON out. Nothing here computes a result; every
//! function writes to a `&mut dyn Write` chosen by the caller.

pub mod calibrate;
pub mod compare;
pub mod compare_noise;
pub mod sql;

/// ANSI styles, empty strings when colour is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Styles {
    pub red: &'static str,
    pub green: &'static str,
    pub bold: &'static str,
    pub reset: &'static str,
}

impl Styles {
    pub fn plain() -> Self {
        Styles { red: "", green: "", bold: "", reset: "" }
    }

    pub fn colored() -> Self {
        Styles { red: "\x1b[31m", green: "\x1b[32m", bold: "\x1b[1m", reset: "\x1b[0m" }
    }

    pub fn is_colored(&self) -> bool {
        !self.reset.is_empty()
    }
}

pub mod explain;
pub mod history;
pub mod host;
pub mod host_delta;
pub mod html;
pub mod metrics;
pub mod runs;
pub mod table;
pub mod values;
