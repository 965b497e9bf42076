//! Rendering a `stats sql` result as it streams: CSV and JSON write each row the moment it
//! arrives (memory stays flat however many rows there are); the aligned table needs every
//! width before its first line, so it keeps at most [`TABLE_ROW_CAP`] rows and says when it
//! stopped there.
//!
//! Cell conversions are fixed so scripts can rely on them: SQL NULL is JSON `null` and an
//! empty CSV field; integers and reals are JSON numbers (a non-finite real becomes `null`,
//! which JSON cannot carry); BLOBs are lowercase hex strings in every format.

use std::fmt::Write as _;
use std::io::{self, Write};

use rusqlite::types::ValueRef;
use tabled::builder::Builder;
use tabled::settings::Style;

use crate::warehouse::sql::RowSink;

/// The most rows the table shows; `--csv`, `--json` or a `LIMIT` see past it.
pub const TABLE_ROW_CAP: usize = 1000;

/// RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they contain a comma,
/// quote, CR or LF (quotes doubled).
pub struct CsvSink<W: Write> {
    out: W,
    line: String,
}

impl<W: Write> CsvSink<W> {
    pub fn new(out: W) -> Self {
        CsvSink { out, line: String::new() }
    }

    /// Flush what is buffered; the sink has nothing to close.
    pub fn finish(mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn write_record(&mut self, fields: impl Iterator<Item = Option<String>>) -> io::Result<()> {
        self.line.clear();
        for (i, f) in fields.enumerate() {
            if i > 0 {
                self.line.push(',');
            }
            push_csv_field(&mut self.line, f.as_deref().unwrap_or(""));
        }
        self.line.push_str("\r\n");
        self.out.write_all(self.line.as_bytes())
    }
}

impl<W: Write> RowSink for CsvSink<W> {
    fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.write_record(names.iter().map(|n| Some(n.clone())))
    }

    fn row(&mut self, cells: &[ValueRef<'_>]) -> io::Result<bool> {
        self.write_record(cells.iter().map(|&c| text_cell(c)))?;
        Ok(true)
    }
}

/// A JSON array with one object per row, keys in column order; `]` is written by
/// [`JsonSink::finish`].
pub struct JsonSink<W: Write> {
    out: W,
    keys: Vec<String>,
    rows: u64,
    line: String,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W) -> Self {
        JsonSink { out, keys: Vec::new(), rows: 0, line: String::new() }
    }

    /// Close the array and flush.
    pub fn finish(mut self) -> io::Result<()> {
        let end = if self.rows == 0 { "[]\n" } else { "\n]\n" };
        self.out.write_all(end.as_bytes())?;
        self.out.flush()
    }
}

impl<W: Write> RowSink for JsonSink<W> {
    fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.keys = names.iter().map(|c| json_string(c)).collect();
        Ok(())
    }

    fn row(&mut self, cells: &[ValueRef<'_>]) -> io::Result<bool> {
        self.line.clear();
        self.line.push_str(if self.rows == 0 { "[\n  {" } else { ",\n  {" });
        for (j, (key, &value)) in self.keys.iter().zip(cells).enumerate() {
            if j > 0 {
                self.line.push_str(", ");
            }
            let _ = write!(self.line, "{key}: {}", json_value(value));
        }
        self.line.push('}');
        self.rows += 1;
        self.out.write_all(self.line.as_bytes())?;
        Ok(true)
    }
}

/// Borderless, whitespace-aligned table with a header row; NULL shows as `NULL`. Keeps the
/// first `cap` rows and stops the query at the one after.
pub struct TableSink {
    cap: usize,
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
    truncated: bool,
}

impl TableSink {
    pub fn new(cap: usize) -> Self {
        TableSink { cap, columns: Vec::new(), rows: Vec::new(), truncated: false }
    }

    /// Whether the query had more rows than the table kept.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Write the table.
    pub fn finish(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut builder = Builder::default();
        builder.push_record(self.columns.iter().cloned());
        for row in &self.rows {
            builder.push_record(row.iter().cloned());
        }
        let mut table = builder.build();
        table.with(Style::empty());
        for line in table.to_string().lines() {
            writeln!(out, "{}", line.trim_end())?;
        }
        out.flush()
    }
}

