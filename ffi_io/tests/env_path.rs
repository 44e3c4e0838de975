//! Environment and path functions, with the shell and Python's os.path as oracles.

mod common;
use common::*;
use ffi_io::env::*;
use ffi_io::path::*;

#[test]
fn cwd_matches_std_and_pwd() {
    let v = ok(rt_env_cwd());
    let want = std::env::current_dir().unwrap();
    assert_eq!(v.as_text().unwrap(), want.to_str().unwrap());
    let (_, out) = sh("pwd -P");
    assert_eq!(v.as_text().unwrap(), out.trim());
}

#[test]
fn home_follows_home_variable_and_passwd() {
    let want = std::env::var("HOME").unwrap();
    assert_eq!(ok(rt_env_home()).as_text().unwrap(), want);
    // Without HOME it falls back to the password database (like `getent passwd`), in a child.
    ffi_sdk::testing::in_child("home_follows_home_variable_and_passwd", || {
        ok(rt_env_unset(text("HOME")));
        let (_, out) = sh("getent passwd $(id -u) | cut -d: -f6");
        assert_eq!(ok(rt_env_home()).as_text().unwrap(), out.trim());
    });
}

#[test]
fn get_set_unset() {
    let name = "RT_IO_TEST_GET_SET";
    assert!(ok(rt_env_get(text(name))).is_nil(), "unset is nil");
    ok(rt_env_set(text(name), text("")));
    assert_eq!(ok(rt_env_get(text(name))).as_text(), Some(""), "empty is not nil");
    ok(rt_env_set(text(name), text("héllo=world")));
    assert_eq!(ok(rt_env_get(text(name))).as_text(), Some("héllo=world"));
    assert_eq!(std::env::var(name).unwrap(), "héllo=world");
    // A child process inherits it.
    let (_, out) = sh(&format!("printf %s \"${name}\""));
    assert_eq!(out, "héllo=world");
    ok(rt_env_unset(text(name)));
    assert!(ok(rt_env_get(text(name))).is_nil());
    ok(rt_env_unset(text(name)));
    assert!(std::env::var_os(name).is_none());
}

#[test]
fn get_non_utf8_value_is_parse_error() {
    ffi_sdk::testing::in_child("get_non_utf8_value_is_parse_error", || {
        use std::os::unix::ffi::OsStrExt;
        std::env::set_var("RT_IO_BAD", std::ffi::OsStr::from_bytes(b"a\xffb"));
        expect_err(rt_env_get(text("RT_IO_BAD")), Code::Parse, "rt_env_get");
    });
}

#[test]
fn env_bad_names_and_values() {
    for f in [rt_env_get as extern "C" fn(RtValue) -> RtValue, rt_env_unset] {
        assert_eq!(code(f(text(""))), Code::InvalidArgument);
        assert_eq!(code(f(text("A=B"))), Code::InvalidArgument);
        assert_eq!(code(f(text("A\0B"))), Code::InvalidArgument);
        assert_eq!(code(f(int(1))), Code::TypeMismatch);
        assert_eq!(code(f(NIL)), Code::TypeMismatch);
    }
    expect_err(rt_env_set(text(""), text("v")), Code::InvalidArgument, "rt_env_set");
    expect_err(rt_env_set(text("X=Y"), text("v")), Code::InvalidArgument, "rt_env_set");
    expect_err(rt_env_set(text("RT_IO_NUL"), text("a\0b")), Code::InvalidArgument, "rt_env_set");
    expect_err(rt_env_set(text("RT_IO_NUL"), NIL), Code::TypeMismatch, "rt_env_set");
    expect_err(rt_env_set(int(1), text("v")), Code::TypeMismatch, "rt_env_set");
    assert!(std::env::var_os("RT_IO_NUL").is_none());
}

