use ktstr::prelude::*;

#[ktstr_test(duration_s = 0)]
fn t(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
