//! The process-wide list of `#[ktstr_test]` entries, and the hook that runs before `main`.
//!
//! The macro places a pointer to each entry in the `ktstr_entries` linker section, so a test
//! binary can find all of its entries without running libtest: the VM backend needs that twice,
//! to describe a binary's tests to the run's coordinator (which groups them into boots) and to
//! run a group's tests inside the guest, where the binary is `/init`. The macro also adds
//! [`before_main`] to `.init_array`, which takes over the process in those two modes and
//! does nothing otherwise. What the two modes do is [`super::vm_backend`]'s; this module only
//! finds entries and dispatches.

use std::sync::atomic::{AtomicBool, Ordering};

use super::entry::TestEntry;

/// The linker section holding `Option<&'static TestEntry>` pointers, one per entry.
pub const SECTION: &str = "ktstr_entries";

// One `None` in the section, so that it exists (and its bounds resolve) in a binary that
// links ktstr without declaring any test.
#[used]
#[unsafe(link_section = "ktstr_entries")]
static SECTION_ANCHOR: Option<&TestEntry> = None;

// Declared as bytes (only their addresses are used), since the entry type has no C layout.
unsafe extern "C" {
    #[link_name = "__start_ktstr_entries"]
    static SECTION_START: u8;
    #[link_name = "__stop_ktstr_entries"]
    static SECTION_STOP: u8;
}

/// Every `#[ktstr_test]` entry linked into this binary, by name.
pub fn entries() -> Vec<&'static TestEntry> {
    let _ = &SECTION_ANCHOR;
    // SAFETY: the linker defines both symbols as the bounds of the `ktstr_entries` section,
    // which holds only `Option<&'static TestEntry>` values (the macro's and the anchor), laid
    // out contiguously and aligned as that type.
    let all = unsafe {
        let start = (&raw const SECTION_START).cast::<Option<&'static TestEntry>>();
        let stop = (&raw const SECTION_STOP).cast::<Option<&'static TestEntry>>();
        let len = (stop as usize - start as usize) / size_of::<Option<&TestEntry>>();
        std::slice::from_raw_parts(start, len)
    };
    let mut found: Vec<&'static TestEntry> = all.iter().flatten().copied().collect();
    found.sort_by_key(|e| e.name);
    found.dedup_by_key(|e| e.name);
    found
}

/// The entry called `name`, if this binary has one.
pub fn find(name: &str) -> Option<&'static TestEntry> {
    entries().into_iter().find(|e| e.name == name)
}

/// Runs from `.init_array` before libtest's `main`: as PID 1 (a VM guest's `/init`) it runs
/// the guest's requested tests and powers off; with `KTSTR_VM_DESCRIBE` set it prints this
/// binary's entries and exits. Otherwise it returns at once and libtest runs as usual.
pub extern "C" fn before_main() {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::SeqCst) {
        return;
    }
    if ktstr_vm::guest::is_guest_init() {
        // std's runtime sets SIGPIPE to ignored before `main`, which this process never
        // reaches; without it a worker writing to the pipe of a partner that already stopped
        // (PipeIo's teardown) dies of the signal instead of seeing EPIPE, and its report is
        // lost.
        // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        super::vm_backend::guest::run_as_init();
    }
    if std::env::var_os(super::vm_backend::describe::DESCRIBE_ENV).is_some() {
        super::vm_backend::describe::print_and_exit();
    }
}
