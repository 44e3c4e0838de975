//! Round-trip properties over generated value trees (proptest):
//! value -> JSON / TOML / YAML / bincode -> value gives the same value,
//! for every tree the format can represent.

mod common;

use common::{same, same_unordered};
use ffi_sdk::testing::{ok, NIL};
use ffi_sdk::Value;
use ffi_serde::bincode::*;
use ffi_serde::json::*;
use ffi_serde::toml::*;
use ffi_serde::yaml::*;
use proptest::prelude::*;

/// A value tree in Rust memory (the generator's form; built into values per case).
#[derive(Clone, Debug)]
enum G {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Bytes(Vec<u8>),
    Array(Vec<G>),
    Dict(Vec<(G, G)>),
}

#[derive(Clone, Copy, PartialEq)]
enum Fmt {
    Json,
    Toml,
    Yaml,
    Bincode,
}

fn tricky_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("~".to_string()),
        Just("1".to_string()),
        Just("-0.5e3".to_string()),
        Just("0o17".to_string()),
        Just("a: b".to_string()),
        Just("- x".to_string()),
        Just("#x".to_string()),
        Just("'\"\\".to_string()),
        Just("line\nbreak\r\ttab".to_string()),
        Just("1979-05-27".to_string()),
        Just("<<".to_string()),
        "\\PC{0,12}",
        "[a-z_]{1,8}",
    ]
}

fn scalar(f: Fmt) -> BoxedStrategy<G> {
    let float = match f {
        // Every bit pattern, NaN payloads and -0.0 included.
        Fmt::Bincode => any::<u64>().prop_map(|b| G::Float(f64::from_bits(b))).boxed(),
        // JSON has no NaN/Infinity; YAML and TOML do, but NaN != NaN needs the same() rule.
        Fmt::Json => prop_oneof![any::<f64>().prop_filter("finite", |x| x.is_finite()), Just(-0.0), Just(1e300), Just(5e-324)]
            .prop_map(G::Float)
            .boxed(),
        _ => prop_oneof![any::<f64>(), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(f64::NAN), Just(-0.0)]
            .prop_map(G::Float)
            .boxed(),
    };
    let mut opts = vec![
        any::<bool>().prop_map(G::Bool).boxed(),
        any::<i64>().prop_map(G::Int).boxed(),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(0i64), Just(1 << 60), Just(-(1 << 60) - 1)].prop_map(G::Int).boxed(),
        float,
        tricky_text().prop_map(G::Text).boxed(),
    ];
    if f != Fmt::Toml {
        opts.push(Just(G::Nil).boxed());
    }
    if f == Fmt::Bincode {
        opts.push(proptest::collection::vec(any::<u8>(), 0..16).prop_map(G::Bytes).boxed());
    }
    proptest::strategy::Union::new(opts).boxed()
}

fn key(f: Fmt) -> BoxedStrategy<G> {
    match f {
        Fmt::Json | Fmt::Toml => tricky_text().prop_map(G::Text).boxed(),
        Fmt::Yaml => prop_oneof![4 => tricky_text().prop_map(G::Text), 1 => any::<i64>().prop_map(G::Int), 1 => any::<bool>().prop_map(G::Bool)]
            .prop_filter("merge key", |k| !matches!(k, G::Text(t) if t == "<<"))
            .boxed(),
        Fmt::Bincode => scalar(f),
    }
}

fn tree(f: Fmt) -> BoxedStrategy<G> {
    scalar(f)
        .prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(G::Array),
                proptest::collection::vec((key(f), inner), 0..6).prop_map(G::Dict),
            ]
        })
        .boxed()
}

/// Builds the value (containers first, on this stack frame, then their contents).
fn build(g: &G) -> Value {
    match g {
        G::Nil => Value::NIL,
        G::Bool(b) => Value::bool(*b),
        G::Int(i) => Value::int(*i),
        G::Float(x) => Value::float(*x),
        G::Text(s) => Value::text(s),
        G::Bytes(b) => Value::bytes(b),
        G::Array(items) => {
            let a = Value::array(items.len());
            for it in items {
                a.push(build(it));
            }
            a
        }
        G::Dict(pairs) => {
            let d = Value::dict();
            for (k, v) in pairs {
                d.set_value(build(k), build(v)).unwrap();
            }
            d
        }
    }
}

fn round(f: Fmt, v: Value) -> Value {
    match f {
        Fmt::Json => ok(rt_json_parse(ok(rt_json_stringify(v.raw(), NIL)).raw(), NIL)),
        Fmt::Toml => ok(rt_toml_parse(ok(rt_toml_stringify(v.raw(), NIL)).raw())),
        Fmt::Yaml => ok(rt_yaml_parse(ok(rt_yaml_stringify(v.raw(), NIL)).raw(), NIL)),
        Fmt::Bincode => ok(rt_bincode_decode(ok(rt_bincode_encode(v.raw())).raw())),
    }
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_round_trip(g in tree(Fmt::Json)) {
        let v = build(&g);
        prop_assert!(same(round(Fmt::Json, v), v, true), "{}", ok(rt_json_stringify(v.raw(), NIL)).as_text().unwrap());
    }

    #[test]
    fn yaml_round_trip(g in tree(Fmt::Yaml)) {
        let v = build(&g);
        prop_assert!(same(round(Fmt::Yaml, v), v, false), "{}", ok(rt_yaml_stringify(v.raw(), NIL)).as_text().unwrap());
    }

    #[test]
    fn toml_round_trip(pairs in proptest::collection::vec((key(Fmt::Toml), tree(Fmt::Toml)), 0..6)) {
        let v = build(&G::Dict(pairs));
        // TOML writes a table's plain keys before its sub-tables: order may change.
        prop_assert!(same_unordered(round(Fmt::Toml, v), v), "{}", ok(rt_toml_stringify(v.raw(), NIL)).as_text().unwrap());
    }

    #[test]
    fn bincode_round_trip(g in tree(Fmt::Bincode)) {
        let v = build(&g);
        prop_assert!(same(round(Fmt::Bincode, v), v, true));
    }
}
