//! Checkpoints: a trained model saved, then loaded into an empty store in a
//! new process, gives bit-identical outputs; loading into a store of another
//! model shape, or a file that is no checkpoint, is an Error.
#![cfg(feature = "pytorch")]

mod common;
use common::*;
use ffi_sdk::testing::{err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_torch::nn::*;
use ffi_torch::tensor::*;

fn model(store: u64, x: u64) -> u64 {
    let h = ok(rt_nn_linear(store, text("fc1"), x, int(16), NIL)).raw();
    let h = ok(rt_nn_batch_norm(store, text("bn"), h, dict(&[("train", Value::FALSE)]))).raw();
    let h = ok(rt_nn_relu(h)).raw();
    ok(rt_nn_linear(store, text("fc2"), h, int(3), NIL)).raw()
}

fn input() -> u64 {
    t(&data(21, &[5, 4]))
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rt-torch-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn save_then_load_in_a_new_process_is_identical() {
    if let Ok(path) = std::env::var("RT_TORCH_CKPT") {
        // The child: an empty store takes the file; the same calls give the same bytes.
        let store = ok(rt_torch_store_new(NIL)).raw();
        ok(rt_model_load(store, text(&path)));
        let out = ok(rt_tensor_bytes_get(model(store, input())));
        std::fs::write(format!("{path}.child"), out.as_bytes().unwrap()).unwrap();
        return;
    }
    let store = ok(rt_torch_store_new(NIL)).raw();
    let x = input();
    // Train a few steps so the parameters are not their initial values.
    let opt = ok(rt_optim_sgd(store, Value::float(0.05).raw(), NIL)).raw();
    for _ in 0..5 {
        ok(rt_optim_zero_grad(opt));
        let h = ok(rt_nn_batch_norm(store, text("bn"), ok(rt_nn_linear(store, text("fc1"), x, int(16), NIL)).raw(), NIL)).raw();
        let y = ok(rt_nn_linear(store, text("fc2"), ok(rt_nn_relu(h)).raw(), int(3), NIL)).raw();
        let loss = ok(rt_tensor_mean(ok(rt_tensor_mul(y, y)).raw(), NIL)).raw();
        ok(rt_tensor_backward(loss));
        ok(rt_optim_step(opt));
    }
    let mine = ok(rt_tensor_bytes_get(model(store, x))).as_bytes().unwrap().to_vec();
    let path = dir().join("model.ot");
    let p = path.to_str().unwrap().to_string();
    ok(rt_model_save(store, text(&p)));
    let exe = std::env::current_exe().unwrap();
    let st = std::process::Command::new(exe)
        .args(["--exact", "save_then_load_in_a_new_process_is_identical", "--nocapture", "--test-threads=1"])
        .env("RT_TORCH_CKPT", &p)
        .status()
        .unwrap();
    assert!(st.success());
    let theirs = std::fs::read(format!("{p}.child")).unwrap();
    assert_eq!(mine.len(), 5 * 3 * 4);
    assert_eq!(theirs, mine, "outputs after load in a new process");

    // Loading into the same (non-empty) store replaces values in place.
    let other = ok(rt_torch_store_new(NIL)).raw();
    model(other, x); // same shapes, other random values
    assert_ne!(ok(rt_tensor_bytes_get(model(other, x))).as_bytes().unwrap(), &mine[..]);
    ok(rt_model_load(other, text(&p)));
    assert_eq!(ok(rt_tensor_bytes_get(model(other, x))).as_bytes().unwrap(), &mine[..]);

    // Another model shape: an Error naming the parameter.
    let wrong = ok(rt_torch_store_new(NIL)).raw();
    ok(rt_nn_linear(wrong, text("fc1"), x, int(8), NIL));
    let (c, m) = err(rt_model_load(wrong, text(&p)));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.starts_with("rt_model_load: ") && m.contains("another model"), "{m}");
    let fewer = ok(rt_torch_store_new(NIL)).raw();
    ok(rt_nn_linear(fewer, text("fc1"), x, int(16), NIL));
    let (c, m) = err(rt_model_load(fewer, text(&p)));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    // Not a checkpoint, no file.
    let junk = dir().join("junk.ot");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    let (c, m) = err(rt_model_load(ok(rt_torch_store_new(NIL)).raw(), text(junk.to_str().unwrap())));
    assert_eq!(c, Code::Parse, "{m}");
    let (c, _) = err(rt_model_load(ok(rt_torch_store_new(NIL)).raw(), text("/no/such/dir/model.ot")));
    assert_eq!(c, Code::NotFound);
    let (c, _) = err(rt_model_save(store, text("/no/such/dir/model.ot")));
    assert_eq!(c, Code::NotFound);
    let _ = std::fs::remove_dir_all(dir());
}
