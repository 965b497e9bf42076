//! `stats list-values`: distinct dimension values as text blocks or one JSON object.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde_json::Value;

use crate::warehouse::values::DimensionValues;

/// Text sentinel for a null value.
const UNKNOWN: &str = "unknown";
/// Text sentinel for a dimension with no values.
const EMPTY: &str = "(no sidecars in pool)";

/// `{dim}:` then `  {value}` lines (or a sentinel), then a blank line, per dimension.
pub fn write_text(out: &mut dyn Write, v: &DimensionValues) -> io::Result<()> {
    for (dim, values) in v.labelled() {
        writeln!(out, "{dim}:")?;
        if values.is_empty() {
            writeln!(out, "  {EMPTY}")?;
        }
        for value in values {
            writeln!(out, "  {}", value.unwrap_or(UNKNOWN))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One pretty object, keys alphabetical (as ktstr's output is), nulls as `null`, then `\n`.
pub fn write_json(out: &mut dyn Write, v: &DimensionValues) -> io::Result<()> {
    let map: BTreeMap<&str, Vec<Value>> = v
        .labelled()
        .into_iter()
        .map(|(dim, values)| {
            let values = values.into_iter().map(|x| x.map_or(Value::Null, Value::from)).collect();
            (dim, values)
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &map)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DimensionValues {
        DimensionValues {
            kernel: vec![None, Some("6.14.2".into())],
            scheduler: vec!["eevdf".into()],
            ..Default::default()
        }
    }

    #[test]
    fn text_prints_sentinels() {
        let mut out = Vec::new();
        write_text(&mut out, &sample()).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with(
                "kernel:\n  unknown\n  6.14.2\n\ncommit:\n  (no sidecars in pool)\n\n"
            )
        );
        assert!(text.ends_with("flags:\n  (no sidecars in pool)\n\n"));
    }

    #[test]
    fn json_keys_are_alphabetical() {
        let mut out = Vec::new();
        write_json(&mut out, &sample()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("  \""))
            .map(|l| l.trim().split('"').nth(1).unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(text.contains("\"kernel\": [\n    null,\n    \"6.14.2\"\n  ]"));
        assert!(text.ends_with("}\n"));
    }
}
