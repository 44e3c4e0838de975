//! rt_toml_parse on arbitrary text (invalid UTF-8 replaced). When it parses:
//! rt_toml_stringify succeeds and its text parses back to an equal value
//! (dict order ignored: the writer puts plain keys before sub-tables).
#![no_main]
use ffi_serde::toml::{rt_toml_parse, rt_toml_stringify};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let Ok(v) = result("rt_toml_parse", rt_toml_parse(text(&src))) else { return };
    assert!(v.is_dict(), "rt_toml_parse returned {}", v.describe());
    let s = result("rt_toml_stringify", rt_toml_stringify(v.raw(), NIL))
        .unwrap_or_else(|e| panic!("rt_toml_stringify failed on a parsed value: {e:?}\ninput {src:?}"));
    let st = s.as_text().expect("rt_toml_stringify returns text");
    let w = result("rt_toml_parse", rt_toml_parse(s.raw()))
        .unwrap_or_else(|e| panic!("stringify output does not parse: {e:?}\ninput {src:?}\noutput {st:?}"));
    assert!(deep_eq(v, w, false), "round trip changed the value\ninput {src:?}\noutput {st:?}");
});
