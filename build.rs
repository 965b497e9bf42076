//! refinery embeds `migrations/*.sql` at compile time; without this a *new* migration file
//! would not trigger a rebuild and would silently not be applied.
//!
//! The highest migration version is also handed to the crate as `KTSTR_SCHEMA_VERSION`, so a
//! read-only open compares the database's version with a constant instead of building
//! refinery's runner (which parses every embedded migration) on every read command.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let newest = std::fs::read_dir("migrations")
        .expect("read migrations/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let (version, _) = name.strip_prefix('V')?.split_once("__")?;
            version.parse::<u32>().ok()
        })
        .max()
        .expect("at least one migrations/V<n>__<name>.sql");
    println!("cargo:rustc-env=KTSTR_SCHEMA_VERSION={newest}");
}
