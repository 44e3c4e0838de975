//! ffi_concurrent against the crates underneath and Python, side by side in
//! one run (`cargo bench -p ffi_concurrent`; figures in docs/bench/concurrent.md).
//!
//! - channel send+recv of small ints between two threads: rt_channel_* vs
//!   crossbeam-channel directly (same capacity), and Python's queue.Queue;
//! - rt_parallel_map("rt_sha256_hash", 64 chunks of 1 MiB) with 2 workers vs
//!   the same calls in a sequential loop, and vs rayon's par_iter (2 threads)
//!   calling the same function;
//! - uncontended rt_mutex_lock+unlock vs parking_lot lock+unlock (ns);
//! - Python callback overhead per element of rt_parallel_map (python3 child).
//!
//! Best of several round-robin rounds (ffi_sdk::bench).

use ffi_concurrent::channel::*;
use ffi_concurrent::parallel::*;
use ffi_concurrent::sync::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::bench;
use ffi_sdk::Value;
use rayon::prelude::*;
use std::ffi::OsStr;
use std::hint::black_box;
use std::time::Instant;

const NIL: RtValue = ffi_sdk::abi::NIL;

extern "C" {
    fn rt_registry_lookup(name: *const u8, n: usize, arity: *mut u32) -> *mut std::ffi::c_void;
}

fn channel_ours(n: i64, cap: i64) -> f64 {
    let ch = rt_channel_create(Value::int(cap).raw());
    let t = Instant::now();
    let p = std::thread::spawn(move || {
        for i in 0..n {
            rt_channel_send(ch, (i as u64) << 3, NIL);
        }
    });
    let mut sum = 0i64;
    for _ in 0..n {
        sum += Value::from_raw(rt_channel_recv(ch, NIL)).as_int().unwrap_or(0);
    }
    p.join().unwrap();
    let d = t.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    d.as_secs_f64() / n as f64
}

fn channel_crossbeam(n: i64, cap: usize) -> f64 {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(cap);
    let t = Instant::now();
    let p = std::thread::spawn(move || {
        for i in 0..n {
            tx.send((i as u64) << 3).unwrap();
        }
    });
    let mut sum = 0i64;
    for _ in 0..n {
        sum += (rx.recv().unwrap() >> 3) as i64;
    }
    p.join().unwrap();
    let d = t.elapsed();
    assert_eq!(sum, n * (n - 1) / 2);
    d.as_secs_f64() / n as f64
}

const PY_QUEUE: &str = r#"
import queue, threading, time, sys
n = int(sys.argv[1]); q = queue.Queue(int(sys.argv[2])); best = 1e9
for _ in range(3):
    def prod():
        for i in range(n): q.put(i)
    t = threading.Thread(target=prod); s = time.perf_counter(); t.start()
    for _ in range(n): q.get()
    t.join(); best = min(best, (time.perf_counter() - s) / n)
print(best)
"#;

const PY_CALLBACK: &str = r#"
import sys, time
sys.path.insert(0, sys.argv[1])
import simple_rt
items = list(range(20000)); f = lambda x: x
best_cb = best_fn = 1e9
for _ in range(5):
    s = time.perf_counter(); simple_rt.rt_parallel_map(f, items); best_cb = min(best_cb, time.perf_counter() - s)
    s = time.perf_counter(); simple_rt.rt_parallel_map("rt_thread_id", [None] * len(items)); best_fn = min(best_fn, time.perf_counter() - s)
print((best_cb - best_fn) / len(items))
"#;

