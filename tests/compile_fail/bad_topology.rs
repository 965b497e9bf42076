use ktstr::prelude::*;

#[ktstr_test(gauntlet = ["tiny-1llc", "1n2l2c"])]
fn t(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
