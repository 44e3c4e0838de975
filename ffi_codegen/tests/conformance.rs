//! Conformance: Cranelift's own x86_64 run tests (../shared/conformance/cranelift-runtests/)
//! through the library's exports. For each file and each of its `target x86_64 <flags>`
//! lines (with the `set` lines before it): a JIT module with those settings
//! (`rt_cranelift_init`), every function compiled (`rt_cranelift_compile_fn`, the whole
//! file's text), every `; run:` line executed through `rt_cranelift_jit_execute` and its
//! results compared bit for bit as Cranelift's runner does.
//!
//! Skipped, and counted with the reason: a target whose flags this CPU lacks (the library
//! refuses it: Unsupported), a file the library reports Unsupported when compiling (the
//! Cranelift backend cannot lower it here), a run line whose signature has a type with no
//! value kind (i128, f16, f128: Unsupported). Any other failure fails the test.

use cranelift_codegen::data_value::DataValue;
use cranelift_codegen::ir::{immediates::Ieee32, immediates::Ieee64, types, Type};
use cranelift_reader::{parse_run_command, parse_test, Comparison, ParseOptions, RunCommand};
use ffi_codegen::convert::{f32_bits_from_f64, f64_from_f32_bits};
use ffi_codegen::module::*;
use ffi_sdk::testing::{close, dict, text};
use ffi_sdk::{Code, Root, Value};
use std::collections::BTreeMap;

fn suite_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/cranelift-runtests")
}

/// The x86_64 configurations of a file: the settings each `target x86_64` line runs with.
fn configs(src: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut sets: Vec<(String, String)> = Vec::new();
    let mut out = Vec::new();
    for line in src.lines() {
        let l = line.trim();
        if let Some(rest) = l.strip_prefix("set ") {
            for tok in rest.split_whitespace() {
                match tok.split_once('=') {
                    Some((k, v)) => sets.push((k.into(), v.into())),
                    None => sets.push((tok.into(), "true".into())),
                }
            }
        } else if let Some(rest) = l.strip_prefix("target ") {
            let mut toks = rest.split_whitespace();
            if toks.next() != Some("x86_64") {
                continue;
            }
            let mut flags = sets.clone();
            for tok in toks {
                match tok.split_once('=') {
                    Some((k, v)) => flags.push((k.into(), v.into())),
                    None => flags.push((tok.into(), "true".into())),
                }
            }
            out.push((l.to_string(), flags));
        } else if l.starts_with("function") {
            break;
        }
    }
    out
}

fn lanes_to_value(ty: Type, bytes: &[u8]) -> Value {
    let lt = ty.lane_type();
    let w = lt.bytes() as usize;
    let a = Value::array(ty.lane_count() as usize);
    for l in 0..ty.lane_count() as usize {
        let b = &bytes[l * w..(l + 1) * w];
        let mut v = [0u8; 8];
        v[..w].copy_from_slice(b);
        let raw = u64::from_le_bytes(v);
        let item = match lt {
            types::F32 => Value::float(f64_from_f32_bits(raw as u32)),
            types::F64 => Value::float(f64::from_bits(raw)),
            _ => {
                let sh = 64 - 8 * w as u32;
                Value::int(((raw << sh) as i64) >> sh)
            }
        };
        a.push(item);
    }
    a
}

fn to_value(d: &DataValue, ty: Type) -> Value {
    match d {
        DataValue::I8(i) => Value::int(*i as i64),
        DataValue::I16(i) => Value::int(*i as i64),
        DataValue::I32(i) => Value::int(*i as i64),
        DataValue::I64(i) => Value::int(*i),
        DataValue::F32(f) => Value::float(f64_from_f32_bits(f.bits())),
        DataValue::F64(f) => Value::float(f64::from_bits(f.bits())),
        DataValue::V128(b) => lanes_to_value(ty, b),
        DataValue::V64(b) => lanes_to_value(ty, b),
        DataValue::V32(b) => lanes_to_value(ty, b),
        DataValue::V16(b) => lanes_to_value(ty, b),
        _ => Value::NIL,
    }
}

fn from_value(v: Value, ty: Type) -> Option<DataValue> {
    if ty.is_vector() {
        let lt = ty.lane_type();
        let w = lt.bytes() as usize;
        let mut bytes = vec![0u8; ty.bytes() as usize];
        for (l, item) in v.items().enumerate() {
            let raw: u64 = match lt {
                types::F32 => f32_bits_from_f64(item.as_float()?) as u64,
                types::F64 => item.as_float()?.to_bits(),
                _ => item.as_int()? as u64,
            };
            bytes[l * w..(l + 1) * w].copy_from_slice(&raw.to_le_bytes()[..w]);
        }
        return Some(match bytes.len() {
            16 => DataValue::V128(bytes.try_into().ok()?),
            8 => DataValue::V64(bytes.try_into().ok()?),
            4 => DataValue::V32(bytes.try_into().ok()?),
            _ => DataValue::V16(bytes.try_into().ok()?),
        });
    }
    Some(match ty {
        types::I8 => DataValue::I8(v.as_int()? as i8),
        types::I16 => DataValue::I16(v.as_int()? as i16),
        types::I32 => DataValue::I32(v.as_int()? as i32),
        types::I64 => DataValue::I64(v.as_int()?),
        types::F32 => DataValue::F32(Ieee32::with_bits(f32_bits_from_f64(v.as_float()?))),
        types::F64 => DataValue::F64(Ieee64::with_bits(v.as_float()?.to_bits())),
        _ => return None,
    })
}

