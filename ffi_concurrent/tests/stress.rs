//! Collector stress (SPEC §8): fresh nested values pass through channels, a
//! mutex, thread arguments/results and parallel map while another thread
//! forces collections in a loop; every value is checked at the end. The
//! control run repeats it in a child process with the pins switched off
//! (`SIMPLE_RT_TEST_UNPROTECTED=1`, honoured by debug builds only) and
//! must fail: values are lost (wrong content, or a crash reading them).
//! Also: library threads keep running while the process forks and execs.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_concurrent::channel::*;
use ffi_concurrent::parallel::*;
use ffi_concurrent::sync::*;
use ffi_concurrent::thread::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{int, ok, NIL};
use ffi_sdk::Value;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Pause of the collecting thread between two forced collections. Without
/// it the thread collected back to back: the world was stopped nearly all
/// the time (each collection signals every registered thread and waits for
/// all of them; the next began as soon as they were restarted), so the
/// workload advanced only in scheduling gaps, and on a loaded 2-CPU machine
/// the test took 3-75 s run to run (docs/CONCURRENCY.md, "The collector
/// stress test"). Each concurrent phase instead runs until at least
/// `MIN_COLLECTIONS` collections happened during it.
const PACE_US: u64 = 500;
const MIN_COLLECTIONS: usize = 60;

/// Keeps forcing collections (paced, see `PACE_US`) until stopped.
struct Collector(Arc<AtomicBool>, Arc<AtomicUsize>, Option<std::thread::JoinHandle<()>>);
impl Collector {
    fn start() -> Collector {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let h = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
                // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
                // a registered stack or pinned).
                unsafe { rt_gc_collect() };
                c.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_micros(PACE_US));
            }
        });
        Collector(stop, count, Some(h))
    }
    fn count(&self) -> usize {
        self.1.load(Ordering::Relaxed)
    }
    /// Runs `round` at least once and until `MIN_COLLECTIONS` collections happened during the rounds.
    fn during(&self, mut round: impl FnMut()) -> usize {
        let start = self.count();
        let mut rounds = 0;
        while rounds == 0 || self.count() - start < MIN_COLLECTIONS {
            round();
            rounds += 1;
        }
        rounds
    }
    fn stop(mut self) -> usize {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.2.take() {
            h.join().unwrap();
        }
        self.count()
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
    let mut tp = (std::time::Instant::now(), col.count());
    let mut phase = |name: &str, col: &Collector| {
        eprintln!("phase {name}: {:.2} s, {} collections", tp.0.elapsed().as_secs_f64(), col.count() - tp.1);
        tp = (std::time::Instant::now(), col.count());
    };

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
    // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
    // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
    // a registered stack or pinned).
    unsafe { rt_gc_collect() };
    churn(40);
    let mut seen = [0usize; 2];
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
    phase("1 channel", &col);

    // 2. Concurrent producers and consumers through a bounded channel. The
    // consumers never allocate: only the receiving call registers them.
    let mut bad = 0;
    col.during(|| {
        let ch = ok(rt_channel_create(int(16))).raw();
        let cons: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut bad = 0;
                    for _ in 0..1000 {
                        let v = ok(rt_channel_recv(ch, NIL));
                        let i = v.get("i").as_int().unwrap_or(-1);
                        if !nested_ok(v, i) {
                            bad += 1;
                        }
                    }
                    bad
                })
            })
            .collect();
        let prods: Vec<_> = (0..2)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        ok(rt_channel_send(ch, make_nested(i).raw(), NIL));
                    }
                })
            })
            .collect();
        prods.into_iter().for_each(|h| h.join().unwrap());
        bad += cons.into_iter().map(|h| h.join().unwrap()).sum::<usize>();
    });
    if bad > 0 {
        lost.push(format!("{bad} values through the bounded channel"));
    }
    phase("2 bounded", &col);

    // 3. Mutex: the value lives only inside it between the rounds.
    let m = ok(rt_mutex_new(make_nested(0).raw())).raw();
    let mut bad = 0;
    let rounds = col.during(|| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut bad = 0;
                    for _ in 0..200 {
                        let v = ok(rt_mutex_lock(m, NIL));
                        let i = v.get("i").as_int().unwrap_or(-1);
                        if !nested_ok(v, i) {
                            bad += 1;
                        }
                        ok(rt_mutex_unlock(m, make_nested(i + 1).raw()));
                    }
                    bad
                })
            })
            .collect();
        bad += workers.into_iter().map(|h| h.join().unwrap()).sum::<usize>();
    });
    churn(20);
    let v = ok(rt_mutex_lock(m, NIL));
    if bad > 0 || !nested_ok(v, rounds as i64 * 800) {
        lost.push(format!("mutex ({bad} bad rounds, final {})", v.get("i").as_int().unwrap_or(-1)));
    }
    ok(rt_mutex_unlock(m, NIL));
    phase("3 mutex", &col);

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
    phase("4 threads", &col);

    // 5. Parallel map: fresh values made on the workers.
    let items = Value::array(2000);
    for i in 0..2000 {
        items.push(Value::int(i));
    }
    let mapper = cb1(nested, 0);
    let mut bad = 0;
    col.during(|| {
        let out = ok(rt_parallel_map(mapper.raw(), items.raw(), NIL));
        churn(5);
        bad += (0..2000).filter(|&i| !nested_ok(out.at(i), i as i64)).count();
    });
    if bad > 0 {
        lost.push(format!("{bad} parallel map results"));
    }
    phase("5 parallel map", &col);
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

