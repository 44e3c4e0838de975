//! tar through the exports: create/list/extract round trips, interop both
//! ways with GNU tar (v7, ustar, gnu, pax; long names; sparse files) and
//! Python's tarfile, compression by name, deterministic archives.

mod common;
use common::*;
use ffi_archive::tar::*;
use ffi_sdk::testing::{err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

const LONG: &str = "a-very-long-directory-name-that-goes-on-and-on-0123456789/another-long-component-abcdefghijklmnopqrstuvwxyz-0123456789/file-with-a-long-name-too-0123456789.txt";

/// A tree with files, an empty dir, a symlink, a long name, odd modes, an empty file.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("a.txt"), b"alpha\n").unwrap();
    std::fs::write(root.join("sub/b.bin"), texty(200_000, 4)).unwrap();
    std::fs::write(root.join("sub/deeper/c"), b"").unwrap();
    std::fs::write(root.join("exec.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(root.join("exec.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(root.join("ünïcode name.txt"), b"u\n").unwrap();
    std::os::unix::fs::symlink("sub/b.bin", root.join("link")).unwrap();
    let lp = root.join(LONG);
    std::fs::create_dir_all(lp.parent().unwrap()).unwrap();
    std::fs::write(&lp, b"long\n").unwrap();
}

/// Files of a tree: relative path -> (kind, content or link target, mode).
fn snapshot(root: &Path) -> Vec<(String, String, Vec<u8>, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push((rel, "symlink".into(), std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes().to_vec(), 0));
            } else if m.is_dir() {
                out.push((rel, "dir".into(), Vec::new(), m.mode() & 0o777));
                stack.push(p);
            } else {
                out.push((rel, "file".into(), std::fs::read(&p).unwrap(), m.mode() & 0o777));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn create_list_extract_roundtrip_all_compressions() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let want = snapshot(&src);
    for ext in ["tar", "tar.gz", "tgz", "tar.xz"] {
        let ar = dir.path().join(format!("out.{ext}"));
        let r = ok(rt_tar_create(text(&s(&ar)), text(&s(&src)), NIL));
        assert_eq!(r.get("entries").as_int(), Some(want.len() as i64));
        // Compression chosen by name: check magic bytes.
        let head = std::fs::read(&ar).unwrap();
        match ext {
            "tar.gz" | "tgz" => assert_eq!(&head[..2], &[0x1f, 0x8b]),
            "tar.xz" => assert_eq!(&head[..6], b"\xfd7zXZ\0"),
            _ => assert_eq!(&head[257..262], b"ustar"),
        }
        // List.
        let l = ok(rt_tar_list(text(&s(&ar)), NIL));
        assert_eq!(l.len(), want.len());
        let names: Vec<String> = l.items().map(|d| d.get("name").as_text().unwrap().trim_end_matches('/').to_string()).collect();
        for (rel, kind, content, mode) in &want {
            let i = names.iter().position(|n| n == rel).unwrap_or_else(|| panic!("{rel} not listed in {names:?}"));
            let d = l.at(i);
            assert_eq!(d.get("type").as_text(), Some(kind.as_str()), "{rel}");
            if kind == "file" {
                assert_eq!(d.get("size").as_int(), Some(content.len() as i64), "{rel}");
                assert_eq!(d.get("mode").as_int(), Some(*mode as i64), "{rel}");
                assert!(d.get("link").is_nil());
            }
            if kind == "symlink" {
                assert_eq!(d.get("link").as_text().unwrap().as_bytes(), content.as_slice());
            }
            assert!(d.get("mtime").as_int().unwrap() > 1_600_000_000);
        }
        // Extract and compare; GNU tar agrees on the listing.
        let out = dir.path().join(format!("x-{ext}"));
        let r = ok(rt_tar_extract(text(&s(&ar)), text(&s(&out)), NIL));
        assert_eq!(r.get("entries").as_int(), Some(want.len() as i64));
        assert_eq!(snapshot(&out), want, "{ext}");
        let gnu = String::from_utf8(sh(&format!("tar -tf {}", s(&ar)))).unwrap();
        assert_eq!(gnu.lines().count(), want.len());
        assert!(gnu.contains(LONG), "GNU tar reads our long name");
        // mtimes kept.
        let m0 = std::fs::metadata(src.join("a.txt")).unwrap().mtime();
        assert_eq!(std::fs::metadata(out.join("a.txt")).unwrap().mtime(), m0);
    }
}

#[test]
fn gnu_tar_formats_extract_with_us() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    std::fs::remove_file(src.join("ünïcode name.txt")).unwrap();
    for format in ["v7", "ustar", "gnu", "pax", "oldgnu", "posix"] {
        let mut t = src.clone();
        if format == "v7" || format == "ustar" {
            // v7 has a 100-byte name limit; ustar 255 with a split: use a short tree.
            t = dir.path().join(format!("short-{format}"));
            std::fs::create_dir_all(t.join("d")).unwrap();
            std::fs::write(t.join("d/f.txt"), b"short\n").unwrap();
            std::fs::write(t.join("g"), texty(5000, 1)).unwrap();
            std::os::unix::fs::symlink("g", t.join("l")).unwrap();
        }
        for comp in ["", "z", "J"] {
            let ar = dir.path().join(format!("{format}.{comp}.tar"));
            sh(&format!("tar --format={format} -c{comp}f {} -C {} .", s(&ar), s(&t)));
            let out = dir.path().join(format!("x-{format}-{comp}"));
            ok(rt_tar_extract(text(&s(&ar)), text(&s(&out)), NIL));
            assert_eq!(snapshot(&out), snapshot(&t), "format {format} comp {comp}");
            let l = ok(rt_tar_list(text(&s(&ar)), NIL));
            let gnu = String::from_utf8(sh(&format!("tar -tf {}", s(&ar)))).unwrap();
            assert_eq!(l.len(), gnu.lines().count(), "{format}");
        }
    }
}

#[test]
fn our_archives_extract_with_gnu_tar_and_python() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let want = snapshot(&src);
    for ext in ["tar", "tar.gz", "tar.xz"] {
        let ar = dir.path().join(format!("o.{ext}"));
        ok(rt_tar_create(text(&s(&ar)), text(&s(&src)), NIL));
        let gx = dir.path().join(format!("gnu-{ext}"));
        std::fs::create_dir_all(&gx).unwrap();
        sh(&format!("tar -xf {} -C {}", s(&ar), s(&gx)));
        assert_eq!(snapshot(&gx), want, "GNU tar extracting {ext}");
        let px = dir.path().join(format!("py-{ext}"));
        py("import sys, tarfile\nwith tarfile.open(sys.argv[1]) as t: t.extractall(sys.argv[2])", &[&s(&ar), &s(&px)]);
        assert_eq!(snapshot(&px), want, "Python extracting {ext}");
    }
}

