//! Archive throughput: the exported rt_* wrapper, the crate called directly,
//! and the usual outside tool, side by side in one run
//! (`cargo bench -p ffi_archive`). Best of several runs (shared, noisy machine),
//! round robin (`ffi_sdk::bench::race`: each contender once per round, so load
//! bursts hit all alike).
//!
//! Input for compression: the first 64 MB of the files under /usr/include and
//! /usr/lib/x86_64-linux-gnu (sorted), i.e. C headers and shared objects — a mix
//! of text and binary; xz uses the first 16 MB of it.
//! Extraction: 10,000 files of 64..2048 bytes in 100 directories, archived by GNU tar.
//!
//! zip (section `zip`): the 64 MB input as one entry, deflate level 6, written by
//! rt_zip_create + rt_zip_add_file + rt_zip_close, by the `zip` crate (9.x, the same
//! deflate backend) directly, and by Info-ZIP `zip -6`; extracted (the archive Info-ZIP
//! wrote) by rt_zip_open + rt_zip_extract, `ZipArchive::extract` and Info-ZIP `unzip`;
//! and the 10,000 small files zipped by Info-ZIP, extracted the same three ways.
//!
//! `RT_BENCH_ONLY=gzip` (comma-separated, of `gzip`, `xz`, `tar`, `zip`) runs only those sections.

use ffi_archive::{gzip, tar as rtar, xz, zip as rzip};
use ffi_sdk::abi::RtValue;
use ffi_sdk::bench::{self, sh};
use ffi_sdk::Value;
use std::hint::black_box;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

fn opts(pairs: &[(&str, Value)]) -> RtValue {
    ffi_sdk::testing::dict(pairs)
}

fn corpus(n: usize) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "find /usr/include /usr/lib/x86_64-linux-gnu -type f 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null | head -c 64000000"])
        .output()
        .unwrap();
    let mut v = out.stdout;
    v.truncate(n);
    v
}

fn row(op: &str, w: Duration, d: Duration, t: Duration, tool: &str, bytes: usize, extra: &str) {
    let r = |x: Duration| bench::mb_per_s(bytes, x);
    println!(
        "| {op} | {:.1} | {:.1} | {:.1} ({tool}) | {:.2}x | {:.3} | {extra} |",
        r(w),
        r(d),
        r(t),
        t.as_secs_f64() / w.as_secs_f64(),
        d.as_secs_f64() / w.as_secs_f64()
    );
}

