//! The barrier-free close paths of ffi_core/src/handle.rs ("Close without a
//! barrier", "Closing an unreachable handle"): a handle never lent, or lent
//! by the closing thread only, is closed without the heavy fence, and the
//! collector closes unreachable handles without it. Asserted, as in
//! handle_stress.rs: no borrow sees its resource dropped (no use after
//! free), a borrow that starts after close returned is Error Closed, the
//! resource is dropped exactly once (no leak, no double drop), also for
//! handles dropped to the collector (lent or not, closed explicitly first
//! or not). Run in both fence modes.

#![deny(clippy::undocumented_unsafe_blocks)]

// Links libffi_core.so through the library (the core's symbols).
use ffi_concurrent as _;
use ffi_sdk::abi::{self, RtValue};
use ffi_sdk::Code;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Barrier};

#[path = "common/probe.rs"]
mod probe;
use probe::*;

extern "C" {
    fn rt_gc_collect() -> RtValue;
}

/// One round: the main thread lends `h` first when `pre_lend` (so it is the
/// sole lender when the workers' first borrows race its close), keeping that
/// borrow in flight across the close when `hold`; `workers` threads borrow
/// as fast as they can from the start; the main thread closes after `delay`.
fn round(workers: usize, delay: u32, pre_lend: bool, hold: bool) {
    let probe = Arc::new(Probe::default());
    let h = new_res(&probe);
    // SAFETY: `h` is the handle just made, still in this frame, so live; the pin keeps it alive
    // for the workers until the unpin below.
    unsafe { abi::rt_value_pin(h) };
    let held = if pre_lend {
        let b = borrow(h).unwrap();
        check(&b, &probe);
        if hold {
            Some(b)
        } else {
            None
        }
    } else {
        None
    };
    let closed_done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(workers + 1));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (probe, closed_done, start) = (probe.clone(), closed_done.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                loop {
                    let after_close = closed_done.load(SeqCst);
                    match borrow(h) {
                        Ok(b) => {
                            assert!(!after_close, "a borrow that started after close returned succeeded");
                            check(&b, &probe);
                            for _ in 0..8 {
                                std::hint::spin_loop();
                            }
                            check(&b, &probe);
                        }
                        Err(Code::Closed) => break,
                        Err(c) => panic!("unexpected {c:?}"),
                    }
                }
            })
        })
        .collect();
    close_after(h, delay, &start, &closed_done);
    if let Some(b) = held {
        // The main thread's own borrow, in flight across its close: still alive.
        check(&b, &probe);
        drop(b);
    }
    for t in threads {
        t.join().expect("worker");
    }
    assert_released(h, &probe);
    // SAFETY: drops the pin taken above; the workers were joined.
    unsafe { abi::rt_value_unpin(h) };
}

fn stress(rounds: u32) {
    for r in 0..rounds {
        // Small delays: the close often lands before, between or among the workers' first borrows.
        let delay = (r * 13) % 300;
        round(2, delay, false, false);
        round(2, delay, true, false);
        round(2, delay, true, r % 2 == 0);
    }
}

/// Handles dropped to the collector: never lent, lent by this thread, lent
/// by another thread; half of them closed explicitly first. Each resource
/// is dropped once at most (exactly once for the closed ones, at close), and
/// the collector releases (nearly) all of the others.
fn collected(n: usize) {
    let probes: Vec<Arc<Probe>> = (0..n).map(|_| Arc::new(Probe::default())).collect();
    make_and_drop(&probes);
    for i in (0..n).filter(|i| i % 2 == 0) {
        assert_eq!(probes[i].drops.load(SeqCst), 1, "closed explicitly: dropped at close");
    }
    for _ in 0..4 {
        // SAFETY: core's `RtValue rt_gc_collect(void)`: no arguments; it only reclaims
        // unreachable objects and runs their finalizers.
        unsafe { rt_gc_collect() };
    }
    let mut released = 0;
    for p in &probes {
        let d = p.drops.load(SeqCst);
        assert!(d <= 1, "a resource was dropped {d} times");
        released += d;
    }
    // The collector is conservative: a stale word on a stack may keep a few alive.
    assert!(released >= n * 9 / 10, "only {released} of {n} resources released");
}

#[inline(never)]
fn make_and_drop(probes: &[Arc<Probe>]) {
    for (i, p) in probes.iter().enumerate() {
        let h = new_res(p);
        match i % 3 {
            0 => {}
            1 => check(&borrow(h).unwrap(), p),
            _ => {
                // SAFETY: `h` is live in this frame; pinned while the other thread uses it.
                unsafe { abi::rt_value_pin(h) };
                let p2 = p.clone();
                std::thread::spawn(move || check(&borrow(h).unwrap(), &p2)).join().unwrap();
                // SAFETY: drops the pin just taken; the thread was joined.
                unsafe { abi::rt_value_unpin(h) };
            }
        }
        if i % 2 == 0 {
            // SAFETY: `h` is live in this frame.
            assert_eq!(unsafe { abi::rt__handle_close(h) }, 0);
        }
    }
}

fn all(rounds: u32) {
    stress(rounds);
    collected(3000);
}

#[test]
fn close_paths_default_mode() {
    all(300);
}

#[test]
fn close_paths_fence_mode() {
    in_fence_mode("close_paths_fence_mode", || all(300));
}
