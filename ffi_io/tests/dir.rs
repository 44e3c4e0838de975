//! Directories, walk and glob against the real file system, with `find`,
//! `ls` and Python's glob as oracles.

mod common;
use common::*;
use ffi_io::dir::*;
use ffi_io::glob::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

/// Builds a small tree: a/{x.txt,y.rs,b/{z.txt,c/{w.txt}}}, a/B.txt, a/a.txt, a/.hidden
fn tree(root: &Path) {
    for d in ["a/b/c", "a/empty"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    for f in ["a/x.txt", "a/y.rs", "a/b/z.txt", "a/b/c/w.txt", "a/B.txt", "a/a.txt", "a/.hidden", "a/b.txt"] {
        fs::write(root.join(f), f).unwrap();
    }
}

/// Depth-first pre-order with each directory's entries sorted bytewise = sort by component lists.
fn dfs_sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    v
}

#[test]
fn create_and_remove() {
    let (_g, d) = tmp();
    let a = d.join("a");
    ok(rt_dir_create(tp(&a)));
    assert!(a.is_dir());
    expect_err(rt_dir_create(tp(&a)), Code::AlreadyExists, "rt_dir_create");
    ok(rt_dir_create_all(tp(&a.join("b/c/d"))));
    assert!(a.join("b/c/d").is_dir());
    ok(rt_dir_create_all(tp(&a.join("b/c/d"))));
    ok(rt_dir_remove(tp(&a.join("b/c/d"))));
    assert!(!a.join("b/c/d").exists());
    fs::write(a.join("b/f"), "x").unwrap();
    symlink("/etc", a.join("b/etc-link")).unwrap();
    ok(rt_dir_remove_all(tp(&a)));
    assert!(!a.exists());
    assert!(Path::new("/etc/passwd").exists(), "symlinks inside are never followed");
}

#[test]
fn create_and_remove_bad_input() {
    let (_g, d) = tmp();
    let f = d.join("file");
    fs::write(&f, "x").unwrap();
    expect_err(rt_dir_create(tp(&d.join("no/parent"))), Code::NotFound, "rt_dir_create");
    expect_err(rt_dir_create(tp(&f)), Code::AlreadyExists, "rt_dir_create");
    expect_err(rt_dir_create(text("")), Code::InvalidArgument, "rt_dir_create");
    expect_err(rt_dir_create(int(1)), Code::TypeMismatch, "rt_dir_create");
    expect_err(rt_dir_create(tp(&d.join("n".repeat(300)))), Code::InvalidArgument, "rt_dir_create");
    expect_err(rt_dir_create(text("/proc/rt_io_dir")), Code::NotFound, "rt_dir_create");
    expect_err(rt_dir_create_all(tp(&f)), Code::InvalidArgument, "rt_dir_create_all");
    expect_err(rt_dir_create_all(tp(&f.join("below"))), Code::InvalidArgument, "rt_dir_create_all");
    expect_err(rt_dir_create_all(text("a\0b")), Code::InvalidArgument, "rt_dir_create_all");
    expect_err(rt_dir_create_all(NIL), Code::TypeMismatch, "rt_dir_create_all");
    fs::create_dir(d.join("full")).unwrap();
    fs::write(d.join("full/x"), "x").unwrap();
    let m = expect_err(rt_dir_remove(tp(&d.join("full"))), Code::Io, "rt_dir_remove");
    assert!(m.contains("not empty"), "{m}");
    expect_err(rt_dir_remove(tp(&f)), Code::InvalidArgument, "rt_dir_remove");
    expect_err(rt_dir_remove(tp(&d.join("missing"))), Code::NotFound, "rt_dir_remove");
    expect_err(rt_dir_remove(text("")), Code::InvalidArgument, "rt_dir_remove");
    expect_err(rt_dir_remove_all(tp(&f)), Code::InvalidArgument, "rt_dir_remove_all");
    expect_err(rt_dir_remove_all(tp(&d.join("missing"))), Code::NotFound, "rt_dir_remove_all");
    symlink(d.join("full"), d.join("link")).unwrap();
    expect_err(rt_dir_remove_all(tp(&d.join("link"))), Code::InvalidArgument, "rt_dir_remove_all");
    assert!(d.join("full/x").exists());
    expect_err(rt_dir_remove_all(text("\0")), Code::InvalidArgument, "rt_dir_remove_all");
    expect_err(rt_dir_remove_all(bytes(b"/x")), Code::TypeMismatch, "rt_dir_remove_all");
    assert!(f.exists());
}

