use ktstr::prelude::*;

#[ktstr_test(duration_s = 1)]
fn t(_ctx: &mut Ctx, _extra: u32) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
