//! bindings/python/simple_rt/_api.py: one Python function per domain
//! function (calling the selected runtime's `call` by name; options as
//! keyword arguments), the host-surface C types, and the ABI tables; and
//! `_api.pyi`, its type stubs (with `py.typed` the package is typed).

use crate::gen::MARK;
use crate::model::{Abi, Entry, Registry};
use std::fmt::Write;

const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "_call", "_opts", "options",
];

/// True when the function's last parameter is an options dict (`opts: dict?`):
/// the Python function then also takes the options as keyword arguments.
fn takes_options(e: &Entry) -> bool {
    e.params.last().is_some_and(|p| p.name == "opts" && p.ty == "dict?")
}

/// A registry type as a Python type hint (`param`: a parameter, which may
/// accept more than a result gives).
fn py_type(ty: &str, param: bool) -> String {
    if let Some(t) = ty.strip_suffix('?') {
        let inner = py_type(t, param);
        return if inner == "Any" { inner } else { format!("{inner} | None") };
    }
    if let Some(inner) = ty.strip_prefix("array<").and_then(|t| t.strip_suffix('>')) {
        let i = py_type(inner, param);
        return if param { format!("Sequence[{i}] | Value") } else { format!("list[{i}]") };
    }
    if ty.starts_with("handle") {
        return "Handle".into();
    }
    match ty {
        "int" => "int".into(),
        "float" => "float".into(),
        "bool" => "bool".into(),
        // A `simple_rt.Value` (kept native) passes for any text, bytes, array or dict.
        "text" if param => "str | Value".into(),
        "text" => "str".into(),
        "bytes" if param => "bytes | bytearray | memoryview | str | Value".into(),
        "bytes" => "bytes".into(),
        "nil" => "None".into(),
        "dict" if param => "Mapping[str, Any] | Value".into(),
        "dict" => "dict[str, Any]".into(),
        "array" if param => "Sequence[Any] | Value".into(),
        "array" => "list[Any]".into(),
        _ => "Any".into(),
    }
}

