//! `stats list`: one row per run directory, as a table or JSON.

use std::io::{self, Write};

use serde::Serialize;

/// Whether a run's directory is still on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Present,
    /// Only the warehouse still has its sidecars (the directory was pre-cleared or removed).
    Archived,
}

impl RunState {
    pub fn label(self) -> &'static str {
        match self {
            RunState::Present => "present",
            RunState::Archived => "archived",
        }
    }
}

/// One line of `stats list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub run: String,
    pub tests: usize,
    pub date: Option<String>,
    pub arch: Option<String>,
    pub state: RunState,
}

/// ktstr's `RUN TESTS DATE ARCH` table with a `STATE` column appended; unknowns as `-`.
pub fn write_text(out: &mut dyn Write, rows: &[RunRow]) -> io::Result<()> {
    let dash = |x: &Option<String>| x.clone().unwrap_or_else(|| "-".to_string());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.run.clone(),
                r.tests.to_string(),
                dash(&r.date),
                dash(&r.arch),
                r.state.label().to_string(),
            ]
        })
        .collect();
    let header = ["RUN", "TESTS", "DATE", "ARCH", "STATE"];
    out.write_all(super::table::render(&header, &cells).as_bytes())
}

/// Pretty JSON array of rows, unknowns as `null`, then `\n`.
pub fn write_json(out: &mut dyn Write, rows: &[RunRow]) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, rows)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknowns_render_as_dashes_and_nulls() {
        let rows = vec![RunRow {
            run: "6.14-abc1234".into(),
            tests: 3,
            date: None,
            arch: Some("x86_64".into()),
            state: RunState::Archived,
        }];
        let mut out = Vec::new();
        write_text(&mut out, &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            " RUN           TESTS  DATE  ARCH    STATE\n 6.14-abc1234  3      -     x86_64  archived\n"
        );
        let mut out = Vec::new();
        write_json(&mut out, &rows).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["date"], serde_json::Value::Null);
        assert_eq!(v[0]["state"], "archived");
    }
}
