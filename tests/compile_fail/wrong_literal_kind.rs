use ktstr::prelude::*;

#[ktstr_test(max_spread_pct = 5, not_starved = 1)]
fn t(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
