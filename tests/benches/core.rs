//! Foundation benchmark: the cost of crossing into the runtime.
//!
//! `cargo bench -p rt_tests --bench core` (release libraries from
//! target/release; the dev-dependencies build them).
//!
//! (a) a trivial export called through its dlopen'ed address vs the same
//!     body as a plain non-inlined `extern "C"` Rust function called through a
//!     function pointer (target: at most 1.5x);
//! (b) rt_string_new + rt_string_len of 16 bytes vs malloc + copy + free;
//! (c) rt_gc_malloc(32) vs libc malloc(32) + free;
//! (d) capabilities: the SDK fast path (one relaxed load of RT_CAP_SLOW,
//!     target < 5 ns), rt_cap_check on allow-all, then under a 20-scope
//!     policy on a path that matches the last scope;
//! (e) from a C host (issue 17: how an outside host sees the call path): a C
//!     program compiled here with `cc -O2` dlopens the libraries and calls
//!     rt_kind, rt_value_equal and rt_cpu_count through their dlsym'd
//!     addresses, against the same bodies written in C and called through a
//!     function pointer, once in the host and once in a separate C shared
//!     object (so the cost of reaching another object is seen apart from the
//!     runtime's). 300 alternating rounds of 1M calls: min and median.
//!
//! (f) handles (ffi_core/src/handle.rs): `rt__handle_new` + `rt__handle_close`
//!     of an `Arc<u64>` payload (what `ffi_sdk::new_handle` + close do) vs
//!     `Box::new` + drop; new + one borrow (the ffi_sdk `Handle<T>` argument
//!     protocol) + close; new dropped to the collector (batches of 100k, each
//!     followed by `rt_gc_collect`, finalizers included) vs `GC_malloc` +
//!     `GC_register_finalizer_no_order` called directly the same way.
//!
//! `SIMPLE_RT_LIB_DIR=DIR` measures other release libraries (an older build,
//! for before/after figures with the same command). `RT_BENCH_ONLY=handles`
//! runs (f) alone.

#![deny(clippy::undocumented_unsafe_blocks)]

use rt_tests::*;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Best of `runs` timings of `iters` calls of `f`, in ns per call.
fn ns_per_op(iters: u64, runs: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f(); // warm up
    }
    let mut best = f64::MAX;
    for _ in 0..runs {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    best
}

// ---- local copies of the exports' bodies (same logic, no boundary) ----

/// ffi_core's `dict::key_eq`, the body of `rt_value_equal`: identity, then (two
/// heap objects only) content for text/bytes, then canonical scalars (boxed ints
/// and floats by value).
#[inline(never)]
extern "C" fn local_value_equal(a: u64, b: u64) -> u64 {
    fn blob(v: u64) -> Option<(u32, &'static [u8])> {
        match heap_kind_full(v) {
            // SAFETY: this bench calls these copies only with values the runtime made (kept alive
            // on the stack or pinned). `heap_kind_full` saw the magic header of a String/Bytes
            // object: BlobObj layout (`abi.rs`), the length at offset 24 and `len` bytes from 32.
            k @ (1 | 2) => unsafe {
                let p = (v & !TAG_MASK) as *const u8;
                let len = *(p.add(24) as *const usize);
                Some((k, std::slice::from_raw_parts(p.add(32), len)))
            },
            _ => None,
        }
    }
    fn scalar(v: u64) -> (u32, u64) {
        match heap_kind_full(v) {
            // SAFETY: kind 5 is a live IntObj (header 24 bytes, then the i64 value, 8-aligned).
            5 => (1, unsafe { *(((v & !TAG_MASK) + 24) as *const u64) }),
            // SAFETY: kind 6 is a live FloatObj (header 24 bytes, then the f64 bits, 8-aligned).
            6 => (2, unsafe { *(((v & !TAG_MASK) + 24) as *const u64) }),
            0 => match v & TAG_MASK {
                TAG_INT => (1, ((v as i64) >> 3) as u64),
                TAG_FLOAT => (2, v & !TAG_MASK),
                _ => (3, v),
            },
            _ => (4, v),
        }
    }
    // Immediates are canonical: unless both are heap objects, equal means the same word.
    let eq = a == b
        || (a & TAG_MASK == TAG_HEAP
            && b & TAG_MASK == TAG_HEAP
            && match (blob(a), blob(b)) {
                (Some(x), Some(y)) => x == y,
                (None, None) => scalar(a) == scalar(b),
                _ => false,
            });
    if eq {
        TRUE
    } else {
        FALSE
    }
}

