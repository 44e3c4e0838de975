//! On a CUDA machine (tests/torch/run.sh gpu, RT_REQUIRE_GPU=1 makes a missing
//! device fail): tensors, a matmul and a training step on "cuda" match the CPU.
//! Skipped, saying so, without a device.
#![cfg(feature = "pytorch")]

mod common;
use common::*;
use ffi_sdk::testing::{int, ok, text, NIL};
use ffi_sdk::Value;
use ffi_torch::nn::*;
use ffi_torch::tensor::*;

fn gpu() -> bool {
    if matches!(cuda_devices(), Ok(n) if *n > 0) {
        return true;
    }
    assert!(std::env::var("RT_REQUIRE_GPU").as_deref() != Ok("1"), "RT_REQUIRE_GPU=1 but libtorch sees no CUDA device");
    eprintln!("skipped: no CUDA device (tests/torch/run.sh gpu on a GPU machine)");
    false
}

#[test]
fn cuda_matches_cpu() {
    if !gpu() {
        return;
    }
    let a = t(&data(1, &[64, 32]));
    let b = t(&data(2, &[32, 16]));
    let cpu = values(ok(rt_tensor_matmul(a, b)).raw());
    let ga = ok(rt_tensor_to_device(a, text("cuda"))).raw();
    let gb = ok(rt_tensor_to_device(b, text("cuda:0"))).raw();
    assert_eq!(ok(rt_tensor_device(ga)).as_text(), Some("cuda:0"));
    let g = ok(rt_tensor_matmul(ga, gb)).raw();
    assert_close("cuda matmul", &values(g), &cpu, 1e-3);
    let (c, m) = ffi_sdk::testing::err(rt_tensor_matmul(a, gb));
    assert_eq!(c, ffi_sdk::Code::InvalidArgument, "{m}");
    let z = ok(rt_tensor_zeros(arr(&[int(3)]), dict(&[("device", Value::text("cuda"))]))).raw();
    assert_eq!(values(z), serde_json::json!([0.0, 0.0, 0.0]));
    // A training step on the GPU.
    let store = ok(rt_torch_store_new(dict(&[("device", Value::text("cuda"))]))).raw();
    let opt = ok(rt_optim_sgd(store, Value::float(0.1).raw(), NIL)).raw();
    let x = ok(rt_tensor_to_device(t(&data(3, &[8, 4])), text("cuda"))).raw();
    let mut last = f64::MAX;
    for _ in 0..20 {
        ok(rt_optim_zero_grad(opt));
        let y = ok(rt_nn_linear(store, text("fc"), x, int(2), NIL)).raw();
        let loss = ok(rt_tensor_mean(ok(rt_tensor_mul(y, y)).raw(), NIL)).raw();
        ok(rt_tensor_backward(loss));
        ok(rt_optim_step(opt));
        last = flat(&values(loss))[0];
    }
    assert!(last < 0.5, "loss {last}");
}

/// Prints `BENCH cuda matmul`: 4096x4096 float32 matmuls through the library
/// and through tch directly, synchronised, in one run.
#[test]
fn cuda_matmul_bench() {
    if !gpu() {
        return;
    }
    let n = 4096i64;
    let opts = || dict(&[("device", Value::text("cuda")), ("seed", Value::int(1))]);
    let a = ok(rt_tensor_randn(arr(&[int(n), int(n)]), opts())).raw();
    let b = ok(rt_tensor_randn(arr(&[int(n), int(n)]), opts())).raw();
    let ta = tch::Tensor::f_randn([n, n], (tch::Kind::Float, tch::Device::Cuda(0))).unwrap();
    let tb = tch::Tensor::f_randn([n, n], (tch::Kind::Float, tch::Device::Cuda(0))).unwrap();
    let reps = 20;
    let time = |f: &mut dyn FnMut()| {
        f();
        tch::Cuda::synchronize(0);
        let t = std::time::Instant::now();
        for _ in 0..reps {
            f();
        }
        tch::Cuda::synchronize(0);
        t.elapsed().as_secs_f64() / reps as f64
    };
    let lib = time(&mut || {
        ffi_sdk::testing::close(ok(rt_tensor_matmul(a, b)).raw());
    });
    let direct = time(&mut || {
        let _ = ta.f_matmul(&tb).unwrap();
    });
    let tflops = |s: f64| 2.0 * (n as f64).powi(3) / s / 1e12;
    println!("BENCH cuda matmul {n}x{n} f32: library {:.3} ms ({:.1} TFLOP/s), tch {:.3} ms ({:.1} TFLOP/s), ratio {:.3}", lib * 1e3, tflops(lib), direct * 1e3, tflops(direct), lib / direct);
}
