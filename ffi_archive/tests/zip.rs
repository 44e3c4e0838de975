//! zip through handles against Info-ZIP (`zip`, `unzip`) and Python's zlib
//! (raw deflate); safe extraction of hostile archives; capability in a child.

use ffi_archive::zip::*;
use ffi_sdk::testing::{bytes, err, in_child, int, ok, restrict, text, tmp, tp, NIL};
use ffi_sdk::{Code, Value};
use std::fs;
use std::process::Command;

fn opts(pairs: &[(&str, i64)]) -> ffi_sdk::abi::RtValue {
    let d = Value::dict();
    for (k, v) in pairs {
        d.set(k, Value::int(*v));
    }
    d.raw()
}

#[test]
fn written_archive_reads_with_unzip() {
    let (_g, d) = tmp();
    let z = d.join("a.zip");
    fs::write(d.join("src.bin"), vec![7u8; 100_000]).unwrap();
    let w = ok(rt_zip_create(tp(&z), NIL));
    ok(rt_zip_add_data(w.raw(), text("dir/hello.txt"), text("hello zip\n")));
    ok(rt_zip_add_file(w.raw(), text("big.bin"), tp(&d.join("src.bin"))));
    let (c, m) = err(rt_zip_add_data(w.raw(), text("../evil"), text("x")));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert_eq!(err(rt_zip_add_data(w.raw(), text("/abs"), text("x"))).0, Code::InvalidArgument);
    ok(rt_zip_close(w.raw()));
    assert_eq!(err(rt_zip_close(w.raw())).0, Code::Closed);
    let t = Command::new("unzip").arg("-tq").arg(&z).output().unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stdout));
    let out = d.join("u");
    assert!(Command::new("unzip").arg("-q").arg(&z).arg("-d").arg(&out).status().unwrap().success());
    assert_eq!(fs::read_to_string(out.join("dir/hello.txt")).unwrap(), "hello zip\n");
    assert_eq!(fs::read(out.join("big.bin")).unwrap(), vec![7u8; 100_000]);
}

#[test]
fn info_zip_archive_lists_and_extracts() {
    let (_g, d) = tmp();
    let src = d.join("s");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), "alpha").unwrap();
    fs::write(src.join("sub/b.txt"), "beta".repeat(1000)).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("l")).unwrap();
    let z = d.join("i.zip");
    assert!(Command::new("zip").current_dir(&src).args(["-qry", z.to_str().unwrap(), "."]).status().unwrap().success());
    let r = ok(rt_zip_open(tp(&z)));
    let names: Vec<String> = ok(rt_zip_list(r.raw())).items().map(|e| e.get("name").as_text().unwrap().to_string()).collect();
    assert!(names.contains(&"a.txt".to_string()) && names.contains(&"sub/b.txt".to_string()), "{names:?}");
    let out = d.join("o");
    let res = ok(rt_zip_extract(r.raw(), tp(&out), NIL));
    assert_eq!(res.get("entries").as_int(), Some(names.len() as i64));
    assert_eq!(fs::read_to_string(out.join("sub/b.txt")).unwrap(), "beta".repeat(1000));
    assert_eq!(fs::read_link(out.join("l")).unwrap().to_str(), Some("a.txt"));
    let one = d.join("one.txt");
    assert_eq!(ok(rt_zip_extract_file(r.raw(), text("a.txt"), tp(&one), NIL)).as_int(), Some(5));
    assert_eq!(fs::read_to_string(&one).unwrap(), "alpha");
    assert_eq!(err(rt_zip_extract_file(r.raw(), text("missing"), tp(&one), NIL)).0, Code::NotFound);
    assert_eq!(err(rt_zip_extract_file(r.raw(), text("sub/b.txt"), tp(&one), opts(&[("max_size", 10)]))).0, Code::LimitExceeded);
    ok(rt_zip_close(r.raw()));
    assert_eq!(err(rt_zip_list(r.raw())).0, Code::Closed);
}

