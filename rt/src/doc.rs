//! The structured sections of a function's doc comment (docs/CONTRACT.md,
//! "Error codes per function"), as the generators and `rt errors-check` read them:
//!
//! ```text
//! Reads a file as UTF-8 text.            <- prose (the first paragraph is the summary)
//!
//! # Options
//! - timeout_ms (int, default 30000): how long to wait
//!
//! # Errors
//! - NotFound: the file does not exist
//! - Parse: the bytes are not UTF-8
//!
//! # Example
//! rt_file_read_text("/etc/hostname") -> "box\n"
//! ```
//!
//! `# Errors` lists every code the function can return besides the implicit
//! ones of docs/CONTRACT.md (TypeMismatch, Panic, Internal; Timeout and
//! Cancelled when blocking; CapabilityDenied with a capability). A line that
//! does not start with `- ` continues the item above it; before the first item
//! it is a note (`Only the implicit codes.`).

/// One `# Errors` item: `- Code: when`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrItem {
    pub code: String,
    pub when: String,
}

/// One `# Options` item: `- key (type, default X): meaning`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptItem {
    pub key: String,
    /// What the parentheses hold (`int, default 32`), empty when none.
    pub spec: String,
    pub meaning: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doc {
    /// Everything before the first section, trimmed.
    pub prose: String,
    /// `Some` when the doc has a `# Errors` section (possibly only a note).
    pub errors: Option<Vec<ErrItem>>,
    pub errors_note: String,
    pub options: Option<Vec<OptItem>>,
    pub options_note: String,
    /// The `# Example` lines, verbatim.
    pub example: Vec<String>,
}

impl Doc {
    /// The documented error code names.
    pub fn error_codes(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().flatten().map(|e| e.code.as_str())
    }