#[test]
fn python_tarfile_archives_extract_with_us() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let want = snapshot(&src);
    for (fmt, mode) in [("GNU_FORMAT", "w"), ("PAX_FORMAT", "w:gz"), ("USTAR_FORMAT", "w:xz"), ("PAX_FORMAT", "w:xz")] {
        let ar = dir.path().join(format!("p-{fmt}-{}.tar", mode.replace(':', "")));
        let script = format!(
            "import sys, tarfile, os\nwith tarfile.open(sys.argv[1], '{mode}', format=tarfile.{fmt}) as t:\n    for n in sorted(os.listdir(sys.argv[2])): t.add(os.path.join(sys.argv[2], n), arcname=n)"
        );
        let r = std::process::Command::new("python3").args(["-c", &script, &s(&ar), &s(&src)]).output().unwrap();
        if !r.status.success() {
            // ustar cannot hold the long name: Python refuses; that is the oracle's limit, not ours.
            assert!(fmt == "USTAR_FORMAT", "{}", String::from_utf8_lossy(&r.stderr));
            continue;
        }
        let out = dir.path().join(format!("x-{fmt}-{}", mode.replace(':', "")));
        ok(rt_tar_extract(text(&s(&ar)), text(&s(&out)), NIL));
        assert_eq!(snapshot(&out), want, "{fmt} {mode}");
    }
}

