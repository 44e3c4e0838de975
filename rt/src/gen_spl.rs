//! bindings/simple/*.spl: Simple code. Per domain, for every function, a raw
//! `extern fn` in Simple's types under an `@unsafe(reason: ..., capabilities:
//! [ffi])` attribute, and beside it a typed wrapper in Simple's style that
//! turns an Error value into `Err(RtError)`. `rt_types.spl` (generated once)
//! holds `RtError`, the two error externs it needs and one class per handle
//! kind. The syntax follows Simple's own `sffi/*.spl` (repository
//! `ormastes/simple`; facts in docs/SIMPLE.md); `rt/tests/simple_syntax.rs` checks every line against it.

use crate::gen::MARK;
use crate::model::{Abi, Entry, Registry};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The shared file: RtError, error externs, handle classes.
pub const TYPES_FILE: &str = "rt_types.spl";
/// Module path under which Simple code imports the bindings (the directory
/// bindings/simple installed as `simple_rt`).
pub const MODULE: &str = "simple_rt";

/// Words a Simple parameter may not be named: keywords, literals, and type
/// names (a parameter named `text` shadows the type).
pub const SIMPLE_RESERVED: &[&str] = &[
    "and", "as", "async", "await", "break", "case", "class", "const", "continue", "elif", "else",
    "enum", "extern", "false", "fn", "for", "if", "impl", "import", "in", "is", "let", "loop",
    "match", "me", "mod", "module", "mut", "nil", "not", "or", "pass", "pub", "return", "self",
    "Self", "static", "struct", "trait", "true", "type", "unsafe", "use", "val", "var", "while",
    "with", "yield", "text", "bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32",
    "f64", "Any", "Dict", "Result", "Option", "Ok", "Err", "Some", "None",
];

/// A parameter name usable in Simple: reserved words get `_arg` (`text` ->
/// `text_arg`). The registry's names stay as they are.
pub fn simple_ident(name: &str) -> String {
    if SIMPLE_RESERVED.contains(&name) {
        format!("{name}_arg")
    } else {
        name.to_string()
    }
}

/// `cranelift_module` -> `RtCraneliftModule`, `Regex` -> `RtRegex`.
pub fn handle_class(kind: &str) -> String {
    let mut s = String::from("Rt");
    for part in kind.split('_').filter(|p| !p.is_empty()) {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            s.extend(f.to_uppercase());
            s.push_str(c.as_str());
        }
    }
    s
}

/// The handle kind of a registry type (`handle<Regex>` or `handle<Regex>?`).
fn handle_kind(ty: &str) -> Option<&str> {
    ty.trim_end_matches('?')
        .strip_prefix("handle<")?
        .strip_suffix('>')
}

/// Registry type -> Simple type as the raw extern declares it (a handle is
/// its 64-bit word: `i64`).
pub fn raw_type(ty: &str) -> String {
    if let Some(inner) = ty.strip_suffix('?') {
        return format!("{}?", raw_type(inner));
    }
    match ty {
        "int" => "i64".into(),
        "float" => "f64".into(),
        "bool" => "bool".into(),
        "text" => "text".into(),
        "bytes" => "[u8]".into(),
        "dict" => "Dict<text, Any>".into(),
        "array" => "[Any]".into(),
        "any" | "value" | "nil" => "Any".into(),
        _ => {
            if let Some(inner) = ty.strip_prefix("array<").and_then(|t| t.strip_suffix('>')) {
                format!("[{}]", raw_type(inner))
            } else if handle_kind(ty).is_some() {
                "i64".into()
            } else {
                "Any".into()
            }
        }
    }
}

/// Registry type -> Simple type in a wrapper (a handle is its typed class).
pub fn wrapper_type(ty: &str) -> String {
    match (handle_kind(ty), ty.ends_with('?')) {
        (Some(k), true) => format!("{}?", handle_class(k)),
        (Some(k), false) => handle_class(k),
        _ => raw_type(ty),
    }
}

/// Wrapper name: the export without `rt_`.
pub fn wrapper_name(e: &Entry) -> String {
    e.name.strip_prefix("rt_").unwrap_or(&e.name).to_string()
}

fn comment_block(o: &mut String, text: &str) {
    for l in text.lines() {
        if l.trim().is_empty() {
            o.push_str("#\n");
        } else {
            let _ = writeln!(o, "# {}", l.trim_end());
        }
    }
}

/// `@unsafe(...)` over a raw extern: library and capability in the reason.
fn unsafe_attr(o: &mut String, name: &str, domain: &str, cap: &str) {
    let _ = writeln!(
        o,
        "@unsafe(reason: \"simple-rt {name} in libffi_{domain}.so; library capability: {cap}\", capabilities: [ffi])"
    );
}

