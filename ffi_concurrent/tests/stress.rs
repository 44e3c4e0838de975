//! Collector stress (SPEC §8): fresh nested values pass through channels, a
//! mutex, thread arguments/results and parallel map while another thread
//! forces collections in a loop; every value is checked at the end. The
//! control run repeats it in a child process with the pins switched off
//! (`SIMPLE_RT_TEST_UNPROTECTED=1`, honoured by debug builds only) and
//! must fail: values are lost (wrong content, or a crash reading them).
//! Also: library threads keep running while the process forks and execs.

mod common;

use common::*;
use ffi_concurrent::channel::*;
use ffi_concurrent::parallel::*;
use ffi_concurrent::sync::*;
use ffi_concurrent::thread::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{int, ok, NIL};
use ffi_sdk::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Keeps forcing collections until dropped.
struct Collector(Arc<AtomicBool>, Option<std::thread::JoinHandle<usize>>);
impl Collector {
    fn start() -> Collector {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let h = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                unsafe { rt_gc_collect() };
                n += 1;
            }
            n
        });
        Collector(stop, Some(h))
    }
    fn stop(mut self) -> usize {
        self.0.store(true, Ordering::Relaxed);
        self.1.take().map(|h| h.join().unwrap()).unwrap_or(0)
    }
}

/// Allocates and drops about `mb` MB of values shaped like the ones under test.
fn churn(mb: usize) {
    for i in 0..(mb * 1_000_000 / 400) as i64 {
        std::hint::black_box(make_nested(i + 1_000_000));
    }
}

/// The whole workload; Err(what was lost) when a value came back wrong.
fn workload() -> Result<String, String> {
    let mut lost = Vec::new();
    let col = Collector::start();

    // 1. Channel: values sit in the buffer while their producers are gone.
    let ch = ok(rt_channel_create(NIL)).raw();
    let producers: Vec<_> = (0..2)
        .map(|p| {
            std::thread::spawn(move || {
                for i in 0..2000 {
                    ok(rt_channel_send(ch, make_nested(p * 10_000 + i).raw(), NIL));
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|h| h.join().unwrap());
    churn(40);
    unsafe { rt_gc_collect() };
    churn(40);
    let mut seen = vec![0usize; 2];
    let mut next = [0i64; 2];
    for _ in 0..4000 {
        let v = ok(rt_channel_recv(ch, NIL));
        let i = v.get("i").as_int().unwrap_or(-1);
        let p = (i / 10_000) as usize;
        if p < 2 && i % 10_000 == next[p] && nested_ok(v, i) {
            next[p] += 1;
            seen[p] += 1;
        } else {
            lost.push(format!("channel item {}", seen[0] + seen[1]));
        }
    }

    // 2. Concurrent producers and consumers through a bounded channel.
    let ch = ok(rt_channel_create(int(16))).raw();
    let cons: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut bad = 0;
                for _ in 0..3000 {
                    let v = ok(rt_channel_recv(ch, NIL));
                    let i = v.get("i").as_int().unwrap_or(-1);
                    if !nested_ok(v, i) {
                        bad += 1;
                    }
                    churn(0);
                }
                bad
            })
        })
        .collect();
    let prods: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                for i in 0..3000 {
                    ok(rt_channel_send(ch, make_nested(i).raw(), NIL));
                }
            })
        })
        .collect();
    prods.into_iter().for_each(|h| h.join().unwrap());
    let bad: usize = cons.into_iter().map(|h| h.join().unwrap()).sum();
    if bad > 0 {
        lost.push(format!("{bad} values through the bounded channel"));
    }

    // 3. Mutex: the value lives only inside it between the rounds.
    let m = ok(rt_mutex_new(make_nested(0).raw())).raw();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut bad = 0;
                for _ in 0..500 {
                    let v = ok(rt_mutex_lock(m, NIL));
                    let i = v.get("i").as_int().unwrap_or(-1);
                    if !nested_ok(v, i) {
                        bad += 1;
                    }
                    ok(rt_mutex_unlock(m, make_nested(i + 1).raw()));
                    churn(0);
                }
                bad
            })
        })
        .collect();
    let bad: usize = workers.into_iter().map(|h| h.join().unwrap()).sum();
    churn(20);
    let v = ok(rt_mutex_lock(m, NIL));
    if bad > 0 || !nested_ok(v, 2000) {
        lost.push(format!("mutex ({bad} bad rounds, final {})", v.get("i").as_int().unwrap_or(-1)));
    }
    ok(rt_mutex_unlock(m, NIL));

    // 4. Thread arguments and results: the result waits in the thread state.
    let cb = cb1(identity, 0);
    // (The handles themselves go into a runtime array: a Rust Vec would not keep them.)
    let hs = Value::array(64);
    for i in 0..64 {
        hs.push(ok(rt_thread_spawn(cb.raw(), make_nested(i).raw(), NIL)));
    }
    std::thread::sleep(std::time::Duration::from_millis(50));
    churn(40);
    for i in 0..64 {
        let v = ok(rt_thread_join(hs.at(i).raw(), NIL));
        if !nested_ok(v, i as i64) {
            lost.push(format!("thread result {i}"));
        }
    }

    // 5. Parallel map: fresh values made on the workers.
    let items = Value::array(4000);
    for i in 0..4000 {
        items.push(Value::int(i));
    }
    let out = ok(rt_parallel_map(cb1(nested, 0).raw(), items.raw(), NIL));
    churn(20);
    let bad = (0..4000).filter(|&i| !nested_ok(out.at(i), i as i64)).count();
    if bad > 0 {
        lost.push(format!("{bad} parallel map results"));
    }

    let collections = col.stop();
    if lost.is_empty() {
        Ok(format!("{collections} forced collections"))
    } else {
        Err(format!("{} losses, first: {:?} ({collections} forced collections)", lost.len(), &lost[..lost.len().min(5)]))
    }
}

