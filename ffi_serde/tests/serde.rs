//! ffi_serde through its exports: behaviour, errors (codes, paths, positions),
//! limits, Python's json/tomllib/yaml as oracles, and collector stress.

mod common;

use common::*;
use ffi_sdk::testing::{bytes, collect, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_serde::bincode::*;
use ffi_serde::json::*;
use ffi_serde::toml::*;
use ffi_serde::yaml::*;

fn handle() -> Value {
    // Any handle: a closed-over Rust value from a tiny local type.
    struct H;
    // SAFETY: NAME is unique among the process's handle types (checked over the workspace
    // by tests/tests/handle_names.rs), so no other type's handle passes for this one.
    unsafe impl ffi_sdk::HandleType for H {
        const NAME: &'static str = "TestThing";
    }
    ffi_sdk::new_handle(H)
}

fn json(v: Value) -> String {
    ok(rt_json_stringify(v.raw(), NIL)).as_text().unwrap().to_string()
}

// ------------------------------------------------------------------ JSON

#[test]
fn json_parse_kinds_and_order() {
    let v = ok(rt_json_parse(text(r#" {"z": 1, "a": [true, false, null, -0, 1.5e3, "\u00e9\ud83d\ude00\n", {}], "n": -9223372036854775808, "m": 9223372036854775807} "#), NIL));
    assert!(v.is_dict());
    let keys: Vec<_> = v.entries().map(|(k, _)| k.as_text().unwrap().to_string()).collect();
    assert_eq!(keys, ["z", "a", "n", "m"], "insertion order kept");
    let a = v.get("a");
    assert_eq!(a.at(0).as_bool(), Some(true));
    assert_eq!(a.at(1).as_bool(), Some(false));
    assert!(a.at(2).is_nil());
    assert_eq!(a.at(3).as_int(), Some(0));
    assert_eq!(a.at(4).as_float(), Some(1500.0));
    assert_eq!(a.at(5).as_text(), Some("é😀\n"));
    assert!(a.at(6).is_dict() && a.at(6).is_empty());
    assert_eq!(v.get("n").as_int(), Some(i64::MIN));
    assert_eq!(v.get("m").as_int(), Some(i64::MAX));
    // Bytes input (UTF-8) is accepted like text.
    assert_eq!(ok(rt_json_parse(bytes(b"[1]"), NIL)).at(0).as_int(), Some(1));
    // Duplicate keys: the last value wins, in the first one's place (like Python).
    let d = ok(rt_json_parse(text(r#"{"a":1,"b":2,"a":3}"#), NIL));
    assert_eq!(json(d), r#"{"a":3,"b":2}"#);
    assert_eq!(ok(rt_json_parse(text("\"s\""), NIL)).as_text(), Some("s"));
}

#[test]
fn json_big_integers() {
    let doc = text("[18446744073709551615, -99999999999999999999, 123456789012345678901234567890]");
    let v = ok(rt_json_parse(doc, NIL));
    assert_eq!(v.at(0).as_float(), Some(18446744073709551615.0));
    assert_eq!(v.at(1).as_float(), Some(-99999999999999999999.0));
    let v = ok(rt_json_parse(doc, opts(&[("bigint", Value::text("text"))])));
    assert_eq!(v.at(0).as_text(), Some("18446744073709551615"));
    assert_eq!(v.at(2).as_text(), Some("123456789012345678901234567890"));
    let e = rt_json_parse(text("[1,\n 18446744073709551616]"), opts(&[("bigint", Value::text("error"))]));
    let (c, m) = err(e);
    assert_eq!(c, Code::OutOfRange, "{m}");
    assert_eq!(details(e).get("line").as_int(), Some(2));
    assert_eq!(err(rt_json_parse(doc, opts(&[("bigint", Value::text("round"))]))).0, Code::InvalidArgument);
    // Exponents give floats, overflow gives infinity (as Python does).
    assert_eq!(ok(rt_json_parse(text("1e400"), NIL)).as_float(), Some(f64::INFINITY));
    assert_eq!(ok(rt_json_parse(text("-1E2"), NIL)).as_float(), Some(-100.0));
}

#[test]
fn json_objects_keys_and_duplicates() {
    // Large objects (past ffi_core's linear-scan size) are indexed: lookups, has, later sets.
    let n = 100;
    let doc = format!("{{{}}}", (0..n).map(|i| format!("\"k{i}\": {i}")).collect::<Vec<_>>().join(", "));
    let v = ok(rt_json_parse(text(&doc), NIL));
    assert_eq!(v.len(), n);
    for i in (0..n).rev() {
        assert_eq!(v.get(&format!("k{i}")).as_int(), Some(i as i64), "k{i}");
    }
    assert!(v.has(Value::text("k0")) && !v.has(Value::text("k100")));
    v.set("new", Value::int(-1));
    assert_eq!(v.get("new").as_int(), Some(-1));
    assert_eq!(v.get("k99").as_int(), Some(99));
    // Duplicates, in small and large objects, with keys that are and are not cached (> 32 bytes):
    // the last value in the first key's place.
    let long = "x".repeat(40);
    for size in [3usize, 9, 16, 17, 40] {
        for dup in [0, size / 2, size - 1] {
            let mut pairs: Vec<String> = (0..size).map(|i| format!("\"{long}{i}\": {i}")).collect();
            pairs.push(format!("\"{long}{dup}\": \"last\""));
            let d = ok(rt_json_parse(text(&format!("{{{}}}", pairs.join(","))), NIL));
            assert_eq!(d.len(), size, "size {size} dup {dup}");
            assert_eq!(d.entries().nth(dup).map(|(k, v)| (k.as_text().unwrap().to_string(), v.as_text())), Some((format!("{long}{dup}"), Some("last"))));
            assert_eq!(d.get(&format!("{long}{dup}")).as_text(), Some("last"));
            let short = ok(rt_json_parse(text(&format!("{{{},\"k{dup}\":true}}", (0..size).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","))), NIL));
            assert_eq!(short.len(), size);
            assert_eq!(short.get(&format!("k{dup}")).as_bool(), Some(true));
            assert_eq!(short.entries().nth(dup).unwrap().1.as_bool(), Some(true));
        }
    }
    // More distinct keys and short values than the string cache holds; escaped keys equal plain ones.
    let many = format!("[{}]", (0..5000).map(|i| format!("{{\"key{i}\": \"v{}\", \"k\\u0065y\": {i}, \"key\": 0}}", i % 3000)).collect::<Vec<_>>().join(","));
    let a = ok(rt_json_parse(text(&many), NIL));
    for i in [0usize, 1, 2999, 3000, 4999] {
        let d = a.at(i);
        assert_eq!(d.len(), 2, "{i}: \"k\\u0065y\" and \"key\" are one key");
        assert_eq!(d.entries().nth(1).map(|(k, _)| k.as_text()), Some(Some("key")));
        assert_eq!(d.get(&format!("key{i}")).as_text(), Some(format!("v{}", i % 3000).as_str()));
        assert_eq!(d.get("key").as_int(), Some(0));
    }
}

#[test]
fn json_strings_and_numbers_write_like_serde_json() {
    // Every length around the 8- and 16-byte word sizes, a special character at every position.
    let specials = ["\0", "\n", "\"", "\\", "\u{1f}", "\t", "\u{7f}", "é", "😀", "\r\u{8}\u{c}"];
    for len in 0..=40usize {
        let base: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        assert_eq!(json(Value::text(&base)), serde_json::to_string(&base).unwrap());
        for pos in 0..=len {
            for sp in specials {
                let s = format!("{}{sp}{}", &base[..pos], &base[pos..]);
                let out = json(Value::text(&s));
                assert_eq!(out, serde_json::to_string(&s).unwrap(), "{s:?}");
                assert_eq!(ok(rt_json_parse(text(&out), NIL)).as_text(), Some(s.as_str()));
                let two = format!("{sp}{s}{sp}");
                assert_eq!(json(Value::text(&two)), serde_json::to_string(&two).unwrap(), "{two:?}");
            }
        }
    }
    let mut ints = vec![0i64, i64::MIN, i64::MAX, i64::MIN + 1, (1 << 60) - 1, 1 << 60, -(1 << 60), -(1 << 60) - 1];
    let mut p = 1i64;
    for _ in 0..19 {
        ints.extend([p - 1, p, p + 1, -p, -p + 1, 2 * p, p / 2 * 3]);
        p = p.saturating_mul(10);
    }
    for i in ints {
        assert_eq!(json(Value::int(i)), i.to_string());
        assert_eq!(ok(rt_json_parse(text(&i.to_string()), NIL)).as_int(), Some(i));
    }
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for k in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let f = match k % 3 {
            0 => f64::from_bits(x),
            1 => (x >> 11) as f64 / (1u64 << (x % 60)) as f64,
            _ => ((x % 2_000_000) as f64 - 1e6) / 1e3,
        };
        if !f.is_finite() {
            continue;
        }
        let out = json(Value::float(f));
        assert_eq!(out, serde_json::to_string(&f).unwrap());
        let back = ok(rt_json_parse(text(&out), NIL));
        assert_eq!(back.as_float().map(f64::to_bits), Some(f.to_bits()), "{out}");
    }
}

/// The reader against serde_json (the reader it replaced) on mutated documents:
/// the same documents are accepted, to the same values, and refused with the same message.
#[test]
fn json_reader_agrees_with_serde_json() {
    fn agree(v: Value, j: &serde_json::Value) -> bool {
        use serde_json::Value as J;
        match j {
            J::Null => v.is_nil(),
            J::Bool(b) => v.as_bool() == Some(*b),
            J::String(s) => v.as_text() == Some(s.as_str()),
            J::Number(n) => {
                let t = n.to_string();
                match t.parse::<i64>() {
                    Ok(i) if !t.contains(['.', 'e', 'E']) => v.as_int() == Some(i),
                    _ => v.as_float().map(f64::to_bits) == t.parse::<f64>().ok().map(f64::to_bits),
                }
            }
            J::Array(a) => v.is_array() && v.len() == a.len() && a.iter().enumerate().all(|(i, x)| agree(v.at(i), x)),
            J::Object(m) => {
                v.is_dict()
                    && v.len() == m.len()
                    && m.iter().zip(v.entries()).all(|((k, x), (vk, vv))| vk.as_text() == Some(k.as_str()) && agree(vv, x))
            }
        }
    }
    // Errors inside a string: which one is named first may differ (we check UTF-8 as we go).
    const IN_STRING: &[&str] = &[
        "invalid unicode code point",
        "control character (\\u0000-\\u001F) found while parsing a string",
        "EOF while parsing a string",
        "invalid escape",
        "lone leading surrogate in hex escape",
        "unexpected end of hex escape",
    ];
    let seeds = [
        r#"{"a": [1, -2.5e3, true, false, null, "x\ny\u00e9\ud83d\ude00"], "b": {"c": {}, "d": []}, "e": -0, "f": 0.5}"#.to_string(),
        r#"[1e5, 1E-5, 123456789012345678, 12345678901234567890, -9223372036854775808, 0.1e1, "\"\\\/\b\f\n\r\t"]"#.to_string(),
        r#"{"a":1,"b":[{"a":2,"a":3}],"a":4,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k3":33}"#.to_string(),
        r#"[0.1,0.30000000000000004,1.7976931348623157e308,5e-324,2.2250738585072014e-308,-65.613616999999977,9007199254740993,1e22,1e23]"#.to_string(),
        sample_json(2),
    ];
    let alphabet: &[u8] = b"{}[],:\"\\ \n\t0123456789-+.eEtrufalsn\x01\xff\xc3\xa9u";
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as usize
    };
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..6000 {
        let mut d = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..1 + rnd() % 3 {
            let i = rnd() % (d.len() + 1);
            match rnd() % 3 {
                0 if i < d.len() => {
                    d.remove(i);
                }
                1 => d.insert(i, alphabet[rnd() % alphabet.len()]),
                _ if i < d.len() => d[i] = alphabet[rnd() % alphabet.len()],
                _ => {}
            }
        }
        if rnd() % 4 == 0 {
            d.truncate(rnd() % (d.len() + 1));
        }
        let doc = String::from_utf8_lossy(&d).into_owned();
        let theirs: Result<serde_json::Value, _> = serde_json::from_slice(&d);
        let ours = rt_json_parse(bytes(&d), NIL);
        match (&theirs, Value::from_raw(ours).error()) {
            (Ok(j), None) => {
                accepted += 1;
                assert!(agree(Value::from_raw(ours), j), "different value for {doc:?}");
            }
            (Err(e), Some((code, m))) => {
                refused += 1;
                assert!(code == Code::Parse || code == Code::LimitExceeded, "{m}");
                let msg = e.to_string();
                let what = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(w, _)| w);
                let mine = m.trim_start_matches("rt_json_parse: invalid JSON: ");
                let mine = mine.rsplit_once(" at line ").map_or(mine, |(w, _)| w);
                if IN_STRING.contains(&what) {
                    assert!(IN_STRING.contains(&mine), "{doc:?}: serde_json {msg:?}, we {m:?}");
                } else {
                    assert_eq!(mine, what, "{doc:?}: serde_json {msg:?}, we {m:?}");
                }
            }
            (t, o) => panic!("{doc:?}: serde_json {t:?}, we {o:?}"),
        }
    }
    assert!(accepted > 500 && refused > 3000, "{accepted} accepted, {refused} refused");
}

#[test]
fn json_parse_errors_have_line_and_column() {
    let src = "{\n  \"a\": 1,\n  \"b\": ]\n}";
    let e = rt_json_parse(text(src), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::Parse);
    assert!(m.starts_with("rt_json_parse: invalid JSON:") && m.contains("line 3 column 8"), "{m}");
    let d = details(e);
    assert_eq!(d.get("line").as_int(), Some(3));
    assert_eq!(d.get("column").as_int(), Some(8));
    assert_eq!(d.get("position").as_int(), Some(src.find(']').unwrap() as i64));
    for bad in ["", "   ", "[1,]", "{\"a\" 1}", "[1] x", "'a'", "[NaN]", "01", "\"\\x\"", "[\"\u{1}\"]", "{\"a\":1,}"] {
        assert_eq!(err(rt_json_parse(text(bad), NIL)).0, Code::Parse, "{bad:?}");
    }
    assert_eq!(err(rt_json_parse(bytes(b"[\"\xff\"]"), NIL)).0, Code::Parse);
    // Wrong kinds and options.
    assert_eq!(err(rt_json_parse(int(1), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_json_parse(NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_json_parse(text("1"), opts(&[("strict", Value::TRUE)]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_json_parse(text("1"), text("x"))).0, Code::TypeMismatch);
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for (name, src) in [
        ("arrays", "[".repeat(100_000)),
        ("objects", "{\"a\":".repeat(100_000)),
        ("closed", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
    ] {
        let (c, m) = err(rt_json_parse(text(&src), NIL));
        assert_eq!(c, Code::LimitExceeded, "{name}: {m}");
    }
    // 127 levels are fine, 128 are not, in every format and both directions.
    let nest = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let v127 = ok(rt_json_parse(text(&nest(127)), NIL));
    assert_eq!(json(v127), nest(127));
    assert!(same(ok(rt_yaml_parse(text(&nest(127)), NIL)), v127, true));
    assert!(same(ok(rt_yaml_parse(ok(rt_yaml_stringify(v127.raw(), NIL)).raw(), NIL)), v127, true));
    assert!(same(ok(rt_bincode_decode(ok(rt_bincode_encode(v127.raw())).raw())), v127, true));
    // The TOML parser stops earlier (its own limit, about 80 levels).
    let t60 = ok(rt_toml_parse(text(&format!("a = {}", nest(60)))));
    assert!(same(ok(rt_toml_parse(ok(rt_toml_stringify(t60.raw(), NIL)).raw())), t60, true));
    assert_eq!(err(rt_toml_parse(text(&format!("a = {}", nest(100))))).0, Code::LimitExceeded);
    assert_eq!(err(rt_json_parse(text(&nest(128)), NIL)).0, Code::LimitExceeded);
    assert_eq!(err(rt_yaml_parse(text(&nest(128)), NIL)).0, Code::LimitExceeded);
    assert_eq!(err(rt_toml_parse(text(&format!("a = {}", nest(128))))).0, Code::LimitExceeded);
    let v128 = Value::array(1).push(v127);
    for r in [rt_json_stringify(v128.raw(), NIL), rt_yaml_stringify(v128.raw(), NIL), rt_bincode_encode(v128.raw())] {
        assert_eq!(err(r).0, Code::LimitExceeded);
    }
    let (c, m) = err(rt_yaml_parse(text(&"[".repeat(100_000)), NIL));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    let (c, m) = err(rt_yaml_parse(text(&"- ".repeat(1000)), NIL));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    let (c, m) = err(rt_toml_parse(text(&format!("a = {}", "[".repeat(100_000)))));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    let (c, _) = err(rt_toml_parse(text(&format!("a = {}", "{b = ".repeat(100_000)))));
    assert_eq!(c, Code::LimitExceeded);
    // Brackets inside TOML strings and comments do not count.
    let s = format!("a = \"{0}\" # {0}\nb = '''{0}'''\n", "[".repeat(1000));
    assert_eq!(ok(rt_toml_parse(text(&s))).get("a").as_text().map(str::len), Some(1000));
    // bincode: 100 000 nested array tags.
    let mut deep = Vec::new();
    for _ in 0..100_000 {
        deep.extend_from_slice(&[6, 1]);
    }
    deep.push(0);
    let (c, m) = err(rt_bincode_decode(bytes(&deep)));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    // Values built in memory deeper than the limit.
    let mut v = Value::array(0);
    for _ in 0..200 {
        v = Value::array(1).push(v);
    }
    for r in [rt_json_stringify(v.raw(), NIL), rt_yaml_stringify(v.raw(), NIL), rt_bincode_encode(v.raw())] {
        assert_eq!(err(r).0, Code::LimitExceeded);
    }
}

#[test]
fn json_stringify_options_match_python() {
    let doc = r#"{"b": [1, 2, {"y": null, "x": "é\"\\"}], "a": {"k": true, "e": [], "o": {}}, "c": -5, "d": "tab\there"}"#;
    let v = ok(rt_json_parse(text(doc), NIL));
    let compact = json(v);
    let py = |args: &str| String::from_utf8(python(&format!("import json,sys; sys.stdout.write(json.dumps(json.loads(sys.stdin.read()), ensure_ascii=False, {args}))"), doc.as_bytes())).unwrap();
    assert_eq!(compact, py("separators=(',', ':')"));
    let sorted = ok(rt_json_stringify(v.raw(), opts(&[("sort_keys", Value::TRUE)])));
    assert_eq!(sorted.as_text().unwrap(), py("separators=(',', ':'), sort_keys=True"));
    let pretty = ok(rt_json_stringify(v.raw(), opts(&[("pretty", Value::TRUE), ("sort_keys", Value::TRUE)])));
    assert_eq!(pretty.as_text().unwrap(), py("indent=2, sort_keys=True"));
    assert_eq!(err(rt_json_stringify(v.raw(), opts(&[("indent", Value::int(2))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_json_stringify(v.raw(), opts(&[("pretty", Value::int(1))]))).0, Code::InvalidArgument);
    // Scalars and non-text keys (written as their JSON spelling, like Python).
    assert_eq!(json(Value::NIL), "null");
    assert_eq!(json(Value::float(0.1)), "0.1");
    assert_eq!(json(Value::float(1.0)), "1.0");
    assert_eq!(json(Value::int(i64::MIN)), "-9223372036854775808");
    let d = Value::dict();
    d.set_value(Value::int(1), Value::text("i")).unwrap();
    d.set_value(Value::TRUE, Value::text("b")).unwrap();
    d.set_value(Value::NIL, Value::text("n")).unwrap();
    d.set_value(Value::float(2.5), Value::text("f")).unwrap();
    assert_eq!(json(d), r#"{"1":"i","true":"b","null":"n","2.5":"f"}"#);
}

#[test]
fn stringify_errors_name_the_path() {
    let v = ok(rt_json_parse(text(r#"{"a": [0, 1, 2, {"b": 1}], "odd key": [1]}"#), NIL));
    v.get("a").at(3).set("b", Value::float(f64::NAN));
    let (c, m) = err(rt_json_stringify(v.raw(), NIL));
    assert_eq!(c, Code::Unsupported);
    assert!(m.contains("NaN has no JSON representation") && m.ends_with("(at $.a[3].b)"), "{m}");
    let e = rt_json_stringify(v.raw(), NIL);
    assert_eq!(details(e).get("path").as_text(), Some("$.a[3].b"));
    v.get("a").at(3).set("b", Value::float(f64::INFINITY));
    assert!(err(rt_json_stringify(v.raw(), NIL)).1.contains("$.a[3].b"));
    v.get("a").at(3).set("b", Value::int(1));
    v.get("odd key").push(Value::bytes(b"x"));
    let (c, m) = err(rt_json_stringify(v.raw(), NIL));
    assert_eq!(c, Code::Unsupported);
    assert!(m.contains(r#"(at $["odd key"][1])"#), "{m}");
    for r in [rt_yaml_stringify(v.raw(), NIL), rt_toml_stringify(v.raw(), NIL)] {
        let (c, m) = err(r);
        assert_eq!(c, Code::Unsupported);
        assert!(m.contains(r#"$["odd key"][1]"#), "{m}");
    }
    // Handles in every format.
    let h = Value::array(0).push(Value::int(1)).push(handle());
    for (r, f) in [
        (rt_json_stringify(h.raw(), NIL), "rt_json_stringify"),
        (rt_yaml_stringify(h.raw(), NIL), "rt_yaml_stringify"),
        (rt_bincode_encode(h.raw()), "rt_bincode_encode"),
    ] {
        let (c, m) = err(r);
        assert_eq!(c, Code::Unsupported, "{m}");
        assert!(m.starts_with(f) && m.contains("handle") && m.contains("$[1]"), "{m}");
    }
    // Cycles.
    let a = Value::array(0).push(Value::int(1));
    let inner = Value::dict();
    inner.set("self", a);
    a.push(inner);
    for r in [rt_json_stringify(a.raw(), NIL), rt_yaml_stringify(a.raw(), NIL), rt_bincode_encode(a.raw())] {
        let (c, m) = err(r);
        assert_eq!(c, Code::InvalidArgument, "{m}");
        assert!(m.contains("cycle"), "{m}");
    }
    let d = Value::dict();
    d.set("me", d);
    let (_, m) = err(rt_toml_stringify(d.raw(), NIL));
    assert!(m.contains("cycle") && m.contains("$.me"), "{m}");
    // A value shared twice (not a cycle) is fine.
    let shared = Value::array(0).push(Value::int(7));
    let two = Value::array(0).push(shared).push(shared);
    assert_eq!(json(two), "[[7],[7]]");
    // Keys without a JSON form.
    let d = Value::dict();
    d.set_value(Value::array(0), Value::int(1)).unwrap();
    let (c, m) = err(rt_json_stringify(d.raw(), NIL));
    assert_eq!(c, Code::Unsupported, "{m}");
}

#[test]
fn large_inputs_parse_and_write() {
    // 2 MB of records, a 4 MB string, and a 300 000-item array.
    let doc = sample_json(4000);
    let v = ok(rt_json_parse(text(&doc), NIL));
    assert_eq!(v.get("statuses").len(), 4000);
    let back = json(v);
    let same_py = python(
        "import json,sys; a,b=sys.stdin.read().split('\\0'); print(json.loads(a)==json.loads(b))",
        format!("{doc}\0{back}").as_bytes(),
    );
    assert_eq!(String::from_utf8(same_py).unwrap().trim(), "True");
    let big = format!("[\"{}\"]", "x".repeat(4 << 20));
    assert_eq!(ok(rt_json_parse(text(&big), NIL)).at(0).as_text().map(str::len), Some(4 << 20));
    let many = format!("[{}0]", "1,".repeat(300_000));
    let arr = ok(rt_json_parse(text(&many), NIL));
    assert_eq!(arr.len(), 300_001);
    assert_eq!(json(arr).len(), many.len());
}

#[test]
fn json_parse_under_collections_from_threads() {
    let doc = std::sync::Arc::new(sample_json(300));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gc = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                collect();
            }
        })
    };
    let expected = json(ok(rt_json_parse(text(&doc), NIL)));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let doc = doc.clone();
            let expected = expected.clone();
            std::thread::spawn(move || {
                for _ in 0..15 {
                    let v = ok(rt_json_parse(text(&doc), NIL));
                    // Garbage between parse and check: freed cells get reused if anything was lost.
                    for _ in 0..2000 {
                        let _ = Value::text("churn churn churn churn");
                    }
                    assert_eq!(json(v), expected);
                    let y = ok(rt_yaml_parse(ok(rt_yaml_stringify(v.raw(), NIL)).raw(), NIL));
                    assert!(same(v, y, false));
                    let b = ok(rt_bincode_decode(ok(rt_bincode_encode(v.raw())).raw()));
                    assert!(same(v, b, true));
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    gc.join().unwrap();
}

// ------------------------------------------------------------------ TOML

const TOML_DOC: &str = r#"
# comment
title = "TOML \"example\""
int = 0x_ff
neg = -17
float = 6.626e-34
inf = -inf
bool = true
odt = 1979-05-27T07:32:00-08:00
ldt = 1979-05-27T07:32:00.999
ld = 1979-05-27
lt = 07:32:00
arr = [1, "two", [3.0], {x = 1}]

[owner.name]
first = "Tom"

[[products]]
name = "Hammer"
sku = 738594937

[[products]]
"#;

#[test]
fn toml_parse_maps_values() {
    // 0x_ff is invalid TOML: underscores must sit between digits.
    assert_eq!(err(rt_toml_parse(text(TOML_DOC))).0, Code::Parse);
    let doc = TOML_DOC.replace("0x_ff", "0xff");
    let v = ok(rt_toml_parse(text(&doc)));
    assert_eq!(v.get("title").as_text(), Some("TOML \"example\""));
    assert_eq!(v.get("int").as_int(), Some(255));
    assert_eq!(v.get("neg").as_int(), Some(-17));
    assert_eq!(v.get("float").as_float(), Some(6.626e-34));
    assert_eq!(v.get("inf").as_float(), Some(f64::NEG_INFINITY));
    assert_eq!(v.get("odt").as_text(), Some("1979-05-27T07:32:00-08:00"));
    assert_eq!(v.get("ldt").as_text(), Some("1979-05-27T07:32:00.999"));
    assert_eq!(v.get("ld").as_text(), Some("1979-05-27"));
    assert_eq!(v.get("lt").as_text(), Some("07:32:00"));
    assert_eq!(v.get("arr").at(3).get("x").as_int(), Some(1));
    assert_eq!(v.get("owner").get("name").get("first").as_text(), Some("Tom"));
    assert_eq!(v.get("products").len(), 2);
    assert!(v.get("products").at(1).is_empty());
    // The same document read by Python's tomllib (datetimes as isoformat text).
    let py = python(
        "import tomllib,json,sys,datetime\nd=tomllib.loads(sys.stdin.read())\nd.pop('inf')\nprint(json.dumps(d, default=lambda o: o.isoformat()))",
        doc.as_bytes(),
    );
    let pyv = ok(rt_json_parse(bytes(&py), NIL));
    for k in ["title", "int", "neg", "float", "bool", "ld", "lt", "arr", "owner", "products"] {
        assert!(same(v.get(k), pyv.get(k), false), "{k}: {} vs {}", json(v.get(k)), json(pyv.get(k)));
    }
}

#[test]
fn toml_errors_and_stringify() {
    let e = rt_toml_parse(text("a = 1\nb = \n"));
    let (c, m) = err(e);
    assert_eq!(c, Code::Parse, "{m}");
    assert_eq!(details(e).get("line").as_int(), Some(2));
    assert!(m.contains("line 2"), "{m}");
    for bad in ["a = 1\na = 2", "[t]\n[t]", "a = 9223372036854775808", "a = 1979-13-01", "= 1", "a = \"\\q\""] {
        assert_eq!(err(rt_toml_parse(text(bad))).0, Code::Parse, "{bad:?}");
    }
    assert_eq!(err(rt_toml_parse(int(1))).0, Code::TypeMismatch);

    let doc = TOML_DOC.replace("0x_ff", "0xff");
    let v = ok(rt_toml_parse(text(&doc)));
    // Datetimes come back as datetimes only with opts.datetimes.
    let plain = ok(rt_toml_stringify(v.raw(), NIL));
    assert!(plain.as_text().unwrap().contains("odt = \"1979-05-27T07:32:00-08:00\""), "{}", plain.as_text().unwrap());
    let dt = ok(rt_toml_stringify(v.raw(), opts(&[("datetimes", Value::TRUE)])));
    assert!(dt.as_text().unwrap().contains("odt = 1979-05-27T07:32:00-08:00"));
    assert!(same(ok(rt_toml_parse(dt.raw())), v, false));
    let pretty = ok(rt_toml_stringify(v.raw(), opts(&[("pretty", Value::TRUE), ("sort_keys", Value::TRUE)])));
    assert!(same(ok(rt_toml_parse(pretty.raw())).get("owner"), v.get("owner"), false));
    // Tables before plain values in the dict are fine.
    let d = Value::dict();
    d.set("t", Value::dict().set("x", Value::int(1)));
    d.set("a", Value::int(2));
    let back = ok(rt_toml_parse(ok(rt_toml_stringify(d.raw(), NIL)).raw()));
    assert_eq!(back.get("a").as_int(), Some(2));
    assert_eq!(back.get("t").get("x").as_int(), Some(1));
    // What TOML cannot hold.
    let (c, m) = err(rt_toml_stringify(Value::array(0).raw(), NIL));
    assert_eq!(c, Code::TypeMismatch, "{m}");
    let d = Value::dict();
    d.set("a", Value::array(0).push(Value::int(1)).push(Value::NIL));
    let (c, m) = err(rt_toml_stringify(d.raw(), NIL));
    assert_eq!(c, Code::Unsupported);
    assert!(m.contains("nil has no TOML representation") && m.contains("(at $.a[1])"), "{m}");
    assert_eq!(err(rt_toml_stringify(d.raw(), opts(&[("indent", Value::int(1))]))).0, Code::InvalidArgument);
}

// ------------------------------------------------------------------ YAML

#[test]
fn yaml_anchors_merge_tags_keys() {
    let src = "\
base: &b {x: 1, y: 2}
other: &o {z: 0, x: 9}
d:
  <<: [*b, *o]
  y: 3
list: &l [1, 2]
again: *l
? [1, 2]
: complex key
1: int key
true: bool key
~: null key
t: !point [3, 4]
s: !!str 123
octal: 0o17
yes: yes
";
    let v = ok(rt_yaml_parse(text(src), NIL));
    // Merge: explicit keys win, earlier sources beat later ones, merged keys come first.
    let d = v.get("d");
    assert_eq!(json(d), r#"{"x":1,"y":3,"z":0}"#);
    assert_eq!(json(v.get("again")), "[1,2]");
    let keys: Vec<_> = v.entries().map(|(k, _)| k).collect();
    assert!(keys[5].is_array(), "complex key kept as an array key");
    assert_eq!(keys[6].as_int(), Some(1));
    assert_eq!(keys[7].as_bool(), Some(true));
    assert!(keys[8].is_nil());
    assert_eq!(json(v.get("t")), "[3,4]", "custom tag dropped by default");
    assert_eq!(v.get("s").as_text(), Some("123"));
    assert_eq!(v.get("octal").as_int(), Some(15));
    assert_eq!(v.get("yes").as_text(), Some("yes"), "YAML 1.2: yes is a string");
    let tagged = ok(rt_yaml_parse(text("t: !point [3, 4]\n"), opts(&[("tags", Value::TRUE)])));
    assert_eq!(json(tagged), r#"{"t":{"tag":"!point","value":[3,4]}}"#);
    // Stringify and read back: every key kind survives.
    let back = ok(rt_yaml_parse(ok(rt_yaml_stringify(v.raw(), NIL)).raw(), NIL));
    assert!(same(back, v, false), "{}", ok(rt_yaml_stringify(v.raw(), NIL)).as_text().unwrap());
}

#[test]
fn yaml_documents_and_errors() {
    assert!(ok(rt_yaml_parse(text(""), NIL)).is_nil());
    assert_eq!(ok(rt_yaml_parse_all(text(""), NIL)).len(), 0);
    assert_eq!(ok(rt_yaml_parse_all(text("# only a comment\n\n"), NIL)).len(), 0);
    assert_eq!(json(ok(rt_yaml_parse_all(text("---\n"), NIL))), "[null]");
    let all = ok(rt_yaml_parse_all(text("--- 1\n--- [a]\n---\nk: v\n...\n"), NIL));
    assert_eq!(json(all), r#"[1,["a"],{"k":"v"}]"#);
    let (c, m) = err(rt_yaml_parse(text("--- 1\n--- 2\n"), NIL));
    assert_eq!(c, Code::Parse);
    assert!(m.contains("rt_yaml_parse_all"), "{m}");
    let e = rt_yaml_parse(text("a: 1\nb: [1, 2\nc: 3\n"), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::Parse, "{m}");
    assert!(details(e).get("line").as_int().unwrap() >= 3, "{m}");
    let (c, m) = err(rt_yaml_parse(text("a: 1\na: 2\n"), NIL));
    assert_eq!(c, Code::Parse);
    assert!(m.contains("duplicate key"), "{m}");
    assert_eq!(err(rt_yaml_parse(text("a: *nope\n"), NIL)).0, Code::Parse);
    assert_eq!(err(rt_yaml_parse(text("<<: 1\n"), NIL)).0, Code::Parse);
    assert_eq!(err(rt_yaml_parse_all(text("- a\n--- [\n"), NIL)).0, Code::Parse);
    assert_eq!(err(rt_yaml_parse(int(5), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_yaml_parse(text("a"), opts(&[("schema", Value::text("1.1"))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_yaml_stringify(Value::NIL.raw(), opts(&[("pretty", Value::TRUE)]))).0, Code::InvalidArgument);
    // Billion laughs: alias expansion is bounded.
    let mut lol = String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        lol.push_str(&format!("{}: &{} [{}]\n", w[1], w[1], vec![format!("*{}", w[0]); 9].join(",")));
    }
    let (c, m) = err(rt_yaml_parse(text(&lol), NIL));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    // Big integers.
    let v = ok(rt_yaml_parse(text("[18446744073709551616]"), NIL));
    assert_eq!(v.at(0).as_float(), Some(18446744073709551616.0));
    assert_eq!(err(rt_yaml_parse(text("[18446744073709551616]"), opts(&[("bigint", Value::text("error"))]))).0, Code::OutOfRange);
}

#[test]
fn yaml_stringify_matches_python_reading() {
    let v = ok(rt_json_parse(text(r##"{"s": ["true", "1", "", "null", "~", "a: b", "- x", "#c", "é", "multi\nline"], "n": [1, -2.5, 0.001, 123456.75, true, null], "o": {"k": {}}}"##), NIL));
    v.set("inf", Value::float(f64::INFINITY));
    let y = ok(rt_yaml_stringify(v.raw(), opts(&[("sort_keys", Value::TRUE)])));
    let py = python(
        "import yaml,json,sys; d=yaml.safe_load(sys.stdin.read()); d['inf']=str(d['inf']); print(json.dumps(d, sort_keys=True, separators=(',', ':'), ensure_ascii=False))",
        y.as_text().unwrap().as_bytes(),
    );
    v.set("inf", Value::text("inf"));
    let sorted = ok(rt_json_stringify(v.raw(), opts(&[("sort_keys", Value::TRUE)])));
    assert_eq!(String::from_utf8(py).unwrap().trim(), sorted.as_text().unwrap());
    let keys: Vec<_> = ok(rt_yaml_parse(y.raw(), NIL)).entries().map(|(k, _)| k.as_text().unwrap().to_string()).collect();
    assert_eq!(keys, ["inf", "n", "o", "s"]);
}

// ------------------------------------------------------------------ bincode

#[test]
fn bincode_round_trip_is_exact() {
    let d = Value::dict();
    d.set_value(Value::int(1), Value::text("int key")).unwrap();
    d.set_value(Value::bytes(b"\x00\xff"), Value::bytes(&[0, 1, 2, 255])).unwrap();
    d.set_value(Value::FALSE, Value::NIL).unwrap();
    let v = Value::array(0)
        .push(Value::int(i64::MIN))
        .push(Value::int(i64::MAX))
        .push(Value::int(-1))
        .push(Value::float(-0.0))
        .push(Value::float(f64::from_bits(0x7ff8_0000_0000_1234)))
        .push(Value::float(f64::NEG_INFINITY))
        .push(Value::float(5e-324))
        .push(Value::text(""))
        .push(Value::text("a\0é😀"))
        .push(Value::bytes(b""))
        .push(d)
        .push(Value::array(0));
    let b = ok(rt_bincode_encode(v.raw()));
    let back = ok(rt_bincode_decode(b.raw()));
    assert!(same(v, back, true));
    // Byte for byte the derived encoding of the documented schema.
    use ffi_serde::bincode::Node;
    let schema = Node::Array(vec![
        Node::Int(i64::MIN),
        Node::Int(i64::MAX),
        Node::Int(-1),
        Node::Float(-0.0),
        Node::Float(f64::from_bits(0x7ff8_0000_0000_1234)),
        Node::Float(f64::NEG_INFINITY),
        Node::Float(5e-324),
        Node::Text(String::new()),
        Node::Text("a\0é😀".into()),
        Node::Bytes(vec![]),
        Node::Dict(vec![
            (Node::Int(1), Node::Text("int key".into())),
            (Node::Bytes(vec![0, 255]), Node::Bytes(vec![0, 1, 2, 255])),
            (Node::Bool(false), Node::Nil),
        ]),
        Node::Array(vec![]),
    ]);
    let derived = bincode::encode_to_vec(&schema, bincode::config::standard()).unwrap();
    assert_eq!(b.as_bytes().unwrap(), &derived[..]);
    let (decoded, n): (Node, usize) = bincode::decode_from_slice(b.as_bytes().unwrap(), bincode::config::standard()).unwrap();
    assert_eq!(n, derived.len());
    assert_eq!(format!("{decoded:?}"), format!("{schema:?}"));
}

#[test]
fn bincode_bad_input() {
    let good = ok(rt_bincode_encode(ok(rt_json_parse(text(r#"{"a":[1,"xyz"]}"#), NIL)).raw()));
    let g = good.as_bytes().unwrap().to_vec();
    for cut in 0..g.len() {
        let (c, m) = err(rt_bincode_decode(bytes(&g[..cut])));
        assert_eq!(c, Code::Parse, "cut {cut}: {m}");
    }
    let mut trailing = g.clone();
    trailing.push(0);
    let e = rt_bincode_decode(bytes(&trailing));
    let (c, m) = err(e);
    assert_eq!(c, Code::Parse);
    assert!(m.contains("1 bytes after the value"), "{m}");
    assert_eq!(details(e).get("position").as_int(), Some(g.len() as i64));
    assert_eq!(err(rt_bincode_decode(bytes(&[9]))).0, Code::Parse);
    assert_eq!(err(rt_bincode_decode(bytes(&[4, 2, 0xff, 0xfe]))).0, Code::Parse, "invalid UTF-8 text");
    // A length of 2^60 items: refused before allocating.
    let mut huge = vec![6u8, 253];
    huge.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert_eq!(err(rt_bincode_decode(bytes(&huge))).0, Code::Parse);
    let mut huge_text = vec![4u8, 253];
    huge_text.extend_from_slice(&(1u64 << 60).to_le_bytes());
    assert_eq!(err(rt_bincode_decode(bytes(&huge_text))).0, Code::Parse);
    assert_eq!(err(rt_bincode_decode(int(1))).0, Code::TypeMismatch);
    // Text is read as its UTF-8 bytes (a bytes parameter).
    assert!(ok(rt_bincode_decode(text("\0"))).is_nil());
}