/// A thread that never allocates on the collector heap receives values whose
/// only other reference (the channel's pin) is gone once received, and holds
/// them on its stack across forced collections and heavy allocation
/// elsewhere. The receiving call must register it with the collector (the
/// values are seen only on its stack); before that fix a consumer that only
/// received was never registered, and its values were reclaimed and reused
/// (hundreds of the 500 lost, deterministically). Also covers a mutex value
/// replaced by its holder and read again by a thread that never allocated.
#[test]
fn a_receiver_that_never_allocated_keeps_its_values() {
    const N: usize = 500;
    let ch = ok(rt_channel_create(NIL)).raw();
    let m = ok(rt_mutex_new(NIL)).raw();
    // Made on a thread that is gone by the time they are checked: nobody's stack but the receiver's holds them.
    std::thread::spawn(move || {
        for i in 0..N {
            ok(rt_channel_send(ch, make_nested(i as i64).raw(), NIL));
        }
        let v = ok(rt_mutex_lock(m, NIL));
        assert!(v.is_nil());
        ok(rt_mutex_unlock(m, make_nested(-7).raw()));
    })
    .join()
    .unwrap();
    let (got_tx, got_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let consumer = std::thread::spawn(move || {
        // No collector allocation on this thread: only receiving, and reads.
        let mut held = [0 as RtValue; N];
        for h in held.iter_mut() {
            *h = ok(rt_channel_recv(ch, NIL)).raw();
        }
        // The mutex's value, then the mutex emptied: this stack holds the only reference.
        let mv = ok(rt_mutex_lock(m, NIL)).raw();
        ok(rt_mutex_unlock(m, Value::int(0).raw()));
        got_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let held = std::hint::black_box(held);
        let bad: Vec<usize> = (0..N).filter(|&i| !nested_ok(Value::from_raw(held[i]), i as i64)).collect();
        let mutex_ok = nested_ok(Value::from_raw(std::hint::black_box(mv)), -7);
        (bad, mutex_ok)
    });
    got_rx.recv().unwrap();
    for _ in 0..4 {
        // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
        // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
        // a registered stack or pinned).
        unsafe { rt_gc_collect() };
        churn(30);
    }
    // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
    // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
    // a registered stack or pinned).
    unsafe { rt_gc_collect() };
    go_tx.send(()).unwrap();
    let (bad, mutex_ok) = consumer.join().unwrap();
    assert!(bad.is_empty() && mutex_ok, "{} of {N} received values lost (first {:?}); mutex value intact: {mutex_ok}", bad.len(), &bad[..bad.len().min(8)]);
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
            // SAFETY: core's `RtValue rt_gc_collect(void)`, an `#[rt_fn]` export declared with that
            // signature: no arguments; it only reclaims unreachable objects (what the test uses next is on
            // a registered stack or pinned).
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
        // SAFETY: `c` is a NUL-terminated path that outlives the call; loading libffi_process runs
        // only its registration constructor (adds its entries to core's registry). The library
        // is never closed, so its code stays mapped for the process.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        let name = "rt_process_run";
        let mut ar = 0u32;
        // SAFETY: core's `void *rt_registry_lookup(const uint8_t *, size_t, uint32_t *)`: the name
        // is a live `&str` readable for its length, `ar` a writable local.
        let p = unsafe { rt_registry_lookup(name.as_ptr(), name.len(), &mut ar) };
        if !h.is_null() && !p.is_null() && ar == 3 {
            // SAFETY: `p` is the registered address of `rt_process_run`, an `#[rt_fn]` export taking
            // 3 words (arity checked above), i.e. `extern "C" fn(RtValue, RtValue, RtValue) -> RtValue`;
            // its library is never unloaded.
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
