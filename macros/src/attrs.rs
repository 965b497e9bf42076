//! Parsing and validating the `#[ktstr_test(key = value, ...)]` attribute list.
//!
//! Every rule that can be checked without running anything is checked here, so a bad
//! declaration is a compile error pointing at the offending value (harness-reference §1.1):
//! only `key = value` pairs, known keys, the right literal kind per key, no zero where a
//! positive number is required, `llcs % numa_nodes == 0`, `min_* <= max_*`, known topology
//! strings and gauntlet presets. Turning the result into tokens is [`crate::expand`]'s job.
//!
//! The threshold keys and their literal kinds, the topology rules and their wording, and the
//! preset table are `ktstr-decl`'s, which the runtime uses too; the other keys are this
//! module's.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Error, Expr, Lit, Meta, Token};

use ktstr_decl::presets;
use ktstr_decl::thresholds::{self, ValueKind};
use ktstr_decl::topology::{DIM_KEYS, Topology};

/// Gauntlet constraints: `(key, is_max)`; `requires_smt` is the one bool.
const CONSTRAINT_INTS: &[&str] =
    &["min_numa_nodes", "max_numa_nodes", "min_llcs", "max_llcs", "min_cpus", "max_cpus"];
const OTHER_KEYS: &[&str] = &[
    "topology",
    "memory_mb",
    "scheduler",
    "duration_s",
    "workers_per_cgroup",
    "required_flags",
    "excluded_flags",
    "host_only",
    "fresh_scheduler",
    "expect_err",
    "requires_smt",
    "gauntlet",
    "gauntlet_profiles",
];

/// A flag as written: a string literal or a path to a `&'static str` const.
pub struct Flag {
    pub tokens: TokenStream,
    /// The literal's value, or the path's token text (for duplicate and overlap checks).
    pub key: String,
}

/// One resolved gauntlet run.
pub struct Variant {
    pub preset: String,
    pub topology: Topology,
    pub flags: Vec<String>,
}

/// Everything the attribute declared; `None` / empty means "use `TestEntry::DEFAULT`'s".
#[derive(Default)]
pub struct Attrs {
    pub topology: Option<Topology>,
    pub memory_mb: Option<u32>,
    /// The name and where it was written (errors about it point there).
    pub scheduler: Option<(String, Span)>,
    pub duration_s: Option<u64>,
    pub workers_per_cgroup: Option<u32>,
    /// `(field, value tokens)` of `Thresholds`, each becoming `field: Some(value)`.
    pub thresholds: Vec<(String, TokenStream)>,
    /// `(field, value tokens)` of `TopologyConstraints`, already wrapped for the field type.
    pub constraints: Vec<(String, TokenStream)>,
    pub required_flags: Option<Vec<Flag>>,
    pub excluded_flags: Option<Vec<Flag>>,
    pub host_only: Option<bool>,
    pub fresh_scheduler: Option<bool>,
    pub expect_err: Option<bool>,
    pub gauntlet: Vec<Variant>,
}

/// Valid keys, for the unknown-key message: thresholds grouped bools, integers, floats.
fn all_keys() -> Vec<&'static str> {
    let mut keys: Vec<&str> = DIM_KEYS.to_vec();
    keys.extend(OTHER_KEYS);
    keys.extend(CONSTRAINT_INTS);
    let group = |k: ValueKind| match k {
        ValueKind::Bool => 0,
        ValueKind::U32 | ValueKind::U64 | ValueKind::Usize => 1,
        ValueKind::F64 => 2,
    };
    for g in 0..3 {
        keys.extend(thresholds::THRESHOLDS.iter().filter(|t| group(t.kind) == g).map(|t| t.name));
    }
    keys
}

