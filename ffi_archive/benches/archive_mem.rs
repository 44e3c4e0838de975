//! Peak memory of in-memory decompression (issue 17): `rt_gzip_decompress` and
//! `rt_xz_decompress` against the way they worked before (decode into a `Vec`,
//! then copy it into the bytes value), side by side in one run:
//!
//! `cargo bench -p ffi_archive --bench archive_mem`
//!
//! Each measurement runs in a fresh child process (this binary again): the
//! compressed input is loaded into a bytes value first, then the peak RSS is
//! reset (`/proc/self/clear_refs` = 5) and the call made; the figure is the
//! peak RSS over the RSS just before the call, divided by the output size. The
//! input is `RT_MEM_MB` (default 128) MB of mixed data: C headers and shared
//! objects from /usr/include and /usr/lib (as `benches/archive.rs`), repeated
//! if needed. Cases: gzip (one member, as `gzip` and `rt_gzip_compress` write),
//! gzip in two members and in 8 MiB members (ISIZE then covers only the last
//! one), xz (with its index), and xz in two concatenated streams.

use ffi_archive::{gzip, xz};
use ffi_sdk::Value;
use std::io::{Read, Write};
use std::process::Command;

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn corpus(n: usize) -> Vec<u8> {
    let out = Command::new("sh")
        .args(["-c", "find /usr/include /usr/lib/x86_64-linux-gnu -type f 2>/dev/null | LC_ALL=C sort | xargs cat 2>/dev/null | head -c 400000000"])
        .output()
        .unwrap();
    let mut v = out.stdout;
    assert!(!v.is_empty());
    while v.len() < n {
        let more = v[..v.len().min(n - v.len())].to_vec();
        v.extend(more);
    }
    v.truncate(n);
    v
}

/// The child: decode `file` with `method`, print "peak_kib out_bytes".
fn child(method: &str, file: &str) {
    let data = std::fs::read(file).unwrap();
    let input = Value::bytes(&data);
    drop(data);
    let r = ffi_sdk::Root::new(input);
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS (/proc/self/clear_refs)");
    let before = status_kib("VmRSS:");
    let out_len = match method {
        "gzip" => Value::from_raw(gzip::rt_gzip_decompress(r.get().raw(), ffi_sdk::abi::NIL)).as_bytes().unwrap().len(),
        "xz" => Value::from_raw(xz::rt_xz_decompress(r.get().raw(), ffi_sdk::abi::NIL)).as_bytes().unwrap().len(),
        // Before issue 17: read_to_end into a Vec (reserved from the ISIZE hint /
        // 4x the input, at most 256 MiB), then IntoRet copied the Vec into the value.
        "gzip-old" => {
            let z = r.get().as_bytes().unwrap();
            let hint = u32::from_le_bytes(z[z.len() - 4..].try_into().unwrap()) as usize;
            let mut v = Vec::new();
            let _ = v.try_reserve_exact(hint.max(z.len() * 3).min(256 << 20));
            flate2::bufread::MultiGzDecoder::new(z).read_to_end(&mut v).unwrap();
            Value::bytes(&v).as_bytes().unwrap().len()
        }
        "xz-old" => {
            let z = r.get().as_bytes().unwrap();
            let mut v = Vec::new();
            let _ = v.try_reserve_exact((z.len() * 4).min(256 << 20));
            let s = liblzma::stream::Stream::new_stream_decoder(1 << 30, liblzma::stream::CONCATENATED).unwrap();
            liblzma::bufread::XzDecoder::new_stream(z, s).read_to_end(&mut v).unwrap();
            Value::bytes(&v).as_bytes().unwrap().len()
        }
        other => panic!("unknown method {other}"),
    };
    let peak = status_kib("VmHWM:");
    println!("{} {}", peak.saturating_sub(before), out_len);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(&args[i + 1], &args[i + 2]);
    }
    let mb: usize = std::env::var("RT_MEM_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let n = mb * 1_000_000;
    let data = corpus(n);
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p.to_str().unwrap().to_string()
    };
    let gz = |d: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(d).unwrap();
        e.finish().unwrap()
    };
    let xzc = |d: &[u8]| {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 1);
        e.write_all(d).unwrap();
        e.finish().unwrap()
    };
    let half = n / 2;
    let g1 = w("one.gz", &gz(&data));
    let g2 = w("two.gz", &[gz(&data[..half]), gz(&data[half..])].concat());
    let gm = w("members.gz", &{
        let mut m = gzip::MemberWriter::new(Vec::new(), libdeflater::CompressionLvl::new(6).unwrap());
        m.write_all(&data).unwrap();
        ffi_archive::gzip::finish(&mut m).unwrap();
        m.into_inner()
    });
    let x1 = w("one.xz", &xzc(&data));
    let x2 = w("two.xz", &[xzc(&data[..half]), xzc(&data[half..])].concat());
    drop(data);
    println!("output: {n} bytes of headers + shared objects; peak = max RSS during the call over RSS before it\n");
    println!("| input | method | peak RSS growth | output | peak / output |");
    println!("|---|---|---:|---:|---:|");
    let me = std::env::current_exe().unwrap();
    for (label, file, fmt) in [
        ("gzip, one member", &g1, "gzip"),
        ("gzip, two members", &g2, "gzip"),
        ("gzip, 8 MiB members (as rt_gzip_compress_file writes)", &gm, "gzip"),
        ("xz, one stream", &x1, "xz"),
        ("xz, two streams", &x2, "xz"),
    ] {
        for (method, name) in [(fmt.to_string(), "rt_*_decompress (now)"), (format!("{fmt}-old"), "Vec, then copy (before)")] {
            let out = Command::new(&me).args(["--child", &method, file]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let s = String::from_utf8_lossy(&out.stdout);
            let mut it = s.split_whitespace();
            let (peak_kib, len): (u64, u64) = (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap());
            assert_eq!(len as usize, n);
            println!(
                "| {label} | {name} | {:.1} MB | {:.1} MB | {:.2}x |",
                peak_kib as f64 * 1024.0 / 1e6,
                len as f64 / 1e6,
                peak_kib as f64 * 1024.0 / len as f64
            );
        }
    }
}
