//! XXH3-64 against the C xxHash library on the same buffer (issue 17), in one
//! process, round robin (every contender once per round, best round kept):
//!
//! `cargo bench -p ffi_crypto --bench xxh3`
//!
//! Contenders: the export `rt_xxhash3` on a bytes value, `hash::xxh3` (what it
//! runs), `twox-hash` (what it ran before), and the C library: as Debian ships
//! it (`libxxhash.so.0`, a generic x86-64 build) and built here from its header
//! (`/usr/include/xxhash.h`, package libxxhash-dev) with `cc -O3 -mavx2` and,
//! where the CPU has it, `-mavx512f`: the fastest the C code runs on this
//! machine. A contender whose library or header is missing is left out.

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_crypto::hash;
use ffi_sdk::Value;
use std::ffi::{c_char, c_int, c_void, CString};
use std::hint::black_box;
use std::time::Instant;

extern "C" {
    fn dlopen(path: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(h: *mut c_void, name: *const c_char) -> *mut c_void;
}

type CHash = unsafe extern "C" fn(*const u8, usize) -> u64;

fn load(path: &str, sym: &str) -> Option<CHash> {
    let p = CString::new(path).ok()?;
    let s = CString::new(sym).ok()?;
    // SAFETY: `p` and `s` are live NUL-terminated CStrings; the handle is never dlclosed, so
    // the symbol stays mapped for the process; the caller only names XXH3_64bits, whose C
    // prototype `XXH64_hash_t (const void *, size_t)` is what `CHash` declares.
    unsafe {
        let h = dlopen(p.as_ptr(), 2);
        if h.is_null() {
            return None;
        }
        let f = dlsym(h, s.as_ptr());
        (!f.is_null()).then(|| std::mem::transmute::<*mut c_void, CHash>(f))
    }
}

/// Builds xxhash.h into a shared object with `flags`; its XXH3_64bits as `xxh3_c`.
fn build_c(dir: &std::path::Path, name: &str, flags: &[&str]) -> Option<CHash> {
    if !std::path::Path::new("/usr/include/xxhash.h").is_file() {
        return None;
    }
    let src = dir.join("x.c");
    std::fs::write(&src, "#define XXH_INLINE_ALL\n#include <xxhash.h>\nunsigned long long xxh3_c(const void *p, size_t n) { return XXH3_64bits(p, n); }\n").ok()?;
    let out = dir.join(format!("lib{name}.so"));
    let ok = std::process::Command::new("cc")
        .args(["-O3", "-fPIC", "-shared"])
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    load(out.to_str()?, "xxh3_c")
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let avx512 = is_x86_feature_detected!("avx512f");
    println!("CPU: AVX2 {}, AVX-512F {avx512}", is_x86_feature_detected!("avx2"));
    let mut c_libs: Vec<(&str, CHash)> = Vec::new();
    if let Some(f) = load("libxxhash.so.0", "XXH3_64bits") {
        c_libs.push(("C libxxhash.so.0 (Debian)", f));
    }
    if let Some(f) = build_c(tmp.path(), "avx2", &["-mavx2"]) {
        c_libs.push(("C xxhash.h -O3 -mavx2", f));
    }
    if avx512 {
        if let Some(f) = build_c(tmp.path(), "avx512", &["-mavx512f", "-mavx2"]) {
            c_libs.push(("C xxhash.h -O3 -mavx512f", f));
        }
    }
    let best_c = c_libs.len().checked_sub(1);
    println!();
    print!("| size | rt_xxhash3 GB/s | hash::xxh3 | twox-hash (before) |");
    for (n, _) in &c_libs {
        print!(" {n} |");
    }
    println!(" rt_xxhash3 / best C | twox-hash / best C |");
    println!("|---|{}", "---:|".repeat(5 + c_libs.len()));
    for &n in &[1024usize, 4096, 100_000, 1 << 20] {
        let data: Vec<u8> = (0..n).map(|i| (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) as u8).collect();
        let v = Value::bytes(&data);
        let raw = v.raw();
        let want = twox_hash::XxHash3_64::oneshot(&data);
        assert_eq!(hash::xxh3(&data, 0), want);
        for (name, f) in &c_libs {
            // SAFETY: `f` is XXH3_64bits(const void *, size_t) from the C library.
            assert_eq!(unsafe { f(data.as_ptr(), n) }, want, "{name}");
        }
        let mut fs: Vec<Box<dyn Fn()>> = vec![
            Box::new(|| {
                black_box(ffi_crypto::hash::rt_xxhash3(black_box(raw), ffi_sdk::abi::NIL));
            }),
            Box::new(|| {
                black_box(hash::xxh3(black_box(&data), 0));
            }),
            Box::new(|| {
                black_box(twox_hash::XxHash3_64::oneshot(black_box(&data)));
            }),
        ];
        for (_, f) in &c_libs {
            let f = *f;
            let d = &data;
            // SAFETY: `f` is XXH3_64bits(const void *, size_t) from a library loaded and never
            // closed; `d` borrows `data`, which outlives `fs`, so `n` = d.len() bytes are readable.
            fs.push(Box::new(move || unsafe {
                black_box(f(black_box(d.as_ptr()), n));
            }));
        }
        let reps = (50_000_000 / n).max(1);
        let mut best = vec![f64::MAX; fs.len()];
        for _ in 0..40 {
            for (k, f) in fs.iter().enumerate() {
                let t = Instant::now();
                for _ in 0..reps {
                    f();
                }
                best[k] = best[k].min(t.elapsed().as_secs_f64());
            }
        }
        let gbs: Vec<f64> = best.iter().map(|b| (n * reps) as f64 / b / 1e9).collect();
        print!("| {n} B |");
        for g in &gbs {
            print!(" {g:.1} |");
        }
        match best_c {
            Some(i) => println!(" {:.2}x | {:.2}x |", gbs[0] / gbs[3 + i], gbs[2] / gbs[3 + i]),
            None => println!(" - | - |"),
        }
    }
}
