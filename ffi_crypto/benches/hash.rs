//! Hash throughput: the exported rt_* wrapper, the crate called directly, and
//! the usual outside tool, side by side in one run (`cargo bench -p ffi_crypto`).
//!
//! - SHA-256 / SHA-1 on the same 256 MB random file: `openssl dgst` (as a process,
//!   reading the file from the page cache) vs the wrapper on the bytes in memory.
//!   Also `openssl dgst` with SHA-NI masked (OPENSSL_ia32cap), for machines without it.
//! - XXH3 / XXH64 on a 100 KB buffer hashed repeatedly, as `xxhsum -b` does.
//! - SHA-512 on the same file: `openssl dgst -sha512` vs the wrapper (ring), ring and sha2 direct.
//! - BLAKE3 on the same file: `b3sum` (the BLAKE3 team's tool, same `blake3` crate; found in PATH
//!   or at `$B3SUM`; install with `cargo install b3sum --root DIR`) with one thread
//!   (`--num-threads 1`, like the wrapper) and with its default thread pool, vs the wrapper and
//!   `blake3::hash` direct. Skipped with a note when b3sum is missing.
//!
//! `RT_BENCH_ONLY=sha512,blake3` (comma-separated, of `sha256`, `sha1`, `xxh`, `sha512`,
//! `blake3`) runs only those sections.
//!
//! Each figure is the best of several rounds; in each round every contender runs once
//! (round robin), so load bursts on the shared machine hit them alike.

use ffi_crypto::{hash, sha};
use ffi_sdk::abi::RtValue;
use ffi_sdk::bench::{self, tool};
use ffi_sdk::Value;
use std::hint::black_box;
use std::io::Write;
use std::process::Command;
use std::time::Duration;

/// Round-robin: each closure repeated for about `target` once per round (so load bursts
/// hit all alike); best per closure, MB/s.
fn race(bytes: usize, rounds: usize, target: Duration, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let reps = bench::calibrate(target, 10_000_000, fs);
    let best = bench::race_batches(rounds, &reps, fs);
    best.iter().zip(&reps).map(|(d, r)| bench::mb_per_s(bytes * r, *d)).collect()
}

/// `xxhsum -b<id>` reports MB/s itself (on its 100 KB sample); best of its own runs.
fn xxhsum_rate(id: &str) -> f64 {
    let out = Command::new("xxhsum").args([&format!("-b{id}"), "-i5"]).output().expect("xxhsum");
    let s = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    s.split(['\r', '\n'])
        .filter_map(|l| {
            let i = l.find('(')?;
            let j = l[i..].find(" MB/s")?;
            l[i + 1..i + j].trim().parse::<f64>().ok()
        })
        .fold(0.0, f64::max)
        * 1.048_576 // xxhsum's MB is 2^20 bytes
}

/// Whether section `name` runs: all of them unless `RT_BENCH_ONLY` lists some.
fn wanted(name: &str) -> bool {
    match std::env::var("RT_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|s| s.trim() == name),
        _ => true,
    }
}

/// The b3sum to run: `$B3SUM`, else `b3sum` when it runs from PATH.
fn b3sum() -> Option<String> {
    let cand = std::env::var("B3SUM").unwrap_or_else(|_| "b3sum".to_string());
    let ok = Command::new(&cand).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    ok.then_some(cand)
}

fn row(op: &str, wrapper: f64, direct: f64, tool: f64, tool_name: &str) {
    println!(
        "| {op} | {wrapper:.0} | {direct:.0} | {tool:.0} ({tool_name}) | {:.2} | {:.3} |",
        wrapper / tool,
        wrapper / direct
    );
}