/// Readers and writers from many threads at once: the lock keeps them apart
/// (without it glibc's getenv can read a freed environment block).
#[test]
fn env_is_safe_from_many_threads() {
    let hs: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..2000 {
                    let n = format!("RT_IO_THREAD_{t}_{}", i % 50);
                    ok(rt_env_set(text(&n), text(&i.to_string())));
                    assert_eq!(ok(rt_env_get(text(&n))).as_text().unwrap(), i.to_string());
                    ok(rt_env_get(text("PATH")));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

fn py(expr: &str, arg: &str) -> String {
    let (rc, out) = sh(&format!("python3 -c 'import os.path,sys; a=sys.argv[1]; print({expr})' '{arg}'"));
    assert_eq!(rc, 0);
    out.trim_end_matches('\n').to_string()
}

#[test]
fn basename_dirname_match_expectations() {
    for (p, base, dir) in [
        ("/a/b.txt", Some("b.txt"), Some("/a")),
        ("a/b/", Some("b"), Some("a")),
        ("b", Some("b"), Some("")),
        ("/a", Some("a"), Some("/")),
        ("/", None, None),
        ("a/..", None, Some("a")),
    ] {
        assert_eq!(ok(rt_path_basename(text(p))).as_text(), base, "basename {p}");
        assert_eq!(ok(rt_path_dirname(text(p))).as_text(), dir, "dirname {p}");
    }
    // Oracle: Python agrees on ordinary paths.
    for p in ["/usr/lib/x.so", "rel/dir/file", "file"] {
        assert_eq!(ok(rt_path_basename(text(p))).as_text().unwrap(), py("os.path.basename(a)", p));
        assert_eq!(ok(rt_path_dirname(text(p))).as_text().unwrap(), py("os.path.dirname(a)", p));
    }
}

#[test]
fn join_extension_stem() {
    assert_eq!(ok(rt_path_join(text("a"), text("b/c"))).as_text(), Some("a/b/c"));
    assert_eq!(ok(rt_path_join(text("a/"), text("b"))).as_text(), Some("a/b"));
    assert_eq!(ok(rt_path_join(text("a"), text("/abs"))).as_text(), Some("/abs"));
    assert_eq!(ok(rt_path_join(text("/x/y"), text("../z"))).as_text(), Some("/x/y/../z"));
    assert_eq!(ok(rt_path_extension(text("a/b.tar.gz"))).as_text(), Some("gz"));
    assert!(ok(rt_path_extension(text("a/b"))).is_nil());
    assert!(ok(rt_path_extension(text("a/.bashrc"))).is_nil());
    assert_eq!(ok(rt_path_extension(text("a/b."))).as_text(), Some(""));
    assert_eq!(ok(rt_path_stem(text("a/b.tar.gz"))).as_text(), Some("b.tar"));
    assert_eq!(ok(rt_path_stem(text(".bashrc"))).as_text(), Some(".bashrc"));
    assert!(ok(rt_path_stem(text("/"))).is_nil());
    for p in ["x/y.tar.gz", "y.rs", "dir/noext"] {
        let want = py("os.path.splitext(a)[1][1:]", p);
        let got = ok(rt_path_extension(text(p))).as_text().unwrap_or("").to_string();
        assert_eq!(got, want, "{p}");
    }
}

#[test]
fn absolute_and_normalize() {
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(ok(rt_path_absolute(text("x/../y"))).as_text().unwrap(), format!("{}/x/../y", cwd.display()));
    assert_eq!(ok(rt_path_absolute(text("/already/abs"))).as_text(), Some("/already/abs"));
    for (p, n) in [("a/./b/../c//", "a/c"), ("/../..", "/"), ("../x/..", ".."), ("a/b/../../..", "..")] {
        assert_eq!(ok(rt_path_normalize(text(p))).as_text(), Some(n), "{p}");
    }
    // Oracle: Python's normpath agrees (it keeps a leading // — not tested).
    for p in ["/usr/./lib/../bin/", "a/b/c/../../d", "../../x/./y"] {
        assert_eq!(ok(rt_path_normalize(text(p))).as_text().unwrap(), py("os.path.normpath(a)", p), "{p}");
    }
}

#[test]
fn path_exists() {
    let (_g, d) = tmp();
    assert_eq!(ok(rt_path_exists(tp(&d))).as_bool(), Some(true));
    std::fs::write(d.join("f"), "x").unwrap();
    assert_eq!(ok(rt_path_exists(tp(&d.join("f")))).as_bool(), Some(true));
    assert_eq!(ok(rt_path_exists(tp(&d.join("nope")))).as_bool(), Some(false));
    assert_eq!(ok(rt_path_exists(tp(&d.join("f/below")))).as_bool(), Some(false));
    std::os::unix::fs::symlink(d.join("nope"), d.join("dangling")).unwrap();
    assert_eq!(ok(rt_path_exists(tp(&d.join("dangling")))).as_bool(), Some(false));
}

#[test]
fn path_bad_input() {
    let one: [(extern "C" fn(RtValue) -> RtValue, &str); 7] = [
        (rt_path_basename, "rt_path_basename"),
        (rt_path_dirname, "rt_path_dirname"),
        (rt_path_exists, "rt_path_exists"),
        (rt_path_extension, "rt_path_extension"),
        (rt_path_stem, "rt_path_stem"),
        (rt_path_absolute, "rt_path_absolute"),
        (rt_path_normalize, "rt_path_normalize"),
    ];
    for (f, name) in one {
        expect_err(f(text("")), Code::InvalidArgument, name);
        expect_err(f(text("a\0b")), Code::InvalidArgument, name);
        expect_err(f(int(7)), Code::TypeMismatch, name);
        expect_err(f(NIL), Code::TypeMismatch, name);
        expect_err(f(bytes(b"a/b")), Code::TypeMismatch, name);
    }
    expect_err(rt_path_join(text(""), text("b")), Code::InvalidArgument, "rt_path_join");
    expect_err(rt_path_join(text("a"), text("b\0")), Code::InvalidArgument, "rt_path_join");
    expect_err(rt_path_join(text("a"), NIL), Code::TypeMismatch, "rt_path_join");
    // A very long path is fine for the lexical functions.
    let long = format!("/{}", "n".repeat(5000));
    assert_eq!(ok(rt_path_basename(text(&long))).as_text().unwrap().len(), 5000);
    expect_err(rt_path_exists(text(&format!("/tmp/{}", "n".repeat(300)))), Code::InvalidArgument, "rt_path_exists");
}
