//! `rt errors-check [--root DIR] [--no-static] TRACE...`: do the docs list the
//! error codes the functions return, and the options they take?
//!
//! - Dynamic: every `<code>\t<function>` line of the traces (`RT_ERROR_TRACE`,
//!   written by `rt__error_make` in ffi_core) must be in the function's
//!   `# Errors` or be one of its implicit codes (docs/CONTRACT.md, "Error codes
//!   per function").
//! - Static: every domain function has an `# Errors` section naming only real
//!   codes; every key named in an `opts.only(...)` call in the body of an
//!   `#[rt_fn]` function (a literal list, or a `let`/`const`/`static`/function
//!   of the same file that holds one) is in its `# Options`, and every key its
//!   `# Options` lists is one of them.

use crate::doc;
use crate::model::{Abi, Registry};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Observed (function, code) -> count.
type Seen = BTreeMap<(String, String), u64>;

fn read_traces(paths: &[PathBuf], abi: &Abi) -> Result<(Seen, u64), String> {
    let mut seen = Seen::new();
    let mut lines = 0;
    for p in paths {
        let text = std::fs::read(p).map_err(|e| format!("cannot read the trace {}: {e}", p.display()))?;
        for l in String::from_utf8_lossy(&text).lines() {
            let Some((code, func)) = l.split_once('\t') else { continue };
            lines += 1;
            // A number is a code without a name in this build's table.
            let code = match code.parse::<u32>() {
                Ok(n) => abi.errors.iter().find(|e| e.code == n).map_or(code.to_string(), |e| e.name.clone()),
                Err(_) => code.to_string(),
            };
            *seen.entry((func.to_string(), code)).or_default() += 1;
        }
    }
    Ok((seen, lines))
}

// ---- A light Rust scanner: enough to find `#[rt_fn]` bodies and `opts.only` lists. ----

