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

/// Parses one YAML document (empty input = nil). Several documents: use rt_yaml_parse_all.
///
/// # Options
/// - bigint (text): "float" | "text" | "error"
/// - tags (bool, default false): keep custom tags as {tag, value}
///
/// # Errors
/// - InvalidArgument: option bigint must be "float", "text" or "error"; an unknown option, or an option of the wrong kind or range
/// - Parse: malformed input (details.line/column/position where known)
/// - OutOfRange: an index or number is outside its range
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(tier = "verified")]
pub fn rt_yaml_parse(text: &str, opts: Opts) -> RtResult<Value> {
    yaml_read::read(settings(FN, opts, false)?, text)
}

/// Parses every document of a YAML stream into an array (empty input = empty array); opts as rt_yaml_parse.
///
/// # Options
/// - bigint (text): integers beyond 64 bits: "float", "text" or "error"
/// - tags (bool, default false): keep YAML tags
///
/// # Errors
/// - InvalidArgument: option bigint must be "float", "text" or "error"; an unknown option, or an option of the wrong kind or range
/// - Parse: malformed input (details.line/column/position where known)
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(tier = "verified", ret = "array")]
pub fn rt_yaml_parse_all(text: &str, opts: Opts) -> RtResult<Value> {
    yaml_read::read(settings(FN, opts, true)?, text)
}

/// Writes a value as one YAML document; opts.sort_keys. Bytes, handles and cycles are Errors naming the path.
///
/// # Options
/// - sort_keys (bool, default false): write dict keys in sorted order
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Unsupported: no YAML representation
/// - LimitExceeded: a size, depth or count limit was reached
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
