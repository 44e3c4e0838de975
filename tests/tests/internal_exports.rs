//! Internal exports (SPEC §3): what libffi_core.so exports only for the other
//! libraries of the runtime (ffi_sdk) — every `rt__*` function and a few
//! `RT_*` data symbols — is named as internal in the header's "Internal
//! exports" note (rt/src/gen_c.rs `INTERNAL_DATA`) and in docs/CONTRACT.md,
//! and declared nowhere in the header. A new internal data symbol fails here
//! until both name it.

use rt_tests::*;
use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace");
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `RT_[A-Z0-9_]+` words of `text`.
fn rt_words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("RT_") && w.len() > 3)
        .map(str::to_string)
        .collect()
}

#[test]
fn internal_exports_are_named_internal_and_never_declared() {
    let exported = exported_symbols(&lib_path("core"));
    assert!(exported.iter().any(|s| s == "rt_string_new"), "libffi_core.so not built?");
    let data: BTreeSet<String> = exported.iter().filter(|s| s.starts_with("RT_")).cloned().collect();
    let fns: Vec<&String> = exported.iter().filter(|s| s.starts_with("rt__")).collect();
    assert!(!fns.is_empty(), "libffi_core.so exports no rt__* function: is the prefix still the internal one?");

    let header = read("include/simple_rt.h");
    let start = header.find("/* ---- Internal exports").expect("the header's Internal exports note (rt gen)");
    let note = &header[start..start + header[start..].find("*/").expect("end of the note")];
    assert!(note.contains("rt__*"), "the note names the rt__* functions:\n{note}");
    assert_eq!(rt_words(note), data, "internal data symbols: the header's note (rt/src/gen_c.rs INTERNAL_DATA) vs libffi_core.so");

    let rest = header.replacen(note, "", 1);
    for f in &fns {
        assert!(!rest.contains(f.as_str()), "the header names internal {f}");
    }
    for d in &data {
        assert!(!rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).any(|w| w == d), "the header names internal {d}");
    }

    let contract = read("docs/CONTRACT.md");
    assert!(contract.contains("`rt__*`"), "docs/CONTRACT.md names the rt__* functions internal");
    for d in &data {
        assert!(contract.contains(&format!("`{d}`")), "docs/CONTRACT.md does not name internal {d}");
    }
}