#[test]
fn sparse_files_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let f = src.join("sparse.img");
    sh(&format!(
        "truncate -s 50M {p} && printf 'head' | dd of={p} conv=notrunc 2>/dev/null && printf 'middle' | dd of={p} bs=1 seek=20000000 conv=notrunc 2>/dev/null && printf 'tail' | dd of={p} bs=1 seek=52428796 conv=notrunc 2>/dev/null",
        p = s(&f)
    ));
    let want = std::fs::read(&f).unwrap();
    for format in ["gnu", "pax"] {
        let ar = dir.path().join(format!("{format}.tar"));
        sh(&format!("tar --format={format} -S -cf {} -C {} .", s(&ar), s(&src)));
        assert!(std::fs::metadata(&ar).unwrap().len() < 1 << 20, "tar -S made a sparse archive");
        let l = ok(rt_tar_list(text(&s(&ar)), NIL));
        let e = l.items().find(|d| d.get("name").as_text().unwrap().ends_with("sparse.img")).unwrap();
        assert_eq!(e.get("name").as_text(), Some("./sparse.img"), "{format}: real name, not the GNUSparseFile alias");
        assert_eq!(e.get("size").as_int(), Some(want.len() as i64));
        assert_eq!(e.get("type").as_text(), Some("file"));
        let out = dir.path().join(format!("x-{format}"));
        let r = ok(rt_tar_extract(text(&s(&ar)), text(&s(&out)), NIL));
        assert_eq!(r.get("bytes").as_int(), Some(want.len() as i64));
        let got = out.join("sparse.img");
        assert_eq!(std::fs::read(&got).unwrap(), want, "{format}");
        // Holes stay holes.
        let blocks = std::fs::metadata(&got).unwrap().blocks() * 512;
        assert!(blocks < 4 << 20, "{format}: extracted file uses {blocks} bytes on disk");
    }
}

#[test]
fn deterministic_archives_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let o = |n: &str| opts(&[("deterministic", Value::TRUE), ("compression", Value::text(n))]);
    for comp in ["none", "gzip", "xz"] {
        let a = dir.path().join(format!("a-{comp}"));
        let b = dir.path().join(format!("b-{comp}"));
        ok(rt_tar_create(text(&s(&a)), text(&s(&src)), o(comp)));
        // Touch everything: new mtimes must not change a deterministic archive.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        sh(&format!("find {} -exec touch -h {{}} +", s(&src)));
        ok(rt_tar_create(text(&s(&b)), text(&s(&src)), o(comp)));
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{comp}");
        let l = ok(rt_tar_list(text(&s(&a)), NIL));
        let names: Vec<String> = l.items().map(|d| d.get("name").as_text().unwrap().to_string()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(l.items().all(|d| d.get("mtime").as_int() == Some(0)));
        let v = String::from_utf8(sh(&format!("tar --numeric-owner -tvf {}", s(&a)))).unwrap();
        assert!(v.lines().all(|l| l.contains(" 0/0 ")), "{v}");
    }
    // A fixed mtime option.
    let c = dir.path().join("c.tar");
    ok(rt_tar_create(text(&s(&c)), text(&s(&src)), opts(&[("deterministic", Value::TRUE), ("mtime", Value::int(1_700_000_000))])));
    assert!(ok(rt_tar_list(text(&s(&c)), NIL)).items().all(|d| d.get("mtime").as_int() == Some(1_700_000_000)));
}

