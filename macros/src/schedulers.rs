//! `#[derive(Schedulers)]`: a test crate's sched_ext schedulers, one unit variant each.
//!
//! ```ignore
//! #[derive(Schedulers)]
//! pub enum Sched {
//!     #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland", args = ["--slice-us", "5000"])]
//!     #[flag(name = "long-slice", args = ["--slice-us", "50000"])]
//!     Bpfland,
//! }
//! ```
//!
//! Each variant becomes a `const` `ktstr::harness::scheduler::Scheduler` (in `Sched::ALL`, and
//! `Sched::Bpfland.scheduler()`), and the derive defines the crate's scheduler lookup, a
//! `macro_rules!` that `#[ktstr_test(scheduler = "...")]` expands to. The lookup knows every
//! declared name, so an unknown one is a compile error listing them. This module owns the
//! derive's syntax and checks; what the values mean at run time is the library's.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Error, Expr, Fields, Lit, Meta, Token};

/// The `macro_rules!` a crate's `#[derive(Schedulers)]` defines and `#[ktstr_test]` calls.
pub const LOOKUP_MACRO: &str = "__ktstr_declared_scheduler";
/// The name meaning "no sched_ext scheduler".
pub const EEVDF: &str = "eevdf";

const SCHEDULER_KEYS: &[&str] =
    &["name", "path", "package", "bin", "on_path", "args", "attach_timeout_s"];
const FLAG_KEYS: &[&str] = &["name", "args"];

struct Decl {
    name: String,
    span: Span,
    tokens: TokenStream,
}

