//! Locks against other processes (flock(1), Python's fcntl.flock) and
//! memory-mapped reads.

mod common;
use common::*;
use ffi_io::file::{rt_file_read_text, rt_file_write_text};
use ffi_io::lock::*;
use ffi_io::mmap::*;
use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `flock -n` in a child process: true when it got the lock.
fn other_process_can_lock(path: &std::path::Path, shared: bool) -> bool {
    let st = Command::new("flock")
        .args([if shared { "-s" } else { "-x" }, "-n"])
        .arg(path)
        .arg("true")
        .status()
        .expect("flock(1)");
    st.success()
}

/// A Python child holding a lock on `path` until its stdin closes; returns once it holds it.
fn python_holder(path: &std::path::Path, shared: bool) -> Child {
    let op = if shared { "LOCK_SH" } else { "LOCK_EX" };
    let mut c = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import fcntl,sys\nf=open(sys.argv[1],'a')\nfcntl.flock(f,fcntl.{op})\nprint('held',flush=True)\nsys.stdin.read()"
        ))
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(c.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "held");
    c
}

fn release(mut c: Child) {
    drop(c.stdin.take());
    c.wait().unwrap();
}

#[test]
fn exclusive_lock_excludes_other_processes() {
    let (_g, d) = tmp();
    let f = d.join("lockfile");
    let h = ok(rt_file_lock(tp(&f), NIL));
    assert!(f.exists(), "a missing lock file is created");
    assert!(!other_process_can_lock(&f, false), "flock -x got an exclusive lock we hold");
    assert!(!other_process_can_lock(&f, true), "flock -s got a shared lock while we hold exclusive");
    ok(rt_file_unlock(h.raw()));
    assert!(other_process_can_lock(&f, false), "still locked after unlock");
    // Unlocking twice: the handle is closed.
    expect_err(rt_file_unlock(h.raw()), Code::Closed, "rt_file_unlock");
}

#[test]
fn shared_locks_coexist_but_exclude_writers() {
    let (_g, d) = tmp();
    let f = d.join("shared");
    fs::write(&f, "").unwrap();
    let h = ok(rt_file_lock(tp(&f), dict(&[("shared", Value::TRUE)])));
    assert!(other_process_can_lock(&f, true), "a second shared lock must be granted");
    assert!(!other_process_can_lock(&f, false), "an exclusive lock must wait for our shared one");
    // In-process too: a second shared handle is fine, an exclusive try is Busy.
    let h2 = ok(rt_file_try_lock(tp(&f), dict(&[("shared", Value::TRUE)])));
    expect_err(rt_file_try_lock(tp(&f), NIL), Code::Busy, "rt_file_try_lock");
    ok(rt_handle_close(h.raw()));
    ok(rt_file_unlock(h2.raw()));
    assert!(other_process_can_lock(&f, false));
}

#[test]
fn try_lock_and_timeout_against_a_python_holder() {
    let (_g, d) = tmp();
    let f = d.join("held");
    let child = python_holder(&f, false);
    let m = expect_err(rt_file_try_lock(tp(&f), NIL), Code::Busy, "rt_file_try_lock");
    assert!(m.contains(f.to_str().unwrap()), "{m}");
    expect_err(rt_file_try_lock(tp(&f), dict(&[("shared", Value::TRUE)])), Code::Busy, "rt_file_try_lock");
    let t = Instant::now();
    expect_err(rt_file_lock(tp(&f), dict(&[("timeout_ms", Value::int(300))])), Code::Timeout, "rt_file_lock");
    assert!(t.elapsed() >= Duration::from_millis(300));
    // Locks are advisory: reading and writing a locked file still work.
    ok(rt_file_write_text(tp(&f), text("written while locked")));
    assert_eq!(ok(rt_file_read_text(tp(&f))).as_text(), Some("written while locked"));
    release(child);
    let h = ok(rt_file_try_lock(tp(&f), NIL));
    ok(rt_file_unlock(h.raw()));
}

