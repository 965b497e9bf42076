//! `stats explain-sidecar`: the null report as text or JSON (ktstr's layout, schema "1").

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use crate::sidecar::explain::{Explanation, OPTIONAL_FIELDS};

/// Per-sidecar blocks, then corrupt and unreadable files.
pub fn write_text(out: &mut dyn Write, ex: &Explanation) -> io::Result<()> {
    writeln!(out, "walked {} sidecar file(s), parsed {} valid", ex.walked, ex.valid())?;
    writeln!(out)?;
    for s in &ex.sidecars {
        writeln!(out, "test: {}", s.test_name)?;
        writeln!(out, "  topology: {}", s.topology)?;
        writeln!(out, "  scheduler: {}", s.scheduler)?;
        writeln!(out, "  run_id: {}", s.run_id)?;
        writeln!(out, "  arch: {}", s.arch.as_deref().unwrap_or("-"))?;
        let populated =
            if s.populated.is_empty() { "<none>".to_string() } else { s.populated.join(", ") };
        writeln!(out, "  populated optional fields ({}): {populated}", s.populated.len())?;
        if s.none.is_empty() {
            writeln!(out, "  none fields: <all populated>")?;
        } else {
            writeln!(out, "  none fields ({}):", s.none.len())?;
            for &i in &s.none {
                let f = &OPTIONAL_FIELDS[i];
                writeln!(out, "    {} [{}]", f.name, f.classification.label())?;
                for cause in f.causes {
                    writeln!(out, "      - {cause}")?;
                }
                if let Some(fix) = f.fix {
                    writeln!(out, "      fix: {fix}")?;
                }
            }
        }
        writeln!(out)?;
    }
    if !ex.corrupt.is_empty() {
        writeln!(out, "corrupt sidecars ({}):", ex.corrupt.len())?;
        for c in &ex.corrupt {
            writeln!(out, "  {}", c.path.display())?;
            writeln!(out, "    error: {}", c.error)?;
            if let Some(prose) = &c.enriched {
                writeln!(out, "    enriched: {prose}")?;
            }
        }
    }
    if !ex.io_errors.is_empty() {
        if !ex.corrupt.is_empty() {
            writeln!(out)?;
        }
        writeln!(out, "io errors ({}):", ex.io_errors.len())?;
        for e in &ex.io_errors {
            writeln!(out, "  {}", e.path.display())?;
            writeln!(out, "    error: {}", e.error)?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct Doc<'a> {
    _schema_version: &'static str,
    _walk: Walk,
    fields: BTreeMap<&'static str, FieldJson<'a>>,
}

#[derive(Serialize)]
struct Walk {
    walked: usize,
    valid: usize,
    errors: Vec<ErrorJson>,
    io_errors: Vec<IoErrorJson>,
}

#[derive(Serialize)]
struct ErrorJson {
    path: String,
    error: String,
    enriched_message: Option<String>,
}

#[derive(Serialize)]
struct IoErrorJson {
    path: String,
    error: String,
}

#[derive(Serialize)]
struct FieldJson<'a> {
    none_count: usize,
    some_count: usize,
    classification: &'static str,
    causes: &'a [&'static str],
    fix: Option<&'static str>,
}

/// Pretty JSON, `fields` keyed alphabetically, both error arrays always present, no trailing
/// newline (as ktstr prints it).
pub fn write_json(out: &mut dyn Write, ex: &Explanation) -> io::Result<()> {
    let doc = Doc {
        _schema_version: "1",
        _walk: Walk {
            walked: ex.walked,
            valid: ex.valid(),
            errors: ex
                .corrupt
                .iter()
                .map(|c| ErrorJson {
                    path: c.path.display().to_string(),
                    error: c.error.clone(),
                    enriched_message: c.enriched.clone(),
                })
                .collect(),
            io_errors: ex
                .io_errors
                .iter()
                .map(|e| IoErrorJson { path: e.path.display().to_string(), error: e.error.clone() })
                .collect(),
        },
        fields: ex
            .field_counts()
            .into_iter()
            .map(|c| {
                let f = c.field;
                let entry = FieldJson {
                    none_count: c.none_count,
                    some_count: c.some_count,
                    classification: f.classification.label(),
                    causes: f.causes,
                    fix: f.fix,
                };
                (f.name, entry)
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::SidecarResult;
    use crate::sidecar::explain::explain;
    use crate::sidecar::read::{ReadError, ReadErrorKind};

    #[test]
    fn text_lists_nulls_with_causes_and_errors() {
        let mut doc = SidecarResult::empty("t");
        doc.run_id = "r-1".into();
        let bad =
            ReadError { path: "bad.ktstr.json".into(), kind: ReadErrorKind::NotJson("eof".into()) };
        let ex = explain(vec![Ok(doc), Err(bad)]);
        let mut out = Vec::new();
        write_text(&mut out, &ex).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(
            "walked 2 sidecar file(s), parsed 1 valid\n\ntest: t\n  topology: 1n1l1c1t\n  \
             scheduler: eevdf\n  run_id: r-1\n  arch: -\n  populated optional fields (0): \
             <none>\n  none fields (10):\n    scheduler_commit [expected]\n      - "
        ));
        assert!(text.contains("    project_commit [actionable]\n"));
        assert!(text.contains("      fix: set KTSTR_KERNEL to a local kernel git tree\n"));
        assert!(text.ends_with("corrupt sidecars (1):\n  bad.ktstr.json\n    error: eof\n"));
    }

    #[test]
    fn json_has_the_reference_shape() {
        let ex = explain(vec![Ok(SidecarResult::empty("t"))]);
        let mut out = Vec::new();
        write_json(&mut out, &ex).unwrap();
        assert!(!out.ends_with(b"\n"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["_schema_version"], "1");
        assert_eq!(v["_walk"]["walked"], 1);
        assert_eq!(v["_walk"]["errors"], serde_json::json!([]));
        assert_eq!(v["_walk"]["io_errors"], serde_json::json!([]));
        let fields = v["fields"].as_object().unwrap();
        assert_eq!(fields.len(), 10);
        assert_eq!(fields["host"]["none_count"], 1);
        assert_eq!(fields["host"]["some_count"], 0);
        assert_eq!(fields["payload"]["classification"], "expected");
        assert_eq!(fields["monitor"]["fix"], serde_json::Value::Null);
    }
}
