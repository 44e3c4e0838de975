//! rt_yaml_parse and rt_yaml_parse_all (ffi_serde's yaml_read.rs over
//! saphyr-parser events) on arbitrary text (invalid UTF-8 replaced), default
//! options and opts.tags. Failures are only Parse, LimitExceeded or OutOfRange;
//! a stream of one document reads the same through both functions. When
//! rt_yaml_parse succeeds: rt_yaml_stringify succeeds and its text parses back
//! to an equal value.
#![no_main]
use ffi_serde::yaml::{rt_yaml_parse, rt_yaml_parse_all, rt_yaml_stringify};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let t = text(&src);
    let reader_codes = |r: &Result<Value, (Code, String)>| {
        if let Err((c, m)) = r {
            assert!(matches!(c, Code::Parse | Code::LimitExceeded | Code::OutOfRange), "unexpected {c:?}: {m}\ninput {src:?}");
        }
    };
    let all = result("rt_yaml_parse_all", rt_yaml_parse_all(t, NIL));
    reader_codes(&all);
    reader_codes(&result("rt_yaml_parse", rt_yaml_parse(t, opts(&[("tags", Value::TRUE)]).raw())));
    let one = result("rt_yaml_parse", rt_yaml_parse(t, NIL));
    reader_codes(&one);
    if let (Ok(a), Ok(v)) = (&all, &one) {
        match a.len() {
            0 => assert!(v.is_nil(), "no document, yet rt_yaml_parse gave a value\ninput {src:?}"),
            1 => assert!(deep_eq(a.at(0), *v, true), "one document read two ways\ninput {src:?}"),
            _ => {}
        }
    }
    let Ok(v) = one else { return };
    let s = result("rt_yaml_stringify", rt_yaml_stringify(v.raw(), NIL))
        .unwrap_or_else(|e| panic!("rt_yaml_stringify failed on a parsed value: {e:?}\ninput {src:?}"));
    let st = s.as_text().expect("rt_yaml_stringify returns text");
    let w = result("rt_yaml_parse", rt_yaml_parse(s.raw(), NIL))
        .unwrap_or_else(|e| panic!("stringify output does not parse: {e:?}\ninput {src:?}\noutput {st:?}"));
    assert!(deep_eq(v, w, true), "round trip changed the value\ninput {src:?}\noutput {st:?}");
});
