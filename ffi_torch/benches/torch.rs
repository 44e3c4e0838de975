//! `./x.sh bench -p ffi_torch --features pytorch` (LIBTORCH set; tests/torch/run.sh
//! bench does both): the library vs tch called directly, in one run
//! (interleaved rounds, best kept), and small ops vs PyTorch from Python:
//! a 512x512 float32 matmul; one MLP training step (2-64-64-1, batch 100,
//! Adam); 8x8 adds, ops/s (also Python); from_data of 1M floats, bytes vs nested arrays.
//! TORCH_BENCH_PARTS=1 adds the per-call cost of a handle (dtype, add with and
//! without close, transpose) next to tch. TORCH_BENCH_LOOP=add|mlp|tch-mlp runs only that
//! loop for about 5 s (for `perf record`) and prints nothing else.

#![deny(clippy::undocumented_unsafe_blocks)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::{arr, dict, python};
use ffi_sdk::bench::race;
use ffi_sdk::testing::{close, int, ok, text, NIL};
use ffi_sdk::Value;
use ffi_torch::nn::*;
use ffi_torch::tensor::*;
use std::hint::black_box;
use tch::{Device, Kind, Tensor};

/// A handle type with nothing in it: the cost of a handle alone.
struct Empty;
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl ffi_sdk::HandleType for Empty {
    const NAME: &'static str = "bench_empty";
}

fn shape(d: &[i64]) -> u64 {
    arr(&d.iter().map(|x| int(*x)).collect::<Vec<_>>())
}

fn randn(d: &[i64], seed: i64) -> u64 {
    ok(rt_tensor_randn(shape(d), dict(&[("seed", Value::int(seed))]))).raw()
}

fn line(what: &str, lib: f64, direct: f64, unit: &str) {
    println!("| {what} | {:.2} {unit} | {:.2} {unit} | {:.3}x |", lib, direct, lib / direct);
}

