//! The input as an archive file (tar, or tar.gz / tar.xz: detected):
//! rt_tar_list, then rt_tar_extract into a fresh directory
//! (max_size 4 MiB, max_entries 1000, xz memlimit 64 MiB). Never a panic, and
//! nothing is written outside the target: the directories around it hold
//! exactly what they held (a sentinel file beside the target keeps its
//! content), every symlink extracted resolves inside the target (or, when
//! dangling, points inside it lexically), and no extracted file is a hard
//! link to a file outside it.
//!
//! Layout (one per fuzzing process, under $TMPDIR):
//! `base/archive`, `base/w1/w2/sentinel`, `base/w1/w2/t` (the target, removed after each run).
#![no_main]
use ffi_archive::tar::{rt_tar_extract, rt_tar_list};
use libfuzzer_sys::fuzz_target;
use simple_rt_fuzz::*;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

const SENTINEL: &[u8] = b"do not touch\n";

struct Layout {
    base: PathBuf,
    w1: PathBuf,
    w2: PathBuf,
    archive: PathBuf,
    target: PathBuf,
}

fn layout() -> &'static Layout {
    static L: OnceLock<Layout> = OnceLock::new();
    L.get_or_init(|| {
        let base = std::env::temp_dir().join(format!("simple-rt-fuzz-tar-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let w1 = base.join("w1");
        let w2 = w1.join("w2");
        fs::create_dir_all(&w2).expect("fixture dirs");
        fs::write(w2.join("sentinel"), SENTINEL).expect("sentinel");
        let base = fs::canonicalize(&base).expect("canonical base");
        let (w1, w2) = (base.join("w1"), base.join("w1/w2"));
        Layout { archive: base.join("archive"), target: w2.join("t"), base, w1, w2 }
    })
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Lexical normalisation (no file system access).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Walks the extracted tree (without following links), checking links, and
/// makes every directory writable again so it can be removed.
fn walk(dir: &Path, root: &Path, inodes: &mut HashMap<(u64, u64), (u64, u64)>, input: &[u8]) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let Ok(md) = fs::symlink_metadata(&p) else { continue };
        let ft = md.file_type();
        if ft.is_symlink() {
            match fs::canonicalize(&p) {
                Ok(real) => assert!(real.starts_with(root), "symlink {} resolves outside the target to {}\ninput {input:02x?}", p.display(), real.display()),
                Err(_) => {
                    let to = fs::read_link(&p).expect("readlink");
                    let lexical = normalize(&p.parent().expect("parent").join(&to));
                    assert!(lexical.starts_with(root), "dangling symlink {} points outside the target ({})\ninput {input:02x?}", p.display(), to.display());
                }
            }
        } else if ft.is_dir() {
            walk(&p, root, inodes, input);
        } else if ft.is_file() {
            let seen = inodes.entry((md.dev(), md.ino())).or_insert((md.nlink(), 0));
            seen.1 += 1;
        } else {
            panic!("extracted a special file {}\ninput {input:02x?}", p.display());
        }
    }
}

fn remove_tree(p: &Path) {
    if let Err(e) = fs::remove_dir_all(p) {
        if p.exists() {
            panic!("cannot clean {}: {e}", p.display());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let l = layout();
    fs::write(&l.archive, data).expect("writing the archive");
    let archive = l.archive.to_str().expect("utf-8 path");
    let target = l.target.to_str().expect("utf-8 path");
    let memlimit = ("memlimit", Value::int(64 << 20));

    let lo = opts(&[("max_entries", Value::int(1000)), memlimit]);
    if let Ok(list) = result("rt_tar_list", rt_tar_list(text(archive), lo.raw())) {
        assert!(list.is_array(), "rt_tar_list returned {}", list.describe());
    }

    let xo = opts(&[("max_entries", Value::int(1000)), ("max_size", Value::int(4 << 20)), memlimit]);
    let _ = result("rt_tar_extract", rt_tar_extract(text(archive), text(target), xo.raw()));

    assert_eq!(names(&l.base), ["archive", "w1"], "something was written beside the archive\ninput {data:02x?}");
    assert_eq!(names(&l.w1), ["w2"], "something was written outside the target\ninput {data:02x?}");
    let around = names(&l.w2);
    assert!(around == ["sentinel", "t"] || around == ["sentinel"], "something was written beside the target: {around:?}\ninput {data:02x?}");
    assert_eq!(fs::read(l.w2.join("sentinel")).expect("sentinel").as_slice(), SENTINEL, "the sentinel beside the target changed\ninput {data:02x?}");
    let sm = fs::symlink_metadata(l.w2.join("sentinel")).expect("sentinel");
    assert!(sm.file_type().is_file() && sm.nlink() == 1, "the sentinel got a hard link or was replaced\ninput {data:02x?}");

    if l.target.exists() {
        let mut inodes = HashMap::new();
        walk(&l.target, &l.target, &mut inodes, data);
        for ((_, ino), (nlink, count)) in &inodes {
            assert!(nlink <= count, "inode {ino} has {nlink} links but {count} inside the target: linked to a file outside\ninput {data:02x?}");
        }
        remove_tree(&l.target);
    }
});