/// ffi_sdk's `abi::heap_kind`: the header's kind when the word points at a runtime object.
#[inline]
fn heap_kind_full(v: u64) -> u32 {
    if v & TAG_MASK != TAG_HEAP || v < 8 {
        return 0;
    }
    // SAFETY: `v` is heap-tagged and non-NULL, and this bench passes only values the runtime
    // made, so it points at a live, 8-aligned object header whose first u32 is the kind.
    let k = unsafe { *((v & !TAG_MASK) as *const u32) };
    if k & 0xFFFF_0000 != 0x5254_0000 {
        0
    } else {
        k & 0xFFFF
    }
}

/// ffi_sdk's `value::kind_of`, the body of `rt_kind`.
#[inline(never)]
extern "C" fn local_kind(v: u64) -> u32 {
    match v & TAG_MASK {
        TAG_INT => kind::INT,
        TAG_FLOAT => kind::FLOAT,
        3 => match v {
            NIL => kind::NIL,
            TRUE | FALSE => kind::BOOL,
            _ => kind::INVALID,
        },
        TAG_HEAP => match heap_kind_full(v) {
            1 => kind::STRING,
            2 => kind::BYTES,
            3 => kind::ARRAY,
            4 => kind::DICT,
            5 => kind::INT,
            6 => kind::FLOAT,
            7 => kind::ERROR,
            8 => kind::HANDLE,
            _ => kind::INVALID,
        },
        _ => kind::INVALID,
    }
}

#[inline(never)]
fn fast_path(flag: &AtomicU32) -> bool {
    flag.load(Ordering::Relaxed) == 0
}

/// (runtime, baseline) ns per call, measured alternately (9 rounds each, best of each).
fn pair(iters: u64, mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    let (mut ba, mut bb) = (f64::MAX, f64::MAX);
    for _ in 0..9 {
        ba = ba.min(ns_per_op(iters, 1, &mut a));
        bb = bb.min(ns_per_op(iters, 1, &mut b));
    }
    (ba, bb)
}

struct Row {
    op: String,
    rt: f64,
    base_name: String,
    base: Option<f64>,
}