fn main() {
    tch::set_num_threads(1);
    println!("libtorch threads: 1 (both sides)\n");
    println!("| operation | library | tch direct | library / tch |");
    println!("|---|---|---|---|");

    // 1. matmul 512x512
    let (a, b) = (randn(&[512, 512], 1), randn(&[512, 512], 2));
    let (ta, tb) = (Tensor::randn([512, 512], (Kind::Float, Device::Cpu)), Tensor::randn([512, 512], (Kind::Float, Device::Cpu)));
    let n = if std::env::var("TORCH_BENCH_LOOP").is_ok() { 0 } else { 10 };
    let t = race(
        15,
        n,
        &mut [
            &mut || {
                let r = rt_tensor_matmul(a, b);
                close(black_box(r));
            },
            &mut || {
                let _ = black_box(ta.f_matmul(&tb).unwrap());
            },
        ],
    );
    line("matmul 512x512 f32", t[0].as_secs_f64() / n as f64 * 1e6, t[1].as_secs_f64() / n as f64 * 1e6, "us");

    // 2. MLP training step
    let x = randn(&[100, 2], 3);
    let y = ok(rt_tensor_ones(shape(&[100, 1]), NIL)).raw();
    let store = ok(rt_torch_store_new(NIL)).raw();
    let opt = ok(rt_optim_adam(store, Value::float(0.001).raw(), NIL)).raw();
    // Each intermediate is closed where the tch step below drops it: a
    // temporary (a linear's output, d*d) after the call using it, a named one
    // (h, p, d, loss) at the end of the step.
    let (fc1, fc2, out) = (text("fc1"), text("fc2"), text("out"));
    let mut lib_step = || {
        let mut tmp = [0u64; 5];
        let mut n = 0;
        let mut keep = |v: u64| {
            tmp[n] = v;
            n += 1;
            ok(v).raw()
        };
        let then_close = |r: u64, used: u64| {
            close(used);
            ok(r).raw()
        };
        ok(rt_optim_zero_grad(opt));
        let l = ok(rt_nn_linear(store, fc1, x, int(64), NIL)).raw();
        let h = keep(then_close(rt_nn_relu(l), l));
        let l = ok(rt_nn_linear(store, fc2, h, int(64), NIL)).raw();
        let h = keep(then_close(rt_nn_relu(l), l));
        let l = ok(rt_nn_linear(store, out, h, int(1), NIL)).raw();
        let p = keep(then_close(rt_nn_sigmoid(l), l));
        let d = keep(rt_tensor_sub(p, y));
        let d2 = ok(rt_tensor_mul(d, d)).raw();
        let loss = keep(then_close(rt_tensor_mean(d2, NIL), d2));
        ok(rt_tensor_backward(loss));
        ok(rt_optim_step(opt));
        for v in tmp {
            close(v);
        }
    };
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let l1 = tch::nn::linear(&root / "fc1", 2, 64, Default::default());
    let l2 = tch::nn::linear(&root / "fc2", 64, 64, Default::default());
    let l3 = tch::nn::linear(&root / "out", 64, 1, Default::default());
    let copt = tch::COptimizer::adam(0.001, 0.9, 0.999, 0.0, 1e-8, false).unwrap();
    let mut copt = copt;
    for v in vs.trainable_variables() {
        copt.add_parameters(&v, 0).unwrap();
    }
    let tx = Tensor::randn([100, 2], (Kind::Float, Device::Cpu));
    let ty = Tensor::ones([100, 1], (Kind::Float, Device::Cpu));
    let mut tch_step = || {
        copt.zero_grad().unwrap();
        let h = tx.f_linear(&l1.ws, l1.bs.as_ref()).unwrap().f_relu().unwrap();
        let h = h.f_linear(&l2.ws, l2.bs.as_ref()).unwrap().f_relu().unwrap();
        let p = h.f_linear(&l3.ws, l3.bs.as_ref()).unwrap().f_sigmoid().unwrap();
        let d = p.f_sub(&ty).unwrap();
        let loss = d.f_mul(&d).unwrap().f_mean(None::<Kind>).unwrap();
        loss.f_backward().unwrap();
        copt.step().unwrap();
    };
    let n = 10;
    let profile = std::env::var("TORCH_BENCH_LOOP").ok();
    if let Some(what) = profile.as_deref() {
        let (s, u) = (randn(&[8, 8], 4), randn(&[8, 8], 5));
        let (t0, mut calls) = (std::time::Instant::now(), 0u64);
        while t0.elapsed().as_secs() < 5 {
            calls += 100;
            for _ in 0..100 {
                match what {
                    "mlp" => lib_step(),
                    "tch-mlp" => tch_step(),
                    _ => {
                        close(black_box(rt_tensor_add(s, u)));
                    }
                }
            }
        }
        eprintln!("{what}: {calls} calls, {:.3} us each", t0.elapsed().as_secs_f64() * 1e6 / calls as f64);
        return;
    }
    if std::env::var("TORCH_BENCH_PARTS").is_ok() {
        // SAFETY: libgc's own counter of collections, looked up in the loaded libgc.
        let gc_no = || unsafe {
            let p = libc::dlsym(libc::RTLD_DEFAULT, c"GC_get_gc_no".as_ptr());
            if p.is_null() { 0 } else { std::mem::transmute::<*mut libc::c_void, extern "C" fn() -> usize>(p)() }
        };
        let (g0, t0) = (gc_no(), std::time::Instant::now());
        for _ in 0..1000 {
            lib_step();
        }
        println!("1000 library MLP steps: {} collections, {:.1} us/step", gc_no() - g0, t0.elapsed().as_secs_f64() * 1e3);
        let t = race(
            9,
            200,
            &mut [
                &mut || {
                    let h = ok(rt_nn_linear(store, text("fc1"), x, int(64), NIL)).raw();
                    close(h);
                },
                &mut || {
                    let _ = black_box(tx.f_linear(&l1.ws, l1.bs.as_ref()).unwrap());
                },
                &mut || {
                    let h = ok(rt_nn_linear(store, text("fc1"), x, int(64), NIL)).raw();
                    let l = ok(rt_tensor_mean(h, NIL)).raw();
                    ok(rt_tensor_backward(l));
                    close(h);
                    close(l);
                },
                &mut || {
                    let h = tx.f_linear(&l1.ws, l1.bs.as_ref()).unwrap();
                    h.f_mean(None::<Kind>).unwrap().f_backward().unwrap();
                },
            ],
        );
        for (k, d) in ["lib fc1", "tch fc1", "lib fc1+mean+backward", "tch fc1+mean+backward"].iter().zip(t) {
            println!("{k}: {:.2} us", d.as_secs_f64() / 200.0 * 1e6);
        }
    }
    // Both orders (a closure that runs second in a round can see a warmer or a colder cache).
    let t1 = race(61, n, &mut [&mut lib_step, &mut tch_step]);
    let t2 = race(61, n, &mut [&mut tch_step, &mut lib_step]);
    let t = [t1[0].min(t2[1]), t1[1].min(t2[0])];
    if std::env::var("TORCH_BENCH_PARTS").is_ok() {
        println!("MLP step, library first: {:.3}x; tch first: {:.3}x", t1[0].as_secs_f64() / t1[1].as_secs_f64(), t2[1].as_secs_f64() / t2[0].as_secs_f64());
    }
    line("MLP step 2-64-64-1, batch 100, Adam", t[0].as_secs_f64() / n as f64 * 1e6, t[1].as_secs_f64() / n as f64 * 1e6, "us");

    // 3. 8x8 add
    let (s, u) = (randn(&[8, 8], 4), randn(&[8, 8], 5));
    let (ts, tu) = (Tensor::randn([8, 8], (Kind::Float, Device::Cpu)), Tensor::randn([8, 8], (Kind::Float, Device::Cpu)));
    let n = 20_000;
    let t = race(
        11,
        n,
        &mut [
            &mut || {
                close(black_box(rt_tensor_add(s, u)));
            },
            &mut || {
                let _ = black_box(ts.f_add(&tu).unwrap());
            },
        ],
    );
    let (lib_ops, tch_ops) = (n as f64 / t[0].as_secs_f64(), n as f64 / t[1].as_secs_f64());
    println!("| 8x8 add (+ close of the result) | {:.0} ops/s | {:.0} ops/s | {:.3}x time |", lib_ops, tch_ops, tch_ops / lib_ops);
    if std::env::var("TORCH_BENCH_PARTS").is_ok() {
        let n = 20_000;
        let (ws, wu) = (wrap(ts.shallow_clone()).raw(), wrap(tu.shallow_clone()).raw());
        let t = race(
            9,
            n,
            &mut [
                &mut || {
                    black_box(rt_tensor_dtype(s));
                },
                &mut || {
                    black_box(rt_tensor_add(s, u));
                },
                &mut || {
                    close(black_box(rt_tensor_add(s, u)));
                },
                &mut || {
                    close(black_box(rt_tensor_transpose(s, NIL, NIL)));
                },
                &mut || {
                    let _ = black_box(ts.f_transpose(-2, -1).unwrap());
                },
                &mut || {
                    let _ = black_box(ts.f_add(&tu).unwrap());
                },
                &mut || {
                    close(black_box(ffi_sdk::new_handle(Empty).raw()));
                },
                &mut || {
                    close(black_box(rt_tensor_add(ws, wu)));
                },
                &mut || {
                    close(black_box(wrap(ts.f_add(&tu).unwrap()).raw()));
                },
                &mut || {
                    let _ = black_box(std::sync::Arc::new(ts.f_add(&tu).unwrap()));
                },
            ],
        );
        for (k, d) in ["lib dtype", "lib add (no close)", "lib add + close", "lib transpose + close", "tch transpose", "tch add", "empty handle new + close (ffi_core)", "lib add + close on tch's tensors", "tch add, wrapped + close", "tch add in an Arc"].iter().zip(t) {
            println!("{k}: {:.3} us", d.as_secs_f64() / n as f64 * 1e6);
        }
    }
    let py = python(
        "import sys, json, time, torch\ntorch.set_num_threads(1)\na, b = torch.randn(8, 8), torch.randn(8, 8)\nbest = 0\nfor _ in range(7):\n    t = time.perf_counter()\n    for _ in range(20000): c = a + b\n    best = max(best, 20000 / (time.perf_counter() - t))\nprint(json.dumps(best))\n",
        &serde_json::json!(null),
    );
    let py_ops = py.as_f64().unwrap();
    println!("| 8x8 add: PyTorch from Python (`a + b`) | {:.0} ops/s | library {:.2}x Python's rate | |", py_ops, lib_ops / py_ops);

    // 4. from_data of 1M floats
    let m = 1_000_000usize;
    let vals: Vec<f32> = (0..m).map(|i| (i % 1000) as f32 * 0.001).collect();
    let bytes = Value::bytes(&vals.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());
    let nested = Value::array(m);
    for v in &vals {
        nested.push(Value::float(*v as f64));
    }
    let sh = Value::from_raw(shape(&[m as i64]));
    let t = race(
        5,
        3,
        &mut [
            &mut || {
                close(ok(rt_tensor_from_data(bytes.raw(), dict(&[("shape", sh)]))).raw());
            },
            &mut || {
                close(ok(rt_tensor_from_data(nested.raw(), NIL)).raw());
            },
            &mut || {
                let _ = black_box(Tensor::f_from_slice(&vals).unwrap());
            },
        ],
    );
    println!(
        "| from_data 1M f32: bytes / nested array / tch from_slice | {:.2} ms / {:.2} ms | {:.2} ms | bytes {:.2}x tch, nested {:.1}x bytes |",
        t[0].as_secs_f64() / 3.0 * 1e3,
        t[1].as_secs_f64() / 3.0 * 1e3,
        t[2].as_secs_f64() / 3.0 * 1e3,
        t[0].as_secs_f64() / t[2].as_secs_f64(),
        t[1].as_secs_f64() / t[0].as_secs_f64()
    );
    let _ = text;
}
