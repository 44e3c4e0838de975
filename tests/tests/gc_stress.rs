//! Collector stress (SPEC §4, §8): forced collections from another thread
//! while 4 threads build linked structures; pins keep otherwise unreachable
//! values; unpinned garbage is reclaimed and the heap stays bounded; handles
//! are finalized. Each test runs in its own child process so heap figures
//! are not disturbed by the other tests.

use rt_tests::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const THREADS: usize = 4;
const CELLS: usize = 30_000;

/// Cell i of thread k: [text "t{k}-{i}", prev cell, {"i": i, "b": bytes[k, i%256], "big": 2^62+i}].
fn build_list(c: &Core, k: usize, n: usize) -> RtValue {
    let mut head = NIL;
    for i in 0..n {
        let cell = (c.array_new)(3);
        (c.array_push)(cell, c.text(&format!("t{k}-{i}")));
        (c.array_push)(cell, head);
        let d = (c.dict_new)();
        (c.dict_set)(d, c.text("i"), c.int(i as i64));
        (c.dict_set)(d, c.text("b"), c.bytes(&[k as u8, (i % 256) as u8]));
        (c.dict_set)(d, c.text("big"), c.int((1i64 << 62) + i as i64));
        (c.array_push)(cell, d);
        head = cell;
    }
    head
}

/// Number of cells that do not hold what build_list put there (walks from the head).
fn bad_cells(c: &Core, k: usize, n: usize, head: RtValue) -> usize {
    let mut bad = 0;
    let mut cell = head;
    for i in (0..n).rev() {
        if c.kind_of(cell) != kind::ARRAY || (c.array_len)(cell) != 3 {
            return bad + i + 1; // the rest of the list is unreachable
        }
        let t = (c.array_get)(cell, 0);
        let ok_text = c.kind_of(t) == kind::STRING && c.get_text(t).as_deref() == Some(&format!("t{k}-{i}"));
        let d = (c.array_get)(cell, 2);
        let ok_dict = c.kind_of(d) == kind::DICT
            && (c.dict_len)(d) == 3
            && c.get_int(c.get(d, "i")) == Some(i as i64)
            && c.get_bytes(c.get(d, "b")) == Some(vec![k as u8, (i % 256) as u8])
            && c.get_int(c.get(d, "big")) == Some((1i64 << 62) + i as i64);
        if !(ok_text && ok_dict) {
            bad += 1;
        }
        cell = (c.array_get)(cell, 1);
    }
    if cell != NIL {
        bad += 1;
    }
    bad
}

