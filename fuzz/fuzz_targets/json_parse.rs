//! rt_json_parse on arbitrary bytes. When it parses: rt_json_stringify
//! (compact and pretty) succeeds, unless the value holds a non-finite float
//! (`1e400` reads as infinity, which JSON cannot spell: Error Unsupported),
//! and the text parses back to an equal value (same kinds, order, float bits).
//! A parse with opts.bigint = "text" must not panic either.
#![no_main]
use ffi_serde::json::{rt_json_parse, rt_json_stringify};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = result("rt_json_parse", rt_json_parse(bytes(data), NIL)) else { return };
    let _ = result("rt_json_parse", rt_json_parse(bytes(data), opts(&[("bigint", Value::text("text"))]).raw()));
    for o in [NIL, opts(&[("pretty", Value::TRUE)]).raw()] {
        match result("rt_json_stringify", rt_json_stringify(v.raw(), o)) {
            Ok(s) => {
                let st = s.as_text().expect("rt_json_stringify returns text");
                let w = result("rt_json_parse", rt_json_parse(s.raw(), NIL))
                    .unwrap_or_else(|e| panic!("stringify output does not parse: {e:?}\ninput {}\noutput {st:?}", show(data)));
                assert!(deep_eq(v, w, true), "round trip changed the value\ninput {}\noutput {st:?}", show(data));
            }
            Err((code, msg)) => assert!(
                code == Code::Unsupported && has_non_finite(v),
                "rt_json_stringify failed on a parsed value: {code:?} {msg}\ninput {}",
                show(data)
            ),
        }
    }
});
