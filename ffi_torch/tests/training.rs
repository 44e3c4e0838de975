//! Training through the library: an MLP on two interleaved spirals (2,000
//! seeded points) reaches >= 95% accuracy; a small conv net (conv2d,
//! batch_norm, layer_norm) learns to tell horizontal from vertical bars in 8x8
//! images. Both use the data loader, Adam or SGD, backward and zero_grad.
#![cfg(feature = "pytorch")]

mod common;
use common::*;
use ffi_sdk::testing::{int, ok, text, NIL};
use ffi_sdk::Value;
use ffi_torch::nn::*;
use ffi_torch::tensor::*;
use std::f64::consts::PI;

fn f(x: f64) -> u64 {
    Value::float(x).raw()
}

fn floats(v: &[f32], shape: &[i64]) -> u64 {
    let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    let sh = arr(&shape.iter().map(|d| int(*d)).collect::<Vec<_>>());
    ok(rt_tensor_from_data(Value::bytes(&b).raw(), dict(&[("shape", Value::from_raw(sh))]))).raw()
}

fn out_floats(t: u64) -> Vec<f32> {
    ok(rt_tensor_bytes_get(t)).as_bytes().unwrap().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

/// Two interleaved spirals: n points per class, seeded.
fn spirals(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = Rng(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        for k in 0..2 {
            let t = 0.5 + 3.0 * PI * (i as f64 + r.next()) / n as f64;
            let a = t + k as f64 * PI;
            x.push((t * a.cos() / (3.5 * PI) + 0.02 * r.normal()) as f32);
            x.push((t * a.sin() / (3.5 * PI) + 0.02 * r.normal()) as f32);
            y.push(k as f32);
        }
    }
    (x, y)
}

/// The MLP: 2 -> 64 -> 64 -> 1, sigmoid output.
fn mlp(store: u64, x: u64) -> u64 {
    let h = ok(rt_nn_relu(ok(rt_nn_linear(store, text("fc1"), x, int(64), NIL)).raw())).raw();
    let h = ok(rt_nn_relu(ok(rt_nn_linear(store, text("fc2"), h, int(64), NIL)).raw())).raw();
    ok(rt_nn_sigmoid(ok(rt_nn_linear(store, text("out"), h, int(1), NIL)).raw())).raw()
}

fn mse(p: u64, y: u64) -> u64 {
    let d = ok(rt_tensor_sub(p, y)).raw();
    ok(rt_tensor_mean(ok(rt_tensor_mul(d, d)).raw(), NIL)).raw()
}

fn accuracy(p: u64, y: &[f32]) -> f64 {
    let p = out_floats(p);
    p.iter().zip(y).filter(|(p, y)| ((**p > 0.5) as i32 as f32) == **y).count() as f64 / y.len() as f64
}

#[test]
fn mlp_learns_two_spirals() {
    let (x, y) = spirals(1000, 42);
    let n = y.len() as i64;
    assert_eq!(n, 2000);
    let xt = floats(&x, &[n, 2]);
    let yt = floats(&y, &[n, 1]);
    ok(rt_tensor_randn(arr(&[int(1)]), dict(&[("seed", Value::int(0))]))); // seeds the parameter init
    let store = ok(rt_torch_store_new(NIL)).raw();
    let opt = ok(rt_optim_adam(store, f(0.01), NIL)).raw();
    let loader = ok(rt_dataloader_new(xt, yt, dict(&[("batch_size", Value::int(100)), ("shuffle", Value::TRUE), ("seed", Value::int(1))]))).raw();
    let start = std::time::Instant::now();
    let mut acc = 0.0;
    let mut epochs = 0;
    for epoch in 1..=300 {
        epochs = epoch;
        loop {
            let b = ok(rt_dataloader_next(loader));
            if b.is_nil() {
                break;
            }
            let (bx, by) = (b.at(0).raw(), b.at(1).raw());
            ok(rt_optim_zero_grad(opt));
            let loss = mse(mlp(store, bx), by);
            ok(rt_tensor_backward(loss));
            ok(rt_optim_step(opt));
        }
        if epoch % 10 == 0 {
            acc = accuracy(mlp(store, xt), &y);
            if acc >= 0.99 {
                break;
            }
        }
    }
    acc = acc.max(accuracy(mlp(store, xt), &y));
    println!("two spirals: {:.1}% after {epochs} epochs ({:.1} s)", acc * 100.0, start.elapsed().as_secs_f64());
    assert!(acc >= 0.95, "accuracy {acc} after {epochs} epochs");
    // Held-out points from another seed.
    let (x2, y2) = spirals(500, 7);
    let held = accuracy(mlp(store, floats(&x2, &[1000, 2])), &y2);
    println!("held-out: {:.1}%", held * 100.0);
    assert!(held >= 0.9, "held-out accuracy {held}");
}

/// 8x8 images: a horizontal bar (class 0) or a vertical one (class 1) at a random row/column, with noise.
fn bars(n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut r = Rng(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..n {
        let k = i % 2;
        let at = (r.next() * 8.0) as usize % 8;
        for row in 0..8 {
            for col in 0..8 {
                let on = if k == 0 { row == at } else { col == at };
                x.push((if on { 1.0 } else { 0.0 } + 0.3 * r.normal()) as f32);
            }
        }
        y.push(k as f32);
    }
    (x, y)
}

fn convnet(store: u64, x: u64, train: bool) -> u64 {
    let mode = || dict(&[("train", Value::bool(train))]);
    let h = ok(rt_nn_conv2d(store, text("conv"), x, int(4), int(3), dict(&[("padding", Value::int(1))]))).raw();
    let h = ok(rt_nn_relu(ok(rt_nn_batch_norm(store, text("bn"), h, mode())).raw())).raw();
    let h = ok(rt_tensor_reshape(h, arr(&[int(-1), int(4 * 64)]))).raw();
    let h = ok(rt_nn_layer_norm(store, text("ln"), h, NIL)).raw();
    let h = ok(rt_nn_dropout(h, dict(&[("p", Value::float(0.1)), ("train", Value::bool(train))]))).raw();
    ok(rt_nn_sigmoid(ok(rt_nn_linear(store, text("head"), h, int(1), NIL)).raw())).raw()
}

#[test]
fn conv_net_learns_bars() {
    let (x, y) = bars(400, 3);
    let xt = floats(&x, &[400, 1, 8, 8]);
    let yt = floats(&y, &[400, 1]);
    ok(rt_tensor_randn(arr(&[int(1)]), dict(&[("seed", Value::int(0))])));
    let store = ok(rt_torch_store_new(NIL)).raw();
    let opt = ok(rt_optim_sgd(store, f(0.1), dict(&[("momentum", Value::float(0.9))]))).raw();
    let loader = ok(rt_dataloader_new(xt, yt, dict(&[("batch_size", Value::int(32)), ("shuffle", Value::TRUE), ("seed", Value::int(2)), ("drop_last", Value::TRUE)]))).raw();
    for _ in 0..15 {
        let mut batches = 0;
        while let Some(b) = Some(ok(rt_dataloader_next(loader))).filter(|b| !b.is_nil()) {
            batches += 1;
            assert_eq!(json(ok(rt_tensor_shape(b.at(0).raw()))), serde_json::json!([32, 1, 8, 8]), "drop_last keeps full batches");
            ok(rt_optim_zero_grad(opt));
            let loss = mse(convnet(store, b.at(0).raw(), true), b.at(1).raw());
            ok(rt_tensor_backward(loss));
            ok(rt_optim_step(opt));
        }
        assert_eq!(batches, 12, "400 rows / 32, the last 16 dropped");
    }
    let (x2, y2) = bars(200, 99);
    let acc = accuracy(convnet(store, floats(&x2, &[200, 1, 8, 8]), false), &y2);
    println!("bars: {:.1}% held-out", acc * 100.0);
    assert!(acc >= 0.9, "conv net accuracy {acc}");
    let _ = f(0.0);
}

#[test]
fn loader_epochs_order_and_remainder() {
    let xt = ok(rt_tensor_from_data(Value::from_raw(arr(&(0..10).map(int).collect::<Vec<_>>())).raw(), NIL)).raw();
    let l = ok(rt_dataloader_new(xt, NIL, dict(&[("batch_size", Value::int(4))]))).raw();
    let mut seen = Vec::new();
    loop {
        let b = ok(rt_dataloader_next(l));
        if b.is_nil() {
            break;
        }
        assert_eq!(b.len(), 1);
        seen.push(values(b.at(0).raw()));
    }
    assert_eq!(seen, vec![serde_json::json!([0, 1, 2, 3]), serde_json::json!([4, 5, 6, 7]), serde_json::json!([8, 9])]);
    // The next call starts the next epoch.
    assert_eq!(values(ok(rt_dataloader_next(l)).at(0).raw()), serde_json::json!([0, 1, 2, 3]));
    // Shuffled: a permutation, the same for the same seed, another each epoch.
    let epoch = |l: u64| -> Vec<f64> {
        let mut all = Vec::new();
        loop {
            let b = ok(rt_dataloader_next(l));
            if b.is_nil() {
                return all;
            }
            all.extend(flat(&values(b.at(0).raw())));
        }
    };
    let mk = || ok(rt_dataloader_new(xt, NIL, dict(&[("batch_size", Value::int(3)), ("shuffle", Value::TRUE), ("seed", Value::int(9))]))).raw();
    let (l1, l2) = (mk(), mk());
    let (e1, e2) = (epoch(l1), epoch(l2));
    assert_eq!(e1, e2);
    let mut s = e1.clone();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(s, (0..10).map(|i| i as f64).collect::<Vec<_>>());
    assert_ne!(e1, (0..10).map(|i| i as f64).collect::<Vec<_>>());
    assert_ne!(epoch(l1), e1, "another order in the next epoch");
}