/// Runs `work(k)` on THREADS threads while another thread forces collections; returns (results, collections forced).
fn with_collector<T: Send + 'static>(work: impl Fn(usize) -> T + Send + Sync + 'static) -> (Vec<T>, usize) {
    let c = core();
    let done = Arc::new(AtomicBool::new(false));
    let forced = Arc::new(AtomicUsize::new(0));
    let collector = {
        let (done, forced) = (done.clone(), forced.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                c.collect();
                forced.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let work = Arc::new(work);
    let handles: Vec<_> = (0..THREADS)
        .map(|k| {
            let w = work.clone();
            std::thread::spawn(move || w(k))
        })
        .collect();
    let out = handles.into_iter().map(|h| h.join().expect("builder thread panicked")).collect();
    done.store(true, Ordering::Release);
    collector.join().unwrap();
    (out, forced.load(Ordering::Relaxed))
}

#[test]
fn four_threads_build_while_a_fifth_collects() {
    in_child("four_threads_build_while_a_fifth_collects", &[], || {
        let c = core();
        let gc0 = c.stat("collections");
        let (bad, forced) = with_collector(|k| {
            let c = core();
            let head = build_list(c, k, CELLS);
            // verified while the collector still runs, then again after more collections
            let first = bad_cells(c, k, CELLS, head);
            for _ in 0..3 {
                c.collect();
            }
            first + bad_cells(c, k, CELLS, head)
        });
        let gcs = c.stat("collections") - gc0;
        println!("bad cells per thread {bad:?}; {forced} forced, {gcs} collections in all");
        assert!(forced >= 10 && gcs >= 10, "too few collections ran during the build ({forced} forced, {gcs} total)");
        assert_eq!(bad.iter().sum::<usize>(), 0, "cells lost or corrupted: {bad:?}");
    });
}

#[test]
fn short_lived_threads_register_and_unregister_during_collections() {
    in_child("short_lived_threads_register_and_unregister_during_collections", &[], || {
        let (bad, _) = with_collector(|k| {
            let mut bad = 0;
            for round in 0..25 {
                // each round a new thread: registered by its first call, unregistered at its exit
                bad += std::thread::spawn(move || {
                    let c = core();
                    let head = build_list(c, k * 100 + round, 500);
                    c.collect();
                    bad_cells(c, k * 100 + round, 500, head)
                })
                .join()
                .unwrap();
            }
            bad
        });
        assert_eq!(bad.iter().sum::<usize>(), 0, "{bad:?}");
    });
}

/// The stress above must be able to fail: the same structures, held only in
/// memory the collector does not scan, are lost. (Without this, a checker
/// that never looks, or collections that never run, would pass silently.)
#[test]
fn control_unrooted_structures_are_lost() {
    const NAME: &str = "control_unrooted_structures_are_lost";
    if is_child(NAME) {
        let c = core();
        let hidden: Vec<u64> = (0..THREADS).map(|k| build_list(c, k, 5_000) ^ 0x5555_5555_5555_5555).collect();
        // nothing references the lists now but masked words in Rust heap memory
        for _ in 0..5 {
            c.collect();
            let junk = c.text_array(&["overwrite"; 2000]);
            std::hint::black_box(junk);
        }
        let bad: usize =
            hidden.iter().enumerate().map(|(k, h)| bad_cells(c, k, 5_000, h ^ 0x5555_5555_5555_5555)).sum();
        println!("control: {bad} bad cells");
        return;
    }
    let out = child_output(NAME, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let detected = !out.status.success() || text.contains("control:") && !text.contains("control: 0 bad");
    assert!(detected, "unrooted lists survived 5 collections intact: the stress test could not fail\n{text}");
}

#[test]
fn pinned_values_survive_with_nothing_else_referencing_them() {
    in_child("pinned_values_survive_with_nothing_else_referencing_them", &[], || {
        let c = core();
        const MASK: u64 = 0xA5A5_A5A5_A5A5_A5A5;
        let n = 2_000;
        let mut hidden = Vec::with_capacity(n);
        for i in 0..n {
            let v = match i % 5 {
                0 => c.text(&format!("pinned text {i}")),
                1 => c.bytes(&(i as u32).to_le_bytes()),
                2 => c.text_array(&[&format!("a{i}"), &format!("b{i}")]),
                3 => c.dict(&[("n", c.int(i as i64)), ("s", c.text(&format!("s{i}")))]),
                _ => c.int(i64::MIN + i as i64),
            };
            (c.value_pin)(v);
            hidden.push(v ^ MASK);
        }
        let gc0 = c.stat("collections");
        for round in 0..30 {
            let g = "garbage ".repeat(20);
            let junk = c.text_array(&[g.as_str(); 3000]);
            std::hint::black_box(junk);
            if round % 3 == 0 {
                c.collect();
            }
        }
        assert!(c.stat("collections") - gc0 >= 10);
        for (i, h) in hidden.iter().enumerate() {
            let v = h ^ MASK;
            assert_eq!((c.value_pin_count)(v), 1, "value {i}");
            match i % 5 {
                0 => assert_eq!(c.get_text(v), Some(format!("pinned text {i}"))),
                1 => assert_eq!(c.get_bytes(v), Some((i as u32).to_le_bytes().to_vec())),
                2 => {
                    assert_eq!(c.get_text((c.array_get)(v, 0)), Some(format!("a{i}")));
                    assert_eq!(c.get_text((c.array_get)(v, 1)), Some(format!("b{i}")));
                }
                3 => {
                    assert_eq!(c.get_int(c.get(v, "n")), Some(i as i64));
                    assert_eq!(c.get_text(c.get(v, "s")), Some(format!("s{i}")));
                }
                _ => assert_eq!(c.get_int(v), Some(i64::MIN + i as i64)),
            }
            (c.value_unpin)(v);
        }
    });
}

#[test]
fn unpinned_garbage_is_reclaimed_and_the_heap_stays_bounded() {
    in_child("unpinned_garbage_is_reclaimed_and_the_heap_stays_bounded", &[], || {
        let c = core();
        let chunk = vec![0x5Au8; 4 << 20];
        let alloc0 = c.stat("total_allocated");
        let mut peak = 0;
        for round in 0..150 {
            // 4 MiB of bytes and 1000 strings, pinned across a collection, then dropped
            let b = c.bytes(&chunk);
            let r = format!("round {round}");
            let a = c.text_array(&[r.as_str(); 1000]);
            (c.value_pin)(b);
            (c.value_pin)(a);
            c.collect();
            assert_eq!((c.bytes_len)(b), chunk.len());
            assert_eq!(c.get_text((c.array_get)(a, 999)), Some(format!("round {round}")));
            (c.value_unpin)(b);
            (c.value_unpin)(a);
            peak = peak.max(c.stat("heap_size"));
        }
        c.collect();
        let allocated = c.stat("total_allocated") - alloc0;
        let heap = c.stat("heap_size");
        println!("allocated {} MiB in all; heap peak {} MiB, now {} MiB", allocated >> 20, peak >> 20, heap >> 20);
        assert!(allocated >= 600 << 20, "only {allocated} bytes allocated");
        assert!(peak < 96 << 20, "heap grew to {} MiB for 8 MiB live at a time: garbage is not reclaimed", peak >> 20);
        assert!(c.stat("free_bytes") > 0);
    });
}

#[test]
fn handles_are_finalized_unless_pinned() {
    in_child("handles_are_finalized_unless_pinned", &[], || {
        let c = core();
        open_all();
        if !c.has("rt_regex_new") {
            println!("skipped: no handle type built (ffi_data's rt_regex_new); build ffi_data to run it");
            return;
        }
        let kept = c.ok(c.call("rt_regex_new", &[c.text("^kept$")]));
        (c.value_pin)(kept);
        let hidden = kept ^ 0xFFFF;
        let fin0 = c.stat("finalized");
        for i in 0..2_000 {
            let h = c.ok(c.call("rt_regex_new", &[c.text(&format!("^h{i}$"))]));
            std::hint::black_box(h);
        }
        for _ in 0..5 {
            c.collect();
        }
        // The background finalizer thread adds its count when its batch ends:
        // give it up to 5 s to report what it ran.
        let t0 = std::time::Instant::now();
        let mut finalized = c.stat("finalized") - fin0;
        while finalized < 1_500 && t0.elapsed().as_secs() < 5 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            finalized = c.stat("finalized") - fin0;
        }
        println!("{finalized} of 2000 dropped handles finalized");
        assert!(finalized >= 1_500, "only {finalized} of 2000 unreachable handles were finalized");
        let kept = hidden ^ 0xFFFF;
        assert_eq!(c.call("rt_handle_is_open", &[kept]), TRUE, "a pinned handle was finalized");
        assert_eq!(c.call("rt_regex_is_match", &[kept, c.text("kept")]), TRUE);
        (c.value_unpin)(kept);
        // an explicitly closed handle is released once: its finalizer finds it closed
        let h = c.ok(c.call("rt_regex_new", &[c.text("x")]));
        assert_eq!(c.call("rt_handle_close", &[h]), TRUE);
        for _ in 0..3 {
            c.collect();
        }
    });
}

