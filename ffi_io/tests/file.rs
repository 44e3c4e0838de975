//! Files: every rt_file_* function against the real file system, with
//! sha256sum, cmp and stat as oracles.

mod common;
use common::*;
use ffi_io::file::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn exists_is_true_only_for_files() {
    let (_g, d) = tmp();
    let f = d.join("a.txt");
    assert_eq!(ok(rt_file_exists(tp(&f))).as_bool(), Some(false));
    fs::write(&f, "x").unwrap();
    assert_eq!(ok(rt_file_exists(tp(&f))).as_bool(), Some(true));
    // A directory is not a file; a path through a file is simply not there.
    assert_eq!(ok(rt_file_exists(tp(&d))).as_bool(), Some(false));
    assert_eq!(ok(rt_file_exists(tp(&f.join("below")))).as_bool(), Some(false));
    // Removed between calls.
    fs::remove_file(&f).unwrap();
    assert_eq!(ok(rt_file_exists(tp(&f))).as_bool(), Some(false));
}

#[test]
fn exists_bad_input() {
    expect_err(rt_file_exists(text("")), Code::InvalidArgument, "rt_file_exists");
    expect_err(rt_file_exists(text("a\0b")), Code::InvalidArgument, "rt_file_exists");
    expect_err(rt_file_exists(int(3)), Code::TypeMismatch, "rt_file_exists");
    expect_err(rt_file_exists(NIL), Code::TypeMismatch, "rt_file_exists");
}

#[test]
fn read_and_write_text_round_trip() {
    let (_g, d) = tmp();
    let f = d.join("t.txt");
    let s = "héllo\nwörld\0inner NUL 🦀\n";
    ok(rt_file_write_text(tp(&f), text(s)));
    assert_eq!(fs::read(&f).unwrap(), s.as_bytes());
    assert_eq!(ok(rt_file_read_text(tp(&f))).as_text().unwrap(), s);
    // Replaces, does not append.
    ok(rt_file_write_text(tp(&f), text("short")));
    assert_eq!(fs::read_to_string(&f).unwrap(), "short");
    // Empty file.
    ok(rt_file_write_text(tp(&f), text("")));
    assert_eq!(ok(rt_file_read_text(tp(&f))).as_text().unwrap(), "");
}

#[test]
fn read_text_rejects_non_utf8_and_bytes_reads_it() {
    let (_g, d) = tmp();
    let f = d.join("bin");
    let data = [b'o', b'k', 0xff, 0xfe, 0, 1, 2];
    fs::write(&f, data).unwrap();
    let m = expect_err(rt_file_read_text(tp(&f)), Code::Parse, "rt_file_read_text");
    assert!(m.contains("offset 2") && m.contains("rt_file_read_bytes"), "{m}");
    assert_eq!(ok(rt_file_read_bytes(tp(&f))).as_bytes().unwrap(), &data);
}

#[test]
fn write_and_read_bytes_are_binary_safe() {
    let (_g, d) = tmp();
    let f = d.join("all.bin");
    let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    ok(rt_file_write_bytes(tp(&f), bytes(&data)));
    assert_eq!(fs::read(&f).unwrap(), data);
    assert_eq!(ok(rt_file_read_bytes(tp(&f))).as_bytes().unwrap(), &data[..]);
    // Text is accepted as its UTF-8 bytes.
    ok(rt_file_write_bytes(tp(&f), text("abc")));
    assert_eq!(fs::read(&f).unwrap(), b"abc");
    // /proc files report size 0 but have content.
    let v = ok(rt_file_read_bytes(text("/proc/self/status")));
    assert!(v.as_bytes().unwrap().starts_with(b"Name:"));
}

