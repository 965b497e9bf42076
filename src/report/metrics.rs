//! `stats list-metrics`: the metric registry as a table or a JSON array (ktstr's layout).

use std::io::{self, Write};

use serde::Serialize;

use crate::metric::{MetricDef, Polarity};

/// Table `NAME POLARITY DEFAULT_ABS DEFAULT_REL UNIT`; numbers in Rust `{}` form (`5`, `0.25`).
pub fn write_text(out: &mut dyn Write, defs: &[MetricDef]) -> io::Result<()> {
    let rows: Vec<Vec<String>> = defs
        .iter()
        .map(|d| {
            vec![
                d.name.to_string(),
                d.polarity.label().to_string(),
                d.default_abs.to_string(),
                d.default_rel.to_string(),
                d.display_unit.to_string(),
            ]
        })
        .collect();
    let header = ["NAME", "POLARITY", "DEFAULT_ABS", "DEFAULT_REL", "UNIT"];
    out.write_all(super::table::render(&header, &rows).as_bytes())
}

#[derive(Serialize)]
struct MetricJson<'a> {
    name: &'a str,
    polarity: Polarity,
    default_abs: f64,
    default_rel: f64,
    display_unit: &'a str,
}

/// Pretty JSON array in registry order, without a trailing newline (as ktstr prints it).
pub fn write_json(out: &mut dyn Write, defs: &[MetricDef]) -> io::Result<()> {
    let items: Vec<MetricJson<'_>> = defs
        .iter()
        .map(|d| MetricJson {
            name: d.name,
            polarity: d.polarity,
            default_abs: d.default_abs,
            default_rel: d.default_rel,
            display_unit: d.display_unit,
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &items)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::METRICS;

    #[test]
    fn text_uses_short_number_forms_and_labels() {
        let mut out = Vec::new();
        write_text(&mut out, &METRICS[..2]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " NAME          POLARITY  DEFAULT_ABS  DEFAULT_REL  UNIT\n \
             worst_spread  lower     5            0.25         %\n \
             worst_gap_ms  lower     500          0.5          ms\n"
        );
    }

    #[test]
    fn json_keeps_float_forms_and_raw_micro_sign() {
        let mut out = Vec::new();
        write_json(&mut out, &METRICS[9..10]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[\n  {\n    \"name\": \"worst_p99_wake_latency_us\",\n    \"polarity\": \
             \"LowerBetter\",\n    \"default_abs\": 50.0,\n    \"default_rel\": 0.25,\n    \
             \"display_unit\": \"µs\"\n  }\n]"
        );
    }
}
