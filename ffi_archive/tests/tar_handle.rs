//! tar through handles (Simple's create/add/close, open/list/extract shape)
//! and the .tar.gz helpers, against GNU tar and gzip; bad input (Error code,
//! message naming the function); capabilities in a child run.

mod common;

use common::{sh, texty};
use ffi_archive::tar::handle::*;
use ffi_archive::tar::{rt_tar_create, rt_tar_extract, rt_tar_list};
use ffi_sdk::testing::{bytes, close, collect, err_named, in_child, int, ok, restrict, text, tmp, tp, NIL};
use ffi_sdk::{Code, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn names(list: Value) -> Vec<String> {
    list.items().map(|d| d.get("name").as_text().unwrap().to_string()).collect()
}

#[test]
fn writer_output_reads_with_gnu_tar() {
    let (_g, d) = tmp();
    let big = texty(300_000, 7);
    fs::write(d.join("src.bin"), &big).unwrap();
    fs::set_permissions(d.join("src.bin"), fs::Permissions::from_mode(0o751)).unwrap();
    for (name, flag) in [("a.tar", ""), ("a.tar.gz", "z"), ("a.tar.xz", "J")] {
        let out = d.join(name);
        let w = ok(rt_tar_create(tp(&out), NIL, NIL)).raw();
        ok(rt_tar_add_data(w, text("dir/hello.txt"), text("hello tar\n")));
        ok(rt_tar_add_data(w, text("./bin/raw"), bytes(&[0, 255, 1])));
        ok(rt_tar_add_file(w, text("big.bin"), tp(&d.join("src.bin"))));
        let long = format!("{}/deep.txt", "x".repeat(120));
        ok(rt_tar_add_data(w, text(&long), text("long name")));
        // Nothing at the output until the writer is closed (written under a temporary name).
        assert!(!out.exists());
        ok(rt_tar_close(w));
        let listing = String::from_utf8(sh(&format!("tar -t{flag}f {}", out.display()))).unwrap();
        assert_eq!(listing, format!("dir/hello.txt\nbin/raw\nbig.bin\n{long}\n"), "{name}");
        let x = d.join(format!("x-{name}"));
        fs::create_dir(&x).unwrap();
        sh(&format!("tar -x{flag}f {} -C {}", out.display(), x.display()));
        assert_eq!(fs::read(x.join("dir/hello.txt")).unwrap(), b"hello tar\n");
        assert_eq!(fs::read(x.join("bin/raw")).unwrap(), [0, 255, 1]);
        assert_eq!(fs::read(x.join("big.bin")).unwrap(), big);
        assert_eq!(fs::metadata(x.join("big.bin")).unwrap().permissions().mode() & 0o777, 0o751);
        assert_eq!(fs::read(x.join(&long)).unwrap(), b"long name");
    }
    // Option mtime for data entries; explicit compression.
    let out = d.join("m.tar");
    let w = ok(rt_tar_create(tp(&out), NIL, common::opts(&[("mtime", Value::int(1_000_000)), ("compression", Value::text("gzip"))]))).raw();
    ok(rt_tar_add_data(w, text("f"), text("x")));
    ok(rt_tar_close(w));
    let l = ok(rt_tar_list(tp(&out), NIL));
    assert_eq!(l.items().next().unwrap().get("mtime").as_int(), Some(1_000_000));
}

#[test]
fn writer_never_closed_leaves_nothing() {
    let (_g, d) = tmp();
    let out = d.join("never.tar");
    let w = ok(rt_tar_create(tp(&out), NIL, NIL)).raw();
    ok(rt_tar_add_data(w, text("f"), text("x")));
    close(w);
    collect();
    assert!(!out.exists());
    assert_eq!(fs::read_dir(&d).unwrap().count(), 0, "a temporary file was left");
}

#[test]
fn reader_lists_and_extracts_gnu_tar_archives() {
    let (_g, d) = tmp();
    let src = d.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), "alpha\n").unwrap();
    fs::write(src.join("sub/b.bin"), texty(200_000, 3)).unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    for (name, flag) in [("s.tar", ""), ("s.tgz", "z"), ("s.txz", "J")] {
        let ar = d.join(name);
        sh(&format!("tar -c{flag}f {} -C {} a.txt sub link", ar.display(), src.display()));
        let r = ok(rt_tar_open(tp(&ar), NIL)).raw();
        let l = ok(rt_tar_list(r, NIL));
        assert_eq!(names(l), ["a.txt", "sub/", "sub/b.bin", "link"], "{name}");
        // A second list reads from the start again.
        assert_eq!(ok(rt_tar_list(r, NIL)).len(), 4);
        let x = d.join(format!("x-{name}"));
        let res = ok(rt_tar_extract(r, tp(&x), NIL));
        assert_eq!(res.get("entries").as_int(), Some(4));
        sh(&format!("diff -r {} {}", src.display(), x.display()));
        // One entry to a file; `./sub/b.bin` names the same entry.
        let one = d.join(format!("one-{name}"));
        let n = ok(rt_tar_extract_file(r, text("./sub/b.bin"), tp(&one), NIL)).as_int().unwrap();
        assert_eq!(n, 200_000);
        assert_eq!(fs::read(&one).unwrap(), fs::read(src.join("sub/b.bin")).unwrap());
        // By path as well as by handle.
        let one2 = d.join(format!("one2-{name}"));
        ok(rt_tar_extract_file(tp(&ar), text("a.txt"), tp(&one2), NIL));
        assert_eq!(fs::read(&one2).unwrap(), b"alpha\n");
        ok(rt_tar_close(r));
        err_named(rt_tar_list(r, NIL), Code::Closed, "rt_tar_list");
        err_named(rt_tar_close(r), Code::Closed, "rt_tar_close");
    }
    // The last entry of a name wins, as tar does.
    let ar = d.join("dup.tar");
    let w = ok(rt_tar_create(tp(&ar), NIL, NIL)).raw();
    ok(rt_tar_add_data(w, text("f"), text("first")));
    ok(rt_tar_add_data(w, text("f"), text("second")));
    ok(rt_tar_close(w));
    ok(rt_tar_extract_file(tp(&ar), text("f"), tp(&d.join("f.out")), NIL));
    assert_eq!(fs::read(d.join("f.out")).unwrap(), b"second");
}