#[test]
fn read_bad_input() {
    let (_g, d) = tmp();
    for (r, f) in [
        (rt_file_read_text(tp(&d.join("missing"))), "rt_file_read_text"),
        (rt_file_read_bytes(tp(&d.join("missing"))), "rt_file_read_bytes"),
        (rt_file_read_text(tp(&d.join("no/parent/x"))), "rt_file_read_text"),
    ] {
        let m = expect_err(r, Code::NotFound, f);
        assert!(m.contains(d.to_str().unwrap()), "message names the path: {m}");
    }
    // A directory where a file is expected, and a file used as a directory.
    expect_err(rt_file_read_text(tp(&d)), Code::InvalidArgument, "rt_file_read_text");
    expect_err(rt_file_read_bytes(tp(&d)), Code::InvalidArgument, "rt_file_read_bytes");
    fs::write(d.join("f"), "x").unwrap();
    expect_err(rt_file_read_bytes(tp(&d.join("f/inner"))), Code::InvalidArgument, "rt_file_read_bytes");
    // Empty path, NUL, wrong kinds, a name longer than NAME_MAX.
    expect_err(rt_file_read_text(text("")), Code::InvalidArgument, "rt_file_read_text");
    expect_err(rt_file_read_bytes(text("/etc/\0passwd")), Code::InvalidArgument, "rt_file_read_bytes");
    expect_err(rt_file_read_text(bytes(b"/etc/passwd")), Code::TypeMismatch, "rt_file_read_text");
    expect_err(rt_file_read_bytes(NIL), Code::TypeMismatch, "rt_file_read_bytes");
    let long = d.join("n".repeat(300));
    expect_err(rt_file_read_text(tp(&long)), Code::InvalidArgument, "rt_file_read_text");
    // Removed between calls.
    let f = d.join("gone");
    ok(rt_file_write_text(tp(&f), text("x")));
    fs::remove_file(&f).unwrap();
    expect_err(rt_file_read_text(tp(&f)), Code::NotFound, "rt_file_read_text");
}

#[test]
fn write_bad_input_leaves_nothing() {
    let (_g, d) = tmp();
    expect_err(rt_file_write_text(tp(&d.join("no/parent/x")), text("x")), Code::NotFound, "rt_file_write_text");
    assert!(!d.join("no").exists());
    expect_err(rt_file_write_text(tp(&d), text("x")), Code::InvalidArgument, "rt_file_write_text");
    expect_err(rt_file_write_bytes(tp(&d), bytes(b"x")), Code::InvalidArgument, "rt_file_write_bytes");
    expect_err(rt_file_write_text(text(""), text("x")), Code::InvalidArgument, "rt_file_write_text");
    expect_err(rt_file_write_text(text("a\0"), text("x")), Code::InvalidArgument, "rt_file_write_text");
    expect_err(rt_file_write_text(tp(&d.join("x")), int(5)), Code::TypeMismatch, "rt_file_write_text");
    expect_err(rt_file_write_text(tp(&d.join("x")), bytes(b"raw")), Code::TypeMismatch, "rt_file_write_text");
    expect_err(rt_file_write_bytes(tp(&d.join("x")), NIL), Code::TypeMismatch, "rt_file_write_bytes");
    expect_err(rt_file_write_text(tp(&d.join("n".repeat(300))), text("x")), Code::InvalidArgument, "rt_file_write_text");
    assert_eq!(fs::read_dir(&d).unwrap().count(), 0, "nothing was created");
    // Read-only and full places: /proc refuses, /sys refuses, /dev/full is full.
    expect_err(rt_file_write_text(text("/proc/rt_io_test_new"), text("x")), Code::NotFound, "rt_file_write_text");
    assert_eq!(code(rt_file_write_text(text("/proc/version"), text("x"))), Code::Io);
    expect_err(rt_file_write_text(text("/sys/kernel/rt_io_test"), text("x")), Code::PermissionDenied, "rt_file_write_text");
    let (c, m) = err(rt_file_write_bytes(text("/dev/full"), bytes(&[0u8; 4096])));
    assert_eq!(c, Code::Io, "{m}");
    assert!(m.contains("No space left"), "{m}");
}

#[test]
fn append_text_appends_and_creates() {
    let (_g, d) = tmp();
    let f = d.join("log");
    ok(rt_file_append_text(tp(&f), text("a\n")));
    ok(rt_file_append_text(tp(&f), text("b\n")));
    assert_eq!(fs::read_to_string(&f).unwrap(), "a\nb\n");
    // Concurrent appenders from threads never overwrite each other.
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    ok(rt_file_append_text(tp(&f), text(&format!("t{t}-{i}\n"))));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(fs::read_to_string(&f).unwrap().lines().count(), 802);
}

#[test]
fn append_bad_input() {
    let (_g, d) = tmp();
    expect_err(rt_file_append_text(tp(&d.join("none/x")), text("a")), Code::NotFound, "rt_file_append_text");
    expect_err(rt_file_append_text(tp(&d), text("a")), Code::InvalidArgument, "rt_file_append_text");
    expect_err(rt_file_append_text(text(""), text("a")), Code::InvalidArgument, "rt_file_append_text");
    expect_err(rt_file_append_text(tp(&d.join("x")), NIL), Code::TypeMismatch, "rt_file_append_text");
    expect_err(rt_file_append_text(text("/proc/version"), text("a")), Code::Io, "rt_file_append_text");
}

