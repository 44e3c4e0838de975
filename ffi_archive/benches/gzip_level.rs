//! gzip level 6 against GNU `gzip -6` (issue 17): output size and speed side by
//! side, for the backend in use (libdeflate: `rt_gzip_compress` in memory,
//! `rt_gzip_compress_file` in 8 MiB members) and for zlib-rs levels 6 and 7
//! (flate2; level 6 is what `rt_gzip_compress` ran before):
//!
//! `cargo bench -p ffi_archive --bench gzip_level`
//!
//! Two inputs of 64 MB: "headers+libs" (the first 64 MB of the files under
//! /usr/include and /usr/lib/x86_64-linux-gnu, as `benches/archive.rs`) and
//! "mixed" (16 MB each of C headers, shared objects, JSON-like log lines and
//! random bytes, interleaved in 1 MB pieces). Best of 3 rounds, round robin.
//! size = our bytes / gzip's bytes; speed = gzip's time / ours.

use ffi_archive::gzip;
use ffi_sdk::bench::{self, sh};
use ffi_sdk::Value;
use std::hint::black_box;
use std::io::Write;
use std::process::Command;

fn files(glob: &str, n: usize) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", &format!("find {glob} -type f 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null | head -c {n}")])
        .output()
        .unwrap();
    let mut v = out.stdout;
    while v.len() < n {
        let more = v[..v.len().min(n - v.len())].to_vec();
        v.extend(more);
    }
    v
}

fn mixed() -> Vec<u8> {
    let m = 16_000_000;
    let headers = files("/usr/include", m);
    let libs = files("/usr/lib/x86_64-linux-gnu -name '*.so*'", m);
    let mut logs = Vec::with_capacity(m);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut i = 0u64;
    while logs.len() < m {
        bench::xorshift(&mut x);
        i += 1;
        let line = format!(
            "{{\"ts\":\"2026-12-02T00:{:02}:{:02}.{:03}Z\",\"level\":\"{}\",\"req\":{},\"path\":\"/api/v1/items/{}\",\"ms\":{:.3}}}\n",
            (i / 60000) % 60,
            (i / 1000) % 60,
            i % 1000,
            ["info", "warn", "debug", "error"][(x % 4) as usize],
            x % 100_000,
            (x >> 20) % 5000,
            (x >> 40) as f64 / 1e6
        );
        logs.extend_from_slice(line.as_bytes());
    }
    logs.truncate(m);
    let mut random = vec![0u8; m];
    for c in random.chunks_mut(8) {
        bench::xorshift(&mut x);
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    let parts = [headers, libs, logs, random];
    let mut out = Vec::with_capacity(4 * m);
    for k in 0..m / 1_000_000 {
        for p in &parts {
            out.extend_from_slice(&p[k * 1_000_000..(k + 1) * 1_000_000]);
        }
    }
    out
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = [("headers+libs", files("/usr/include /usr/lib/x86_64-linux-gnu", 64_000_000)), ("mixed", mixed())];
    let v = Command::new("gzip").arg("--version").output().unwrap().stdout;
    println!("GNU gzip: {}", String::from_utf8_lossy(&v).lines().next().unwrap_or(""));
    println!();
    println!("| input | contender | size vs gzip -6 | speed vs gzip -6 | MB/s |");
    println!("|---|---|---:|---:|---:|");
    for (name, data) in &inputs {
        let n = data.len();
        let src = dir.path().join("in");
        std::fs::write(&src, data).unwrap();
        let (s, gz_tool, ours_file) =
            (src.to_str().unwrap().to_string(), dir.path().join("tool.gz"), dir.path().join("ours.gz"));
        let v = Value::bytes(data);
        let root = ffi_sdk::Root::new(v);
        let lvl6 = ffi_sdk::testing::dict(&[("level", Value::int(6))]);
        let (src_v, dst_v) = (Value::text(&s), Value::text(ours_file.to_str().unwrap()));
        let _keep = (ffi_sdk::Root::new(src_v), ffi_sdk::Root::new(dst_v), ffi_sdk::Root::new(Value::from_raw(lvl6)));
        let (mut mem, mut z6, mut z7) = (0usize, 0usize, 0usize);
        let r = bench::race(
            3,
            1,
            &mut [
                &mut || sh(&format!("gzip -6 -c {s} > {}", gz_tool.display())),
                &mut || mem = Value::from_raw(gzip::rt_gzip_compress(root.get().raw(), lvl6)).as_bytes().unwrap().len(),
                &mut || {
                    black_box(gzip::rt_gzip_compress_file(src_v.raw(), dst_v.raw(), lvl6));
                },
                &mut || {
                    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(n / 3), flate2::Compression::new(6));
                    e.write_all(data).unwrap();
                    z6 = e.finish().unwrap().len();
                },
                &mut || {
                    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(n / 3), flate2::Compression::new(7));
                    e.write_all(data).unwrap();
                    z7 = e.finish().unwrap().len();
                },
            ],
        );
        let tool = std::fs::metadata(&gz_tool).unwrap().len() as f64;
        let file = std::fs::metadata(&ours_file).unwrap().len() as f64;
        // Both of ours decode back (gzip -t: a standard file, every member).
        sh(&format!("gzip -t {}", ours_file.display()));
        let rows = [
            ("rt_gzip_compress level 6 (libdeflate, now)", mem as f64, r[1]),
            ("rt_gzip_compress_file level 6 (libdeflate, 8 MiB members, now)", file, r[2]),
            ("zlib-rs level 6 (flate2; rt_gzip_compress before)", z6 as f64, r[3]),
            ("zlib-rs level 7 (flate2)", z7 as f64, r[4]),
        ];
        println!("| {name} | GNU gzip -6 | {:.4} (ratio {:.4}) | 1.00x | {:.1} |", 1.0, tool / n as f64, bench::mb_per_s(n, r[0]));
        for (label, size, t) in rows {
            println!(
                "| {name} | {label} | {:.4} ({:+.2}%) | {:.2}x | {:.1} |",
                size / tool,
                (size / tool - 1.0) * 100.0,
                r[0].as_secs_f64() / t.as_secs_f64(),
                bench::mb_per_s(n, t)
            );
        }
    }
}