#[test]
fn targz_create_and_extract() {
    let (_g, d) = tmp();
    let src = d.join("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a.txt"), texty(100_000, 9)).unwrap();
    let tar = d.join("p.tar");
    sh(&format!("tar -cf {} -C {} a.txt", tar.display(), src.display()));
    let gz = d.join("p.tar.gz");
    let r = ok(rt_targz_create(tp(&tar), tp(&gz), int(9)));
    assert_eq!(r.get("read").as_int(), Some(fs::metadata(&tar).unwrap().len() as i64));
    sh(&format!("gzip -t {}", gz.display()));
    assert_eq!(sh(&format!("gzip -dc {} | cmp - {}", gz.display(), tar.display())), b"");
    ok(rt_targz_create(tp(&tar), tp(&d.join("p6.tar.gz")), NIL));
    // An empty archive (all zero blocks) is a tar archive too.
    let empty = d.join("empty.tar");
    sh(&format!("tar -cf {} -T /dev/null", empty.display()));
    ok(rt_targz_create(tp(&empty), tp(&d.join("empty.tar.gz")), int(1)));
    // Extract GNU tar's own .tar.gz.
    let gnu = d.join("gnu.tgz");
    sh(&format!("tar -czf {} -C {} a.txt", gnu.display(), src.display()));
    let x = d.join("x");
    let r = ok(rt_targz_extract(tp(&gnu), tp(&x), NIL));
    assert_eq!(r.get("entries").as_int(), Some(1));
    assert_eq!(fs::read(x.join("a.txt")).unwrap(), fs::read(src.join("a.txt")).unwrap());
    // Bad input.
    let m = err_named(rt_targz_create(tp(&gnu), tp(&d.join("o.gz")), NIL), Code::InvalidArgument, "rt_targz_create");
    assert!(m.contains("already compressed"), "{m}");
    fs::write(d.join("junk"), texty(2000, 1)).unwrap();
    err_named(rt_targz_create(tp(&d.join("junk")), tp(&d.join("o.gz")), NIL), Code::InvalidArgument, "rt_targz_create");
    err_named(rt_targz_create(tp(&tar), tp(&d.join("o.gz")), int(10)), Code::OutOfRange, "rt_targz_create");
    err_named(rt_targz_create(tp(&d.join("missing.tar")), tp(&d.join("o.gz")), NIL), Code::NotFound, "rt_targz_create");
    assert!(!d.join("o.gz").exists());
    err_named(rt_targz_extract(tp(&tar), tp(&d.join("y")), NIL), Code::Parse, "rt_targz_extract");
    err_named(rt_targz_extract(tp(&gnu), tp(&d.join("y")), common::opts(&[("compression", Value::text("xz"))])), Code::InvalidArgument, "rt_targz_extract");
}

