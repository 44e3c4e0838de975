//! The functions serving Simple's io/fs/env externs (`fileops.rs`,
//! `dirops.rs`, `fd.rs`, additions to `path.rs` / `env.rs`): real files,
//! with the OS (stat, realpath via Python) as oracle; bad input; capabilities
//! in a child process.

mod common;
use common::*;
use ffi_io::dirops::*;
use ffi_io::env::*;
use ffi_io::fd::*;
use ffi_io::fileops::*;
use ffi_io::path::*;
use ffi_sdk::testing::{in_child, restrict};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

#[test]
fn aliases_behave_like_ours_and_name_themselves() {
    let (_g, d) = tmp();
    let f = d.join("a.txt");
    ok(rt_write_file(tp(&f), text("one\ntwo\r\nthree\n")));
    assert_eq!(ok(rt_file_read_text_rv(tp(&f))).as_text(), Some("one\ntwo\r\nthree\n"));
    assert_eq!(ok(rt_fs_read_text(tp(&f))).as_text(), Some("one\ntwo\r\nthree\n"));
    assert_eq!(texts(ok(rt_file_read_lines(tp(&f)))), ["one", "two", "three"]);
    assert_eq!(ok(rt_file_exists_str(tp(&f))).as_bool(), Some(true));
    assert_eq!(ok(rt_io_file_exists(tp(&d))).as_bool(), Some(false));
    let sha = std::process::Command::new("sha256sum").arg(&f).output().unwrap();
    assert_eq!(ok(rt_file_hash(tp(&f))).as_text().unwrap(), &String::from_utf8_lossy(&sha.stdout)[..64]);
    let m = fs::metadata(&f).unwrap();
    assert_eq!(ok(rt_file_modified(tp(&f))).as_int(), Some(m.mtime() * 1_000_000 + m.mtime_nsec() / 1000));
    assert_eq!(ok(rt_file_write(tp(&f), text("héllo"))).as_int(), Some(6));
    ok(rt_file_remove(tp(&f)));
    assert!(!f.exists());
    expect_err(rt_file_remove(tp(&f)), Code::NotFound, "rt_file_remove");
    expect_err(rt_io_file_delete(tp(&f)), Code::NotFound, "rt_io_file_delete");
    expect_err(rt_file_read_lines(tp(&f)), Code::NotFound, "rt_file_read_lines");
    expect_err(rt_fs_read_text(text("")), Code::InvalidArgument, "rt_fs_read_text");
    expect_err(rt_file_hash(int(1)), Code::TypeMismatch, "rt_file_hash");
}

