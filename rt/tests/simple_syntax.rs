//! The generated Simple bindings (bindings/simple/*.spl) parsed line by line
//! against the syntax of Simple's own `sffi/*.spl` (repository
//! `ormastes/simple`; facts in docs/SIMPLE.md): the type vocabulary, the `@unsafe(reason: "...",
//! capabilities: [ffi])` attribute above every raw extern, the wrapper beside
//! each extern, 4-space indentation, and no parameter named like a keyword or
//! a type. `rt gen --check` keeps the files equal to what the registry
//! generates; this keeps what it generates valid Simple.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn bindings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("rt/ sits in the workspace")
        .join("bindings/simple")
}

/// Keywords, literals and type names no parameter may be named.
const RESERVED: &[&str] = &[
    "and", "as", "async", "await", "break", "case", "class", "const", "continue", "elif", "else",
    "enum", "extern", "false", "fn", "for", "if", "impl", "import", "in", "is", "let", "loop",
    "match", "me", "mod", "module", "mut", "nil", "not", "or", "pass", "pub", "return", "self",
    "Self", "static", "struct", "trait", "true", "type", "unsafe", "use", "val", "var", "while",
    "with", "yield", "text", "bool", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32",
    "f64", "Any", "Dict", "Result", "Option", "Ok", "Err", "Some", "None",
];

/// Registry words that are not Simple types: none may appear as a type.
const NOT_SIMPLE: &[&str] = &[
    "int", "float", "bytes", "dict", "array", "handle", "any", "nil", "value", "string",
];

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Parses one type at the start of `s`; returns the rest. `classes`: the
/// handle classes and RtError, which wrappers may name.
fn parse_type<'a>(s: &'a str, classes: &BTreeSet<String>) -> Result<&'a str, String> {
    let rest = if let Some(r) = s.strip_prefix('[') {
        let r = parse_type(r, classes)?;
        r.strip_prefix(']')
            .ok_or_else(|| format!("`]` expected in {s:?}"))?
    } else if let Some(r) = s.strip_prefix("Dict<text, ") {
        let r = parse_type(r, classes)?;
        r.strip_prefix('>')
            .ok_or_else(|| format!("`>` expected in {s:?}"))?
    } else if let Some(r) = s.strip_prefix("Result<") {
        let r = match r.strip_prefix("()") {
            Some(r) => r,
            None => parse_type(r, classes)?,
        };
        r.strip_prefix(", RtError>")
            .ok_or_else(|| format!("`, RtError>` expected in {s:?}"))?
    } else {
        let end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        let word = &s[..end];
        let prim = [
            "i64", "i32", "u64", "u32", "u8", "f64", "f32", "bool", "text", "Any",
        ];
        if NOT_SIMPLE.contains(&word) {
            return Err(format!(
                "`{word}` is a registry type, not a Simple type (in {s:?})"
            ));
        }
        if !prim.contains(&word) && !classes.contains(word) {
            return Err(format!("unknown type `{word}` (in {s:?})"));
        }
        &s[end..]
    };
    Ok(rest.strip_prefix('?').unwrap_or(rest))
}

fn full_type(s: &str, classes: &BTreeSet<String>) -> Result<(), String> {
    let r = parse_type(s, classes)?;
    if r.is_empty() {
        Ok(())
    } else {
        Err(format!("trailing {r:?} after the type in {s:?}"))
    }
}

