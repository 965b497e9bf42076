//! A sidecar's file name: the canonical flag order and the variant hash (stats-reference §1.2).
//!
//! The name is `{test_name}-{hash:016x}.ktstr.json`, where the hash covers exactly the fields
//! that make a test *variant* (topology, scheduler, payload, work type, flags, sysctls, kargs)
//! and nothing about where or when it ran. Re-running a variant therefore lands on the same
//! file name, which is what lets a run directory hold one result per variant. The byte stream
//! is ktstr's, so both tools name the same variant identically.
//!
//! This module only computes names; [`super::write`] decides the directory and writes.

use std::hash::Hasher;

use siphasher::sip::SipHasher13;

use super::model::SidecarResult;

/// Scenario flags in ktstr's canonical order (`scenario::flags::ALL`). Flags not listed here
/// sort after all of these, lexically.
pub const KNOWN_FLAGS: [&str; 6] = ["llc", "borrow", "steal", "rebal", "reject-pin", "no-ctrl"];

/// Put `flags` into canonical order and drop duplicates: known flags by their position in
/// [`KNOWN_FLAGS`], then unknown flags sorted lexically.
///
/// Applied at write time so that the stored order, and so the file name, depend only on the
/// flag *set* a test declared.
pub fn canonicalize_flags(flags: &mut Vec<String>) {
    let rank = |f: &str| KNOWN_FLAGS.iter().position(|k| *k == f).unwrap_or(KNOWN_FLAGS.len());
    flags.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));
    flags.dedup();
}

/// The 64-bit variant hash of a sidecar: SipHash-1-3 with keys (0, 0) over ktstr's byte stream.
///
/// Flags are hashed in canonical order (a copy is canonicalized here, so the hash is the same
/// before and after [`canonicalize_flags`]); sysctls and kargs are hashed sorted but stay
/// stored in declared order.
pub fn variant_hash(sc: &SidecarResult) -> u64 {
    let mut h = SipHasher13::new_with_keys(0, 0);
    // `Hasher::write` feeds raw bytes: no length prefixes, unlike `Hash for str`.
    let mut field = |bytes: &[u8]| {
        h.write(bytes);
        h.write(&[0x00]);
    };
    field(sc.topology.as_bytes());
    field(sc.scheduler.as_bytes());
    h.write(&[0xFC]);
    h.write(sc.payload.as_deref().unwrap_or("").as_bytes());
    h.write(&[0x00]);
    h.write(sc.work_type.as_bytes());
    h.write(&[0x00]);

    let mut flags = sc.active_flags.clone();
    canonicalize_flags(&mut flags);
    write_list(&mut h, 0xFE, flags.iter());
    write_list(&mut h, 0xFD, sorted(&sc.sysctls).into_iter());
    write_list(&mut h, 0xFF, sorted(&sc.kargs).into_iter());
    h.finish()
}

/// `{test_name}-{hash:016x}.ktstr.json`.
pub fn sidecar_file_name(sc: &SidecarResult) -> String {
    format!("{}-{:016x}.ktstr.json", sc.test_name, variant_hash(sc))
}

fn write_list<'a>(h: &mut SipHasher13, tag: u8, items: impl Iterator<Item = &'a String>) {
    h.write(&[tag]);
    for item in items {
        h.write(item.as_bytes());
        h.write(&[0x00]);
    }
}