/// Whether section `name` runs: all of them unless `RT_BENCH_ONLY` lists some.
fn wanted(name: &str) -> bool {
    match std::env::var("RT_BENCH_ONLY") {
        Ok(only) if !only.trim().is_empty() => only.split(',').any(|s| s.trim() == name),
        _ => true,
    }
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(64_000_000);
    let n = data.len();
    let input = dir.path().join("input");
    std::fs::write(&input, &data).unwrap();
    let v = Value::bytes(&data);
    let runs = 3;
    println!("input: {n} bytes (headers + shared objects); MB/s of uncompressed data; speedup = tool time / wrapper time\n");
    bench::table_header(&["operation", "wrapper MB/s", "crate direct MB/s", "tool MB/s", "speedup vs tool", "wrapper/crate", "notes"]);

    if wanted("gzip") {
        // gzip -6 / -7 compress.
        let lvl6 = opts(&[("level", Value::int(6))]);
        let lvl7 = opts(&[("level", Value::int(7))]);
        let gz_path = dir.path().join("tool.gz");
        let (mut wz, mut wz7) = (Vec::new(), Vec::new());
        let r = bench::race(
            runs,
            1,
            &mut [
                &mut || wz = Value::from_raw(gzip::rt_gzip_compress(v.raw(), lvl6)).as_bytes().unwrap().to_vec(),
                &mut || {
                    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(n / 3), flate2::Compression::new(6));
                    e.write_all(&data).unwrap();
                    black_box(e.finish().unwrap());
                },
                &mut || sh(&format!("gzip -6 -c {} > {}", s(&input), s(&gz_path))),
                &mut || wz7 = Value::from_raw(gzip::rt_gzip_compress(v.raw(), lvl7)).as_bytes().unwrap().to_vec(),
            ],
        );
        let tool_len = std::fs::metadata(&gz_path).unwrap().len();
        row("gzip -6 compress", r[0], r[1], r[2], "gzip -6", n, &format!("ratio: ours {:.4}, gzip {:.4}", wz.len() as f64 / n as f64, tool_len as f64 / n as f64));
        // zlib-rs runs zlib-ng's "medium" strategy at levels 3..6 (slightly larger output than
        // zlib/GNU gzip at 6); level 7 is the lazy-match strategy of classic zlib level 6.
        row("gzip level 7 (ours) vs gzip -6", r[3], r[3], r[2], "gzip -6", n, &format!("ratio: ours {:.4}, gzip -6 {:.4}; crate column = wrapper", wz7.len() as f64 / n as f64, tool_len as f64 / n as f64));

        // gzip decompress (of GNU gzip's output).
        let gzd = std::fs::read(&gz_path).unwrap();
        let gzv = Value::bytes(&gzd);
        let r = bench::race(
            runs,
            1,
            &mut [
                &mut || {
                    black_box(gzip::rt_gzip_decompress(gzv.raw(), ffi_sdk::abi::NIL));
                },
                &mut || {
                    let mut out = Vec::with_capacity(n);
                    flate2::read::MultiGzDecoder::new(&gzd[..]).read_to_end(&mut out).unwrap();
                    black_box(out);
                },
                &mut || sh(&format!("gzip -d -c {} > /dev/null", s(&gz_path))),
            ],
        );
        row("gzip decompress", r[0], r[1], r[2], "gzip -d", n, "");

        // File to file (constant memory) vs the tool on the same files.
        let out = dir.path().join("ours.gz");
        let out2 = dir.path().join("tool2.gz");
        let back = dir.path().join("back");
        let r = bench::race(
            runs,
            1,
            &mut [
                &mut || {
                    black_box(gzip::rt_gzip_compress_file(Value::text(&s(&input)).raw(), Value::text(&s(&out)).raw(), lvl6));
                },
                &mut || sh(&format!("gzip -6 -c {} > {}", s(&input), s(&out2))),
                &mut || {
                    black_box(gzip::rt_gzip_decompress_file(Value::text(&s(&out2)).raw(), Value::text(&s(&back)).raw(), ffi_sdk::abi::NIL));
                },
                &mut || sh(&format!("gzip -d -c {} > {}", s(&out2), s(&back))),
            ],
        );
        row("gzip -6 file to file", r[0], r[0], r[1], "gzip -6", n, "crate column = wrapper");
        row("gzip -d file to file", r[2], r[2], r[3], "gzip -d", n, "crate column = wrapper");
        black_box(gzv);
    }

    if wanted("xz") {
        // xz -6 on 16 MB.
        let xn = 16_000_000.min(n);
        let xin = dir.path().join("xin");
        std::fs::write(&xin, &data[..xn]).unwrap();
        let xv = Value::bytes(&data[..xn]);
        let p6 = opts(&[("preset", Value::int(6))]);
        let xz_path = dir.path().join("tool.xz");
        let mut wx = Vec::new();
        let r = bench::race(
            runs,
            1,
            &mut [
                &mut || wx = Value::from_raw(xz::rt_xz_compress(xv.raw(), p6)).as_bytes().unwrap().to_vec(),
                &mut || {
                    let mut e = liblzma::write::XzEncoder::new(Vec::with_capacity(xn / 4), 6);
                    e.write_all(&data[..xn]).unwrap();
                    black_box(e.finish().unwrap());
                },
                &mut || sh(&format!("xz -6 -T1 -c {} > {}", s(&xin), s(&xz_path))),
            ],
        );
        let xl = std::fs::metadata(&xz_path).unwrap().len();
        row("xz -6 compress (16 MB)", r[0], r[1], r[2], "xz -6 -T1", xn, &format!("ratio: ours {:.4}, xz {:.4}", wx.len() as f64 / xn as f64, xl as f64 / xn as f64));
        let xd = std::fs::read(&xz_path).unwrap();
        let xdv = Value::bytes(&xd);
        let r = bench::race(
            runs,
            1,
            &mut [
                &mut || {
                    black_box(xz::rt_xz_decompress(xdv.raw(), ffi_sdk::abi::NIL));
                },
                &mut || {
                    let mut out = Vec::with_capacity(xn);
                    liblzma::read::XzDecoder::new_multi_decoder(&xd[..]).read_to_end(&mut out).unwrap();
                    black_box(out);
                },
                &mut || sh(&format!("xz -d -T1 -c {} > /dev/null", s(&xz_path))),
            ],
        );
        row("xz decompress (16 MB)", r[0], r[1], r[2], "xz -d -T1", xn, "");
        black_box((xv, xdv));
    }

    let k = std::cell::Cell::new(0);
    let fresh = || {
        k.set(k.get() + 1);
        let p = dir.path().join(format!("x{}", k.get()));
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    // 10k small files, for the tar and zip extraction rows.
    let tree = dir.path().join("tree");
    let mut total = 0usize;
    if wanted("tar") || wanted("zip") {
        for i in 0..100 {
            let d = tree.join(format!("dir{i:03}"));
            std::fs::create_dir_all(&d).unwrap();
            for j in 0..100 {
                let len = 64 + (i * 131 + j * 17) % 1985;
                total += len;
                std::fs::write(d.join(format!("file{j:03}.txt")), &data[(i * 100 + j) * 37..][..len]).unwrap();
            }
        }
    }

    if wanted("tar") {
        // Extract 10k small files.
        let ar = dir.path().join("small.tar");
        sh(&format!("tar -cf {} -C {} .", s(&ar), s(&tree)));
        let r = bench::race(
            runs,
            1,
            &mut [
                &mut || {
                    let t = fresh();
                    let r = Value::from_raw(rtar::rt_tar_extract(Value::text(&s(&ar)).raw(), Value::text(&s(&t)).raw(), ffi_sdk::abi::NIL));
                    assert!(r.error().is_none(), "{:?}", r.error());
                },
                &mut || {
                    let t = fresh();
                    tar::Archive::new(std::io::BufReader::new(std::fs::File::open(&ar).unwrap())).unpack(&t).unwrap();
                },
                &mut || {
                    let t = fresh();
                    sh(&format!("tar -xf {} -C {}", s(&ar), s(&t)));
                },
            ],
        );
        let (w, d, t) = (r[0], r[1], r[2]);
        println!(
            "| extract 10k small files ({} KB) | {:.0} ms | {:.0} ms (tar::Archive::unpack) | {:.0} ms (GNU tar -x) | {:.2}x | {:.3} | files/s ours {:.0} |",
            total / 1000,
            w.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            t.as_secs_f64() * 1e3,
            t.as_secs_f64() / w.as_secs_f64(),
            d.as_secs_f64() / w.as_secs_f64(),
            10_000.0 / w.as_secs_f64()
        );
    }

    if wanted("zip") {
        zip_section(&dir, &input, n, &tree, total, &fresh, runs);
    }
    black_box(v);
}

