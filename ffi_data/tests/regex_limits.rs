//! Issue 9 §5: a huge pattern is refused by its length before it is parsed.
//! Its own test binary, so the peak-memory figure is this test's alone.
//! Run with `--nocapture` to see the time and memory it measured.

use ffi_data::regex::*;
use ffi_sdk::testing::{err, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::time::Instant;

fn dict(pairs: &[(&str, Value)]) -> ffi_sdk::abi::RtValue {
    ffi_sdk::testing::dict(pairs)
}

/// Peak resident set size of this process so far, in KiB (VmHWM).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn ten_megabyte_pattern_is_refused_by_length_first() {
    let pattern = "a".repeat(10_000_000);
    let arg = text(&pattern); // the host's string value, made before measuring
    let before = peak_rss_kib();
    let t = Instant::now();
    let v = rt_regex_new(arg, NIL);
    let took = t.elapsed();
    let grew = peak_rss_kib().saturating_sub(before);
    eprintln!("rt_regex_new(10 MB pattern): {took:?}, peak RSS grew by {} KiB", grew);
    let (c, m) = err(v);
    assert_eq!(c, Code::LimitExceeded, "{m}");
    assert!(m.starts_with("rt_regex_new:"), "{m}");
    assert!(m.contains("max_pattern_len"), "{m}");
    // The refusal is a length comparison: no parse, no copy of the pattern
    // (before the fix: 8 s and +1 GB here; bounds generous for a debug build).
    assert!(took.as_millis() < 200, "took {took:?}");
    assert!(grew < 16 * 1024, "peak RSS grew by {grew} KiB");
}

#[test]
fn pattern_length_limit_is_an_option() {
    let o = |n: i64| dict(&[("max_pattern_len", Value::int(n))]);
    // At the limit compiles; one byte over is LimitExceeded with the limit in details.
    let r = ok(rt_regex_new(text("abcdefghij"), o(10))).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("xabcdefghijx"))).as_bool(), Some(true));
    let v = rt_regex_new(text("abcdefghijk"), o(10));
    assert_eq!(ffi_sdk::testing::details(v).get("limit").as_int(), Some(10));
    let (c, m) = err(v);
    assert_eq!(c, Code::LimitExceeded, "{m}");
    assert!(m.starts_with("rt_regex_new:") && m.contains("11 bytes"), "{m}");
    // Length counts bytes (UTF-8), not characters.
    assert_eq!(err(rt_regex_new(text("ééééé."), o(10))).0, Code::LimitExceeded);
    // Bad values of the option are InvalidArgument.
    assert_eq!(err(rt_regex_new(text("a"), o(0))).0, Code::InvalidArgument);
    assert_eq!(err(rt_regex_new(text("a"), dict(&[("max_pattern_len", Value::text("big"))]))).0, Code::InvalidArgument);
    // Raising the length limit lets a long pattern through to the size limit,
    // which still applies to what it compiles to.
    let long = "a".repeat(2000);
    let (c, m) = err(rt_regex_new(
        text(&long),
        dict(&[("max_pattern_len", Value::int(4000)), ("size_limit", Value::int(1000))]),
    ));
    assert_eq!(c, Code::LimitExceeded);
    assert!(m.contains("size_limit"), "{m}");
    // A moderately long pattern compiles under the defaults.
    let words: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    let r = ok(rt_regex_new(text(&format!(r"\b(?:{})\b", words.join("|"))), NIL)).raw();
    assert_eq!(ok(rt_regex_is_match(r, text("say w4999 now"))).as_bool(), Some(true));
}