/// Splits a parameter list at top-level commas (types contain `, `).
fn split_params(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '<' | '[' | '(' => depth += 1,
            '>' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `name(p: T, ...) -> R` (after `extern fn ` or `fn `); checks names and types.
/// Returns (name, parameter names, arity).
fn signature(
    s: &str,
    classes: &BTreeSet<String>,
    defaults: bool,
) -> Result<(String, Vec<String>), String> {
    let open = s.find('(').ok_or("no `(`")?;
    let name = &s[..open];
    if !is_ident(name) {
        return Err(format!("bad function name {name:?}"));
    }
    let close = s
        .find(") -> ")
        .ok_or("no `) -> R` (every binding returns a value)")?;
    let mut names = Vec::new();
    let mut seen_default = false;
    for p in split_params(&s[open + 1..close]) {
        let (decl, default) = match p.split_once(" = ") {
            Some((d, v)) => (d, Some(v)),
            None => (p.as_str(), None),
        };
        let (pn, pt) = decl
            .split_once(": ")
            .ok_or_else(|| format!("parameter {p:?} is not `name: Type`"))?;
        if !is_ident(pn) {
            return Err(format!("bad parameter name {pn:?}"));
        }
        if RESERVED.contains(&pn) {
            return Err(format!(
                "parameter named `{pn}`: a Simple keyword or type name"
            ));
        }
        full_type(pt, classes).map_err(|e| format!("parameter {pn}: {e}"))?;
        match default {
            Some(v) => {
                if !defaults || v != "nil" || !pt.ends_with('?') {
                    return Err(format!(
                        "default {p:?}: only optional wrapper parameters default, to nil"
                    ));
                }
                seen_default = true;
            }
            None if seen_default => {
                return Err(format!(
                    "{pn} without a default after a defaulted parameter"
                ))
            }
            None => {}
        }
        names.push(pn.to_string());
    }
    full_type(&s[close + 5..], classes)?;
    Ok((name.to_string(), names))
}

fn check_file(path: &Path, classes: &BTreeSet<String>) -> (Vec<String>, usize, usize) {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let is_types = file == "rt_types.spl";
    let lines: Vec<&str> = text.lines().collect();
    let mut errs = Vec::new();
    let (mut externs, mut wrappers) = (0, 0);
    let mut err =
        |i: usize, m: String| errs.push(format!("{file}:{}: {m}\n    {}", i + 1, lines[i]));
    let mut last_extern: Option<String> = None;
    let mut prev_indent = 0usize;
    let mut opens_block = false;
    let unsafe_ok = |l: &str| -> bool {
        l.strip_prefix("@unsafe(reason: \"")
            .and_then(|r| r.strip_suffix("\", capabilities: [ffi])"))
            .is_some_and(|reason| {
                !reason.contains('"')
                    && reason.contains("libffi_")
                    && reason.contains("library capability: ")
            })
    };
    for (i, l) in lines.iter().enumerate() {
        if l.contains('\t') || l.ends_with(' ') {
            err(i, "tab or trailing space".into());
        }
        if l.trim().is_empty() {
            continue;
        }
        let indent = l.len() - l.trim_start().len();
        if indent % 4 != 0 {
            err(i, format!("indentation {indent} is not a multiple of 4"));
        }
        if l.trim_start().starts_with('#') {
            continue;
        }
        if opens_block && indent != prev_indent + 4 {
            err(
                i,
                "a line ending in `:` must be followed by a block indented 4 more".into(),
            );
        }
        if !opens_block && indent > prev_indent {
            err(i, "indented deeper without a `:` line above".into());
        }
        opens_block = l.ends_with(':');
        prev_indent = indent;
        if indent > 0 {
            continue;
        }
        if let Some(r) = l.strip_prefix("extern fn ") {
            externs += 1;
            if i == 0 || !unsafe_ok(lines[i - 1]) {
                err(i, "no `@unsafe(reason: \"... libffi_<d>.so; library capability: ...\", capabilities: [ffi])` line above".into());
            }
            match signature(r, classes, false) {
                Ok((name, params)) => {
                    if !name.starts_with("rt_") {
                        err(i, "a raw extern is an rt_* export".into());
                    }
                    if params.len() > 8 {
                        err(
                            i,
                            "more than 8 parameters (Simple's SFFI calls take at most 8)".into(),
                        );
                    }
                    if classes.iter().any(|c| r.contains(c.as_str())) {
                        err(
                            i,
                            "a raw extern takes and returns value words, not wrapper classes"
                                .into(),
                        );
                    }
                    last_extern = Some(name);
                }
                Err(e) => err(i, e),
            }
        } else if let Some(r) = l.strip_prefix("fn ") {
            let Some(sig) = r.strip_suffix(':') else {
                err(i, "`fn` line does not end in `:`".into());
                continue;
            };
            match signature(sig, classes, true) {
                Ok((name, _)) => {
                    if let Some(ext) = last_extern.take().filter(|_| !is_types) {
                        wrappers += 1;
                        if format!("rt_{name}") != ext {
                            err(i, format!("the wrapper beside {ext} is named {name}"));
                        }
                        if !sig.contains("-> Result<") {
                            err(i, "a wrapper returns Result<T, RtError>".into());
                        }
                        let body: Vec<&str> = lines[i + 1..]
                            .iter()
                            .take_while(|b| b.starts_with("    "))
                            .copied()
                            .collect();
                        let call = body
                            .iter()
                            .position(|b| b.trim_start().starts_with(&format!("{ext}(")));
                        if !call.is_some_and(|k| {
                            k > 0 && body[k - 1].trim() == "val r = unsafe(capabilities: [ffi]):"
                        }) {
                            err(i, format!("the wrapper does not call {ext} inside `val r = unsafe(capabilities: [ffi]):`"));
                        }
                        if !body.windows(2).any(|w| {
                            w[0] == "    if rt_is_error(r):"
                                && w[1] == "        return Err(rt_error_from(r))"
                        }) {
                            err(i, "the wrapper does not turn an Error value into Err(rt_error_from(r))".into());
                        }
                    }
                }
                Err(e) => err(i, e),
            }
        } else if let Some(r) = l.strip_prefix("class ").or_else(|| l.strip_prefix("impl ")) {
            if !r.strip_suffix(':').is_some_and(|n| classes.contains(n)) {
                err(i, format!("class/impl of an unexpected name {r:?}"));
            }
            // Fields: `    name: Type`.
            if l.starts_with("class ") {
                for (k, f) in lines[i + 1..]
                    .iter()
                    .enumerate()
                    .take_while(|(_, f)| f.starts_with("    "))
                {
                    match f.trim().split_once(": ") {
                        Some((n, t)) if is_ident(n) && !RESERVED.contains(&n) => {
                            if let Err(e) = full_type(t, classes) {
                                err(i + 1 + k, e);
                            }
                        }
                        _ => err(i + 1 + k, "a field is `name: Type`".into()),
                    }
                }
            }
        } else if let Some(r) = l.strip_prefix("use ") {
            let ok = r
                .strip_prefix("simple_rt.rt_types.{")
                .and_then(|x| x.strip_suffix('}'))
                .is_some_and(|names| names.split(", ").all(is_ident));
            if !ok || is_types {
                err(i, "expected `use simple_rt.rt_types.{A, b, ...}`".into());
            }
        } else if !l.starts_with("@unsafe(") {
            err(i, "unexpected top-level line".into());
        } else if !unsafe_ok(l)
            || !lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("extern fn "))
        {
            err(
                i,
                "an @unsafe attribute of the wrong form, or not directly above an extern".into(),
            );
        }
        if !l.starts_with("extern fn ") && !l.starts_with('@') && !l.starts_with("fn ") {
            last_extern = None;
        }
    }
    if opens_block {
        errs.push(format!("{file}: ends after a `:` line"));
    }
    (errs, externs, wrappers)
}