/// Handle kinds used anywhere in the registry's domain functions, sorted.
fn all_handle_kinds(reg: &Registry) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    for e in reg.entries.iter().filter(|e| !e.host) {
        for t in e
            .params
            .iter()
            .map(|p| p.ty.as_str())
            .chain([e.returns.as_str()])
        {
            if let Some(k) = handle_kind(t) {
                s.insert(k.to_string());
            }
        }
    }
    s
}

/// bindings/simple/rt_types.spl.
pub fn types(reg: &Registry, abi: &Abi) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {MARK}");
    let _ = writeln!(o, "# simple-rt for Simple: the types every bindings/simple/<domain>.spl wrapper uses, ABI {}.{}.", abi.major, abi.minor);
    o.push_str(
        "# A wrapper returns Ok(value) or Err(RtError); RtError carries the stable code, its\n\
         # name and the message (`rt_fn: what (input)`). Loading and argument rules:\n\
         # docs/SIMPLE.md.\n",
    );
    for (name, ret, doc) in [
        (
            "rt_error_code",
            "u32",
            "The code of an Error value; 0 for every other value.",
        ),
        (
            "rt_error_message",
            "text",
            "The message of an Error value (`rt_fn: what (input)`).",
        ),
    ] {
        o.push('\n');
        let _ = writeln!(o, "# {doc}");
        unsafe_attr(&mut o, name, "core", "none");
        let _ = writeln!(o, "extern fn {name}(value: Any) -> {ret}");
    }
    o.push_str(
        "\n# A failure reported by simple-rt.\n\
         class RtError:\n    code: i64\n    name: text\n    message: text\n\
         \nimpl RtError:\n    fn describe() -> text:\n        \"{self.name}: {self.message}\"\n",
    );
    o.push_str("\n# The name of an error code (RT_ERR_* in include/simple_rt.h).\nfn rt_error_name_of(code: i64) -> text:\n    match code:\n");
    for e in &abi.errors {
        let _ = writeln!(o, "        case {}: \"{}\"", e.code, e.name);
    }
    o.push_str("        case _: \"Unknown\"\n");
    o.push_str(
        "\n# True when a value returned by a raw extern is an Error value.\n\
         fn rt_is_error(value: Any) -> bool:\n    val code = unsafe(capabilities: [ffi]):\n        rt_error_code(value)\n    code != 0\n",
    );
    o.push_str(
        "\n# The RtError of an Error value.\n\
         fn rt_error_from(value: Any) -> RtError:\n    val code = unsafe(capabilities: [ffi]):\n        rt_error_code(value)\n    \
         val message = unsafe(capabilities: [ffi]):\n        rt_error_message(value)\n    \
         RtError(code: code.to_i64(), name: rt_error_name_of(code.to_i64()), message: message)\n",
    );
    for k in all_handle_kinds(reg) {
        let _ = write!(
            o,
            "\n# A simple-rt `{k}` handle: its 64-bit value word. Close it with handle_close;\n\
             # pin it (rt_value_pin) while it is kept where the collector cannot see.\n\
             class {}:\n    raw: i64\n",
            handle_class(&k)
        );
    }
    o
}

/// The wrapper of one function.
fn wrapper(o: &mut String, e: &Entry) {
    let n = e.params.len();
    // Trailing optional parameters become `= nil` defaults.
    let mut first_default = n;
    while first_default > 0 && e.params[first_default - 1].ty.ends_with('?') {
        first_default -= 1;
    }
    let params = e
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let d = if i >= first_default { " = nil" } else { "" };
            format!("{}: {}{d}", simple_ident(&p.name), wrapper_type(&p.ty))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let ok = if e.returns == "nil" {
        "()".to_string()
    } else {
        wrapper_type(&e.returns)
    };
    let _ = writeln!(
        o,
        "fn {}({params}) -> Result<{ok}, RtError>:",
        wrapper_name(e)
    );
    let mut args = Vec::with_capacity(n);
    for p in &e.params {
        let id = simple_ident(&p.name);
        match (handle_kind(&p.ty), p.ty.ends_with('?')) {
            (Some(_), true) => {
                let _ = writeln!(o, "    val {id}_raw: i64? = match {id}:\n        case Some(h): h.raw\n        case None: nil");
                args.push(format!("{id}_raw"));
            }
            (Some(_), false) => args.push(format!("{id}.raw")),
            _ => args.push(id),
        }
    }
    let _ = writeln!(
        o,
        "    val r = unsafe(capabilities: [ffi]):\n        {}({})",
        e.name,
        args.join(", ")
    );
    o.push_str("    if rt_is_error(r):\n        return Err(rt_error_from(r))\n");
    match handle_kind(&e.returns) {
        Some(k) if e.returns.ends_with('?') => {
            let _ = writeln!(
                o,
                "    if r == nil:\n        return Ok(nil)\n    Ok({}(raw: r))",
                handle_class(k)
            );
        }
        Some(k) => {
            let _ = writeln!(o, "    Ok({}(raw: r))", handle_class(k));
        }
        None if e.returns == "nil" => o.push_str("    Ok(())\n"),
        None => o.push_str("    Ok(r)\n"),
    }
}

