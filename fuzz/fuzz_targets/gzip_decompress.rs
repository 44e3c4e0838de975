//! rt_gzip_decompress on arbitrary bytes with max_output = 1 MiB: a value
//! (bytes, at most 1 MiB) or an Error (Parse, LimitExceeded). Also
//! rt_gzip_compress of the input (level from its length) decompresses back to it.
#![no_main]
use ffi_archive::gzip::{rt_gzip_compress, rt_gzip_decompress};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

const MAX: i64 = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let o = opts(&[("max_output", Value::int(MAX))]);
    if let Ok(out) = result("rt_gzip_decompress", rt_gzip_decompress(bytes(data), o.raw())) {
        let b = out.as_bytes().expect("rt_gzip_decompress returns bytes");
        assert!(b.len() as i64 <= MAX, "output of {} bytes passed max_output", b.len());
    }
    let level = (data.len() % 10) as i64;
    let z = result("rt_gzip_compress", rt_gzip_compress(bytes(data), opts(&[("level", Value::int(level))]).raw()))
        .unwrap_or_else(|e| panic!("rt_gzip_compress failed: {e:?}"));
    let back = result("rt_gzip_decompress", rt_gzip_decompress(z.raw(), NIL))
        .unwrap_or_else(|e| panic!("own gzip output does not decompress: {e:?}"));
    assert_eq!(back.as_bytes(), Some(data), "gzip round trip changed the data");
});