#[test]
fn copy_copies_content_and_mode() {
    let (_g, d) = tmp();
    let (a, b) = (d.join("a"), d.join("b"));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    fs::write(&a, &data).unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(ok(rt_file_copy(tp(&a), tp(&b))).as_int(), Some(100_000));
    let (rc, _) = sh(&format!("cmp {} {}", a.display(), b.display()));
    assert_eq!(rc, 0, "cmp says the copy differs");
    assert_eq!(fs::metadata(&b).unwrap().permissions().mode() & 0o777, 0o640);
}

#[test]
fn copy_bad_input() {
    let (_g, d) = tmp();
    let a = d.join("a");
    fs::write(&a, "precious").unwrap();
    // Onto itself (directly or through a link): refused, content kept.
    expect_err(rt_file_copy(tp(&a), tp(&a)), Code::InvalidArgument, "rt_file_copy");
    std::os::unix::fs::symlink(&a, d.join("link")).unwrap();
    expect_err(rt_file_copy(tp(&d.join("link")), tp(&a)), Code::InvalidArgument, "rt_file_copy");
    assert_eq!(fs::read_to_string(&a).unwrap(), "precious");
    expect_err(rt_file_copy(tp(&d.join("missing")), tp(&d.join("b"))), Code::NotFound, "rt_file_copy");
    expect_err(rt_file_copy(tp(&a), tp(&d.join("no/dir/b"))), Code::NotFound, "rt_file_copy");
    expect_err(rt_file_copy(tp(&d), tp(&d.join("b"))), Code::InvalidArgument, "rt_file_copy");
    fs::create_dir(d.join("sub")).unwrap();
    expect_err(rt_file_copy(tp(&a), tp(&d.join("sub"))), Code::InvalidArgument, "rt_file_copy");
    expect_err(rt_file_copy(tp(&a), text("")), Code::InvalidArgument, "rt_file_copy");
    expect_err(rt_file_copy(int(1), tp(&a)), Code::TypeMismatch, "rt_file_copy");
    expect_err(rt_file_copy(tp(&a), text("/proc/rt_io_copy")), Code::NotFound, "rt_file_copy");
    assert!(!d.join("b").exists());
}

#[test]
fn delete_removes_files_and_links_only() {
    let (_g, d) = tmp();
    let f = d.join("f");
    fs::write(&f, "x").unwrap();
    std::os::unix::fs::symlink(&f, d.join("l")).unwrap();
    ok(rt_file_delete(tp(&d.join("l"))));
    assert!(f.exists(), "deleting a link keeps its target");
    ok(rt_file_delete(tp(&f)));
    assert!(!f.exists());
    expect_err(rt_file_delete(tp(&f)), Code::NotFound, "rt_file_delete");
    let m = expect_err(rt_file_delete(tp(&d)), Code::InvalidArgument, "rt_file_delete");
    assert!(m.contains("rt_dir_remove"), "{m}");
    assert!(d.exists());
    expect_err(rt_file_delete(text("")), Code::InvalidArgument, "rt_file_delete");
    expect_err(rt_file_delete(NIL), Code::TypeMismatch, "rt_file_delete");
    expect_err(rt_file_delete(text("/proc/version")), Code::PermissionDenied, "rt_file_delete");
}

#[test]
fn atomic_write_replaces_and_keeps_mode() {
    let (_g, d) = tmp();
    let f = d.join("config");
    ok(rt_file_atomic_write(tp(&f), text("v1")));
    assert_eq!(fs::read_to_string(&f).unwrap(), "v1");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o604)).unwrap();
    let ino_before = {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&f).unwrap().ino()
    };
    ok(rt_file_atomic_write(tp(&f), bytes(&[1, 2, 3, 0, 255])));
    assert_eq!(fs::read(&f).unwrap(), [1, 2, 3, 0, 255]);
    let m = fs::metadata(&f).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o604, "mode of the replaced file kept");
    use std::os::unix::fs::MetadataExt;
    assert_ne!(m.ino(), ino_before, "replaced by rename, not rewritten in place");
    // Through a symlink: the target is replaced and the link kept.
    std::os::unix::fs::symlink(&f, d.join("link")).unwrap();
    ok(rt_file_atomic_write(tp(&d.join("link")), text("v3")));
    assert!(fs::symlink_metadata(d.join("link")).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_to_string(&f).unwrap(), "v3");
    assert!(leftovers(&d).is_empty());
}

