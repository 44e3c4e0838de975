//! Regular expressions (the `regex` crate: linear-time matching, no
//! backtracking, no look-around or back-references) behind a `Regex` handle.
//!
//! Offsets: every `start` / `end` is a BYTE offset into the UTF-8 text (what
//! C hosts slice with); `char_start` / `char_end` are the same positions
//! counted in Unicode scalar values (code points), for hosts whose strings
//! index by character. A match dict is `{text, start, end, char_start, char_end}`.
//!
//! Compiling: `rt_regex_new` looks the pattern (with its options) up in a
//! process-wide LRU cache of 256 compiled programs first, so a host that
//! recompiles the same pattern in a loop pays once; the handle shares the
//! compiled program (the regex crate's `Regex` is reference counted and
//! `Sync`, so one handle may be used from many threads at once).
//!
//! Limits, both Error LimitExceeded with the `limit` in details: the pattern
//! text is at most `max_pattern_len` bytes (default 1 MiB), checked by length
//! before anything is parsed, copied or looked up, so a 10 MB pattern is
//! refused in microseconds instead of seconds and a gigabyte of parse tree;
//! then the compiled program is bounded by `size_limit` (default 10 MiB, the
//! regex crate's). Syntax errors are Error Parse with the byte `position`,
//! `line` and `column` of the offending part in details.

use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;
use lru::LruCache;
use parking_lot::Mutex;
use std::num::NonZeroUsize;
use std::sync::OnceLock;

/// A compiled regular expression (handle type `Regex`).
pub struct Regex {
    pub re: regex::Regex,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Regex {
    const NAME: &'static str = "Regex";
}

const CACHE_CAP: usize = 256;
const DEFAULT_SIZE_LIMIT: i64 = 10 * (1 << 20);
const MAX_SIZE_LIMIT: i64 = 1 << 30;
/// Longest pattern text accepted by default, in bytes (option `max_pattern_len`).
const DEFAULT_MAX_PATTERN_LEN: i64 = 1 << 20;
/// Highest value option `max_pattern_len` may take.
const MAX_MAX_PATTERN_LEN: i64 = 1 << 30;

#[derive(Clone, Copy, Hash, PartialEq, Eq, Default)]
struct Flags {
    case_insensitive: bool,
    multi_line: bool,
    dot_all: bool,
    ignore_whitespace: bool,
    ascii: bool,
    size_limit: i64,
}

type Cache = Mutex<LruCache<(Box<str>, Flags), regex::Regex>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(LruCache::new(NonZeroUsize::new(CACHE_CAP).unwrap_or(NonZeroUsize::MIN))))
}

/// Refuses a pattern longer than `max_len` bytes: a length comparison, done
/// before the pattern is parsed, copied into a cache key or looked up.
fn check_len(func: &'static str, pattern: &str, max_len: usize) -> RtResult<()> {
    if pattern.len() > max_len {
        return Err(Error::new(
            Code::LimitExceeded,
            func,
            format!(
                "pattern is {} bytes, over the length limit of {max_len} bytes (option max_pattern_len)",
                pattern.len()
            ),
            quote(pattern),
        )
        .with("limit", max_len)
        .with("length", pattern.len()));
    }
    Ok(())
}

/// Compiles `pattern` (at most `max_len` bytes, then at most `f.size_limit`
/// bytes compiled), through the cache.
fn compile(func: &'static str, pattern: &str, f: Flags, max_len: usize) -> RtResult<regex::Regex> {
    check_len(func, pattern, max_len)?;
    let key = (Box::<str>::from(pattern), f);
    if let Some(re) = cache().lock().get(&key) {
        return Ok(re.clone());
    }
    let built = regex::RegexBuilder::new(pattern)
        .case_insensitive(f.case_insensitive)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
        .ignore_whitespace(f.ignore_whitespace)
        .unicode(!f.ascii)
        .size_limit(f.size_limit as usize)
        .build();
    match built {
        Ok(re) => {
            cache().lock().put(key, re.clone());
            Ok(re)
        }
        Err(regex::Error::CompiledTooBig(limit)) => Err(Error::new(
            Code::LimitExceeded,
            func,
            format!("compiled pattern exceeds the size limit of {limit} bytes (option size_limit)"),
            quote(pattern),
        )
        .with("limit", limit)),
        Err(e) => Err(syntax_error(func, pattern, f, &e)),
    }
}

/// Compiles `pattern` with the default flags and limits of rt_regex_new (through the cache).
pub(crate) fn compile_default(func: &'static str, pattern: &str) -> RtResult<regex::Regex> {
    let f = Flags { size_limit: DEFAULT_SIZE_LIMIT, ..Flags::default() };
    compile(func, pattern, f, DEFAULT_MAX_PATTERN_LEN as usize)
}