fn main() {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("CPUs: {cpus}\n");

    // ---- channel ----
    let n = 200_000;
    let mut ours = f64::MAX;
    let mut cb = f64::MAX;
    for _ in 0..5 {
        ours = ours.min(channel_ours(n, 1024));
        cb = cb.min(channel_crossbeam(n, 1024));
    }
    let py = bench::python(PY_QUEUE, &[OsStr::new("50000"), OsStr::new("1024")]);
    bench::table_header(&["channel, small ints, 2 threads, capacity 1024", "ns per send+recv", "ratio (crossbeam / this)"]);
    println!("| rt_channel_send + rt_channel_recv | {:.0} | {:.2} |", ours * 1e9, cb / ours);
    println!("| crossbeam-channel directly | {:.0} | 1.00 |", cb * 1e9);
    if let Some(p) = py {
        println!("| Python queue.Queue | {:.0} | {:.3} |", p * 1e9, cb / p);
    }
    println!();

    // ---- parallel map of rt_sha256_hash ----
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = [deps.join("libffi_crypto.so"), deps.parent().unwrap().join("libffi_crypto.so")].into_iter().find(|p| p.is_file());
    match lib {
        None => println!("libffi_crypto.so not found next to {}: parallel map skipped\n", exe.display()),
        Some(lib) => {
            let c = std::ffi::CString::new(lib.to_str().unwrap()).unwrap();
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            assert!(!h.is_null(), "dlopen {}", lib.display());
            let name = "rt_sha256_hash";
            let mut ar = 0u32;
            let p = unsafe { rt_registry_lookup(name.as_ptr(), name.len(), &mut ar) };
            assert!(!p.is_null() && ar == 1);
            let sha: extern "C" fn(RtValue) -> RtValue = unsafe { std::mem::transmute(p) };
            let chunks = Value::array(64);
            let mut seed = 7u64;
            for _ in 0..64 {
                let mut b = vec![0u8; 1 << 20];
                for w in b.chunks_mut(8) {
                    w.copy_from_slice(&bench::xorshift(&mut seed).to_le_bytes()[..w.len()]);
                }
                chunks.push(Value::bytes(&b));
            }
            let words: Vec<u64> = (0..64).map(|i| chunks.at(i).raw()).collect();
            let opts = ffi_sdk::testing::dict(&[("threads", Value::int(2))]);
            let name_v = Value::text(name);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let mut f_par = || {
                let r = rt_parallel_map(name_v.raw(), chunks.raw(), opts);
                assert_eq!(Value::from_raw(r).len(), 64);
            };
            let mut f_seq = || {
                for w in &words {
                    black_box(sha(*w));
                }
            };
            let mut f_rayon = || {
                let out: Vec<u64> = pool.install(|| words.par_iter().map(|w| sha(*w)).collect());
                black_box(out);
            };
            let best = bench::race(5, 3, &mut [&mut f_par, &mut f_seq, &mut f_rayon]);
            let mb = 64.0 * (1 << 20) as f64 * 3.0;
            let (p, s, r) = (best[0].as_secs_f64(), best[1].as_secs_f64(), best[2].as_secs_f64());
            bench::table_header(&["sha256 of 64 x 1 MiB", "MB/s", "vs sequential", "vs rayon"]);
            println!("| rt_parallel_map(\"rt_sha256_hash\", threads 2) | {:.0} | {:.2} | {:.2} |", mb / p / 1e6, s / p, r / p);
            println!("| sequential loop of rt_sha256_hash | {:.0} | 1.00 | {:.2} |", mb / s / 1e6, r / s);
            println!("| rayon par_iter (2 threads) of rt_sha256_hash | {:.0} | {:.2} | 1.00 |\n", mb / r / 1e6, s / r);
        }
    }

    // ---- mutex ----
    let m = rt_mutex_new(Value::int(1).raw());
    let pm = parking_lot::Mutex::new(1u64);
    let calls = 1_000_000;
    let mut f_ours = || {
        black_box(rt_mutex_lock(m, NIL));
        black_box(rt_mutex_unlock(m, NIL));
    };
    let mut f_pl = || {
        let g = pm.lock();
        black_box(*g);
        drop(g);
    };
    let best = bench::race(5, calls, &mut [&mut f_ours, &mut f_pl]);
    bench::table_header(&["uncontended lock + unlock", "ns"]);
    println!("| rt_mutex_lock + rt_mutex_unlock | {:.1} |", bench::per_op(best[0], calls) * 1e9);
    println!("| parking_lot::Mutex lock + unlock | {:.1} |\n", bench::per_op(best[1], calls) * 1e9);

    // ---- Python callback ----
    let pkg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/python");
    let libdir = [deps, deps.parent().unwrap()]
        .into_iter()
        .find(|d| d.join("libffi_core.so").is_file() && d.join("libffi_concurrent.so").is_file())
        .unwrap_or(deps);
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(PY_CALLBACK)
        .arg(&pkg)
        .env("SIMPLE_RT_LIB_DIR", libdir)
        .output();
    bench::table_header(&["Python callback in rt_parallel_map", "us per element"]);
    match out.ok().filter(|o| o.status.success()).and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok()) {
        Some(s) => println!("| lambda x: x, 20,000 items (minus the same map of a native function) | {:.2} |", s * 1e6),
        None => println!("| (python3 or the libraries in {} not usable) | - |", libdir.display()),
    }
}
