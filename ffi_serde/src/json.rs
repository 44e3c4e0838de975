//! JSON (RFC 8259): parsed straight into values by this crate's reader
//! (`json_read.rs`), written from values by its writer (`json_write.rs`).
//! See the crate docs for the value mapping.

use crate::convert::BigInt;
use ffi_sdk::prelude::*;

/// Parses JSON text (or UTF-8 bytes) into a value.
///
/// # Options
/// - bigint (text, default "float"): integers beyond 64 bits become a float ("float"), their digits as text ("text"), or Error OutOfRange ("error")
///
/// # Errors
/// - Parse: the text is not JSON, or not UTF-8 (details.line, column, position)
/// - LimitExceeded: nesting deeper than the reader's limit
/// - OutOfRange: an integer beyond 64 bits with bigint "error"
/// - InvalidArgument: an unknown option, or bigint not one of its three values
///
/// # Example
/// rt_json_parse("{\"name\":\"simple\",\"tags\":[1,2.5,null,true]}") -> {name: "simple", tags: [1, 2.5, nil, true]}
#[rt_fn(tier = "verified")]
pub fn rt_json_parse(text: &[u8], opts: Opts) -> RtResult<Value> {
    opts.only(&["bigint"])?;
    let bigint = BigInt::from_opt(FN, opts.text("bigint")?)?;
    crate::json_read::parse(FN, text, bigint)
}

/// Writes a value as JSON text.
///
/// # Options
/// - pretty (bool, default false): indent by 2 spaces, one item per line
/// - sort_keys (bool, default false): write dict keys in sorted order
///
/// # Errors
/// - Unsupported: NaN or Infinity, bytes, a handle or another value with no JSON form (the message names its path, e.g. $.a[3].b)
/// - InvalidArgument: the value contains itself (a cycle), or an unknown option
/// - LimitExceeded: nesting deeper than the writer's limit
///
/// # Example
/// rt_json_stringify({name: "simple", tags: [1, 2.5]}) -> "{\"name\":\"simple\",\"tags\":[1,2.5]}"
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_json_stringify(value: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["pretty", "sort_keys"])?;
    let sort_keys = opts.bool("sort_keys")?.unwrap_or(false);
    let pretty = opts.bool("pretty")?.unwrap_or(false);
    crate::json_write::stringify(FN, value, pretty, sort_keys)
}
