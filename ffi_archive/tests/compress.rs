//! gzip and xz through the exports: round trips, interop both ways with the
//! gzip/xz tools and Python's gzip/lzma, multi-member/multi-stream input,
//! every xz check, corrupt input, output limits, file-to-file streaming.

mod common;
use common::*;
use ffi_archive::gzip::*;
use ffi_archive::xz::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{bytes, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};

type F2 = extern "C" fn(RtValue, RtValue) -> RtValue;

fn b(v: RtValue) -> Vec<u8> {
    ok(v).as_bytes().unwrap().to_vec()
}

#[test]
fn roundtrip_all_levels_and_sizes() {
    for n in [0usize, 1, 100, 65_536, 1_000_003] {
        let data = texty(n, n as u64);
        for level in [0i64, 1, 6, 9] {
            let z = b(rt_gzip_compress(bytes(&data), opts(&[("level", Value::int(level))])));
            assert_eq!(b(rt_gzip_decompress(bytes(&z), NIL)), data, "gzip n={n} level={level}");
            let x = b(rt_xz_compress(bytes(&data), opts(&[("preset", Value::int(level))])));
            assert_eq!(b(rt_xz_decompress(bytes(&x), NIL)), data, "xz n={n} preset={level}");
        }
    }
    // Text input compresses as its UTF-8 bytes.
    let z = b(rt_gzip_compress(text("héllo"), NIL));
    assert_eq!(b(rt_gzip_decompress(bytes(&z), NIL)), "héllo".as_bytes());
    // Compression actually compresses, and level 9 is no worse than level 1.
    let data = texty(1 << 20, 5);
    let z1 = b(rt_gzip_compress(bytes(&data), opts(&[("level", Value::int(1))])));
    let z9 = b(rt_gzip_compress(bytes(&data), opts(&[("level", Value::int(9))])));
    assert!(z9.len() <= z1.len() && z1.len() < data.len() / 2, "{} {}", z1.len(), z9.len());
}

#[test]
fn interop_with_gzip_and_xz_tools() {
    let dir = tempfile::tempdir().unwrap();
    let data = texty(300_000, 11);
    let p = dir.path().join("d");
    std::fs::write(&p, &data).unwrap();
    // Tools compress -> we decompress.
    for lvl in ["-1", "-6", "-9"] {
        let z = sh(&format!("gzip -c {lvl} {}", s(&p)));
        assert_eq!(b(rt_gzip_decompress(bytes(&z), NIL)), data);
        let x = sh(&format!("xz -c {lvl} {}", s(&p)));
        assert_eq!(b(rt_xz_decompress(bytes(&x), NIL)), data);
    }
    // We compress -> tools decompress (and test integrity).
    let z = b(rt_gzip_compress(bytes(&data), NIL));
    std::fs::write(dir.path().join("o.gz"), &z).unwrap();
    sh(&format!("gzip -t {}/o.gz", s(dir.path())));
    assert_eq!(sh(&format!("gzip -dc {}/o.gz", s(dir.path()))), data);
    for check in ["crc64", "crc32", "sha256", "none"] {
        let x = b(rt_xz_compress(bytes(&data), opts(&[("check", Value::text(check))])));
        let f = dir.path().join(format!("o.{check}.xz"));
        std::fs::write(&f, &x).unwrap();
        let info = String::from_utf8(sh(&format!("xz --robot --list {}", s(&f)))).unwrap();
        let want = match check {
            "crc64" => "CRC64",
            "crc32" => "CRC32",
            "sha256" => "SHA-256",
            _ => "None",
        };
        assert!(info.contains(want), "{check}: {info}");
        assert_eq!(sh(&format!("xz -dc {}", s(&f))), data);
    }
    // Every check type written by xz decodes.
    for check in ["none", "crc32", "crc64", "sha256"] {
        let x = sh(&format!("xz -c --check={check} {}", s(&p)));
        assert_eq!(b(rt_xz_decompress(bytes(&x), NIL)), data, "xz --check={check}");
    }
    // Extreme preset is accepted and decodable.
    let x = b(rt_xz_compress(bytes(&data), opts(&[("preset", Value::int(3)), ("extreme", Value::TRUE)])));
    assert_eq!(b(rt_xz_decompress(bytes(&x), NIL)), data);
}

