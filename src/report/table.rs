//! Plain tables: a header row and data rows, whitespace-padded, no borders and no rules.
//!
//! This mirrors the look of ktstr's tables (comfy-table's `NOTHING` preset): every cell has
//! one space of padding on each side, so a line starts with a space and columns are two
//! spaces apart. Trailing spaces are trimmed, so a line never ends in padding and the output
//! is stable under editors and `diff`.

use tabled::builder::Builder;
use tabled::settings::Style;

/// Render `header` and `rows` as a table, every line ending in `\n`.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut builder = Builder::default();
    builder.push_record(header.iter().copied());
    for row in rows {
        builder.push_record(row.iter().map(String::as_str));
    }
    let mut table = builder.build();
    table.with(Style::empty());
    let mut out = String::new();
    for line in table.to_string().lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_and_separated_by_two_spaces() {
        let rows = vec![
            vec!["alpha".to_string(), "1".to_string(), String::new()],
            vec!["b".to_string(), "12345".to_string(), "µs".to_string()],
        ];
        let out = render(&["NAME", "N", "UNIT"], &rows);
        assert_eq!(out, " NAME   N      UNIT\n alpha  1\n b      12345  µs\n");
    }

    #[test]
    fn a_header_alone_renders_one_line() {
        assert_eq!(render(&["A", "B"], &[]), " A  B\n");
    }
}