unsafe extern "C" fn identity(_: *mut std::ffi::c_void, a: RtValue) -> RtValue {
    churn(1);
    a
}

const CHILD: &str = "RT_STRESS_CHILD";

#[test]
fn stress_values_survive_forced_collections() {
    if std::env::var_os(CHILD).is_some() {
        // The control run's child: exit 3 when values were lost.
        let r = workload();
        eprintln!("control child: {r:?}");
        std::process::exit(if r.is_ok() { 0 } else { 3 });
    }
    match workload() {
        Ok(s) => eprintln!("protected run: intact after {s}"),
        Err(e) => panic!("values lost with pins on: {e}"),
    }
}

#[test]
#[cfg(debug_assertions)]
fn stress_control_without_pins_loses_values() {
    let exe = std::env::current_exe().unwrap();
    let log = std::env::temp_dir().join(format!("rt-stress-control-{}.log", std::process::id()));
    let mut child = std::process::Command::new(exe)
        .args(["--exact", "stress_values_survive_forced_collections", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("SIMPLE_RT_TEST_UNPROTECTED", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // A heap corrupted by unprotected values may also make the child spin:
    // after 60 s that counts as the failure it is (and the child is killed).
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > std::time::Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    use std::os::unix::process::ExitStatusExt;
    let lost = status.is_none_or(|st| st.code() == Some(3) || st.signal().is_some());
    assert!(lost, "the unprotected run should lose values, but: {status:?}\n{err}");
    let how = status.map_or_else(|| "hung, killed after 60 s".to_string(), |st| format!("{st:?}"));
    eprintln!("control run failed as it must: {how}; {}", err.lines().find(|l| l.contains("control child")).unwrap_or(""));
}

/// Library threads allocate and collect while this thread forks and execs
/// children (through ffi_process when libffi_process.so is built, else std).
#[test]
fn fork_and_exec_while_library_threads_run() {
    let run_child = process_runner();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let cb = cb1(nested, 0).raw();
    let bg = std::thread::spawn(move || {
        let items = Value::array(200);
        for i in 0..200 {
            items.push(Value::int(i));
        }
        let mut rounds = 0;
        while !s.load(Ordering::Relaxed) {
            let out = ok(rt_parallel_map(cb, items.raw(), NIL));
            assert!((0..200).all(|i| nested_ok(out.at(i), i as i64)));
            unsafe { rt_gc_collect() };
            rounds += 1;
        }
        rounds
    });
    for _ in 0..40 {
        run_child();
    }
    stop.store(true, Ordering::Relaxed);
    assert!(bg.join().unwrap() > 0);
}

fn process_runner() -> Box<dyn Fn()> {
    type Run = extern "C" fn(RtValue, RtValue, RtValue) -> RtValue;
    extern "C" {
        fn rt_registry_lookup(name: *const u8, n: usize, arity: *mut u32) -> *mut std::ffi::c_void;
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let lib = dir.join("libffi_process.so");
    if lib.is_file() {
        let c = std::ffi::CString::new(lib.to_str().unwrap()).unwrap();
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        let name = "rt_process_run";
        let mut ar = 0u32;
        let p = unsafe { rt_registry_lookup(name.as_ptr(), name.len(), &mut ar) };
        if !h.is_null() && !p.is_null() && ar == 3 {
            let f: Run = unsafe { std::mem::transmute::<*mut std::ffi::c_void, Run>(p) };
            return Box::new(move || {
                let r = ok(f(Value::text("/bin/true").raw(), Value::array(0).raw(), NIL));
                assert_eq!(r.get("code").as_int(), Some(0), "{}", r.describe());
            });
        }
    }
    eprintln!("libffi_process.so not found or not usable: forking with std::process::Command");
    Box::new(|| assert!(std::process::Command::new("/bin/true").status().unwrap().success()))
}
