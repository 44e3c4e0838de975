//! rt_bincode_decode on arbitrary bytes. When it decodes: rt_bincode_encode
//! succeeds and decoding its bytes gives an equal value (bincode keeps every
//! value tree exactly).
#![no_main]
use ffi_serde::bincode::{rt_bincode_decode, rt_bincode_encode};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = result("rt_bincode_decode", rt_bincode_decode(bytes(data))) else { return };
    let e = result("rt_bincode_encode", rt_bincode_encode(v.raw()))
        .unwrap_or_else(|e| panic!("rt_bincode_encode failed on a decoded value: {e:?}\ninput {data:02x?}"));
    let w = result("rt_bincode_decode", rt_bincode_decode(e.raw()))
        .unwrap_or_else(|err| panic!("encoded bytes do not decode: {err:?}\ninput {data:02x?}\nencoded {:02x?}", e.as_bytes()));
    assert!(deep_eq(v, w, true), "round trip changed the value\ninput {data:02x?}");
});
