//! `#[ktstr_test]`: declares a scheduler test for the ktstr harness.
//!
//! This crate owns the attribute's syntax and compile-time validation ([`attrs`]) and the
//! expansion ([`expand`]). What the values mean (topology strings and their rules, gauntlet
//! presets, the threshold list) is `ktstr-decl`'s, shared with the runtime. Running a test is
//! the library's job (`ktstr::harness::run_entry`); use the macro through `ktstr::prelude`.

use proc_macro::TokenStream;

mod attrs;
mod expand;
mod schedulers;

/// Turns `fn name(ctx: &Ctx) -> anyhow::Result<AssertResult>` into a ktstr test.
///
/// ```ignore
/// use ktstr::prelude::*;
///
/// #[ktstr_test(llcs = 1, cores = 2, duration_s = 1, gauntlet = ["tiny-1llc", "smt-2llc:llc"])]
/// fn spin_two(ctx: &Ctx) -> Result<AssertResult> {
///     /* run a scenario and return its verdict */
/// }
/// ```
///
/// Expands to the body renamed `__ktstr_inner_name`, a `static` `TestEntry` holding what
/// the attribute declared (the rest from `TestEntry::DEFAULT`), and a plain `#[test] fn name()`
/// that runs the entry, so `cargo test` and `cargo nextest run` need no extra arguments.
///
/// Keys: topology (`numa_nodes`, `llcs`, `cores`, `threads` or `topology = "1n2l2c1t"`),
/// `memory_mb`, `scheduler = "eevdf"`, `duration_s`, `workers_per_cgroup`, the `Thresholds`
/// fields (bools, integers, float literals), `required_flags`/`excluded_flags` (arrays of
/// string literals or const paths), the gauntlet constraints (`min_*`/`max_*` of
/// `numa_nodes`, `llcs`, `cpus`, and `requires_smt`), `host_only`, `fresh_scheduler` (in a VM
/// boot, restart the scheduler before this test), `expect_err`, and
/// `gauntlet = ["preset", "preset:flag+flag", "2n4l2c1t"]` with optional
/// `gauntlet_profiles = ["default", "llc"]` to cross every plain preset with each profile.
#[proc_macro_attribute]
pub fn ktstr_test(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = attrs::parse(args.into());
    let item = syn::parse::<syn::ItemFn>(item);
    let result = match (parsed, item) {
        (Err(e), _) | (_, Err(e)) => Err(e),
        (Ok(attrs), Ok(f)) => expand::check_signature(&f).map(|()| expand::expand(attrs, f)),
    };
    result.unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Declares a test crate's sched_ext schedulers, one unit variant each:
/// `#[scheduler(name = "...", path | on_path | package [+ bin] = "...", args = [...],
/// attach_timeout_s = N)]` and any number of `#[flag(name = "...", args = [...])]`.
///
/// `#[ktstr_test(scheduler = "name")]` then resolves the name at compile time; an unknown one
/// is an error listing the declared schedulers. Declare it once per test crate, at the crate
/// root (tests in modules reach it through `use super::*`).
#[proc_macro_derive(Schedulers, attributes(scheduler, flag))]
pub fn derive_schedulers(item: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(item) {
        Ok(input) => schedulers::derive(input).unwrap_or_else(syn::Error::into_compile_error),
        Err(e) => e.into_compile_error(),
    }
    .into()
}
