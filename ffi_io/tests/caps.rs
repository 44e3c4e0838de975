//! Capabilities: under a policy that allows fs.read and fs.write only on
//! `<tmp>/allowed`, everything inside works and every way out is denied
//! (`..`, absolute paths, a symlink pointing out, a symlinked parent), or
//! filtered for walk/glob. Each test narrows the policy in a child run.

mod common;
use common::*;
use ffi_io::{dir::*, env::*, file::*, glob::*, lock::*, mmap::*, path::*};
use ffi_sdk::testing::{in_child, restrict};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// root/{secret.txt, outside/f.txt, allowed/{a.txt, sub/f.txt, link -> ../secret.txt, ldir -> ../outside}}
struct Fixture {
    _g: tempfile::TempDir,
    root: PathBuf,
    allowed: PathBuf,
}

fn fixture(policy_extra: &str) -> Fixture {
    let (g, root) = tmp();
    let allowed = root.join("allowed");
    fs::create_dir_all(allowed.join("sub")).unwrap();
    fs::create_dir_all(root.join("outside")).unwrap();
    fs::write(root.join("secret.txt"), "secret").unwrap();
    fs::write(root.join("outside/f.txt"), "outside").unwrap();
    fs::write(allowed.join("a.txt"), "inside").unwrap();
    fs::write(allowed.join("sub/f.txt"), "inside sub").unwrap();
    symlink(root.join("secret.txt"), allowed.join("link")).unwrap();
    symlink(root.join("outside"), allowed.join("ldir")).unwrap();
    let a = allowed.display();
    restrict(&format!("fs.read={a};fs.write={a}{policy_extra}"));
    Fixture { _g: g, root, allowed }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[track_caller]
fn denied(v: RtValue, func: &str, cap_name: &str, canonical: &Path) {
    let (c, m) = err(v);
    assert_eq!(c, Code::CapabilityDenied, "{m}");
    assert_eq!(m, format!("{func} needs {cap_name} for {}", canonical.display()));
}

type F1 = fn(&str) -> RtValue;

/// Every function that reads or writes one path, with its capability.
fn one_path_functions() -> Vec<(&'static str, &'static str, F1)> {
    vec![
        ("rt_file_exists", "fs.read", |p| rt_file_exists(text(p))),
        ("rt_file_read_text", "fs.read", |p| rt_file_read_text(text(p))),
        ("rt_file_read_bytes", "fs.read", |p| rt_file_read_bytes(text(p))),
        ("rt_file_write_text", "fs.write", |p| rt_file_write_text(text(p), text("x"))),
        ("rt_file_write_bytes", "fs.write", |p| rt_file_write_bytes(text(p), bytes(b"x"))),
        ("rt_file_append_text", "fs.write", |p| rt_file_append_text(text(p), text("x"))),
        ("rt_file_atomic_write", "fs.write", |p| rt_file_atomic_write(text(p), text("x"))),
        ("rt_file_modified_time", "fs.read", |p| rt_file_modified_time(text(p))),
        ("rt_file_size", "fs.read", |p| rt_file_size(text(p))),
        ("rt_file_hash_sha256", "fs.read", |p| rt_file_hash_sha256(text(p))),
        ("rt_file_lock", "fs.read", |p| rt_file_lock(text(p), NIL)),
        ("rt_file_try_lock", "fs.read", |p| rt_file_try_lock(text(p), NIL)),
        ("rt_file_mmap_read", "fs.read", |p| rt_file_mmap_read(text(p), NIL)),
        ("rt_dir_create_all", "fs.write", |p| rt_dir_create_all(text(p))),
        ("rt_dir_list", "fs.read", |p| rt_dir_list(text(p))),
        ("rt_dir_walk", "fs.read", |p| rt_dir_walk(text(p), NIL)),
        ("rt_path_exists", "fs.read", |p| rt_path_exists(text(p))),
        ("rt_glob", "fs.read", |p| rt_glob(text(p), NIL)),
    ]
}

/// Functions that act on a link itself (checked without following the last
/// component; mkdir on a link is AlreadyExists, never a directory created through it).
fn nofollow_functions() -> Vec<(&'static str, &'static str, F1)> {
    vec![
        ("rt_dir_create", "fs.write", |p| rt_dir_create(text(p))),
        ("rt_file_delete", "fs.write", |p| rt_file_delete(text(p))),
        ("rt_dir_remove", "fs.write", |p| rt_dir_remove(text(p))),
        ("rt_dir_remove_all", "fs.write", |p| rt_dir_remove_all(text(p))),
    ]
}

#[test]
fn every_way_out_is_denied() {
    in_child("every_way_out_is_denied", || {
        let fx = fixture("");
        let secret = fx.root.join("secret.txt");
        let outside_f = fx.root.join("outside/f.txt");
        let ways: [(String, &Path); 4] = [
            (format!("{}/../secret.txt", s(&fx.allowed)), &secret),
            (s(&secret), &secret),
            (s(&fx.allowed.join("link")), &secret),
            (s(&fx.allowed.join("ldir/f.txt")), &outside_f),
        ];
        for (name, cap_name, f) in one_path_functions() {
            for (p, canon) in &ways {
                denied(f(p), name, cap_name, canon);
            }
        }
        // The link itself is inside, so only the `..`, absolute and symlinked-parent ways are out.
        for (name, cap_name, f) in nofollow_functions() {
            for (p, canon) in [&ways[0], &ways[1], &ways[3]] {
                denied(f(p), name, cap_name, canon);
            }
        }
        // Copy: the source needs fs.read, the destination fs.write.
        let inside = s(&fx.allowed.join("a.txt"));
        denied(rt_file_copy(text(&ways[2].0), text(&inside)), "rt_file_copy", "fs.read", &secret);
        denied(rt_file_copy(text(&inside), text(&ways[0].0)), "rt_file_copy", "fs.write", &secret);
        denied(rt_file_copy(text(&inside), text(&ways[3].0)), "rt_file_copy", "fs.write", &outside_f);
        // Nothing outside changed.
        assert_eq!(fs::read_to_string(&secret).unwrap(), "secret");
        assert_eq!(fs::read_to_string(&outside_f).unwrap(), "outside");
        assert_eq!(fs::read_dir(fx.root.join("outside")).unwrap().count(), 1);
        // The working directory (the crate directory) is outside too.
        let cwd = std::env::current_dir().unwrap();
        denied(rt_env_cwd(), "rt_env_cwd", "fs.read", &cwd);
        denied(rt_path_absolute(text("x")), "rt_path_absolute", "fs.read", &cwd);
        assert_eq!(ok(rt_path_absolute(text("/abs/x"))).as_text(), Some("/abs/x"));
    });
}

#[test]
fn everything_inside_works() {
    in_child("everything_inside_works", || {
        let fx = fixture("");
        let a = |rel: &str| s(&fx.allowed.join(rel));
        assert_eq!(ok(rt_file_exists(text(&a("a.txt")))).as_bool(), Some(true));
        assert_eq!(ok(rt_file_read_text(text(&a("a.txt")))).as_text(), Some("inside"));
        assert_eq!(ok(rt_file_read_bytes(text(&a("sub/../a.txt")))).as_bytes(), Some(&b"inside"[..]));
        ok(rt_file_write_text(text(&a("w.txt")), text("w")));
        ok(rt_file_write_bytes(text(&a("wb")), bytes(b"\x00\x01")));
        ok(rt_file_append_text(text(&a("w.txt")), text("2")));
        ok(rt_file_atomic_write(text(&a("w.txt")), text("atomic")));
        assert_eq!(ok(rt_file_copy(text(&a("w.txt")), text(&a("sub/c.txt")))).as_int(), Some(6));
        assert!(ok(rt_file_modified_time(text(&a("w.txt")))).as_int().unwrap() > 0);
        assert_eq!(ok(rt_file_size(text(&a("w.txt")))).as_int(), Some(6));
        assert_eq!(ok(rt_file_hash_sha256(text(&a("a.txt")))).as_text().unwrap().len(), 64);
        let l = ok(rt_file_lock(text(&a("lock")), NIL));
        ok(rt_file_unlock(l.raw()));
        let l = ok(rt_file_try_lock(text(&a("lock")), NIL));
        ok(rt_file_unlock(l.raw()));
        assert_eq!(ok(rt_file_mmap_read(text(&a("a.txt")), NIL)).as_bytes(), Some(&b"inside"[..]));
        ok(rt_dir_create(text(&a("d"))));
        ok(rt_dir_create_all(text(&a("d/e/f"))));
        assert!(texts(ok(rt_dir_list(text(&a(""))))).contains(&"a.txt".to_string()));
        ok(rt_dir_remove(text(&a("d/e/f"))));
        ok(rt_dir_remove_all(text(&a("d"))));
        assert_eq!(ok(rt_path_exists(text(&a("sub")))).as_bool(), Some(true));
        ok(rt_file_delete(text(&a("sub/c.txt"))));
        // Deleting the link that points out removes the link, not its target.
        ok(rt_file_delete(text(&a("link"))));
        assert!(fx.root.join("secret.txt").exists());
        // Path functions that do not touch the disk need nothing.
        assert_eq!(ok(rt_path_join(text("/etc"), text("passwd"))).as_text(), Some("/etc/passwd"));
        assert_eq!(ok(rt_path_basename(text("/etc/passwd"))).as_text(), Some("passwd"));
        assert_eq!(ok(rt_path_dirname(text("/etc/passwd"))).as_text(), Some("/etc"));
        assert_eq!(ok(rt_path_extension(text("/etc/x.conf"))).as_text(), Some("conf"));
        assert_eq!(ok(rt_path_stem(text("/etc/x.conf"))).as_text(), Some("x"));
        assert_eq!(ok(rt_path_normalize(text("/etc/../x"))).as_text(), Some("/x"));
        // A working directory inside the allowed tree is readable.
        std::env::set_current_dir(&fx.allowed).unwrap();
        assert_eq!(ok(rt_env_cwd()).as_text().unwrap(), s(&fx.allowed));
        assert_eq!(ok(rt_path_absolute(text("q"))).as_text().unwrap(), a("q"));
    });
}

/// Walk: the root is checked (denied outside). Without follow_links the
/// links are listed but never entered; with it, a link leading outside is
/// filtered out (neither listed nor entered) while the rest is walked.
#[test]
fn walk_is_denied_outside_and_filtered_through_links() {
    in_child("walk_is_denied_outside_and_filtered_through_links", || {
        let fx = fixture("");
        let a = |rel: &str| s(&fx.allowed.join(rel));
        denied(rt_dir_walk(text(&s(&fx.root)), NIL), "rt_dir_walk", "fs.read", &fx.root);
        denied(rt_dir_walk(text(&a("ldir")), NIL), "rt_dir_walk", "fs.read", &fx.root.join("outside"));
        let plain = texts(ok(rt_dir_walk(text(&s(&fx.allowed)), NIL)));
        assert_eq!(plain, vec![a("a.txt"), a("ldir"), a("link"), a("sub"), a("sub/f.txt")]);
        let followed = texts(ok(rt_dir_walk(text(&s(&fx.allowed)), dict(&[("follow_links", Value::TRUE)]))));
        assert_eq!(followed, vec![a("a.txt"), a("sub"), a("sub/f.txt")]);
        // An inside link is followed as usual.
        symlink(fx.allowed.join("sub"), fx.allowed.join("zin")).unwrap();
        let followed = texts(ok(rt_dir_walk(text(&s(&fx.allowed)), dict(&[("follow_links", Value::TRUE)]))));
        assert!(followed.contains(&a("zin/f.txt")), "{followed:?}");
    });
}

/// Glob: the literal directory the pattern starts from is checked (denied
/// outside); matches that lead outside through links are filtered out.
#[test]
fn glob_is_denied_outside_and_filtered_through_links() {
    in_child("glob_is_denied_outside_and_filtered_through_links", || {
        let fx = fixture("");
        denied(rt_glob(text(&format!("{}/*", s(&fx.root))), NIL), "rt_glob", "fs.read", &fx.root);
        denied(rt_glob(text(&format!("{}/../*", s(&fx.allowed))), NIL), "rt_glob", "fs.read", &fx.root);
        denied(rt_glob(text("/etc/*"), NIL), "rt_glob", "fs.read", Path::new("/etc"));
        denied(rt_glob(text(&format!("{}/ldir/*", s(&fx.allowed))), NIL), "rt_glob", "fs.read", &fx.root.join("outside"));
        let all = texts(ok(rt_glob(text(&format!("{}/*", s(&fx.allowed))), NIL)));
        assert_eq!(all, vec![s(&fx.allowed.join("a.txt")), s(&fx.allowed.join("sub"))], "link and ldir lead outside");
        let deep = texts(ok(rt_glob(text(&format!("{}/*/f.txt", s(&fx.allowed))), NIL)));
        assert_eq!(deep, vec![s(&fx.allowed.join("sub/f.txt"))], "ldir/f.txt is outside");
        let rec = texts(ok(rt_glob(text(&format!("{}/**/*.txt", s(&fx.allowed))), NIL)));
        assert_eq!(rec, vec![s(&fx.allowed.join("a.txt")), s(&fx.allowed.join("sub/f.txt"))]);
    });
}

#[test]
fn lock_needs_fs_write_only_to_create() {
    in_child("lock_needs_fs_write_only_to_create", || {
        let (_g, root) = tmp();
        fs::write(root.join("existing"), "").unwrap();
        restrict(&format!("fs.read={};fs.write=false", root.display()));
        let h = ok(rt_file_lock(tp(&root.join("existing")), NIL));
        ok(rt_file_unlock(h.raw()));
        denied(rt_file_lock(tp(&root.join("new")), NIL), "rt_file_lock", "fs.write", &root.join("new"));
        denied(rt_file_try_lock(tp(&root.join("new")), NIL), "rt_file_try_lock", "fs.write", &root.join("new"));
        assert!(!root.join("new").exists());
        // Read-only policy: every writer is refused inside too.
        denied(rt_file_write_text(tp(&root.join("existing")), text("x")), "rt_file_write_text", "fs.write", &root.join("existing"));
        denied(rt_file_copy(tp(&root.join("existing")), tp(&root.join("c"))), "rt_file_copy", "fs.write", &root.join("c"));
        let h = ok(rt_file_mmap_read(tp(&root.join("existing")), dict(&[("handle", Value::TRUE)])));
        assert_eq!(ok(rt_file_mmap_len(h.raw())).as_int(), Some(0));
    });
}

#[test]
fn env_is_checked_by_variable_name() {
    in_child("env_is_checked_by_variable_name", || {
        std::env::set_var("RT_OK_A", "a");
        restrict("env.read=RT_OK_*;env.write=RT_OK_W");
        assert_eq!(ok(rt_env_get(text("RT_OK_A"))).as_text(), Some("a"));
        assert!(ok(rt_env_get(text("RT_OK_UNSET"))).is_nil());
        denied(rt_env_get(text("PATH")), "rt_env_get", "env.read", Path::new("PATH"));
        denied(rt_env_home(), "rt_env_home", "env.read", Path::new("HOME"));
        ok(rt_env_set(text("RT_OK_W"), text("w")));
        assert_eq!(ok(rt_env_get(text("RT_OK_W"))).as_text(), Some("w"));
        ok(rt_env_unset(text("RT_OK_W")));
        denied(rt_env_set(text("RT_OK_A"), text("x")), "rt_env_set", "env.write", Path::new("RT_OK_A"));
        denied(rt_env_unset(text("PATH")), "rt_env_unset", "env.write", Path::new("PATH"));
        assert_eq!(std::env::var("RT_OK_A").unwrap(), "a");
        assert!(std::env::var("PATH").is_ok());
        // Invalid names are InvalidArgument before any capability decision.
        assert_eq!(code(rt_env_get(text("A=B"))), Code::InvalidArgument);
    });
}

#[test]
fn handles_need_no_capability_after_open() {
    in_child("handles_need_no_capability_after_open", || {
        let (_g, root) = tmp();
        fs::write(root.join("m"), "0123456789").unwrap();
        let map = ok(rt_file_mmap_read(tp(&root.join("m")), dict(&[("handle", Value::TRUE)])));
        let lock = ok(rt_file_lock(tp(&root.join("m")), NIL));
        restrict("fs.read=false;fs.write=false");
        denied(rt_file_mmap_read(tp(&root.join("m")), NIL), "rt_file_mmap_read", "fs.read", &root.join("m"));
        assert_eq!(ok(rt_file_mmap_slice(map.raw(), int(2), int(3))).as_bytes(), Some(&b"234"[..]));
        ok(rt_file_unlock(lock.raw()));
    });
}

/// A deny scope inside an allowed tree holds against the functions that
/// descend trees by descriptor: remove_all stops with CapabilityDenied
/// before touching the denied entry, and a walk neither lists nor enters it.
#[test]
fn deny_scopes_inside_a_tree_hold_for_remove_all_and_walk() {
    in_child("deny_scopes_inside_a_tree_hold_for_remove_all_and_walk", || {
        let fx = fixture("");
        let a = |rel: &str| s(&fx.allowed.join(rel));
        fs::create_dir_all(fx.allowed.join("t/keep/deep")).unwrap();
        fs::write(fx.allowed.join("t/keep/deep/k.txt"), "keep").unwrap();
        fs::write(fx.allowed.join("t/keep/k0.txt"), "keep").unwrap();
        restrict(&format!("fs.read={0},!{1};fs.write={0},!{1}", s(&fx.allowed), a("t/keep")));
        let walked = texts(ok(rt_dir_walk(text(&a("t")), NIL)));
        assert!(walked.is_empty(), "a denied entry was listed: {walked:?}");
        let (c, m) = err(rt_dir_remove_all(text(&a("t"))));
        assert_eq!(c, Code::CapabilityDenied, "{m}");
        assert!(m.contains("t/keep"), "{m}");
        assert_eq!(fs::read_to_string(fx.allowed.join("t/keep/deep/k.txt")).unwrap(), "keep");
        assert_eq!(fs::read_to_string(fx.allowed.join("t/keep/k0.txt")).unwrap(), "keep");
        // Allowed siblings are still removed and walked.
        fs::create_dir_all(fx.allowed.join("u/v")).unwrap();
        assert_eq!(texts(ok(rt_dir_walk(text(&a("u")), NIL))), vec![a("u/v")]);
        ok(rt_dir_remove_all(text(&a("u"))));
        assert!(!fx.allowed.join("u").exists());
    });
}
