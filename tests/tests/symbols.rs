//! SPEC §5/§6: every exported `rt_*` symbol is defined in exactly one
//! library and is in the registry; every registry entry is exported by
//! exactly one library, at the address the registry gives. Compared with
//! `nm -D --defined-only`.

use rt_tests::*;
use std::collections::{BTreeMap, BTreeSet};

/// symbol -> libraries defining it, over core and every present domain library.
fn symbol_map() -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut libs = vec!["core"];
    libs.extend(present_domains());
    for l in libs {
        for s in exported_symbols(&lib_path(l)) {
            map.entry(s).or_default().push(l.to_string());
        }
    }
    map
}

#[test]
fn every_exported_symbol_is_defined_once() {
    let map = symbol_map();
    assert!(map.contains_key("rt_hostname") && map.contains_key("rt_string_new"), "libraries not built?");
    let dups: Vec<String> =
        map.iter().filter(|(_, l)| l.len() > 1).map(|(s, l)| format!("{s} in {}", l.join(", "))).collect();
    assert!(dups.is_empty(), "symbols defined more than once:\n{}", dups.join("\n"));
}

#[test]
fn libraries_export_only_runtime_symbols() {
    // A dependency named in code re-exports its #[no_mangle] functions from our
    // cdylib (DEPENDENCIES.md): every defined dynamic symbol must be ours.
    let mut libs = vec!["core"];
    libs.extend(present_domains());
    for l in libs {
        let out = std::process::Command::new("nm").args(["-D", "--defined-only"]).arg(lib_path(l)).output().unwrap();
        let stray: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_whitespace().nth(2).map(str::to_string))
            .filter(|s| !s.starts_with("rt_") && !s.starts_with("RT_"))
            .collect();
        assert!(stray.is_empty(), "libffi_{l}.so exports non-runtime symbols: {stray:?}");
    }
}

#[test]
fn exports_and_registry_match() {
    let loaded = open_all();
    let c = core();
    let map = symbol_map();
    let reg = c.registry();
    let mut names = BTreeSet::new();
    let mut problems = Vec::new();
    for e in &reg {
        let name = e["name"].as_str().unwrap().to_string();
        if !names.insert(name.clone()) {
            problems.push(format!("{name} listed twice in the registry"));
        }
        match map.get(&name) {
            None => problems.push(format!("{name} is registered but no library exports it")),
            Some(l) if l.len() != 1 => problems.push(format!("{name} exported by {}", l.join(", "))),
            Some(l) => {
                let lib = Lib::open(&l[0]).unwrap();
                let (addr, arity) = c.lookup(&name).unwrap();
                if lib.addr(&name) != Some(addr) {
                    problems.push(format!("{name}: registry address is not libffi_{}.so's", l[0]));
                }
                if arity as usize != e["params"].as_array().unwrap().len() || e["arity"] != arity {
                    problems.push(format!("{name}: lookup arity {arity} vs entry {}", e["arity"]));
                }
            }
        }
    }
    for (sym, l) in &map {
        if sym.starts_with("rt__") || sym.starts_with("RT_") {
            if l != &["core"] {
                problems.push(format!("internal {sym} exported by {}", l.join(", ")));
            }
            continue;
        }
        if !loaded.iter().any(|x| l.contains(x)) {
            continue; // an optional library that could not be loaded here
        }
        if !names.contains(sym) {
            problems.push(format!("{sym} (libffi_{}.so) is not in the registry", l.join(",")));
        }
    }
    assert!(problems.is_empty(), "{} problems:\n{}", problems.len(), problems.join("\n"));
    let dups = c.ok(c.call("rt_registry_duplicates", &[]));
    assert_eq!((c.array_len)(dups), 0);
}

#[test]
fn registry_entries_are_well_formed() {
    open_all();
    let c = core();
    let vocab = ["int", "float", "bool", "text", "bytes", "array", "dict", "handle", "any", "nil"];
    for e in c.registry() {
        let name = e["name"].as_str().unwrap();
        assert!(name.starts_with("rt_"), "{name}");
        assert!(!e["doc"].as_str().unwrap_or("").is_empty(), "{name} has no doc");
        assert!(e["arity"].as_u64().unwrap() <= 8, "{name} has more than 8 parameters");
        for t in e["params"].as_array().unwrap().iter().map(|p| &p["type"]).chain([&e["returns"]]) {
            let t = t.as_str().unwrap();
            let base = t.split(['<', '?']).next().unwrap();
            assert!(vocab.contains(&base), "{name}: type {t} outside the vocabulary");
        }
        if e["host"] == true {
            assert!(e["c_returns"].is_string(), "{name}");
        } else {
            assert_eq!(e.get("c_returns"), None, "{name}");
        }
        if let Some(cap) = e["capability"].as_str() {
            let caps = ["fs.read", "fs.write", "env.read", "env.write", "process.spawn", "net.connect", "net.listen",
                "net.http", "sys.info", "tty", "signal", "codegen.jit", "gpu", "thread", "fs.hardlink"];
            assert!(caps.contains(&cap), "{name}: unknown capability {cap}");
        }
        let tier = e["tier"].as_str().unwrap();
        assert!(["formal", "verified", "empirical", "experimental"].contains(&tier), "{name}: tier {tier}");
    }
}

#[test]
fn test_binaries_do_not_link_the_runtime() {
    // rt_tests lists ffi_core / ffi_system only to get them built; naming them
    // in code would link a second copy of every rt_* function into the tests.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("nm").args(["--defined-only"]).arg(&exe).output().unwrap();
    let own: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| s.starts_with("rt_") || s.starts_with("RT_CAP"))
        .map(str::to_string)
        .collect();
    assert!(own.is_empty(), "the test binary defines runtime symbols itself: {own:?}");
}