#[test]
fn interop_with_python_gzip_and_lzma() {
    let dir = tempfile::tempdir().unwrap();
    let data = texty(100_000, 3);
    let p = dir.path().join("d");
    std::fs::write(&p, &data).unwrap();
    let script = r#"
import sys, gzip, lzma
src, out = sys.argv[1], sys.argv[2]
d = open(src, 'rb').read()
open(out + '.gz', 'wb').write(gzip.compress(d, 9))
open(out + '.xz', 'wb').write(lzma.compress(d, check=lzma.CHECK_SHA256))
"#;
    let out = dir.path().join("py");
    py(script, &[&s(&p), &s(&out)]);
    assert_eq!(b(rt_gzip_decompress(bytes(&std::fs::read(format!("{}.gz", s(&out))).unwrap()), NIL)), data);
    assert_eq!(b(rt_xz_decompress(bytes(&std::fs::read(format!("{}.xz", s(&out))).unwrap()), NIL)), data);
    // Ours -> Python.
    std::fs::write(dir.path().join("ours.gz"), b(rt_gzip_compress(bytes(&data), NIL))).unwrap();
    std::fs::write(dir.path().join("ours.xz"), b(rt_xz_compress(bytes(&data), NIL))).unwrap();
    let check = r#"
import sys, gzip, lzma
d = open(sys.argv[1], 'rb').read()
assert gzip.decompress(open(sys.argv[2] + '/ours.gz', 'rb').read()) == d
assert lzma.decompress(open(sys.argv[2] + '/ours.xz', 'rb').read()) == d
print("ok")
"#;
    assert_eq!(py(check, &[&s(&p), &s(dir.path())]), b"ok\n");
}

#[test]
fn multi_member_gzip_and_multi_stream_xz() {
    let a = texty(5000, 1);
    let c = texty(7000, 2);
    let mut gz = b(rt_gzip_compress(bytes(&a), NIL));
    gz.extend(sh("printf 'middle' | gzip -c"));
    gz.extend(b(rt_gzip_compress(bytes(&c), NIL)));
    let want = [a.as_slice(), b"middle", c.as_slice()].concat();
    assert_eq!(b(rt_gzip_decompress(bytes(&gz), NIL)), want);
    // `gzip -dc` agrees on our concatenation.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.gz"), &gz).unwrap();
    assert_eq!(sh(&format!("gzip -dc {}/m.gz", s(dir.path()))), want);

    let mut xz = b(rt_xz_compress(bytes(&a), NIL));
    xz.extend(sh("printf 'middle' | xz -c --check=sha256"));
    xz.extend([0u8; 8]); // stream padding (multiple of 4) is valid between streams
    xz.extend(b(rt_xz_compress(bytes(&c), opts(&[("check", Value::text("none"))]))));
    assert_eq!(b(rt_xz_decompress(bytes(&xz), NIL)), want);
}

fn parse_err(f: F2, data: &[u8], what: &str) {
    let (code, msg) = err(f(bytes(data), NIL));
    assert_eq!(code, Code::Parse, "{what}: {msg}");
}

