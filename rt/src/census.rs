//! `rt simple-census [--tsv FILE] [--missing]`: of the externs Simple's
//! standard library declares in the files that match this project's domains
//! (census `rt/data/simple_externs.tsv`, a copy of the census of Simple's standard library taken 2026-12), how many the loaded registry
//! serves under the same name. Prints the figure, then one line per file.
//!
//! A name that cannot be served at all (a privileged or raw-memory operation,
//! an internal of Simple's compiler or runtime) is listed in [`OUT_OF_SCOPE`]
//! with its reason (also in docs/SIMPLE.md); the coverage figure is served /
//! (declared − out of scope), and the share of all declared names is printed
//! beside it. A listed name that is served, or not declared in the census
//! files, is an error: the list cannot go stale.

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

/// Names of the in-scope census files that no library serves on purpose, with the reason
/// (docs/SIMPLE.md repeats each). Everything else declared there is served or still missing.
pub const OUT_OF_SCOPE: &[(&str, &str)] = &[
    ("rt_fork_child_setup", "fork without exec of the host (Simple's test-runner isolation): undefined in a multi-threaded host, outside the supervisor that limits and kills every child, and a second spawning path"),
    ("rt_fork_parent_signaled", "the parent half of rt_fork_child_setup (fork without exec), out of scope with it"),
    ("rt_fork_parent_stderr", "the parent half of rt_fork_child_setup (fork without exec), out of scope with it"),
    ("rt_fork_parent_stdout", "the parent half of rt_fork_child_setup (fork without exec), out of scope with it"),
    ("rt_fork_parent_wait", "the parent half of rt_fork_child_setup (fork without exec), out of scope with it"),
    ("rt_browser_renderer_sandbox_enter", "enters the sandbox of Simple's browser renderer process (seccomp/namespaces of the calling process): a privileged, product-specific operation"),
    ("rt_browser_renderer_spawn_sandboxed", "spawns Simple's browser renderer inside that sandbox: product-specific; a plain child is rt_process_spawn"),
    ("rt_file_exists_probe_begin", "instrumentation of Simple's module loader (a generation-gated counter of its own rt_file_exists calls): meaningful only inside Simple's runtime"),
    ("rt_file_exists_probe_end", "the end of rt_file_exists_probe_begin's measurement: Simple runtime instrumentation"),
    ("rt_get_host_target_code", "an enumeration private to Simple's compiler (its target codes); rt_os_name / rt_arch_name / rt_target_triple give the facts"),
    ("rt_fd_pread", "reads into a caller-owned buffer given as a raw address: no value can be checked; File handles with rt_file_read_text_at serve positioned reads"),
    ("rt_fd_pwrite", "writes from a caller-owned buffer given as a raw address: no value can be checked; rt_file_write_text_at serves positioned writes"),
    ("rt_cranelift_call_function_ptr", "calls a raw address with raw argument memory and no signature: nothing can be checked; rt_cranelift_jit_execute calls checked against the signature"),
];

/// The reason a name is out of scope, if it is.
pub fn out_of_scope(name: &str) -> Option<&'static str> {
    OUT_OF_SCOPE.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

pub struct Census {
    /// In-scope name -> served.
    pub names: BTreeMap<String, bool>,
    /// File -> (names declared there, served, out of scope).
    pub per_file: Vec<(String, usize, usize, usize)>,
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
        let out = set.iter().filter(|n| out_of_scope(n).is_some()).count();
        for n in &set {
            names.insert(n.clone(), reg.get(n).is_some());
        }
        per_file.push((f.to_string(), set.len(), served, out));
    }
    // The list cannot go stale: every listed name is declared and not served.
    for (n, _) in OUT_OF_SCOPE {
        match names.get(*n) {
            None => return Err(format!("{n} is listed out of scope but not declared in the in-scope census files")),
            Some(true) => return Err(format!("{n} is listed out of scope but the registry serves it: take it off the list")),
            Some(false) => {}
        }
    }
    Ok(Census { names, per_file })
}

pub fn run(reg: &Registry, tsv_path: &Path, missing: bool) -> Result<(), String> {
    let tsv = std::fs::read_to_string(tsv_path)
        .map_err(|e| format!("cannot read {}: {e}", tsv_path.display()))?;
    let c = compute(&tsv, reg)?;
    let declared = c.names.len();
    let served = c.names.values().filter(|s| **s).count();
    let out = OUT_OF_SCOPE.len();
    let total = declared - out;
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    println!(
        "simple census: {served} of {total} in-scope Simple externs served ({:.1}%); {out} more listed out of scope with reasons (docs/SIMPLE.md); {declared} declared in the census files ({:.1}% of them served)",
        pct(served, total),
        pct(served, declared)
    );
    println!("  served / in scope  (declared)  file");
    for (f, n, s, o) in &c.per_file {
        let scope = n - o;
        println!("  {s:>6} / {scope:<6} ({n:>3})  {:>5.1}%  {f}", pct(*s, scope));
    }
    if missing {
        println!("not served (in scope):");
        for (n, _) in c.names.iter().filter(|(n, s)| !**s && out_of_scope(n).is_none()) {
            println!("  {n}");
        }
        println!("out of scope:");
        for (n, why) in OUT_OF_SCOPE {
            println!("  {n}: {why}");
        }
    }
    Ok(())
}
