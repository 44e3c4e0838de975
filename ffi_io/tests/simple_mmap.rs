//! Simple's raw mapping calls served over MappedFile handles (`rt_mmap`,
//! `rt_munmap`, `rt_msync`, `rt_madvise`) and `rt_file_mmap_write`: real
//! files, changes seen by other readers, bad input (code and a message
//! naming the function), capabilities in a child run.

use ffi_io::mmap::ops::*;
use ffi_io::mmap::*;
use ffi_sdk::testing::{bytes, err_named, in_child, int, ok, restrict, text, tmp, tp, NIL};
use ffi_sdk::{Code, Value};
use std::fs;

fn slice(h: u64, off: i64, len: i64) -> Vec<u8> {
    ok(rt_file_mmap_slice(h, int(off), int(len))).as_bytes().unwrap().to_vec()
}

#[test]
fn read_only_mapping() {
    let (_g, d) = tmp();
    let f = d.join("data");
    let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&f, &content).unwrap();
    // Whole file (size 0), Simple's readonly 1.
    let h = ok(rt_mmap(tp(&f), int(0), int(0), int(1))).raw();
    assert_eq!(ok(rt_file_mmap_len(h)).as_int(), Some(10_000));
    assert_eq!(slice(h, 0, 10_000), content);
    // Nothing to write back; advice accepted.
    ok(rt_msync(h, NIL));
    for a in 0..=4 {
        ok(rt_madvise(h, NIL, int(a)));
    }
    ok(rt_madvise(h, int(100), int(3)));
    // Still readable after MADV_DONTNEED (pages read again from the file).
    assert_eq!(slice(h, 9_990, 10), &content[9_990..]);
    let m = err_named(rt_file_mmap_write(h, int(0), text("x")), Code::PermissionDenied, "rt_file_mmap_write");
    assert!(m.contains("read-only"), "{m}");
    ok(rt_munmap(h, int(10_000)));
    err_named(rt_file_mmap_slice(h, int(0), int(1)), Code::Closed, "rt_file_mmap_slice");
    err_named(rt_munmap(h, NIL), Code::Closed, "rt_munmap");
    // A window at an offset that is not page aligned; readonly as a bool.
    let h = ok(rt_mmap(tp(&f), int(100), int(4097), Value::TRUE.raw())).raw();
    assert_eq!(ok(rt_file_mmap_len(h)).as_int(), Some(100));
    assert_eq!(slice(h, 0, 100), &content[4097..4197]);
    ok(rt_munmap(h, NIL));
}

#[test]
fn writable_mapping_changes_the_file() {
    let (_g, d) = tmp();
    let f = d.join("rw");
    fs::write(&f, vec![b'.'; 8192]).unwrap();
    let h = ok(rt_mmap(tp(&f), int(4096), int(4096), int(0))).raw();
    assert_eq!(ok(rt_file_mmap_write(h, int(10), text("hello"))).as_int(), Some(5));
    assert_eq!(ok(rt_file_mmap_write(h, int(4091), bytes(b"tail!"))).as_int(), Some(5));
    assert_eq!(slice(h, 10, 5), b"hello");
    ok(rt_msync(h, NIL));
    ok(rt_msync(h, int(100)));
    for a in 0..=4 {
        ok(rt_madvise(h, NIL, int(a)));
    }
    // A shared mapping: another reader (cat) sees the change.
    let out = std::process::Command::new("cat").arg(&f).output().unwrap().stdout;
    assert_eq!(&out[4096 + 10..4096 + 15], b"hello");
    assert_eq!(&out[8192 - 5..], b"tail!");
    assert_eq!(&out[..4096], vec![b'.'; 4096]);
    // The file never grows.
    assert_eq!(fs::metadata(&f).unwrap().len(), 8192);
    err_named(rt_file_mmap_write(h, int(4092), text("toolong")), Code::OutOfRange, "rt_file_mmap_write");
    err_named(rt_file_mmap_write(h, int(-1), text("x")), Code::InvalidArgument, "rt_file_mmap_write");
    err_named(rt_msync(h, int(5000)), Code::OutOfRange, "rt_msync");
    err_named(rt_madvise(h, NIL, int(9)), Code::InvalidArgument, "rt_madvise");
    err_named(rt_madvise(h, int(-2), int(0)), Code::OutOfRange, "rt_madvise");
    err_named(rt_munmap(h, int(100)), Code::InvalidArgument, "rt_munmap");
    ok(rt_munmap(h, int(4096)));
    err_named(rt_file_mmap_write(h, int(0), text("x")), Code::Closed, "rt_file_mmap_write");
}

#[test]
fn bad_input_names_rt_mmap() {
    let (_g, d) = tmp();
    let f = d.join("small");
    fs::write(&f, b"0123456789").unwrap();
    err_named(rt_mmap(tp(&f), int(11), int(0), int(1)), Code::OutOfRange, "rt_mmap");
    err_named(rt_mmap(tp(&f), int(5), int(6), int(0)), Code::OutOfRange, "rt_mmap");
    err_named(rt_mmap(tp(&f), int(0), int(11), int(1)), Code::OutOfRange, "rt_mmap");
    err_named(rt_mmap(tp(&f), int(-1), int(0), int(1)), Code::InvalidArgument, "rt_mmap");
    err_named(rt_mmap(tp(&f), int(0), int(-1), int(1)), Code::InvalidArgument, "rt_mmap");
    err_named(rt_mmap(tp(&f), int(0), int(0), text("yes")), Code::TypeMismatch, "rt_mmap");
    err_named(rt_mmap(tp(&d.join("missing")), int(0), int(0), int(1)), Code::NotFound, "rt_mmap");
    err_named(rt_mmap(tp(&d.join("missing")), int(0), int(0), int(0)), Code::NotFound, "rt_mmap");
    err_named(rt_mmap(tp(&d), int(0), int(0), int(1)), Code::InvalidArgument, "rt_mmap");
    err_named(rt_mmap(tp(&d), int(0), int(0), int(0)), Code::InvalidArgument, "rt_mmap");
    err_named(rt_munmap(int(12345), NIL), Code::TypeMismatch, "rt_munmap");
    // The older reader keeps working on the shared handle type.
    let h = ok(rt_file_mmap_read(tp(&f), ffi_sdk::testing::dict(&[("handle", Value::TRUE)]))).raw();
    assert_eq!(slice(h, 2, 3), b"234");
    ok(rt_munmap(h, int(10)));
}

#[test]
fn mmap_capabilities() {
    in_child("mmap_capabilities", || {
        let (_g, d) = tmp();
        let inside = d.join("in");
        fs::create_dir(&inside).unwrap();
        fs::write(inside.join("f"), b"inside").unwrap();
        fs::write(d.join("secret"), b"secret").unwrap();
        restrict(&format!("fs.read={0};fs.write=false", inside.display()));
        let h = ok(rt_mmap(tp(&inside.join("f")), int(0), int(0), int(1))).raw();
        assert_eq!(slice(h, 0, 6), b"inside");
        ok(rt_munmap(h, NIL));
        // Writable needs fs.write as well; outside the scope nothing maps.
        err_named(rt_mmap(tp(&inside.join("f")), int(0), int(0), int(0)), Code::CapabilityDenied, "rt_mmap");
        err_named(rt_mmap(tp(&d.join("secret")), int(0), int(0), int(1)), Code::CapabilityDenied, "rt_mmap");
    });
}
