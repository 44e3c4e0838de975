//! Escapes through symlinks and hard links (issue 9): extraction acts on
//! descriptors from the target, so a link inside it (there before, or
//! swapped in while extracting) cannot redirect a write; archive creation
//! and file-to-file outputs resolve their paths through the policy.
//! Tests that narrow the policy run in a child process.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;
use common::*;
use ffi_archive::gzip::rt_gzip_compress_file;
use ffi_archive::tar::*;
use ffi_sdk::testing::{err, in_child, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Every entry under `p`: relative path, kind, content (files) or link target.
fn tree(p: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let q = e.unwrap().path();
            let rel = q.strip_prefix(p).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&q).unwrap();
            if m.file_type().is_symlink() {
                out.push((rel, "link".into(), std::fs::read_link(&q).unwrap().into_os_string().into_encoded_bytes()));
            } else if m.is_dir() {
                out.push((rel, "dir".into(), Vec::new()));
                stack.push(q);
            } else {
                out.push((rel, "file".into(), std::fs::read(&q).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A canonical temporary root with `outside/` holding one file.
fn lab() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let g = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(g.path()).unwrap();
    let outside = root.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep.txt"), b"do not touch\n").unwrap();
    (g, root, outside)
}

/// Writes a plain tar of `members` (name, data; a name ending in `/` is a directory) with Python.
fn archive(path: &Path, members: &[(String, Vec<u8>)]) {
    let list = path.with_extension("list");
    let mut spec = Vec::new();
    for (n, d) in members {
        spec.extend_from_slice(format!("{}\t{}\n", n, d.len()).as_bytes());
    }
    std::fs::write(&list, spec).unwrap();
    let blob = path.with_extension("blob");
    std::fs::write(&blob, members.iter().flat_map(|(_, d)| d.clone()).collect::<Vec<u8>>()).unwrap();
    py(
        "import io, sys, tarfile\n\
         blob = open(sys.argv[3], 'rb').read(); pos = 0\n\
         with tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT) as t:\n\
         \x20   for line in open(sys.argv[2]).read().splitlines():\n\
         \x20       n, k = line.split('\\t'); k = int(k)\n\
         \x20       ti = tarfile.TarInfo(n); ti.mtime = 1700000000\n\
         \x20       if n.endswith('/'):\n\
         \x20           ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)\n\
         \x20       else:\n\
         \x20           ti.size = k; t.addfile(ti, io.BytesIO(blob[pos:pos + k])); pos += k\n",
        &[&s(path), &s(&list), &s(&blob)],
    );
}

#[test]
fn a_preexisting_symlinked_parent_never_leads_outside() {
    let (_g, root, outside) = lab();
    let before = tree(&outside);
    let ar = root.join("a.tar");
    archive(&ar, &[("sub/x".into(), b"evil\n".to_vec())]);
    let ar_rel = root.join("r.tar");
    archive(&ar_rel, &[("rel/y".into(), b"evil\n".to_vec())]);
    let ar_deep = root.join("d.tar");
    archive(&ar_deep, &[("in/z".into(), b"evil\n".to_vec())]);
    for (i, (ar, name, link)) in [
        (&ar, "sub", s(&outside)),        // absolute, outside
        (&ar_rel, "rel", "../outside".into()), // relative, `..` past the target
        (&ar_deep, "in", "a/../../outside".into()), // through a real directory, then out
    ]
    .into_iter()
    .enumerate()
    {
        let t = root.join(format!("t{i}"));
        std::fs::create_dir_all(t.join("a")).unwrap();
        symlink(&link, t.join(name)).unwrap();
        let (code, msg) = err(rt_tar_extract(text(&s(ar)), text(&s(&t)), NIL));
        assert_eq!(code, Code::InvalidArgument, "{msg}");
        assert!(msg.contains("outside the target"), "{msg}");
        assert_eq!(tree(&outside), before, "{name} -> {link} wrote outside");
        // The link is still a link: nothing replaced it, nothing was written through it.
        assert!(std::fs::symlink_metadata(t.join(name)).unwrap().file_type().is_symlink());
    }
    // An absolute link that names a place inside the target is followed (the old rule).
    let t = root.join("t-in");
    std::fs::create_dir_all(t.join("real")).unwrap();
    symlink(t.join("real"), t.join("sub")).unwrap();
    ok(rt_tar_extract(text(&s(&ar)), text(&s(&t)), NIL));
    assert_eq!(std::fs::read(t.join("real/x")).unwrap(), b"evil\n");
}

/// renameat2(RENAME_EXCHANGE): swaps two names atomically.
fn exchange(a: &Path, b: &Path) -> bool {
    let ca = std::ffi::CString::new(s(a)).unwrap();
    let cb = std::ffi::CString::new(s(b)).unwrap();
    // SAFETY: raw renameat2 with the argument list the kernel expects (dirfd, path, dirfd,
    // path, flags); `ca` and `cb` are NUL-terminated CStrings alive until the function returns.
    let r = unsafe {
        libc::syscall(libc::SYS_renameat2, libc::AT_FDCWD, ca.as_ptr(), libc::AT_FDCWD, cb.as_ptr(), libc::RENAME_EXCHANGE)
    };
    r == 0
}

#[test]
fn b_a_directory_swapped_for_a_symlink_while_extracting_never_leads_outside() {
    let (_g, root, outside) = lab();
    std::fs::create_dir_all(outside.join("s")).unwrap();
    let before = tree(&outside);
    // Many files under d/ (and d/s/), so the swap lands between entries and within walks.
    let mut members: Vec<(String, Vec<u8>)> = vec![("d/".into(), Vec::new()), ("d/s/".into(), Vec::new())];
    for i in 0..150 {
        members.push((format!("d/f{i:03}"), format!("file {i}\n").into_bytes()));
        members.push((format!("d/s/g{i:03}"), format!("deep {i}\n").into_bytes()));
    }
    let ar = root.join("race.tar");
    archive(&ar, &members);
    let mut outcomes = (0, 0);
    for round in 0..40 {
        let t = root.join(format!("t{round}"));
        std::fs::create_dir_all(t.join("d/s")).unwrap();
        // t/swap -> outside (absolute) or ../outside (relative), exchanged with the real t/d in a tight loop.
        if round % 2 == 0 {
            symlink(&outside, t.join("swap")).unwrap();
        } else {
            symlink("../outside", t.join("swap")).unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (d, sw, st) = (t.join("d"), t.join("swap"), stop.clone());
        let racer = std::thread::spawn(move || {
            let mut n = 0u64;
            while !st.load(Ordering::Relaxed) {
                if exchange(&d, &sw) {
                    n += 1;
                }
            }
            n
        });
        let r = rt_tar_extract(text(&s(&ar)), text(&s(&t)), NIL);
        stop.store(true, Ordering::Relaxed);
        let swaps = racer.join().unwrap();
        assert!(swaps > 0, "the racer never swapped");
        match ffi_sdk::Value::from_raw(r).error() {
            None => outcomes.0 += 1,
            Some((code, msg)) => {
                outcomes.1 += 1;
                assert!(msg.starts_with("rt_tar_extract: "), "{msg}");
                assert_ne!(code, Code::Panic, "{msg}");
            }
        }
        let after = tree(&outside);
        if after != before {
            let new: Vec<&String> = after.iter().filter(|e| !before.contains(e)).map(|e| &e.0).take(5).collect();
            panic!("round {round}: the outside tree changed ({} entries before, {} after; new: {new:?}...)", before.len(), after.len());
        }
    }
    eprintln!("race: {} extractions completed, {} refused", outcomes.0, outcomes.1);
}

#[test]
fn c_scoped_policy_links_and_hard_links() {
    in_child("c_scoped_policy_links_and_hard_links", || {
        let (_g, root, outside) = lab();
        let allowed = root.join("allowed");
        let src = allowed.join("src");
        let out = allowed.join("out");
        std::fs::create_dir_all(src.join("d")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(src.join("d/a.txt"), b"inside\n").unwrap();
        std::fs::write(root.join("secret.txt"), b"secret\n").unwrap();
        symlink(&outside, src.join("ldir")).unwrap();
        symlink(root.join("secret.txt"), src.join("lfile")).unwrap();
        // A file outside, and a hard link to it inside the writable scope.
        std::fs::write(outside.join("victim.gz"), b"outside content\n").unwrap();
        std::fs::hard_link(outside.join("victim.gz"), out.join("hl.gz")).unwrap();
        std::fs::hard_link(outside.join("victim.gz"), out.join("hl.tar")).unwrap();
        let before = tree(&outside);
        restrict(&format!("fs.read={};fs.write={}", s(&allowed), s(&out)));

        // Following links out of fs.read: denied, and no archive is left.
        let follow = opts(&[("follow_symlinks", Value::TRUE)]);
        let (code, msg) = err(rt_tar_create(text(&s(&out.join("f.tar"))), text(&s(&src)), follow));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        assert!(msg.contains("needs fs.read"), "{msg}");
        assert!(!out.join("f.tar").exists());
        let only_file = Value::text_array([s(&src.join("lfile"))]);
        let (code, msg) = err(rt_tar_create(text(&s(&out.join("f.tar"))), only_file.raw(), follow));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        // Without follow the links are stored as links (their text is inside the scope).
        ok(rt_tar_create(text(&s(&out.join("n.tar"))), text(&s(&src)), NIL));
        let l = ok(rt_tar_list(text(&s(&out.join("n.tar"))), NIL));
        let kinds: Vec<(String, String)> =
            l.items().map(|d| (d.get("name").as_text().unwrap().to_string(), d.get("type").as_text().unwrap().to_string())).collect();
        assert!(kinds.contains(&("ldir".into(), "symlink".into())), "{kinds:?}");
        assert!(kinds.contains(&("lfile".into(), "symlink".into())), "{kinds:?}");
        assert!(!kinds.iter().any(|(n, _)| n.contains("keep.txt")), "{kinds:?}");

        // A destination that is a hard link to a file outside: refused, both names untouched.
        let (code, msg) = err(rt_gzip_compress_file(text(&s(&src.join("d/a.txt"))), text(&s(&out.join("hl.gz"))), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        assert!(msg.contains("hard link"), "{msg}");
        let (code, msg) = err(rt_tar_create(text(&s(&out.join("hl.tar"))), text(&s(&src)), NIL));
        assert_eq!(code, Code::CapabilityDenied, "{msg}");
        assert_eq!(std::fs::metadata(out.join("hl.gz")).unwrap().nlink(), 3);
        assert_eq!(std::fs::read(out.join("hl.gz")).unwrap(), b"outside content\n");
        let leftovers: Vec<_> =
            std::fs::read_dir(&out).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(tree(&outside), before);
    });
}

#[test]
fn c_deny_sub_scope_inside_the_target_holds_against_links() {
    in_child("c_deny_sub_scope_inside_the_target_holds_against_links", || {
        let (_g, root, _outside) = lab();
        let t = root.join("t");
        std::fs::create_dir_all(t.join("secret")).unwrap();
        std::fs::create_dir_all(t.join("open")).unwrap();
        // Links inside the target into its denied part.
        symlink("secret", t.join("rel")).unwrap();
        symlink(t.join("secret"), t.join("abs")).unwrap();
        let ar = root.join("a.tar");
        archive(&ar, &[("open/ok.txt".into(), b"fine\n".to_vec()), ("rel/x".into(), b"no\n".to_vec())]);
        let ar2 = root.join("b.tar");
        archive(&ar2, &[("abs/y".into(), b"no\n".to_vec())]);
        let ar3 = root.join("c.tar");
        archive(&ar3, &[("secret/z".into(), b"no\n".to_vec())]);
        restrict(&format!("fs.read={};fs.write={},!{}", s(&root), s(&t), s(&t.join("secret"))));
        for a in [&ar, &ar2, &ar3] {
            let (code, msg) = err(rt_tar_extract(text(&s(a)), text(&s(&t)), NIL));
            assert_eq!(code, Code::CapabilityDenied, "{msg}");
            assert!(msg.contains(&s(&t.join("secret"))), "checked on the real location: {msg}");
        }
        assert_eq!(std::fs::read(t.join("open/ok.txt")).unwrap(), b"fine\n");
        assert_eq!(std::fs::read_dir(t.join("secret")).unwrap().count(), 0, "nothing written in the denied sub-scope");
    });
}

#[test]
fn d_trailing_slash_and_dot_spellings() {
    let (_g, root, outside) = lab();
    let before = tree(&outside);
    let ar = root.join("a.tar");
    archive(&ar, &[("f.txt".into(), b"hello\n".to_vec())]);
    // The target: `t/.`, `t//`, `t/./` all name t.
    for (i, suffix) in ["/.", "//", "/./", "/.//."].iter().enumerate() {
        let t = root.join(format!("t{i}"));
        ok(rt_tar_extract(text(&s(&ar)), text(&format!("{}{suffix}", s(&t))), NIL));
        assert_eq!(std::fs::read(t.join("f.txt")).unwrap(), b"hello\n", "{suffix}");
    }
    // Outputs: doubled slashes are fine; a name ending in `/` or `/.` names a directory: refused, nothing made.
    let src = root.join("src.txt");
    std::fs::write(&src, b"data\n").unwrap();
    let o = root.join("o");
    std::fs::create_dir_all(&o).unwrap();
    ok(rt_gzip_compress_file(text(&s(&src)), text(&format!("{}//x.gz", s(&o))), NIL));
    ok(rt_gzip_compress_file(text(&s(&src)), text(&format!("{}/./y.gz", s(&o))), NIL));
    assert!(o.join("x.gz").is_file() && o.join("y.gz").is_file());
    for bad in ["z.gz/", "z.gz/.", "z.gz//"] {
        let (code, msg) = err(rt_gzip_compress_file(text(&s(&src)), text(&format!("{}/{bad}", s(&o))), NIL));
        assert_eq!(code, Code::InvalidArgument, "{bad}: {msg}");
        let (code, msg) = err(rt_tar_create(text(&format!("{}/{bad}", s(&o))), text(&s(&src)), NIL));
        assert_eq!(code, Code::InvalidArgument, "{bad}: {msg}");
    }
    assert!(!o.join("z.gz").exists());
    // A symlinked target spelled `link/.`: followed (it names the directory), like mkdir -p.
    let real = root.join("real");
    std::fs::create_dir_all(&real).unwrap();
    symlink(&real, root.join("lt")).unwrap();
    ok(rt_tar_extract(text(&s(&ar)), text(&format!("{}/.", s(&root.join("lt")))), NIL));
    assert!(real.join("f.txt").is_file());
    assert_eq!(tree(&outside), before);
}

#[test]
fn d_scoped_trailing_spellings_do_not_escape() {
    in_child("d_scoped_trailing_spellings_do_not_escape", || {
        let (_g, root, outside) = lab();
        let allowed = root.join("allowed");
        std::fs::create_dir_all(&allowed).unwrap();
        symlink(&outside, allowed.join("lout")).unwrap();
        std::fs::write(allowed.join("src.txt"), b"data\n").unwrap();
        let ar = allowed.join("a.tar");
        archive(&ar, &[("f.txt".into(), b"hello\n".to_vec())]);
        let before = tree(&outside);
        restrict(&format!("fs.read={a};fs.write={a}", a = s(&allowed)));
        for suffix in ["/.", "//", "/./", ""] {
            let target = format!("{}{suffix}", s(&allowed.join("lout")));
            let (code, msg) = err(rt_tar_extract(text(&s(&ar)), text(&target), NIL));
            assert_eq!(code, Code::CapabilityDenied, "{target}: {msg}");
            let (code, msg) = err(rt_gzip_compress_file(text(&s(&allowed.join("src.txt"))), text(&format!("{target}/x.gz")), NIL));
            assert_eq!(code, Code::CapabilityDenied, "{target}: {msg}");
        }
        // Inside the scope every spelling works.
        for (i, suffix) in ["/.", "//", "/./"].iter().enumerate() {
            let t = allowed.join(format!("t{i}"));
            ok(rt_tar_extract(text(&s(&ar)), text(&format!("{}{suffix}", s(&t))), NIL));
            assert!(t.join("f.txt").is_file());
        }
        ok(rt_gzip_compress_file(text(&s(&allowed.join("src.txt"))), text(&format!("{}//./x.gz", s(&allowed))), NIL));
        assert_eq!(tree(&outside), before);
    });
}

#[test]
fn b_a_source_directory_swapped_for_a_symlink_while_archiving_never_reads_outside() {
    let (_g, root, outside) = lab();
    let src = root.join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    for i in 0..100 {
        // Same sizes inside and out: a size check alone cannot notice a swap.
        std::fs::write(src.join(format!("d/f{i:03}")), format!("inside {i:03}\n")).unwrap();
        std::fs::write(outside.join(format!("f{i:03}")), format!("SECRET {i:03}\n")).unwrap();
    }
    symlink(&outside, src.join("swap")).unwrap();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let mut outcomes = (0, 0);
    for round in 0..30 {
        let ar = out.join(format!("a{round}.tar"));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, sw, st) = (src.join("d"), src.join("swap"), stop.clone());
        let racer = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                exchange(&d, &sw);
            }
        });
        let r = rt_tar_create(text(&s(&ar)), text(&s(&src)), NIL);
        stop.store(true, Ordering::Relaxed);
        racer.join().unwrap();
        // Leave the tree as it was for the next round.
        if std::fs::symlink_metadata(src.join("d")).unwrap().file_type().is_symlink() {
            assert!(exchange(&src.join("d"), &src.join("swap")));
        }
        match ffi_sdk::Value::from_raw(r).error() {
            None => {
                outcomes.0 += 1;
                let all = sh(&format!("tar -xOf {} 2>/dev/null || true", s(&ar)));
                assert!(!String::from_utf8_lossy(&all).contains("SECRET"), "round {round}: outside content archived");
            }
            Some((code, msg)) => {
                outcomes.1 += 1;
                assert_ne!(code, Code::Panic, "{msg}");
                assert!(!ar.exists(), "no archive left after a failure");
            }
        }
    }
    eprintln!("create race: {} archives written, {} refused", outcomes.0, outcomes.1);
}
