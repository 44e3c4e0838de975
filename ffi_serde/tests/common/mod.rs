//! Helpers shared by the ffi_serde test binaries.
#![allow(dead_code)]

use ffi_sdk::abi::{Kind, RtValue};
use ffi_sdk::Value;
use std::process::{Command, Stdio};

/// Details dict of an Error value (nil when none).
pub fn details(v: RtValue) -> Value {
    ffi_sdk::testing::details(v)
}

/// A dict from pairs (options).
pub fn opts(pairs: &[(&str, Value)]) -> RtValue {
    ffi_sdk::testing::dict(pairs)
}

/// Structural equality; floats compare by bits (`exact`) or by value with NaN == NaN.
pub fn same(a: Value, b: Value, exact: bool) -> bool {
    match (a.kind(), b.kind()) {
        (Kind::Float, Kind::Float) => {
            let (x, y) = (a.as_float().unwrap(), b.as_float().unwrap());
            if exact {
                x.to_bits() == y.to_bits()
            } else {
                x == y || (x.is_nan() && y.is_nan())
            }
        }
        (Kind::Array, Kind::Array) => a.len() == b.len() && a.items().zip(b.items()).all(|(x, y)| same(x, y, exact)),
        (Kind::Dict, Kind::Dict) => {
            a.len() == b.len()
                && a.entries().zip(b.entries()).all(|((k1, v1), (k2, v2))| same(k1, k2, exact) && same(v1, v2, exact))
        }
        (Kind::String, Kind::String) => a.as_text() == b.as_text(),
        (Kind::Bytes, Kind::Bytes) => a.as_bytes() == b.as_bytes(),
        (Kind::Int, Kind::Int) => a.as_int() == b.as_int(),
        (Kind::Bool, Kind::Bool) => a.as_bool() == b.as_bool(),
        (Kind::Nil, Kind::Nil) => true,
        _ => false,
    }
}

/// Runs python3 with `stdin`; returns stdout (panics on failure).
pub fn python(code: &str, stdin: &[u8]) -> Vec<u8> {
    let mut c = Command::new("python3")
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(stdin).unwrap();
    }
    let out = c.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A realistic JSON document (tweets-like objects: nested users, entities, unicode text, numbers).
pub fn sample_json(records: usize) -> String {
    let mut s = String::from("{\"statuses\":[");
    let mut x: u64 = 0x9E3779B97F4A7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..records {
        if i > 0 {
            s.push(',');
        }
        let r = rnd();
        s.push_str(&format!(
            concat!(
                "{{\"id\":{},\"id_str\":\"{}\",\"created_at\":\"Sun Aug 31 00:29:15 +0000 2014\",",
                "\"text\":\"@aym0566x \\n\\n名前:前田あゆみ\\n第一印象:なんか怖っ！ \\u2764 \\\"quoted\\\" #{}\",",
                "\"truncated\":false,\"score\":{},\"ratio\":{},\"in_reply_to\":null,",
                "\"user\":{{\"id\":{},\"name\":\"user {}\",\"followers_count\":{},\"verified\":{},\"lang\":\"ja\",",
                "\"entities\":{{\"urls\":[],\"hashtags\":[{{\"text\":\"tag{}\",\"indices\":[{},{}]}}]}}}},",
                "\"coordinates\":[{},{}]}}"
            ),
            r >> 4,
            r >> 4,
            i,
            (r % 1000) as i64 - 500,
            (r % 100_000) as f64 / 997.0,
            r % 1_000_000,
            i,
            r % 50_000,
            r % 2 == 0,
            i % 17,
            i % 100,
            i % 100 + 5,
            (r % 36_000) as f64 / 100.0 - 180.0,
            (r % 18_000) as f64 / 100.0 - 90.0,
        ));
    }
    s.push_str("],\"search_metadata\":{\"count\":");
    s.push_str(&records.to_string());
    s.push_str(",\"max_id_str\":\"505874924095815681\"}}");
    s
}

/// Structural equality with dict order ignored (NaN == NaN).
pub fn same_unordered(a: Value, b: Value) -> bool {
    if a.is_dict() && b.is_dict() {
        return a.len() == b.len()
            && a.entries().all(|(k, v)| b.entries().any(|(k2, v2)| same(k, k2, false) && same_unordered(v, v2)));
    }
    if a.is_array() && b.is_array() {
        return a.len() == b.len() && a.items().zip(b.items()).all(|(x, y)| same_unordered(x, y));
    }
    same(a, b, false)
}
