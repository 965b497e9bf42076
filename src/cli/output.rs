//! Output context: whether stdout gets colour, decided once per command.
//!
//! Colour is used only when stdout is a terminal and `NO_COLOR` is unset or empty
//! (<https://no-color.org>). Everything else writes plain text.

use std::io::IsTerminal;

use crate::report::Styles;

/// Styles for stdout under the current environment.
pub fn stdout_styles() -> Styles {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if !no_color && std::io::stdout().is_terminal() { Styles::colored() } else { Styles::plain() }
}