pub fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    let Data::Enum(data) = &input.data else {
        return Err(Error::new_spanned(&input.ident, "#[derive(Schedulers)] expects an enum"));
    };
    let mut decls: Vec<Decl> = Vec::new();
    for v in &data.variants {
        if !matches!(v.fields, Fields::Unit) {
            return Err(Error::new_spanned(v, "scheduler variants must be unit variants"));
        }
        let decl = variant_decl(&v.attrs, v.ident.span())?;
        if let Some(first) = decls.iter().find(|d| d.name == decl.name) {
            return Err(Error::new(
                decl.span,
                format!(
                    "scheduler {:?} is declared twice (first at variant {})",
                    decl.name, first.name
                ),
            ));
        }
        decls.push(decl);
    }
    if decls.is_empty() {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Schedulers)] needs at least one variant",
        ));
    }
    let ident = &input.ident;
    let consts = decls.iter().map(|d| &d.tokens);
    let arms = data.variants.iter().enumerate().map(|(i, v)| {
        let v = &v.ident;
        quote!(#ident::#v => &Self::ALL[#i])
    });
    let mut names: Vec<&str> = vec![EEVDF];
    names.extend(decls.iter().map(|d| d.name.as_str()));
    let unknown = format!("; declared schedulers: {}", names.join(", "));
    let lookup_arms = decls.iter().map(|d| {
        let (name, tokens) = (&d.name, &d.tokens);
        quote!((#name) => { &#tokens };)
    });
    let lookup = format_ident!("{}", LOOKUP_MACRO);
    Ok(quote! {
        impl #ident {
            /// Every scheduler this enum declares, in variant order.
            pub const ALL: &'static [::ktstr::harness::scheduler::Scheduler] = &[#(#consts),*];

            /// This variant's declaration.
            pub const fn scheduler(self) -> &'static ::ktstr::harness::scheduler::Scheduler {
                match self { #(#arms),* }
            }
        }

        #[doc(hidden)]
        macro_rules! #lookup {
            #(#lookup_arms)*
            ($other:literal) => {
                ::core::compile_error!(::core::concat!("unknown scheduler ", ::core::stringify!($other), #unknown))
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        pub(crate) use #lookup;
    })
}

fn variant_decl(attrs: &[Attribute], span: Span) -> syn::Result<Decl> {
    let mut sched: Option<&Attribute> = None;
    let mut flags: Vec<TokenStream> = Vec::new();
    let mut flag_names: Vec<String> = Vec::new();
    for a in attrs {
        if a.path().is_ident("scheduler") {
            if sched.is_some() {
                return Err(Error::new_spanned(a, "one #[scheduler(...)] per variant"));
            }
            sched = Some(a);
        } else if a.path().is_ident("flag") {
            let kv = key_values(a, FLAG_KEYS)?;
            let name = required_str(&kv, "name", a)?;
            if name.is_empty() || name == "default" || name.contains(['+', ':', ' ']) {
                return Err(Error::new_spanned(
                    a,
                    format!(
                        "flag name {name:?} must be non-empty, not `default`, without `+`, `:` or spaces"
                    ),
                ));
            }
            if flag_names.contains(&name) {
                return Err(Error::new_spanned(a, format!("flag {name:?} is declared twice")));
            }
            let args = str_list(&kv, "args")?;
            flags.push(quote!(::ktstr::harness::scheduler::SchedulerFlag { name: #name, args: &[#(#args),*] }));
            flag_names.push(name);
        }
    }
    let Some(a) = sched else {
        return Err(Error::new(span, "each variant needs #[scheduler(name = \"...\", ...)]"));
    };
    let kv = key_values(a, SCHEDULER_KEYS)?;
    let name = required_str(&kv, "name", a)?;
    if name.is_empty() || name == EEVDF {
        return Err(Error::new_spanned(
            a,
            "scheduler name must be non-empty and not `eevdf` (which means no sched_ext scheduler)",
        ));
    }
    let binary = binary_tokens(&kv, a)?;
    let args = str_list(&kv, "args")?;
    let timeout = match kv.iter().find(|(k, _)| k == "attach_timeout_s") {
        Some((_, Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }))) => {
            let n: u64 = i.base10_parse()?;
            if n == 0 {
                return Err(Error::new_spanned(i, "`attach_timeout_s` must be greater than 0"));
            }
            quote!(#n)
        }
        Some((_, e)) => {
            return Err(Error::new_spanned(e, "`attach_timeout_s` expects an integer literal"));
        }
        None => quote!(::ktstr::harness::scheduler::Scheduler::DEFAULT_ATTACH_TIMEOUT_S),
    };
    let tokens = quote!(::ktstr::harness::scheduler::Scheduler {
        name: #name,
        binary: #binary,
        args: &[#(#args),*],
        flags: &[#(#flags),*],
        attach_timeout_s: #timeout,
    });
    Ok(Decl { name, span: a.span(), tokens })
}

/// Exactly one of `path = ".."`, `on_path = ".."`, or `package = ".."` (with optional `bin`,
/// defaulting to the package name).
fn binary_tokens(kv: &[(String, Expr)], a: &Attribute) -> syn::Result<TokenStream> {
    let get = |k: &str| kv.iter().find(|(n, _)| n == k).map(|(_, e)| e);
    let given: Vec<&str> =
        ["path", "on_path", "package"].into_iter().filter(|k| get(k).is_some()).collect();
    if given.len() != 1 {
        return Err(Error::new_spanned(
            a,
            "give the binary as exactly one of `path = \"...\"`, `on_path = \"...\"` or `package = \"...\"`",
        ));
    }
    if get("bin").is_some() && given[0] != "package" {
        return Err(Error::new_spanned(a, "`bin` goes with `package`"));
    }
    let s = str_value(given[0], get(given[0]).expect("checked"))?;
    Ok(match given[0] {
        "path" => quote!(::ktstr::harness::scheduler::SchedulerBinary::Path(#s)),
        "on_path" => quote!(::ktstr::harness::scheduler::SchedulerBinary::OnPath(#s)),
        _ => {
            let bin =
                get("bin").map(|e| str_value("bin", e)).transpose()?.unwrap_or_else(|| s.clone());
            quote!(::ktstr::harness::scheduler::SchedulerBinary::Package { package: #s, bin: #bin })
        }
    })
}

fn key_values(a: &Attribute, keys: &[&str]) -> syn::Result<Vec<(String, Expr)>> {
    let what = a.path().get_ident().map(|i| i.to_string()).unwrap_or_default();
    let metas = a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
    let mut out: Vec<(String, Expr)> = Vec::new();
    for m in metas {
        let Meta::NameValue(nv) = m else {
            return Err(Error::new(m.span(), "expected `key = value`"));
        };
        let key = nv.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        if !keys.contains(&key.as_str()) {
            return Err(Error::new(
                nv.path.span(),
                format!("unknown #[{what}] key `{key}`; valid keys: {}", keys.join(", ")),
            ));
        }
        if out.iter().any(|(k, _)| *k == key) {
            return Err(Error::new(nv.path.span(), format!("duplicate key `{key}`")));
        }
        out.push((key, nv.value));
    }
    Ok(out)
}

fn required_str(kv: &[(String, Expr)], key: &str, a: &Attribute) -> syn::Result<String> {
    match kv.iter().find(|(k, _)| k == key) {
        Some((_, e)) => str_value(key, e),
        None => Err(Error::new_spanned(a, format!("missing `{key} = \"...\"`"))),
    }
}

fn str_value(key: &str, e: &Expr) -> syn::Result<String> {
    match e {
        Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Ok(s.value()),
        _ => Err(Error::new_spanned(e, format!("`{key}` expects a string literal"))),
    }
}

fn str_list(kv: &[(String, Expr)], key: &str) -> syn::Result<Vec<String>> {
    let Some((_, e)) = kv.iter().find(|(k, _)| k == key) else { return Ok(Vec::new()) };
    let Expr::Array(arr) = e else {
        return Err(Error::new_spanned(e, format!("`{key}` expects an array of string literals")));
    };
    arr.elems.iter().map(|e| str_value(key, e)).collect()
}
