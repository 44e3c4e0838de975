//! Hand-made hostile archives (built with Python's tarfile, which writes
//! whatever TarInfo it is given): absolute names, `..`, symlink escapes,
//! writing through links, hard links outside, device files, huge declared
//! sizes, entry-count and size bombs. Each must be refused with an Error
//! naming the entry, and nothing outside the target may change.

mod common;
use common::*;
use ffi_archive::tar::*;
use ffi_sdk::testing::{err, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Python that writes one archive per case into argv[1]; argv[2] is an absolute path outside.
const BUILD: &str = r##"
import io, sys, tarfile, os
out, outside = sys.argv[1], sys.argv[2]
def mk(name, members, fmt=tarfile.GNU_FORMAT, mode="w"):
    with tarfile.open(os.path.join(out, name), mode, format=fmt) as t:
        for m in members:
            kind, n = m[0], m[1]
            ti = tarfile.TarInfo(n)
            ti.mtime = 1700000000
            data = None
            if kind == "file":
                body = m[2] if len(m) > 2 else b"payload\n"
                ti.size = len(body); data = io.BytesIO(body)
                if len(m) > 3: ti.mode = m[3]
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE; ti.mode = 0o755
            elif kind == "sym":
                ti.type = tarfile.SYMTYPE; ti.linkname = m[2]
            elif kind == "hard":
                ti.type = tarfile.LNKTYPE; ti.linkname = m[2]
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE; ti.devmajor = 1; ti.devminor = 3
            elif kind == "blk":
                ti.type = tarfile.BLKTYPE; ti.devmajor = 8; ti.devminor = 0
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            t.addfile(ti, data)
mk("absolute.tar", [("file", outside + "/abs-victim")])
mk("dotdot.tar", [("file", "ok.txt"), ("file", "../dotdot-victim")])
mk("dotdot-deep.tar", [("file", "a/b/../../../deep-victim")])
mk("dotdot-dir.tar", [("dir", "../evil-dir/")])
mk("sym-abs.tar", [("sym", "etc", "/etc"), ("file", "etc/sym-abs-victim")])
mk("sym-up.tar", [("sym", "up", "../"), ("file", "up/sym-up-victim")])
mk("sym-up-nested.tar", [("dir", "d/"), ("sym", "d/l", "../../x")])
mk("sym-then-file.tar", [("sym", "escape", outside), ("file", "escape/through-victim")], fmt=tarfile.PAX_FORMAT)
mk("sym-inside.tar", [("dir", "real/"), ("sym", "alias", "real"), ("file", "alias/inside.txt"), ("sym", "self", ".")])
mk("hard-abs.tar", [("hard", "h", outside + "/target.txt")])
mk("hard-up.tar", [("hard", "h", "../outside/target.txt")])
mk("hard-missing.tar", [("hard", "h", "never-extracted")])
mk("hard-ok.tar", [("file", "orig", b"same inode\n"), ("hard", "copy", "orig")])
mk("hard-then-write.tar", [("file", "orig", b"original\n"), ("hard", "copy", "orig"), ("file", "copy", b"replaced\n")])
mk("chr.tar", [("chr", "null-dev")])
mk("blk.tar", [("blk", "sda")])
mk("fifo.tar", [("fifo", "pipe")])
mk("setuid.tar", [("file", "suid", b"#!/bin/sh\n", 0o6755), ("file", "sticky", b"x", 0o1777)])
mk("count-bomb.tar", [("file", "f%05d" % i, b"") for i in range(3000)])
mk("size-bomb.tar.gz", [("file", "big%d" % i, b"\0" * (4 << 20)) for i in range(8)], mode="w:gz")
# Huge declared size, no data: GNU base-256 size field (1 TiB).
with open(os.path.join(out, "huge.tar"), "wb") as f:
    ti = tarfile.TarInfo("huge.bin"); ti.size = 1 << 40; ti.mtime = 1700000000
    f.write(ti.tobuf(tarfile.GNU_FORMAT)); f.write(b"\0" * 4096)
with open(os.path.join(out, "huge-pax.tar"), "wb") as f:
    ti = tarfile.TarInfo("huge-pax.bin"); ti.size = 1 << 50; ti.mtime = 1700000000
    f.write(ti.tobuf(tarfile.PAX_FORMAT)); f.write(b"\0" * 4096)
"##;

struct Lab {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cases: PathBuf,
    outside: PathBuf,
}

fn lab() -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let cases = root.join("cases");
    let outside = root.join("outside");
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("target.txt"), b"do not touch\n").unwrap();
    py(BUILD, &[&s(&cases), &s(&outside)]);
    Lab { _dir: dir, root, cases, outside }
}

/// Every path under `p` (relative), for before/after comparisons.
fn listing(p: &Path) -> Vec<String> {
    let out = sh(&format!("cd {} && find . | sort", s(p)));
    String::from_utf8(out).unwrap().lines().map(str::to_string).collect()
}