#[test]
fn generated_simple_bindings_are_simple_syntax() {
    let dir = bindings_dir();
    let types = std::fs::read_to_string(dir.join("rt_types.spl"))
        .expect("bindings/simple/rt_types.spl (run `rt gen`)");
    let mut classes: BTreeSet<String> = types
        .lines()
        .filter_map(|l| l.strip_prefix("class ").and_then(|r| r.strip_suffix(':')))
        .map(str::to_string)
        .collect();
    assert!(
        classes.contains("RtError"),
        "rt_types.spl has no RtError class"
    );
    classes.insert("RtError".into());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read bindings/simple")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spl"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 2,
        "no generated .spl files in {}",
        dir.display()
    );
    let (mut errs, mut externs, mut wrappers) = (Vec::new(), 0, 0);
    for f in &files {
        let (e, x, w) = check_file(f, &classes);
        errs.extend(e);
        externs += x;
        if f.file_name().is_some_and(|n| n != "rt_types.spl") {
            if x != w {
                errs.push(format!("{}: {x} externs but {w} wrappers", f.display()));
            }
            wrappers += w;
        }
    }
    assert!(
        errs.is_empty(),
        "{} problem(s) in the generated Simple bindings:\n{}",
        errs.len(),
        errs.join("\n")
    );
    assert!(
        externs > 100 && wrappers > 100,
        "only {externs} externs / {wrappers} wrappers checked"
    );
}

#[test]
fn the_checker_rejects_what_simple_does_not_accept() {
    let classes: BTreeSet<String> = ["RtError", "RtRegex"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(signature(
        "rt_x(path: text, opts: Dict<text, Any>?) -> [u8]",
        &classes,
        false
    )
    .is_ok());
    assert!(signature(
        "x(re: RtRegex, opts: Dict<text, Any>? = nil) -> Result<(), RtError>",
        &classes,
        true
    )
    .is_ok());
    for (bad, why) in [
        ("rt_x(text: text) -> text", "keyword"),
        ("rt_x(path: int) -> text", "registry type"),
        ("rt_x(path: text) -> array<text>", "registry type"),
        ("rt_x(path: text) -> handle<Regex>", "registry type"),
        ("rt_x(path: text)", "no `) -> R`"),
        ("rt_x(path: text) -> Foo", "unknown type"),
    ] {
        let e = signature(bad, &classes, false).expect_err(bad);
        assert!(e.contains(why), "{bad}: {e}");
    }
    assert!(signature("x(a: text? = nil, b: text) -> text", &classes, true).is_err());
    assert!(signature("x(a: text = nil) -> text", &classes, true).is_err());
}
