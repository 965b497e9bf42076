//! Compile-time behaviour of `#[ktstr_test]`: the validation errors users see, and a pass
//! case checking the generated `TestEntry` field by field. One trybuild run for all cases,
//! because each run builds a crate. Cold, that build is ktstr's whole dependency tree (in
//! `target/tests/trybuild`, not shared with the workspace's), so this test has its own time
//! budget in `.config/nextest.toml`.

#[test]
fn ktstr_test_attribute_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
    t.pass("tests/compile_pass/*.rs");
}
