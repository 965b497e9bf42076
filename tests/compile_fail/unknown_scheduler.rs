use ktstr::prelude::*;

#[derive(Schedulers)]
pub enum Sched {
    #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland")]
    Bpfland,
    #[scheduler(name = "scx_mine", package = "mine")]
    Mine,
}

#[ktstr_test(scheduler = "scx_lavd")]
fn t(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {}
