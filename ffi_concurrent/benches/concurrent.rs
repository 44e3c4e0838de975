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

#![deny(clippy::undocumented_unsafe_blocks)]

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

/// CPU time of every thread of the process so far, in seconds.
fn process_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a writable local `timespec`, the one out-parameter; the clock id is a constant.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Round robin, best of `rounds`: (wall, CPU of all threads) per closure, in seconds.
/// On a loaded machine the wall time says how much CPU the run got; the CPU
/// time says how much work it did (spinning included).
fn race_cpu(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<(f64, f64)> {
    let mut best = vec![(f64::MAX, f64::MAX); fs.len()];
    for _ in 0..rounds {
        for (i, f) in fs.iter_mut().enumerate() {
            let (t, c) = (Instant::now(), process_cpu());
            f();
            best[i].0 = best[i].0.min(t.elapsed().as_secs_f64());
            best[i].1 = best[i].1.min(process_cpu() - c);
        }
    }
    best
}

/// Pins the calling thread to one CPU, or lets it run on every CPU again (None).
fn pin(cpu: Option<usize>) {
    // SAFETY: an all-zero `cpu_set_t` is a valid empty set (plain bit words); `CPU_SET` only sets
    // bits of our local set (indexes below CPU_SETSIZE); `sched_setaffinity` reads `size_of`
    // bytes from `&set`, which is exactly that big and alive for the call (pid 0: this thread).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        match cpu {
            Some(c) => libc::CPU_SET(c, &mut set),
            None => {
                for c in 0..libc::CPU_SETSIZE as usize {
                    libc::CPU_SET(c, &mut set);
                }
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Where the two threads of a channel run: (receiver's CPU, sender's CPU), or anywhere.
type Place = Option<(usize, usize)>;

fn channel_ours(n: i64, cap: i64, place: Place) {
    let ch = rt_channel_create(Value::int(cap).raw());
    pin(place.map(|p| p.0));
    let p = std::thread::spawn(move || {
        pin(place.map(|p| p.1));
        for i in 0..n {
            rt_channel_send(ch, (i as u64) << 3, NIL);
        }
    });
    let mut sum = 0i64;
    for _ in 0..n {
        sum += Value::from_raw(rt_channel_recv(ch, NIL)).as_int().unwrap_or(0);
    }
    p.join().unwrap();
    pin(None);
    assert_eq!(sum, n * (n - 1) / 2);
}

fn channel_crossbeam(n: i64, cap: usize, place: Place) {
    let (tx, rx) = crossbeam_channel::bounded::<u64>(cap);
    pin(place.map(|p| p.0));
    let p = std::thread::spawn(move || {
        pin(place.map(|p| p.1));
        for i in 0..n {
            tx.send((i as u64) << 3).unwrap();
        }
    });
    let mut sum = 0i64;
    for _ in 0..n {
        sum += (rx.recv().unwrap() >> 3) as i64;
    }
    p.join().unwrap();
    pin(None);
    assert_eq!(sum, n * (n - 1) / 2);
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

/// The host callback of the parallel-map rows: calls the function whose address is `user_data` (rt_sha256_hash).
///
/// # Safety
/// `user_data` is the address of an `extern "C" fn(RtValue) -> RtValue` (as `parallel_case` passes).
unsafe extern "C" fn via_callback(user_data: *mut std::ffi::c_void, arg: RtValue) -> RtValue {
    let f: extern "C" fn(RtValue) -> RtValue = std::mem::transmute(user_data);
    f(arg)
}

extern "C" {
    fn rt_callback_new(f: *mut std::ffi::c_void, user_data: *mut std::ffi::c_void) -> RtValue;
}

/// The items of a runtime array, written from several threads (the array stays on the caller's stack).
#[derive(Clone, Copy)]
struct Out(*mut RtValue);
// SAFETY: the pointer is the item block of an `out_array` array, kept alive by the `Value` its
// caller holds on its stack until the parallel loop writing through it has joined; it is
// collector memory, not tied to a thread.
unsafe impl Send for Out {}
// SAFETY: the parallel loops write each index once, from one worker (`enumerate` over distinct
// items), and nothing reads the block until they have joined.
unsafe impl Sync for Out {}
impl Out {
    fn set(self, i: usize, w: RtValue) {
        // SAFETY: the callers (the rayon rows of `parallel_case`) pass `i < n`, the `n` items the
        // block was filled with in `out_array` (capacity `n`, so it never moved); each index is
        // written by one thread only, and the block is scanned by the collector.
        unsafe { std::ptr::write_volatile(self.0.add(i), w) };
    }
}

/// A runtime array of `n` nils and its items, for results written in place.
fn out_array(n: usize) -> (Value, Out) {
    let a = Value::array(n);
    for _ in 0..n {
        a.push(Value::NIL);
    }
    // SAFETY: `a` is the array just made (live on this stack), so `heap_ptr` is its non-null
    // `ArrayObj` header; nobody else has it, so `items` (holding the `n` nils) does not change.
    let items = unsafe { (*(ffi_sdk::abi::heap_ptr(a.raw()) as *const ffi_sdk::abi::ArrayObj)).items };
    (a, Out(items))
}

/// `count` byte strings of `size` pseudo-random bytes, in a runtime array.
fn chunks(count: usize, size: usize) -> Value {
    let a = Value::array(count);
    let mut seed = 7u64;
    for _ in 0..count {
        let mut b = vec![0u8; size];
        for w in b.chunks_mut(8) {
            w.copy_from_slice(&bench::xorshift(&mut seed).to_le_bytes()[..w.len()]);
        }
        a.push(Value::bytes(&b));
    }
    a
}

/// rt_parallel_map over `items` of a registered function (by name) and of a
/// host callback calling it, against the sequential loop and rayon's
/// par_iter (2 threads) calling the function, and the callback, directly.
/// One race, round robin, best of `rounds`.
fn parallel_case(title: &str, items: Value, rounds: usize, sha: extern "C" fn(RtValue) -> RtValue, name: &str) {
    let n = items.len();
    let words: Vec<u64> = (0..n).map(|i| items.at(i).raw()).collect();
    let bytes: usize = (0..n).map(|i| items.at(i).as_bytes().map_or(0, |b| b.len())).sum();
    let opts = ffi_sdk::testing::dict(&[("threads", Value::int(2))]);
    let name_v = Value::text(name);
    let ud = sha as *mut std::ffi::c_void;
    // SAFETY: core's `rt_callback_new(void *, void *)`: `via_callback` is a non-null
    // `RtCallback1` passed as `void *`, and `ud` is the code address it expects (`sha`), which
    // stays valid (its library is never unloaded) and is safe to call from any thread.
    let cb = Value::from_raw(unsafe { rt_callback_new(via_callback as *mut std::ffi::c_void, ud) });
    let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    let mut f_name = || {
        let r = rt_parallel_map(name_v.raw(), items.raw(), opts);
        assert_eq!(Value::from_raw(r).len(), n);
    };
    let mut f_cb = || {
        let r = rt_parallel_map(cb.raw(), items.raw(), opts);
        assert_eq!(Value::from_raw(r).len(), n);
    };
    let mut f_seq = || {
        let a = Value::array(n);
        for w in &words {
            a.push(Value::from_raw(sha(*w)));
        }
        black_box(a);
    };
    // Rayon's results go where rt_parallel_map's go: straight into a
    // preallocated runtime array, where the collector sees them (collected
    // into a Rust Vec they would be invisible to it, and every collection
    // during the map would find less to mark, and free results still in use).
    let mut f_rayon = || {
        let (a, out) = out_array(n);
        pool.install(|| words.par_iter().enumerate().for_each(|(i, w)| out.set(i, sha(*w))));
        black_box(a);
    };
    let mut f_rayon_cb = || {
        let ud = ud as usize;
        let (a, out) = out_array(n);
        // SAFETY: `ud` is `sha`'s address, the `extern "C" fn(RtValue) -> RtValue` that
        // `via_callback` requires; the words are the items of `items`, alive on this stack.
        pool.install(|| words.par_iter().enumerate().for_each(|(i, w)| out.set(i, unsafe { via_callback(ud as *mut std::ffi::c_void, *w) })));
        black_box(a);
    };
    let best = race_cpu(rounds, &mut [&mut f_name, &mut f_cb, &mut f_seq, &mut f_rayon, &mut f_rayon_cb]);
    let t: Vec<f64> = best.iter().map(|b| b.0).collect();
    let c: Vec<f64> = best.iter().map(|b| b.1).collect();
    let mbs = |s: f64| bytes as f64 / s / 1e6;
    let per = |s: f64| s / n as f64 * 1e9;
    bench::table_header(&[title, "MB/s", "vs sequential", "vs rayon (same callable)", "CPU ns per item (all threads)", "CPU vs rayon"]);
    let row = |what: &str, i: usize, r: usize| {
        println!("| {what} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} |", mbs(t[i]), t[2] / t[i], t[r] / t[i], per(c[i]), c[r] / c[i]);
    };
    row(&format!("rt_parallel_map(\"{name}\", threads 2)"), 0, 3);
    row("rt_parallel_map(host callback, threads 2)", 1, 4);
    row(&format!("sequential loop of {name}"), 2, 3);
    row(&format!("rayon par_iter (2 threads) of {name}"), 3, 3);
    row("rayon par_iter (2 threads) of the callback", 4, 4);
    println!();
}

fn parallel_maps(lib: &std::path::Path) {
    let c = std::ffi::CString::new(lib.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a NUL-terminated path that outlives the call; loading the library runs only
    // its registration constructor. It is never closed, so its code stays mapped.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!h.is_null(), "dlopen {}", lib.display());
    let name = "rt_sha256_hash";
    let mut ar = 0u32;
    // SAFETY: core's `void *rt_registry_lookup(const uint8_t *, size_t, uint32_t *)`: the name is
    // a live `&str` readable for its length, `ar` a writable local.
    let p = unsafe { rt_registry_lookup(name.as_ptr(), name.len(), &mut ar) };
    assert!(!p.is_null() && ar == 1);
    // SAFETY: `p` is the registered address of `rt_sha256_hash`, an `#[rt_fn]` export of arity 1
    // (asserted above): an `extern "C" fn(RtValue) -> RtValue`, in a library never unloaded.
    let sha: extern "C" fn(RtValue) -> RtValue = unsafe { std::mem::transmute(p) };
    parallel_case("sha256 of 64 x 1 MiB", chunks(64, 1 << 20), 7, sha, name);
    parallel_case("sha256 of 100,000 x 64 B", chunks(100_000, 64), 7, sha, name);
}

fn main() {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("CPUs: {cpus}; load average at start: {}\n", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));

    // ---- channel ----
    // 15 rounds, round robin: best and median, wall and CPU of both threads;
    // the two threads where the scheduler puts them, then pinned to two
    // CPUs, then pinned to one (on a loaded machine the first depends on
    // where other work runs, round by round).
    let n = 200_000;
    let mut places: Vec<(&str, Place)> = vec![("anywhere", None)];
    if cpus >= 2 {
        places.push(("pinned to CPUs 0 and 1", Some((0, 1))));
    }
    places.push(("both pinned to CPU 0", Some((0, 0))));
    let mut first = true;
    for (where_, place) in places {
        let (mut ours, mut cb) = (Vec::new(), Vec::new());
        for _ in 0..15 {
            let r = race_cpu(1, &mut [&mut || channel_ours(n, 1024, place), &mut || channel_crossbeam(n, 1024, place)]);
            ours.push(r[0]);
            cb.push(r[1]);
        }
        let stat = |v: &[(f64, f64)], cpu: bool, median: bool| {
            let mut x: Vec<f64> = v.iter().map(|p| if cpu { p.1 } else { p.0 } / n as f64 * 1e9).collect();
            x.sort_by(|a, b| a.total_cmp(b));
            if median {
                x[x.len() / 2]
            } else {
                x[0]
            }
        };
        let title = format!("channel, small ints, 2 threads ({where_}), capacity 1024, 15 rounds");
        bench::table_header(&[
            &title,
            "ns per send+recv, best / median",
            "ratio (crossbeam / this), best / median",
            "CPU ns (both threads), best / median",
            "CPU ratio, best / median",
        ]);
        let cell = |v: &[(f64, f64)], cpu: bool| format!("{:.0} / {:.0}", stat(v, cpu, false), stat(v, cpu, true));
        let ratio = |cpu: bool| format!("{:.2} / {:.2}", stat(&cb, cpu, false) / stat(&ours, cpu, false), stat(&cb, cpu, true) / stat(&ours, cpu, true));
        println!("| rt_channel_send + rt_channel_recv | {} | {} | {} | {} |", cell(&ours, false), ratio(false), cell(&ours, true), ratio(true));
        println!("| crossbeam-channel directly | {} | 1.00 | {} | 1.00 |", cell(&cb, false), cell(&cb, true));
        if first {
            if let Some(p) = bench::python(PY_QUEUE, &[OsStr::new("50000"), OsStr::new("1024")]) {
                println!("| Python queue.Queue (anywhere, best of 3) | {:.0} | {:.3} (best) | - | - |", p * 1e9, stat(&cb, false, false) / (p * 1e9));
            }
            first = false;
        }
        println!();
    }

    // One thread sending then receiving: the cost of the calls themselves (no waiting).
    let ch = rt_channel_create(Value::int(1024).raw());
    let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
    let pairs = 1_000_000;
    let f_ours = || {
        rt_channel_send(ch, 8, NIL);
        black_box(rt_channel_recv(ch, NIL));
    };
    let f_cb = || {
        tx.send(8).unwrap();
        black_box(rx.recv().unwrap());
    };
    let mut f_ours_n = || {
        for _ in 0..pairs {
            f_ours();
        }
    };
    let mut f_cb_n = || {
        for _ in 0..pairs {
            f_cb();
        }
    };
    let best = race_cpu(7, &mut [&mut f_ours_n, &mut f_cb_n]);
    let per = |s: f64| s / pairs as f64 * 1e9;
    bench::table_header(&["channel, one thread: send then recv", "CPU ns per pair", "ratio (crossbeam / this)"]);
    println!("| rt_channel_send + rt_channel_recv | {:.1} | {:.2} |", per(best[0].1), best[1].1 / best[0].1);
    println!("| crossbeam send + recv | {:.1} | 1.00 |\n", per(best[1].1));

    // ---- parallel map: a registered function and a host callback, vs rayon ----
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let lib = [deps.join("libffi_crypto.so"), deps.parent().unwrap().join("libffi_crypto.so")].into_iter().find(|p| p.is_file());
    match lib {
        None => println!("libffi_crypto.so not found next to {}: parallel map skipped\n", exe.display()),
        Some(lib) => parallel_maps(&lib),
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
    // The package as installed (bindings/python/simple_rt's Python files, the
    // release libraries and native extension beside them) in a temporary
    // directory: the in-tree package links the debug libraries (dev.sh).
    bench::table_header(&["Python callback in rt_parallel_map", "us per element"]);
    match python_package(deps) {
        Err(why) => println!("| (skipped: {why}) | - |"),
        Ok(dir) => {
            let out = std::process::Command::new("python3").arg("-c").arg(PY_CALLBACK).arg(&dir).env_remove("SIMPLE_RT_LIB_DIR").output();
            let _ = std::fs::remove_dir_all(&dir);
            match out.ok().filter(|o| o.status.success()).and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse::<f64>().ok()) {
                Some(s) => println!("| lambda x: x, 20,000 items (minus the same map of a native function) | {:.2} |", s * 1e6),
                None => println!("| (python3 failed with the package in {}) | - |", dir.display()),
            }
        }
    }
}

/// A temporary `simple_rt` package: the tree's Python files, and the release
/// libraries and native extension (`cargo build -p simple_rt_py --release`
/// with `PYO3_BUILD_EXTENSION_MODULE=1`) next to them.
fn python_package(deps: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let rel = [deps, deps.parent().unwrap()].into_iter().find(|d| d.join("libffi_core.so").is_file()).ok_or("no release libffi_core.so")?;
    let rel = rel.parent().filter(|p| p.join("lib_native.so").is_file()).unwrap_or(rel);
    let native = rel.join("lib_native.so");
    if !native.is_file() {
        return Err(format!("{} missing (build simple_rt_py --release)", native.display()));
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/python/simple_rt");
    let dir = std::env::temp_dir().join(format!("rt-bench-py-{}", std::process::id()));
    let pkg = dir.join("simple_rt");
    std::fs::create_dir_all(&pkg).map_err(|e| e.to_string())?;
    let link = |from: &std::path::Path, name: &std::ffi::OsStr| std::os::unix::fs::symlink(from, pkg.join(name)).map_err(|e| e.to_string());
    for e in std::fs::read_dir(&src).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().ends_with(".so") {
            link(&e.path(), &name)?;
        }
    }
    for e in std::fs::read_dir(rel).map_err(|e| e.to_string())?.flatten() {
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.starts_with("libffi_") && n.ends_with(".so") && n != "libffi_macros.so" {
            link(&e.path(), &name)?;
        }
    }
    link(&native, std::ffi::OsStr::new("_native.abi3.so"))?;
    Ok(dir)
}