#[test]
fn bad_input_names_the_function() {
    let (_g, d) = tmp();
    let out = d.join("b.tar");
    let w = ok(rt_tar_create(tp(&out), NIL, NIL)).raw();
    for bad in ["../evil", "/abs", "", "a/../../b"] {
        err_named(rt_tar_add_data(w, text(bad), text("x")), Code::InvalidArgument, "rt_tar_add_data");
    }
    err_named(rt_tar_add_file(w, text("d"), tp(&d)), Code::InvalidArgument, "rt_tar_add_file");
    err_named(rt_tar_add_file(w, text("m"), tp(&d.join("missing"))), Code::NotFound, "rt_tar_add_file");
    err_named(rt_tar_add_data(w, text("x"), int(3)), Code::TypeMismatch, "rt_tar_add_data");
    // A writer is not a reader, and the reverse.
    err_named(rt_tar_list(w, NIL), Code::TypeMismatch, "rt_tar_list");
    err_named(rt_tar_extract_file(w, text("x"), tp(&d.join("x")), NIL), Code::TypeMismatch, "rt_tar_extract_file");
    ok(rt_tar_add_data(w, text("dir/f"), text("x")));
    ok(rt_tar_close(w));
    err_named(rt_tar_add_data(w, text("late"), text("x")), Code::Closed, "rt_tar_add_data");
    err_named(rt_tar_close(w), Code::Closed, "rt_tar_close");
    err_named(rt_tar_create(tp(&d.join("o.tar")), NIL, common::opts(&[("follow_symlinks", Value::TRUE)])), Code::InvalidArgument, "rt_tar_create");
    let m = err_named(rt_tar_list(int(4), NIL), Code::TypeMismatch, "rt_tar_list");
    assert!(m.contains("path (text) or a TarReader handle"), "{m}");
    err_named(rt_tar_close(int(4)), Code::TypeMismatch, "rt_tar_close");
    // Not an archive: refused at open.
    fs::write(d.join("junk"), texty(5000, 2)).unwrap();
    err_named(rt_tar_open(tp(&d.join("junk")), NIL), Code::Parse, "rt_tar_open");
    err_named(rt_tar_open(tp(&d.join("missing.tar")), NIL), Code::NotFound, "rt_tar_open");
    err_named(rt_tar_open(tp(&d), NIL), Code::InvalidArgument, "rt_tar_open");
    // extract_file: no such entry, a directory, a bad name, a size limit.
    let r = ok(rt_tar_open(tp(&out), NIL)).raw();
    err_named(rt_tar_extract_file(r, text("nope"), tp(&d.join("n")), NIL), Code::NotFound, "rt_tar_extract_file");
    sh(&format!("tar -cf {} -C {} .", d.join("withdir.tar").display(), d.display()));
    let r2 = ok(rt_tar_open(tp(&d.join("withdir.tar")), NIL)).raw();
    let m = err_named(rt_tar_extract_file(r2, text("."), tp(&d.join("n")), NIL), Code::InvalidArgument, "rt_tar_extract_file");
    assert!(m.contains("not empty") || m.contains("empty"), "{m}");
    err_named(rt_tar_extract_file(r, text("../x"), tp(&d.join("n")), NIL), Code::InvalidArgument, "rt_tar_extract_file");
    err_named(
        rt_tar_extract_file(r, text("dir/f"), tp(&d.join("n")), common::opts(&[("max_size", Value::int(0))])),
        Code::LimitExceeded,
        "rt_tar_extract_file",
    );
    assert!(!d.join("n").exists());
    ok(rt_tar_close(r));
    ok(rt_tar_close(r2));
}