#[test]
fn atomic_write_readers_never_see_a_mix() {
    let (_g, d) = tmp();
    let f = d.join("state");
    let a = vec![b'a'; 200_000];
    let b = vec![b'b'; 300_000];
    ok(rt_file_atomic_write(tp(&f), bytes(&a)));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (f, stop) = (f.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = fs::read(&f).unwrap();
                assert!(got.len() == 200_000 && got.iter().all(|&c| c == b'a') || got.len() == 300_000 && got.iter().all(|&c| c == b'b'), "torn read of {} bytes", got.len());
                reads += 1;
            }
            reads
        })
    };
    for i in 0..30 {
        ok(rt_file_atomic_write(tp(&f), bytes(if i % 2 == 0 { &b } else { &a })));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    assert!(leftovers(&d).is_empty());
}

#[test]
fn atomic_write_bad_input_leaves_no_temp() {
    let (_g, d) = tmp();
    expect_err(rt_file_atomic_write(tp(&d.join("no/dir/x")), text("x")), Code::NotFound, "rt_file_atomic_write");
    expect_err(rt_file_atomic_write(tp(&d), text("x")), Code::InvalidArgument, "rt_file_atomic_write");
    expect_err(rt_file_atomic_write(text(""), text("x")), Code::InvalidArgument, "rt_file_atomic_write");
    expect_err(rt_file_atomic_write(text("x\0y"), text("x")), Code::InvalidArgument, "rt_file_atomic_write");
    expect_err(rt_file_atomic_write(tp(&d.join("x")), int(1)), Code::TypeMismatch, "rt_file_atomic_write");
    expect_err(rt_file_atomic_write(tp(&d.join("n".repeat(300))), text("x")), Code::InvalidArgument, "rt_file_atomic_write");
    expect_err(rt_file_atomic_write(text("/proc/rt_io_atomic"), text("x")), Code::NotFound, "rt_file_atomic_write");
    assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
}

/// A write that fails half way (RLIMIT_FSIZE → EFBIG) leaves the old content
/// of an atomically replaced file, no temp file, and no partial new file.
#[test]
fn failing_writes_leave_no_partial_file() {
    ffi_sdk::testing::in_child("failing_writes_leave_no_partial_file", || {
        let (_g, d) = tmp();
        let f = d.join("keep");
        fs::write(&f, "old content").unwrap();
        let src = d.join("src");
        fs::write(&src, vec![1u8; 100_000]).unwrap();
        let big = vec![7u8; 100_000];
        let (n, dst) = (d.join("new"), d.join("dst"));
        // Limit file size only around the three calls: the test's own stdout
        // may be a file longer than the limit.
        // SAFETY: setrlimit only reads the `rlimit` on this stack; the limit applies to this
        // child test process alone (`in_child`).
        let set_limit = |cur: libc::rlim_t| unsafe {
            let lim = libc::rlimit { rlim_cur: cur, rlim_max: libc::RLIM_INFINITY };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        };
        // SAFETY: sets SIGXFSZ to ignore (no handler code runs) in this single-test child
        // process, so an over-limit write fails with EFBIG instead of killing it.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        set_limit(4096);
        let atomic = err(rt_file_atomic_write(tp(&f), bytes(&big)));
        let write = err(rt_file_write_bytes(tp(&n), bytes(&big)));
        let copy = err(rt_file_copy(tp(&src), tp(&dst)));
        set_limit(libc::RLIM_INFINITY);
        assert_eq!(atomic.0, Code::Io, "{}", atomic.1);
        assert!(atomic.1.contains("too large"), "{}", atomic.1);
        assert_eq!(fs::read_to_string(&f).unwrap(), "old content");
        assert!(leftovers(&d).is_empty(), "temp left: {:?}", leftovers(&d));
        assert_eq!(write.0, Code::Io, "{}", write.1);
        assert!(!n.exists(), "a partial new file was left");
        assert_eq!(copy.0, Code::Io, "{}", copy.1);
        assert!(!dst.exists(), "a partial copy was left");
    });
}