#[test]
fn list_is_sorted_and_matches_ls() {
    let (_g, d) = tmp();
    tree(&d);
    let got = texts(ok(rt_dir_list(tp(&d.join("a")))));
    let (_, out) = sh(&format!("LC_ALL=C ls -A {}", d.join("a").display()));
    let want: Vec<String> = out.lines().map(str::to_string).collect();
    assert_eq!(got, want);
    assert_eq!(got[0], ".hidden");
    assert!(texts(ok(rt_dir_list(tp(&d.join("a/empty"))))).is_empty());
}

#[test]
fn list_bad_input() {
    let (_g, d) = tmp();
    tree(&d);
    expect_err(rt_dir_list(tp(&d.join("missing"))), Code::NotFound, "rt_dir_list");
    expect_err(rt_dir_list(tp(&d.join("a/x.txt"))), Code::InvalidArgument, "rt_dir_list");
    expect_err(rt_dir_list(text("")), Code::InvalidArgument, "rt_dir_list");
    expect_err(rt_dir_list(NIL), Code::TypeMismatch, "rt_dir_list");
    // A name that is not UTF-8 cannot become text: Error Parse, not a mangled name.
    use std::os::unix::ffi::OsStrExt;
    fs::write(d.join(std::ffi::OsStr::from_bytes(b"bad\xffname")), "x").unwrap();
    expect_err(rt_dir_list(tp(&d)), Code::Parse, "rt_dir_list");
}

#[test]
fn walk_is_deterministic_and_matches_find() {
    let (_g, d) = tmp();
    tree(&d);
    let root = d.join("a");
    let got = texts(ok(rt_dir_walk(tp(&root), NIL)));
    let (_, out) = sh(&format!("find {} -mindepth 1", root.display()));
    let mut want: Vec<String> = out.lines().map(str::to_string).collect();
    want = dfs_sorted(want);
    assert_eq!(got, want);
    assert_eq!(texts(ok(rt_dir_walk(tp(&root), NIL))), got, "same order twice");
    // Options.
    let files = texts(ok(rt_dir_walk(tp(&root), dict(&[("files_only", Value::TRUE)]))));
    let (_, out) = sh(&format!("find {} -type f", root.display()));
    assert_eq!(files, dfs_sorted(out.lines().map(str::to_string).collect()));
    let top = texts(ok(rt_dir_walk(tp(&root), dict(&[("max_depth", Value::int(1))]))));
    assert_eq!(top, texts(ok(rt_dir_list(tp(&root)))).iter().map(|n| format!("{}/{n}", root.display())).collect::<Vec<_>>());
}

#[test]
fn walk_does_not_follow_symlinked_dirs_by_default() {
    let (_g, d) = tmp();
    tree(&d);
    let root = d.join("a");
    symlink(d.join("a/b"), root.join("zlink")).unwrap();
    let got = texts(ok(rt_dir_walk(tp(&root), NIL)));
    let l = format!("{}/zlink", root.display());
    assert!(got.contains(&l));
    assert!(!got.iter().any(|p| p.starts_with(&format!("{l}/"))), "followed a link: {got:?}");
    let followed = texts(ok(rt_dir_walk(tp(&root), dict(&[("follow_links", Value::TRUE)]))));
    assert!(followed.contains(&format!("{l}/c/w.txt")));
    // A loop is an Error when followed (skipped with skip_errors), harmless otherwise.
    symlink(&root, root.join("b/loop")).unwrap();
    assert!(!ok(rt_dir_walk(tp(&root), NIL)).is_empty());
    let m = expect_err(rt_dir_walk(tp(&root), dict(&[("follow_links", Value::TRUE)])), Code::Io, "rt_dir_walk");
    assert!(m.contains("loop"), "{m}");
    ok(rt_dir_walk(tp(&root), dict(&[("follow_links", Value::TRUE), ("skip_errors", Value::TRUE)])));
}

#[test]
fn walk_survives_directories_disappearing() {
    let (_g, d) = tmp();
    let root = d.join("r");
    for i in 0..150 {
        let sub = root.join(format!("d{i:03}/inner"));
        fs::create_dir_all(&sub).unwrap();
        for j in 0..10 {
            fs::write(sub.join(format!("f{j}")), "x").unwrap();
        }
    }
    let remover = {
        let root = root.clone();
        std::thread::spawn(move || {
            for i in (0..150).rev() {
                fs::remove_dir_all(root.join(format!("d{i:03}"))).unwrap();
            }
        })
    };
    let mut walks = 0;
    while !remover.is_finished() {
        let v = ok(rt_dir_walk(tp(&root), NIL));
        let _ = v;
        walks += 1;
    }
    remover.join().unwrap();
    assert!(walks > 0);
    assert!(ok(rt_dir_walk(tp(&root), NIL)).is_empty());
}

