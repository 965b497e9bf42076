//! The pairing record: `provenance.repeat` in a sidecar reaches the warehouse's `repeat`
//! column (next to `run_token`, with which it names an A/B pair), and a sidecar without it
//! reads NULL there. The field sits inside `provenance`, the one object ktstr ignores.

use ktstr::sidecar::SidecarResult;

use crate::util::TestDir;

fn sidecar(test: &str, token: Option<&str>, repeat: Option<u32>) -> String {
    let mut s = SidecarResult::empty(test);
    s.project_commit = Some("abc1234".into());
    s.kernel_version = Some("6.14.2".into());
    s.timestamp = "2026-04-27T09:15:02Z".into();
    s.run_id = format!("20260427T091455Z-{}", repeat.unwrap_or(9));
    s.provenance.run_token = token.map(str::to_string);
    s.provenance.repeat = repeat;
    s.to_json_pretty()
}

#[test]
fn the_repeat_index_is_a_warehouse_column_beside_the_run_token() {
    let t = TestDir::new();
    let with = sidecar("paired", Some("ktstr-ab-1"), Some(1));
    let doc: serde_json::Value = serde_json::from_str(&with).unwrap();
    assert_eq!(doc["provenance"]["repeat"], 1, "{with}");
    assert!(doc.get("repeat").is_none(), "nothing new at the top level ktstr reads: {with}");
    assert_eq!(serde_json::from_str::<SidecarResult>(&with).unwrap().provenance.repeat, Some(1));

    t.write(
        "6.14.2-abc1234/repeat-0/paired-0.ktstr.json",
        &sidecar("paired", Some("ktstr-ab-1"), Some(0)),
    );
    t.write("6.14.2-abc1234/repeat-1/paired-1.ktstr.json", &with);
    t.write("6.14.2-abc1234/single-0.ktstr.json", &sidecar("single", Some("ktstr-test-2"), None));
    let run = t.run(&[
        "stats",
        "sql",
        "--csv",
        "SELECT test_name, run_token, repeat FROM sidecar ORDER BY test_name, repeat",
    ]);
    run.expect_code(0);
    assert_eq!(
        run.stdout.trim_end(),
        "test_name,run_token,repeat\r\npaired,ktstr-ab-1,0\r\npaired,ktstr-ab-1,1\r\n\
         single,ktstr-test-2,"
    );
}
