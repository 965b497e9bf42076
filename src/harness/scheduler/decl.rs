//! The typed declaration of a scheduler: its name (the sidecar's `scheduler`), where its binary
//! comes from, its base arguments and the flags that map to extra arguments.
//!
//! Values are `const`, so `#[derive(Schedulers)]` (in `ktstr-macros`) can embed them in a
//! test's `static TestEntry`. This module only describes; finding the binary is
//! [`super::binary`]'s job and running it [`super::lifecycle`]'s.

/// The name that means "no sched_ext scheduler: the kernel's own (EEVDF)".
pub const EEVDF: &str = "eevdf";

/// Where a scheduler's binary comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchedulerBinary {
    /// A file path, used as given (relative paths from the test's working directory).
    Path(&'static str),
    /// A binary target of a package in the test's cargo workspace; built with
    /// `cargo build -p <package> --bin <bin>` before the first run that needs it.
    Package { package: &'static str, bin: &'static str },
    /// A program name looked up on `$PATH`, then in ktstr's scheduler cache
    /// (`<cache>/scx/bin`, where `scripts/deps/20-scx-bpfland.sh` installs).
    OnPath(&'static str),
}

/// A flag a test can turn on (`required_flags`, gauntlet profiles) and the arguments it adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchedulerFlag {
    pub name: &'static str,
    pub args: &'static [&'static str],
}

/// One declared sched_ext scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduler {
    /// Recorded as the sidecar's `scheduler`; never `eevdf`.
    pub name: &'static str,
    pub binary: SchedulerBinary,
    /// Arguments on every run, before the flags' arguments.
    pub args: &'static [&'static str],
    pub flags: &'static [SchedulerFlag],
    /// How long attaching may take before the run fails, seconds.
    pub attach_timeout_s: u64,
}

impl Scheduler {
    /// Attach timeout when a declaration sets none: bpfland takes up to ~5 s under TCG.
    pub const DEFAULT_ATTACH_TIMEOUT_S: u64 = 30;

    /// The command-line arguments for a run with `active` flags: the base arguments, then each
    /// active flag's arguments in declaration order. A flag this scheduler does not declare is
    /// an error naming the declared ones.
    pub fn args_for(&self, active: &[String]) -> Result<Vec<String>, String> {
        if let Some(unknown) = active.iter().find(|a| !self.flags.iter().any(|f| f.name == *a)) {
            let declared: Vec<&str> = self.flags.iter().map(|f| f.name).collect();
            return Err(format!(
                "flag {unknown:?} is not declared by scheduler {}; declared flags: {}",
                self.name,
                if declared.is_empty() { "(none)".to_string() } else { declared.join(", ") }
            ));
        }
        let mut args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        for flag in self.flags.iter().filter(|f| active.iter().any(|a| a == f.name)) {
            args.extend(flag.args.iter().map(|a| a.to_string()));
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BPFLAND: Scheduler = Scheduler {
        name: "scx_bpfland",
        binary: SchedulerBinary::OnPath("scx_bpfland"),
        args: &["--slice-us", "5000"],
        flags: &[
            SchedulerFlag { name: "llc", args: &["--primary-domain", "all"] },
            SchedulerFlag { name: "kthreads", args: &["--local-kthreads"] },
        ],
        attach_timeout_s: Scheduler::DEFAULT_ATTACH_TIMEOUT_S,
    };

    fn flags(f: &[&str]) -> Vec<String> {
        f.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_add_their_arguments_after_the_base_in_declaration_order() {
        assert_eq!(BPFLAND.args_for(&[]).unwrap(), ["--slice-us", "5000"]);
        assert_eq!(
            BPFLAND.args_for(&flags(&["kthreads", "llc"])).unwrap(),
            ["--slice-us", "5000", "--primary-domain", "all", "--local-kthreads"]
        );
    }

    /// What `#[derive(Schedulers)]` generates, used from inside ktstr (`::ktstr` is this crate).
    mod derived {
        #[derive(Clone, Copy, crate::Schedulers)]
        pub enum Sched {
            #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland", args = ["--slice-us", "5000"])]
            #[flag(name = "llc", args = ["--primary-domain", "all"])]
            Bpfland,
            #[scheduler(name = "mine", package = "my-sched")]
            Mine,
        }
    }

    #[test]
    fn the_derive_declares_consts_and_the_lookup_the_attribute_uses() {
        use derived::*;
        const LOOKED_UP: &Scheduler = __ktstr_declared_scheduler!("scx_bpfland");
        assert_eq!(LOOKED_UP, Sched::Bpfland.scheduler());
        assert_eq!(
            LOOKED_UP.flags,
            [SchedulerFlag { name: "llc", args: &["--primary-domain", "all"] }]
        );
        let mine = Sched::Mine.scheduler();
        assert_eq!(mine.binary, SchedulerBinary::Package { package: "my-sched", bin: "my-sched" });
        assert_eq!(mine.attach_timeout_s, Scheduler::DEFAULT_ATTACH_TIMEOUT_S);
        assert_eq!(Sched::ALL.len(), 2);
    }

    #[test]
    fn an_undeclared_flag_names_the_declared_ones() {
        let err = BPFLAND.args_for(&flags(&["steal"])).unwrap_err();
        assert_eq!(
            err,
            "flag \"steal\" is not declared by scheduler scx_bpfland; declared flags: llc, kthreads"
        );
    }
}