fn main() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let shani = cpu.split_whitespace().any(|w| w == "sha_ni");
    let avx2 = is_x86_feature_detected!("avx2");
    println!("CPU: SHA-NI {shani}, AVX2 {avx2}, AVX-512F {}", is_x86_feature_detected!("avx512f"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.bin");
    let n = 256 << 20;
    let mut data = vec![0u8; n];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for c in data.chunks_mut(8) {
        bench::xorshift(&mut x);
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    std::fs::File::create(&path).unwrap().write_all(&data).unwrap();
    let v = Value::bytes(&data);
    let raw: RtValue = v.raw();

    println!();
    bench::table_header(&["operation", "wrapper MB/s", "crate direct MB/s", "tool MB/s", "wrapper/tool", "wrapper/crate"]);
    let runs = 7;
    let target = Duration::from_millis(10);
    let masked = ":~0x20000000"; // OPENSSL_ia32cap: clear the SHA extension bit
    // SHA-256: wrapper, ring, sha2, openssl, openssl without SHA-NI — round robin.
    if wanted("sha256") {
        let r = race(
            n,
            runs,
            target,
            &mut [
                &mut || {
                    black_box(ffi_crypto::sha::rt_sha256_hash(black_box(raw)));
                },
                &mut || {
                    black_box(ring::digest::digest(&ring::digest::SHA256, black_box(&data)));
                },
                &mut || {
                    use sha2::Digest;
                    black_box(sha2::Sha256::digest(black_box(&data)));
                },
                &mut || tool(Command::new("openssl").args(["dgst", "-sha256"]).arg(&path)),
                &mut || tool(Command::new("openssl").args(["dgst", "-sha256"]).arg(&path).env("OPENSSL_ia32cap", masked)),
            ],
        );
        row("SHA-256, 256 MB (crate: ring)", r[0], r[1], r[3], "openssl dgst -sha256");
        println!("| SHA-256, other candidate | | sha2 crate {:.0} | {:.0} (openssl, SHA-NI masked) | | |", r[2], r[4]);
    }
    if wanted("sha1") {
        let r = race(
            n,
            runs,
            target,
            &mut [
                &mut || {
                    black_box(ffi_crypto::sha::rt_sha1_hash(black_box(raw)));
                },
                &mut || {
                    black_box(sha::sha1(black_box(&data)));
                },
                &mut || {
                    black_box(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, black_box(&data)));
                },
                &mut || tool(Command::new("openssl").args(["dgst", "-sha1"]).arg(&path)),
                &mut || tool(Command::new("openssl").args(["dgst", "-sha1"]).arg(&path).env("OPENSSL_ia32cap", masked)),
            ],
        );
        row("SHA-1, 256 MB (crate: sha1)", r[0], r[1], r[3], "openssl dgst -sha1");
        println!("| SHA-1, other candidate | | ring (portable Rust) {:.0} | {:.0} (openssl, SHA-NI masked) | | |", r[2], r[4]);
    }

    // SHA-512: wrapper (ring), ring, sha2, openssl — round robin on the same 256 MB.
    if wanted("sha512") {
        let r = race(
            n,
            runs,
            target,
            &mut [
                &mut || {
                    black_box(ffi_crypto::digest::rt_sha512_hash(black_box(raw)));
                },
                &mut || {
                    black_box(ring::digest::digest(&ring::digest::SHA512, black_box(&data)));
                },
                &mut || {
                    use sha2::Digest;
                    black_box(sha2::Sha512::digest(black_box(&data)));
                },
                &mut || tool(Command::new("openssl").args(["dgst", "-sha512"]).arg(&path)),
            ],
        );
        row("SHA-512, 256 MB (crate: ring)", r[0], r[1], r[3], "openssl dgst -sha512");
        println!("| SHA-512, other candidate | | sha2 crate {:.0} | | | |", r[2]);
    }

    // BLAKE3: wrapper (one thread), blake3::hash, b3sum with one thread and with its default pool.
    if wanted("blake3") {
        match b3sum() {
            Some(b3) => {
                let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
                let r = race(
                    n,
                    runs,
                    target,
                    &mut [
                        &mut || {
                            black_box(ffi_crypto::digest::rt_blake3_hash(black_box(raw)));
                        },
                        &mut || {
                            black_box(blake3::hash(black_box(&data)));
                        },
                        &mut || tool(Command::new(&b3).args(["--num-threads", "1"]).arg(&path)),
                        &mut || tool(Command::new(&b3).arg(&path)),
                    ],
                );
                row("BLAKE3, 256 MB (crate: blake3)", r[0], r[1], r[2], "b3sum --num-threads 1");
                println!(
                    "| BLAKE3, b3sum multi-threaded | {:.0} | | {:.0} (b3sum, {threads} threads) | {:.2} | |",
                    r[0],
                    r[3],
                    r[0] / r[3]
                );
            }
            None => println!("| BLAKE3 | b3sum not found: `cargo install b3sum --root DIR`, then B3SUM=DIR/bin/b3sum | | | | |"),
        }
    }
    if !wanted("xxh") {
        black_box(v);
        return;
    }

    // xxHash on a 100 KB sample, like xxhsum -b.
    let sample = &data[..100 * 1024];
    let sv = Value::bytes(sample);
    let sraw = sv.raw();
    let target = Duration::from_millis(100);
    let t3 = xxhsum_rate("5");
    let r = race(
        sample.len(),
        runs,
        target,
        &mut [
            &mut || {
                black_box(hash::rt_xxhash3(black_box(sraw), ffi_sdk::abi::NIL));
            },
            &mut || {
                black_box(twox_hash::XxHash3_64::oneshot(black_box(sample)));
            },
            &mut || {
                black_box(xxhash_rust::xxh3::xxh3_64(black_box(sample)));
            },
        ],
    );
    let t3b = xxhsum_rate("5");
    row("XXH3-64, 100 KB (crate: twox-hash)", r[0], r[1], t3.max(t3b), "xxhsum -b5");
    println!("| XXH3-64, other candidate | | xxhash-rust (compile-time SSE2) {:.0} | | | |", r[2]);
    let t64 = xxhsum_rate("3");
    let r = race(
        sample.len(),
        runs,
        target,
        &mut [
            &mut || {
                black_box(hash::rt_xxhash64(black_box(sraw), ffi_sdk::abi::NIL));
            },
            &mut || {
                black_box(twox_hash::XxHash64::oneshot(0, black_box(sample)));
            },
        ],
    );
    let t64b = xxhsum_rate("3");
    row("XXH64, 100 KB (crate: twox-hash)", r[0], r[1], t64.max(t64b), "xxhsum -b3");
    // Short inputs: call overhead dominates.
    let small = Value::bytes(&data[..64]);
    let smr = small.raw();
    let target = Duration::from_millis(50);
    let small_data = &data[..64];
    let r = race(
        64,
        runs,
        target,
        &mut [
            &mut || {
                black_box(hash::rt_xxhash3(black_box(smr), ffi_sdk::abi::NIL));
            },
            &mut || {
                black_box(twox_hash::XxHash3_64::oneshot(black_box(small_data)));
            },
            &mut || {
                black_box(hash::rt_ahash(black_box(smr)));
            },
            &mut || {
                black_box(hash::ahash(black_box(small_data)));
            },
        ],
    );
    println!("| XXH3-64, 64 B (call overhead) | {:.0} | {:.0} | | | {:.3} |", r[0], r[1], r[0] / r[1]);
    println!("| aHash, 64 B (call overhead) | {:.0} | {:.0} | | | {:.3} |", r[2], r[3], r[2] / r[3]);
    black_box(v);
}
