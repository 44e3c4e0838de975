//! `HandleType::NAME` is unique among the handle types of the workspace
//! (the safety contract of the `unsafe trait`: handles are told apart by
//! their type name alone). Reads every Rust source file of the repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !matches!(name.as_str(), "target" | ".git" | "fuzz" | "node_modules") {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_handle_type_name_is_unique() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    rust_files(root, &mut files);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut impls = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("HandleType for ") {
            rest = &rest[i + "HandleType for ".len()..];
            let ty: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let body = &rest[..rest.find('}').unwrap_or(rest.len())];
            let Some(n) = body.find("const NAME: &'static str = \"") else { continue };
            let name = &body[n + 28..];
            let name = &name[..name.find('"').unwrap()];
            impls += 1;
            seen.entry(name.to_string()).or_default().push(format!("{} ({ty})", f.strip_prefix(root).unwrap().display()));
        }
    }
    assert!(impls >= 50, "found only {impls} HandleType impls: is the scan still reading the tree?");
    let dup: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(dup.is_empty(), "handle type names used twice: {dup:?}");
}
