//! YAML 1.2 (core schema) with serde_norway, the maintained fork of
//! serde_yaml (libyaml underneath). Anchors and aliases are expanded, merge
//! keys (`<<`) applied, duplicate keys refused; see the crate docs.

use crate::convert::{self, BigInt, Ctx, Format, Node, Path, Seed, SerCtx};
use ffi_sdk::prelude::*;
use serde::de::DeserializeSeed;

fn yaml_error(func: &'static str, e: &serde_norway::Error, ctx: &Ctx) -> Error {
    let loc = e.location();
    let (line, col, pos) = loc.as_ref().map_or((0, 0, 0), |l| (l.line(), l.column(), l.index()));
    let located = loc.is_some();
    if let Some(mine) = ctx.take_err() {
        return if located { mine.with("line", line).with("column", col).with("position", pos) } else { mine };
    }
    let msg = e.to_string();
    let what = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(w, _)| w);
    if what.starts_with("recursion limit exceeded") {
        return Error::plain(Code::LimitExceeded, func, format!("nesting deeper than {} at line {line} column {col}", convert::MAX_DEPTH))
            .with("line", line)
            .with("column", col)
            .with("position", pos);
    }
    if what.contains("repetition limit exceeded") {
        return Error::plain(Code::LimitExceeded, func, format!("{what} (alias expansion)"));
    }
    if located {
        convert::parse_error(func, Format::Yaml, what, line, col, pos)
    } else {
        Error::plain(Code::Parse, func, format!("invalid YAML: {what}"))
    }
}

/// Whether the stream holds no document at all (only blank and comment lines):
/// the parser reports such a stream as one empty document.
fn no_documents(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim_start_matches([' ', '\t', '\u{feff}']);
        t.is_empty() || t.starts_with('#')
    })
}

fn options(func: &'static str, opts: Opts) -> RtResult<Ctx> {
    opts.only(&["bigint", "tags"])?;
    let mut ctx = Ctx::new(func, Format::Yaml, BigInt::from_opt(func, opts.text("bigint")?)?);
    ctx.yaml_tags = opts.bool("tags")?.unwrap_or(false);
    Ok(ctx)
}

/// Parses one YAML document (empty input = nil); opts: bigint ("float" | "text" | "error"), tags (keep custom tags as {tag, value}). Several documents: use rt_yaml_parse_all.
#[rt_fn(tier = "verified")]
pub fn rt_yaml_parse(text: &str, opts: Opts) -> RtResult<Value> {
    let ctx = options(FN, opts)?;
    let mut docs = serde_norway::Deserializer::from_str(text);
    let Some(first) = docs.next() else { return Ok(Value::NIL) };
    let v = Seed { ctx: &ctx }.deserialize(first).map_err(|e| yaml_error(FN, &e, &ctx))?;
    if let Some(second) = docs.next() {
        // Parse it to report a syntax error in it as such; otherwise refuse the second document.
        Seed { ctx: &ctx }.deserialize(second).map_err(|e| yaml_error(FN, &e, &ctx))?;
        return Err(Error::plain(Code::Parse, FN, "the stream holds more than one document (use rt_yaml_parse_all)"));
    }
    Ok(v)
}

/// Parses every document of a YAML stream into an array (empty input = empty array); opts as rt_yaml_parse.
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_yaml_parse_all(text: &str, opts: Opts) -> RtResult<Value> {
    let ctx = options(FN, opts)?;
    let out = Value::array(0);
    if no_documents(text) {
        return Ok(out);
    }
    for doc in serde_norway::Deserializer::from_str(text) {
        out.push(Seed { ctx: &ctx }.deserialize(doc).map_err(|e| yaml_error(FN, &e, &ctx))?);
    }
    Ok(out)
}

/// Writes a value as one YAML document; opts.sort_keys. Bytes, handles and cycles are Errors naming the path.
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_yaml_stringify(value: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["sort_keys"])?;
    let mut ctx = SerCtx::new(FN, Format::Yaml);
    ctx.sort_keys = opts.bool("sort_keys")?.unwrap_or(false);
    let root = Path::root(value);
    match serde_norway::to_string(&Node::new(&ctx, &root)) {
        Ok(s) => Ok(Value::text(&s)),
        Err(e) => Err(ctx.take_err().unwrap_or_else(|| Error::new(Code::Unsupported, FN, "no YAML representation", e))),
    }
}
