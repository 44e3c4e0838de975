//! rt_xz_decompress on arbitrary bytes with max_output = 1 MiB and
//! memlimit = 64 MiB: a value (bytes, at most 1 MiB) or an Error (Parse,
//! LimitExceeded). Also rt_xz_compress (preset 0) of the input decompresses back to it.
#![no_main]
use ffi_archive::xz::{rt_xz_compress, rt_xz_decompress};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

const MAX: i64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let o = opts(&[("max_output", Value::int(MAX)), ("memlimit", Value::int(64 << 20))]);
    if let Ok(out) = result("rt_xz_decompress", rt_xz_decompress(bytes(data), o.raw())) {
        let b = out.as_bytes().expect("rt_xz_decompress returns bytes");
        assert!(b.len() as i64 <= MAX, "output of {} bytes passed max_output", b.len());
    }
    let z = result("rt_xz_compress", rt_xz_compress(bytes(data), opts(&[("preset", Value::int(0))]).raw()))
        .unwrap_or_else(|e| panic!("rt_xz_compress failed: {e:?}"));
    let back = result("rt_xz_decompress", rt_xz_decompress(z.raw(), NIL))
        .unwrap_or_else(|e| panic!("own xz output does not decompress: {e:?}"));
    assert_eq!(back.as_bytes(), Some(data), "xz round trip changed the data");
});