impl Lab {
    fn case(&self, name: &str) -> String {
        s(&self.cases.join(name))
    }
    /// Extracts `name` into a fresh target; expects an Error `code` naming `entry`;
    /// asserts nothing outside the target changed.
    fn refused(&self, name: &str, code: Code, entry: &str) -> String {
        let target = self.root.join(format!("t-{name}"));
        let before_root = listing(&self.root.join("outside"));
        let before_parent: Vec<String> = listing(&self.root).into_iter().filter(|l| !l.starts_with(&format!("./t-{name}"))).collect();
        let (c, msg) = err(rt_tar_extract(text(&self.case(name)), text(&s(&target)), NIL));
        assert_eq!(c, code, "{name}: {msg}");
        assert!(msg.starts_with("rt_tar_extract: "), "{msg}");
        assert!(msg.contains(entry), "{name}: message should name {entry:?}: {msg}");
        assert_eq!(listing(&self.root.join("outside")), before_root, "{name} changed the outside dir");
        let after_parent: Vec<String> = listing(&self.root).into_iter().filter(|l| !l.starts_with(&format!("./t-{name}"))).collect();
        assert_eq!(after_parent, before_parent, "{name} wrote beside the target");
        assert_eq!(std::fs::read(self.outside.join("target.txt")).unwrap(), b"do not touch\n");
        msg
    }
}

#[test]
fn absolute_and_dotdot_names_are_refused() {
    let l = lab();
    l.refused("absolute.tar", Code::InvalidArgument, "abs-victim");
    assert!(!l.outside.join("abs-victim").exists());
    let msg = l.refused("dotdot.tar", Code::InvalidArgument, "../dotdot-victim");
    assert!(msg.contains(".."), "{msg}");
    // Entries before the bad one were extracted inside the target.
    assert!(l.root.join("t-dotdot.tar/ok.txt").exists());
    l.refused("dotdot-deep.tar", Code::InvalidArgument, "deep-victim");
    l.refused("dotdot-dir.tar", Code::InvalidArgument, "evil-dir");
    // Listing such archives is fine (it writes nothing) and shows the names as they are.
    let names: Vec<String> = ok(rt_tar_list(text(&l.case("dotdot.tar")), NIL)).items().map(|d| d.get("name").as_text().unwrap().to_string()).collect();
    assert_eq!(names, ["ok.txt", "../dotdot-victim"]);
}

#[test]
fn symlinks_leading_outside_are_refused() {
    let l = lab();
    l.refused("sym-abs.tar", Code::InvalidArgument, "etc");
    l.refused("sym-up.tar", Code::InvalidArgument, "up");
    l.refused("sym-up-nested.tar", Code::InvalidArgument, "d/l");
    let msg = l.refused("sym-then-file.tar", Code::InvalidArgument, "escape");
    assert!(msg.contains("absolute"), "{msg}");
    assert!(!l.outside.join("through-victim").exists());
    // Links that stay inside work, and files can be written through them.
    let t = l.root.join("t-inside");
    ok(rt_tar_extract(text(&l.case("sym-inside.tar")), text(&s(&t)), NIL));
    assert_eq!(std::fs::read(t.join("real/inside.txt")).unwrap(), b"payload\n");
    assert_eq!(std::fs::read_link(t.join("alias")).unwrap(), Path::new("real"));
}

#[test]
fn preexisting_links_in_the_target_are_never_written_through() {
    let l = lab();
    // The target already holds a symlinked directory pointing outside: a file under it is refused.
    let t = l.root.join("t-pre");
    std::fs::create_dir_all(&t).unwrap();
    std::os::unix::fs::symlink(&l.outside, t.join("escape")).unwrap();
    let ar = l.root.join("pre.tar");
    py(
        "import io, sys, tarfile\nwith tarfile.open(sys.argv[1], 'w') as t:\n    for n in ['escape/through.txt', 'victim']:\n        ti = tarfile.TarInfo(n); b = b'evil\\n'; ti.size = len(b); t.addfile(ti, io.BytesIO(b))",
        &[&s(&ar)],
    );
    let (code, msg) = err(rt_tar_extract(text(&s(&ar)), text(&s(&t)), NIL));
    assert_eq!(code, Code::InvalidArgument, "{msg}");
    assert!(msg.contains("escape/through.txt") && msg.contains("outside the target"), "{msg}");
    assert!(!l.outside.join("through.txt").exists());
    // A file whose own name is a symlink to an outside file: the link is replaced, the outside file untouched.
    std::fs::remove_file(t.join("escape")).unwrap();
    std::os::unix::fs::symlink(l.outside.join("target.txt"), t.join("victim")).unwrap();
    std::fs::create_dir_all(t.join("escape")).unwrap();
    ok(rt_tar_extract(text(&s(&ar)), text(&s(&t)), NIL));
    assert_eq!(std::fs::read(l.outside.join("target.txt")).unwrap(), b"do not touch\n");
    assert!(!std::fs::symlink_metadata(t.join("victim")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(t.join("victim")).unwrap(), b"evil\n");
}

#[test]
fn hard_links_outside_are_refused() {
    let l = lab();
    l.refused("hard-abs.tar", Code::InvalidArgument, "\"h\"");
    l.refused("hard-up.tar", Code::InvalidArgument, "\"h\"");
    l.refused("hard-missing.tar", Code::NotFound, "\"h\"");
    // Inside: a real hard link.
    let t = l.root.join("t-hard");
    ok(rt_tar_extract(text(&l.case("hard-ok.tar")), text(&s(&t)), NIL));
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(t.join("orig")).unwrap().ino(), std::fs::metadata(t.join("copy")).unwrap().ino());
    // A later file entry with the link's name replaces the link, not the linked file.
    let t = l.root.join("t-hard-write");
    ok(rt_tar_extract(text(&l.case("hard-then-write.tar")), text(&s(&t)), NIL));
    assert_eq!(std::fs::read(t.join("orig")).unwrap(), b"original\n");
    assert_eq!(std::fs::read(t.join("copy")).unwrap(), b"replaced\n");
    // A hard link to a pre-existing symlink that points outside is refused.
    let t = l.root.join("t-hard-sym");
    std::fs::create_dir_all(&t).unwrap();
    std::os::unix::fs::symlink(l.outside.join("target.txt"), t.join("never-extracted")).unwrap();
    let (code, msg) = err(rt_tar_extract(text(&l.case("hard-missing.tar")), text(&s(&t)), NIL));
    assert_eq!(code, Code::InvalidArgument, "{msg}");
}