fn main() {
    let dir = lib_dir();
    assert!(
        dir.to_string_lossy().contains("release"),
        "the benchmark needs release libraries; found {} (run it with cargo bench)",
        dir.display()
    );
    let c = core();
    let _sys = Lib::open("system").expect("libffi_system.so (cargo build --release -p ffi_system)");
    let mut rows: Vec<Row> = Vec::new();
    if std::env::var("RT_BENCH_ONLY").is_ok_and(|v| v == "handles") {
        rows.extend(handles(c));
        print_rows(&dir, &rows);
        return;
    }
    let n = 20_000_000u64;

    // (a) trivial exports through their dlopen'ed addresses
    let (eq_addr, _) = c.lookup("rt_value_equal").expect("rt_value_equal");
    // SAFETY: the registry gives `rt_value_equal` with arity 2: an `#[rt_fn]` export, so
    // `RtValue (RtValue, RtValue)`; its library is never unloaded (RTLD_NODELETE, no dlclose).
    let rt_eq: extern "C" fn(u64, u64) -> u64 = unsafe { std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(u64, u64) -> u64>(eq_addr) };
    let rt_eq = black_box(rt_eq);
    let loc_eq: extern "C" fn(u64, u64) -> u64 = black_box(local_value_equal);
    let (x, y) = (5u64 << 3, 7u64 << 3);
    assert_eq!(rt_eq(x, x), TRUE);
    assert_eq!(rt_eq(x, y), FALSE);
    assert_eq!(loc_eq(x, y), FALSE);
    for (label, a, b) in [("equal ints", x, x), ("different ints", x, y)] {
        let (rt, base) = pair(
            n,
            || {
                black_box(rt_eq(black_box(a), black_box(b)));
            },
            || {
                black_box(loc_eq(black_box(a), black_box(b)));
            },
        );
        rows.push(Row {
            op: format!("rt_value_equal({label}) via dlsym'd pointer"),
            rt,
            base_name: "same body, extern \"C\" fn pointer".into(),
            base: Some(base),
        });
    }
    let rt_kind = black_box(c.kind);
    let loc_kind: extern "C" fn(u64) -> u32 = black_box(local_kind);
    assert_eq!(rt_kind(x), kind::INT);
    let (rt, base) = pair(
        n,
        || {
            black_box(rt_kind(black_box(x)));
        },
        || {
            black_box(loc_kind(black_box(x)));
        },
    );
    rows.push(Row {
        op: "rt_kind(int) via dlsym'd pointer".into(),
        rt,
        base_name: "same body, extern \"C\" fn pointer".into(),
        base: Some(base),
    });

    // (b) a 16-byte string
    let s16 = b"0123456789abcdef";
    let sn = c.string_new;
    let sl = c.string_len;
    let m = 5_000_000;
    let (rt, base) = pair(
        m,
        || {
            let v = sn(black_box(s16.as_ptr()), 16);
            black_box(sl(v));
        },
        || {
            let v: Vec<u8> = black_box(&s16[..]).to_vec();
            black_box(v.len());
        },
    );
    rows.push(Row {
        op: "rt_string_new + rt_string_len (16 B)".into(),
        rt,
        base_name: "malloc + copy + free (Vec)".into(),
        base: Some(base),
    });

    // (c) small collector allocation
    let gm = c.gc_malloc;
    let c0 = c.stat("collections");
    let (rt, base) = pair(
        m,
        || {
            black_box(gm(black_box(32)));
        },
        // SAFETY: malloc(32) then free of that same pointer once (free(NULL) is fine too).
        || unsafe {
            let p = libc::malloc(black_box(32));
            black_box(p);
            libc::free(p);
        },
    );
    let gcs = c.stat("collections") - c0;
    rows.push(Row {
        op: format!("rt_gc_malloc(32) ({gcs} collections)"),
        rt,
        base_name: "libc malloc(32) + free".into(),
        base: Some(base),
    });

    // (d) capabilities
    // SAFETY: RT_CAP_SLOW is core's `#[no_mangle] static AtomicU32`; core is never unloaded,
    // so the `'static`-like shared reference stays valid, and atomics allow shared access.
    let slow: &AtomicU32 = unsafe { &*Lib::open("core").unwrap().sym::<*const AtomicU32>("RT_CAP_SLOW") };
    assert_eq!(slow.load(Ordering::Relaxed), 0, "policy restricted before the benchmark");
    let fast = ns_per_op(n * 5, 5, || {
        black_box(fast_path(black_box(slow)));
    });
    rows.push(Row {
        op: "cap fast path: RT_CAP_SLOW load (allow-all)".into(),
        rt: fast,
        base_name: "target < 5 ns".into(),
        base: None,
    });
    let (chk_addr, _) = c.lookup("rt_cap_check").unwrap();
    // SAFETY: `rt_cap_check` is an `#[rt_fn]` of arity 2 per the registry:
    // `RtValue (RtValue, RtValue)`; core stays loaded.
    let chk: extern "C" fn(u64, u64) -> u64 = black_box(unsafe { std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn(u64, u64) -> u64>(chk_addr) });
    let sys_info = c.text("sys.info");
    (c.value_pin)(sys_info);
    assert_eq!(chk(sys_info, NIL), TRUE);
    let allow_all_check = ns_per_op(m, 5, || {
        black_box(chk(black_box(sys_info), NIL));
    });
    rows.push(Row {
        op: "rt_cap_check(\"sys.info\", nil), allow-all".into(),
        rt: allow_all_check,
        base_name: String::new(),
        base: None,
    });

    // a 20-scope policy; the measured path matches the last fs.read scope
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap();
    let mut reads = Vec::new();
    for i in 0..12 {
        let d = root.join(format!("r{i}"));
        std::fs::create_dir_all(d.join("sub")).unwrap();
        reads.push(d.display().to_string());
    }
    let writes: Vec<String> = (0..4).map(|i| root.join(format!("w{i}")).display().to_string()).collect();
    let policy = format!(
        "fs.read={};fs.write={};env.read=HOME,LC_*;net.connect=example.com:443,localhost;sys.info=true;tty=false",
        reads.join(","),
        writes.join(",")
    );
    let scopes = reads.len() + writes.len() + 2 + 2;
    c.restrict(&policy);
    assert_ne!(slow.load(Ordering::Relaxed), 0);
    let target = root.join("r11").join("sub").join("file.txt");
    let target_s = target.display().to_string();
    let fs_read = c.text("fs.read");
    let path_v = c.text(&target_s);
    (c.value_pin)(fs_read);
    (c.value_pin)(path_v);
    assert_eq!(chk(fs_read, path_v), TRUE);
    let outside = c.text("/etc/passwd");
    (c.value_pin)(outside);
    assert_eq!(chk(fs_read, outside), FALSE);
    let restricted_path = ns_per_op(200_000, 5, || {
        black_box(chk(black_box(fs_read), black_box(path_v)));
    });
    rows.push(Row {
        op: format!("rt_cap_check(fs.read, path under last of {scopes} scopes)"),
        rt: restricted_path,
        base_name: "incl. canonicalization (lstat per component)".into(),
        base: None,
    });
    let decide: extern "C" fn(*const u8, usize, *const u8, usize, *const u8, usize) -> i32 =
        // SAFETY: core's `rt__cap_decide(const u8 *, usize, const u8 *, usize, const u8 *,
        // usize) -> i32` (caps.rs), exactly the type annotated; core stays loaded.
        unsafe { Lib::open("core").unwrap().sym("rt__cap_decide") };
    let (cap, func) = ("fs.read", "rt_file_read_text");
    assert_eq!(decide(cap.as_ptr(), cap.len(), target_s.as_ptr(), target_s.len(), func.as_ptr(), func.len()), 1);
    let decide_ns = ns_per_op(m, 5, || {
        black_box(decide(
            cap.as_ptr(),
            cap.len(),
            black_box(target_s.as_ptr()),
            target_s.len(),
            func.as_ptr(),
            func.len(),
        ));
    });
    rows.push(Row {
        op: format!("policy decision only (rt__cap_decide), {scopes} scopes"),
        rt: decide_ns,
        base_name: "what a domain function pays after resolving".into(),
        base: None,
    });
    let restricted_none = ns_per_op(m, 5, || {
        black_box(chk(black_box(sys_info), NIL));
    });
    rows.push(Row {
        op: "rt_cap_check(\"sys.info\", nil), restricted".into(),
        rt: restricted_none,
        base_name: String::new(),
        base: None,
    });
    let fast_r = ns_per_op(n, 5, || {
        black_box(fast_path(black_box(slow)));
    });
    rows.push(Row {
        op: "cap fast path load (restricted: falls to the slow path)".into(),
        rt: fast_r,
        base_name: String::new(),
        base: None,
    });

    let c_rows = c_host(&dir);
    rows.extend(handles(c));

    print_rows(&dir, &rows);
    let worst = rows
        .iter()
        .take(3)
        .filter_map(|r| r.base.map(|b| r.rt / b))
        .fold(0.0f64, f64::max);
    println!();
    println!(
        "trivial export vs plain call: worst ratio {worst:.2}x (target <= 1.5x); cap fast path {fast:.2} ns (target < 5 ns)"
    );
    if !c_rows.is_empty() {
        println!();
        println!("from a C host (cc -O2, dlsym'd pointers; ns per call, min / median of 300 rounds):");
        println!("| call | runtime min / median | C body in the host | C body in another .so | ratio to host (min / median) |");
        println!("|---|---:|---:|---:|---:|");
        for l in &c_rows {
            println!("{l}");
        }
    }
}