#[test]
fn blocking_lock_waits_for_the_holder() {
    let (_g, d) = tmp();
    let f = d.join("wait");
    let child = python_holder(&f, false);
    let t = Instant::now();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        release(child);
    });
    let h = ok(rt_file_lock(tp(&f), NIL));
    assert!(t.elapsed() >= Duration::from_millis(350), "the lock was granted while the child held it");
    releaser.join().unwrap();
    // With a timeout that is long enough it succeeds too.
    ok(rt_file_unlock(h.raw()));
    let h = ok(rt_file_lock(tp(&f), dict(&[("timeout_ms", Value::int(1000)), ("shared", Value::TRUE)])));
    ok(rt_handle_close(h.raw()));
    ok(rt_handle_close(h.raw()));
}

#[test]
fn lock_survives_the_file_being_removed() {
    let (_g, d) = tmp();
    let f = d.join("gone");
    let h = ok(rt_file_lock(tp(&f), NIL));
    fs::remove_file(&f).unwrap();
    ok(rt_file_unlock(h.raw()));
    // A directory can be locked.
    let h = ok(rt_file_try_lock(tp(&d), NIL));
    assert!(!other_process_can_lock(&d, false));
    ok(rt_file_unlock(h.raw()));
}

#[test]
fn lock_bad_input() {
    let (_g, d) = tmp();
    expect_err(rt_file_lock(tp(&d.join("no/dir/x")), NIL), Code::NotFound, "rt_file_lock");
    expect_err(rt_file_try_lock(tp(&d.join("x")), dict(&[("create", Value::FALSE)])), Code::NotFound, "rt_file_try_lock");
    assert!(!d.join("x").exists());
    expect_err(rt_file_lock(text(""), NIL), Code::InvalidArgument, "rt_file_lock");
    expect_err(rt_file_lock(text("a\0"), NIL), Code::InvalidArgument, "rt_file_lock");
    expect_err(rt_file_lock(int(1), NIL), Code::TypeMismatch, "rt_file_lock");
    expect_err(rt_file_lock(tp(&d.join("x")), int(1)), Code::TypeMismatch, "rt_file_lock");
    expect_err(rt_file_lock(tp(&d.join("x")), dict(&[("exclusive", Value::TRUE)])), Code::InvalidArgument, "rt_file_lock");
    expect_err(rt_file_lock(tp(&d.join("x")), dict(&[("timeout_ms", Value::int(-1))])), Code::InvalidArgument, "rt_file_lock");
    expect_err(rt_file_try_lock(tp(&d.join("x")), dict(&[("timeout_ms", Value::int(5))])), Code::InvalidArgument, "rt_file_try_lock");
    expect_err(rt_file_lock(tp(&d.join("n".repeat(300))), NIL), Code::InvalidArgument, "rt_file_lock");
    expect_err(rt_file_unlock(NIL), Code::TypeMismatch, "rt_file_unlock");
    expect_err(rt_file_unlock(text("lock")), Code::TypeMismatch, "rt_file_unlock");
    // A handle of another type.
    fs::write(d.join("m"), "abc").unwrap();
    let map = ok(rt_file_mmap_read(tp(&d.join("m")), dict(&[("handle", Value::TRUE)])));
    expect_err(rt_file_unlock(map.raw()), Code::TypeMismatch, "rt_file_unlock");
}