#[derive(Default)]
struct Counts {
    files: usize,
    configs: usize,
    passed: usize,
    failed: Vec<String>,
    skipped_lines: BTreeMap<String, usize>,
    skipped_configs: BTreeMap<String, usize>,
}

fn reason(msg: &str) -> String {
    // Group reasons without the per-file detail.
    let m = msg.split(" (").next().unwrap_or(msg);
    let m = m.split(": inst = ").next().unwrap_or(m);
    m.chars().take(110).collect()
}

fn run_file(path: &std::path::Path, c: &mut Counts) {
    let src = std::fs::read_to_string(path).unwrap();
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let stripped = ffi_codegen::module::strip_preamble(&src);
    let tf = parse_test(&stripped, ParseOptions { default_calling_convention: cranelift_codegen::isa::CallConv::SystemV, ..Default::default() })
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let src_root = Root::new(Value::text(&src));
    for (target, flags) in configs(&src) {
        c.configs += 1;
        let fl = Value::dict();
        for (k, v) in &flags {
            fl.set(k, Value::text(v));
        }
        let m = Value::from_raw(rt_cranelift_init(dict(&[("flags", fl)])));
        if let Some((code, msg)) = m.error() {
            assert_eq!(code, Code::Unsupported, "{file} [{target}]: init failed: {msg}");
            *c.skipped_configs.entry(format!("CPU lacks a feature: {}", reason(&msg))).or_default() += 1;
            continue;
        }
        let mroot = Root::new(m);
        let r = Value::from_raw(rt_cranelift_compile_fn(m.raw(), src_root.get().raw()));
        if let Some((code, msg)) = r.error() {
            if code == Code::Unsupported {
                *c.skipped_configs.entry(format!("compile Unsupported: {}", reason(&msg))).or_default() += 1;
                close(m.raw());
                continue;
            }
            c.failed.push(format!("{file} [{target}]: compile: {} {msg}", code.name()));
            close(m.raw());
            continue;
        }
        for (f, details) in &tf.functions {
            for comment in &details.comments {
                let cmd = match parse_run_command(comment.text, &f.signature) {
                    Ok(Some(cmd)) => cmd,
                    Ok(None) => continue,
                    Err(e) => panic!("{file}: bad run line {}: {e}", comment.text),
                };
                let (inv, expect) = match &cmd {
                    RunCommand::Run(inv, cmp, exp) => (inv, Some((cmp, exp))),
                    RunCommand::Print(inv) => (inv, None),
                };
                // As Cranelift's runner: a run line calls the function it is attached to
                // (a bare `; run` names no function).
                let fname = ffi_codegen::module::func_name(&f.name);
                let sig = &f.signature;
                let args = Value::array(inv.args.len());
                for (i, a) in inv.args.iter().enumerate() {
                    let ty = sig.params.get(i).map(|p| p.value_type).unwrap_or(types::I64);
                    args.push(to_value(a, ty));
                }
                let got = Value::from_raw(rt_cranelift_jit_execute(mroot.get().raw(), text(&fname), args.raw()));
                if let Some((code, msg)) = got.error() {
                    if code == Code::Unsupported {
                        *c.skipped_lines.entry(reason(&msg)).or_default() += 1;
                    } else {
                        c.failed.push(format!("{file} [{target}] {}: {} {msg}", comment.text.trim(), code.name()));
                    }
                    continue;
                }
                let actual: Option<Vec<DataValue>> = match sig.returns.len() {
                    0 => Some(vec![]),
                    1 => from_value(got, sig.returns[0].value_type).map(|d| vec![d]),
                    _ => sig.returns.iter().enumerate().map(|(j, r)| from_value(got.at(j), r.value_type)).collect(),
                };
                let Some(actual) = actual else {
                    c.failed.push(format!("{file} [{target}] {}: result {} does not convert", comment.text.trim(), got.describe()));
                    continue;
                };
                match expect {
                    None => c.passed += 1,
                    Some((cmp, exp)) => {
                        let eq = actual.len() == exp.len() && actual.iter().zip(exp.iter()).all(|(a, b)| a.bitwise_eq(b));
                        let ok = match cmp {
                            Comparison::Equals => eq,
                            Comparison::NotEquals => !eq,
                        };
                        if ok {
                            c.passed += 1;
                        } else {
                            c.failed.push(format!("{file} [{target}] {}: got {actual:?}", comment.text.trim()));
                        }
                    }
                }
            }
        }
        close(m.raw());
    }
}

#[test]
fn cranelift_runtests() {
    let dir = suite_dir();
    let Ok(rd) = std::fs::read_dir(&dir) else {
        println!("conformance suite not found at {}: nothing run", dir.display());
        return;
    };
    let mut files: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "clif")).collect();
    files.sort();
    let mut c = Counts::default();
    for f in &files {
        c.files += 1;
        run_file(f, &mut c);
    }
    let skipped: usize = c.skipped_lines.values().sum();
    let skipped_cfg: usize = c.skipped_configs.values().sum();
    println!("cranelift runtests: {} files, {} x86_64 configurations ({} skipped)", c.files, c.configs, skipped_cfg);
    println!("run lines: {} passed, {} failed, {} skipped", c.passed, c.failed.len(), skipped);
    for (r, n) in &c.skipped_configs {
        println!("  skipped configuration x{n}: {r}");
    }
    for (r, n) in &c.skipped_lines {
        println!("  skipped run line x{n}: {r}");
    }
    for f in c.failed.iter().take(60) {
        println!("  FAILED {f}");
    }
    assert!(c.failed.is_empty(), "{} run lines failed", c.failed.len());
    assert!(c.passed > 0);
}
