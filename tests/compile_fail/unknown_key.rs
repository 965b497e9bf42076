use ktstr::prelude::*;

#[ktstr_test(lcs = 2, cores = 2)]
fn t(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