pub fn parse(args: TokenStream) -> syn::Result<Attrs> {
    let metas = syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, args)?;
    let mut raw = Raw::default();
    let mut seen: Vec<String> = Vec::new();
    for meta in metas {
        let nv = match meta {
            Meta::NameValue(nv) => nv,
            other => return Err(Error::new(other.span(), "expected `key = value`")),
        };
        let key = nv.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        if !all_keys().contains(&key.as_str()) {
            let shown = nv.path.to_token_stream().to_string();
            return Err(Error::new(
                nv.path.span(),
                format!("unknown key `{shown}`; valid keys: {}", all_keys().join(", ")),
            ));
        }
        if seen.contains(&key) {
            return Err(Error::new(nv.path.span(), format!("duplicate key `{key}`")));
        }
        seen.push(key.clone());
        raw.take(&key, &nv.value)?;
    }
    raw.finish()
}

/// Values as parsed, before cross-field checks.
#[derive(Default)]
struct Raw {
    attrs: Attrs,
    dims: [Option<(u32, Span)>; 4],
    topology: Option<(Topology, Span)>,
    constraint_vals: Vec<(String, u64, Span)>,
    gauntlet: Option<Vec<(String, Option<String>, Span)>>,
    profiles: Option<(Vec<String>, Span)>,
}

