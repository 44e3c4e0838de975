//! Bad input for every function: an Error with a code and a message naming
//! the function, never a panic (libtorch's exceptions included). CUDA without
//! a GPU is Error Unsupported; a closed handle is Error Closed.
#![cfg(feature = "pytorch")]

mod common;
use common::*;
use ffi_sdk::testing::{close, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_torch::nn::*;
use ffi_torch::tensor::*;

#[track_caller]
fn expect(name: &str, r: u64, code: Code, part: &str) {
    assert!(Value::from_raw(r).is_error(), "{name}: expected {code:?} ({part}), got {}", Value::from_raw(r).describe());
    let (c, m) = err(r);
    assert_eq!(c, code, "{name}: {m}");
    assert!(m.starts_with(&format!("{name}: ")), "{name}: message does not name the function: {m}");
    assert!(m.contains(part), "{name}: {m:?} lacks {part:?}");
    assert!(!m.contains("Exception raised from"), "{name}: C++ trace left in {m}");
}

fn shape(d: &[i64]) -> u64 {
    arr(&d.iter().map(|x| int(*x)).collect::<Vec<_>>())
}

#[test]
fn every_function_rejects_bad_input() {
    let a = t(&data(1, &[3, 4]));
    let b = t(&data(2, &[2, 5]));
    let i = ok(rt_tensor_from_data(val(&serde_json::json!([1, 2, 3])).raw(), NIL)).raw();
    let cuda = || dict(&[("device", Value::text("cuda"))]);
    // creation
    expect("rt_tensor_zeros", rt_tensor_zeros(shape(&[2, -1]), NIL), Code::InvalidArgument, "0 or more");
    expect("rt_tensor_zeros", rt_tensor_zeros(int(3), NIL), Code::TypeMismatch, "array");
    expect("rt_tensor_zeros", rt_tensor_zeros(shape(&[2]), dict(&[("dtype", Value::text("float128"))])), Code::InvalidArgument, "unknown dtype");
    expect("rt_tensor_zeros", rt_tensor_zeros(shape(&[2]), dict(&[("colour", Value::TRUE)])), Code::InvalidArgument, "unknown option");
    expect("rt_tensor_ones", rt_tensor_ones(arr(&[text("x")]), NIL), Code::TypeMismatch, "shape[0]");
    expect("rt_tensor_ones", rt_tensor_ones(shape(&[1 << 40, 1 << 20]), NIL), Code::LimitExceeded, "");
    expect("rt_tensor_randn", rt_tensor_randn(shape(&[2]), dict(&[("dtype", Value::text("int64"))])), Code::InvalidArgument, "");
    expect("rt_tensor_randn", rt_tensor_randn(shape(&[2]), dict(&[("device", Value::text("tpu"))])), Code::InvalidArgument, "device must be");
    expect("rt_tensor_from_data", rt_tensor_from_data(val(&serde_json::json!([[1, 2], [3]])).raw(), NIL), Code::InvalidArgument, "ragged");
    expect("rt_tensor_from_data", rt_tensor_from_data(val(&serde_json::json!([[1, 2], 3])).raw(), NIL), Code::InvalidArgument, "ragged");
    expect("rt_tensor_from_data", rt_tensor_from_data(arr(&[text("a")]), NIL), Code::TypeMismatch, "data[0]");
    expect("rt_tensor_from_data", rt_tensor_from_data(text("abc"), NIL), Code::TypeMismatch, "nested arrays");
    expect("rt_tensor_from_data", rt_tensor_from_data(Value::bytes(&[0; 7]).raw(), NIL), Code::InvalidArgument, "shape option");
    expect(
        "rt_tensor_from_data",
        rt_tensor_from_data(Value::bytes(&[0; 7]).raw(), dict(&[("shape", Value::from_raw(shape(&[2])))])),
        Code::InvalidArgument,
        "needs 8 bytes",
    );
    expect(
        "rt_tensor_from_data",
        rt_tensor_from_data(Value::bytes(&[0, 2]).raw(), dict(&[("shape", Value::from_raw(shape(&[2]))), ("dtype", Value::text("bool"))])),
        Code::InvalidArgument,
        "0 or 1",
    );
    let mut deep = Value::int(1);
    for _ in 0..70 {
        deep = Value::from_raw(arr(&[deep.raw()]));
    }
    expect("rt_tensor_from_data", rt_tensor_from_data(deep.raw(), NIL), Code::LimitExceeded, "deeper than 64");
    // Shared sub-arrays describing 2e10 elements: refused before any walk or allocation.
    let wide = Value::from_raw(arr(&[arr(&(0..100_000).map(int).collect::<Vec<_>>())]));
    let two = arr(&[arr(&vec![wide.raw(); 100_000]), int(1)]);
    expect("rt_tensor_from_data", rt_tensor_from_data(two, NIL), Code::LimitExceeded, "pass bytes");
    // Devices: no CUDA here (or capability), never a panic.
    for (name, r) in [
        ("rt_tensor_zeros", rt_tensor_zeros(shape(&[2]), cuda())),
        ("rt_tensor_ones", rt_tensor_ones(shape(&[2]), cuda())),
        ("rt_tensor_randn", rt_tensor_randn(shape(&[2]), cuda())),
        ("rt_tensor_from_data", rt_tensor_from_data(arr(&[int(1)]), cuda())),
        ("rt_tensor_to_device", rt_tensor_to_device(a, text("cuda:0"))),
        ("rt_torch_store_new", rt_torch_store_new(cuda())),
    ] {
        if !matches!(cuda_devices(), Ok(n) if *n > 0) {
            expect(name, r, Code::Unsupported, "no CUDA device");
        }
    }
    expect("rt_tensor_to_device", rt_tensor_to_device(a, text("cuda:x")), Code::InvalidArgument, "device must be");
    // arithmetic: libtorch's messages
    expect("rt_tensor_add", rt_tensor_add(a, b), Code::InvalidArgument, "must match");
    expect("rt_tensor_add", rt_tensor_add(a, text("1")), Code::TypeMismatch, "tensor handle or a number");
    expect("rt_tensor_sub", rt_tensor_sub(a, b), Code::InvalidArgument, "[3, 4] - [2, 5]");
    let bools = ok(rt_tensor_from_data(val(&serde_json::json!([true])).raw(), NIL)).raw();
    expect("rt_tensor_sub", rt_tensor_sub(bools, bools), Code::InvalidArgument, "bool");
    expect("rt_tensor_mul", rt_tensor_mul(a, b), Code::InvalidArgument, "");
    expect("rt_tensor_div", rt_tensor_div(a, NIL), Code::TypeMismatch, "");
    expect("rt_tensor_matmul", rt_tensor_matmul(a, a), Code::InvalidArgument, "cannot be multiplied");
    expect("rt_tensor_matmul", rt_tensor_matmul(a, i), Code::InvalidArgument, "");
    expect("rt_tensor_transpose", rt_tensor_transpose(a, int(0), int(5)), Code::InvalidArgument, "out of range");
    expect("rt_tensor_reshape", rt_tensor_reshape(a, shape(&[5])), Code::InvalidArgument, "invalid for input of size 12");
    expect("rt_tensor_reshape", rt_tensor_reshape(a, shape(&[-2, 6])), Code::InvalidArgument, "0 or more");
    expect("rt_tensor_sum", rt_tensor_sum(a, dict(&[("dims", Value::int(7))])), Code::InvalidArgument, "out of range");
    expect("rt_tensor_sum", rt_tensor_sum(a, dict(&[("dims", Value::text("x"))])), Code::InvalidArgument, "dims");
    expect("rt_tensor_mean", rt_tensor_mean(i, NIL), Code::InvalidArgument, "dtype");
    // autograd
    expect("rt_tensor_backward", rt_tensor_backward(a), Code::InvalidArgument, "does not require grad");
    let g = ok(rt_tensor_randn(shape(&[3]), dict(&[("requires_grad", Value::TRUE)]))).raw();
    expect("rt_tensor_backward", rt_tensor_backward(ok(rt_tensor_mul(g, int(2))).raw()), Code::InvalidArgument, "scalar outputs");
    expect("rt_tensor_requires_grad", rt_tensor_requires_grad(i, Value::TRUE.raw()), Code::InvalidArgument, "floating point");
    expect("rt_tensor_grad", rt_tensor_grad(int(1)), Code::TypeMismatch, "tensor");
    expect("rt_tensor_shape", rt_tensor_shape(NIL), Code::TypeMismatch, "tensor");
    expect("rt_tensor_dtype", rt_tensor_dtype(text("t")), Code::TypeMismatch, "tensor");
    expect("rt_tensor_device", rt_tensor_device(int(0)), Code::TypeMismatch, "tensor");
    expect("rt_tensor_values_get", rt_tensor_values_get(NIL), Code::TypeMismatch, "tensor");
    expect("rt_tensor_bytes_get", rt_tensor_bytes_get(NIL), Code::TypeMismatch, "tensor");
    // layers
    let s = ok(rt_torch_store_new(NIL)).raw();
    expect("rt_torch_store_new", rt_torch_store_new(dict(&[("device", Value::text("gpu"))])), Code::InvalidArgument, "device must be");
    expect("rt_nn_linear", rt_nn_linear(s, text("a.b"), a, int(2), NIL), Code::InvalidArgument, "layer name");
    expect("rt_nn_linear", rt_nn_linear(s, text("fc"), a, int(0), NIL), Code::InvalidArgument, "out_features");
    ok(rt_nn_linear(s, text("fc"), a, int(2), NIL));
    expect("rt_nn_linear", rt_nn_linear(s, text("fc"), b, int(2), NIL), Code::InvalidArgument, "fc.weight");
    expect("rt_nn_linear", rt_nn_linear(s, text("fc2"), i, int(2), NIL), Code::InvalidArgument, "");
    expect("rt_nn_linear", rt_nn_linear(a, text("fc"), a, int(2), NIL), Code::TypeMismatch, "torch_store");
    expect("rt_nn_conv2d", rt_nn_conv2d(s, text("cv"), a, int(2), int(3), NIL), Code::InvalidArgument, "[N, C, H, W]");
    let img = ok(rt_tensor_zeros(shape(&[1, 1, 2, 2]), NIL)).raw();
    expect("rt_nn_conv2d", rt_nn_conv2d(s, text("cv"), img, int(2), int(3), NIL), Code::InvalidArgument, "");
    expect("rt_nn_conv2d", rt_nn_conv2d(s, text("cv2"), img, int(2), int(0), NIL), Code::InvalidArgument, "kernel");
    let one = ok(rt_tensor_zeros(shape(&[1, 3]), NIL)).raw();
    expect("rt_nn_batch_norm", rt_nn_batch_norm(s, text("bn"), one, NIL), Code::InvalidArgument, "more than 1 value per channel");
    expect("rt_nn_batch_norm", rt_nn_batch_norm(s, text("bn1"), ok(rt_tensor_zeros(shape(&[3]), NIL)).raw(), NIL), Code::InvalidArgument, "at least 2");
    expect("rt_nn_layer_norm", rt_nn_layer_norm(s, text("ln"), a, dict(&[("dims", Value::int(3))])), Code::InvalidArgument, "dims");
    expect("rt_nn_relu", rt_nn_relu(NIL), Code::TypeMismatch, "");
    expect("rt_nn_sigmoid", rt_nn_sigmoid(text("x")), Code::TypeMismatch, "tensor");
    expect("rt_nn_relu", rt_nn_relu(bools), Code::InvalidArgument, "Bool");
    expect("rt_nn_softmax", rt_nn_softmax(a, int(4)), Code::InvalidArgument, "out of range");
    expect("rt_nn_dropout", rt_nn_dropout(a, dict(&[("p", Value::float(1.5))])), Code::InvalidArgument, "between 0 and 1");
    // optimizers
    expect("rt_optim_sgd", rt_optim_sgd(s, Value::float(-0.1).raw(), NIL), Code::InvalidArgument, "lr");
    expect("rt_optim_sgd", rt_optim_sgd(s, Value::float(0.1).raw(), dict(&[("nesterov", Value::TRUE)])), Code::InvalidArgument, "nesterov");
    expect("rt_optim_adam", rt_optim_adam(s, Value::float(0.1).raw(), dict(&[("beta1", Value::float(1.0))])), Code::InvalidArgument, "below 1");
    expect("rt_optim_adam", rt_optim_adam(s, text("fast"), NIL), Code::TypeMismatch, "");
    expect("rt_optim_step", rt_optim_step(s), Code::TypeMismatch, "torch_optimizer");
    expect("rt_optim_zero_grad", rt_optim_zero_grad(NIL), Code::TypeMismatch, "torch_optimizer");
    // loader
    expect("rt_dataloader_new", rt_dataloader_new(a, b, NIL), Code::InvalidArgument, "3 rows");
    expect("rt_dataloader_new", rt_dataloader_new(a, NIL, dict(&[("batch_size", Value::int(0))])), Code::InvalidArgument, "batch_size");
    let scalar = ok(rt_tensor_from_data(Value::float(1.0).raw(), NIL)).raw();
    expect("rt_dataloader_new", rt_dataloader_new(scalar, NIL, NIL), Code::InvalidArgument, "at least one dimension");
    expect("rt_dataloader_next", rt_dataloader_next(a), Code::TypeMismatch, "torch_dataloader");
    // checkpoints
    expect("rt_model_save", rt_model_save(s, text("")), Code::InvalidArgument, "");
    expect("rt_model_load", rt_model_load(s, text("/definitely/not/here.ot")), Code::NotFound, "");
    // params
    expect("rt_torch_param_get", rt_torch_param_get(s, text("nope.weight")), Code::NotFound, "nope.weight");
    expect("rt_torch_param_list", rt_torch_param_list(a), Code::TypeMismatch, "torch_store");
}

#[test]
fn closed_handles_are_errors() {
    let a = t(&data(1, &[2, 2]));
    let s = ok(rt_torch_store_new(NIL)).raw();
    let o = ok(rt_optim_adam(s, Value::float(0.1).raw(), NIL)).raw();
    let l = ok(rt_dataloader_new(a, NIL, NIL)).raw();
    for h in [a, s, o, l] {
        assert_eq!(Value::from_raw(close(h)).as_bool(), Some(true));
        assert_eq!(Value::from_raw(close(h)).as_bool(), Some(false), "idempotent");
    }
    expect("rt_tensor_add", rt_tensor_add(a, int(1)), Code::Closed, "closed");
    expect("rt_tensor_add", rt_tensor_add(t(&data(1, &[2])), a), Code::Closed, "closed");
    expect("rt_tensor_shape", rt_tensor_shape(a), Code::Closed, "closed");
    expect("rt_nn_linear", rt_nn_linear(s, text("x"), t(&data(1, &[2, 2])), int(1), NIL), Code::Closed, "closed");
    expect("rt_optim_step", rt_optim_step(o), Code::Closed, "closed");
    expect("rt_dataloader_next", rt_dataloader_next(l), Code::Closed, "closed");
}

#[test]
fn unreachable_tensors_are_freed_by_the_collector() {
    let before = live_tensors();
    fn make() {
        for _ in 0..2_000 {
            ok(rt_tensor_zeros(shape(&[1024]), NIL));
        }
    }
    make();
    ffi_sdk::testing::collect();
    ffi_sdk::testing::collect();
    let after = live_tensors();
    println!("live tensors: {before} before, {after} after 2,000 made and a collection");
    assert!(after < before + 200, "{after} of 2,000 unreachable tensors still alive");
}
