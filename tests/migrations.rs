//! Migrations are append-only: once a later migration exists, a migration's text is frozen,
//! because databases in the field have already applied it (refinery refuses a database whose
//! applied migration no longer matches its file, and an edit would silently not reach them
//! anyway). Each frozen migration's blake3 is pinned here; the newest one may still change.
//! A schema change is a new `V{n+1}__….sql`, after which the previous newest gets its pin.

use std::path::Path;

/// (file name, blake3 of its bytes) for every migration except the newest.
const FROZEN: &[(&str, &str)] = &[
    ("V1__initial_schema.sql", "fcbcdf0a328e10777f2c910db684dea244100e6c57268f57879e7fe21c5eb973"),
    ("V2__compare_indexes.sql", "3cdbe1360d699fd67104a322e9d8770e87c993155d316fd4431ac5d44999ea8d"),
    (
        "V3__document_dictionary.sql",
        "d19347b7c0f7bbdaa89ebba1dcf06e3c3823b5f3425b098a11d9be2cf717832e",
    ),
    ("V4__run_dir_state.sql", "15eb3d12ce495058b6ee9a383819465c9665c70a85b729f25f9a4d1025ed450f"),
    (
        "V5__source_file_status_check.sql",
        "7b2dce3106ef4b832f69b012139d278c334ecbae7d87b1c64e14a2f0219b3080",
    ),
    ("V6__sidecar_repeat.sql", "03ae5d2885a38649a456bb51cbb7c1d2f41218f88dc5517178945e4debf46385"),
    ("V7__merge_sources.sql", "d2e6b78949aa97c9ffeda91bd6be0b448abf9092df0df1f45014c73494405a7c"),
];

fn migrations() -> Vec<(u32, String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut found: Vec<(u32, String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix('V')?.split_once("__")?.0.parse().ok()?;
            Some((version, name, std::fs::read(e.path()).unwrap()))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn migrations_before_the_newest_are_unchanged() {
    let found = migrations();
    let (newest, frozen) = found.split_last().expect("at least one migration");
    let names: Vec<&str> = frozen.iter().map(|(_, n, _)| n.as_str()).collect();
    let pinned: Vec<&str> = FROZEN.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names, pinned,
        "every migration but the newest ({}) must be pinned in FROZEN, in order",
        newest.1
    );
    for ((_, name, bytes), (_, pin)) in frozen.iter().zip(FROZEN) {
        let actual = blake3::hash(bytes).to_hex().to_string();
        assert_eq!(
            &actual, pin,
            "{name} changed after a later migration was added; revert it and put the change \
             in a new migration"
        );
    }
}

#[test]
fn migration_versions_are_consecutive_from_one() {
    let versions: Vec<u32> = migrations().iter().map(|(v, _, _)| *v).collect();
    let expected: Vec<u32> = (1..=versions.len() as u32).collect();
    assert_eq!(versions, expected, "migration versions must run 1, 2, 3, … with no gap or twin");
}