impl Raw {
    fn take(&mut self, key: &str, v: &Expr) -> syn::Result<()> {
        let a = &mut self.attrs;
        if let Some(i) = DIM_KEYS.iter().position(|d| *d == key) {
            let n: u32 = positive(key, v)?;
            self.dims[i] = Some((n, v.span()));
        } else if let Some(t) = thresholds::find(key) {
            let tokens = match t.kind {
                ValueKind::Bool => bool_lit(key, v).map(|b| quote!(#b)),
                ValueKind::U32 => int_lit(key, v)?.base10_parse::<u32>().map(|n| quote!(#n)),
                ValueKind::U64 => int_lit(key, v)?.base10_parse::<u64>().map(|n| quote!(#n)),
                ValueKind::Usize => int_lit(key, v)?.base10_parse::<usize>().map(|n| quote!(#n)),
                ValueKind::F64 => float_lit(key, v).map(|f| quote!(#f)),
            }?;
            a.thresholds.push((key.to_string(), tokens));
        } else if CONSTRAINT_INTS.contains(&key) {
            let n: u32 = int_lit(key, v)?.base10_parse()?;
            if key.starts_with("max_") {
                if n == 0 {
                    return Err(Error::new(v.span(), format!("`{key}` must be greater than 0")));
                }
                a.constraints.push((key.to_string(), quote!(::core::option::Option::Some(#n))));
            } else {
                a.constraints.push((key.to_string(), quote!(#n)));
            }
            self.constraint_vals.push((key.to_string(), n.into(), v.span()));
        } else {
            match key {
                "requires_smt" => {
                    let b = bool_lit(key, v)?;
                    a.constraints.push((key.to_string(), quote!(#b)));
                }
                "topology" => {
                    let s = str_lit(key, v)?;
                    let topology: Topology =
                        s.parse().map_err(|e| Error::new(v.span(), format!("{e}")))?;
                    self.topology = Some((topology, v.span()));
                }
                "memory_mb" => a.memory_mb = Some(positive(key, v)?),
                "duration_s" => a.duration_s = Some(positive(key, v)?),
                "workers_per_cgroup" => a.workers_per_cgroup = Some(positive(key, v)?),
                "scheduler" => {
                    let s = str_lit(key, v)?;
                    if s.is_empty() {
                        return Err(Error::new(v.span(), "`scheduler` must not be empty"));
                    }
                    a.scheduler = Some((s, v.span()));
                }
                "host_only" => a.host_only = Some(bool_lit(key, v)?),
                "fresh_scheduler" => a.fresh_scheduler = Some(bool_lit(key, v)?),
                "expect_err" => a.expect_err = Some(bool_lit(key, v)?),
                "required_flags" => a.required_flags = Some(flags(key, v)?),
                "excluded_flags" => a.excluded_flags = Some(flags(key, v)?),
                "gauntlet" => {
                    let mut out = Vec::new();
                    for (s, span) in str_array(key, v)? {
                        let (preset, profile) = match s.split_once(':') {
                            Some((p, f)) => (p.to_string(), Some(f.to_string())),
                            None => (s, None),
                        };
                        out.push((preset, profile, span));
                    }
                    self.gauntlet = Some(out);
                }
                "gauntlet_profiles" => {
                    let list = str_array(key, v)?.into_iter().map(|(s, _)| s).collect();
                    self.profiles = Some((list, v.span()));
                }
                _ => unreachable!("every key in all_keys() is handled above"),
            }
        }
        Ok(())
    }

    fn finish(mut self) -> syn::Result<Attrs> {
        let any_dim = self.dims.iter().any(Option::is_some);
        if let Some((topology, span)) = self.topology {
            if any_dim {
                return Err(Error::new(
                    span,
                    "`topology` cannot be combined with `numa_nodes`, `llcs`, `cores` or `threads`",
                ));
            }
            self.attrs.topology = Some(topology);
        } else if any_dim {
            // Unset dimensions take `TestEntry::DEFAULT`'s topology.
            let d = Topology::DEFAULT;
            let dim = |i: usize, default: u32| self.dims[i].map_or(default, |d| d.0);
            let topology = Topology::new(
                dim(0, d.numa_nodes),
                dim(1, d.llcs),
                dim(2, d.cores_per_llc),
                dim(3, d.threads_per_core),
            );
            // Zero dimensions were rejected as they were read, so only the LLC spread is left.
            if let Err(why) = topology.check() {
                let span = self.dims[1].or(self.dims[0]).map_or(Span::call_site(), |d| d.1);
                return Err(Error::new(span, why.to_string()));
            }
            self.attrs.topology = Some(topology);
        }
        for dim in ["numa_nodes", "llcs", "cpus"] {
            let get = |k: String| self.constraint_vals.iter().find(|c| c.0 == k);
            if let (Some(min), Some(max)) = (get(format!("min_{dim}")), get(format!("max_{dim}")))
                && min.1 > max.1
            {
                return Err(Error::new(
                    min.2,
                    format!("`min_{dim}` ({}) is greater than `max_{dim}` ({})", min.1, max.1),
                ));
            }
        }
        let required = self.attrs.required_flags.as_deref().unwrap_or(&[]);
        let excluded = self.attrs.excluded_flags.as_deref().unwrap_or(&[]);
        if let Some(f) = required.iter().find(|r| excluded.iter().any(|e| e.key == r.key)) {
            return Err(Error::new_spanned(
                &f.tokens,
                format!("flag `{}` is both required and excluded", f.key),
            ));
        }
        if self.profiles.is_some() && self.gauntlet.is_none() {
            let span = self.profiles.as_ref().map_or(Span::call_site(), |p| p.1);
            return Err(Error::new(span, "`gauntlet_profiles` needs a `gauntlet` list"));
        }
        let default_profiles = vec!["default".to_string()];
        let profiles = self.profiles.as_ref().map_or(&default_profiles, |p| &p.0);
        for (preset, profile, span) in self.gauntlet.take().unwrap_or_default() {
            let topology =
                presets::resolve(&preset).map_err(|e| Error::new(span, e.to_string()))?;
            let chosen = profile.map_or_else(|| profiles.clone(), |p| vec![p]);
            for profile in chosen {
                let flags = profile_flags(&profile).map_err(|e| Error::new(span, e))?;
                if let Some(f) = flags.iter().find(|f| excluded.iter().any(|e| &e.key == *f)) {
                    return Err(Error::new(
                        span,
                        format!("gauntlet variant {preset}:{profile} uses excluded flag `{f}`"),
                    ));
                }
                if self.attrs.gauntlet.iter().any(|v| v.preset == preset && v.flags == flags) {
                    return Err(Error::new(
                        span,
                        format!("gauntlet variant {preset}:{profile} is listed twice"),
                    ));
                }
                self.attrs.gauntlet.push(Variant { preset: preset.clone(), topology, flags });
            }
        }
        Ok(self.attrs)
    }
}

/// `default` is no flags; otherwise flags joined by `+` (ktstr's profile names), sorted.
fn profile_flags(profile: &str) -> Result<Vec<String>, String> {
    if profile == "default" {
        return Ok(Vec::new());
    }
    let mut flags: Vec<String> = profile.split('+').map(str::to_string).collect();
    if flags.iter().any(|f| f.is_empty() || f.contains(char::is_whitespace)) {
        return Err(format!(
            "invalid flag profile {profile:?}: expected `default` or flags joined by `+`"
        ));
    }
    flags.sort();
    flags.dedup();
    Ok(flags)
}

fn lit(v: &Expr) -> Option<&Lit> {
    match v {
        Expr::Lit(l) => Some(&l.lit),
        _ => None,
    }
}

fn int_lit<'a>(key: &str, v: &'a Expr) -> syn::Result<&'a syn::LitInt> {
    match lit(v) {
        Some(Lit::Int(i)) => Ok(i),
        _ => Err(Error::new(
            v.span(),
            format!("`{key}` expects an integer literal, e.g. `{key} = 2`"),
        )),
    }
}

fn positive<T>(key: &str, v: &Expr) -> syn::Result<T>
where
    T: std::str::FromStr + PartialEq + Default,
    T::Err: std::fmt::Display,
{
    let n: T = int_lit(key, v)?.base10_parse()?;
    if n == T::default() {
        return Err(Error::new(v.span(), format!("`{key}` must be greater than 0")));
    }
    Ok(n)
}

fn float_lit(key: &str, v: &Expr) -> syn::Result<f64> {
    match lit(v) {
        Some(Lit::Float(f)) => f.base10_parse(),
        _ => Err(Error::new(
            v.span(),
            format!("`{key}` expects a float literal such as `5.0` (not `5`)"),
        )),
    }
}

fn bool_lit(key: &str, v: &Expr) -> syn::Result<bool> {
    match lit(v) {
        Some(Lit::Bool(b)) => Ok(b.value),
        _ => Err(Error::new(v.span(), format!("`{key}` expects `true` or `false`"))),
    }
}

fn str_lit(key: &str, v: &Expr) -> syn::Result<String> {
    match lit(v) {
        Some(Lit::Str(s)) => Ok(s.value()),
        _ => Err(Error::new(v.span(), format!("`{key}` expects a string literal"))),
    }
}

fn array<'a>(key: &str, v: &'a Expr, what: &str) -> syn::Result<Vec<&'a Expr>> {
    match v {
        Expr::Array(a) => Ok(a.elems.iter().collect()),
        _ => Err(Error::new(v.span(), format!("`{key}` expects an array of {what}, e.g. `[...]`"))),
    }
}

fn str_array(key: &str, v: &Expr) -> syn::Result<Vec<(String, Span)>> {
    array(key, v, "string literals")?
        .into_iter()
        .map(|e| str_lit(key, e).map(|s| (s, e.span())))
        .collect()
}

fn flags(key: &str, v: &Expr) -> syn::Result<Vec<Flag>> {
    let mut out: Vec<Flag> = Vec::new();
    for e in array(key, v, "flags (string literals or paths to consts)")? {
        let flag = match e {
            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => {
                Flag { tokens: quote!(#s), key: s.value() }
            }
            Expr::Path(p) => {
                Flag { tokens: p.to_token_stream(), key: p.to_token_stream().to_string() }
            }
            _ => {
                return Err(Error::new(
                    e.span(),
                    format!("`{key}` elements must be string literals or paths to consts"),
                ));
            }
        };
        if out.iter().any(|f| f.key == flag.key) {
            return Err(Error::new(
                e.span(),
                format!("flag `{}` is listed twice in `{key}`", flag.key),
            ));
        }
        out.push(flag);
    }
    Ok(out)
}