fn print_rows(dir: &std::path::Path, rows: &[Row]) {
    println!();
    println!("libraries: {}", dir.display());
    println!("| operation | runtime ns/op | baseline | baseline ns/op | ratio |");
    println!("|---|---:|---|---:|---:|");
    for r in rows {
        match r.base {
            Some(b) => println!("| {} | {:.2} | {} | {:.2} | {:.2}x |", r.op, r.rt, r.base_name, b, r.rt / b),
            None => println!("| {} | {:.2} | {} | | |", r.op, r.rt, r.base_name),
        }
    }
}

// ---- (f) handles ----

/// ffi_sdk's `HandleVTable` (abi.rs), same compiler and layout: `&'static str` then two fns.
#[repr(C)]
struct BenchVt {
    type_name: &'static str,
    acquire: unsafe extern "C" fn(*const ()),
    release: unsafe extern "C" fn(*const ()),
}

/// ffi_sdk's vtable for `Arc<u64>` (`new_handle`'s acquire/release).
unsafe extern "C" fn bench_acquire(p: *const ()) {
    // SAFETY: core calls this with the handle's data, an `Arc<u64>` raw pointer whose count is
    // above zero (it holds the handle's owner while calling).
    unsafe { std::sync::Arc::increment_strong_count(p as *const u64) }
}
unsafe extern "C" fn bench_release(p: *const ()) {
    // SAFETY: core gives back exactly one owner it holds of this `Arc<u64>` (from `Arc::into_raw`).
    drop(unsafe { std::sync::Arc::from_raw(p as *const u64) })
}
static BENCH_VT: BenchVt = BenchVt { type_name: "BenchHandle", acquire: bench_acquire, release: bench_release };