#[test]
fn create_from_a_list_of_paths_and_base() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let ar = dir.path().join("l.tar");
    let list = Value::text_array([s(&src.join("a.txt")), s(&src.join("sub"))]);
    ok(rt_tar_create(text(&s(&ar)), list.raw(), NIL));
    let names: Vec<String> = ok(rt_tar_list(text(&s(&ar)), NIL)).items().map(|d| d.get("name").as_text().unwrap().to_string()).collect();
    let stripped = s(&src).trim_start_matches('/').to_string();
    assert!(names.contains(&format!("{stripped}/a.txt")), "{names:?}");
    assert!(names.contains(&format!("{stripped}/sub/b.bin")), "{names:?}");
    // With base, names are relative to it.
    let list = Value::text_array(["a.txt", "sub/deeper"]);
    ok(rt_tar_create(text(&s(&ar)), list.raw(), opts(&[("base", Value::text(&s(&src)))])));
    let names: Vec<String> = ok(rt_tar_list(text(&s(&ar)), NIL)).items().map(|d| d.get("name").as_text().unwrap().to_string()).collect();
    assert_eq!(names, ["a.txt", "sub/deeper/", "sub/deeper/c"]);
    // A single file source is named by its file name.
    ok(rt_tar_create(text(&s(&ar)), text(&s(&src.join("exec.sh"))), NIL));
    let l = ok(rt_tar_list(text(&s(&ar)), NIL));
    assert_eq!(l.len(), 1);
    assert_eq!(l.at(0).get("name").as_text(), Some("exec.sh"));
    assert_eq!(l.at(0).get("mode").as_int(), Some(0o755));
    // An archive written inside its own source directory does not include itself.
    let inside = src.join("self.tar.gz");
    ok(rt_tar_create(text(&s(&inside)), text(&s(&src)), NIL));
    let names: Vec<String> = ok(rt_tar_list(text(&s(&inside)), NIL)).items().map(|d| d.get("name").as_text().unwrap().to_string()).collect();
    assert!(!names.iter().any(|n| n.contains("self.tar")), "{names:?}");
    ok(rt_tar_create(text(&s(&inside)), text(&s(&src)), NIL));
    let names2: Vec<String> = ok(rt_tar_list(text(&s(&inside)), NIL)).items().map(|d| d.get("name").as_text().unwrap().to_string()).collect();
    assert_eq!(names, names2);
}

