//! The [`Thresholds`] a test declares: one `Option` field per entry of `ktstr-decl`'s
//! threshold list (generated from it, so a field, its type and its attribute key cannot
//! drift apart), ktstr's defaults and the merge of a test's values over them.
//!
//! Checking a run against thresholds is `harness::threshold_checks`'s job; this module depends
//! on nothing else in the harness, so [`super::entry`] can hold a `Thresholds` by value.

use std::fmt;

use ktstr_decl::thresholds::{THRESHOLDS, Threshold};

/// A threshold's value, whatever its declared type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(u64),
    Float(f64),
}

impl Value {
    /// Whether the threshold asks for anything: a bool threshold set to `false` does not.
    pub(crate) fn is_on(self) -> bool {
        self != Value::Bool(false)
    }

    /// The value as a number to compare with (a bool is 0 or 1).
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Value::Bool(b) => f64::from(u8::from(b)),
            Value::Int(n) => n as f64,
            Value::Float(f) => f,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => b.fmt(f),
            Value::Int(n) => n.fmt(f),
            Value::Float(x) => x.fmt(f),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(n.into())
    }
}
impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}
impl From<usize> for Value {
    fn from(n: usize) -> Value {
        Value::Int(n as u64)
    }
}
impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::Float(x)
    }
}

macro_rules! define_thresholds {
    ($($(#[$doc:meta])* $name:ident: $ty:ty => $check:expr;)*) => {
        /// Assertion thresholds, named as ktstr's attribute keys. `None` means "inherit": the
        /// runner merges [`Thresholds::default_checks`] with the test's own values
        /// ([`Thresholds::merge`]).
        ///
        /// Checks that need ktstr's VM monitor or sched_ext (`isolation` aside, every field
        /// from `fail_on_stall` to `max_keep_last_rate` and the NUMA ones) cannot be evaluated
        /// by the host backend; when such a threshold is set, the sidecar's provenance says it
        /// was not evaluated rather than pretending it passed.
        #[derive(Debug, Clone, Copy, PartialEq, Default)]
        pub struct Thresholds {
            $($(#[$doc])* pub $name: Option<$ty>,)*
        }

        impl Thresholds {
            /// Nothing set: inherit everything.
            pub const NONE: Thresholds = Thresholds { $($name: None,)* };

            /// `self` overridden by every field `over` sets.
            pub fn merge(&self, over: &Thresholds) -> Thresholds {
                Thresholds { $($name: over.$name.or(self.$name),)* }
            }

            /// Every set threshold with its list entry, in list order.
            pub(crate) fn set(&self) -> impl Iterator<Item = (&'static Threshold, Value)> {
                let values: [Option<Value>; THRESHOLDS.len()] = [$(self.$name.map(Value::from)),*];
                THRESHOLDS.iter().zip(values).filter_map(|(t, v)| Some((t, v?)))
            }
        }
    };
}

ktstr_decl::threshold_list!(define_thresholds);

impl Thresholds {
    /// ktstr's `Assert::default_checks()` as far as the host can judge: `not_starved` on.
    /// The spread and gap limits `not_starved` implies live in `harness::threshold_checks`.
    pub const fn default_checks() -> Thresholds {
        Thresholds { not_starved: Some(true), ..Thresholds::NONE }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_merge_prefers_override() {
        let base = Thresholds::default_checks();
        let over =
            Thresholds { max_gap_ms: Some(10), not_starved: Some(false), ..Thresholds::NONE };
        let m = base.merge(&over);
        assert_eq!(m.not_starved, Some(false));
        assert_eq!(m.max_gap_ms, Some(10));
        assert_eq!(base.merge(&Thresholds::NONE), base);
    }

    #[test]
    fn set_pairs_each_field_with_its_list_entry() {
        let t = Thresholds {
            isolation: Some(false),
            max_local_dsq_depth: Some(4),
            max_spread_pct: Some(12.5),
            ..Thresholds::NONE
        };
        let set: Vec<(&str, Value)> = t.set().map(|(e, v)| (e.name, v)).collect();
        assert_eq!(
            set,
            [
                ("isolation", Value::Bool(false)),
                ("max_local_dsq_depth", Value::Int(4)),
                ("max_spread_pct", Value::Float(12.5)),
            ]
        );
        assert_eq!(Thresholds::NONE.set().count(), 0);
        assert!(!Value::Bool(false).is_on() && Value::Bool(true).is_on() && Value::Int(0).is_on());
        assert_eq!(
            (Value::Int(10).to_string(), Value::Float(40.0).to_string()),
            ("10".into(), "40".into())
        );
    }
}
