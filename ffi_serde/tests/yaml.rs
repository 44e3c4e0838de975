//! The YAML reader (`yaml_read.rs`, saphyr-parser): limits enforced while
//! scanning (depth, alias expansion), linear time on inputs that were
//! quadratic with serde_norway/libyaml, YAML 1.2 core-schema scalars, tags,
//! merge keys, alias copies, and error locations.

mod common;

use common::*;
use ffi_sdk::testing::{err, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_serde::json::rt_json_stringify;
use ffi_serde::yaml::*;

fn json(v: Value) -> String {
    ok(rt_json_stringify(v.raw(), NIL)).as_text().unwrap().to_string()
}

fn parse(s: &str) -> Value {
    ok(rt_yaml_parse(text(s), NIL))
}

fn limit(s: &str) -> String {
    let (c, m) = err(rt_yaml_parse(text(s), NIL));
    assert_eq!(c, Code::LimitExceeded, "{m}");
    m
}

/// `{a: ` x n + `1` + `}` x n: quadratic in serde_norway (40 s at n = 100,000).
#[test]
fn nested_flow_mappings_end_at_the_depth_limit() {
    for n in [40_000, 100_000] {
        let src = format!("{}1{}", "{a: ".repeat(n), "}".repeat(n));
        let m = limit(&src);
        assert!(m.contains("nesting deeper than 127"), "{m}");
    }
    // 127 levels are a value, 128 are not.
    let nest = |n: usize| format!("{}1{}", "{a: ".repeat(n), "}".repeat(n));
    let mut v = parse(&nest(127));
    for _ in 0..127 {
        v = v.get("a");
    }
    assert_eq!(v.as_int(), Some(1));
    limit(&nest(128));
}

#[test]
fn nesting_bombs_fail_at_the_limit_with_a_location() {
    // 10 MB of `[`: the Error comes from the first 128 levels, not after the whole text.
    let e = rt_yaml_parse(text(&"[".repeat(10_000_000)), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::LimitExceeded, "{m}");
    assert!(m.starts_with("rt_yaml_parse: nesting deeper than 127 at line 1 column"), "{m}");
    assert_eq!(details(e).get("line").as_int(), Some(1));
    assert!(details(e).get("position").as_int().unwrap() < 1024);
    limit(&"- ".repeat(5_000_000));
    // Block mappings by indentation.
    let mut s = String::new();
    for i in 0..2000 {
        s.push_str(&" ".repeat(i));
        s.push_str("k:\n");
    }
    let e = rt_yaml_parse(text(&s), NIL);
    assert_eq!(err(e).0, Code::LimitExceeded);
    assert_eq!(details(e).get("line").as_int(), Some(128));
    // parse_all has the same limit.
    assert_eq!(err(rt_yaml_parse_all(text(&"[".repeat(1000)), NIL)).0, Code::LimitExceeded);
}

#[test]
fn long_flow_documents_parse() {
    let n = 200_000;
    let items: Vec<String> = (0..n).map(|i| format!("{{k: {i}}}")).collect();
    let v = parse(&format!("{{a: [{}]}}", items.join(", ")));
    let a = v.get("a");
    assert_eq!(a.len(), n);
    assert_eq!(a.at(n - 1).get("k").as_int(), Some(n as i64 - 1));
}

#[test]
fn alias_expansion_is_bounded() {
    // Billion laughs: 9^9 strings if expanded.
    let mut lol = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        lol.push_str(&format!("{}: &{} [{}]\n", w[1], w[1], vec![format!("*{}", w[0]); 9].join(", ")));
    }
    let m = limit(&lol);
    assert!(m.contains("aliases expand to more than"), "{m}");
    // The same with mappings, in flow style on one line.
    let mut s = String::from("- &a {x: 1, y: 2, z: 3}\n");
    let mut prev = "a".to_string();
    for i in 0..12 {
        let name = format!("n{i}");
        s.push_str(&format!("- &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = name;
    }
    limit(&s);
    // Ordinary reuse stays well within the limit: 5,000 aliases of a 10-node anchor.
    let mut s = String::from("base: &b {a: 1, b: 2, c: [1, 2, 3], d: {e: f}}\nuses:\n");
    for _ in 0..5000 {
        s.push_str("  - *b\n");
    }
    let v = parse(&s);
    assert_eq!(v.get("uses").len(), 5000);
    assert_eq!(json(v.get("uses").at(4999)), r#"{"a":1,"b":2,"c":[1,2,3],"d":{"e":"f"}}"#);
}

#[test]
fn aliases_are_copies_within_the_depth_limit() {
    let v = parse("a: &x [1, {k: v}]\nb: *x\n");
    assert_eq!(json(v), r#"{"a":[1,{"k":"v"}],"b":[1,{"k":"v"}]}"#);
    // Changing one copy leaves the other alone.
    v.get("b").push(Value::int(2));
    v.get("b").at(1).set("k", Value::text("changed"));
    assert_eq!(json(v.get("a")), r#"[1,{"k":"v"}]"#);
    // An alias counts with the depth of what it names.
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    let ok_src = format!("- &d {}\n- {}*d{}\n", deep(60), "[".repeat(66), "]".repeat(66));
    assert!(parse(&ok_src).is_array());
    let bad = format!("- &d {}\n- {}*d{}\n", deep(60), "[".repeat(67), "]".repeat(67));
    limit(&bad);
    // A node cannot contain an alias of itself.
    let (c, m) = err(rt_yaml_parse(text("a: &x [1, *x]\n"), NIL));
    assert_eq!(c, Code::Parse, "{m}");
    assert_eq!(err(rt_yaml_parse(text("a: *nope\n"), NIL)).0, Code::Parse);
}

#[test]
fn core_schema_scalars() {
    let v = parse(
        "[~, null, Null, NULL, true, True, TRUE, false, FALSE, yes, no, on, off, y, \
         0, -0, +12, 007, 0x1F, 0o17, 0b11, -0x1F, 1_000, 12:30, \
         1.5, -1.5e3, .5, 1., 1e3, +.inf, -.Inf, .NAN, 1e400, nan, inf, \
         '1', \"true\", ! 12, !!str 12, !!int '12', !!float 3, !!bool 'true', !!null '']",
    );
    // NaN and infinity have no JSON form: check them apart. `1e400` (out of range) stays text,
    // as it did with serde_norway, whose writer leaves that text unquoted.
    let f = |i: usize| v.at(i).as_float().unwrap();
    assert!(f(29) == f64::INFINITY && f(30) == f64::NEG_INFINITY && f(31).is_nan());
    let finite: Vec<_> = (0..v.len()).filter(|i| !(29..=31).contains(i)).map(|i| json(v.at(i))).collect();
    assert_eq!(
        finite.join(","),
        "null,null,null,null,true,true,true,false,false,\"yes\",\"no\",\"on\",\"off\",\"y\",\
         0,0,12,7,31,15,\"0b11\",\"-0x1F\",\"1_000\",\"12:30\",\
         1.5,-1500.0,0.5,1.0,1000.0,\"1e400\",\"nan\",\"inf\",\
         \"1\",\"true\",\"12\",\"12\",12,3.0,true,null"
    );
    // A tag that does not fit its scalar.
    let (c, m) = err(rt_yaml_parse(text("!!int twelve"), NIL));
    assert_eq!(c, Code::Parse, "{m}");
    assert!(m.contains("!!int"), "{m}");
    // Integers beyond 64 bits follow opts.bigint, hex and octal included.
    assert_eq!(json(parse("[9223372036854775807, -9223372036854775808]")), "[9223372036854775807,-9223372036854775808]");
    let big = |s: &str, mode: &str| ok(rt_yaml_parse(text(s), opts(&[("bigint", Value::text(mode))])));
    assert_eq!(big("0xFFFFFFFFFFFFFFFF", "text").as_text(), Some("18446744073709551615"));
    assert_eq!(big("-99999999999999999999", "text").as_text(), Some("-99999999999999999999"));
    assert_eq!(big("9223372036854775808", "float").as_float(), Some(9223372036854775808.0));
    assert_eq!(err(rt_yaml_parse(text("0o7777777777777777777777"), opts(&[("bigint", Value::text("error"))]))).0, Code::OutOfRange);
}

#[test]
fn tags_merges_and_keys() {
    // Custom tags on scalars and collections; global tags by their URI.
    let t = opts(&[("tags", Value::TRUE)]);
    let v = ok(rt_yaml_parse(text("%TAG !e! tag:example.com,2000:\n---\na: !point [1, 2]\nb: !e!x 5\nc: !<tag:yaml.org,2002:str> 7\n"), t));
    assert_eq!(json(v), r#"{"a":{"tag":"!point","value":[1,2]},"b":{"tag":"tag:example.com,2000:x","value":5},"c":"7"}"#);
    // Only a plain `<<` merges; a quoted one is an ordinary key.
    let v = parse("b: &b {x: 1}\nm: {<<: *b, y: 2}\nq: {'<<': *b}\n");
    assert_eq!(json(v.get("m")), r#"{"x":1,"y":2}"#);
    assert_eq!(json(v.get("q")), r#"{"<<":{"x":1}}"#);
    // Merged dicts are copies too.
    v.get("m").set("x", Value::int(9));
    assert_eq!(json(v.get("b")), r#"{"x":1}"#);
    // Duplicate keys of any kind, with the place of the second.
    for (src, line) in [("a: 1\nb: 2\na: 3\n", 3), ("? [1]\n: a\n1: b\n1: c\n", 4), ("{k: 1,\n k: 2}", 2)] {
        let e = rt_yaml_parse(text(src), NIL);
        let (c, m) = err(e);
        assert_eq!(c, Code::Parse, "{m}");
        assert!(m.contains("duplicate key"), "{m}");
        assert_eq!(details(e).get("line").as_int(), Some(line), "{src:?}: {m}");
    }
    // 20 distinct keys (the hashed duplicate check) and a repeat among them.
    let many: String = (0..20).map(|i| format!("k{i}: {i}\n")).collect();
    assert_eq!(parse(&many).len(), 20);
    assert_eq!(err(rt_yaml_parse(text(&format!("{many}k7: x\n")), NIL)).0, Code::Parse);
}

#[test]
fn errors_name_the_function_and_the_place() {
    let e = rt_yaml_parse(text("a: 1\nb: [1, 2\nc: 3\n"), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::Parse);
    assert!(m.starts_with("rt_yaml_parse: invalid YAML: "), "{m}");
    assert!(m.contains(" at line "), "{m}");
    assert!(details(e).get("line").as_int().unwrap() >= 3, "{m}");
    // Column in characters, position in bytes.
    let e = rt_yaml_parse_all(text("é: 1\né: 2\n"), NIL);
    let (c, m) = err(e);
    assert_eq!(c, Code::Parse, "{m}");
    assert!(m.starts_with("rt_yaml_parse_all: "), "{m}");
    let d = details(e);
    assert_eq!((d.get("line").as_int(), d.get("column").as_int(), d.get("position").as_int()), (Some(2), Some(1), Some(6)));
    // A second document is refused by rt_yaml_parse; a syntax error in it is reported as such.
    assert!(err(rt_yaml_parse(text("1\n--- 2\n"), NIL)).1.contains("rt_yaml_parse_all"));
    let (c, m) = err(rt_yaml_parse(text("1\n--- [\n"), NIL));
    assert_eq!(c, Code::Parse);
    assert!(m.contains("invalid YAML"), "{m}");
}

#[test]
fn documents() {
    assert!(parse("").is_nil());
    assert!(parse("# comment only\n").is_nil());
    assert_eq!(json(parse("a:\nb: ''\n")), r#"{"a":null,"b":""}"#);
    assert_eq!(json(ok(rt_yaml_parse_all(text(""), NIL))), "[]");
    assert_eq!(json(ok(rt_yaml_parse_all(text("---\n--- a\n...\n--- [b]\n"), NIL))), r#"[null,"a",["b"]]"#);
    // YAML 1.2 constructs libyaml refused: tabs as separation, `:` in flow plain scalars.
    assert_eq!(json(parse("[a:b, ::vector, -x]")), r#"["a:b","::vector","-x"]"#);
    assert_eq!(json(parse("key:\t value\n")), r#"{"key":"value"}"#);
}