/// The source with comments and the insides of string/char literals blanked
/// (same length in chars), so braces and names can be matched on it.
fn mask(src: &[char]) -> Vec<char> {
    let mut m = src.to_vec();
    let n = src.len();
    let mut i = 0;
    let blank = |m: &mut Vec<char>, a: usize, b: usize| {
        for c in m.iter_mut().take(b.min(n)).skip(a) {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    while i < n {
        let c = src[i];
        let next = src.get(i + 1).copied().unwrap_or('\0');
        if c == '/' && next == '/' {
            let e = (i..n).find(|&k| src[k] == '\n').unwrap_or(n);
            blank(&mut m, i, e);
            i = e;
        } else if c == '/' && next == '*' {
            let (mut k, mut depth) = (i + 2, 1);
            while k < n && depth > 0 {
                if src[k] == '/' && src.get(k + 1) == Some(&'*') {
                    depth += 1;
                    k += 2;
                } else if src[k] == '*' && src.get(k + 1) == Some(&'/') {
                    depth -= 1;
                    k += 2;
                } else {
                    k += 1;
                }
            }
            blank(&mut m, i, k);
            i = k;
        } else if (c == 'r' || (c == 'b' && next == 'r'))
            && (i == 0 || !(src[i - 1].is_alphanumeric() || src[i - 1] == '_'))
            && {
                let s = if c == 'b' { i + 2 } else { i + 1 };
                let h = (s..n).take_while(|&k| src[k] == '#').count();
                src.get(s + h) == Some(&'"')
            }
        {
            let s = if c == 'b' { i + 2 } else { i + 1 };
            let h = (s..n).take_while(|&k| src[k] == '#').count();
            let body = s + h + 1;
            let mut k = body;
            while k < n && !(src[k] == '"' && (k + 1..k + 1 + h).all(|j| src.get(j) == Some(&'#'))) {
                k += 1;
            }
            blank(&mut m, body, k);
            i = k + 1 + h;
        } else if c == '"' {
            let mut k = i + 1;
            while k < n && src[k] != '"' {
                k += if src[k] == '\\' { 2 } else { 1 };
            }
            blank(&mut m, i + 1, k);
            i = k + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == '\\' {
                let mut k = i + 2;
                while k < n && src[k] != '\'' {
                    k += 1;
                }
                blank(&mut m, i + 1, k);
                i = k + 1;
            } else if src.get(i + 2) == Some(&'\'') {
                blank(&mut m, i + 1, i + 2);
                i += 3;
            } else {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    m
}

/// Index of the bracket closing the one at `open` (in the mask).
fn close_of(m: &[char], open: usize) -> Option<usize> {
    let (o, c) = (m[open], match m[open] {
        '(' => ')',
        '[' => ']',
        '{' => '}',
        _ => return None,
    });
    let mut depth = 0usize;
    for (k, &ch) in m.iter().enumerate().skip(open) {
        if ch == o {
            depth += 1;
        } else if ch == c {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

fn find(m: &[char], pat: &str, from: usize, to: usize) -> Option<usize> {
    let p: Vec<char> = pat.chars().collect();
    (from..to.saturating_sub(p.len() - 1)).find(|&k| m[k..k + p.len()] == p[..])
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `pat` at `k` as a whole word.
fn word_at(m: &[char], k: usize, len: usize) -> bool {
    (k == 0 || !is_ident(m[k - 1])) && m.get(k + len).is_none_or(|&c| !is_ident(c))
}

fn find_word(m: &[char], pat: &str, from: usize, to: usize) -> Option<usize> {
    let mut k = from;
    while let Some(h) = find(m, pat, k, to) {
        if word_at(m, h, pat.chars().count()) {
            return Some(h);
        }
        k = h + 1;
    }
    None
}

/// The string literals of `src[a..b]` (plain `"..."` only).
fn literals(src: &[char], m: &[char], a: usize, b: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut k = a;
    while k < b {
        if m[k] == '"' {
            let e = (k + 1..b).find(|&j| m[j] == '"').unwrap_or(b);
            out.push(src[k + 1..e].iter().collect());
            k = e + 1;
        } else {
            k += 1;
        }
    }
    out
}

/// A function body `{...}` after `fn name` at `at`: (open, close).
fn body_after(m: &[char], at: usize) -> Option<(usize, usize)> {
    let p = (at..m.len()).find(|&k| m[k] == '(')?;
    let pe = close_of(m, p)?;
    let b = (pe..m.len()).find(|&k| m[k] == '{' || m[k] == ';')?;
    if m[b] == ';' {
        return None;
    }
    Some((b, close_of(m, b)?))
}

/// What `opts.only(...)` accepts, as far as the scan can tell.
enum Keys {
    Known(Vec<String>),
    /// The argument's text, when it cannot be resolved in the same file.
    Unresolved(String),
}

/// The keys of a list expression at `a` in file `fi`: `&["a", ...]`, a `let` of
/// the body (a list, or a const's `.to_vec()` plus `.push("k")`s), a
/// `const`/`static` of the crate, or a function of the crate returning a
/// literal list; None when the scan cannot tell (a filter, a parameter...).
fn key_list(files: &[Src], fi: usize, a: (usize, usize), body: (usize, usize), depth: u32) -> Option<Vec<String>> {
    let s = &files[fi];
    let t: String = s.m[a.0..a.1].iter().collect();
    let t = t.trim().trim_start_matches('&').trim();
    if t.starts_with('[') {
        let l = literals(&s.src, &s.m, a.0, a.1);
        return (!l.is_empty()).then_some(l);
    }
    let name: String = t.chars().take_while(|&c| is_ident(c)).collect();
    if name.is_empty() || depth > 3 {
        return None;
    }
    let rest = t[name.len()..].trim();
    let until = |m: &[char], from: usize| (from..m.len()).find(|&k| m[k] == ';').unwrap_or(m.len());
    let value = |k: usize, m: &[char]| -> Option<(usize, usize)> {
        let e = until(m, k);
        let eq = (k..e).find(|&j| m[j] == '=')?;
        Some((eq + 1, e))
    };
    if rest.is_empty() || rest == ".to_vec()" || rest == ".as_slice()" {
        if body.1 > body.0 {
            for pat in [format!("let {name}"), format!("let mut {name}")] {
                if let Some(k) = find_word(&s.m, &pat, body.0, a.0) {
                    let v = value(k, &s.m)?;
                    let mut keys = key_list(files, fi, v, body, depth + 1)?;
                    // `name.push("k")` between the `let` and the use.
                    let mut j = v.1;
                    while let Some(p) = find(&s.m, &format!("{name}.push("), j, a.0) {
                        let pe = close_of(&s.m, p + name.chars().count() + 5)?;
                        keys.extend(literals(&s.src, &s.m, p, pe));
                        j = pe;
                    }
                    return Some(keys);
                }
            }
        }
        let krate = s.path.components().next();
        let order = std::iter::once(fi).chain((0..files.len()).filter(|&k| k != fi && files[k].path.components().next() == krate));
        for k in order {
            for pat in [format!("const {name}"), format!("static {name}")] {
                if let Some(c) = find_word(&files[k].m, &pat, 0, files[k].m.len()) {
                    let v = value(c, &files[k].m)?;
                    return key_list(files, k, v, (0, 0), depth + 1);
                }
            }
        }
        return None;
    }
    if rest == "()" {
        let f = find_word(&s.m, &format!("fn {name}"), 0, s.m.len())?;
        let (b0, b1) = body_after(&s.m, f)?;
        let text: String = s.m[b0..b1].iter().collect();
        let l = literals(&s.src, &s.m, b0, b1);
        return (!l.is_empty() && !text.contains("filter")).then_some(l);
    }
    None
}

fn resolve(files: &[Src], fi: usize, arg: (usize, usize), body: (usize, usize)) -> Keys {
    match key_list(files, fi, arg, body, 0) {
        Some(k) => Keys::Known(k),
        None => Keys::Unresolved(files[fi].src[arg.0..arg.1].iter().collect()),
    }
}

/// One source file, as chars and masked.
struct Src {
    path: PathBuf,
    src: Vec<char>,
    m: Vec<char>,
}

impl Src {
    fn new(path: PathBuf, text: &str) -> Src {
        let src: Vec<char> = text.chars().collect();
        let m = mask(&src);
        Src { path, src, m }
    }
}

/// The arguments of the call whose `(` is at `p`: (start, end) per top-level argument.
fn call_args(m: &[char], p: usize, pe: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut depth, mut a) = (0i32, p + 1);
    for (k, &c) in m.iter().enumerate().take(pe).skip(p + 1) {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push((a, k));
                a = k + 1;
            }
            _ => {}
        }
    }
    if m[a..pe].iter().any(|c| !c.is_whitespace()) {
        out.push((a, pe));
    }
    out
}

/// The `opts.only(...)` lists of a body; where there is none, those of the
/// helpers it hands `opts` to (a key list passed beside `opts`, or the
/// helper's own `opts.only`, same file first, then the crate), two levels deep.
fn lists_in(files: &[Src], fi: usize, body: (usize, usize), depth: u32) -> Vec<Keys> {
    let s = &files[fi];
    let m = &s.m;
    let mut lists = Vec::new();
    let mut j = body.0;
    while let Some(o) = find_word(m, "opts", j, body.1) {
        j = o + 4;
        let rest: String = m[o + 4..body.1.min(o + 40)].iter().filter(|c| !c.is_whitespace()).collect();
        if !rest.starts_with(".only(") {
            continue;
        }
        let Some(p) = (o + 4..body.1).find(|&q| m[q] == '(') else { continue };
        let Some(pe) = close_of(m, p) else { continue };
        lists.push(resolve(files, fi, (p + 1, pe), body));
        j = pe;
    }
    if !lists.is_empty() || depth >= 2 {
        return lists;
    }
    // Calls `name(..., opts, ...)` in the body.
    for p in body.0 + 1..body.1 {
        if m[p] != '(' || !is_ident(m[p - 1]) {
            continue;
        }
        let mut a = p;
        while a > body.0 && is_ident(m[a - 1]) {
            a -= 1;
        }
        if m[a - 1] == '.' || m[a].is_ascii_digit() {
            continue;
        }
        let name: String = m[a..p].iter().collect();
        if matches!(name.as_str(), "if" | "while" | "match" | "for" | "return" | "Some" | "Ok" | "Err") {
            continue;
        }
        let Some(pe) = close_of(m, p) else { continue };
        let args = call_args(m, p, pe);
        let mentions = |r: &(usize, usize)| find_word(m, "opts", r.0, r.1).is_some();
        if !args.iter().any(mentions) {
            continue;
        }
        let passed: Vec<Vec<String>> = args.iter().filter(|r| !mentions(r)).filter_map(|r| key_list(files, fi, *r, body, 0)).collect();
        if !passed.is_empty() {
            lists.extend(passed.into_iter().map(Keys::Known));
            continue;
        }
        // The helper's definition: this file, then the other files of the crate.
        let krate = s.path.components().next();
        let order = std::iter::once(fi).chain((0..files.len()).filter(|&k| k != fi && files[k].path.components().next() == krate));
        for k in order {
            if let Some(f) = find_word(&files[k].m, &format!("fn {name}"), 0, files[k].m.len()) {
                if let Some(b) = body_after(&files[k].m, f) {
                    lists.extend(lists_in(files, k, b, depth + 1));
                }
                break;
            }
        }
    }
    lists
}

/// For every `#[rt_fn]` function of one file: its `opts.only` lists.
fn scan_file(files: &[Src], fi: usize) -> Vec<(String, Vec<Keys>)> {
    let m = &files[fi].m;
    let mut out = Vec::new();
    let mut k = 0;
    while let Some(h) = find(m, "rt_fn(", k, m.len()) {
        k = h + 1;
        let before: String = m[h.saturating_sub(11)..h].iter().collect();
        if !(before.ends_with("#[") || before.ends_with("#[ffi_sdk::")) {
            continue;
        }
        let Some(f) = find_word(m, "fn", h, m.len()) else { break };
        let name: String = m[f + 2..].iter().skip_while(|c| c.is_whitespace()).take_while(|&&c| is_ident(c)).collect();
        if name.is_empty() {
            continue; // `fn $name` in a macro
        }
        let Some(body) = body_after(m, f) else { continue };
        out.push((name, lists_in(files, fi, body, 0)));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    let mut ents: Vec<PathBuf> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    ents.sort();
    for p in ents {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" || name == "node_modules" {
            continue;
        }
        if p.is_dir() {
            rust_files(&p, out);
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

pub struct Report {
    pub problems: Vec<String>,
    pub notes: Vec<String>,
}

pub fn check(reg: &Registry, abi: &Abi, traces: &[PathBuf], root: Option<&Path>) -> Result<Report, String> {
    let codes: BTreeSet<&str> = abi.errors.iter().map(|e| e.name.as_str()).collect();
    let mut problems = Vec::new();
    let mut notes = Vec::new();

    // Static: sections and code names.
    let (mut domain_fns, mut with_errors, mut with_options, mut with_example, mut takes_opts) = (0, 0, 0, 0, 0);
    for e in &reg.entries {
        let d = doc::parse(&e.doc);
        for c in d.error_codes() {
            if !codes.contains(c) {
                problems.push(format!("{}: `# Errors` names {c:?}, which is not an error code", e.name));
            }
        }
        if e.host {
            continue;
        }
        domain_fns += 1;
        with_errors += usize::from(d.errors.is_some());
        with_options += usize::from(d.options.is_some());
        with_example += usize::from(!d.example.is_empty());
        takes_opts += usize::from(e.params.last().is_some_and(|p| p.name == "opts"));
        if d.errors.is_none() {
            problems.push(format!("{}: no `# Errors` section", e.name));
        }
    }
    notes.push(format!(
        "sections: {with_errors} of {domain_fns} domain functions have `# Errors`, {with_options} `# Options` \
         ({takes_opts} take opts), {with_example} `# Example`"
    ));

    // Static: opts.only keys against `# Options`.
    if let Some(root) = root {
        let mut paths = Vec::new();
        rust_files(root, &mut paths);
        let files: Vec<Src> = paths
            .into_iter()
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                Some(Src::new(p.strip_prefix(root).unwrap_or(&p).to_path_buf(), &text))
            })
            .collect();
        let (mut calls, mut resolved, mut unresolved) = (0, 0, Vec::new());
        let (mut opts_fns, mut opts_seen) = (0, 0);
        for fi in 0..files.len() {
            let f = &files[fi].path;
            if find(&files[fi].m, "rt_fn(", 0, files[fi].m.len()).is_none() {
                continue;
            }
            for (name, lists) in scan_file(&files, fi) {
                let Some(e) = reg.get(&name) else { continue };
                if e.params.last().is_some_and(|p| p.name == "opts") {
                    opts_fns += 1;
                    opts_seen += usize::from(!lists.is_empty());
                }
                let d = doc::parse(&e.doc);
                let documented: BTreeSet<&str> = d.option_keys().collect();
                let mut accepted = BTreeSet::new();
                let mut all_known = !lists.is_empty();
                for l in &lists {
                    calls += 1;
                    match l {
                        Keys::Known(keys) => {
                            resolved += 1;
                            accepted.extend(keys.iter().cloned());
                        }
                        Keys::Unresolved(t) => {
                            all_known = false;
                            let rel = f.display().to_string();
                            unresolved.push(format!("{name} ({rel}: opts.only({}))", t.trim()));
                        }
                    }
                }
                for k in &accepted {
                    if !documented.contains(k.as_str()) {
                        problems.push(format!("{name}: option {k:?} is accepted (opts.only) but not in its `# Options`"));
                    }
                }
                if all_known {
                    for k in &documented {
                        if !accepted.contains(*k) {
                            problems.push(format!("{name}: `# Options` lists {k:?}, which its opts.only does not accept"));
                        }
                    }
                }
            }
        }
        notes.push(format!(
            "options: {opts_seen} of {opts_fns} functions taking opts have an opts.only list the scan finds \
             ({calls} lists, {resolved} resolved)"
        ));
        if !unresolved.is_empty() {
            notes.push(format!("  not resolved statically (checked by hand): {}", unresolved.join("; ")));
        }
    }

    // Dynamic: the traces.
    if !traces.is_empty() {
        let (seen, lines) = read_traces(traces, abi)?;
        let (mut pairs, mut covered) = (0, 0);
        let mut other: BTreeMap<String, u64> = BTreeMap::new();
        let mut funcs = BTreeSet::new();
        for ((func, code), n) in &seen {
            let Some(e) = reg.get(func) else {
                *other.entry(func.clone()).or_default() += n;
                continue;
            };
            pairs += 1;
            funcs.insert(func.as_str());
            let d = doc::parse(&e.doc);
            let implicit = doc::implicit_codes(e.blocking, e.capability.is_some());
            if implicit.contains(&code.as_str()) || d.error_codes().any(|c| c == code) {
                covered += 1;
            } else {
                problems.push(format!("{func}: returned {code} ({n} times in the traces), not in its `# Errors`"));
            }
        }
        let pct = if pairs == 0 { 100.0 } else { 100.0 * covered as f64 / pairs as f64 };
        notes.push(format!(
            "traces: {lines} errors; {pairs} distinct (function, code) pairs in {} functions, {covered} documented ({pct:.1}%)",
            funcs.len()
        ));
        if !other.is_empty() {
            let list: Vec<String> = other.iter().map(|(f, n)| format!("{f} ({n})")).collect();
            notes.push(format!("  errors whose message names no registry function (not checked): {}", list.join(", ")));
        }
    }
    Ok(Report { problems, notes })
}

pub fn run(reg: &Registry, abi: &Abi, traces: &[PathBuf], root: Option<&Path>) -> ExitCode {
    let r = match check(reg, abi, traces, root) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rt errors-check: {e}");
            return ExitCode::from(1);
        }
    };
    for p in &r.problems {
        println!("MISSING {p}");
    }
    for n in &r.notes {
        println!("{n}");
    }
    if r.problems.is_empty() {
        println!("rt errors-check: ok");
        ExitCode::SUCCESS
    } else {
        println!(
            "rt errors-check: {} problem(s); list them in the functions' doc comments, `# Errors` / `# Options` \
             (docs/CONTRACT.md, \"Error codes per function\")",
            r.problems.len()
        );
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_only_lists() {
        let src = r#"
const OPTS: &[&str] = &["a", "b"];
/// Doc with "quotes" and { braces.
#[rt_fn(tier = "empirical")]
pub fn rt_x(s: &str, opts: Opts) -> RtResult<bool> {
    let c = '{';
    let s = "}";
    opts.only(&["timeout_ms", "pretty"])?;
    Ok(true)
}
#[rt_fn(tier = "empirical")]
pub fn rt_y(opts: Opts) -> RtResult<bool> {
    opts.only(OPTS)?;
    let known = ["k"];
    opts.only(&known)?;
    opts.only(helper())?;
    Ok(false)
}
fn helper() -> &'static [&'static str] { &["h"] }
#[rt_fn(tier = "empirical")]
pub fn rt_z(opts: Opts) -> RtResult<bool> {
    let o = Options::read(FN, &opts, RUN, 1)?;
    settings(FN, opts)?;
    Ok(true)
}
const RUN: &[&str] = &["r"];
fn settings(func: &str, opts: Opts) -> RtResult<()> { opts.only(&["s"])?; Ok(()) }
"#;
        let files = [Src::new(PathBuf::from("x/src/lib.rs"), src)];
        let got = scan_file(&files, 0);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "rt_x");
        let keys = |k: &Keys| match k {
            Keys::Known(v) => v.clone(),
            Keys::Unresolved(t) => vec![format!("?{t}")],
        };
        assert_eq!(keys(&got[0].1[0]), ["timeout_ms", "pretty"]);
        assert_eq!(got[1].0, "rt_y");
        let all: Vec<Vec<String>> = got[1].1.iter().map(keys).collect();
        assert_eq!(all, [vec!["a", "b"], vec!["k"], vec!["h"]]);
        let all: Vec<Vec<String>> = got[2].1.iter().map(keys).collect();
        assert_eq!(all, [vec!["r"], vec!["s"]]);
    }
}
