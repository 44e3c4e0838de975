//! YAML 1.2 (core schema): reading with saphyr-parser's events straight into
//! values (`yaml_read.rs`: anchors and aliases expanded within limits, merge
//! keys (`<<`) applied, duplicate keys refused); writing with serde_norway.

use crate::convert::{BigInt, Format, Node, Path, SerCtx};
use crate::yaml_read::{self, Settings};
use ffi_sdk::prelude::*;

fn settings(func: &'static str, opts: Opts, all: bool) -> RtResult<Settings> {
    opts.only(&["bigint", "tags"])?;
    Ok(Settings {
        func,
        bigint: BigInt::from_opt(func, opts.text("bigint")?)?,
        tags: opts.bool("tags")?.unwrap_or(false),
        all,
    })
}

/// Parses one YAML document (empty input = nil); opts: bigint ("float" | "text" | "error"), tags (keep custom tags as {tag, value}). Several documents: use rt_yaml_parse_all.
#[rt_fn(tier = "verified")]
pub fn rt_yaml_parse(text: &str, opts: Opts) -> RtResult<Value> {
    yaml_read::read(settings(FN, opts, false)?, text)
}

/// Parses every document of a YAML stream into an array (empty input = empty array); opts as rt_yaml_parse.
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_yaml_parse_all(text: &str, opts: Opts) -> RtResult<Value> {
    yaml_read::read(settings(FN, opts, true)?, text)
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
