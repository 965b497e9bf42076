//! Rendering a `stats sql` result: an aligned table, a JSON array of row objects, or CSV.
//!
//! Cell conversions are fixed so scripts can rely on them: SQL NULL is JSON `null` and an
//! empty CSV field; integers and reals are JSON numbers (a non-finite real becomes `null`,
//! which JSON cannot carry); BLOBs are lowercase hex strings in every format.

use std::fmt::Write as _;
use std::io::{self, Write};

use rusqlite::types::Value;
use tabled::builder::Builder;
use tabled::settings::Style;

use crate::warehouse::sql::QueryResult;

/// Borderless, whitespace-aligned table with a header row; NULL shows as `NULL`.
pub fn write_table(out: &mut dyn Write, result: &QueryResult) -> io::Result<()> {
    let mut builder = Builder::default();
    builder.push_record(result.columns.iter().cloned());
    for row in &result.rows {
        builder.push_record(row.iter().map(|v| text_cell(v).unwrap_or_else(|| "NULL".into())));
    }
    let mut table = builder.build();
    table.with(Style::empty());
    for line in table.to_string().lines() {
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A JSON array with one object per row, keys in column order.
pub fn write_json(out: &mut dyn Write, result: &QueryResult) -> io::Result<()> {
    let keys: Vec<String> = result.columns.iter().map(|c| json_string(c)).collect();
    let mut text = String::from("[");
    for (i, row) in result.rows.iter().enumerate() {
        text.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
        for (j, (key, value)) in keys.iter().zip(row).enumerate() {
            if j > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "{key}: {}", json_value(value));
        }
        text.push('}');
    }
    text.push_str(if result.rows.is_empty() { "]" } else { "\n]" });
    writeln!(out, "{text}")
}

/// RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they contain a comma,
/// quote, CR or LF (quotes doubled).
pub fn write_csv(out: &mut dyn Write, result: &QueryResult) -> io::Result<()> {
    let mut line = String::new();
    let mut write_record = |out: &mut dyn Write, fields: &mut dyn Iterator<Item = String>| {
        line.clear();
        for (i, f) in fields.enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&csv_field(&f));
        }
        line.push_str("\r\n");
        out.write_all(line.as_bytes())
    };
    write_record(out, &mut result.columns.iter().cloned())?;
    for row in &result.rows {
        write_record(out, &mut row.iter().map(|v| text_cell(v).unwrap_or_default()))?;
    }
    Ok(())
}

/// A cell as text; `None` for NULL.
fn text_cell(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(r) => Some(r.to_string()),
        Value::Text(t) => Some(t.clone()),
        Value::Blob(b) => Some(hex(b)),
    }
}

fn json_value(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(r) => serde_json::Number::from_f64(*r).map_or("null".into(), |n| n.to_string()),
        Value::Text(t) => json_string(t),
        Value::Blob(b) => json_string(&hex(b)),
    }
}

fn json_string(s: &str) -> String {
    // Serializing a &str cannot fail.
    serde_json::to_string(s).unwrap_or_default()
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_string()
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

    fn sample() -> QueryResult {
        QueryResult {
            columns: vec!["name".into(), "n".into(), "ratio".into(), "raw".into()],
            rows: vec![
                vec![
                    Value::Text("a,\"b\"\nc".into()),
                    Value::Integer(3),
                    Value::Real(0.5),
                    Value::Blob(vec![0xde, 0xad]),
                ],
                vec![Value::Text("plain".into()), Value::Null, Value::Real(f64::NAN), Value::Null],
            ],
        }
    }

    fn render(f: fn(&mut dyn Write, &QueryResult) -> io::Result<()>, r: &QueryResult) -> String {
        let mut out = Vec::new();
        f(&mut out, r).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(
            render(write_csv, &sample()),
            "name,n,ratio,raw\r\n\"a,\"\"b\"\"\nc\",3,0.5,dead\r\nplain,,NaN,\r\n"
        );
    }

    #[test]
    fn json_is_an_array_of_objects_in_column_order() {
        let text = render(write_json, &sample());
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            serde_json::json!([
                {"name": "a,\"b\"\nc", "n": 3, "ratio": 0.5, "raw": "dead"},
                {"name": "plain", "n": null, "ratio": null, "raw": null}
            ])
        );
        assert!(text.find("\"name\"").unwrap() < text.find("\"ratio\"").unwrap());
        let empty = QueryResult { columns: vec!["x".into()], rows: vec![] };
        assert_eq!(render(write_json, &empty), "[]\n");
    }

    #[test]
    fn the_table_has_a_header_and_aligned_columns() {
        let r = QueryResult {
            columns: vec!["test".into(), "n".into()],
            rows: vec![
                vec![Value::Text("long_name".into()), Value::Integer(1)],
                vec![Value::Text("x".into()), Value::Null],
            ],
        };
        let text = render(write_table, &r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let col = lines[0].find(" n").unwrap();
        assert_eq!(lines[1].find(" 1").unwrap(), col, "{text}");
        assert_eq!(lines[2].find(" NULL").unwrap(), col, "{text}");
    }
}