impl RowSink for TableSink {
    fn columns(&mut self, names: &[String]) -> io::Result<()> {
        self.columns = names.to_vec();
        Ok(())
    }

    fn row(&mut self, cells: &[ValueRef<'_>]) -> io::Result<bool> {
        if self.rows.len() == self.cap {
            self.truncated = true;
            return Ok(false);
        }
        self.rows
            .push(cells.iter().map(|&c| text_cell(c).unwrap_or_else(|| "NULL".into())).collect());
        Ok(true)
    }
}

/// A cell as text; `None` for NULL.
fn text_cell(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Null => None,
        ValueRef::Integer(i) => Some(i.to_string()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Some(hex(b)),
    }
}

fn json_value(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "null".into(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(r) => {
            serde_json::Number::from_f64(r).map_or("null".into(), |n| n.to_string())
        }
        ValueRef::Text(t) => json_string(&String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => json_string(&hex(b)),
    }
}

fn json_string(s: &str) -> String {
    // Serializing a &str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

fn push_csv_field(line: &mut String, f: &str) {
    if f.contains([',', '"', '\r', '\n']) {
        line.push('"');
        line.push_str(&f.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(f);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns() -> Vec<String> {
        ["name", "n", "ratio", "raw"].map(String::from).to_vec()
    }

    fn feed(sink: &mut dyn RowSink) {
        sink.columns(&columns()).unwrap();
        let rows: [&[ValueRef<'_>]; 2] = [
            &[
                ValueRef::Text(b"a,\"b\"\nc"),
                ValueRef::Integer(3),
                ValueRef::Real(0.5),
                ValueRef::Blob(&[0xde, 0xad]),
            ],
            &[ValueRef::Text(b"plain"), ValueRef::Null, ValueRef::Real(f64::NAN), ValueRef::Null],
        ];
        for row in rows {
            assert!(sink.row(row).unwrap());
        }
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let mut out = Vec::new();
        let mut sink = CsvSink::new(&mut out);
        feed(&mut sink);
        sink.finish().unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "name,n,ratio,raw\r\n\"a,\"\"b\"\"\nc\",3,0.5,dead\r\nplain,,NaN,\r\n"
        );
    }

    #[test]
    fn json_is_an_array_of_objects_in_column_order() {
        let mut out = Vec::new();
        let mut sink = JsonSink::new(&mut out);
        feed(&mut sink);
        sink.finish().unwrap();
        let text = String::from_utf8(out).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"name": "a,\"b\"\nc", "n": 3, "ratio": 0.5, "raw": "dead"},
                {"name": "plain", "n": null, "ratio": null, "raw": null}
            ])
        );
        assert!(text.find("\"name\"").unwrap() < text.find("\"ratio\"").unwrap());
        let mut out = Vec::new();
        let mut empty = JsonSink::new(&mut out);
        empty.columns(&["x".to_string()]).unwrap();
        empty.finish().unwrap();
        assert_eq!(out, b"[]\n");
    }

    #[test]
    fn the_table_has_a_header_and_aligned_columns() {
        let mut sink = TableSink::new(TABLE_ROW_CAP);
        sink.columns(&["test".to_string(), "n".to_string()]).unwrap();
        sink.row(&[ValueRef::Text(b"long_name"), ValueRef::Integer(1)]).unwrap();
        sink.row(&[ValueRef::Text(b"x"), ValueRef::Null]).unwrap();
        let mut out = Vec::new();
        sink.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let col = lines[0].find(" n").unwrap();
        assert_eq!(lines[1].find(" 1").unwrap(), col, "{text}");
        assert_eq!(lines[2].find(" NULL").unwrap(), col, "{text}");
        assert!(!sink.truncated());
    }

    #[test]
    fn the_table_keeps_cap_rows_and_stops_at_the_next() {
        let mut sink = TableSink::new(2);
        sink.columns(&["x".to_string()]).unwrap();
        assert!(sink.row(&[ValueRef::Integer(1)]).unwrap());
        assert!(sink.row(&[ValueRef::Integer(2)]).unwrap());
        assert!(!sink.truncated());
        assert!(!sink.row(&[ValueRef::Integer(3)]).unwrap(), "the third row stops the query");
        assert!(sink.truncated());
        let mut out = Vec::new();
        sink.finish(&mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), " x\n 1\n 2\n");
    }
}