#[test]
fn move_mode_stat_sync_excl() {
    let (_g, d) = tmp();
    let a = d.join("a");
    let b = d.join("b");
    fs::write(&a, "x").unwrap();
    fs::set_permissions(&a, fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(ok(rt_file_mode(tp(&a))).as_int(), Some(0o640));
    let st = ok(rt_file_stat(tp(&a)));
    assert_eq!(st.get("kind").as_text(), Some("file"));
    assert_eq!(st.get("size").as_int(), Some(1));
    assert_eq!(st.get("inode").as_int(), Some(fs::metadata(&a).unwrap().ino() as i64));
    ok(rt_file_sync(tp(&a)));
    ok(rt_file_fsync(tp(&a)));
    ok(rt_dir_sync(tp(&d)));
    expect_err(rt_dir_sync(tp(&a)), Code::InvalidArgument, "rt_dir_sync");
    ok(rt_file_move(tp(&a), tp(&b)));
    assert!(!a.exists() && fs::read_to_string(&b).unwrap() == "x");
    expect_err(rt_file_move(tp(&a), tp(&b)), Code::NotFound, "rt_file_move");
    // A symlink is moved itself.
    symlink(&b, &a).unwrap();
    let c = d.join("c");
    ok(rt_file_move(tp(&a), tp(&c)));
    assert!(fs::symlink_metadata(&c).unwrap().file_type().is_symlink());
    ok(rt_file_create_excl(tp(&d.join("new")), text("n")));
    expect_err(rt_file_create_excl(tp(&d.join("new")), text("n")), Code::AlreadyExists, "rt_file_create_excl");
    ok(rt_file_atomic_write_mode(tp(&d.join("m")), text("m"), int(0o600)));
    assert_eq!(fs::metadata(d.join("m")).unwrap().mode() & 0o7777, 0o600);
    expect_err(rt_file_atomic_write_mode(tp(&d.join("m")), text("m"), int(0o17777)), Code::OutOfRange, "rt_file_atomic_write_mode");
}

#[test]
fn windows_and_no_follow_reads() {
    let (_g, d) = tmp();
    let f = d.join("w");
    fs::write(&f, "0123456789").unwrap();
    assert_eq!(ok(rt_file_read_text_at(tp(&f), int(3), int(4))).as_text(), Some("3456"));
    assert_eq!(ok(rt_file_read_text_at_checked(tp(&f), int(8), int(10))).as_text(), Some("89"));
    assert_eq!(ok(rt_file_read_text_at(tp(&f), int(50), int(10))).as_text(), Some(""));
    expect_err(rt_file_read_text_at(tp(&f), int(-1), int(1)), Code::OutOfRange, "rt_file_read_text_at");
    assert_eq!(ok(rt_file_write_text_at(tp(&f), int(12), text("ab"))).as_int(), Some(2));
    assert_eq!(fs::read(&f).unwrap(), b"0123456789\0\0ab");
    expect_err(rt_file_write_text_at(tp(&d.join("missing")), int(0), text("x")), Code::NotFound, "rt_file_write_text_at");
    let l = d.join("l");
    symlink(&f, &l).unwrap();
    assert_eq!(ok(rt_file_is_regular_no_follow(tp(&f))).as_bool(), Some(true));
    assert_eq!(ok(rt_file_is_regular_no_follow(tp(&l))).as_bool(), Some(false));
    assert_eq!(ok(rt_file_is_regular_no_follow(tp(&d.join("none")))).as_bool(), Some(false));
    fs::write(&f, "small").unwrap();
    assert_eq!(ok(rt_file_read_regular_no_follow_bounded(tp(&f), int(5))).as_text(), Some("small"));
    expect_err(rt_file_read_regular_no_follow_bounded(tp(&f), int(4)), Code::LimitExceeded, "rt_file_read_regular_no_follow_bounded");
    expect_err(rt_file_read_regular_no_follow_bounded(tp(&l), int(100)), Code::InvalidArgument, "rt_file_read_regular_no_follow_bounded");
    expect_err(rt_file_read_regular_no_follow_bounded(tp(&d), int(100)), Code::InvalidArgument, "rt_file_read_regular_no_follow_bounded");
    assert_eq!(ok(rt_file_mmap_read_text(tp(&f))).as_text(), Some("small"));
    assert_eq!(ok(rt_file_mmap_read_bytes(tp(&f))).as_bytes(), Some(&b"small"[..]));
}

#[test]
fn dirs_and_paths() {
    let (_g, d) = tmp();
    fs::create_dir_all(d.join("x/y")).unwrap();
    fs::write(d.join("x/a.rs"), "").unwrap();
    fs::write(d.join("x/y/b.rs"), "").unwrap();
    fs::write(d.join("x/y/c.txt"), "").unwrap();
    assert_eq!(ok(rt_dir_exists(tp(&d.join("x")))).as_bool(), Some(true));
    assert_eq!(ok(rt_dir_exists(tp(&d.join("x/a.rs")))).as_bool(), Some(false));
    assert_eq!(ok(rt_dir_exists(tp(&d.join("nope")))).as_bool(), Some(false));
    let base = d.join("x");
    let b = base.to_str().unwrap();
    assert_eq!(texts(ok(rt_list_dir_recursive(tp(&base), text(".rs")))), [format!("{b}/a.rs"), format!("{b}/y/b.rs")]);
    assert_eq!(texts(ok(rt_list_dir_recursive(tp(&base), text("")))).len(), 3);
    assert_eq!(texts(ok(rt_file_list_dir(tp(&base)))), ["a.rs", "y"]);
    assert_eq!(texts(ok(rt_dir_glob(text(&format!("{b}/**/*.rs"))))).len(), 2);
    expect_err(rt_dir_delete(tp(&base)), Code::Io, "rt_dir_delete");
    fs::create_dir(d.join("empty")).unwrap();
    ok(rt_dir_delete(tp(&d.join("empty"))));
    assert!(!d.join("empty").exists());
    assert_eq!(ok(rt_path_parent(text("/a/b.txt"))).as_text(), Some("/a"));
    assert!(ok(rt_path_parent(text("/"))).is_nil());
    assert_eq!(ok(rt_path_filename(text("/a/b.txt"))).as_text(), Some("b.txt"));
    assert_eq!(ok(rt_path_ext(text("a/b.tar.gz"))).as_text(), Some("gz"));
    assert_eq!(ok(rt_path_separator()).as_text(), Some("/"));
    expect_err(rt_path_parent(text("")), Code::InvalidArgument, "rt_path_parent");
    let l = d.join("link");
    symlink(d.join("x/y"), &l).unwrap();
    let py = std::process::Command::new("python3").args(["-c", "import os,sys;print(os.path.realpath(sys.argv[1]))"]).arg(format!("{}/../a.rs", l.display())).output().unwrap();
    let want = String::from_utf8(py.stdout).unwrap();
    assert_eq!(ok(rt_file_canonicalize(text(&format!("{}/../a.rs", l.display())))).as_text(), Some(want.trim()));
    expect_err(rt_file_canonicalize(tp(&d.join("missing"))), Code::NotFound, "rt_file_canonicalize");
}

#[test]
fn file_handles() {
    let (_g, d) = tmp();
    let f = d.join("h");
    let w = ok(rt_io_file_open(tp(&f), int(1)));
    ok(rt_io_file_write_all(w.raw(), text("line1\nline2\n")));
    assert_eq!(ok(rt_fd_write(w.raw(), text("tail!"), int(4))).as_int(), Some(4));
    ok(rt_io_file_flush(w.raw()));
    assert_eq!(ok(rt_io_file_meta_size(w.raw())).as_int(), Some(16));
    ok(rt_io_file_close(w.raw()));
    assert_eq!(code(rt_io_file_close(w.raw())), Code::Closed);
    let r = ok(rt_file_open(tp(&f), int(0)));
    assert_eq!(ok(rt_fd_read_until(r.raw(), int(10), int(100))).as_text(), Some("line1\n"));
    assert_eq!(ok(rt_fd_read_until(r.raw(), int(10), int(3))).as_text(), Some("lin"));
    assert_eq!(ok(rt_fd_read_until(r.raw(), int(10), int(100))).as_text(), Some("e2\n"));
    assert_eq!(ok(rt_io_file_seek(r.raw(), int(-4), int(2))).as_int(), Some(12));
    assert_eq!(ok(rt_fd_read_until(r.raw(), int(10), int(100))).as_text(), Some("tail"));
    assert_eq!(ok(rt_fd_read_until(r.raw(), int(10), int(100))).as_text(), Some(""));
    expect_err(rt_io_file_seek(r.raw(), int(0), int(7)), Code::InvalidArgument, "rt_io_file_seek");
    expect_err(rt_fd_read_until(r.raw(), int(256), int(1)), Code::OutOfRange, "rt_fd_read_until");
    ok(rt_fd_close(r.raw()));
    let a = ok(rt_file_open(tp(&f), int(2)));
    ok(rt_io_file_write_all(a.raw(), text("+")));
    ok(rt_file_close(a.raw()));
    assert!(fs::read_to_string(&f).unwrap().ends_with("tail+"));
    expect_err(rt_file_open(tp(&f), int(5)), Code::AlreadyExists, "rt_file_open");
    expect_err(rt_file_open(tp(&f), int(9)), Code::InvalidArgument, "rt_file_open");
    expect_err(rt_file_open(tp(&d.join("none")), int(0)), Code::NotFound, "rt_file_open");
    expect_err(rt_io_file_write_all(int(3), text("x")), Code::TypeMismatch, "rt_io_file_write_all");
}

#[test]
fn env_functions() {
    ok(ffi_io::env::rt_env_set(text("RT_SIMPLE_N"), text(" 42 ")));
    assert_eq!(ok(rt_env_get_i64(text("RT_SIMPLE_N"), int(7))).as_int(), Some(42));
    assert_eq!(ok(rt_env_get_i64(text("RT_SIMPLE_UNSET_X"), int(7))).as_int(), Some(7));
    let vars = ok(rt_env_vars());
    assert!(vars.items().any(|p| p.at(0).as_text() == Some("RT_SIMPLE_N") && p.at(1).as_text() == Some(" 42 ")));
    ok(ffi_io::env::rt_env_set(text("RT_SIMPLE_N"), text("x")));
    expect_err(rt_env_get_i64(text("RT_SIMPLE_N"), int(7)), Code::Parse, "rt_env_get_i64");
    ok(rt_env_remove(text("RT_SIMPLE_N")));
    assert!(std::env::var("RT_SIMPLE_N").is_err());
    expect_err(rt_env_remove(text("A=B")), Code::InvalidArgument, "rt_env_remove");
    assert_eq!(ok(rt_env_temp()).as_text().unwrap(), std::env::temp_dir().to_str().unwrap());
}

#[test]
fn capabilities_hold() {
    in_child("capabilities_hold", || {
        let (_g, d) = tmp();
        let inside = d.join("in");
        fs::create_dir(&inside).unwrap();
        fs::write(inside.join("f"), "x").unwrap();
        fs::write(d.join("secret"), "s").unwrap();
        std::env::set_var("RT_OK_A", "1");
        std::env::set_var("RT_NO_B", "2");
        restrict(&format!("fs.read={0};fs.write={0};env.read=RT_OK_*;env.write=false", inside.display()));
        let out = |n: &str| tp(&d.join(n));
        expect_err(rt_file_read_lines(out("secret")), Code::CapabilityDenied, "rt_file_read_lines");
        expect_err(rt_file_move(tp(&inside.join("f")), out("moved")), Code::CapabilityDenied, "rt_file_move");
        expect_err(rt_file_open(out("secret"), int(0)), Code::CapabilityDenied, "rt_file_open");
        expect_err(rt_file_canonicalize(out("secret")), Code::CapabilityDenied, "rt_file_canonicalize");
        expect_err(rt_dir_exists(tp(&d)), Code::CapabilityDenied, "rt_dir_exists");
        expect_err(rt_env_remove(text("RT_OK_A")), Code::CapabilityDenied, "rt_env_remove");
        let names: Vec<String> = ok(rt_env_vars()).items().map(|p| p.at(0).as_text().unwrap().to_string()).collect();
        assert!(names.contains(&"RT_OK_A".to_string()) && !names.contains(&"RT_NO_B".to_string()), "{names:?}");
        assert_eq!(texts(ok(rt_file_read_lines(tp(&inside.join("f"))))), ["x"]);
        ok(rt_file_move(tp(&inside.join("f")), tp(&inside.join("g"))));
    });
}
