use ktstr::prelude::*;

/// Schedulers this crate tests under; `eevdf` needs no declaration.
#[derive(Clone, Copy, Schedulers)]
pub enum Sched {
    #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland", args = ["--slice-us", "5000"])]
    #[flag(name = "long-slice", args = ["--slice-us", "50000"])]
    #[flag(name = "kthreads", args = ["--local-kthreads"])]
    Bpfland,
    #[scheduler(name = "my_sched", package = "my-sched", bin = "my_sched", attach_timeout_s = 60)]
    Mine,
    #[scheduler(name = "fixed", path = "/opt/scx/scx_fixed")]
    Fixed,
}

#[ktstr_test(scheduler = "scx_bpfland", required_flags = ["long-slice"])]
fn under_bpfland(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

mod nested {
    use super::*;

    #[ktstr_test(scheduler = "my_sched")]
    fn under_mine(_ctx: &Ctx) -> Result<AssertResult> {
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    pub fn entry() -> &'static TestEntry {
        &__KTSTR_ENTRY_UNDER_MINE
    }
}

#[ktstr_test(scheduler = "eevdf")]
fn under_eevdf(_ctx: &Ctx) -> Result<AssertResult> {
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {
    let e = &__KTSTR_ENTRY_UNDER_BPFLAND;
    assert_eq!(e.scheduler, "scx_bpfland");
    let d = e.scheduler_decl.expect("a declared scheduler is attached to the entry");
    assert_eq!(*d, *Sched::Bpfland.scheduler());
    assert_eq!(d.binary, SchedulerBinary::OnPath("scx_bpfland"));
    assert_eq!(d.args, ["--slice-us", "5000"]);
    assert_eq!(
        d.args_for(&["long-slice".to_string()]).unwrap(),
        ["--slice-us", "5000", "--slice-us", "50000"]
    );
    assert_eq!(d.attach_timeout_s, Scheduler::DEFAULT_ATTACH_TIMEOUT_S);
    assert!(e.validate().is_ok());

    let m = nested::entry().scheduler_decl.unwrap();
    assert_eq!(m.binary, SchedulerBinary::Package { package: "my-sched", bin: "my_sched" });
    assert_eq!(m.attach_timeout_s, 60);
    assert_eq!(Sched::Fixed.scheduler().binary, SchedulerBinary::Path("/opt/scx/scx_fixed"));
    assert_eq!(Sched::ALL.len(), 3);

    assert_eq!(__KTSTR_ENTRY_UNDER_EEVDF.scheduler_decl, None);
    assert!(__KTSTR_ENTRY_UNDER_EEVDF.validate().is_ok());
}