unsafe extern "C" fn noop_finalizer(_obj: *mut std::ffi::c_void, _cd: *mut std::ffi::c_void) {}

type GcRegFin = unsafe extern "C" fn(
    *mut std::ffi::c_void,
    Option<unsafe extern "C" fn(*mut std::ffi::c_void, *mut std::ffi::c_void)>,
    *mut std::ffi::c_void,
    *mut std::ffi::c_void,
    *mut std::ffi::c_void,
);

fn handles(c: &Core) -> Vec<Row> {
    use std::sync::atomic::AtomicPtr;
    let core = Lib::open("core").unwrap();
    // SAFETY: the signatures of ffi_core's internal handle surface (ffi_sdk/src/abi.rs), with
    // `BenchVt` laid out as `HandleVTable`; core stays loaded.
    let (hnew, hclose, hborrow, hslow) = unsafe {
        (
            core.sym::<unsafe extern "C" fn(*const BenchVt, *const ()) -> u64>("rt__handle_new"),
            core.sym::<unsafe extern "C" fn(u64) -> u32>("rt__handle_close"),
            core.sym::<unsafe extern "C" fn(u64, *const u8, usize, *mut *const (), *mut *const AtomicPtr<u8>) -> u32>(
                "rt__handle_borrow",
            ),
            core.sym::<unsafe extern "C" fn(u64)>("rt__handle_unborrow_slow"),
        )
    };
    // libgc.so.1 is already loaded (core needs it): this dlopen only finds it.
    // SAFETY: a constant NUL-terminated name and valid flags; dlopen of a loaded library only
    // bumps its count.
    let gc = unsafe { libc::dlopen(c"libgc.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!gc.is_null(), "libgc.so.1");
    // SAFETY: the documented prototypes of gc.h: `void *GC_malloc(size_t)` and
    // `GC_register_finalizer_no_order(void *, GC_finalization_proc, void *, GC_finalization_proc *, void **)`.
    let (gc_malloc, gc_reg): (unsafe extern "C" fn(usize) -> *mut std::ffi::c_void, GcRegFin) = unsafe {
        let m = libc::dlsym(gc, c"GC_malloc".as_ptr());
        let r = libc::dlsym(gc, c"GC_register_finalizer_no_order".as_ptr());
        assert!(!m.is_null() && !r.is_null());
        (
            std::mem::transmute::<*mut std::ffi::c_void, unsafe extern "C" fn(usize) -> *mut std::ffi::c_void>(m),
            std::mem::transmute::<*mut std::ffi::c_void, GcRegFin>(r),
        )
    };
    let collect = c.lookup("rt_gc_collect").expect("rt_gc_collect").0;
    // SAFETY: `rt_gc_collect` is an `#[rt_fn]` of arity 0: `RtValue (void)`; core stays loaded.
    let collect: extern "C" fn() -> u64 =
        unsafe { std::mem::transmute::<*mut std::ffi::c_void, extern "C" fn() -> u64>(collect) };
    // Registers this thread with the collector before GC_malloc is called directly.
    black_box((c.gc_malloc)(16));

    let new_close = || {
        let d = std::sync::Arc::into_raw(std::sync::Arc::new(black_box(7u64))) as *const ();
        // SAFETY: `BENCH_VT` is a 'static vtable for `Arc<u64>` and `d` one owner, moved into the
        // handle; the word is closed once while it is on this stack.
        unsafe {
            let h = hnew(&BENCH_VT, d);
            assert_eq!(hclose(black_box(h)), 0);
        }
    };
    let name = BENCH_VT.type_name;
    let new_borrow_close = || {
        let d = std::sync::Arc::into_raw(std::sync::Arc::new(black_box(7u64))) as *const ();
        // SAFETY: as above for new/close. The borrow follows ffi_sdk's `Handle<T>`: `slot` is our
        // thread's hazard slot (core's never-freed record) and `h` a live handle object on this
        // stack, whose u32 state at offset 40 (HandleObj) core accesses only atomically.
        unsafe {
            let h = hnew(&BENCH_VT, d);
            let mut out: *const () = std::ptr::null();
            let mut slot: *const AtomicPtr<u8> = std::ptr::null();
            let st = hborrow(black_box(h), name.as_ptr(), name.len(), &mut out, &mut slot);
            black_box(*(out as *const u64));
            let state = &*(((h & !TAG_MASK) + 40) as *const AtomicU32);
            let closed = match st {
                0 => {
                    (*slot).store(std::ptr::null_mut(), Ordering::Release);
                    std::sync::atomic::compiler_fence(Ordering::SeqCst);
                    state.load(Ordering::Relaxed)
                }
                4 => {
                    (*slot).swap(std::ptr::null_mut(), Ordering::SeqCst);
                    state.load(Ordering::SeqCst)
                }
                5 => {
                    bench_release(out);
                    0
                }
                e => panic!("borrow: {e}"),
            };
            if closed & 3 != 0 {
                hslow(h);
            }
            assert_eq!(hclose(black_box(h)), 0);
        }
    };
    // Steady state: one borrow + unborrow of a handle already lent by this thread.
    let kept_d = std::sync::Arc::into_raw(std::sync::Arc::new(7u64)) as *const ();
    // SAFETY: as above; the handle is pinned for the rest of the bench (the closure borrows it).
    let kept = unsafe { hnew(&BENCH_VT, kept_d) };
    (c.value_pin)(kept);
    let borrow_only = || {
        // SAFETY: as in `new_borrow_close`, on the pinned `kept`.
        unsafe {
            let mut out: *const () = std::ptr::null();
            let mut slot: *const AtomicPtr<u8> = std::ptr::null();
            let st = hborrow(black_box(kept), name.as_ptr(), name.len(), &mut out, &mut slot);
            black_box(*(out as *const u64));
            let state = &*(((kept & !TAG_MASK) + 40) as *const AtomicU32);
            let closed = match st {
                0 => {
                    (*slot).store(std::ptr::null_mut(), Ordering::Release);
                    std::sync::atomic::compiler_fence(Ordering::SeqCst);
                    state.load(Ordering::Relaxed)
                }
                4 => {
                    (*slot).swap(std::ptr::null_mut(), Ordering::SeqCst);
                    state.load(Ordering::SeqCst)
                }
                e => panic!("borrow: {e}"),
            };
            if closed != 0 {
                hslow(kept);
            }
        }
    };
    let batch = 100_000usize;
    let new_dropped = || {
        for _ in 0..batch {
            let d = std::sync::Arc::into_raw(std::sync::Arc::new(black_box(7u64))) as *const ();
            // SAFETY: as above; the handle is dropped (never stored), so the collector finalizes it.
            black_box(unsafe { hnew(&BENCH_VT, d) });
        }
        collect();
    };
    let gc_dropped = || {
        for _ in 0..batch {
            // SAFETY: a fresh 40-byte collector object (this thread is registered); the finalizer
            // is a no-op that ignores its arguments.
            unsafe {
                let p = gc_malloc(40);
                gc_reg(p, Some(noop_finalizer), std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
                black_box(p);
            }
        }
        collect();
    };
    let m = 1_000_000;
    let mut rows = Vec::new();
    let (rt, base) = pair(m, new_close, || {
        drop(black_box(Box::new(black_box(7u64))));
    });
    rows.push(Row {
        op: "handle new + close (rt__handle_new + rt__handle_close, Arc<u64>)".into(),
        rt,
        base_name: "Box::new(u64) + drop".into(),
        base: Some(base),
    });
    let (rt, base) = pair(m, new_borrow_close, || {
        drop(black_box(Box::new(black_box(7u64))));
    });
    rows.push(Row {
        op: "handle new + 1 borrow + close".into(),
        rt,
        base_name: "Box::new(u64) + drop".into(),
        base: Some(base),
    });
    let rt = ns_per_op(5_000_000, 9, borrow_only);
    rows.push(Row {
        op: "handle borrow + unborrow (steady state, same thread)".into(),
        rt,
        base_name: String::new(),
        base: None,
    });
    let f0 = c.stat("finalized");
    let (rt, base) = pair(3, new_dropped, gc_dropped);
    let fin = c.stat("finalized") - f0;
    rows.push(Row {
        op: format!("handle new, dropped to the collector (per handle; {fin} finalizers ran, both columns)"),
        rt: rt / batch as f64,
        base_name: "GC_malloc(40) + GC_register_finalizer_no_order, dropped".into(),
        base: Some(base / batch as f64),
    });
    rows
}

/// The C host of (e); its source is [`C_HOST`]. Returns the table rows it printed.
fn c_host(dir: &std::path::Path) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    std::fs::write(t.join("host.c"), C_HOST).unwrap();
    std::fs::write(t.join("body.c"), C_BODY).unwrap();
    let cc = |args: &[&str]| {
        let out = std::process::Command::new("cc").args(args).current_dir(t).output();
        match out {
            Ok(o) if o.status.success() => true,
            Ok(o) => {
                eprintln!("cc {args:?}: {}", String::from_utf8_lossy(&o.stderr));
                false
            }
            Err(e) => {
                eprintln!("(e) skipped: no C compiler ({e})");
                false
            }
        }
    };
    if !cc(&["-O2", "-fPIC", "-shared", "-DPFX(x)=so_##x", "-o", "libbody.so", "body.c"])
        || !cc(&["-O2", "-o", "host", "host.c", "-ldl"])
    {
        return Vec::new();
    }
    let out = std::process::Command::new(t.join("host"))
        .arg(dir.join("libffi_core.so"))
        .arg(dir.join("libffi_system.so"))
        .arg(t.join("libbody.so"))
        .output()
        .unwrap();
    assert!(out.status.success(), "C host failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// The bodies of the measured exports in C (`PFX` names them: `local_` in the
/// host, `so_` in the separate shared object).
const C_BODY: &str = r##"
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
typedef uint64_t RtValue;
static uint32_t heap_kind(RtValue v) {
    if ((v & 7) != 1 || v < 4096) return 0;
    uint32_t k = *(const uint32_t *)(v & ~7ull);
    return (k & 0xFFFF0000u) != 0x52540000u ? 0 : (k & 0xFFFF);
}
int PFX(slow_eq)(RtValue a, RtValue b) { return heap_kind(a) == heap_kind(b); }
__attribute__((noinline)) RtValue PFX(eq)(RtValue a, RtValue b) {
    if (a == b) return 0xb;
    if ((a & 7) == 1 && (b & 7) == 1) return PFX(slow_eq)(a, b) ? 0xb : 0x13;
    return 0x13;
}
__attribute__((noinline)) uint32_t PFX(kind)(RtValue v) {
    static const uint32_t m[8] = {6, 7, 8, 9, 3, 4, 10, 11};
    switch (v & 7) {
    case 0: return 3;
    case 2: return 4;
    case 3: return v == 3 ? 1 : (v == 0xb || v == 0x13) ? 2 : 0;
    case 1: { uint32_t k = heap_kind(v); return (k >= 1 && k <= 8) ? m[k - 1] : 0; }
    default: return 0;
    }
}
/* rt_cpu_count's fast path: a capability flag, a cached quota, the affinity count. */
#include <sched.h>
volatile uint32_t PFX(cap_slow);
__attribute__((noinline)) RtValue PFX(cpu_count)(void) {
    if (PFX(cap_slow)) return 0;
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) != 0) return 8;
    return (RtValue)CPU_COUNT(&s) << 3;
}
"##;

const C_HOST: &str = r##"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define PFX(x) local_##x
#include "body.c"
typedef RtValue (*eq_fn)(RtValue, RtValue);
typedef uint32_t (*kind_fn)(RtValue);
typedef RtValue (*cnt_fn)(void);
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static double run_eq(eq_fn f, RtValue a, RtValue b, long n) {
    volatile eq_fn vf = f; eq_fn g = vf; RtValue acc = 0; double t = now();
    for (long i = 0; i < n; i++) { volatile RtValue x = a, y = b; acc += g(x, y); }
    double e = now() - t; volatile RtValue s = acc; (void)s; return e / n;
}
static double run_kind(kind_fn f, RtValue a, long n) {
    volatile kind_fn vf = f; kind_fn g = vf; uint64_t acc = 0; double t = now();
    for (long i = 0; i < n; i++) { volatile RtValue x = a; acc += g(x); }
    double e = now() - t; volatile uint64_t s = acc; (void)s; return e / n;
}
static double run_cnt(cnt_fn f, long n) {
    volatile cnt_fn vf = f; cnt_fn g = vf; uint64_t acc = 0; double t = now();
    for (long i = 0; i < n; i++) acc += g();
    double e = now() - t; volatile uint64_t s = acc; (void)s; return e / n;
}
static int cmpd(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
enum { R = 300 };
static double T[12][R];
static void row(const char *name, int k) {
    for (int i = 0; i < 3; i++) qsort(T[k + i], R, sizeof(double), cmpd);
    double rm = T[k][0], rd = T[k][R / 2], hm = T[k + 1][0], hd = T[k + 1][R / 2], sm = T[k + 2][0], sd = T[k + 2][R / 2];
    printf("| %s | %.2f / %.2f | %.2f / %.2f | %.2f / %.2f | %.2fx / %.2fx |\n", name, rm, rd, hm, hd, sm, sd, rm / hm, rd / hd);
}
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    void *core = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    void *sys = dlopen(argv[2], RTLD_NOW | RTLD_GLOBAL);
    void *so = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
    if (!core || !sys || !so) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    eq_fn eq[3] = {(eq_fn)dlsym(core, "rt_value_equal"), local_eq, (eq_fn)dlsym(so, "so_eq")};
    kind_fn kd[3] = {(kind_fn)dlsym(core, "rt_kind"), local_kind, (kind_fn)dlsym(so, "so_kind")};
    cnt_fn cn[3] = {(cnt_fn)dlsym(sys, "rt_cpu_count"), local_cpu_count, (cnt_fn)dlsym(so, "so_cpu_count")};
    for (int i = 0; i < 3; i++) if (!eq[i] || !kd[i] || !cn[i]) { fprintf(stderr, "missing symbol\n"); return 1; }
    if (cn[0]() != cn[1]()) fprintf(stderr, "note: rt_cpu_count %lu, affinity %lu (a cgroup quota?)\n", (unsigned long)(cn[0]() >> 3), (unsigned long)(cn[1]() >> 3));
    for (int r = 0; r < R; r++)
        for (int i = 0; i < 3; i++) {
            T[0 + i][r] = run_kind(kd[i], 5 << 3, 1000000);
            T[3 + i][r] = run_eq(eq[i], 5 << 3, 5 << 3, 1000000);
            T[6 + i][r] = run_eq(eq[i], 5 << 3, 7 << 3, 1000000);
            if (r % 30 == 0) T[9 + i][r / 30] = run_cnt(cn[i], 20000);
        }
    row("rt_kind(int)", 0);
    row("rt_value_equal(equal ints)", 3);
    row("rt_value_equal(different ints)", 6);
    /* rt_cpu_count: only R/30 rounds; pad so the sort keeps them first. */
    for (int i = 0; i < 3; i++) for (int r = R / 30; r < R; r++) T[9 + i][r] = 1e300;
    for (int i = 0; i < 3; i++) qsort(T[9 + i], R, sizeof(double), cmpd);
    printf("| rt_cpu_count() (C bodies: sched_getaffinity + CPU_COUNT) | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f | %.2fx / %.2fx |\n",
           T[9][0], T[9][R / 60], T[10][0], T[10][R / 60], T[11][0], T[11][R / 60], T[9][0] / T[10][0], T[9][R / 60] / T[10][R / 60]);
    return 0;
}
"##;