#[test]
fn size_and_modified_time_match_stat() {
    let (_g, d) = tmp();
    let f = d.join("s");
    fs::write(&f, vec![0u8; 12345]).unwrap();
    assert_eq!(ok(rt_file_size(tp(&f))).as_int(), Some(12345));
    let (_, out) = sh(&format!("stat -c %Y {}", f.display()));
    let secs: i64 = out.trim().parse().unwrap();
    let us = ok(rt_file_modified_time(tp(&f))).as_int().unwrap();
    assert_eq!(us / 1_000_000, secs);
    // A fixed old time, set with touch.
    sh(&format!("touch -d '2001-02-03 04:05:06.25 UTC' {}", f.display()));
    assert_eq!(ok(rt_file_modified_time(tp(&f))).as_int(), Some(981_173_106_250_000));
}

#[test]
fn size_and_modified_time_bad_input() {
    let (_g, d) = tmp();
    expect_err(rt_file_size(tp(&d.join("x"))), Code::NotFound, "rt_file_size");
    expect_err(rt_file_size(tp(&d)), Code::InvalidArgument, "rt_file_size");
    expect_err(rt_file_size(text("")), Code::InvalidArgument, "rt_file_size");
    expect_err(rt_file_size(int(0)), Code::TypeMismatch, "rt_file_size");
    expect_err(rt_file_modified_time(tp(&d.join("x"))), Code::NotFound, "rt_file_modified_time");
    expect_err(rt_file_modified_time(text("\0")), Code::InvalidArgument, "rt_file_modified_time");
    expect_err(rt_file_modified_time(NIL), Code::TypeMismatch, "rt_file_modified_time");
}

#[test]
fn hash_matches_sha256sum() {
    let (_g, d) = tmp();
    for (name, len) in [("empty", 0usize), ("one", 1), ("buf", HASH_BUF), ("odd", HASH_BUF * 3 + 17)] {
        let f = d.join(name);
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        fs::write(&f, &data).unwrap();
        let (_, out) = sh(&format!("sha256sum {}", f.display()));
        let want = out.split_whitespace().next().unwrap().to_string();
        assert_eq!(ok(rt_file_hash_sha256(tp(&f))).as_text().unwrap(), want, "{name}");
    }
    // Known vector.
    let f = d.join("abc");
    fs::write(&f, "abc").unwrap();
    assert_eq!(
        ok(rt_file_hash_sha256(tp(&f))).as_text().unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn hash_bad_input() {
    let (_g, d) = tmp();
    expect_err(rt_file_hash_sha256(tp(&d.join("x"))), Code::NotFound, "rt_file_hash_sha256");
    expect_err(rt_file_hash_sha256(tp(&d)), Code::InvalidArgument, "rt_file_hash_sha256");
    expect_err(rt_file_hash_sha256(text("")), Code::InvalidArgument, "rt_file_hash_sha256");
    expect_err(rt_file_hash_sha256(bytes(b"x")), Code::TypeMismatch, "rt_file_hash_sha256");
}

/// Reads straight into new values while another thread grows the file and a
/// third forces collections: every read is a consistent prefix, nothing is lost.
#[test]
fn reads_stay_whole_under_growth_and_collections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let (_g, d) = tmp();
    let f = d.join("grow");
    fs::write(&f, vec![b'x'; 10_000]).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                ffi_sdk::testing::collect();
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        })
    };
    let writer = {
        let (f, stop) = (f.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut h = fs::OpenOptions::new().append(true).open(&f).unwrap();
            // Bounded: at most 10,000 appends (3.3 MB).
            for _ in 0..10_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                h.write_all(&[b'x'; 333]).unwrap();
                std::thread::yield_now();
            }
        })
    };
    let mut last = 0;
    for i in 0..150 {
        let v = if i % 2 == 0 { ok(rt_file_read_bytes(tp(&f))) } else { ok(rt_file_read_text(tp(&f))) };
        let b = v.as_text_or_bytes().unwrap();
        assert!(b.len() >= last && b.iter().all(|&c| c == b'x'), "read {} bytes after {last}", b.len());
        last = b.len();
    }
    stop.store(true, Ordering::Relaxed);
    collector.join().unwrap();
    writer.join().unwrap();
    assert_eq!(ok(rt_file_read_bytes(tp(&f))).as_bytes().unwrap().len() as u64, fs::metadata(&f).unwrap().len());
}