fn zip_section(dir: &tempfile::TempDir, input: &Path, n: usize, tree: &Path, total: usize, fresh: &dyn Fn() -> std::path::PathBuf, runs: usize) {
    let t = |p: &Path| Value::text(&s(p)).raw();
    let ok = |v: RtValue| {
        let v = Value::from_raw(v);
        assert!(v.error().is_none(), "{:?}", v.error());
        v
    };
    // Compress: one 64 MB entry, deflate 6.
    let ours = dir.path().join("ours.zip");
    let direct = dir.path().join("direct.zip");
    let info = dir.path().join("info.zip");
    let lvl6 = opts(&[("level", Value::int(6))]);
    let r = bench::race(
        runs,
        1,
        &mut [
            &mut || {
                let w = ok(rzip::rt_zip_create(t(&ours), lvl6));
                ok(rzip::rt_zip_add_file(w.raw(), Value::text("input").raw(), t(input)));
                ok(rzip::rt_zip_close(w.raw()));
            },
            &mut || {
                let mut w = zip::ZipWriter::new(std::fs::File::create(&direct).unwrap());
                let o = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .compression_level(Some(6));
                w.start_file("input", o).unwrap();
                std::io::copy(&mut std::fs::File::open(input).unwrap(), &mut w).unwrap();
                w.finish().unwrap();
            },
            // Info-ZIP updates an existing archive: start from none each time.
            &mut || sh(&format!("rm -f {0} && zip -6 -q -j {0} {1}", s(&info), s(input))),
        ],
    );
    let len = |p: &Path| std::fs::metadata(p).unwrap().len() as f64 / n as f64;
    row("zip -6 compress, 1 entry", r[0], r[1], r[2], "Info-ZIP zip -6", n, &format!("ratio: ours {:.4}, crate {:.4}, Info-ZIP {:.4}", len(&ours), len(&direct), len(&info)));
    // Extract the archive Info-ZIP wrote.
    let r = bench::race(
        runs,
        1,
        &mut [
            &mut || {
                let z = ok(rzip::rt_zip_open(t(&info)));
                ok(rzip::rt_zip_extract(z.raw(), t(&fresh()), ffi_sdk::abi::NIL));
                ok(rzip::rt_zip_close(z.raw()));
            },
            &mut || {
                zip::ZipArchive::new(std::fs::File::open(&info).unwrap()).unwrap().extract(fresh()).unwrap();
            },
            &mut || sh(&format!("unzip -q -o {} -d {}", s(&info), s(&fresh()))),
        ],
    );
    row("unzip, 1 entry", r[0], r[1], r[2], "Info-ZIP unzip", n, "");
    // Extract 10k small files zipped by Info-ZIP.
    let small = dir.path().join("small.zip");
    sh(&format!("cd {} && zip -6 -q -r {} .", s(tree), s(&small)));
    let r = bench::race(
        runs,
        1,
        &mut [
            &mut || {
                let z = ok(rzip::rt_zip_open(t(&small)));
                ok(rzip::rt_zip_extract(z.raw(), t(&fresh()), ffi_sdk::abi::NIL));
                ok(rzip::rt_zip_close(z.raw()));
            },
            &mut || {
                zip::ZipArchive::new(std::fs::File::open(&small).unwrap()).unwrap().extract(fresh()).unwrap();
            },
            &mut || sh(&format!("unzip -q -o {} -d {}", s(&small), s(&fresh()))),
        ],
    );
    let (w, d, tl) = (r[0], r[1], r[2]);
    println!(
        "| unzip 10k small files ({} KB) | {:.0} ms | {:.0} ms (ZipArchive::extract) | {:.0} ms (Info-ZIP unzip) | {:.2}x | {:.3} | files/s ours {:.0} |",
        total / 1000,
        w.as_secs_f64() * 1e3,
        d.as_secs_f64() * 1e3,
        tl.as_secs_f64() * 1e3,
        tl.as_secs_f64() / w.as_secs_f64(),
        d.as_secs_f64() / w.as_secs_f64(),
        10_000.0 / w.as_secs_f64()
    );
}
