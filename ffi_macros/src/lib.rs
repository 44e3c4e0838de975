//! The one declaration of every exported function (SPEC §6).
//!
//! `#[rt_fn(...)]` on a Rust function whose parameters implement
//! `ffi_sdk::FromArg` and whose result implements `ffi_sdk::IntoRet` produces:
//! - the `extern "C"` export taking and returning `RtValue`, with the panic
//!   boundary, argument kind checks and (for unscoped capabilities) the check;
//! - the body as `__<name>`, a plain Rust function (FN is its name, for messages);
//! - the registry entry, added to the process registry when the library loads.
//!
//! `#[rt_host]` on an `extern "C"` host-surface function (C types) adds the
//! panic boundary and the registry entry with the C signature.
//!
//! Attributes of `rt_fn`: `cap = "fs.read"`, `scoped` (the body checks the
//! capability against a resource), `tier = "verified"`, `blocking`,
//! `ret = "dict"` (registry return type when the Rust type says only `Value`).
//!
//! Names: a new export follows the naming rule of docs/CONTRACT.md
//! (`rt_<domain>_<noun>_<verb>[_<unit>]`, see `naming.rs`); a name that breaks
//! it is a compile error saying why, unless it predates the rule
//! (`src/grandfathered.txt`) or Simple's standard library declares it
//! (`src/census.txt`).

#![deny(clippy::undocumented_unsafe_blocks)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::{parse_macro_input, FnArg, ItemFn, LitStr, Pat, ReturnType, Type};

mod naming;

#[derive(Default)]
struct Meta {
    cap: Option<String>,
    scoped: bool,
    tier: Option<String>,
    blocking: bool,
    ret: Option<String>,
}

fn parse_meta(attr: TokenStream) -> syn::Result<Meta> {
    let mut m = Meta::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("cap") {
            m.cap = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if meta.path.is_ident("tier") {
            let t = meta.value()?.parse::<LitStr>()?.value();
            if !["formal", "verified", "empirical", "experimental"].contains(&t.as_str()) {
                return Err(meta.error("tier must be formal, verified, empirical or experimental"));
            }
            m.tier = Some(t);
        } else if meta.path.is_ident("ret") {
            m.ret = Some(meta.value()?.parse::<LitStr>()?.value());
        } else if meta.path.is_ident("scoped") {
            m.scoped = true;
        } else if meta.path.is_ident("blocking") {
            m.blocking = true;
        } else {
            return Err(meta.error("unknown rt_fn attribute (cap, scoped, tier, blocking, ret)"));
        }
        Ok(())
    });
    syn::parse::Parser::parse(parser, attr)?;
    Ok(m)
}

fn doc_of(f: &ItemFn) -> String {
    let mut lines = Vec::new();
    for a in &f.attrs {
        if a.path().is_ident("doc") {
            if let syn::Meta::NameValue(nv) = &a.meta {
                if let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value {
                    lines.push(s.value().trim().to_string());
                }
            }
        }
    }
    lines.join("\n").trim().to_string()
}

/// The naming rule (docs/CONTRACT.md) on a new export: a compile error at the name when broken.
fn check_name(name: &syn::Ident, inputs: &syn::punctuated::Punctuated<FnArg, syn::Token![,]>) -> syn::Result<()> {
    let n = name.to_string();
    if naming::is_grandfathered(&n) || naming::is_census(&n) {
        return Ok(());
    }
    let params: Vec<String> = inputs.iter().filter_map(|a| param_name(a).ok()).map(|(p, _)| p.to_string()).collect();
    naming::check(&n, &domain(), &params).map_err(|m| syn::Error::new_spanned(name, m))
}

fn domain() -> String {
    let pkg = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    pkg.strip_prefix("ffi_").unwrap_or(&pkg).to_string()
}

/// `"dict"`, `"dict?"`, `"array<text>"` -> TypeDesc tokens.
fn typedesc_from_str(s: &str) -> TokenStream2 {
    let (s, optional) = match s.strip_suffix('?') {
        Some(x) => (x, true),
        None => (s, false),
    };
    let (name, sub) = match s.find('<') {
        Some(i) if s.ends_with('>') => (&s[..i], &s[i + 1..s.len() - 1]),
        _ => (s, ""),
    };
    quote! { ::ffi_sdk::abi::TypeDesc { name: #name, sub: #sub, optional: #optional } }
}

fn param_name(arg: &FnArg) -> syn::Result<(syn::Ident, Type)> {
    match arg {
        FnArg::Typed(pt) => match &*pt.pat {
            Pat::Ident(pi) => Ok((pi.ident.clone(), (*pt.ty).clone())),
            other => Err(syn::Error::new_spanned(other, "rt_fn parameters must be plain names")),
        },
        FnArg::Receiver(r) => Err(syn::Error::new_spanned(r, "rt_fn cannot take self")),
    }
}

/// Replaces elided reference lifetimes with `'static` so the type can be named in a static.
fn staticize(ty: &Type) -> Type {
    let mut t = ty.clone();
    struct V;
    impl syn::visit_mut::VisitMut for V {
        fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
            r.lifetime = Some(syn::Lifetime::new("'static", Span::call_site()));
            syn::visit_mut::visit_type_reference_mut(self, r);
        }
        fn visit_lifetime_mut(&mut self, l: &mut syn::Lifetime) {
            *l = syn::Lifetime::new("'static", Span::call_site());
        }
    }
    syn::visit_mut::VisitMut::visit_type_mut(&mut V, &mut t);
    t
}

fn registration(entry_ident: &syn::Ident, entry: TokenStream2) -> TokenStream2 {
    let init_ident = format_ident!("{}_INIT", entry_ident);
    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #entry_ident: ::ffi_sdk::abi::Entry = #entry;
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[used]
        #[link_section = ".init_array"]
        static #init_ident: extern "C" fn() = {
            extern "C" fn __rt_register() {
                ::ffi_sdk::registry::register(&#entry_ident);
            }
            __rt_register
        };
    }
}

