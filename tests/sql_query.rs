//! `stats sql` on results too big or too slow to hold: CSV and JSON stream row by row, the
//! table keeps its first rows and says so, `--timeout` interrupts a runaway query, and an
//! empty query says it is empty. Each drives the real binary on a real warehouse.

use crate::util::TestDir;

/// A query that never ends on its own.
const ENDLESS: &str =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c";

fn warehouse_with_one_sidecar() -> TestDir {
    let t = TestDir::new();
    t.sidecar("run", "a", 1);
    t.run(&["stats", "ingest"]).expect_code(0);
    t
}

const TIMED_OUT: &str = "error: the query was stopped after 1s (--timeout); narrow it with \
                         WHERE or LIMIT, or raise --timeout\n";

#[test]
fn sql_csv_streams_the_rows_written_before_the_timeout_stops_it() {
    let t = warehouse_with_one_sidecar();
    let run = t.run(&["stats", "sql", "--no-ingest", "--csv", "--timeout", "1s", ENDLESS]);
    run.expect_code(2);
    assert_eq!(run.stderr, TIMED_OUT);
    // A query held whole before printing would have printed nothing by the deadline.
    assert!(run.stdout.starts_with("x\r\n1\r\n2\r\n3\r\n"), "{:.200}", run.stdout);
    let lines = run.stdout.lines().count();
    assert!(lines > 1000, "rows stream out while the query runs; got {lines} lines");
    // Every line written is a whole record: the output ends at a record boundary.
    assert!(run.stdout.ends_with("\r\n"), "{:?}", &run.stdout[run.stdout.len() - 20..]);
}

#[test]
fn sql_json_streams_objects_before_the_timeout_stops_it() {
    let t = warehouse_with_one_sidecar();
    let run = t.run(&["stats", "sql", "--no-ingest", "--json", "--timeout", "1s", ENDLESS]);
    run.expect_code(2);
    assert_eq!(run.stderr, TIMED_OUT);
    assert!(run.stdout.starts_with("[\n  {\"x\": 1},\n  {\"x\": 2},\n"), "{:.200}", run.stdout);
    assert!(run.stdout.lines().count() > 1000);
}

#[test]
fn sql_timeout_is_off_by_default_and_leaves_a_quick_query_alone() {
    let t = warehouse_with_one_sidecar();
    let run =
        t.run(&["stats", "sql", "--no-ingest", "--csv", "--timeout", "30s", "SELECT 1 AS one"]);
    run.expect_code(0);
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("one\r\n1\r\n", ""));
    for bad in ["0s", "soon", "-1s"] {
        let flag = format!("--timeout={bad}");
        let run = t.run(&["stats", "sql", "--no-ingest", &flag, "SELECT 1"]);
        run.expect_code(2);
        assert!(run.stderr.contains("invalid value"), "{bad}: {}", run.stderr);
    }
}

#[test]
fn sql_table_shows_the_first_rows_and_says_there_were_more() {
    let t = warehouse_with_one_sidecar();
    let rows = |n: u32| {
        format!(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
             SELECT x FROM c"
        )
    };
    let run = t.run(&["stats", "sql", "--no-ingest", &rows(1500)]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1001, "a header and 1000 rows");
    assert_eq!((lines[1].trim(), lines[1000].trim()), ("1", "1000"));
    assert_eq!(
        run.stderr,
        "ktstr: showing the first 1000 rows; the query returned more. Use --csv or --json for \
         every row, or add a LIMIT\n"
    );
    // An endless query is capped too: the table never waits for a last row.
    let run = t.run(&["stats", "sql", "--no-ingest", ENDLESS]);
    run.expect_code(0);
    assert_eq!(run.stdout.lines().count(), 1001);
    // Exactly the cap is not "more".
    let run = t.run(&["stats", "sql", "--no-ingest", &rows(1000)]);
    run.expect_code(0);
    assert_eq!((run.stdout.lines().count(), run.stderr.as_str()), (1001, ""));
}

#[test]
fn sql_an_empty_query_says_the_query_is_empty() {
    let t = warehouse_with_one_sidecar();
    for query in ["", "   ", " ; ", "-- only a comment"] {
        let run = t.run(&["stats", "sql", "--no-ingest", "--", query]);
        run.expect_code(2);
        assert_eq!(
            run.stderr,
            "error: the query is empty; pass one statement, e.g. \"SELECT count(*) FROM \
             sidecar\"\n",
            "{query:?}"
        );
        assert_eq!(run.stdout, "");
    }
}