/// Byte-lexicographic order, which is what `str`'s `Ord` is.
fn sorted(items: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = items.iter().collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn pinned_first() -> SidecarResult {
        let mut sc = SidecarResult::empty("t");
        sc.topology = "1n2l4c1t".into();
        sc.scheduler = "scx-ktstr".into();
        sc.payload = None;
        sc.work_type = "CpuSpin".into();
        sc.active_flags = strings(&["llc", "steal"]);
        sc.sysctls = strings(&["sysctl.kernel.sched_cfs_bandwidth_slice_us=1000"]);
        sc.kargs = strings(&["nosmt"]);
        sc
    }

    #[test]
    fn pinned_hash_with_every_list_populated() {
        assert_eq!(variant_hash(&pinned_first()), 0xbc0f38005915a09f);
    }

    #[test]
    fn pinned_hash_with_empty_lists() {
        let mut sc = SidecarResult::empty("t");
        sc.topology = "1n1l1c1t".into();
        sc.scheduler = "eevdf".into();
        sc.work_type = String::new();
        assert_eq!(variant_hash(&sc), 0x1b61394511b42e01);
    }

    #[test]
    fn file_name_is_test_name_and_zero_padded_hash() {
        let mut sc = pinned_first();
        sc.test_name = "cgroup_steady".into();
        assert_eq!(sidecar_file_name(&sc), "cgroup_steady-bc0f38005915a09f.ktstr.json");
        // A hash with leading zero nibbles still renders as 16 digits.
        assert_eq!(format!("{:016x}", 0xabu64), "00000000000000ab");
    }

    #[test]
    fn hash_ignores_where_and_when_a_test_ran() {
        let base = variant_hash(&pinned_first());
        let mut sc = pinned_first();
        sc.test_name = "other".into();
        sc.host = Some(Default::default());
        sc.project_commit = Some("abc1234-dirty".into());
        sc.kernel_commit = Some("def5678".into());
        sc.scheduler_commit = Some("0123456".into());
        sc.kernel_version = Some("6.14.2".into());
        sc.run_source = Some("ci".into());
        sc.timestamp = "2026-04-27T09:15:02Z".into();
        sc.run_id = "20260427T091455Z-3".into();
        sc.passed = false;
        sc.provenance.run_token = Some("tok".into());
        assert_eq!(variant_hash(&sc), base);
    }

    #[test]
    fn hash_changes_with_each_variant_field() {
        let base = variant_hash(&pinned_first());
        let edits: [fn(&mut SidecarResult); 7] = [
            |s| s.topology = "1n1l4c1t".into(),
            |s| s.scheduler = "scx_rusty".into(),
            |s| s.payload = Some("fio".into()),
            |s| s.work_type = "Mixed".into(),
            |s| s.active_flags.push("borrow".into()),
            |s| s.sysctls.clear(),
            |s| s.kargs.push("quiet".into()),
        ];
        for edit in edits {
            let mut sc = pinned_first();
            edit(&mut sc);
            assert_ne!(variant_hash(&sc), base);
        }
    }

    #[test]
    fn empty_payload_string_and_null_payload_hash_alike() {
        // ktstr writes nothing between 0xFC and 0x00 for a null payload.
        let mut a = pinned_first();
        a.payload = Some(String::new());
        assert_eq!(variant_hash(&a), variant_hash(&pinned_first()));
    }

    #[test]
    fn hash_is_invariant_to_flag_sysctl_and_karg_order() {
        let mut a = pinned_first();
        a.active_flags = strings(&["zeta", "steal", "llc", "alpha"]);
        a.sysctls = strings(&["sysctl.b=1", "sysctl.a=2"]);
        a.kargs = strings(&["nosmt", "mitigations=off", "quiet"]);
        let mut b = a.clone();
        b.active_flags = strings(&["alpha", "llc", "zeta", "steal"]);
        b.sysctls.reverse();
        b.kargs.reverse();
        assert_eq!(variant_hash(&a), variant_hash(&b));
    }

    #[test]
    fn lists_do_not_bleed_into_each_other() {
        // The tag bytes keep an item from moving between lists without changing the hash.
        let mut a = pinned_first();
        a.sysctls = strings(&["x"]);
        a.kargs = Vec::new();
        let mut b = pinned_first();
        b.sysctls = Vec::new();
        b.kargs = strings(&["x"]);
        assert_ne!(variant_hash(&a), variant_hash(&b));
    }

    #[test]
    fn canonical_flag_order_known_first_then_unknown_sorted_and_deduplicated() {
        let mut flags =
            strings(&["no-ctrl", "zzz", "llc", "aaa", "reject-pin", "steal", "llc", "aaa"]);
        canonicalize_flags(&mut flags);
        assert_eq!(flags, strings(&["llc", "steal", "reject-pin", "no-ctrl", "aaa", "zzz"]));

        let mut all = strings(&["no-ctrl", "reject-pin", "rebal", "steal", "borrow", "llc"]);
        canonicalize_flags(&mut all);
        assert_eq!(all, strings(&KNOWN_FLAGS));
    }
}