/// A parameter name usable in Python (`from` -> `from_`).
pub fn py_ident(name: &str) -> String {
    if PY_KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

/// A Python string literal (double quotes, escapes for `\`, `"`, control characters).
pub fn py_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Docstring body text: backslashes and quotes escaped so `"""` cannot close it.
fn doc_text(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn function(o: &mut String, e: &Entry, heading: Option<String>) {
    // Trailing optional parameters (type ending in `?`) default to None.
    let n_opt = e.params.iter().rev().take_while(|p| p.ty.ends_with('?')).count();
    let first_opt = e.params.len() - n_opt;
    let names: Vec<String> = e.params.iter().map(|p| py_ident(&p.name)).collect();
    let mut sig: Vec<String> =
        names.iter().enumerate().map(|(i, n)| if i >= first_opt { format!("{n}=None") } else { n.clone() }).collect();
    let opts = takes_options(e);
    if opts {
        sig.push("**options".into());
    }
    o.push_str("\n\n");
    if let Some(h) = heading {
        let _ = writeln!(o, "# {h}");
    }
    let _ = writeln!(o, "def {}({}):", e.name, sig.join(", "));
    o.push_str("    \"\"\"");
    let mut lines: Vec<String> =
        crate::doc::plain_lines(&crate::doc::parse(&e.doc), true).iter().map(|l| doc_text(l)).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines.push(String::new());
    lines.push(doc_text(&e.signature));
    lines.push(format!(
        "capability: {}; {}; tier: {}",
        e.cap_text(),
        if e.blocking { "blocking" } else { "non-blocking" },
        e.tier
    ));
    for (i, l) in lines.iter().enumerate() {
        if i == 0 {
            o.push_str(l);
        } else if l.is_empty() {
            o.push('\n');
        } else {
            let _ = write!(o, "\n    {l}");
        }
    }
    o.push_str("\n    \"\"\"\n");
    if opts {
        o.push_str("    if options:\n        opts = _opts(opts, options)\n");
    }
    let mut call_args = vec![py_str(&e.name)];
    call_args.extend(names);
    let _ = writeln!(o, "    return _call({})", call_args.join(", "));
}

pub fn module(reg: &Registry, abi: &Abi) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {MARK}");
    o.push_str(
        "\"\"\"The simple-rt API: one function per exported domain function, named as
the export. Arguments and results convert through `_runtime` (None, bool, int,
float, str, bytes, list, dict; handles). An Error raises the RtError subclass
of its code. A function whose last parameter is `opts` also takes the options
as keyword arguments (`rt_process_run(\"echo\", [\"hi\"], timeout_ms=500)`).

HOST maps each host-surface function (C types) to (C return type, [C parameter
types]) as the registry declares them, for ctypes argtypes/restype.
\"\"\"\n\nfrom ._backend import call as _call, merge_options as _opts\n",
    );
    let _ = writeln!(o, "\nABI_MAJOR = {}\nABI_MINOR = {}", abi.major, abi.minor);
    o.push_str("\n# rt_kind values.\nKINDS = {\n");
    for (n, v) in &abi.kinds {
        let _ = writeln!(o, "    {}: {v},", py_str(n));
    }
    o.push_str("}\n\n# Error codes: code -> (name, meaning).\nERRORS = {\n");
    for e in &abi.errors {
        let _ = writeln!(o, "    {}: ({}, {}),", e.code, py_str(&e.name), py_str(&e.doc));
    }
    o.push_str("}\n\n# Capabilities and their scope kind.\nCAPABILITIES = {\n");
    for (n, s) in &abi.capabilities {
        let _ = writeln!(o, "    {}: {},", py_str(n), py_str(s));
    }
    o.push_str("}\n\n# Host surface: name -> (C return type, [C parameter types]).\nHOST = {\n");
    for e in reg.host_fns() {
        let ps: Vec<String> =
            e.params.iter().map(|p| py_str(p.ctype.as_deref().unwrap_or("RtValue"))).collect();
        let _ = writeln!(
            o,
            "    {}: ({}, [{}]),",
            py_str(&e.name),
            py_str(e.c_returns.as_deref().unwrap_or("RtValue")),
            ps.join(", ")
        );
    }
    o.push_str("}\n");
    let mut names = Vec::new();
    for d in reg.domains() {
        let fns: Vec<&Entry> = reg.domain_fns(&d).collect();
        if fns.is_empty() {
            continue;
        }
        for (i, e) in fns.into_iter().enumerate() {
            let heading = if i == 0 { Some(format!("---- domain {d} (libffi_{d}.so) ----")) } else { None };
            function(&mut o, e, heading);
            names.push(e.name.clone());
        }
    }
    o.push_str("\n\n__all__ = [\n");
    for n in &names {
        let _ = writeln!(o, "    {},", py_str(n));
    }
    o.push_str("]\n");
    o
}

/// `_api.pyi`: type stubs of `_api.py` (parameter and result types from the
/// registry; `Handle` for every handle kind; `**options` where the Python
/// function takes them). Each function is declared through `_native_form`
/// (typing only, `_native.pyi`), which gives it its `.value(...)` form with
/// the same parameters (result: `Value` or the plain result).
pub fn stubs(reg: &Registry, abi: &Abi) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {MARK}");
    o.push_str("\"\"\"Type stubs of the generated simple-rt API (see _api.py).\"\"\"\n\n");
    o.push_str("from typing import Any, Mapping, Sequence\n\nfrom ._native import Handle, Value, _native_form\n\n");
    let _ = writeln!(o, "ABI_MAJOR: int\nABI_MINOR: int\nKINDS: dict[str, int]\nERRORS: dict[int, tuple[str, str]]");
    o.push_str("CAPABILITIES: dict[str, str]\nHOST: dict[str, tuple[str, list[str]]]\n");
    let _ = abi;
    let mut names = Vec::new();
    for d in reg.domains() {
        let fns: Vec<&Entry> = reg.domain_fns(&d).collect();
        if fns.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\n# ---- domain {d} (libffi_{d}.so) ----");
        for e in fns {
            let n_opt = e.params.iter().rev().take_while(|p| p.ty.ends_with('?')).count();
            let first_opt = e.params.len() - n_opt;
            let mut ps: Vec<String> = e
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let t = py_type(&p.ty, true);
                    let n = py_ident(&p.name);
                    if i >= first_opt {
                        format!("{n}: {t} = None")
                    } else {
                        format!("{n}: {t}")
                    }
                })
                .collect();
            if takes_options(e) {
                ps.push("**options: Any".into());
            }
            let summary = doc_text(&e.summary());
            let _ = writeln!(
                o,
                "@_native_form\ndef {}({}) -> {}:\n    \"\"\"{}\"\"\"\n    ...",
                e.name,
                ps.join(", "),
                py_type(&e.returns, false),
                summary.trim_end_matches('\\')
            );
            names.push(e.name.clone());
        }
    }
    o.push_str("\n__all__ = [\n");
    for n in &names {
        let _ = writeln!(o, "    {},", py_str(n));
    }
    o.push_str("]\n");
    o
}
