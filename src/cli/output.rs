//! Output context: whether stdout gets colour, decided once per command, and the one way a
//! command writes its product to stdout.
//!
//! Colour is used only when stdout is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>). Everything else writes plain text.
//!
//! A reader that stops early (`| head`) closes the pipe under us. That ends the output and
//! nothing else: the command's exit code stays what its result decided, so a `stats compare`
//! that found a regression exits 1 whatever became of the table. Warnings and errors go to
//! stderr, never through here.

use std::io::{self, IsTerminal, Write};

use crate::report::Styles;

/// Styles for stdout under the current environment.
pub fn stdout_styles() -> Styles {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if !no_color && std::io::stdout().is_terminal() { Styles::colored() } else { Styles::plain() }
}

/// Write a command's product as JSON (`--json`) or as text. A product is written all at
/// once, so it goes through one buffer: one write per buffer-full instead of one per line,
/// as stdout's line buffering does (a compare report is thousands of lines).
pub fn emit(
    json: bool,
    as_json: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    as_text: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    write_stdout(|out| {
        let mut buffered = io::BufWriter::new(out);
        if json { as_json(&mut buffered) } else { as_text(&mut buffered) }?;
        buffered.flush()
    })
}

/// Write to stdout and flush; a closed stdout ([`io::ErrorKind::BrokenPipe`]) is not an error.
pub fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        written => written,
    }
}
