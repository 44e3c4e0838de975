//! bindings/python/simple_rt/_api.py: one Python function per domain
//! function (calling `_runtime.call` by name), the host-surface C types for
//! the ctypes runtime, and the ABI tables.

use crate::gen::MARK;
use crate::model::{Abi, Entry, Registry};
use std::fmt::Write;

const PY_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield", "_call",
];

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
    let sig: Vec<String> =
        names.iter().enumerate().map(|(i, n)| if i >= first_opt { format!("{n}=None") } else { n.clone() }).collect();
    o.push_str("\n\n");
    if let Some(h) = heading {
        let _ = writeln!(o, "# {h}");
    }
    let _ = writeln!(o, "def {}({}):", e.name, sig.join(", "));
    o.push_str("    \"\"\"");
    let mut lines: Vec<String> = e.doc.lines().map(doc_text).collect();
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
float, str, bytes, list, dict; handles). An Error raises RtError.

HOST maps each host-surface function (C types) to (C return type, [C parameter
types]) as the registry declares them, for ctypes argtypes/restype.
\"\"\"\n\nfrom ._runtime import call as _call\n",
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
