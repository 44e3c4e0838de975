//! JSON (RFC 8259): parsed straight into values by this crate's reader
//! (`json_read.rs`), written from values by its writer (`json_write.rs`).
//! See the crate docs for the value mapping.

use crate::convert::BigInt;
use ffi_sdk::prelude::*;

/// Parses JSON text (or UTF-8 bytes) into a value; opts.bigint = "float" (default) | "text" | "error" for integers beyond 64 bits.
#[rt_fn(tier = "verified")]
pub fn rt_json_parse(text: &[u8], opts: Opts) -> RtResult<Value> {
    opts.only(&["bigint"])?;
    let bigint = BigInt::from_opt(FN, opts.text("bigint")?)?;
    crate::json_read::parse(FN, text, bigint)
}

/// Writes a value as JSON text; opts: pretty (2-space indent), sort_keys. NaN/Infinity, bytes, handles and cycles are Errors naming the path ($.a[3].b).
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_json_stringify(value: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["pretty", "sort_keys"])?;
    let sort_keys = opts.bool("sort_keys")?.unwrap_or(false);
    let pretty = opts.bool("pretty")?.unwrap_or(false);
    crate::json_write::stringify(FN, value, pretty, sort_keys)
}
