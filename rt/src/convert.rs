//! JSON <-> RtValue through the host surface.
//!
//! JSON -> value: null -> nil, bools, integers -> int (i64), other numbers ->
//! float, strings -> text, arrays -> array, objects -> dict (text keys, in
//! order); `{"$bytes": "<hex>"}` -> bytes.
//! Value -> JSON: the same mapping back; bytes -> `{"$bytes": hex}`, handles
//! -> `{"$handle": type}`, an Error inside a container -> `{"$error": ...}`,
//! floats JSON cannot express -> `{"$float": "NaN" | "inf" | "-inf"}`,
//! non-text dict keys -> their JSON text.

use crate::runtime::{Pinned, RtValue, Runtime};
use serde_json::{Map, Number, Value as Json};

/// Containers deeper than this are cut off (`{"$truncated": depth}`): values may be cyclic.
const MAX_DEPTH: usize = 200;

/// A command-line argument: JSON when it parses as JSON, otherwise the word as a string.
pub fn parse_arg(s: &str) -> Json {
    serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.to_string()))
}

pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err(format!("$bytes: odd number of hex digits ({})", b.len()));
    }
    let digit = |c: u8, i: usize| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(format!("$bytes: not a hex digit at position {i}: {:?}", c as char)),
        }
    };
    (0..b.len() / 2).map(|i| Ok(digit(b[2 * i], 2 * i)? << 4 | digit(b[2 * i + 1], 2 * i + 1)?)).collect()
}

/// Fails with the Error's text when the runtime returned an Error while building.
fn checked(rt: &Runtime, v: RtValue, what: &str) -> Result<RtValue, String> {
    match rt.error_of(v) {
        Some(e) => Err(format!("cannot build {what}: {}", e.one_line())),
        None => Ok(v),
    }
}

/// Builds a value from JSON. `subst` may replace a string by an existing value
/// (the demo's `$prev`); it returns None to keep the string.
pub fn from_json(rt: &Runtime, j: &Json, subst: &dyn Fn(&str) -> Option<RtValue>) -> Result<RtValue, String> {
    from_json_at(rt, j, subst, 0)
}

fn from_json_at(
    rt: &Runtime,
    j: &Json,
    subst: &dyn Fn(&str) -> Option<RtValue>,
    depth: usize,
) -> Result<RtValue, String> {
    if depth > MAX_DEPTH {
        return Err(format!("argument nested deeper than {MAX_DEPTH} levels"));
    }
    let h = &rt.h;
    Ok(match j {
        Json::Null => rt.abi.special("nil").ok_or("the ABI has no nil")?,
        // SAFETY: `h.bool_new` was resolved through core's registry and its C prototype
        // (`RtValue rt_bool_new(bool)`) checked by `Runtime::load`; it takes a plain bool
        // and touches no caller memory.
        Json::Bool(b) => unsafe { (h.bool_new)(*b) },
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                // SAFETY: `rt_int_new(int64_t)`, prototype checked at load; a by-value argument.
                checked(rt, unsafe { (h.int_new)(i) }, "an int")?
            } else if n.as_u64().is_some() || is_integer_literal(n) {
                return Err(format!("integer {n} does not fit a 64-bit signed int"));
            } else {
                let f = n.as_f64().ok_or_else(|| format!("number {n} is not representable"))?;
                // SAFETY: `rt_float_new(double)`, prototype checked at load (the f64 goes in an
                // FP register as the C side expects); a by-value argument.
                checked(rt, unsafe { (h.float_new)(f) }, "a float")?
            }
        }
        Json::String(s) => {
            if let Some(v) = subst(s) {
                return Ok(v);
            }
            // SAFETY: `rt_string_new(const uint8_t *, size_t)`: pointer and length come from
            // the live `&str` `s`, valid for reads of `s.len()` bytes for the whole call; core
            // copies the bytes into a new heap string and keeps no pointer to them.
            checked(rt, unsafe { (h.string_new)(s.as_ptr(), s.len()) }, "a text")?
        }
        Json::Array(items) => {
            // SAFETY: `rt_array_new(size_t)`, prototype checked at load; the capacity is a
            // by-value hint (a huge one gives an Error, CONTRACT §3).
            let a = Pinned::new(rt, checked(rt, unsafe { (h.array_new)(items.len()) }, "an array")?);
            for it in items {
                let v = from_json_at(rt, it, subst, depth + 1)?;
                // SAFETY: `rt_array_push(RtValue, RtValue)` with two live values: `a.v` is pinned by
                // `a`, and `v` was just built and sits on this registered thread's stack, which the
                // collector scans; a non-array target would give an Error, not UB (CONTRACT §3).
                checked(rt, unsafe { (h.array_push)(a.v, v) }, "an array")?;
            }
            a.v
        }
        Json::Object(m) => {
            if m.len() == 1 {
                if let Some(Json::String(hx)) = m.get("$bytes") {
                    let b = unhex(hx)?;
                    // SAFETY: `rt_bytes_new(const uint8_t *, size_t)`: pointer and length of the live
                    // Vec `b`, readable for `b.len()` bytes during the call; core copies them.
                    return checked(rt, unsafe { (h.bytes_new)(b.as_ptr(), b.len()) }, "bytes");
                }
            }
            // SAFETY: `rt_dict_new(void)`, prototype checked at load; no arguments.
            let d = Pinned::new(rt, checked(rt, unsafe { (h.dict_new)() }, "a dict")?);
            for (k, val) in m {
                // SAFETY: pointer and length of the live key `&String` `k`, readable for the whole
                // call; `rt_string_new` copies the bytes.
                let kv = Pinned::new(rt, checked(rt, unsafe { (h.string_new)(k.as_ptr(), k.len()) }, "a dict key")?);
                let vv = from_json_at(rt, val, subst, depth + 1)?;
                // SAFETY: `rt_dict_set(RtValue, RtValue, RtValue)` with live values: `d` and `kv` are
                // pinned, `vv` was just built and is on this thread's scanned stack.
                checked(rt, unsafe { (h.dict_set)(d.v, kv.v, vv) }, "a dict")?;
            }
            d.v
        }
    })
}

