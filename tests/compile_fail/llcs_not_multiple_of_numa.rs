use ktstr::prelude::*;

#[ktstr_test(llcs = 3, numa_nodes = 2)]
fn t(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
