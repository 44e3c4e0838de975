//! Shared helpers of the torch tests: values in and out, and PyTorch itself
//! (the same 2.13.0 build, from Python) as the oracle.
#![allow(dead_code)]

use ffi_sdk::testing::{ok, NIL};
use ffi_sdk::Value;
use ffi_torch::tensor::*;
use serde_json::Value as J;
use std::path::PathBuf;

/// An array value of raw values.
pub fn arr(items: &[u64]) -> u64 {
    let a = Value::array(items.len());
    for i in items {
        a.push(Value::from_raw(*i));
    }
    a.raw()
}

/// A JSON value as a runtime value (nested arrays of numbers).
pub fn val(j: &J) -> Value {
    match j {
        J::Array(a) => {
            let out = Value::array(a.len());
            for x in a {
                out.push(val(x));
            }
            out
        }
        J::Bool(b) => Value::bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) if !n.to_string().contains('.') && !n.to_string().contains('e') => Value::int(i),
            _ => Value::float(n.as_f64().unwrap()),
        },
        J::Null => Value::NIL,
        other => panic!("not data: {other}"),
    }
}

/// A runtime value (nested arrays of numbers) as JSON.
pub fn json(v: Value) -> J {
    if v.is_array() {
        return J::Array(v.items().map(json).collect());
    }
    if let Some(i) = v.as_int() {
        return J::from(i);
    }
    if let Some(f) = v.as_float() {
        return J::from(f);
    }
    if let Some(b) = v.as_bool() {
        return J::from(b);
    }
    panic!("not data: {}", v.describe())
}

/// A float32 tensor from JSON data.
pub fn t(j: &J) -> u64 {
    ok(rt_tensor_from_data(val(j).raw(), ffi_sdk::testing::dict(&[("dtype", Value::text("float32"))]))).raw()
}

/// A tensor's values as JSON.
pub fn values(t: u64) -> J {
    json(ok(rt_tensor_values_get(t)))
}

/// Flattened numbers of a JSON value.
pub fn flat(j: &J) -> Vec<f64> {
    match j {
        J::Array(a) => a.iter().flat_map(flat).collect(),
        J::Number(n) => vec![n.as_f64().unwrap()],
        J::Bool(b) => vec![*b as i64 as f64],
        other => panic!("not data: {other}"),
    }
}

/// The shape of nested JSON arrays.
pub fn shape_of(j: &J) -> Vec<usize> {
    match j {
        J::Array(a) => {
            let mut s = vec![a.len()];
            if let Some(f) = a.first() {
                s.extend(shape_of(f));
            }
            s
        }
        _ => vec![],
    }
}

/// Same shape and every element within `tol` (absolute + relative).
pub fn assert_close(what: &str, got: &J, want: &J, tol: f64) {
    assert_eq!(shape_of(got), shape_of(want), "{what}: shapes differ: got {got}, want {want}");
    for (i, (g, w)) in flat(got).iter().zip(flat(want).iter()).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}[{i}]: got {g}, PyTorch {w} (tolerance {tol})");
    }
}

/// Deterministic float32-representable numbers in [-2, 2).
pub fn numbers(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f64 / (1u64 << 24) as f64 * 4.0 - 2.0) as f32 as f64
        })
        .collect()
}

/// Nested JSON of `shape` from `data`.
pub fn nested(shape: &[usize], data: &[f64]) -> J {
    if shape.is_empty() {
        return J::from(data[0]);
    }
    let step: usize = shape[1..].iter().product();
    J::Array((0..shape[0]).map(|k| nested(&shape[1..], &data[k * step..(k + 1) * step])).collect())
}

/// A random float tensor's data of `shape`.
pub fn data(seed: u64, shape: &[usize]) -> J {
    nested(shape, &numbers(seed, shape.iter().product()))
}

/// The pinned PyTorch directory (tests/torch/setup.sh): SIMPLE_RT_TORCH_DIR,
/// else the parent of the LIBTORCH this crate was built with.
pub fn torch_dir() -> PathBuf {
    if let Ok(d) = std::env::var("SIMPLE_RT_TORCH_DIR") {
        return PathBuf::from(d);
    }
    let lt = std::env::var("LIBTORCH").ok().or(option_env!("LIBTORCH").map(String::from)).expect("LIBTORCH (tests/torch/setup.sh)");
    PathBuf::from(lt).parent().unwrap().to_path_buf()
}

/// Runs `script` in Python with the pinned torch (and the CUDA libraries its
/// Python module needs, from tests/torch/setup.sh --oracle), `input` as JSON on
/// stdin; returns the JSON it prints.
pub fn python(script: &str, input: &J) -> J {
    use std::io::Write;
    let dir = torch_dir();
    let oracle = PathBuf::from(format!("{}-oracle", dir.display()));
    assert!(
        oracle.join(".complete").exists(),
        "the Python oracle is not installed: run tests/torch/setup.sh --oracle ({} missing)",
        oracle.display()
    );
    let mut libs = vec![dir.join("torch/lib")];
    for base in [&oracle, &dir] {
        let nv = base.join("nvidia");
        if let Ok(rd) = std::fs::read_dir(&nv) {
            for e in rd.flatten() {
                let lib = e.path().join("lib");
                if lib.is_dir() {
                    libs.push(lib);
                }
            }
        }
    }
    let ld = libs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":");
    let mut child = std::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .args(["-c", script])
        .env("PYTHONPATH", format!("{}:{}", dir.display(), oracle.display()))
        .env("LD_LIBRARY_PATH", ld)
        .env("CUDA_VISIBLE_DEVICES", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

pub use ffi_sdk::testing::dict;
pub const NONE: u64 = NIL;
