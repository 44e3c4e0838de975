//! Capabilities, in a child run (a narrowed policy is for good): `gpu` is
//! needed only for CUDA devices (CPU work goes on without it), and
//! checkpoints go through the scoped fs.write / fs.read checks.
#![cfg(feature = "pytorch")]

mod common;
use common::*;
use ffi_sdk::testing::{err, in_child, int, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_torch::nn::*;
use ffi_torch::tensor::*;

#[test]
fn gpu_and_files_need_their_capabilities() {
    in_child("gpu_and_files_need_their_capabilities", || {
        let dir = std::env::temp_dir().join(format!("rt-torch-caps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let allowed = dir.to_str().unwrap().to_string();
        restrict(&format!("gpu=false;fs.write={allowed};fs.read={allowed}"));
        // CPU: no capability needed.
        let a = ok(rt_tensor_ones(arr(&[int(2)]), NIL)).raw();
        assert_eq!(values(ok(rt_tensor_add(a, int(1))).raw()), serde_json::json!([2.0, 2.0]));
        // CUDA: CapabilityDenied before anything else.
        for (name, r) in [
            ("rt_tensor_zeros", rt_tensor_zeros(arr(&[int(2)]), dict(&[("device", Value::text("cuda"))]))),
            ("rt_tensor_to_device", rt_tensor_to_device(a, text("cuda:0"))),
            ("rt_torch_store_new", rt_torch_store_new(dict(&[("device", Value::text("cuda"))]))),
        ] {
            let (c, m) = err(r);
            assert_eq!(c, Code::CapabilityDenied, "{name}: {m}");
            assert!(m.starts_with(name) && m.contains("gpu"), "{m}");
        }
        // Files: inside the scope yes, outside no.
        let store = ok(rt_torch_store_new(NIL)).raw();
        ok(rt_nn_linear(store, text("fc"), ok(rt_tensor_ones(arr(&[int(1), int(3)]), NIL)).raw(), int(2), NIL));
        let inside = dir.join("m.ot");
        ok(rt_model_save(store, text(inside.to_str().unwrap())));
        ok(rt_model_load(store, text(inside.to_str().unwrap())));
        let (c, m) = err(rt_model_save(store, text("/tmp/rt-torch-outside.ot")));
        assert_eq!(c, Code::CapabilityDenied, "{m}");
        let (c, m) = err(rt_model_load(store, text("/etc/hostname")));
        assert_eq!(c, Code::CapabilityDenied, "{m}");
        let _ = std::fs::remove_dir_all(&dir);
    });
}