/// Error Parse with the position regex-syntax reports for the same pattern and flags.
fn syntax_error(func: &'static str, pattern: &str, f: Flags, e: &regex::Error) -> Error {
    let parsed = regex_syntax::ParserBuilder::new()
        .case_insensitive(f.case_insensitive)
        .multi_line(f.multi_line)
        .dot_matches_new_line(f.dot_all)
        .ignore_whitespace(f.ignore_whitespace)
        .unicode(!f.ascii)
        .utf8(true)
        .build()
        .parse(pattern);
    let (what, span) = match &parsed {
        Err(regex_syntax::Error::Parse(pe)) => (pe.kind().to_string(), Some(*pe.span())),
        Err(regex_syntax::Error::Translate(te)) => (te.kind().to_string(), Some(*te.span())),
        _ => (e.to_string().lines().last().unwrap_or("invalid pattern").trim().to_string(), None),
    };
    match span {
        Some(s) => Error::new(
            Code::Parse,
            func,
            format!("invalid pattern: {what} at line {} column {}", s.start.line, s.start.column),
            quote(pattern),
        )
        .with("position", s.start.offset)
        .with("line", s.start.line)
        .with("column", s.start.column),
        None => Error::new(Code::Parse, func, format!("invalid pattern: {what}"), quote(pattern)),
    }
}

/// Compiles a regular expression (regex crate syntax) into a Regex handle. Cached by pattern.
///
/// # Options
/// - case_insensitive (bool, default false): letters match either case
/// - multi_line (bool, default false): `^` and `$` match at line starts and ends
/// - dot_all (bool, default false): `.` also matches a newline
/// - ignore_whitespace (bool, default false): whitespace and `#` comments in the pattern are ignored
/// - ascii (bool, default false): `\w`, `\d`, `\s` and friends match ASCII only
/// - max_pattern_len (int >= 1, default 1 MiB): the longest pattern text accepted, checked before parsing
/// - size_limit (int >= 1, default 10 MiB): the largest compiled program
///
/// # Errors
/// - Parse: the pattern is not valid (the message says where)
/// - LimitExceeded: the pattern is longer than max_pattern_len, or compiles to more than size_limit
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
///
/// # Example
/// rt_regex_new("[0-9]+") -> Regex handle
#[rt_fn(tier = "verified", ret = "handle<Regex>")]
pub fn rt_regex_new(pattern: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&[
        "case_insensitive",
        "multi_line",
        "dot_all",
        "ignore_whitespace",
        "ascii",
        "max_pattern_len",
        "size_limit",
    ])?;
    let f = Flags {
        case_insensitive: opts.bool("case_insensitive")?.unwrap_or(false),
        multi_line: opts.bool("multi_line")?.unwrap_or(false),
        dot_all: opts.bool("dot_all")?.unwrap_or(false),
        ignore_whitespace: opts.bool("ignore_whitespace")?.unwrap_or(false),
        ascii: opts.bool("ascii")?.unwrap_or(false),
        size_limit: opts.int_in("size_limit", 1, MAX_SIZE_LIMIT)?.unwrap_or(DEFAULT_SIZE_LIMIT),
    };
    let max_len = opts.int_in("max_pattern_len", 1, MAX_MAX_PATTERN_LEN)?.unwrap_or(DEFAULT_MAX_PATTERN_LEN);
    let re = compile(FN, pattern, f, usize::try_from(max_len).unwrap_or(usize::MAX))?;
    Ok(new_handle(Regex { re }))
}

/// Whether the regex matches anywhere in `text`.
///
/// # Errors
/// - Closed: `re` was closed
#[rt_fn(tier = "verified")]
pub fn rt_regex_is_match(re: Handle<Regex>, text: &str) -> bool {
    re.re.is_match(text)
}

/// Counts code points in `s` (fast path for ASCII runs is the std implementation).
#[inline]
fn chars_in(s: &str) -> usize {
    s.chars().count()
}

// Result keys, made once and pinned (one string object serves every result dict).
static TEXT: Key = Key::new("text");
static START: Key = Key::new("start");
static END: Key = Key::new("end");
static CHAR_START: Key = Key::new("char_start");
static CHAR_END: Key = Key::new("char_end");

fn match_dict(m: regex::Match<'_>, char_start: usize) -> RtResult<Value> {
    let char_end = char_start + chars_in(m.as_str());
    let d = Value::record(&[
        (&TEXT, Value::text(m.as_str())),
        (&START, Value::int(m.start() as i64)),
        (&END, Value::int(m.end() as i64)),
        (&CHAR_START, Value::int(char_start as i64)),
        (&CHAR_END, Value::int(char_end as i64)),
    ]);
    if d.is_error() {
        return Err(Error::from_value(d));
    }
    Ok(d)
}

