//! `rt_json_stringify`: the JSON writer (`ffi_serde_core::write`, shared
//! with the Python extension) over runtime values (`ffi_serde_core::rt::RtTree`),
//! into one byte buffer, then one string value.
//!
//! Containers are read through `Items` views (one lock per container, not
//! per item). The byte buffer is kept per thread for the next call (up to 8
//! MiB of capacity). Output, key spelling and error paths: see
//! `ffi_serde_core::write`.

use ffi_sdk::{Error, RtResult, Value};
use ffi_serde_core::rt::write_json;
pub use ffi_serde_core::write::{quote, write_str};
use std::cell::RefCell;

/// Output buffers up to this size are kept for the thread's next call.
const KEEP_BUFFER: usize = 8 << 20;

thread_local! {
    static OUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes `v` as JSON text and returns it as a string value.
pub fn stringify(func: &'static str, v: Value, pretty: bool, sort_keys: bool) -> RtResult<Value> {
    let run = |buf: &mut Vec<u8>| -> RtResult<Value> {
        buf.clear();
        let r = match write_json(func, v, buf, pretty, sort_keys) {
            Err(e) => Err(e),
            // SAFETY: the input texts are UTF-8 and everything added is ASCII.
            Ok(()) => match Value::text(unsafe { core::str::from_utf8_unchecked(buf) }) {
                t if t.is_error() => Err(Error::from_value(t)),
                t => Ok(t),
            },
        };
        if buf.capacity() > KEEP_BUFFER {
            *buf = Vec::new();
        }
        r
    };
    OUT.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
    .unwrap_or_else(|_| run(&mut Vec::new()))
}
