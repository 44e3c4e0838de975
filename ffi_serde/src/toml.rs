//! TOML 1.0/1.1 with the `toml` crate (1.x): parsed into values, written
//! from a dict. Datetimes become text in their TOML/RFC 3339 spelling; see
//! the crate docs for the whole mapping.

use crate::convert::{self, BigInt, Ctx, Format, Node, Path, Seed, SerCtx};
use ffi_sdk::prelude::*;
use serde::de::DeserializeSeed;

/// Deepest nesting of `[` / `{` in the text outside strings and comments. The
/// parser keeps nested arrays and inline tables as a tree it builds and drops
/// recursively, so a document nested deeper than [`convert::MAX_DEPTH`] is
/// refused before parsing (Error LimitExceeded), never a stack overflow.
fn max_nesting(src: &str) -> (usize, usize) {
    let b = src.as_bytes();
    let (mut depth, mut max, mut at) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            q @ (b'"' | b'\'') => {
                let triple = b[i..].starts_with(if q == b'"' { b"\"\"\"" } else { b"'''" });
                i += if triple { 3 } else { 1 };
                while i < b.len() {
                    if q == b'"' && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q && (!triple || b[i..].starts_with(if q == b'"' { b"\"\"\"" } else { b"'''" })) {
                        // A closing triple quote may be followed by up to two more quotes of content.
                        if triple {
                            let mut j = i + 3;
                            while j < b.len() && b[j] == q && j < i + 5 {
                                j += 1;
                            }
                            i = j;
                        } else {
                            i += 1;
                        }
                        break;
                    }
                    if !triple && b[i] == b'\n' {
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if depth == convert::MAX_DEPTH + 1 {
                        at = i;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    (max, at)
}

/// Parses a TOML document into a dict (datetimes become RFC 3339 text).
///
/// # Errors
/// - Parse: invalid …: <what> at line <line> column <col>
/// - LimitExceeded: nesting deeper than … at line <line> column <col>; nesting deeper than the TOML parser's limit at line <line> column <col>
#[rt_fn(tier = "verified", ret = "dict")]
pub fn rt_toml_parse(text: &str) -> RtResult<Value> {
    let (depth, at) = max_nesting(text);
    // Table headers ([a], [[a]]) count one or two levels in this scan.
    if depth > convert::MAX_DEPTH {
        let (line, col) = convert::line_col(text.as_bytes(), at);
        return Err(Error::plain(
            Code::LimitExceeded,
            FN,
            format!("nesting deeper than {} at line {line} column {col}", convert::MAX_DEPTH),
        )
        .with("line", line)
        .with("column", col)
        .with("position", at));
    }
    let ctx = Ctx::new(FN, Format::Toml, BigInt::Error);
    let fail = |e: toml::de::Error, ctx: &Ctx| {
        let pos = e.span().map_or(0, |s| s.start);
        let (line, col) = convert::line_col(text.as_bytes(), pos);
        match ctx.take_err() {
            Some(mine) => mine.with("line", line).with("column", col).with("position", pos),
            None if e.message().contains("max recursion depth") => Error::plain(
                Code::LimitExceeded,
                FN,
                format!("nesting deeper than the TOML parser's limit at line {line} column {col}"),
            )
            .with("line", line)
            .with("column", col)
            .with("position", pos),
            None => convert::parse_error(FN, Format::Toml, e.message().trim(), line, col, pos),
        }
    };
    let de = toml::de::Deserializer::parse(text).map_err(|e| fail(e, &ctx))?;
    Seed { ctx: &ctx }.deserialize(de).map_err(|e| fail(e, &ctx))
}

/// Writes a dict as a TOML document; opts: pretty, sort_keys, datetimes (texts that are TOML datetimes are written as datetimes). nil, bytes, handles and cycles are Errors naming the path.
///
/// # Options
/// - pretty (bool, default false): indent the output
/// - sort_keys (bool, default false): write dict keys in sorted order
/// - datetimes (bool, default false): write texts that are TOML datetimes as datetimes
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Unsupported: no TOML representation
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_toml_stringify(value: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["pretty", "sort_keys", "datetimes"])?;
    if !value.is_dict() {
        return Err(Error::new(Code::TypeMismatch, FN, "a TOML document must be a dict", value.describe()));
    }
    let mut ctx = SerCtx::new(FN, Format::Toml);
    ctx.sort_keys = opts.bool("sort_keys")?.unwrap_or(false);
    ctx.datetimes = opts.bool("datetimes")?.unwrap_or(false);
    let pretty = opts.bool("pretty")?.unwrap_or(false);
    let root = Path::root(value);
    let node = Node::new(&ctx, &root);
    let r = if pretty { toml::to_string_pretty(&node) } else { toml::to_string(&node) };
    match r {
        Ok(s) => Ok(Value::text(&s)),
        Err(e) => Err(ctx.take_err().unwrap_or_else(|| Error::new(Code::Unsupported, FN, "no TOML representation", e.to_string().trim()))),
    }
}