/// The first match as `{text, start, end, char_start, char_end}` (byte and code-point offsets), or nil when none.
///
/// # Errors
/// - Closed: `re` was closed
///
/// # Example
/// rt_regex_find(rt_regex_new("[0-9]+"), "order 66 shipped in 3 days") -> {text: "66", start: 6, end: 8, char_start: 6, char_end: 8}
#[rt_fn(tier = "verified", ret = "dict?")]
pub fn rt_regex_find(re: Handle<Regex>, text: &str) -> RtResult<Value> {
    match re.re.find(text) {
        Some(m) => match_dict(m, chars_in(&text[..m.start()])),
        None => Ok(Value::NIL),
    }
}

/// Groups of the first match as a dict: int keys 0..n (0 = whole match) and each group's name; nil for a group that did not take part; nil when no match.
///
/// # Errors
/// - Closed: `re` was closed
#[rt_fn(tier = "verified", ret = "dict?")]
pub fn rt_regex_captures(re: Handle<Regex>, text: &str) -> RtResult<Value> {
    let Some(caps) = re.re.captures(text) else { return Ok(Value::NIL) };
    let d = Value::dict();
    let group = |i: usize| caps.get(i).map_or(Value::NIL, |m| Value::text(m.as_str()));
    for i in 0..caps.len() {
        d.set_value(Value::int(i as i64), group(i))?;
    }
    for (i, name) in re.re.capture_names().enumerate() {
        if let Some(name) = name {
            d.set_value(Value::text(name), group(i))?;
        }
    }
    Ok(d)
}

/// All non-overlapping matches, left to right: an array of texts, or with opts.offsets an array of match dicts; opts.limit caps the count.
///
/// # Options
/// - offsets (bool, default false): an array of texts, or with opts.offsets an array of match dicts
/// - limit (int >= 0): the most matches returned
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Closed: `re` was closed
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_regex_find_all(re: Handle<Regex>, text: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["offsets", "limit"])?;
    let offsets = opts.bool("offsets")?.unwrap_or(false);
    let limit = opts.int_in("limit", 0, i64::MAX)?.map_or(usize::MAX, |n| n as usize);
    let out = Value::array(0);
    if offsets {
        // Code-point offsets counted incrementally: linear in the text overall.
        let (mut pos, mut chars) = (0usize, 0usize);
        for m in re.re.find_iter(text).take(limit) {
            chars += chars_in(&text[pos..m.start()]);
            pos = m.start();
            out.push(match_dict(m, chars)?);
        }
    } else {
        for m in re.re.find_iter(text).take(limit) {
            out.push(Value::text(m.as_str()));
        }
    }
    Ok(out)
}

/// Replaces matches with `replacement` ($1, ${name}, $$ for a dollar).
///
/// # Options
/// - all (bool, default true): false = first only
/// - limit (int >= 1): max replacements
/// - literal (bool, default false): no $ expansion
///
/// # Errors
/// - InvalidArgument: options all=false and limit conflict; an unknown option, or an option of the wrong kind or range
/// - Closed: `re` was closed
#[rt_fn(tier = "verified")]
pub fn rt_regex_replace(re: Handle<Regex>, text: &str, replacement: &str, opts: Opts) -> RtResult<String> {
    opts.only(&["all", "limit", "literal"])?;
    let all = opts.bool("all")?.unwrap_or(true);
    let limit = opts.int_in("limit", 1, i64::MAX)?;
    if !all && limit.is_some() {
        return Err(Error::invalid(FN, "options all=false and limit conflict", "give one of them"));
    }
    // regex's replacen: 0 means all.
    let n = match (all, limit) {
        (false, _) => 1,
        (true, Some(l)) => usize::try_from(l).unwrap_or(usize::MAX),
        (true, None) => 0,
    };
    let out = if opts.bool("literal")?.unwrap_or(false) {
        re.re.replacen(text, n, regex::NoExpand(replacement))
    } else {
        re.re.replacen(text, n, replacement)
    };
    Ok(out.into_owned())
}

/// Splits `text` at every match: an array of the texts between; opts.limit = at most that many pieces (the last holds the rest).
///
/// # Options
/// - limit (int >= 1): at most that many pieces (the last holds the rest)
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Closed: `re` was closed
#[rt_fn(tier = "verified", ret = "array<text>")]
pub fn rt_regex_split(re: Handle<Regex>, text: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["limit"])?;
    let out = Value::array(0);
    match opts.int_in("limit", 1, i64::MAX)? {
        Some(n) => {
            for piece in re.re.splitn(text, usize::try_from(n).unwrap_or(usize::MAX)) {
                out.push(Value::text(piece));
            }
        }
        None => {
            for piece in re.re.split(text) {
                out.push(Value::text(piece));
            }
        }
    }
    Ok(out)
}