#[test]
fn walk_bad_input() {
    let (_g, d) = tmp();
    tree(&d);
    expect_err(rt_dir_walk(tp(&d.join("missing")), NIL), Code::NotFound, "rt_dir_walk");
    expect_err(rt_dir_walk(tp(&d.join("a/x.txt")), NIL), Code::InvalidArgument, "rt_dir_walk");
    expect_err(rt_dir_walk(text(""), NIL), Code::InvalidArgument, "rt_dir_walk");
    expect_err(rt_dir_walk(int(2), NIL), Code::TypeMismatch, "rt_dir_walk");
    expect_err(rt_dir_walk(tp(&d), int(2)), Code::TypeMismatch, "rt_dir_walk");
    expect_err(rt_dir_walk(tp(&d), dict(&[("follow", Value::TRUE)])), Code::InvalidArgument, "rt_dir_walk");
    expect_err(rt_dir_walk(tp(&d), dict(&[("max_depth", Value::int(0))])), Code::InvalidArgument, "rt_dir_walk");
    expect_err(rt_dir_walk(tp(&d), dict(&[("files_only", Value::int(1))])), Code::InvalidArgument, "rt_dir_walk");
}

fn py_glob(pattern: &str) -> Vec<String> {
    let (rc, out) = sh(&format!(
        "python3 -c 'import glob,sys; print(\"\\n\".join(sorted(glob.glob(sys.argv[1], recursive=True))))' '{pattern}'"
    ));
    assert_eq!(rc, 0);
    out.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn glob_matches_python_glob() {
    let (_g, d) = tmp();
    tree(&d);
    fs::remove_file(d.join("a/.hidden")).unwrap();
    let r = d.display().to_string();
    for pat in ["a/*.txt", "a/?.txt", "a/[ab].txt", "a/[!a]*.txt", "a/**/*.txt", "a/*/z.txt", "a/b/c/w.txt", "a/nothing*"] {
        let full = format!("{r}/{pat}");
        let mut got = texts(ok(rt_glob(text(&full), NIL)));
        got.sort();
        assert_eq!(got, py_glob(&full), "{pat}");
    }
    // Options.
    let ci = texts(ok(rt_glob(text(&format!("{r}/a/b.TX?")), dict(&[("case_sensitive", Value::FALSE)]))));
    assert_eq!(ci, vec![format!("{r}/a/B.txt"), format!("{r}/a/b.txt")]);
    assert!(texts(ok(rt_glob(text(&format!("{r}/a/b.TX?")), NIL))).is_empty());
    fs::write(d.join("a/.dot.txt"), "x").unwrap();
    let all = texts(ok(rt_glob(text(&format!("{r}/a/*.txt")), NIL)));
    assert!(all.contains(&format!("{r}/a/.dot.txt")));
    let shell = texts(ok(rt_glob(text(&format!("{r}/a/*.txt")), dict(&[("literal_leading_dot", Value::TRUE)]))));
    assert!(!shell.contains(&format!("{r}/a/.dot.txt")));
}

#[test]
fn glob_bad_patterns_are_parse_errors_with_position() {
    for (pat, pos) in [("a/***", 4usize), ("a/[", 2), ("x/**b", 4)] {
        let v = rt_glob(text(pat), NIL);
        let m = expect_err(v, Code::Parse, "rt_glob");
        assert!(m.contains(&format!("position {pos}")), "{pat}: {m}");
    }
    expect_err(rt_glob(text(""), NIL), Code::InvalidArgument, "rt_glob");
    expect_err(rt_glob(text("a\0*"), NIL), Code::InvalidArgument, "rt_glob");
    expect_err(rt_glob(NIL, NIL), Code::TypeMismatch, "rt_glob");
    expect_err(rt_glob(text("*"), dict(&[("nope", Value::TRUE)])), Code::InvalidArgument, "rt_glob");
}

#[test]
fn literal_base_of_patterns() {
    for (p, b) in [("/srv/*/x", "/srv"), ("/*", "/"), ("a/b?/c", "a"), ("*.rs", "."), ("/a/b/c", "/a/b/c"), ("a/[x]", "a")] {
        assert_eq!(literal_base(p), Path::new(b), "{p}");
    }
}