    pub fn option_keys(&self) -> impl Iterator<Item = &str> {
        self.options.iter().flatten().map(|o| o.key.as_str())
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Sec {
    Prose,
    Errors,
    Options,
    Example,
}

fn heading(l: &str) -> Option<Sec> {
    match l.trim().strip_prefix("# ")?.trim() {
        "Errors" => Some(Sec::Errors),
        "Options" => Some(Sec::Options),
        "Example" | "Examples" => Some(Sec::Example),
        _ => None,
    }
}

fn push_cont(s: &mut String, l: &str) {
    if !s.is_empty() {
        s.push(' ');
    }
    s.push_str(l);
}

fn err_item(l: &str) -> Vec<ErrItem> {
    let (codes, when) = l.split_once(':').unwrap_or((l, ""));
    codes
        .split(',')
        .map(|c| ErrItem { code: c.trim().trim_matches('`').to_string(), when: when.trim().to_string() })
        .collect()
}

fn opt_item(l: &str) -> OptItem {
    // `key (spec): meaning`, `key: meaning`, or `key`.
    let key_end = l.find(|c: char| c == '(' || c == ':' || c.is_whitespace()).unwrap_or(l.len());
    let key = l[..key_end].trim().trim_matches('`').to_string();
    let mut rest = l[key_end..].trim_start();
    let mut spec = String::new();
    if let Some(r) = rest.strip_prefix('(') {
        // The matching parenthesis (a default may hold its own).
        let mut depth = 1;
        let mut end = r.len();
        for (i, c) in r.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        spec = r[..end].trim().to_string();
        rest = r.get(end + 1..).unwrap_or("").trim_start();
    }
    let meaning = rest.strip_prefix(':').unwrap_or(rest).trim().to_string();
    OptItem { key, spec, meaning }
}

pub fn parse(text: &str) -> Doc {
    let mut d = Doc::default();
    let mut sec = Sec::Prose;
    let mut prose: Vec<&str> = Vec::new();
    for raw in text.lines() {
        if let Some(s) = heading(raw) {
            sec = s;
            match s {
                Sec::Errors => {
                    d.errors.get_or_insert_with(Vec::new);
                }
                Sec::Options => {
                    d.options.get_or_insert_with(Vec::new);
                }
                _ => {}
            }
            continue;
        }
        let l = raw.trim();
        match sec {
            Sec::Prose => prose.push(raw.trim_end()),
            Sec::Example => d.example.push(raw.trim_end().to_string()),
            Sec::Errors => {
                let items = d.errors.get_or_insert_with(Vec::new);
                if let Some(item) = l.strip_prefix("- ") {
                    items.extend(err_item(item));
                } else if l.is_empty() {
                } else if let Some(last) = items.last_mut() {
                    push_cont(&mut last.when, l);
                } else {
                    push_cont(&mut d.errors_note, l);
                }
            }
            Sec::Options => {
                let items = d.options.get_or_insert_with(Vec::new);
                if let Some(item) = l.strip_prefix("- ") {
                    items.push(opt_item(item));
                } else if l.is_empty() {
                } else if let Some(last) = items.last_mut() {
                    push_cont(&mut last.meaning, l);
                } else {
                    push_cont(&mut d.options_note, l);
                }
            }
        }
    }
    while d.example.last().is_some_and(|l| l.trim().is_empty()) {
        d.example.pop();
    }
    while d.example.first().is_some_and(|l| l.trim().is_empty()) {
        d.example.remove(0);
    }
    d.prose = prose.join("\n").trim().to_string();
    d
}

/// The codes every function may return without listing them (docs/CONTRACT.md,
/// "Error codes per function").
pub fn implicit_codes(blocking: bool, capability: bool) -> Vec<&'static str> {
    let mut v = vec!["TypeMismatch", "Panic", "Internal"];
    if blocking {
        v.extend(["Timeout", "Cancelled"]);
    }
    if capability {
        v.push("CapabilityDenied");
    }
    v
}

/// The Python exception class of an error code name (bindings/python/simple_rt/_errors.py).
pub fn py_exception(code: &str) -> String {
    match code {
        "Timeout" => "TimeoutError_".into(),
        "Interrupted" => "InterruptedError_".into(),
        c => format!("{c}Error"),
    }
}

/// Plain-text lines for a comment or docstring: prose, then `Options:` /
/// `Errors:` (`raises` names the Python exception classes instead, under
/// `Raises:`) and `Example:` blocks with items indented by two spaces.
pub fn plain_lines(d: &Doc, raises: bool) -> Vec<String> {
    let mut out: Vec<String> = d.prose.lines().map(str::to_string).collect();
    if let Some(opts) = &d.options {
        out.push(String::new());
        out.push("Options:".into());
        if !d.options_note.is_empty() {
            out.push(format!("  {}", d.options_note));
        }
        for o in opts {
            let spec = if o.spec.is_empty() { String::new() } else { format!(" ({})", o.spec) };
            out.push(format!("  {}{spec}: {}", o.key, o.meaning));
        }
    }
    if let Some(errs) = &d.errors {
        out.push(String::new());
        out.push(if raises { "Raises:" } else { "Errors:" }.into());
        if !d.errors_note.is_empty() {
            out.push(format!("  {}", d.errors_note));
        }
        for e in errs {
            let name = if raises { py_exception(&e.code) } else { e.code.clone() };
            out.push(format!("  {name}: {}", e.when));
        }
    }
    if !d.example.is_empty() {
        out.push(String::new());
        out.push("Example:".into());
        out.extend(d.example.iter().map(|l| format!("  {l}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse() {
        let d = parse(
            "Reads a file.\n\nMore.\n\n# Options\n- timeout_ms (int, default 30000): how long\n  to wait\n- raw: as bytes\n\n\
             # Errors\n- NotFound: missing\n- Parse, Io: bad\n\n# Example\nrt_x(\"a\")\n",
        );
        assert_eq!(d.prose, "Reads a file.\n\nMore.");
        let o = d.options.as_ref().expect("options");
        assert_eq!(o[0], OptItem { key: "timeout_ms".into(), spec: "int, default 30000".into(), meaning: "how long to wait".into() });
        assert_eq!(o[1], OptItem { key: "raw".into(), spec: String::new(), meaning: "as bytes".into() });
        assert_eq!(d.error_codes().collect::<Vec<_>>(), ["NotFound", "Parse", "Io"]);
        assert_eq!(d.example, ["rt_x(\"a\")"]);
        let p = plain_lines(&d, true);
        assert!(p.contains(&"Raises:".to_string()) && p.contains(&"  NotFoundError: missing".to_string()), "{p:?}");
    }

    #[test]
    fn a_note_only_errors_section() {
        let d = parse("Adds.\n\n# Errors\nOnly the implicit codes.");
        assert_eq!(d.errors, Some(vec![]));
        assert_eq!(d.errors_note, "Only the implicit codes.");
        assert!(parse("No sections.").errors.is_none());
    }
}
