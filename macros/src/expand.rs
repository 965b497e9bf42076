//! Turning a validated attribute and its function into the three items the test needs: the
//! renamed body, a `static` `TestEntry`, and a plain `#[test]` wrapper.
//!
//! Generated code names the library as `::ktstr`, and only sets the fields the attribute
//! declared, leaving the rest to `..TestEntry::DEFAULT` so the runtime owns the defaults.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::{Error, FnArg, ItemFn, ReturnType, Type};

use ktstr_decl::Topology;

use crate::attrs::Attrs;

/// Rejects anything that is not `fn name(ctx: &Ctx) -> Result<AssertResult>`. The argument
/// and return types themselves are checked by the compiler against `TestFn`.
pub fn check_signature(f: &ItemFn) -> syn::Result<()> {
    let sig = &f.sig;
    let expected = "#[ktstr_test] expects `fn name(ctx: &Ctx) -> anyhow::Result<AssertResult>`";
    let problem = if sig.asyncness.is_some() {
        Some("it must not be async")
    } else if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        Some("it must not be generic")
    } else if sig.unsafety.is_some() || sig.abi.is_some() || sig.variadic.is_some() {
        Some("it must be a plain safe Rust fn")
    } else if sig.inputs.len() != 1 {
        Some("it must take exactly one argument, `ctx: &Ctx`")
    } else if !matches!(
        &sig.inputs[0],
        FnArg::Typed(p) if matches!(&*p.ty, Type::Reference(r) if r.mutability.is_none())
    ) {
        Some("its argument must be a shared reference, `ctx: &Ctx`")
    } else if matches!(sig.output, ReturnType::Default) {
        Some("it must return `anyhow::Result<AssertResult>`")
    } else {
        None
    };
    match problem {
        Some(p) => Err(Error::new_spanned(&f.sig, format!("{expected}; {p}"))),
        None => Ok(()),
    }
}

pub fn expand(attrs: Attrs, mut f: ItemFn) -> TokenStream {
    let name = f.sig.ident.clone();
    let name_str = name.to_string();
    let inner = format_ident!("__ktstr_inner_{}", name);
    let entry = format_ident!("__KTSTR_ENTRY_{}", name_str.to_uppercase());
    let registered = format_ident!("__KTSTR_REGISTERED_{}", name_str.to_uppercase());
    let hook = format_ident!("__KTSTR_BEFORE_MAIN_{}", name_str.to_uppercase());

    // `#[cfg]` gates all three items; `#[ignore]`/`#[should_panic]` belong to the test
    // wrapper; everything else (docs, lints) stays on the body.
    let (cfgs, rest): (Vec<_>, Vec<_>) = f.attrs.drain(..).partition(|a| a.path().is_ident("cfg"));
    let (test_attrs, body_attrs): (Vec<_>, Vec<_>) = rest
        .into_iter()
        .partition(|a| a.path().is_ident("ignore") || a.path().is_ident("should_panic"));
    f.attrs = body_attrs;
    f.sig.ident = inner.clone();

    let fields = entry_fields(&attrs);
    let vis = f.vis.clone();
    quote! {
        #(#cfgs)*
        #[allow(non_snake_case)]
        #f

        #(#cfgs)*
        #[allow(non_upper_case_globals)]
        #vis static #entry: ::ktstr::harness::TestEntry = ::ktstr::harness::TestEntry {
            name: #name_str,
            func: #inner,
            #(#fields,)*
            ..::ktstr::harness::TestEntry::DEFAULT
        };

        // The entry in the binary's registry, and the hook that lets the binary serve as a VM
        // guest's `/init` (`ktstr::harness::registry`).
        #(#cfgs)*
        #[used]
        #[allow(non_upper_case_globals)]
        #[unsafe(link_section = "ktstr_entries")]
        static #registered: ::core::option::Option<&::ktstr::harness::TestEntry> =
            ::core::option::Option::Some(&#entry);

        #(#cfgs)*
        #[used]
        #[allow(non_upper_case_globals)]
        #[unsafe(link_section = ".init_array")]
        static #hook: extern "C" fn() = ::ktstr::harness::registry::before_main;

        #(#cfgs)*
        #[test]
        #(#test_attrs)*
        fn #name() {
            ::ktstr::harness::run_entry(&#entry)
        }
    }
}

fn entry_fields(a: &Attrs) -> Vec<TokenStream> {
    let mut out = Vec::new();
    if let Some(t) = &a.topology {
        let t = topology_tokens(t);
        out.push(quote!(topology: #t));
    }
    if !a.constraints.is_empty() {
        let fields = a.constraints.iter().map(|(k, v)| {
            let k = Ident::new(k, proc_macro2::Span::call_site());
            quote!(#k: #v)
        });
        out.push(quote!(constraints: ::ktstr::harness::TopologyConstraints {
            #(#fields,)* ..::ktstr::harness::TopologyConstraints::DEFAULT
        }));
    }
    if let Some(m) = a.memory_mb {
        out.push(quote!(memory_mb: ::core::option::Option::Some(#m)));
    }
    if let Some((s, span)) = &a.scheduler {
        out.push(quote!(scheduler: #s));
        if s != crate::schedulers::EEVDF {
            // The crate's `#[derive(Schedulers)]` defines this lookup; an unknown name is a
            // compile error there, listing the declared ones.
            let lookup = Ident::new(crate::schedulers::LOOKUP_MACRO, *span);
            let lit = syn::LitStr::new(s, *span);
            out.push(quote_spanned!(*span=> scheduler_decl: ::core::option::Option::Some(#lookup!(#lit))));
        }
    }
    if let Some(d) = a.duration_s {
        out.push(quote!(duration_s: #d));
    }
    if let Some(w) = a.workers_per_cgroup {
        out.push(quote!(workers_per_cgroup: #w));
    }
    if !a.thresholds.is_empty() {
        let fields = a.thresholds.iter().map(|(k, v)| {
            let k = Ident::new(k, proc_macro2::Span::call_site());
            quote!(#k: ::core::option::Option::Some(#v))
        });
        out.push(quote!(thresholds: ::ktstr::harness::Thresholds {
            #(#fields,)* ..::ktstr::harness::Thresholds::NONE
        }));
    }
    for (field, flags) in
        [("required_flags", &a.required_flags), ("excluded_flags", &a.excluded_flags)]
    {
        if let Some(flags) = flags {
            let field = Ident::new(field, proc_macro2::Span::call_site());
            let toks = flags.iter().map(|f| &f.tokens);
            out.push(quote!(#field: &[#(#toks),*]));
        }
    }
    if let Some(b) = a.host_only {
        out.push(quote!(host_only: #b));
    }
    if let Some(b) = a.fresh_scheduler {
        out.push(quote!(fresh_scheduler: #b));
    }
    if let Some(b) = a.expect_err {
        out.push(quote!(expect_err: #b));
    }
    if !a.gauntlet.is_empty() {
        let variants = a.gauntlet.iter().map(|v| {
            let (preset, topology, flags) = (&v.preset, topology_tokens(&v.topology), &v.flags);
            quote!(::ktstr::harness::GauntletVariant {
                preset: #preset,
                topology: #topology,
                flags: &[#(#flags),*],
            })
        });
        out.push(quote!(gauntlet: &[#(#variants),*]));
    }
    out
}

fn topology_tokens(t: &Topology) -> TokenStream {
    let Topology { numa_nodes, llcs, cores_per_llc, threads_per_core } = *t;
    quote!(::ktstr::harness::Topology::new(#numa_nodes, #llcs, #cores_per_llc, #threads_per_core))
}