#[test]
fn devices_and_fifos_are_refused_and_setuid_dropped() {
    let l = lab();
    l.refused("chr.tar", Code::Unsupported, "null-dev");
    l.refused("blk.tar", Code::Unsupported, "sda");
    l.refused("fifo.tar", Code::Unsupported, "pipe");
    assert!(!l.root.join("t-fifo.tar/pipe").exists());
    let t = l.root.join("t-suid");
    ok(rt_tar_extract(text(&l.case("setuid.tar")), text(&s(&t)), NIL));
    assert_eq!(std::fs::metadata(t.join("suid")).unwrap().permissions().mode() & 0o7777, 0o755);
    assert_eq!(std::fs::metadata(t.join("sticky")).unwrap().permissions().mode() & 0o7777, 0o777);
    // Listing reports the archive's bits as they are.
    let modes: Vec<i64> = ok(rt_tar_list(text(&l.case("setuid.tar")), NIL)).items().map(|d| d.get("mode").as_int().unwrap()).collect();
    assert_eq!(modes, [0o6755, 0o1777]);
}

#[test]
fn huge_declared_sizes_are_refused_before_writing() {
    let l = lab();
    let t0 = std::time::Instant::now();
    let msg = l.refused("huge.tar", Code::LimitExceeded, "huge.bin");
    assert!(msg.contains("max_size"), "{msg}");
    assert!(!l.root.join("t-huge.tar/huge.bin").exists());
    l.refused("huge-pax.tar", Code::LimitExceeded, "huge-pax.bin");
    assert!(t0.elapsed().as_secs() < 10);
    // With a limit above the declared size the archive is simply truncated: Parse, and no half file.
    let t = l.root.join("t-huge-raised");
    let (code, msg) = err(rt_tar_extract(
        text(&l.case("huge.tar")),
        text(&s(&t)),
        opts(&[("max_size", Value::int(1 << 41))]),
    ));
    assert_eq!(code, Code::Parse, "{msg}");
    assert!(msg.contains("huge.bin"), "{msg}");
    assert!(!t.join("huge.bin").exists(), "half-written file removed");
    // Listing reads past the data too: the archive is truncated (Parse, naming the entry).
    let (code, msg) = err(rt_tar_list(text(&l.case("huge.tar")), NIL));
    assert_eq!(code, Code::Parse, "{msg}");
    assert!(msg.contains("huge.bin"), "{msg}");
}

#[test]
fn entry_count_and_total_size_bombs() {
    let l = lab();
    let t = l.root.join("t-count");
    let (code, msg) = err(rt_tar_extract(text(&l.case("count-bomb.tar")), text(&s(&t)), opts(&[("max_entries", Value::int(1000))])));
    assert_eq!(code, Code::LimitExceeded, "{msg}");
    assert!(msg.contains("f01000"), "names the first entry past the limit: {msg}");
    assert_eq!(std::fs::read_dir(&t).unwrap().count(), 1000);
    let (code, _) = err(rt_tar_list(text(&l.case("count-bomb.tar")), opts(&[("max_entries", Value::int(10))])));
    assert_eq!(code, Code::LimitExceeded);
    ok(rt_tar_extract(text(&l.case("count-bomb.tar")), text(&s(&l.root.join("t-count-ok"))), NIL));
    // 32 MiB of zeros in a ~33 KiB .tar.gz, limit 10 MiB: stops at the third file, which is not created.
    let t = l.root.join("t-size");
    let (code, msg) = err(rt_tar_extract(text(&l.case("size-bomb.tar.gz")), text(&s(&t)), opts(&[("max_size", Value::int(10 << 20))])));
    assert_eq!(code, Code::LimitExceeded, "{msg}");
    assert!(msg.contains("big2"), "{msg}");
    assert!(t.join("big1").exists() && !t.join("big2").exists());
}
