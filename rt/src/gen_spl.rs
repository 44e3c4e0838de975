//! bindings/simple/<domain>.spl: one `extern fn` per domain function, in
//! Simple's syntax, with the registry's types as written.

use crate::gen::MARK;
use crate::model::{Abi, Registry};
use std::fmt::Write;

pub fn domain(reg: &Registry, abi: &Abi, d: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# {MARK}");
    let _ = writeln!(o, "# simple-rt domain `{d}` (libffi_{d}.so), ABI {}.{}.", abi.major, abi.minor);
    let _ = writeln!(
        o,
        "# Every function returns an Error value on failure; types: int, float, bool, text, bytes,"
    );
    let _ = writeln!(o, "# array<T>, dict, handle<Kind>, any, nil; a trailing `?` accepts (or may return) nil.");
    for e in reg.domain_fns(d) {
        o.push('\n');
        for l in e.doc.lines() {
            if l.is_empty() {
                o.push_str("#\n");
            } else {
                let _ = writeln!(o, "# {l}");
            }
        }
        let _ = writeln!(
            o,
            "# capability: {}; {}; tier: {}",
            e.cap_text(),
            if e.blocking { "blocking" } else { "non-blocking" },
            e.tier
        );
        let params = e.params.iter().map(|p| format!("{}: {}", p.name, p.ty)).collect::<Vec<_>>().join(", ");
        let _ = writeln!(o, "extern fn {}({params}) -> {}", e.name, e.returns);
    }
    o
}
