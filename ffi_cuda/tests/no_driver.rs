//! Without a CUDA driver (every CI machine): `rt_cuda_device_count()` is 0
//! and each of the other 17 functions is Error Unsupported "no CUDA driver
//! (libcuda.so.1 not found)", never a panic. Skipped (with the reason
//! printed) where a driver is installed: tests/gpu/run.sh covers that case.

#![deny(clippy::undocumented_unsafe_blocks)]

#![cfg(feature = "cuda")]

use ffi_cuda::cuda::*;
use ffi_sdk::testing::{bytes, dict, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};

fn skip() -> bool {
    if driver_present() {
        eprintln!("skipped: a CUDA driver is installed here; the no-driver behaviour is only checked without one");
        return true;
    }
    false
}

#[test]
fn device_count_is_zero_without_a_driver() {
    if skip() {
        return;
    }
    assert_eq!(ok(rt_cuda_device_count()).as_int(), Some(0));
}

#[test]
fn every_other_function_is_unsupported() {
    if skip() {
        return;
    }
    // A handle argument cannot be made without a driver: nil, an int or any
    // value stands in for it and the answer is still Unsupported.
    let h = NIL;
    let other = int(7);
    let arr = Value::array(0).raw();
    let calls: Vec<(&str, u64)> = vec![
        ("rt_cuda_device_get", rt_cuda_device_get()),
        ("rt_cuda_device_set", rt_cuda_device_set(int(0))),
        ("rt_cuda_device_name", rt_cuda_device_name(NIL)),
        ("rt_cuda_device_name", rt_cuda_device_name(int(0))),
        ("rt_cuda_device_memory", rt_cuda_device_memory(NIL)),
        ("rt_cuda_malloc", rt_cuda_malloc(int(1024))),
        ("rt_cuda_free", rt_cuda_free(h)),
        ("rt_cuda_memcpy_h2d", rt_cuda_memcpy_h2d(h, bytes(b"abc"), NIL)),
        ("rt_cuda_memcpy_d2h", rt_cuda_memcpy_d2h(other, NIL, NIL)),
        ("rt_cuda_memcpy_d2d", rt_cuda_memcpy_d2d(h, h, NIL)),
        ("rt_cuda_stream_create", rt_cuda_stream_create()),
        ("rt_cuda_stream_sync", rt_cuda_stream_sync(h)),
        ("rt_cuda_stream_destroy", rt_cuda_stream_destroy(h)),
        ("rt_cuda_event_create", rt_cuda_event_create(NIL)),
        ("rt_cuda_event_create", rt_cuda_event_create(dict(&[("timing", Value::FALSE)]))),
        ("rt_cuda_event_record", rt_cuda_event_record(h, NIL)),
        ("rt_cuda_event_sync", rt_cuda_event_sync(h)),
        ("rt_cuda_event_elapsed", rt_cuda_event_elapsed(h, h)),
        ("rt_cuda_launch_kernel", rt_cuda_launch_kernel(text(".entry k()"), text("k"), int(1), int(1), arr, NIL)),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (name, r) in calls {
        let (code, msg) = err(r);
        assert_eq!(code, Code::Unsupported, "{name}: {msg}");
        assert_eq!(msg, format!("{name}: no CUDA driver (libcuda.so.1 not found)"));
        seen.insert(name);
    }
    assert_eq!(seen.len(), 17, "all 17 functions besides rt_cuda_device_count");
}

#[test]
fn registry_lists_18_functions_with_capability_gpu() {
    let reg: serde_json::Value = serde_json::from_str(registry_text().as_str()).unwrap();
    let fns: Vec<&serde_json::Value> = reg["functions"]
        .as_array()
        .or_else(|| reg.as_array())
        .expect("registry is a list")
        .iter()
        .filter(|e| e["domain"] == "cuda")
        .collect();
    assert_eq!(fns.len(), 18, "the plan's 18 functions");
    for f in fns {
        assert_eq!(f["capability"], "gpu", "{}", f["name"]);
    }
}

fn registry_text() -> String {
    extern "C" {
        fn rt_registry_json() -> u64;
    }
    // SAFETY: the declaration matches core's export `RtValue rt_registry_json(void)` (RtValue
    // is a u64); it takes no arguments and returns a new text value, read right away.
    ok(unsafe { rt_registry_json() }).as_text().unwrap().to_string()
}
