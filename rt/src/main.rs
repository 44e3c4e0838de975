//! `rt`: a host for the simple-rt libraries, written as an interpreter would
//! be. It dlopens the libraries (RTLD_NOW | RTLD_LOCAL), resolves every
//! function through the runtime's registry, and never links an ffi_* crate.
//!
//! Commands: `list`, `call`, `demo`, `gen`, `abi`, `domains`, `simple-census`, `errors-check` (see `rt help`).

#![deny(clippy::undocumented_unsafe_blocks)]

mod census;
mod convert;
mod demo;
mod doc;
mod domains;
mod errors_check;
mod gen;
mod gen_c;
mod gen_md;
mod gen_py;
mod gen_spl;
mod layout;
mod model;
mod runtime;

use runtime::{Domains, Pinned, Runtime};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
rt: host tool for the simple-rt libraries (loads them with dlopen, calls through the C ABI)

usage: rt [--lib-dir DIR] [--policy TEXT] COMMAND [ARGS]

commands:
  list [--json] [DOMAIN]     the registry: name, signature, capability, blocking, tier
  call [--pretty] NAME ARG…  call a function; each ARG is JSON (a bare word that is not
                             JSON is a string; {\"$bytes\":\"<hex>\"} is bytes); missing
                             trailing arguments are nil; prints the result as JSON
  demo                       run real calls in every loaded domain, then a capability denial
  gen [--check] [--root DIR] [--all]
                             write (or with --check, compare) the generated bindings:
                             include/simple_rt.h, bindings/simple/*.spl,
                             bindings/python/simple_rt/_api.py, docs/API.md
                             (--all also takes in the feature domains torch/cuda/vulkan)
  abi                        the ABI description (rt_abi_info_json) as JSON
  domains [--all]            the domain libraries of the default build, core first, one a
                             line (--all adds the feature domains torch/cuda/vulkan); needs
                             no library (./x.sh install reads it)
  simple-census [--missing] [--tsv FILE]
                             how many of the externs Simple's standard library declares in
                             the in-scope files of rt/data/simple_externs.tsv the loaded
                             registry serves (--missing lists the others)
  errors-check [--root DIR] [--no-static] TRACE...
                             check the `# Errors` / `# Options` sections of the docs:
                             every (function, code) of the traces (RT_ERROR_TRACE=FILE
                             while the tests run) documented or implicit, every domain
                             function with an `# Errors` section, every opts.only key
                             of the sources in `# Options` (docs/CONTRACT.md)
  help                       this text

options:
  --lib-dir DIR   where libffi_*.so are (default: $SIMPLE_RT_LIB_DIR, else the directory of
                  this executable, e.g. target/debug, else ../lib beside it, e.g.
                  /usr/local/lib for an installed /usr/local/bin/rt)
  --policy TEXT   narrow the capability policy first (rt_cap_parse + rt_cap_restrict),
                  e.g. 'fs.read=/tmp;sys.info=false;*=false'

exit status: 0 success; 1 usage, loading or drift (gen --check) failure, or a demo step
failed; 2 the function returned an Error, or the policy was refused.";

struct Global {
    lib_dir: Option<PathBuf>,
    policy: Option<String>,
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rt: {msg}");
    ExitCode::from(1)
}

/// Takes `--lib-dir`/`--policy` at `args[*i]`; Ok(true) when one was consumed.
fn take_global(args: &[String], i: &mut usize, g: &mut Global) -> Result<bool, String> {
    let a = &args[*i];
    let (key, inline) = match a.split_once('=') {
        Some((k, v)) if k == "--lib-dir" || k == "--policy" => (k, Some(v.to_string())),
        _ => (a.as_str(), None),
    };
    if key != "--lib-dir" && key != "--policy" {
        return Ok(false);
    }
    let val = match inline {
        Some(v) => v,
        None => {
            *i += 1;
            args.get(*i).cloned().ok_or_else(|| format!("{key} needs a value"))?
        }
    };
    if key == "--lib-dir" {
        g.lib_dir = Some(PathBuf::from(val));
    } else {
        g.policy = Some(val);
    }
    *i += 1;
    Ok(true)
}

fn lib_dir(g: &Global) -> Result<PathBuf, String> {
    if let Some(d) = &g.lib_dir {
        return Ok(d.clone());
    }
    if let Some(d) = std::env::var_os("SIMPLE_RT_LIB_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable's directory: {e}"))?;
    let bin = exe.parent().ok_or_else(|| "this executable has no parent directory".to_string())?;
    // Installed (`./x.sh install`): PREFIX/bin/rt beside PREFIX/lib/libffi_*.so.
    if !bin.join("libffi_core.so").is_file() {
        if let Some(lib) = bin.parent().map(|p| p.join("lib")).filter(|l| l.join("libffi_core.so").is_file()) {
            return Ok(lib);
        }
    }
    Ok(bin.to_path_buf())
}

fn load(g: &Global, which: Domains) -> Result<Runtime, ExitCode> {
    let dir = lib_dir(g).map_err(fail)?;
    let rt = Runtime::load(&dir, which).map_err(fail)?;
    for (d, e) in &rt.failed {
        eprintln!("rt: warning: libffi_{d}.so did not load: {e}");
    }
    if let Some(p) = &g.policy {
        if let Err(e) = rt.restrict(p) {
            eprintln!("rt: --policy refused\n{}", e.report());
            return Err(ExitCode::from(2));
        }
    }
    Ok(rt)
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`rt list | head`), as command-line tools do.
    // SAFETY: setting a signal disposition to the default at start-up, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut g = Global { lib_dir: None, policy: None };
    let mut i = 0;
    while i < args.len() {
        match take_global(&args, &mut i, &mut g) {
            Ok(true) => continue,
            Ok(false) => break,
            Err(e) => return fail(e),
        }
    }
    let Some(cmd) = args.get(i).cloned() else {
        eprintln!("{USAGE}");
        return ExitCode::from(1);
    };
    i += 1;
    let rest = &args[i..];
    match cmd.as_str() {
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        "list" => cmd_list(g, rest),
        "call" => cmd_call(g, rest),
        "demo" => cmd_demo(g, rest),
        "gen" => cmd_gen(g, rest),
        "abi" => cmd_abi(g, rest),
        "domains" => cmd_domains(g, rest),
        "simple-census" => cmd_census(g, rest),
        "errors-check" => cmd_errors_check(g, rest),
        other => fail(format!("unknown command {other:?} (try `rt help`)")),
    }
}

/// Parses the flags of a command (globals allowed too); returns the positionals.
fn flags(g: &mut Global, rest: &[String], known: &[&str], stop_at_positional: bool) -> Result<(Vec<String>, Vec<String>), String> {
    let mut set = Vec::new();
    let mut pos = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        if !pos.is_empty() && stop_at_positional {
            pos.extend_from_slice(&rest[i..]);
            break;
        }
        if take_global(rest, &mut i, g)? {
            continue;
        }
        let a = &rest[i];
        if a == "--" {
            pos.extend_from_slice(&rest[i + 1..]);
            break;
        }
        if a.starts_with("--") {
            let key = a.split('=').next().unwrap_or(a);
            if !known.contains(&key) {
                return Err(format!("unknown option {a}"));
            }
            set.push(a.clone());
        } else {
            pos.push(a.clone());
        }
        i += 1;
    }
    Ok((set, pos))
}

fn cmd_list(mut g: Global, rest: &[String]) -> ExitCode {
    let (set, pos) = match flags(&mut g, rest, &["--json"], false) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if pos.len() > 1 {
        return fail("usage: rt list [--json] [DOMAIN]");
    }
    let rt = match load(&g, Domains::All) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let domain = pos.first();
    if let Some(d) = domain {
        if !rt.registry.entries.iter().any(|e| &e.domain == d) {
            return fail(format!("no loaded function has domain {d:?} (domains: {})", rt.registry.domains().join(", ")));
        }
    }
    let entries: Vec<&model::Entry> =
        rt.registry.entries.iter().filter(|e| domain.is_none_or(|d| &e.domain == d)).collect();
    if set.iter().any(|s| s == "--json") {
        // SAFETY: `rt_registry_json(void) -> RtValue`, prototype checked against the registry
        // by `Runtime::load`; the returned text is on this stack while `text` copies it.
        let text = rt.text(unsafe { (rt.h.registry_json)() }).unwrap_or_default();
        let all: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let picked: Vec<&serde_json::Value> = all
            .as_array()
            .map(|a| a.iter().filter(|e| domain.is_none_or(|d| e.get("domain").and_then(|x| x.as_str()) == Some(d))).collect())
            .unwrap_or_default();
        match serde_json::to_string_pretty(&picked) {
            Ok(s) => println!("{s}"),
            Err(e) => return fail(format!("cannot print the registry: {e}")),
        }
        return ExitCode::SUCCESS;
    }
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                e.domain.clone(),
                e.name.clone(),
                if e.host { format!("{}  [host, C types]", e.c_prototype()) } else { e.signature.clone() },
                e.cap_text(),
                if e.blocking { "blocking".into() } else { "-".into() },
                e.tier.clone(),
            ]
        })
        .collect();
    let head = ["DOMAIN", "NAME", "SIGNATURE", "CAPABILITY", "BLOCKING", "TIER"];
    let mut w = head.map(|h| h.chars().count());
    for r in &rows {
        for (k, c) in r.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (k, c) in cells.iter().enumerate() {
            if k + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<width$}  ", width = w[k]));
            }
        }
        s
    };
    println!("{}", line(&head.map(String::from)));
    for r in &rows {
        println!("{}", line(r));
    }
    println!(
        "\n{} functions from {} libraries ({}); ABI {}.{}",
        entries.len(),
        rt.libs.len(),
        rt.loaded_domains().join(", "),
        rt.abi_version >> 16,
        rt.abi_version & 0xFFFF
    );
    ExitCode::SUCCESS
}

fn cmd_call(mut g: Global, rest: &[String]) -> ExitCode {
    let (set, pos) = match flags(&mut g, rest, &["--pretty"], true) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let Some((name, raw_args)) = pos.split_first() else {
        return fail("usage: rt call [--pretty] NAME [ARG...]");
    };
    // `rt call NAME -- ARG...`: the separator is not an argument.
    let raw_args = raw_args.strip_prefix(&["--".to_string()][..]).unwrap_or(raw_args);
    let rt = match load(&g, Domains::All) {
        Ok(r) => r,
        Err(c) => return c,
    };
    let Some(entry) = rt.registry.get(name) else {
        let near: Vec<&str> = rt
            .registry
            .entries
            .iter()
            .filter(|e| e.name.contains(name.trim_start_matches("rt_")))
            .map(|e| e.name.as_str())
            .take(8)
            .collect();
        let hint = if near.is_empty() { String::new() } else { format!("; similar: {}", near.join(", ")) };
        return fail(format!(
            "{name} is not in the registry of the loaded libraries ({}){hint}",
            rt.loaded_domains().join(", ")
        ));
    };
    if entry.host {
        return fail(format!(
            "{name} is a host-surface function with C types ({}); `rt call` calls RtValue functions only",
            entry.c_prototype()
        ));
    }
    if raw_args.len() > entry.arity {
        return fail(format!("{name} takes {} argument(s), {} given: {}", entry.arity, raw_args.len(), entry.signature));
    }
    let nil = match rt.abi.special("nil") {
        Some(n) => n,
        None => return fail("the ABI description has no nil"),
    };
    let mut pinned: Vec<Pinned> = Vec::with_capacity(entry.arity);
    for (k, a) in raw_args.iter().enumerate() {
        match convert::from_json(&rt, &convert::parse_arg(a), &|_| None) {
            Ok(v) => pinned.push(Pinned::new(&rt, v)),
            Err(e) => {
                let p = &entry.params[k];
                return fail(format!("argument {} ({}: {}): {e}", k + 1, p.name, p.ty));
            }
        }
    }
    let mut args: Vec<u64> = pinned.iter().map(|p| p.v).collect();
    args.resize(entry.arity, nil);
    let r = match rt.call(name, &args) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let r = Pinned::new(&rt, r);
    if let Some(e) = rt.error_of(r.v) {
        eprintln!("{}", e.report());
        return ExitCode::from(2);
    }
    let j = convert::to_json(&rt, r.v);
    let out = if set.iter().any(|s| s == "--pretty") { serde_json::to_string_pretty(&j) } else { serde_json::to_string(&j) };
    match out {
        Ok(s) => println!("{s}"),
        Err(e) => return fail(format!("cannot print the result: {e}")),
    }
    drop(pinned);
    ExitCode::SUCCESS
}

fn cmd_demo(mut g: Global, rest: &[String]) -> ExitCode {
    let (_, pos) = match flags(&mut g, rest, &[], false) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if !pos.is_empty() {
        return fail("usage: rt demo");
    }
    let rt = match load(&g, Domains::All) {
        Ok(r) => r,
        Err(c) => return c,
    };
    demo::run(&rt)
}

fn cmd_gen(mut g: Global, rest: &[String]) -> ExitCode {
    let (set, pos) = match flags(&mut g, rest, &["--check", "--root", "--all"], false) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let check = set.iter().any(|s| s == "--check");
    let all = set.iter().any(|s| s == "--all");
    // `--root DIR` arrives as the flag then a positional; `--root=DIR` inline.
    let mut pos = pos.into_iter();
    let root = match path_flag(&set, &mut pos, "--root", "a directory") {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Some(extra) = pos.next() {
        return fail(format!("unexpected argument {extra:?}; usage: rt gen [--check] [--root DIR] [--all]"));
    }
    if g.policy.is_some() {
        return fail("gen does not take --policy");
    }
    let rt = match load(&g, if all { Domains::All } else { Domains::Default }) {
        Ok(r) => r,
        Err(c) => return c,
    };
    if !rt.failed.is_empty() || !rt.absent.is_empty() {
        let mut why: Vec<String> = rt.absent.iter().map(|d| format!("libffi_{d}.so is missing")).collect();
        why.extend(rt.failed.iter().map(|(d, e)| format!("libffi_{d}.so failed to load ({e})")));
        return fail(format!(
            "gen needs every library of the build in {} (run `cargo build` first): {}",
            rt.dir.display(),
            why.join("; ")
        ));
    }
    let root = match root {
        Some(r) => r,
        None => match gen::find_root() {
            Ok(r) => r,
            Err(e) => return fail(e),
        },
    };
    gen::run(&rt, &root, check)
}

fn cmd_abi(mut g: Global, rest: &[String]) -> ExitCode {
    if let Err(e) = flags(&mut g, rest, &[], false).and_then(|(_, p)| if p.is_empty() { Ok(()) } else { Err("usage: rt abi".into()) }) {
        return fail(e);
    }
    let rt = match load(&g, Domains::All) {
        Ok(r) => r,
        Err(c) => return c,
    };
    match rt.call("rt_abi_info_json", &[]).map(|v| rt.text(v).unwrap_or_default()) {
        Ok(t) => match serde_json::from_str::<serde_json::Value>(&t).and_then(|j| serde_json::to_string_pretty(&j)) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(format!("rt_abi_info_json: {e}")),
        },
        Err(e) => fail(e),
    }
}

/// The project's one domain list (`rt/src/domains.rs`), for scripts.
fn cmd_domains(mut g: Global, rest: &[String]) -> ExitCode {
    let all = match flags(&mut g, rest, &["--all"], false) {
        Ok((set, pos)) if pos.is_empty() => !set.is_empty(),
        Ok(_) => return fail("usage: rt domains [--all]"),
        Err(e) => return fail(e),
    };
    println!("core");
    let list: Vec<&str> = if all { domains::DOMAINS.to_vec() } else { domains::default_domains().collect() };
    for d in list {
        println!("{d}");
    }
    ExitCode::SUCCESS
}

/// The path given to `name` (`--name=P`, or `--name P` taking the next positional), if any.
fn path_flag(set: &[String], pos: &mut impl Iterator<Item = String>, name: &str, what: &str) -> Result<Option<PathBuf>, String> {
    let mut out = None;
    for s in set {
        if let Some(v) = s.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            out = Some(PathBuf::from(v));
        } else if s == name {
            out = Some(PathBuf::from(pos.next().ok_or_else(|| format!("{name} needs {what}"))?));
        }
    }
    Ok(out)
}

fn cmd_census(mut g: Global, rest: &[String]) -> ExitCode {
    let (set, pos) = match flags(&mut g, rest, &["--missing", "--tsv"], false) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut pos = pos.into_iter();
    let tsv = match path_flag(&set, &mut pos, "--tsv", "a file") {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    if let Some(extra) = pos.next() {
        return fail(format!("unexpected argument {extra:?}; usage: rt simple-census [--missing] [--tsv FILE]"));
    }
    let tsv = match tsv {
        Some(t) => t,
        None => match gen::find_root() {
            Ok(r) => r.join("rt/data/simple_externs.tsv"),
            Err(e) => return fail(e),
        },
    };
    let rt = match load(&g, Domains::All) {
        Ok(r) => r,
        Err(c) => return c,
    };
    match census::run(&rt.registry, &tsv, set.iter().any(|s| s == "--missing")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn cmd_errors_check(mut g: Global, rest: &[String]) -> ExitCode {
    let (set, pos) = match flags(&mut g, rest, &["--root", "--no-static"], false) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let mut root: Option<PathBuf> = None;
    let mut pos = pos.into_iter();
    for s in &set {
        if let Some(v) = s.strip_prefix("--root=") {
            root = Some(PathBuf::from(v));
        } else if s == "--root" {
            match pos.next() {
                Some(v) => root = Some(PathBuf::from(v)),
                None => return fail("--root needs a directory"),
            }
        }
    }
    let traces: Vec<PathBuf> = pos.map(PathBuf::from).collect();
    let root = if set.iter().any(|s| s == "--no-static") {
        None
    } else {
        match root.map_or_else(gen::find_root, Ok) {
            Ok(r) => Some(r),
            Err(e) => return fail(e),
        }
    };
    let rt = match load(&g, Domains::All) {
        Ok(r) => r,
        Err(c) => return c,
    };
    errors_check::run(&rt.registry, &rt.abi, &traces, root.as_deref())
}