#[test]
fn corrupt_input_is_parse_error_never_a_panic() {
    let data = texty(50_000, 9);
    let gz = b(rt_gzip_compress(bytes(&data), NIL));
    let xz = b(rt_xz_compress(bytes(&data), NIL));
    for (f, z, name) in [(rt_gzip_decompress as F2, &gz, "gzip"), (rt_xz_decompress as F2, &xz, "xz")] {
        parse_err(f, b"", &format!("{name} empty"));
        parse_err(f, b"not compressed at all", &format!("{name} garbage"));
        for cut in [1, 5, 10, z.len() / 2, z.len() - 1] {
            parse_err(f, &z[..cut], &format!("{name} truncated at {cut}"));
        }
        let mut trailing = z.clone();
        trailing.extend(b"GARBAGE!");
        parse_err(f, &trailing, &format!("{name} trailing garbage"));
        // Flip bytes all over the stream: never a crash, and a wrong result is never returned.
        for i in (0..z.len()).step_by(97) {
            let mut bad = z.clone();
            bad[i] ^= 0x55;
            let r = Value::from_raw(f(bytes(&bad), NIL));
            if let Some((code, msg)) = r.error() {
                assert_eq!(code, Code::Parse, "{name} flip at {i}: {msg}");
            } else {
                assert_eq!(r.as_bytes().unwrap(), data.as_slice(), "{name} flip at {i} gave wrong data");
            }
        }
    }
    // Bad CRC32 in the gzip trailer, bad CRC64 in xz: the data decodes but the check fails.
    let mut bad_crc = gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    let (code, msg) = err(rt_gzip_decompress(bytes(&bad_crc), NIL));
    assert_eq!(code, Code::Parse, "{msg}");
    let mut bad_len = gz.clone();
    bad_len[n - 1] ^= 1;
    assert_eq!(err(rt_gzip_decompress(bytes(&bad_len), NIL)).0, Code::Parse);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("x.xz"), &xz).unwrap();
    // Locate the CRC64 of the block: xz --robot --list shows sizes; the check sits right before the index.
    // Simplest: flip the last byte of the compressed block region by scanning for a byte that xz -t rejects.
    let mut found = false;
    for back in 24..64 {
        let mut bad = xz.clone();
        let i = bad.len() - back;
        bad[i] ^= 0xff;
        std::fs::write(dir.path().join("b.xz"), &bad).unwrap();
        let st = std::process::Command::new("xz").args(["-t"]).arg(dir.path().join("b.xz")).output().unwrap();
        if !st.status.success() {
            assert_eq!(err(rt_xz_decompress(bytes(&bad), NIL)).0, Code::Parse, "xz -t rejects flip at -{back}");
            found = true;
        }
    }
    assert!(found);
    let (_, msg) = err(rt_gzip_decompress(bytes(&gz[..10]), NIL));
    assert!(msg.starts_with("rt_gzip_decompress: truncated gzip data"), "{msg}");
}

#[test]
fn output_limits_stop_bombs() {
    // 16 MiB of zeros compresses to ~16 KiB.
    let zeros = vec![0u8; 16 << 20];
    let gz = b(rt_gzip_compress(bytes(&zeros), opts(&[("level", Value::int(9))])));
    let xz = b(rt_xz_compress(bytes(&zeros), NIL));
    assert!(gz.len() < 100_000 && xz.len() < 100_000);
    for (f, z) in [(rt_gzip_decompress as F2, &gz), (rt_xz_decompress as F2, &xz)] {
        let (code, msg) = err(f(bytes(z), opts(&[("max_output", Value::int(1 << 20))])));
        assert_eq!(code, Code::LimitExceeded, "{msg}");
        assert!(msg.contains("max_output"), "{msg}");
        // Exactly at the limit is fine.
        assert_eq!(b(f(bytes(z), opts(&[("max_output", Value::int(16 << 20))]))).len(), 16 << 20);
        assert_eq!(err(f(bytes(z), opts(&[("max_output", Value::int((16 << 20) - 1))]))).0, Code::LimitExceeded);
    }
    // xz memlimit: a preset-9 stream needs a 64 MiB dictionary.
    let x9 = b(rt_xz_compress(bytes(&zeros[..1000]), opts(&[("preset", Value::int(9))])));
    let (code, msg) = err(rt_xz_decompress(bytes(&x9), opts(&[("memlimit", Value::int(2 << 20))])));
    assert_eq!(code, Code::LimitExceeded, "{msg}");
}