#[test]
fn tar_handle_capabilities() {
    in_child("tar_handle_capabilities", || {
        let (_g, d) = tmp();
        let inside = d.join("in");
        fs::create_dir(&inside).unwrap();
        fs::write(d.join("secret"), "s").unwrap();
        sh(&format!("tar -cf {} -C {} secret", d.join("out.tar").display(), d.display()));
        sh(&format!("tar -czf {} -C {} secret", d.join("out.tgz").display(), d.display()));
        sh(&format!("tar -cf {} -C {} secret", inside.join("in.tar").display(), d.display()));
        restrict(&format!("fs.read={0};fs.write={0}", inside.display()));
        err_named(rt_tar_create(tp(&d.join("o.tar")), NIL, NIL), Code::CapabilityDenied, "rt_tar_create");
        let w = ok(rt_tar_create(tp(&inside.join("o.tar")), NIL, NIL)).raw();
        err_named(rt_tar_add_file(w, text("s"), tp(&d.join("secret"))), Code::CapabilityDenied, "rt_tar_add_file");
        ok(rt_tar_add_data(w, text("x"), text("x")));
        ok(rt_tar_close(w));
        err_named(rt_tar_open(tp(&d.join("out.tar")), NIL), Code::CapabilityDenied, "rt_tar_open");
        let r = ok(rt_tar_open(tp(&inside.join("in.tar")), NIL)).raw();
        err_named(rt_tar_extract(r, tp(&d.join("x")), NIL), Code::CapabilityDenied, "rt_tar_extract");
        err_named(rt_tar_extract_file(r, text("secret"), tp(&d.join("x")), NIL), Code::CapabilityDenied, "rt_tar_extract_file");
        ok(rt_tar_extract_file(r, text("secret"), tp(&inside.join("got")), NIL));
        err_named(rt_tar_extract_file(tp(&d.join("out.tar")), text("secret"), tp(&inside.join("g2")), NIL), Code::CapabilityDenied, "rt_tar_extract_file");
        err_named(rt_targz_create(tp(&d.join("out.tar")), tp(&inside.join("o.tgz")), NIL), Code::CapabilityDenied, "rt_targz_create");
        err_named(rt_targz_create(tp(&inside.join("in.tar")), tp(&d.join("o.tgz")), NIL), Code::CapabilityDenied, "rt_targz_create");
        ok(rt_targz_create(tp(&inside.join("in.tar")), tp(&inside.join("o.tgz")), NIL));
        err_named(rt_targz_extract(tp(&d.join("out.tgz")), tp(&inside.join("y")), NIL), Code::CapabilityDenied, "rt_targz_extract");
        err_named(rt_targz_extract(tp(&inside.join("o.tgz")), tp(&d.join("y")), NIL), Code::CapabilityDenied, "rt_targz_extract");
        ok(rt_targz_extract(tp(&inside.join("o.tgz")), tp(&inside.join("y")), NIL));
        assert_eq!(fs::read(inside.join("y/secret")).unwrap(), b"s");
        ok(rt_tar_close(r));
    });
}