/// Declares a domain function once; see the crate docs.
#[proc_macro_attribute]
pub fn rt_fn(attr: TokenStream, item: TokenStream) -> TokenStream {
    let meta = match parse_meta(attr) {
        Ok(m) => m,
        Err(e) => return e.to_compile_error().into(),
    };
    let f = parse_macro_input!(item as ItemFn);
    match expand_fn(meta, f) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_fn(meta: Meta, f: ItemFn) -> syn::Result<TokenStream2> {
    let name = f.sig.ident.clone();
    let name_str = name.to_string();
    if !name_str.starts_with("rt_") {
        return Err(syn::Error::new_spanned(&name, "exported functions are named rt_*"));
    }
    check_name(&name, &f.sig.inputs)?;
    if f.sig.inputs.len() > 8 {
        return Err(syn::Error::new_spanned(&f.sig.inputs, "at most 8 parameters (SPEC §3)"));
    }
    let doc = doc_of(&f);
    if doc.is_empty() {
        return Err(syn::Error::new_spanned(&name, "every export needs a doc comment (it feeds the generated docs)"));
    }
    let impl_name = format_ident!("__{}", name);
    let entry_ident = format_ident!("__RT_ENTRY_{}", name);
    let vis = &f.vis;
    let attrs: Vec<_> = f.attrs.iter().filter(|a| !a.path().is_ident("doc")).collect();
    let doc_attrs: Vec<_> = f.attrs.iter().filter(|a| a.path().is_ident("doc")).collect();
    let inputs = &f.sig.inputs;
    let output = &f.sig.output;
    let block = &f.block;

    let mut c_params = Vec::new();
    let mut conversions = Vec::new();
    let mut call_args = Vec::new();
    let mut params_meta = Vec::new();
    for (i, arg) in f.sig.inputs.iter().enumerate() {
        let (pname, ty) = param_name(arg)?;
        let pname_str = pname.to_string();
        let raw = format_ident!("__a{}", i);
        c_params.push(quote! { #raw: ::ffi_sdk::abi::RtValue });
        conversions.push(quote! {
            let #pname = <#ty as ::ffi_sdk::FromArg>::from_arg(#raw, #name_str, #i, #pname_str)?;
        });
        call_args.push(quote! { #pname });
        let sty = staticize(&ty);
        params_meta.push(quote! {
            ::ffi_sdk::abi::Param { name: #pname_str, ty: <#sty as ::ffi_sdk::FromArg>::TY, ctype: "" }
        });
    }

    let ret_ty: Type = match output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    let ret_desc = match &meta.ret {
        Some(s) => typedesc_from_str(s),
        None => {
            let sty = staticize(&ret_ty);
            quote! { <#sty as ::ffi_sdk::IntoRet>::TY }
        }
    };

    let cap = meta.cap.clone().unwrap_or_default();
    let scoped = meta.scoped;
    let cap_check = if !cap.is_empty() && !scoped {
        quote! { ::ffi_sdk::cap::check(#name_str, #cap, "")?; }
    } else {
        quote! {}
    };
    let tier = meta.tier.clone().unwrap_or_else(|| "empirical".into());
    let blocking = meta.blocking;
    // Every blocking function honours the thread's deadline and cancel token
    // before it starts (docs/DEADLINES.md); one relaxed load when unused.
    let deadline_check = if blocking {
        quote! { ::ffi_sdk::deadline::check(#name_str)?; }
    } else {
        quote! {}
    };
    let dom = domain();

    let entry = quote! {
        ::ffi_sdk::abi::Entry {
            name: #name_str,
            domain: #dom,
            doc: #doc,
            cap: #cap,
            scoped: #scoped,
            tier: #tier,
            blocking: #blocking,
            host: false,
            params: &[#(#params_meta),*],
            ret: #ret_desc,
            c_ret: "",
            addr: #name as *const (),
        }
    };
    let reg = registration(&entry_ident, entry);

    Ok(quote! {
        #(#doc_attrs)*
        #(#attrs)*
        #[allow(clippy::needless_lifetimes)]
        #vis fn #impl_name(#inputs) #output {
            #[allow(dead_code)]
            const FN: &str = #name_str;
            #block
        }

        #(#doc_attrs)*
        #[no_mangle]
        pub extern "C" fn #name(#(#c_params),*) -> ::ffi_sdk::abi::RtValue {
            ::ffi_sdk::boundary::call(#name_str, move || {
                #deadline_check
                #cap_check
                #(#conversions)*
                ::ffi_sdk::IntoRet::into_ret(#impl_name(#(#call_args),*))
            })
        }

        #reg
    })
}

/// C type and registry type of a host-surface Rust type.
fn ctype_of(ty: &Type) -> syn::Result<(&'static str, &'static str)> {
    let s = quote!(#ty).to_string().replace(' ', "");
    Ok(match s.as_str() {
        "RtValue" | "abi::RtValue" | "::ffi_sdk::abi::RtValue" | "ffi_sdk::abi::RtValue" => ("RtValue", "any"),
        "u32" => ("uint32_t", "int"),
        "i32" => ("int32_t", "int"),
        "i64" => ("int64_t", "int"),
        "u64" => ("uint64_t", "int"),
        "usize" => ("size_t", "int"),
        "f64" => ("double", "float"),
        "bool" => ("bool", "bool"),
        "()" => ("void", "nil"),
        "*constu8" => ("const uint8_t *", "bytes"),
        "*mutu32" => ("uint32_t *", "any"),
        "*constc_char" | "*constlibc::c_char" | "*consti8" => ("const char *", "text"),
        "*mutc_void" | "*mutlibc::c_void" => ("void *", "any"),
        "*constc_void" | "*constlibc::c_void" => ("const void *", "any"),
        other => {
            return Err(syn::Error::new_spanned(ty, format!("rt_host: no C type for `{other}`")));
        }
    })
}

/// Declares a host-surface function (C types) once: export, panic boundary, registry entry.
#[proc_macro_attribute]
pub fn rt_host(attr: TokenStream, item: TokenStream) -> TokenStream {
    let meta = match parse_meta(attr) {
        Ok(m) => m,
        Err(e) => return e.to_compile_error().into(),
    };
    let f = parse_macro_input!(item as ItemFn);
    match expand_host(meta, f) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand_host(meta: Meta, f: ItemFn) -> syn::Result<TokenStream2> {
    let name = f.sig.ident.clone();
    let name_str = name.to_string();
    check_name(&name, &f.sig.inputs)?;
    let doc = doc_of(&f);
    if doc.is_empty() {
        return Err(syn::Error::new_spanned(&name, "every export needs a doc comment"));
    }
    let entry_ident = format_ident!("__RT_ENTRY_{}", name);
    let attrs = &f.attrs;
    let inputs = &f.sig.inputs;
    let output = &f.sig.output;
    let block = &f.block;
    let unsafety = &f.sig.unsafety;
    let mut params_meta = Vec::new();
    for arg in f.sig.inputs.iter() {
        let (pname, ty) = param_name(arg)?;
        let pname_str = pname.to_string();
        let (cty, vty) = ctype_of(&ty)?;
        params_meta.push(quote! {
            ::ffi_sdk::abi::Param {
                name: #pname_str,
                ty: ::ffi_sdk::abi::TypeDesc { name: #vty, sub: "", optional: false },
                ctype: #cty,
            }
        });
    }
    let ret_ty: Type = match output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    let (c_ret, v_ret) = ctype_of(&ret_ty)?;
    let v_ret = meta.ret.clone().unwrap_or_else(|| v_ret.to_string());
    let ret_desc = typedesc_from_str(&v_ret);
    let cap = meta.cap.clone().unwrap_or_default();
    let tier = meta.tier.clone().unwrap_or_else(|| "empirical".into());
    let blocking = meta.blocking;
    let dom = domain();
    let entry = quote! {
        ::ffi_sdk::abi::Entry {
            name: #name_str,
            domain: #dom,
            doc: #doc,
            cap: #cap,
            scoped: false,
            tier: #tier,
            blocking: #blocking,
            host: true,
            params: &[#(#params_meta),*],
            ret: #ret_desc,
            c_ret: #c_ret,
            addr: #name as *const (),
        }
    };
    let reg = registration(&entry_ident, entry);
    Ok(quote! {
        #(#attrs)*
        #[no_mangle]
        pub #unsafety extern "C" fn #name(#inputs) #output {
            match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| #block)) {
                Ok(v) => v,
                Err(p) => <#ret_ty as ::ffi_sdk::boundary::OnPanic>::on_panic(#name_str, p),
            }
        }
        #reg
    })
}