#[test]
fn bad_arguments_and_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let ar = s(&dir.path().join("x.tar"));
    assert_eq!(err(rt_tar_create(NIL, text(&s(&src)), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_tar_create(text(&ar), int(3), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_tar_create(text(&ar), Value::array(0).raw(), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_tar_create(text(&ar), Value::text_array(["../x"]).raw(), NIL)).0, Code::InvalidArgument);
    let mixed = Value::array(0).push(Value::text("a")).push(Value::int(1));
    assert_eq!(err(rt_tar_create(text(&ar), mixed.raw(), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_tar_create(text(&ar), text(&s(&dir.path().join("missing"))), NIL)).0, Code::NotFound);
    assert_eq!(err(rt_tar_create(text(""), text(&s(&src)), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_tar_create(text(&ar), text(&s(&src)), opts(&[("compression", Value::text("zip"))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_tar_create(text(&ar), text(&s(&src)), opts(&[("level", Value::int(12))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_tar_create(text(&ar), text(&s(&src)), opts(&[("bogus", Value::TRUE)]))).0, Code::InvalidArgument);
    // Output directory missing: NotFound, nothing created.
    let (code, _) = err(rt_tar_create(text(&s(&dir.path().join("no/such/x.tar"))), text(&s(&src)), NIL));
    assert_eq!(code, Code::NotFound);
    // A FIFO in the tree: Unsupported, and no archive is left.
    let fifo_dir = dir.path().join("withfifo");
    std::fs::create_dir_all(&fifo_dir).unwrap();
    sh(&format!("mkfifo {}/pipe", s(&fifo_dir)));
    let fa = dir.path().join("fifo.tar");
    let (code, msg) = err(rt_tar_create(text(&s(&fa)), text(&s(&fifo_dir)), NIL));
    assert_eq!(code, Code::Unsupported, "{msg}");
    assert!(!fa.exists());
    // list / extract bad input.
    assert_eq!(err(rt_tar_list(NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_tar_list(text(&s(&dir.path().join("missing.tar"))), NIL)).0, Code::NotFound);
    assert_eq!(err(rt_tar_list(text(&s(&src)), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_tar_extract(text(&ar), NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_tar_extract(text(&ar), text(&s(&dir.path().join("t"))), opts(&[("max_size", Value::int(-1))]))).0, Code::InvalidArgument);
    // Target exists as a file.
    ok(rt_tar_create(text(&ar), text(&s(&src)), NIL));
    assert_eq!(err(rt_tar_extract(text(&ar), text(&s(&src.join("a.txt"))), NIL)).0, Code::AlreadyExists);
}

#[test]
fn corrupt_and_truncated_archives_are_parse_errors() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    for ext in ["tar", "tar.gz", "tar.xz"] {
        let ar = dir.path().join(format!("c.{ext}"));
        ok(rt_tar_create(text(&s(&ar)), text(&s(&src)), NIL));
        let data = std::fs::read(&ar).unwrap();
        for cut in [data.len() / 3, data.len() / 2, data.len() - 1100] {
            let bad = dir.path().join(format!("cut{cut}.{ext}"));
            std::fs::write(&bad, &data[..cut]).unwrap();
            let (code, msg) = err(rt_tar_list(text(&s(&bad)), NIL));
            assert_eq!(code, Code::Parse, "{ext} cut {cut}: {msg}");
            let out = dir.path().join(format!("xcut{cut}-{}", ext.replace('.', "")));
            let (code, msg) = err(rt_tar_extract(text(&s(&bad)), text(&s(&out)), NIL));
            assert_eq!(code, Code::Parse, "{ext} cut {cut}: {msg}");
        }
    }
    // A header with a broken checksum.
    let ar = dir.path().join("c.tar");
    let mut data = std::fs::read(&ar).unwrap();
    data[512 * 3 + 10] ^= 0x20;
    data[0] ^= 0x01;
    std::fs::write(&ar, &data).unwrap();
    let (code, msg) = err(rt_tar_list(text(&s(&ar)), NIL));
    assert_eq!(code, Code::Parse, "{msg}");
    // Random bytes with a gzip magic.
    let junk = dir.path().join("junk.tar.gz");
    let mut j = vec![0x1f, 0x8b];
    j.extend(texty(5000, 3));
    std::fs::write(&junk, &j).unwrap();
    assert_eq!(err(rt_tar_list(text(&s(&junk)), NIL)).0, Code::Parse);
    assert_eq!(err(rt_tar_extract(text(&s(&junk)), text(&s(&dir.path().join("xj"))), NIL)).0, Code::Parse);
}

#[test]
fn overwrite_option_and_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src);
    let ar = dir.path().join("o.tar");
    ok(rt_tar_create(text(&s(&ar)), text(&s(&src)), NIL));
    let out = dir.path().join("out");
    ok(rt_tar_extract(text(&s(&ar)), text(&s(&out)), NIL));
    std::fs::write(out.join("a.txt"), b"changed").unwrap();
    // Default: replaced.
    ok(rt_tar_extract(text(&s(&ar)), text(&s(&out)), NIL));
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha\n");
    // overwrite false: AlreadyExists naming the entry.
    let (code, msg) = err(rt_tar_extract(text(&s(&ar)), text(&s(&out)), opts(&[("overwrite", Value::FALSE)])));
    assert_eq!(code, Code::AlreadyExists, "{msg}");
    // preserve_mtime false: mtimes are now-ish.
    let out2 = dir.path().join("out2");
    ok(rt_tar_extract(text(&s(&ar)), text(&s(&out2)), opts(&[("preserve_mtime", Value::FALSE)])));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((std::fs::metadata(out2.join("a.txt")).unwrap().mtime() - now).abs() < 60);
}

#[test]
fn capability_checks_on_tar() {
    ffi_sdk::testing::in_child("capability_checks_on_tar", || {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let src = root.join("src");
        make_tree(&src);
        let out = root.join("out");
        std::fs::create_dir_all(out.join("ok")).unwrap();
        let ar = out.join("a.tar");
        ok(rt_tar_create(text(&s(&ar)), text(&s(&src)), NIL));
        // Read only src and out; write only out/ok.
        ffi_sdk::testing::restrict(&format!("fs.read={},{};fs.write={}", s(&src), s(&out), s(&out.join("ok"))));
        let (code, msg) = err(rt_tar_create(text(&s(&out.join("b.tar"))), text(&s(&src)), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        ok(rt_tar_create(text(&s(&out.join("ok/b.tar"))), text(&s(&src)), NIL));
        ok(rt_tar_list(text(&s(&ar)), NIL));
        ok(rt_tar_extract(text(&s(&ar)), text(&s(&out.join("ok/x"))), NIL));
        let (code, msg) = err(rt_tar_extract(text(&s(&ar)), text(&s(&out.join("no"))), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        assert!(!out.join("no").exists());
        // Reading an archive outside fs.read.
        let other = root.join("other.tar");
        assert_eq!(err(rt_tar_list(text(&s(&other)), NIL)).0, Code::CapabilityDenied);
        // A source outside fs.read.
        let (code, msg) = err(rt_tar_create(text(&s(&out.join("ok/c.tar"))), Value::text_array([s(&root)]).raw(), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
    });
}
