//! One list of domains (rt/src/domains.rs, `rt_tests::DOMAINS`): `rt` and
//! these tests include it; everything else that names the domains is checked
//! against it here: the workspace's cdylib crates and default members, and
//! the Python package's lists (`DOMAINS` in simple_rt/_nrt.py, which loads
//! them, and `CRATES` in build_backend/simple_rt_build.py, which stages them
//! into a wheel).

use rt_tests::{default_domains, DOMAINS, FEATURE_DOMAINS};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The double-quoted strings of the first `[...]` after `start` in `text`.
fn quoted_list(text: &str, start: &str, file: &str) -> Vec<String> {
    let at = text.find(start).unwrap_or_else(|| panic!("{file}: no {start:?}"));
    let rest = &text[at + start.len()..];
    let open = rest.find('[').unwrap_or_else(|| panic!("{file}: no [ after {start:?}"));
    let close = open + rest[open..].find(']').unwrap_or_else(|| panic!("{file}: no ] after {start:?}"));
    rest[open + 1..close]
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split('"').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn crates(domains: impl IntoIterator<Item = &'static str>) -> Vec<String> {
    std::iter::once("core").chain(domains).map(|d| format!("ffi_{d}")).collect()
}

#[test]
fn feature_domains_are_domains() {
    assert!(FEATURE_DOMAINS.iter().all(|f| DOMAINS.contains(f)));
    let mut seen = std::collections::BTreeSet::new();
    assert!(DOMAINS.iter().all(|d| seen.insert(d)), "a domain listed twice");
}

#[test]
fn workspace_cdylibs_are_the_domain_list() {
    let toml = read("Cargo.toml");
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let ffi = |v: Vec<String>| v.into_iter().filter(|m| m.starts_with("ffi_") && m != "ffi_sdk" && m != "ffi_macros").collect::<Vec<_>>();
    assert_eq!(
        sorted(ffi(quoted_list(&toml, "\nmembers", "Cargo.toml"))),
        sorted(crates(DOMAINS)),
        "workspace members vs rt/src/domains.rs DOMAINS"
    );
    assert_eq!(
        sorted(ffi(quoted_list(&toml, "\ndefault-members", "Cargo.toml"))),
        sorted(crates(default_domains())),
        "workspace default-members vs the default domains (DOMAINS less FEATURE_DOMAINS)"
    );
    // Every library crate in the workspace is a listed domain (or core).
    for entry in std::fs::read_dir(workspace()).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        if manifest.contains("\"cdylib\"") && name.starts_with("ffi_") {
            assert!(crates(DOMAINS).contains(&name), "{name} builds a library but is not in rt/src/domains.rs DOMAINS");
        }
    }
}

#[test]
fn python_package_lists_match() {
    let nrt = "bindings/python/simple_rt/_nrt.py";
    assert_eq!(
        quoted_list(&read(nrt), "\nDOMAINS = ", nrt),
        DOMAINS.map(String::from),
        "{nrt} DOMAINS must equal rt/src/domains.rs DOMAINS (same order)"
    );
    let backend = "bindings/python/build_backend/simple_rt_build.py";
    assert_eq!(
        quoted_list(&read(backend), "\nCRATES = ", backend),
        crates(default_domains()),
        "{backend} CRATES must be ffi_core then the default domains of rt/src/domains.rs"
    );
}

#[test]
fn contract_names_every_domain() {
    let contract = read("docs/CONTRACT.md");
    let at = contract.find("## 1. What it is").expect("docs/CONTRACT.md section 1");
    let section = &contract[at..at + contract[at..].find("\n## 2.").expect("section 2 follows")];
    let words: Vec<&str> = section.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for d in std::iter::once("core").chain(DOMAINS) {
        assert!(words.contains(&d), "docs/CONTRACT.md section 1 does not name domain {d}");
    }
}
