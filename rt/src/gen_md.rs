//! docs/API.md: the reference, per domain, with the ABI tables.

use crate::gen::MARK;
use crate::gen_c::upper_snake;
use crate::doc;
use crate::model::{Abi, Entry, Registry};
use std::fmt::Write;

/// Text for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn blocking(e: &Entry) -> &'static str {
    if e.blocking {
        "yes"
    } else {
        "no"
    }
}

pub fn reference(reg: &Registry, abi: &Abi) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "<!-- {MARK} -->");
    let _ = writeln!(o, "# simple-rt API reference (ABI {}.{})\n", abi.major, abi.minor);
    o.push_str(
        "Every domain function takes `RtValue` arguments (at most 8) and returns one `RtValue`; \
         a failure is an Error value carrying a code from the table below. Types are the registry's \
         vocabulary: `int`, `float`, `bool`, `text`, `bytes`, `array<T>`, `dict`, `handle<Kind>`, \
         `any`, `nil`; a trailing `?` accepts nil (parameter) or may return nil (result). \
         The C declarations are in `include/simple_rt.h`.\n\n",
    );
    let domains: Vec<String> = reg.domains();
    o.push_str("## Contents\n\n");
    o.push_str("- [Host surface](#host-surface)\n");
    for d in &domains {
        let n = reg.domain_fns(d).count();
        if n > 0 {
            let _ = writeln!(o, "- [Domain `{d}`](#domain-{d}) ({n} functions)");
        }
    }
    o.push_str("- [Deadlines and cancellation](#deadlines-and-cancellation)\n");
    o.push_str("- [Kinds](#kinds)\n- [Error codes](#error-codes)\n- [Capabilities](#capabilities)\n");

    o.push_str("\n## Host surface\n\nC types in and out, for building and reading values (in `libffi_core.so`).\n\n");
    o.push_str("| C prototype | Description |\n|---|---|\n");
    for e in reg.host_fns() {
        let _ = writeln!(o, "| `{};` | {} |", cell(&e.c_prototype()), cell(&host_cell(e)));
    }

    for d in &domains {
        let fns: Vec<&Entry> = reg.domain_fns(d).collect();
        if fns.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\n## Domain `{d}`\n\nLibrary `libffi_{d}.so`.\n");
        o.push_str("| Function | Summary | Capability | Blocking | Tier |\n|---|---|---|---|---|\n");
        for e in &fns {
            let _ = writeln!(
                o,
                "| [`{}`](#{}) | {} | {} | {} | {} |",
                e.name,
                e.name,
                cell(&e.summary()),
                cell(&e.cap_text()),
                blocking(e),
                e.tier
            );
        }
        for e in &fns {
            let _ = writeln!(o, "\n### {}\n\n```\n{}\n```\n", e.name, e.signature);
            sections(&mut o, e);
            let _ = writeln!(
                o,
                "- capability: {}\n- blocking: {}\n- tier: {}",
                match &e.capability {
                    Some(c) if e.scoped => format!("`{c}`, checked against the resource (scoped)"),
                    Some(c) => format!("`{c}`"),
                    None => "none".into(),
                },
                if e.blocking { "yes: stops with Timeout / Cancelled ([deadlines](#deadlines-and-cancellation))" } else { "no" },
                e.tier
            );
        }
    }

    deadlines(&mut o, reg, &domains);
    o.push_str("\n## Kinds\n\n`rt_kind(v)` returns:\n\n| Value | C name | Kind |\n|---|---|---|\n");
    for (n, v) in &abi.kinds {
        let _ = writeln!(o, "| {v} | `RT_KIND_{}` | {n} |", upper_snake(n));
    }
    o.push_str("\n## Error codes\n\n`rt_error_code(v)` returns 0 for a value that is not an Error.\n\n");
    o.push_str("| Code | Name | C name | Meaning |\n|---|---|---|---|\n");
    for e in &abi.errors {
        let _ = writeln!(o, "| {} | {} | `RT_ERR_{}` | {} |", e.code, e.name, upper_snake(&e.name), cell(&e.doc));
    }
    o.push_str("\n## Capabilities\n\n| Capability | Scoped by |\n|---|---|\n");
    for (n, s) in &abi.capabilities {
        let _ = writeln!(o, "| `{n}` | {s} |");
    }
    o
}

/// Where the implicit error codes are listed (relative to docs/API.md).
const IMPLICIT: &str = "CONTRACT.md#error-codes-per-function";

/// Prose lines for Markdown: a `# Heading` of the doc comment becomes a bold
/// label, so no heading leaks into the reference's own structure.
fn md_prose(o: &mut String, prose: &str) {
    for l in prose.lines() {
        match l.trim().strip_prefix('#').map(|h| h.trim_start_matches('#').trim()) {
            Some(h) if !h.is_empty() => {
                let _ = writeln!(o, "**{h}**");
            }
            _ => {
                let _ = writeln!(o, "{l}");
            }
        }
    }
}

