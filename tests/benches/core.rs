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
//!     policy on a path that matches the last scope.

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
            5 => (1, unsafe { *(((v & !TAG_MASK) + 24) as *const u64) }),
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
    let n = 20_000_000u64;

    // (a) trivial exports through their dlopen'ed addresses
    let (eq_addr, _) = c.lookup("rt_value_equal").expect("rt_value_equal");
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

    println!();
    println!("libraries: {}", dir.display());
    println!("| operation | runtime ns/op | baseline | baseline ns/op | ratio |");
    println!("|---|---:|---|---:|---:|");
    for r in &rows {
        match r.base {
            Some(b) => println!("| {} | {:.2} | {} | {:.2} | {:.2}x |", r.op, r.rt, r.base_name, b, r.rt / b),
            None => println!("| {} | {:.2} | {} | | |", r.op, r.rt, r.base_name),
        }
    }
    let worst = rows
        .iter()
        .take(3)
        .filter_map(|r| r.base.map(|b| r.rt / b))
        .fold(0.0f64, f64::max);
    println!();
    println!(
        "trivial export vs plain call: worst ratio {worst:.2}x (target <= 1.5x); cap fast path {fast:.2} ns (target < 5 ns)"
    );
}
