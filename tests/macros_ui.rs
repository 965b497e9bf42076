//! Compile-time behaviour of `#[ktstr_test]`: the validation errors users see, and a pass
//! case checking the generated `TestEntry` field by field. One trybuild run for all cases,
//! because each run builds a crate.

#[test]
fn ktstr_test_attribute_ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/compile_fail/*.rs");
    t.pass("tests/compile_pass/*.rs");
}