pub fn domain(reg: &Registry, abi: &Abi, d: &str) -> String {
    let fns: Vec<&Entry> = reg.domain_fns(d).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for e in &fns {
        for t in e
            .params
            .iter()
            .map(|p| p.ty.as_str())
            .chain([e.returns.as_str()])
        {
            if let Some(k) = handle_kind(t) {
                used.insert(handle_class(k));
            }
        }
    }
    let mut o = String::new();
    let _ = writeln!(o, "# {MARK}");
    let _ = writeln!(
        o,
        "# simple-rt domain `{d}` (libffi_{d}.so), ABI {}.{}, as Simple code.",
        abi.major, abi.minor
    );
    o.push_str(
        "# Each function: the raw extern (simple-rt values in and out; an Error value on\n\
         # failure; nil-returning ones are declared `-> Any`), then a typed wrapper that\n\
         # returns Ok(value) or Err(RtError). Trailing optional parameters default to nil.\n\
         # Loading, argument values and layout: docs/SIMPLE.md.\n\n",
    );
    let mut imports = vec!["RtError".to_string()];
    imports.extend(used);
    imports.push("rt_error_from".into());
    imports.push("rt_is_error".into());
    let _ = writeln!(
        o,
        "use {MODULE}.{}.{{{}}}",
        TYPES_FILE.trim_end_matches(".spl"),
        imports.join(", ")
    );
    for e in fns {
        o.push('\n');
        comment_block(&mut o, &crate::doc::plain_lines(&crate::doc::parse(&e.doc), false).join("\n"));
        let _ = writeln!(
            o,
            "# capability: {}; {}; tier: {}",
            e.cap_text(),
            if e.blocking {
                "blocking"
            } else {
                "non-blocking"
            },
            e.tier
        );
        unsafe_attr(&mut o, &e.name, d, &e.cap_text());
        let params = e
            .params
            .iter()
            .map(|p| format!("{}: {}", simple_ident(&p.name), raw_type(&p.ty)))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            o,
            "extern fn {}({params}) -> {}",
            e.name,
            raw_type(&e.returns)
        );
        o.push('\n');
        wrapper(&mut o, e);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Param;

    #[test]
    fn types_map_to_simple() {
        assert_eq!(raw_type("int"), "i64");
        assert_eq!(raw_type("int?"), "i64?");
        assert_eq!(raw_type("float"), "f64");
        assert_eq!(raw_type("bytes"), "[u8]");
        assert_eq!(raw_type("array<text>"), "[text]");
        assert_eq!(raw_type("array"), "[Any]");
        assert_eq!(raw_type("array<dict>"), "[Dict<text, Any>]");
        assert_eq!(raw_type("dict?"), "Dict<text, Any>?");
        assert_eq!(raw_type("handle<Regex>"), "i64");
        assert_eq!(raw_type("any"), "Any");
        assert_eq!(raw_type("nil"), "Any");
        assert_eq!(
            wrapper_type("handle<cranelift_module>"),
            "RtCraneliftModule"
        );
        assert_eq!(wrapper_type("handle<Thread>?"), "RtThread?");
        assert_eq!(simple_ident("text"), "text_arg");
        assert_eq!(simple_ident("path"), "path");
    }

    #[test]
    fn wrapper_maps_errors_handles_and_defaults() {
        let e = Entry {
            name: "rt_regex_new".into(),
            domain: "data".into(),
            params: vec![
                Param {
                    name: "text".into(),
                    ty: "text".into(),
                    ctype: None,
                },
                Param {
                    name: "opts".into(),
                    ty: "dict?".into(),
                    ctype: None,
                },
            ],
            returns: "handle<Regex>".into(),
            arity: 2,
            ..Default::default()
        };
        let mut o = String::new();
        wrapper(&mut o, &e);
        assert!(o.starts_with("fn regex_new(text_arg: text, opts: Dict<text, Any>? = nil) -> Result<RtRegex, RtError>:\n"), "{o}");
        assert!(
            o.contains("        rt_regex_new(text_arg, opts)\n")
                && o.contains("    Ok(RtRegex(raw: r))\n"),
            "{o}"
        );
    }
}