#[test]
fn mmap_bytes_and_windows() {
    let (_g, d) = tmp();
    let f = d.join("data");
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    fs::write(&f, &data).unwrap();
    assert_eq!(ok(rt_file_mmap_read(tp(&f), NIL)).as_bytes().unwrap(), &data[..]);
    let w = ok(rt_file_mmap_read(tp(&f), dict(&[("offset", Value::int(4097)), ("length", Value::int(1000))])));
    assert_eq!(w.as_bytes().unwrap(), &data[4097..5097]);
    let tail = ok(rt_file_mmap_read(tp(&f), dict(&[("offset", Value::int(49_990))])));
    assert_eq!(tail.as_bytes().unwrap(), &data[49_990..]);
    let end = ok(rt_file_mmap_read(tp(&f), dict(&[("offset", Value::int(50_000))])));
    assert_eq!(end.as_bytes().unwrap().len(), 0);
    fs::write(d.join("empty"), "").unwrap();
    assert_eq!(ok(rt_file_mmap_read(tp(&d.join("empty")), NIL)).as_bytes().unwrap().len(), 0);
}

#[test]
fn mmap_handle_slices_and_closes() {
    let (_g, d) = tmp();
    let f = d.join("data");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 13 % 256) as u8).collect();
    fs::write(&f, &data).unwrap();
    let h = ok(rt_file_mmap_read(tp(&f), dict(&[("handle", Value::TRUE)])));
    assert_eq!(ok(rt_file_mmap_len(h.raw())).as_int(), Some(20_000));
    assert_eq!(ok(rt_file_mmap_slice(h.raw(), int(100), int(50))).as_bytes().unwrap(), &data[100..150]);
    // The file removed between calls: the mapping still reads.
    fs::remove_file(&f).unwrap();
    assert_eq!(ok(rt_file_mmap_slice(h.raw(), int(19_990), int(10))).as_bytes().unwrap(), &data[19_990..]);
    expect_err(rt_file_mmap_slice(h.raw(), int(19_990), int(11)), Code::OutOfRange, "rt_file_mmap_slice");
    expect_err(rt_file_mmap_slice(h.raw(), int(-1), int(1)), Code::InvalidArgument, "rt_file_mmap_slice");
    expect_err(rt_file_mmap_slice(h.raw(), int(i64::MAX), int(i64::MAX)), Code::OutOfRange, "rt_file_mmap_slice");
    ok(rt_handle_close(h.raw()));
    expect_err(rt_file_mmap_len(h.raw()), Code::Closed, "rt_file_mmap_len");
    expect_err(rt_file_mmap_slice(h.raw(), int(0), int(1)), Code::Closed, "rt_file_mmap_slice");
    // The mapping is gone from the process once closed.
    let maps = fs::read_to_string("/proc/self/maps").unwrap();
    assert!(!maps.contains(f.to_str().unwrap()), "still mapped after close");
}

#[test]
fn mmap_bad_input() {
    let (_g, d) = tmp();
    let f = d.join("f");
    fs::write(&f, "0123456789").unwrap();
    expect_err(rt_file_mmap_read(tp(&d.join("missing")), NIL), Code::NotFound, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(tp(&d), NIL), Code::InvalidArgument, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(text("/dev/null"), NIL), Code::InvalidArgument, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(tp(&f), dict(&[("offset", Value::int(11))])), Code::OutOfRange, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(tp(&f), dict(&[("offset", Value::int(5)), ("length", Value::int(6))])), Code::OutOfRange, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(tp(&f), dict(&[("length", Value::int(-1))])), Code::InvalidArgument, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(tp(&f), dict(&[("handle", Value::int(1))])), Code::InvalidArgument, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(tp(&f), dict(&[("size", Value::int(1))])), Code::InvalidArgument, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(text(""), NIL), Code::InvalidArgument, "rt_file_mmap_read");
    expect_err(rt_file_mmap_read(NIL, NIL), Code::TypeMismatch, "rt_file_mmap_read");
    expect_err(rt_file_mmap_len(NIL), Code::TypeMismatch, "rt_file_mmap_len");
    let lock = ok(rt_file_try_lock(tp(&f), NIL));
    expect_err(rt_file_mmap_len(lock.raw()), Code::TypeMismatch, "rt_file_mmap_len");
    expect_err(rt_file_mmap_slice(lock.raw(), int(0), int(1)), Code::TypeMismatch, "rt_file_mmap_slice");
}
