//! JSON (RFC 8259) with serde_json: parsed straight into values, written
//! from values. See the crate docs for the value mapping.

use crate::convert::{self, BigInt, Ctx, Format, Node, Path, Seed, SerCtx};
use ffi_sdk::prelude::*;
use serde::de::DeserializeSeed;

fn json_error(func: &'static str, src: &[u8], e: &serde_json::Error, ctx: Option<&Ctx>) -> Error {
    let (line, col) = (e.line(), e.column());
    let pos = convert::offset_of(src, line, col);
    if let Some(mine) = ctx.and_then(Ctx::take_err) {
        return mine.with("line", line).with("column", col).with("position", pos);
    }
    let msg = e.to_string();
    // serde_json appends " at line L column C"; we report those as details.
    let what = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(w, _)| w);
    if what.starts_with("recursion limit exceeded") {
        return Error::plain(
            Code::LimitExceeded,
            func,
            format!("nesting deeper than {} at line {line} column {col}", convert::MAX_DEPTH),
        )
        .with("line", line)
        .with("column", col)
        .with("position", pos);
    }
    match e.classify() {
        serde_json::error::Category::Io => Error::plain(Code::Io, func, what),
        _ => convert::parse_error(func, Format::Json, what, line, col, pos),
    }
}

/// Parses JSON text (or UTF-8 bytes) into a value; opts.bigint = "float" (default) | "text" | "error" for integers beyond 64 bits.
#[rt_fn(tier = "verified")]
pub fn rt_json_parse(text: &[u8], opts: Opts) -> RtResult<Value> {
    opts.only(&["bigint"])?;
    let ctx = Ctx::new(FN, Format::Json, BigInt::from_opt(FN, opts.text("bigint")?)?);
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = Seed { ctx: &ctx }.deserialize(&mut de).map_err(|e| json_error(FN, text, &e, Some(&ctx)))?;
    de.end().map_err(|e| json_error(FN, text, &e, None))?;
    Ok(v)
}

/// Writes a value as JSON text; opts: pretty (2-space indent), sort_keys. NaN/Infinity, bytes, handles and cycles are Errors naming the path ($.a[3].b).
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_json_stringify(value: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["pretty", "sort_keys"])?;
    let mut ctx = SerCtx::new(FN, Format::Json);
    ctx.sort_keys = opts.bool("sort_keys")?.unwrap_or(false);
    let pretty = opts.bool("pretty")?.unwrap_or(false);
    let root = Path::root(value);
    let node = Node::new(&ctx, &root);
    let mut out = Vec::with_capacity(128);
    let r = if pretty { serde_json::to_writer_pretty(&mut out, &node) } else { serde_json::to_writer(&mut out, &node) };
    if let Err(e) = r {
        return Err(ctx.take_err().unwrap_or_else(|| Error::internal(FN, e)));
    }
    // SAFETY: serde_json writes UTF-8 only (its input here is &str and escapes).
    Ok(Value::text(unsafe { std::str::from_utf8_unchecked(&out) }))
}