/// A function's doc: prose, then the Options, Errors and Example sections as
/// bold labelled lists.
fn sections(o: &mut String, e: &Entry) {
    let d = doc::parse(&e.doc);
    md_prose(o, &d.prose);
    o.push('\n');
    if let Some(opts) = &d.options {
        o.push_str("**Options** (keys of the `opts` dict; nil means all defaults):\n\n");
        if !d.options_note.is_empty() {
            let _ = writeln!(o, "{}\n", d.options_note);
        }
        for k in opts {
            let spec = if k.spec.is_empty() { String::new() } else { format!(" ({})", k.spec) };
            let _ = writeln!(o, "- `{}`{spec}: {}", k.key, k.meaning);
        }
        if !opts.is_empty() {
            o.push('\n');
        }
    }
    if let Some(errs) = &d.errors {
        let mut implicit = doc::implicit_codes(e.blocking, e.capability.is_some()).join(", ");
        if let Some(i) = implicit.rfind(", ") {
            implicit.replace_range(i..i + 2, " and ");
        }
        if errs.is_empty() && (d.errors_note.is_empty() || d.errors_note.starts_with("Only the implicit")) {
            let _ = writeln!(o, "**Errors**: only the [implicit]({IMPLICIT}) {implicit}.\n");
            return example(o, &d);
        }
        let _ = writeln!(o, "**Errors** (besides the [implicit]({IMPLICIT}) {implicit}):\n");
        if !d.errors_note.is_empty() {
            let _ = writeln!(o, "{}\n", d.errors_note);
        }
        for x in errs {
            let _ = writeln!(o, "- `{}`: {}", x.code, x.when);
        }
        if !errs.is_empty() {
            o.push('\n');
        }
    }
    example(o, &d);
}

fn example(o: &mut String, d: &doc::Doc) {
    if !d.example.is_empty() {
        let _ = writeln!(o, "**Example**\n\n```\n{}\n```\n", d.example.join("\n"));
    }
}

/// A host-surface function's table cell: the prose, then its sections inline.
fn host_cell(e: &Entry) -> String {
    let d = doc::parse(&e.doc);
    let mut s = d.prose.clone();
    if let Some(errs) = d.errors.as_ref().filter(|x| !x.is_empty()) {
        let list: Vec<String> = errs.iter().map(|x| format!("{} ({})", x.code, x.when)).collect();
        s.push_str(&format!(" **Errors:** {}.", list.join("; ")));
    }
    if !d.example.is_empty() {
        s.push_str(&format!(" **Example:** `{}`", d.example.join(" ")));
    }
    s
}

/// The deadlines section: the contract in brief and every function it covers.
fn deadlines(o: &mut String, reg: &Registry, domains: &[String]) {
    o.push_str(
        "\n## Deadlines and cancellation\n\n\
         A thread's deadline (`rt_deadline_set` / `_at` / `_restore` / `_clear` / `_remaining`) and the \
         cancel tokens bound to it (`rt_cancel_new`, `rt_cancel_bind` / `_unbind`, `rt_cancel_trigger`, \
         `rt_cancel_trigger_signal_safe` from a signal handler) stop every function marked blocking: \
         a deadline passed is Error Timeout (7), a triggered token Error Cancelled (18), checked before the \
         function starts and while it waits, with nothing half-done. Deadlines only shorten; threads started \
         by `concurrent` inherit the scope. What each domain wakes on and leaves behind: `docs/DEADLINES.md`. \
         Unused, the check costs one atomic load.\n\n| Domain | Blocking functions |\n|---|---|\n",
    );
    for d in domains {
        let names: Vec<String> = reg.domain_fns(d).filter(|e| e.blocking).map(|e| format!("[`{0}`](#{0})", e.name)).collect();
        if !names.is_empty() {
            let _ = writeln!(o, "| `{d}` | {} |", names.join(", "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_render_as_bold_labelled_lists() {
        let e = Entry {
            name: "rt_x".into(),
            doc: "Reads.\n\n# Safety\nNone.\n\n# Options\n- level (int 0..=9, default 6): how hard\n\n# Errors\n- NotFound: missing\n\n# Example\nrt_x(\"a\") -> 1".into(),
            blocking: true,
            capability: Some("fs.read".into()),
            ..Default::default()
        };
        let mut o = String::new();
        sections(&mut o, &e);
        assert!(!o.lines().any(|l| l.starts_with('#')), "no heading leaks:\n{o}");
        assert!(o.contains("**Safety**\nNone."), "{o}");
        assert!(o.contains("**Options** (keys of the `opts` dict; nil means all defaults):\n\n- `level` (int 0..=9, default 6): how hard\n"), "{o}");
        assert!(o.contains("Panic, Internal, Timeout, Cancelled and CapabilityDenied):\n\n- `NotFound`: missing\n"), "{o}");
        assert!(o.contains("**Example**\n\n```\nrt_x(\"a\") -> 1\n```\n"), "{o}");
        let e = Entry { name: "rt_y".into(), doc: "Adds.\n\n# Errors\nOnly the implicit codes.".into(), ..Default::default() };
        let mut o = String::new();
        sections(&mut o, &e);
        assert!(o.ends_with("Adds.\n\n**Errors**: only the [implicit](CONTRACT.md#error-codes-per-function) TypeMismatch, Panic and Internal.\n\n"), "{o:?}");
    }
}