/// With arbitrary_precision, an integer literal too large for i64/u64 still has no '.', 'e' or 'E'.
fn is_integer_literal(n: &Number) -> bool {
    let s = n.to_string();
    !s.contains(['.', 'e', 'E'])
}

fn float_json(f: f64) -> Json {
    match Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None => {
            let s = if f.is_nan() {
                "NaN"
            } else if f > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            let mut m = Map::new();
            m.insert("$float".into(), Json::String(s.into()));
            Json::Object(m)
        }
    }
}

fn tagged(key: &str, v: Json) -> Json {
    let mut m = Map::new();
    m.insert(key.into(), v);
    Json::Object(m)
}

/// Reads a value into JSON (see the module doc for the mapping).
pub fn to_json(rt: &Runtime, v: RtValue) -> Json {
    to_json_at(rt, v, 0)
}

fn to_json_at(rt: &Runtime, v: RtValue, depth: usize) -> Json {
    let h = &rt.h;
    match rt.kind_name(v) {
        "nil" => Json::Null,
        "bool" => Json::Bool(Some(v) == rt.abi.special("true")),
        // SAFETY: `rt_int_get(RtValue)` on `v`, which the caller keeps alive (stack or pin)
        // and whose kind was just read as int; prototype checked at load.
        "int" => Json::from(unsafe { (h.int_get)(v) }),
        // SAFETY: `rt_float_get(RtValue) -> double` on the live float `v`; prototype checked
        // at load, so the result is read from the FP return register as returned.
        "float" => float_json(unsafe { (h.float_get)(v) }),
        "string" | "text" => Json::String(rt.text(v).unwrap_or_default()),
        "bytes" => tagged("$bytes", Json::String(hex(&rt.bytes(v).unwrap_or_default()))),
        "array" if depth >= MAX_DEPTH => tagged("$truncated", Json::from(depth)),
        "dict" if depth >= MAX_DEPTH => tagged("$truncated", Json::from(depth)),
        "array" => {
            // SAFETY: `rt_array_len(RtValue)` on the live array `v` (kind checked above).
            let n = unsafe { (h.array_len)(v) };
            // SAFETY: `rt_array_get(RtValue, size_t)` on the live array `v`; an index past a
            // length changed meanwhile gives an Error value, not an out-of-bounds read. The
            // element stays reachable from `v` while it is converted.
            Json::Array((0..n).map(|i| to_json_at(rt, unsafe { (h.array_get)(v, i) }, depth + 1)).collect())
        }
        "dict" => {
            // SAFETY: `rt_dict_len(RtValue)` on the live dict `v` (kind checked above).
            let n = unsafe { (h.dict_len)(v) };
            let mut m = Map::new();
            for i in 0..n {
                // SAFETY: `rt_dict_key_at(RtValue, size_t)` on the live dict `v`; a stale index gives
                // an Error value. The key stays reachable from `v`.
                let k = unsafe { (h.dict_key_at)(v, i) };
                let key = match rt.text(k) {
                    Some(s) => s,
                    None => to_json_at(rt, k, depth + 1).to_string(),
                };
                // SAFETY: as for the key: `rt_dict_value_at` on the live dict `v`, index checked by core.
                m.insert(key, to_json_at(rt, unsafe { (h.dict_value_at)(v, i) }, depth + 1));
            }
            Json::Object(m)
        }
        "error" => match rt.error_of(v) {
            Some(e) => {
                let mut m = Map::new();
                m.insert("code".into(), Json::from(e.code));
                m.insert("name".into(), Json::String(e.name));
                m.insert("message".into(), Json::String(e.message));
                if let Some(d) = e.details {
                    m.insert("details".into(), d);
                }
                tagged("$error", Json::Object(m))
            }
            None => tagged("$error", Json::Null),
        },
        "handle" => {
            let ty = rt
                .call("rt_handle_type", &[v])
                .ok()
                .and_then(|t| rt.text(t))
                .unwrap_or_else(|| "?".to_string());
            tagged("$handle", Json::String(ty))
        }
        other => tagged("$kind", Json::String(other.to_string())),
    }
}

/// JSON for display, cut to `max` characters.
pub fn short(j: &Json, max: usize) -> String {
    let s = j.to_string();
    if s.chars().count() <= max {
        s
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        assert_eq!(hex(&[0, 0xff, 0x10]), "00ff10");
        assert_eq!(unhex("00FF10").expect("hex"), vec![0, 0xff, 0x10]);
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").expect_err("not hex").contains("position 0"));
    }

    #[test]
    fn bare_words_are_strings() {
        assert_eq!(parse_arg("abc"), Json::String("abc".into()));
        assert_eq!(parse_arg("/etc/passwd"), Json::String("/etc/passwd".into()));
        assert_eq!(parse_arg("12"), Json::from(12));
        assert_eq!(parse_arg("\"12\""), Json::String("12".into()));
        assert_eq!(parse_arg("null"), Json::Null);
    }
}
