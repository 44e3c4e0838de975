//! `rt simple-census [--tsv FILE] [--missing]`: of the externs Simple's
//! standard library declares in the files that match this project's domains
//! (census `../shared/simple/externs.tsv`), how many the loaded registry
//! serves under the same name. Prints the figure, then one line per file.

use crate::model::Registry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The census files in scope (issue 16), relative to Simple's `src/`.
pub const IN_SCOPE: &[&str] = &[
    "lib/nogc_sync_mut/sffi/io.spl",
    "lib/nogc_sync_mut/sffi/fs.spl",
    "lib/nogc_sync_mut/sffi/env.spl",
    "lib/nogc_sync_mut/sffi/time.spl",
    "lib/nogc_sync_mut/sffi/system.spl",
    "lib/nogc_sync_mut/sffi/process.spl",
    "lib/nogc_sync_mut/sffi/crypto.spl",
    "lib/nogc_sync_mut/sffi/concurrent.spl",
    "lib/nogc_sync_mut/sffi/net.spl",
    "lib/nogc_sync_mut/sffi/codegen.spl",
    "lib/nogc_sync_mut/io/file_ops.spl",
    "lib/nogc_sync_mut/io/process_ops.spl",
    "lib/nogc_sync_mut/io/crypto_ffi.spl",
    "lib/nogc_sync_mut/io/compress_ffi.spl",
    "lib/nogc_sync_mut/io/regex_ffi.spl",
    "lib/nogc_sync_mut/io/http_ffi.spl",
    "app/io/thread.spl",
];

pub struct Census {
    /// In-scope name -> served.
    pub names: BTreeMap<String, bool>,
    /// File -> (names declared there, served).
    pub per_file: Vec<(String, usize, usize)>,
}

fn in_scope(path: &str) -> Option<&'static str> {
    let p = path.trim().strip_prefix("src/").unwrap_or(path.trim());
    IN_SCOPE.iter().copied().find(|f| *f == p)
}

pub fn compute(tsv: &str, reg: &Registry) -> Result<Census, String> {
    let mut lines = tsv.lines();
    let head = lines.next().ok_or("the census is empty")?;
    let cols: Vec<&str> = head.split('\t').collect();
    let (Some(ni), Some(di)) = (
        cols.iter().position(|c| *c == "name"),
        cols.iter().position(|c| *c == "declared_in"),
    ) else {
        return Err(format!(
            "the census header has no `name` / `declared_in` column: {head:?}"
        ));
    };
    let mut by_file: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for l in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = l.split('\t').collect();
        let (Some(name), Some(decl)) = (f.get(ni), f.get(di)) else {
            continue;
        };
        for file in decl.split(',').filter_map(in_scope) {
            by_file.entry(file).or_default().insert(name.to_string());
        }
    }
    let mut names = BTreeMap::new();
    let mut per_file = Vec::new();
    for f in IN_SCOPE {
        let set = by_file.get(f).cloned().unwrap_or_default();
        let served = set.iter().filter(|n| reg.get(n).is_some()).count();
        for n in &set {
            names.insert(n.clone(), reg.get(n).is_some());
        }
        per_file.push((f.to_string(), set.len(), served));
    }
    Ok(Census { names, per_file })
}

pub fn run(reg: &Registry, tsv_path: &Path, missing: bool) -> Result<(), String> {
    let tsv = std::fs::read_to_string(tsv_path)
        .map_err(|e| format!("cannot read {}: {e}", tsv_path.display()))?;
    let c = compute(&tsv, reg)?;
    let total = c.names.len();
    let served = c.names.values().filter(|s| **s).count();
    let pct = if total == 0 {
        0.0
    } else {
        100.0 * served as f64 / total as f64
    };
    println!("simple census: {served} of {total} in-scope Simple externs served ({pct:.1}%)");
    for (f, n, s) in &c.per_file {
        println!("  {s:>4} / {n:<4} {f}");
    }
    if missing {
        println!("not served:");
        for (n, _) in c.names.iter().filter(|(_, s)| !**s) {
            println!("  {n}");
        }
    }
    Ok(())
}
