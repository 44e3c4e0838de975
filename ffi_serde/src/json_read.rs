//! `rt_json_parse`'s reader: `ffi_serde_core::read` (the JSON reader shared
//! with the Python extension) with `ffi_serde_core::rt::RtSink`, which builds
//! runtime values directly in collector memory, one pass, no intermediate
//! tree. The helpers the YAML reader shares are re-exported here.

pub use ffi_serde_core::rt::{new_cache, parse, text_bytes, RtSink};
pub use ffi_serde_core::{hash_bytes, read_u64, same_bytes, special, tail_word};