#[test]
fn bad_arguments() {
    for f in [rt_gzip_compress as F2, rt_gzip_decompress, rt_xz_compress, rt_xz_decompress] {
        assert_eq!(err(f(NIL, NIL)).0, Code::TypeMismatch);
        assert_eq!(err(f(int(1), NIL)).0, Code::TypeMismatch);
        assert_eq!(err(f(bytes(b"x"), int(1))).0, Code::TypeMismatch);
        assert_eq!(err(f(bytes(b"x"), opts(&[("nope", Value::int(1))]))).0, Code::InvalidArgument);
    }
    assert_eq!(err(rt_gzip_compress(bytes(b"x"), opts(&[("level", Value::int(10))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_gzip_compress(bytes(b"x"), opts(&[("level", Value::text("9"))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_xz_compress(bytes(b"x"), opts(&[("preset", Value::int(-1))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_xz_compress(bytes(b"x"), opts(&[("check", Value::text("md5"))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_gzip_decompress(bytes(b"x"), opts(&[("max_output", Value::int(-1))]))).0, Code::InvalidArgument);
}

type F3 = extern "C" fn(RtValue, RtValue, RtValue) -> RtValue;

#[test]
fn file_to_file_roundtrip_and_interop() {
    let dir = tempfile::tempdir().unwrap();
    let data = texty(3_000_000, 21);
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    for (comp, decomp, ext, tool) in [
        (rt_gzip_compress_file as F3, rt_gzip_decompress_file as F3, "gz", "gzip"),
        (rt_xz_compress_file, rt_xz_decompress_file, "xz", "xz"),
    ] {
        let z = dir.path().join(format!("src.bin.{ext}"));
        let r = ok(comp(text(&s(&src)), text(&s(&z)), NIL));
        assert_eq!(r.get("read").as_int(), Some(data.len() as i64));
        assert_eq!(r.get("written").as_int(), Some(std::fs::metadata(&z).unwrap().len() as i64));
        assert_eq!(sh(&format!("{tool} -dc {}", s(&z))), data);
        let back = dir.path().join(format!("back.{ext}"));
        let r = ok(decomp(text(&s(&z)), text(&s(&back)), NIL));
        assert_eq!(r.get("uncompressed").as_int(), Some(data.len() as i64));
        assert_eq!(std::fs::read(&back).unwrap(), data);
        // Tool output -> our file decompressor.
        let tz = dir.path().join(format!("tool.{ext}"));
        sh(&format!("{tool} -c {} > {}", s(&src), s(&tz)));
        let tb = dir.path().join(format!("tool.out.{ext}"));
        ok(decomp(text(&s(&tz)), text(&s(&tb)), NIL));
        assert_eq!(std::fs::read(&tb).unwrap(), data);
        // Corrupt: Parse, and no output file (nor temporary) is left.
        let bad = dir.path().join(format!("bad.{ext}"));
        let zb = std::fs::read(&z).unwrap();
        std::fs::write(&bad, &zb[..zb.len() / 2]).unwrap();
        let out = dir.path().join(format!("bad.out.{ext}"));
        let (code, msg) = err(decomp(text(&s(&bad)), text(&s(&out)), NIL));
        assert_eq!(code, Code::Parse, "{msg}");
        assert!(!out.exists());
        // Limit: LimitExceeded, no output.
        let (code, _) = err(decomp(text(&s(&z)), text(&s(&out)), opts(&[("max_output", Value::int(1000))])));
        assert_eq!(code, Code::LimitExceeded);
        assert!(!out.exists());
        // Missing source: NotFound; bad kinds: TypeMismatch; empty path: InvalidArgument.
        assert_eq!(err(decomp(text(&s(&dir.path().join("none"))), text(&s(&out)), NIL)).0, Code::NotFound);
        assert_eq!(err(comp(NIL, text(&s(&out)), NIL)).0, Code::TypeMismatch);
        assert_eq!(err(comp(text(""), text(&s(&out)), NIL)).0, Code::InvalidArgument);
        assert_eq!(err(comp(text(&s(dir.path())), text(&s(&out)), NIL)).0, Code::InvalidArgument);
        // Empty source file: compresses to a valid empty stream; decompressing an empty file is Parse.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        let ez = dir.path().join(format!("empty.{ext}"));
        ok(comp(text(&s(&empty)), text(&s(&ez)), NIL));
        assert_eq!(sh(&format!("{tool} -dc {}", s(&ez))), b"");
        assert_eq!(err(decomp(text(&s(&empty)), text(&s(&out)), NIL)).0, Code::Parse);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn file_streaming_runs_in_constant_memory() {
    ffi_sdk::testing::in_child("file_streaming_runs_in_constant_memory", || {
        let dir = tempfile::tempdir().unwrap();
        // 120 MB of zeros, made by the tools (never in our memory).
        let gz = dir.path().join("z.gz");
        let xz = dir.path().join("z.xz");
        sh(&format!("head -c 120000000 /dev/zero | gzip -1 > {}", s(&gz)));
        sh(&format!("head -c 120000000 /dev/zero | xz -0 -T1 > {}", s(&xz)));
        let before = peak_rss();
        let out = dir.path().join("out");
        let r = ok(rt_gzip_decompress_file(text(&s(&gz)), text(&s(&out)), NIL));
        assert_eq!(r.get("uncompressed").as_int(), Some(120_000_000));
        let r = ok(rt_xz_decompress_file(text(&s(&xz)), text(&s(&out)), NIL));
        assert_eq!(r.get("uncompressed").as_int(), Some(120_000_000));
        // Compression (slow in debug builds): 16 MB.
        std::fs::File::options().write(true).open(&out).unwrap().set_len(16_000_000).unwrap();
        ok(rt_gzip_compress_file(text(&s(&out)), text(&s(&gz)), opts(&[("level", Value::int(1))])));
        ok(rt_xz_compress_file(text(&s(&out)), text(&s(&xz)), opts(&[("preset", Value::int(0))])));
        let grown = peak_rss().saturating_sub(before);
        assert!(grown < 64 << 20, "peak RSS grew by {grown} bytes");
    });
}

#[test]
fn capability_checks_on_file_variants() {
    ffi_sdk::testing::in_child("capability_checks_on_file_variants", || {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let ro = root.join("ro");
        let rw = root.join("rw");
        std::fs::create_dir_all(&ro).unwrap();
        std::fs::create_dir_all(&rw).unwrap();
        std::fs::write(ro.join("a"), b"hello").unwrap();
        ffi_sdk::testing::restrict(&format!("fs.read={};fs.write={}", s(&ro), s(&rw)));
        let src = s(&ro.join("a"));
        ok(rt_gzip_compress_file(text(&src), text(&s(&rw.join("a.gz"))), NIL));
        ok(rt_xz_compress_file(text(&src), text(&s(&rw.join("a.xz"))), NIL));
        // Writing outside fs.write, reading outside fs.read: CapabilityDenied, nothing created.
        let (code, msg) = err(rt_gzip_compress_file(text(&src), text(&s(&ro.join("a.gz"))), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        assert!(msg.contains("needs fs.write"), "{msg}");
        assert!(!ro.join("a.gz").exists());
        let (code, msg) = err(rt_xz_decompress_file(text(&s(&rw.join("a.xz"))), text(&s(&rw.join("b"))), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        assert!(msg.contains("needs fs.read"), "{msg}");
        // Traversal does not escape: rw/../ro is ro.
        let sneaky = format!("{}/../ro/x.gz", s(&rw));
        assert_eq!(err(rt_gzip_compress_file(text(&src), text(&sneaky), NIL)).0, Code::CapabilityDenied);
        // In-memory functions need nothing.
        ok(rt_gzip_decompress(bytes(&b(rt_gzip_compress(text("x"), NIL))), NIL));
        ok(rt_xz_decompress(bytes(&b(rt_xz_compress(text("x"), NIL))), NIL));
    });
}
