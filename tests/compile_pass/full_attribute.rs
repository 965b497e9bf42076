use ktstr::prelude::*;

const FLAG_LLC: &str = "llc";

/// Docs stay on the body.
#[ktstr_test(
    llcs = 2,
    cores = 2,
    numa_nodes = 1,
    memory_mb = 512,
    scheduler = "eevdf",
    duration_s = 1,
    workers_per_cgroup = 3,
    max_spread_pct = 40.0,
    max_gap_ms = 500,
    not_starved = true,
    required_flags = [FLAG_LLC],
    excluded_flags = ["steal"],
    max_llcs = 8,
    host_only = true,
    gauntlet = ["tiny-1llc", "2n4l2c1t:borrow+llc"],
    gauntlet_profiles = ["default", "borrow"]
)]
fn full(ctx: &Ctx) -> Result<AssertResult> {
    ensure!(ctx.duration().as_secs() == 1, "duration");
    Ok(AssertResult::pass(ScenarioStats::default()))
}

fn main() {
    let e = &__KTSTR_ENTRY_FULL;
    assert_eq!(e.name, "full");
    assert_eq!(e.topology, Topology::new(1, 2, 2, 1));
    assert_eq!(e.memory_mb, Some(512));
    assert_eq!((e.duration_s, e.workers_per_cgroup), (1, 3));
    assert_eq!(e.thresholds.max_spread_pct, Some(40.0));
    assert_eq!(e.thresholds.max_gap_ms, Some(500));
    assert_eq!(e.thresholds.max_throughput_cv, None);
    assert_eq!(e.required_flags, ["llc"]);
    assert_eq!(e.excluded_flags, ["steal"]);
    assert_eq!(e.constraints.max_llcs, Some(8));
    assert_eq!(e.constraints.min_llcs, TopologyConstraints::DEFAULT.min_llcs);
    assert!(e.host_only && !e.expect_err);
    let v: Vec<(&str, String, &[&str])> =
        e.gauntlet.iter().map(|v| (v.preset, v.topology.to_string(), v.flags)).collect();
    assert_eq!(
        v,
        [
            ("tiny-1llc", "1n1l4c1t".to_string(), &[][..]),
            ("tiny-1llc", "1n1l4c1t".to_string(), &["borrow"][..]),
            ("2n4l2c1t", "2n4l2c1t".to_string(), &["borrow", "llc"][..]),
        ]
    );
    assert!(e.validate().is_ok());
}