#[test]
fn hostile_archives_are_refused() {
    let (_g, d) = tmp();
    // Python's zipfile writes names Info-ZIP would sanitize.
    let z = d.join("evil.zip");
    let prog = format!(
        "import zipfile\nz=zipfile.ZipFile('{}','w')\nz.writestr('ok.txt','fine')\nz.writestr('../escape.txt','bad')\nz.close()",
        z.display()
    );
    assert!(Command::new("python3").args(["-c", &prog]).status().unwrap().success());
    let r = ok(rt_zip_open(tp(&z)));
    let (c, m) = err(rt_zip_extract(r.raw(), tp(&d.join("t")), NIL));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.starts_with("rt_zip_extract") && m.contains("escape"), "{m}");
    assert!(!d.join("escape.txt").exists());
    // A symlink entry leading outside.
    let z2 = d.join("link.zip");
    let prog = format!(
        "import zipfile\nz=zipfile.ZipFile('{}','w')\ni=zipfile.ZipInfo('l')\ni.external_attr=(0o120777<<16)\nz.writestr(i,'../../etc')\nz.close()",
        z2.display()
    );
    assert!(Command::new("python3").args(["-c", &prog]).status().unwrap().success());
    let r2 = ok(rt_zip_open(tp(&z2)));
    assert_eq!(err(rt_zip_extract(r2.raw(), tp(&d.join("t2")), NIL)).0, Code::InvalidArgument);
    // Bombs: the total size limit.
    let z3 = d.join("bomb.zip");
    let w = ok(rt_zip_create(tp(&z3), NIL));
    ok(rt_zip_add_data(w.raw(), text("zeros"), bytes(&vec![0u8; 1 << 20])));
    ok(rt_zip_close(w.raw()));
    let r3 = ok(rt_zip_open(tp(&z3)));
    assert_eq!(err(rt_zip_extract(r3.raw(), tp(&d.join("t3")), opts(&[("max_size", 1000)]))).0, Code::LimitExceeded);
    // Not a zip.
    fs::write(d.join("no.zip"), "plain text").unwrap();
    assert_eq!(err(rt_zip_open(tp(&d.join("no.zip")))).0, Code::Parse);
    assert_eq!(err(rt_zip_open(tp(&d.join("missing.zip")))).0, Code::NotFound);
    assert_eq!(err(rt_zip_list(int(5))).0, Code::TypeMismatch);
}

#[test]
fn deflate_matches_zlib() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i >> 9) as u8).collect();
    for level in [0, 1, 6, 9] {
        let c = ok(rt_deflate_compress(bytes(&data), int(level))).as_bytes().unwrap().to_vec();
        // Python's zlib reads it as raw deflate (wbits=-15).
        let prog = "import zlib,sys\nd=sys.stdin.buffer.read()\nsys.stdout.buffer.write(zlib.decompress(d,-15))";
        let mut ch = Command::new("python3")
            .args(["-c", prog])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut ch.stdin.take().unwrap(), &c).unwrap();
        assert_eq!(ch.wait_with_output().unwrap().stdout, data, "level {level}");
        assert_eq!(ok(rt_deflate_decompress(bytes(&c), NIL)).as_bytes().unwrap(), &data[..]);
    }
    let py = Command::new("python3")
        .args(["-c", "import zlib,sys\nc=zlib.compressobj(9,zlib.DEFLATED,-15)\nsys.stdout.buffer.write(c.compress(b'abc'*1000)+c.flush())"])
        .output()
        .unwrap();
    assert_eq!(ok(rt_deflate_decompress(bytes(&py.stdout), NIL)).as_bytes().unwrap(), "abc".repeat(1000).as_bytes());
    assert_eq!(err(rt_deflate_compress(text("x"), int(10))).0, Code::OutOfRange);
    assert_eq!(err(rt_deflate_decompress(bytes(&[0xff, 0xff, 0xff]), NIL)).0, Code::Parse);
    assert_eq!(err(rt_deflate_decompress(bytes(&py.stdout), opts(&[("max_output", 10)]))).0, Code::LimitExceeded);
}

#[test]
fn zip_capabilities() {
    in_child("zip_capabilities", || {
        let (_g, d) = tmp();
        let inside = d.join("in");
        fs::create_dir(&inside).unwrap();
        fs::write(d.join("secret"), "s").unwrap();
        restrict(&format!("fs.read={0};fs.write={0}", inside.display()));
        assert_eq!(err(rt_zip_create(tp(&d.join("o.zip")), NIL)).0, Code::CapabilityDenied);
        let w = ok(rt_zip_create(tp(&inside.join("o.zip")), NIL));
        assert_eq!(err(rt_zip_add_file(w.raw(), text("s"), tp(&d.join("secret")))).0, Code::CapabilityDenied);
        ok(rt_zip_add_data(w.raw(), text("x"), text("x")));
        ok(rt_zip_close(w.raw()));
        let r = ok(rt_zip_open(tp(&inside.join("o.zip"))));
        assert_eq!(err(rt_zip_extract(r.raw(), tp(&d.join("out")), NIL)).0, Code::CapabilityDenied);
        assert_eq!(err(rt_zip_extract_file(r.raw(), text("x"), tp(&d.join("x")), NIL)).0, Code::CapabilityDenied);
        ok(rt_zip_extract(r.raw(), tp(&inside.join("out")), NIL));
    });
}
