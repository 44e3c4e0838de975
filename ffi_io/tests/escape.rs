//! Escapes from a scoped file system policy (issue 9, sections 1 and 2).
//!
//! Fixture (one temp root T, canonical):
//!
//! ```text
//! T/F                         "OUTSIDE F"          (a file outside the scope)
//! T/O/{o_secret.txt, f, o_sub/{o_deep.txt, o_empty/}, o_empty/}   (a tree outside)
//! T/D/                        the scope: fs.read=D;fs.write=D
//!     a.txt, sub/b.txt
//!     and, in D and again in D/sub:
//!     link_dir      -> T/O            (to a dir outside)
//!     link_file     -> T/F            (to a file outside)
//!     link_dangling -> T/O/o_missing  (dangling, pointing outside)
//!     link_rel      -> ../O  (../../O in sub)   (relative)
//!     link_chain    -> link_chain2 -> T/O       (chained)
//! ```
//!
//! Every outside file holds the marker `OUTSIDE`; every outside name starts
//! with `o_`. After every call the outside tree (everything under T but D:
//! names, kinds, modes, mtimes, inodes, contents, link targets) is compared
//! with its snapshot from before the call, so a write, a removal, a created
//! entry or a temp file made and removed outside all show.
//!
//! What is asserted:
//! - the matrix (`matrix_*`): every ffi_io function that takes a path ×
//!   each kind of link × each base (D/link, D/sub/link, relative to a
//!   working directory D, /proc/self/root, /proc/thread-self/root,
//!   /proc/self/fd/N of D, /proc/self/fd/N of O) × each suffix (`""`, `/`,
//!   `/.`, `//`, `/./`, `/..`) and names below the link. Every spelling
//!   resolves outside D, so a function that follows the final link must
//!   answer CapabilityDenied; one that acts on the final name (delete,
//!   mkdir, rmdir, remove_all) may act on the link itself (it is in D) or
//!   fail with its own error (InvalidArgument, AlreadyExists...). Nothing
//!   outside may change, no result may carry outside content or names.
//! - the report's case (`issue_*`): rt_dir_remove_all("D/link_dir/") and
//!   other spellings leave O intact, scoped and under allow-all.
//! - races (`race_*`): another thread swaps a directory of D for a symlink
//!   to O in a loop while the functions run; O stays byte-identical and no
//!   read returns O's content.
//! - hard links (`hardlink_*`, section 2): a hard link in D to a file
//!   outside is refused for writing under a scoped fs.write unless
//!   fs.hardlink is granted, readable, deletable.
//!
//! Every test that narrows the policy runs in a child process (`in_child`).

mod common;
#[path = "../../tests/src/escape_tree.rs"]
mod escape_tree;
use escape_tree::*;
use common::*;
use ffi_io::{dir::*, file::*, glob::*, lock::*, mmap::*, path::*};
use ffi_sdk::testing::{in_child, restrict};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

extern "C" {
    fn rt_cap_check(cap: RtValue, resource: RtValue) -> RtValue;
    fn rt_cap_current() -> RtValue;
    fn rt_cap_parse(text: RtValue) -> RtValue;
    fn rt_cap_restrict(policy: RtValue) -> RtValue;
}

/// In every outside file's content.
const MARK: &str = "OUTSIDE";

/// (label, link name) of each kind of inner symlink (in D and in D/sub).
const KINDS: [(&str, &str); 5] = [
    ("link to a dir outside", "link_dir"),
    ("link to a file outside", "link_file"),
    ("dangling link (outside, missing)", "link_dangling"),
    ("relative link ../O", "link_rel"),
    ("chained link l1 -> l2 -> O", "link_chain"),
];

/// Suffixes after the link; all but `/..` name the link itself.
const SUFFIXES: [&str; 6] = ["", "/", "/.", "//", "/./", "/.."];

/// Names below the link (they exist in O, or would be created there).
const CHILDREN: [&str; 8] = ["/o_secret.txt", "/f", "/o_new", "/o_new/deeper", "/o_sub", "/o_sub/", "/o_sub/.", "/o_sub/o_deep.txt"];

// ---------------------------------------------------------------- fixture

struct Fx {
    _g: tempfile::TempDir,
    root: PathBuf,
    d: PathBuf,
    o: PathBuf,
    f: PathBuf,
    /// Snapshot of D as built (to rebuild it only when a call changed it).
    pristine: std::cell::RefCell<Vec<String>>,
}

/// A canonical temporary directory, on tmpfs (/dev/shm) where there is one:
/// creating and removing entries there is ~15x faster than on a disk,
/// which lets the race loops run many more iterations in their time.
fn fast_tmp() -> (tempfile::TempDir, PathBuf) {
    if let Ok(g) = tempfile::tempdir_in("/dev/shm") {
        let p = fs::canonicalize(g.path()).expect("canonical tempdir");
        return (g, p);
    }
    tmp()
}

impl Fx {
    fn new() -> Fx {
        let (g, root) = fast_tmp();
        let fx = Fx { d: root.join("D"), o: root.join("O"), f: root.join("F"), root, _g: g, pristine: Default::default() };
        fs::create_dir(&fx.d).unwrap();
        fx.build_outside();
        fx.reset_inside();
        fx
    }

    /// fs.read and fs.write scoped to D.
    fn scope(&self) {
        let d = self.d.display();
        restrict(&format!("fs.read={d};fs.write={d}"));
    }

    fn build_outside(&self) {
        fs::create_dir_all(self.o.join("o_sub/o_empty")).unwrap();
        fs::create_dir_all(self.o.join("o_empty")).unwrap();
        fs::write(self.o.join("o_secret.txt"), "OUTSIDE secret").unwrap();
        fs::write(self.o.join("f"), "OUTSIDE f").unwrap();
        fs::write(self.o.join("o_sub/o_deep.txt"), "OUTSIDE deep").unwrap();
        fs::write(&self.f, "OUTSIDE F").unwrap();
    }

    /// Puts the outside back after a failure (so later cases are judged alone).
    fn rebuild_outside(&self) {
        for e in fs::read_dir(&self.root).unwrap() {
            let p = e.unwrap().path();
            if p != self.d {
                remove_any(&p);
            }
        }
        self.build_outside();
    }

    /// Empties D (D itself stays: the working directory and descriptors on it stay valid) and rebuilds it.
    fn reset_inside(&self) {
        for e in fs::read_dir(&self.d).unwrap() {
            remove_any(&e.unwrap().path());
        }
        fill_scope(&self.d, &self.o, &self.f);
        *self.pristine.borrow_mut() = self.inside();
    }

    /// Everything under D (as for the outside).
    fn inside(&self) -> Vec<String> {
        tree(&self.d)
    }

    /// Rebuilds D when a call changed anything in it (symlink creation is slow on some disks).
    fn restore_inside(&self) {
        if self.inside() != *self.pristine.borrow() {
            self.reset_inside();
        }
    }

    /// Everything under T but D, sorted (see the module docs).
    fn outside(&self) -> Vec<String> {
        outside(&self.root, &self.d)
    }
}

/// Every text and bytes inside a value (arrays and dicts walked), joined.
fn flat(v: Value, out: &mut Vec<u8>) {
    use ffi_sdk::abi::Kind;
    match v.kind() {
        Kind::String | Kind::Bytes => {
            out.extend_from_slice(v.as_text_or_bytes().unwrap_or(b""));
            out.push(b'\n');
        }
        Kind::Array => v.items().for_each(|x| flat(x, out)),
        Kind::Dict => v.entries().for_each(|(k, x)| {
            flat(k, out);
            flat(x, out)
        }),
        _ => {}
    }
}

/// Whether a result carries anything from outside: content (the marker) or
/// an outside name (`o_...`) below a path.
fn leaks(v: Value) -> Option<String> {
    let mut b = Vec::new();
    flat(v, &mut b);
    let t = String::from_utf8_lossy(&b);
    if t.contains(MARK) || t.contains("/o_") {
        Some(t.chars().take(300).collect())
    } else {
        None
    }
}

/// Closes a handle result (locks, maps) so nothing stays open between cases.
fn settle(v: RtValue) {
    if Value::from_raw(v).kind() == ffi_sdk::abi::Kind::Handle {
        rt_handle_close(v);
    }
}

fn is_ok(v: RtValue) -> bool {
    !Value::from_raw(v).is_error()
}

/// Codes that are never a proper answer to a path (a bug, whatever the path).
fn broken(c: Code) -> bool {
    matches!(c, Code::Panic | Code::Internal | Code::TypeMismatch)
}

// ---------------------------------------------------------------- the matrix

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// Follows the final link, only reads.
    Read,
    /// Follows the final link, writes or creates.
    Write,
    /// Acts on the final name itself (delete, mkdir, rmdir, remove_all).
    OnLink,
}

struct Func {
    name: &'static str,
    op: Op,
    call: fn(&Fx, &str) -> RtValue,
}

fn follow() -> RtValue {
    dict(&[("follow_links", Value::TRUE)])
}

fn funcs() -> Vec<Func> {
    let f = |name, op, call| Func { name, op, call };
    vec![
        f("rt_file_exists", Op::Read, |_, p| rt_file_exists(text(p))),
        f("rt_file_read_text", Op::Read, |_, p| rt_file_read_text(text(p))),
        f("rt_file_read_bytes", Op::Read, |_, p| rt_file_read_bytes(text(p))),
        f("rt_file_modified_time", Op::Read, |_, p| rt_file_modified_time(text(p))),
        f("rt_file_size", Op::Read, |_, p| rt_file_size(text(p))),
        f("rt_file_hash_sha256", Op::Read, |_, p| rt_file_hash_sha256(text(p))),
        f("rt_file_lock", Op::Read, |_, p| rt_file_lock(text(p), NIL)),
        f("rt_file_try_lock", Op::Read, |_, p| rt_file_try_lock(text(p), NIL)),
        f("rt_file_mmap_read", Op::Read, |_, p| rt_file_mmap_read(text(p), NIL)),
        f("rt_dir_list", Op::Read, |_, p| rt_dir_list(text(p))),
        f("rt_dir_walk", Op::Read, |_, p| rt_dir_walk(text(p), NIL)),
        f("rt_dir_walk(follow_links)", Op::Read, |_, p| rt_dir_walk(text(p), follow())),
        f("rt_path_exists", Op::Read, |_, p| rt_path_exists(text(p))),
        f("rt_glob(path)", Op::Read, |_, p| rt_glob(text(p), NIL)),
        f("rt_glob(path/*)", Op::Read, |_, p| rt_glob(text(&format!("{p}/*")), NIL)),
        f("rt_glob(path/**/*)", Op::Read, |_, p| rt_glob(text(&format!("{p}/**/*")), NIL)),
        f("rt_file_copy(source)", Op::Read, |fx, p| rt_file_copy(text(p), tp(&fx.d.join("copy_dst")))),
        f("rt_file_write_text", Op::Write, |_, p| rt_file_write_text(text(p), text("PWNED"))),
        f("rt_file_write_bytes", Op::Write, |_, p| rt_file_write_bytes(text(p), bytes(b"PWNED"))),
        f("rt_file_append_text", Op::Write, |_, p| rt_file_append_text(text(p), text("PWNED"))),
        f("rt_file_atomic_write", Op::Write, |_, p| rt_file_atomic_write(text(p), bytes(b"PWNED"))),
        f("rt_file_copy(destination)", Op::Write, |fx, p| rt_file_copy(tp(&fx.d.join("a.txt")), text(p))),
        f("rt_dir_create_all", Op::Write, |_, p| rt_dir_create_all(text(p))),
        f("rt_file_delete", Op::OnLink, |_, p| rt_file_delete(text(p))),
        f("rt_dir_create", Op::OnLink, |_, p| rt_dir_create(text(p))),
        f("rt_dir_remove", Op::OnLink, |_, p| rt_dir_remove(text(p))),
        f("rt_dir_remove_all", Op::OnLink, |_, p| rt_dir_remove_all(text(p))),
    ]
}

/// A spelling of a link: `path` is the link (all kinds of prefix), the
/// suffixes and children are added to it.
struct Base {
    kind: &'static str,
    how: String,
    path: String,
    /// The link itself lies in the scope (false for /proc/self/fd/N of O).
    itself_in_scope: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    /// Names the link itself (`""`, `/`, `/.`, `//`, `/./`).
    Itself,
    /// `/..`: the directory above what the link points to.
    DotDot,
    /// A name below the link.
    Child,
}

/// A directory opened with libc::open, kept open for the process (its number spells /proc/self/fd/N).
fn open_dir_fd(p: &Path) -> i32 {
    let c = std::ffi::CString::new(s(p)).unwrap();
    // SAFETY: `c` is a NUL-terminated CString alive for the call; the descriptor is checked
    // and deliberately leaked (kept open for the process, see the doc comment).
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    assert!(fd >= 0, "open {}", p.display());
    fd
}

/// Every base: each kind in D and in D/sub; relative to a working
/// directory D; through /proc/self/root, /proc/thread-self/root and
/// /proc/self/fd/N (N open on D); and /proc/self/fd/N with N open on O.
fn bases(fx: &Fx) -> Vec<Base> {
    let nd = open_dir_fd(&fx.d);
    let no = open_dir_fd(&fx.o);
    std::env::set_current_dir(&fx.d).unwrap();
    let d = s(&fx.d);
    let mut v = Vec::new();
    for (kind, name) in KINDS {
        v.push(Base { kind, how: "D/link".into(), path: format!("{d}/{name}"), itself_in_scope: true });
        v.push(Base { kind, how: "D/sub/link".into(), path: format!("{d}/sub/{name}"), itself_in_scope: true });
        v.push(Base { kind, how: "link relative to cwd D".into(), path: name.to_string(), itself_in_scope: true });
    }
    for (kind, name) in [KINDS[0], KINDS[4]] {
        for (how, path) in [
            ("/proc/self/root<D>/link", format!("/proc/self/root{d}/{name}")),
            ("/proc/thread-self/root<D>/link", format!("/proc/thread-self/root{d}/{name}")),
            ("/proc/self/fd/<fd of D>/link", format!("/proc/self/fd/{nd}/{name}")),
            ("/proc/self/fd/<fd of D>/sub/link", format!("/proc/self/fd/{nd}/sub/{name}")),
        ] {
            v.push(Base { kind, how: how.into(), path, itself_in_scope: true });
        }
    }
    v.push(Base {
        kind: "magic link to O",
        how: "/proc/self/fd/<fd of O>".into(),
        path: format!("/proc/self/fd/{no}"),
        itself_in_scope: false,
    });
    v
}

fn spellings() -> Vec<(&'static str, Class)> {
    let mut v: Vec<(&'static str, Class)> = SUFFIXES.iter().map(|&x| (x, if x == "/.." { Class::DotDot } else { Class::Itself })).collect();
    v.extend(CHILDREN.iter().map(|&x| (x, Class::Child)));
    v
}

/// The verdict on one call: None when it is fine, else what is wrong.
fn judge(f: &Func, b: &Base, class: Class, v: RtValue) -> Option<String> {
    let val = Value::from_raw(v);
    if let Some((c, m)) = val.error() {
        if broken(c) {
            return Some(format!("WRONG RESULT: Error {} ({m})", c.name()));
        }
        let fine = match (f.op, class) {
            // Every spelling in the matrix resolves outside D: the check must refuse it.
            (Op::Read | Op::Write, _) => c == Code::CapabilityDenied,
            // The link itself: refused, or the operation's own error on a link.
            (Op::OnLink, Class::Itself) => {
                matches!(c, Code::CapabilityDenied | Code::InvalidArgument | Code::AlreadyExists | Code::NotFound)
            }
            (Op::OnLink, Class::DotDot) => matches!(c, Code::CapabilityDenied | Code::InvalidArgument),
            (Op::OnLink, Class::Child) => c == Code::CapabilityDenied,
        };
        return if fine { None } else { Some(format!("unexpected Error {} ({m})", c.name())) };
    }
    if let Some(l) = leaks(val) {
        return Some(format!("ESCAPE: returned outside content/names: {l:?}"));
    }
    if f.op == Op::OnLink && class == Class::Itself && b.itself_in_scope {
        return None; // acted on the link inside D (the outside check follows)
    }
    Some(format!("unexpected success ({}): the path resolves outside D", val.describe()))
}

/// Runs `funcs` (those with an op in `ops`) over every base × spelling;
/// returns the failures. After every call the outside is compared and D rebuilt.
fn run_matrix(fx: &Fx, ops: &[Op]) -> Vec<String> {
    let bases = bases(fx);
    let mut fails = Vec::new();
    let mut tally: BTreeMap<String, u32> = BTreeMap::new();
    let mut before = fx.outside();
    let mut calls = 0;
    for f in funcs().iter().filter(|f| ops.contains(&f.op)) {
        for b in &bases {
            for (suffix, class) in spellings() {
                let p = format!("{}{}", b.path, suffix);
                let v = (f.call)(fx, &p);
                calls += 1;
                let outcome = match Value::from_raw(v).error() {
                    Some((c, _)) => c.name().to_string(),
                    None => "ok".into(),
                };
                *tally.entry(format!("{} {outcome}", f.name)).or_default() += 1;
                let at = format!("{} [{}, {}, suffix {suffix:?}] path {p:?}", f.name, b.kind, b.how);
                if let Some(why) = judge(f, b, class, v) {
                    fails.push(format!("{at}: {why}"));
                }
                // A deletion that succeeded removed the link itself (in D), nothing else.
                if f.name == "rt_file_delete" && is_ok(v) && fs::symlink_metadata(&b.path).is_ok() {
                    fails.push(format!("{at}: succeeded but the link is still there: what did it delete?"));
                }
                settle(v);
                // Copy as source writes D/copy_dst: it must never hold outside content.
                if let Ok(c) = fs::read_to_string(fx.d.join("copy_dst")) {
                    if c.contains(MARK) {
                        fails.push(format!("{at}: ESCAPE: outside content copied into D"));
                    }
                }
                let after = fx.outside();
                if after != before {
                    fails.push(format!("{at}: ESCAPE: outside tree changed: {}", diff(&before, &after)));
                    fx.rebuild_outside();
                    before = fx.outside();
                }
                fx.restore_inside();
            }
        }
    }
    eprintln!("escape matrix {ops:?}: {calls} calls; outcomes: {tally:#?}");
    fails
}

#[track_caller]
fn no_failures(what: &str, fails: Vec<String>) {
    if !fails.is_empty() {
        let shown: Vec<&String> = fails.iter().take(80).collect();
        panic!(
            "{what}: {} failures (first {}):\n{}",
            fails.len(),
            shown.len(),
            shown.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
        );
    }
}

#[test]
fn matrix_reading_functions_never_reach_outside() {
    in_child("matrix_reading_functions_never_reach_outside", || {
        let fx = Fx::new();
        fx.scope();
        no_failures("reading functions", run_matrix(&fx, &[Op::Read]));
    });
}

#[test]
fn matrix_writing_functions_never_reach_outside() {
    in_child("matrix_writing_functions_never_reach_outside", || {
        let fx = Fx::new();
        fx.scope();
        no_failures("writing functions", run_matrix(&fx, &[Op::Write]));
    });
}

#[test]
fn matrix_link_functions_never_reach_outside() {
    in_child("matrix_link_functions_never_reach_outside", || {
        let fx = Fx::new();
        fx.scope();
        no_failures("delete/mkdir/rmdir/remove_all", run_matrix(&fx, &[Op::OnLink]));
    });
}

/// Listing D itself (links inside pointing out): nothing below a link is
/// listed (walk without follow_links lists the links, never their content;
/// with it and in glob, links leading out are filtered out).
#[test]
fn listing_the_scope_shows_nothing_outside() {
    in_child("listing_the_scope_shows_nothing_outside", || {
        let fx = Fx::new();
        fx.scope();
        let before = fx.outside();
        let d = s(&fx.d);
        let cases: Vec<(&str, RtValue)> = vec![
            ("rt_dir_list(D)", rt_dir_list(text(&d))),
            ("rt_dir_list(D/sub)", rt_dir_list(text(&format!("{d}/sub")))),
            ("rt_dir_walk(D)", rt_dir_walk(text(&d), NIL)),
            ("rt_dir_walk(D, follow_links)", rt_dir_walk(text(&d), follow())),
            ("rt_dir_walk(D/, follow_links)", rt_dir_walk(text(&format!("{d}/")), follow())),
            ("rt_dir_walk(D/sub/.., follow_links)", rt_dir_walk(text(&format!("{d}/sub/..")), follow())),
            ("rt_glob(D/*)", rt_glob(text(&format!("{d}/*")), NIL)),
            ("rt_glob(D/*/*)", rt_glob(text(&format!("{d}/*/*")), NIL)),
            ("rt_glob(D/**/*)", rt_glob(text(&format!("{d}/**/*")), NIL)),
            ("rt_glob(D/**/o_*)", rt_glob(text(&format!("{d}/**/o_*")), NIL)),
            ("rt_glob(D/*/f)", rt_glob(text(&format!("{d}/*/f")), NIL)),
        ];
        let mut fails = Vec::new();
        for (what, v) in cases {
            match Value::from_raw(v).error() {
                Some((c, m)) => fails.push(format!("{what}: Error {} ({m})", c.name())),
                None => {
                    if let Some(l) = leaks(Value::from_raw(v)) {
                        fails.push(format!("{what}: ESCAPE: lists outside names: {l:?}"));
                    }
                }
            }
        }
        // The plain walk does list the links themselves (they are in D).
        let plain = texts(ok(rt_dir_walk(text(&d), NIL)));
        assert!(plain.contains(&format!("{d}/link_dir")), "{plain:?}");
        assert_eq!(fx.outside(), before);
        no_failures("listing D", fails);
    });
}

// ---------------------------------------------------------------- the issue's case

/// The spellings of the report (`link_dir/`, `/.`, `//`, `/./`), in D and
/// deeper down, and through /proc; the call must fail and leave O intact.
fn issue_spellings(fx: &Fx) -> Vec<String> {
    let d = s(&fx.d);
    let mut v = Vec::new();
    for base in [
        format!("{d}/link_dir"),
        format!("{d}/sub/link_dir"),
        format!("{d}/link_chain"),
        format!("{d}/link_rel"),
        format!("/proc/self/root{d}/link_dir"),
    ] {
        // `/..` and its variants name the directory above the link's target
        // (T, which holds D and O): refused for an operation on an entry (as rm does).
        for suf in ["/", "/.", "//", "/./", "/.//", "//.", "/./.", "/..", "/../", "/./..", "/../."] {
            v.push(format!("{base}{suf}"));
        }
    }
    v
}

fn removal_spellings_leave_o_intact(fx: &Fx, scoped: bool) {
    let before = fx.outside();
    let no = open_dir_fd(&fx.o);
    let mut paths = issue_spellings(fx);
    paths.extend([format!("/proc/self/fd/{no}"), format!("/proc/self/fd/{no}/"), format!("/proc/self/fd/{no}/.")]);
    let mut fails = Vec::new();
    for p in &paths {
        let calls: [(&str, extern "C" fn(RtValue) -> RtValue); 4] = [
            ("rt_dir_remove_all", rt_dir_remove_all),
            ("rt_dir_remove", rt_dir_remove),
            ("rt_file_delete", rt_file_delete),
            ("rt_dir_create", rt_dir_create),
        ];
        for (name, call) in calls {
            let v = call(text(p));
            match Value::from_raw(v).error() {
                None => fails.push(format!("{name}({p:?}): succeeded; should be an Error")),
                Some((c, m)) if broken(c) => fails.push(format!("{name}({p:?}): Error {} ({m})", c.name())),
                Some(_) => {}
            }
            let after = fx.outside();
            if after != before {
                fails.push(format!("{name}({p:?}): ESCAPE (scoped: {scoped}): outside changed: {}", diff(&before, &after)));
                fx.rebuild_outside();
                return no_failures("removal spellings", fails);
            }
            // D (the link itself included) is as it was.
            if fx.inside() != *fx.pristine.borrow() {
                fails.push(format!("{name}({p:?}): changed D: {}", diff(&fx.pristine.borrow(), &fx.inside())));
                fx.reset_inside();
            }
        }
    }
    // The exact call of the report, once more with its message.
    let v = rt_dir_remove_all(text(&format!("{}/link_dir/", s(&fx.d))));
    let (c, m) = err(v);
    assert!(!broken(c), "{m}");
    assert_eq!(fx.outside(), before, "rt_dir_remove_all(D/link_dir/) changed O");
    assert_eq!(fs::read_dir(&fx.o).unwrap().count(), 4, "O was emptied");
    no_failures("removal spellings", fails);
}

/// Issue 9, section 1: `rt_dir_remove_all("D/link_dir/")` (and `/.`, `//`,
/// `/./`, deeper down) under fs.read=D;fs.write=D emptied O before the fix.
#[test]
fn issue_remove_all_through_link_spellings_scoped() {
    in_child("issue_remove_all_through_link_spellings_scoped", || {
        let fx = Fx::new();
        fx.scope();
        removal_spellings_leave_o_intact(&fx, true);
    });
}

/// The same without any policy: this was broken under allow-all too. A link
/// is never followed by a removal, whatever the spelling.
#[test]
fn issue_remove_all_through_link_spellings_allow_all() {
    in_child("issue_remove_all_through_link_spellings_allow_all", || {
        let fx = Fx::new();
        removal_spellings_leave_o_intact(&fx, false);
        // A tree holding links to O is removed; the links go, O stays.
        let before = fx.outside();
        let t = fx.d.join("tree");
        fs::create_dir_all(t.join("x/y")).unwrap();
        symlink(&fx.o, t.join("l")).unwrap();
        symlink(&fx.o, t.join("x/y/l")).unwrap();
        symlink(&fx.f, t.join("x/lf")).unwrap();
        ok(rt_dir_remove_all(tp(&t)));
        assert!(!t.exists());
        assert_eq!(fx.outside(), before, "remove_all of a tree with links to O changed O");
        // The scope itself removed through a link to it: the link is refused, D stays.
        symlink(&fx.d, fx.root.join("link_to_d")).unwrap();
        let before_d = fs::read_dir(&fx.d).unwrap().count();
        for suf in ["", "/", "/.", "//"] {
            let p = format!("{}/link_to_d{suf}", s(&fx.root));
            assert!(Value::from_raw(rt_dir_remove_all(text(&p))).is_error(), "rt_dir_remove_all({p:?}) succeeded");
            assert_eq!(fs::read_dir(&fx.d).unwrap().count(), before_d, "rt_dir_remove_all({p:?}) emptied the link's target");
        }
        fs::remove_file(fx.root.join("link_to_d")).unwrap();
    });
}

// ---------------------------------------------------------------- races

/// (Re)creates D/<at> (`s`, or `w/s`: then D/w is made) as a real
/// directory holding `f` ("inside f") and `x/y/g`, built at a private name
/// and renamed in: a rename never replaces the swapper's symlink (ENOTDIR),
/// so nothing is written through it.
fn make_tree(fx: &Fx, at: &str) {
    let stage = fx.d.join(".stage");
    remove_any(&stage);
    let (top, rest) = at.split_once('/').unwrap_or((at, ""));
    let inner = stage.join(rest);
    fs::create_dir_all(inner.join("x/y")).unwrap();
    fs::write(inner.join("f"), "inside f").unwrap();
    fs::write(inner.join("x/y/g"), "inside g").unwrap();
    if fs::rename(&stage, fx.d.join(top)).is_err() {
        remove_any(&stage);
    }
}

const RACE_ITERS: u32 = 4000;
const RACE_TIME: Duration = Duration::from_millis(1500);

/// Runs `step` against the swapper until RACE_ITERS or RACE_TIME; `step`
/// returns its value; a broken Error or a leak is a failure. Afterwards O
/// must be byte-identical.
fn race(fx: &Fx, what: &str, at: &str, remake: bool, step: impl Fn(&Fx) -> RtValue) {
    let before = fx.outside();
    make_tree(fx, at);
    let sw = Swapper::start(fx.d.join(at), fx.o.clone(), 400);
    let t0 = Instant::now();
    let (mut n, mut oks, mut denied, mut changed) = (0u32, 0u32, 0u32, 0u32);
    let mut fails = Vec::new();
    while n < RACE_ITERS && t0.elapsed() < RACE_TIME {
        if remake {
            make_tree(fx, at);
        }
        let v = step(fx);
        n += 1;
        match Value::from_raw(v).error() {
            None => {
                oks += 1;
                if let Some(l) = leaks(Value::from_raw(v)) {
                    fails.push(format!("{what} (iteration {n}): ESCAPE: returned outside content/names: {l:?}"));
                }
            }
            Some((c, m)) if broken(c) => fails.push(format!("{what} (iteration {n}): Error {} ({m})", c.name())),
            Some((c, m)) => {
                denied += u32::from(c == Code::CapabilityDenied);
                changed += u32::from(m.contains("changed while in use"));
            }
        }
        settle(v);
        if fails.len() > 20 {
            break;
        }
    }
    let swaps = sw.finish();
    let after = fx.outside();
    eprintln!(
        "race {what}: {n} calls in {:?}, {oks} ok, {denied} CapabilityDenied ({changed} of them 'changed while in use'), {swaps} swaps",
        t0.elapsed()
    );
    if after != before {
        fails.push(format!("{what}: ESCAPE: outside tree changed: {}", diff(&before, &after)));
        fx.rebuild_outside();
    }
    no_failures(what, fails);
    assert!(swaps > 0, "{what}: the swapper never swapped");
}

#[test]
fn race_scoped_remove_all() {
    in_child("race_scoped_remove_all", || {
        let fx = Fx::new();
        fx.scope();
        race(&fx, "rt_dir_remove_all(D/s), scoped", "s", true, |fx| rt_dir_remove_all(tp(&fx.d.join("s"))));
        race(&fx, "rt_dir_remove_all(D/w) while D/w/s swaps, scoped", "w/s", true, |fx| rt_dir_remove_all(tp(&fx.d.join("w"))));
    });
}

#[test]
fn race_allow_all_remove_all() {
    in_child("race_allow_all_remove_all", || {
        let fx = Fx::new();
        race(&fx, "rt_dir_remove_all(D/s), allow-all", "s", true, |fx| rt_dir_remove_all(tp(&fx.d.join("s"))));
        race(&fx, "rt_dir_remove_all(D/s/), allow-all", "s", true, |fx| rt_dir_remove_all(text(&format!("{}/s/", s(&fx.d)))));
        race(&fx, "rt_dir_remove_all(D/w) while D/w/s swaps, allow-all", "w/s", true, |fx| rt_dir_remove_all(tp(&fx.d.join("w"))));
    });
}

#[test]
fn race_scoped_writes() {
    in_child("race_scoped_writes", || {
        let fx = Fx::new();
        fx.scope();
        race(&fx, "rt_file_write_text(D/s/f), scoped", "s", false, |fx| rt_file_write_text(tp(&fx.d.join("s/f")), text("PWNED")));
        race(&fx, "rt_file_atomic_write(D/s/f), scoped", "s", false, |fx| rt_file_atomic_write(tp(&fx.d.join("s/f")), bytes(b"PWNED")));
        race(&fx, "rt_file_append_text(D/s/f), scoped", "s", false, |fx| rt_file_append_text(tp(&fx.d.join("s/f")), text("PWNED")));
    });
}

#[test]
fn race_scoped_create_and_delete() {
    in_child("race_scoped_create_and_delete", || {
        let fx = Fx::new();
        fx.scope();
        race(&fx, "rt_dir_create_all(D/s/a/b), scoped", "s", false, |fx| rt_dir_create_all(tp(&fx.d.join("s/a/b"))));
        race(&fx, "rt_file_delete(D/s/f), scoped", "s", true, |fx| rt_file_delete(tp(&fx.d.join("s/f"))));
        race(&fx, "rt_file_copy(D/a.txt -> D/s/f), scoped", "s", false, |fx| rt_file_copy(tp(&fx.d.join("a.txt")), tp(&fx.d.join("s/f"))));
    });
}

#[test]
fn race_scoped_reads() {
    in_child("race_scoped_reads", || {
        let fx = Fx::new();
        fx.scope();
        race(&fx, "rt_dir_walk(D), scoped", "s", false, |fx| rt_dir_walk(tp(&fx.d), NIL));
        race(&fx, "rt_dir_walk(D, follow_links), scoped", "s", false, |fx| rt_dir_walk(tp(&fx.d), follow()));
        race(&fx, "rt_file_read_text(D/s/f), scoped", "s", false, |fx| rt_file_read_text(tp(&fx.d.join("s/f"))));
        race(&fx, "rt_file_mmap_read(D/s/f), scoped", "s", false, |fx| rt_file_mmap_read(tp(&fx.d.join("s/f")), NIL));
        race(&fx, "rt_dir_list(D/s), scoped", "s", false, |fx| rt_dir_list(tp(&fx.d.join("s"))));
        race(&fx, "rt_file_copy(D/s/f -> D/c), scoped", "s", false, |fx| {
            let v = rt_file_copy(tp(&fx.d.join("s/f")), tp(&fx.d.join("c")));
            if !Value::from_raw(v).is_error() {
                // What was copied must be D's, never O's.
                return rt_file_read_text(tp(&fx.d.join("c")));
            }
            v
        });
    });
}

// ---------------------------------------------------------------- hard links (section 2)

/// T/F ("OUTSIDE F") hard-linked as T/D/h (same file system); D/a.txt; D/p and D/q two links of one file inside D.
struct HardFx {
    fx: Fx,
    h: PathBuf,
}

fn hard_fixture() -> HardFx {
    let fx = Fx::new();
    let h = fx.d.join("h");
    fs::hard_link(&fx.f, &h).unwrap();
    fs::write(fx.d.join("p"), "inside p").unwrap();
    fs::hard_link(fx.d.join("p"), fx.d.join("q")).unwrap();
    HardFx { fx, h }
}

fn cap_check(cap: &str) -> bool {
    // SAFETY: `rt_cap_check` is core's `#[rt_fn]` export, declared above with its C signature
    // (two RtValues in, one out); both arguments are fresh values on this stack.
    ok(unsafe { rt_cap_check(text(cap), NIL) }).as_bool().expect("bool")
}

fn cap_current(cap: &str) -> Value {
    // SAFETY: `rt_cap_current` is core's `#[rt_fn]` export, `RtValue (void)` as declared above.
    ok(unsafe { rt_cap_current() }).get(cap)
}

type Writer = (&'static str, fn(&str, &Fx) -> RtValue);

fn writers() -> Vec<Writer> {
    vec![
        ("rt_file_write_text", |p, _| rt_file_write_text(text(p), text("PWNED"))),
        ("rt_file_write_bytes", |p, _| rt_file_write_bytes(text(p), bytes(b"PWNED"))),
        ("rt_file_append_text", |p, _| rt_file_append_text(text(p), text("PWNED"))),
        ("rt_file_atomic_write", |p, _| rt_file_atomic_write(text(p), bytes(b"PWNED"))),
        ("rt_file_copy(onto)", |p, fx| rt_file_copy(tp(&fx.d.join("a.txt")), text(p))),
    ]
}

fn f_state(fx: &Fx) -> (String, u64, u64) {
    let m = fs::metadata(&fx.f).unwrap();
    (fs::read_to_string(&fx.f).unwrap(), m.ino(), m.nlink())
}

/// Every writer through the link is refused with a message about hard links; F is unchanged.
fn writes_through_links_refused(hx: &HardFx) {
    let fx = &hx.fx;
    let before = f_state(fx);
    let d = s(&fx.d);
    for (name, w) in writers() {
        for p in [s(&hx.h), format!("{d}/./h"), format!("{d}/sub/../h"), format!("/proc/self/root{d}/h")] {
            let v = w(&p, fx);
            let (c, m) = Value::from_raw(v).error().unwrap_or_else(|| panic!("{name}({p:?}) through a hard link to F succeeded"));
            assert_eq!(c, Code::CapabilityDenied, "{name}({p:?}): {m}");
            assert!(m.contains("hard link"), "{name}({p:?}): the message should say why (hard links): {m}");
            assert!(m.starts_with(name.split('(').next().unwrap()), "{name}({p:?}): {m}");
            assert_eq!(f_state(fx), before, "{name}({p:?}) changed F");
        }
        // Two links inside D: the count is what is checked (the other link's place is unknown).
        let p = s(&fx.d.join("p"));
        assert_eq!(code(w(&p, fx)), Code::CapabilityDenied, "{name}({p:?}), a file with two links in D");
        assert_eq!(fs::read_to_string(fx.d.join("q")).unwrap(), "inside p");
    }
}

/// Section 2: under fs.read=D;fs.write=D a hard link D/h to F outside is
/// refused for every kind of writing, allowed for reading, and deletable.
#[test]
fn hardlink_to_outside_refused_for_writing_when_scoped() {
    in_child("hardlink_to_outside_refused_for_writing_when_scoped", || {
        let hx = hard_fixture();
        let fx = &hx.fx;
        fx.scope();
        assert!(!cap_check("fs.hardlink"), "scoping fs.write without naming fs.hardlink drops it");
        assert_eq!(cap_current("fs.hardlink").as_bool(), Some(false));
        writes_through_links_refused(&hx);
        // Reads are allowed: a link in the scope is the file itself (a
        // pnpm-style store hard-links package files into each project; a
        // reader of the project must see them). What can be read is what
        // someone with write access to D chose to link there; the read
        // cannot change anything outside.
        let h = s(&hx.h);
        assert_eq!(ok(rt_file_read_text(text(&h))).as_text(), Some("OUTSIDE F"));
        assert_eq!(ok(rt_file_read_bytes(text(&h))).as_bytes(), Some(&b"OUTSIDE F"[..]));
        assert_eq!(ok(rt_file_size(text(&h))).as_int(), Some(9));
        assert_eq!(ok(rt_file_mmap_read(text(&h), NIL)).as_bytes(), Some(&b"OUTSIDE F"[..]));
        assert_eq!(ok(rt_file_hash_sha256(text(&h))).as_text().unwrap().len(), 64);
        let l = ok(rt_file_lock(text(&h), NIL));
        ok(rt_file_unlock(l.raw()));
        assert_eq!(ok(rt_file_copy(text(&h), tp(&fx.d.join("copied")))).as_int(), Some(9));
        assert_eq!(fs::read_to_string(fx.d.join("copied")).unwrap(), "OUTSIDE F");
        // A new file and a file with one link are written as usual.
        ok(rt_file_write_text(tp(&fx.d.join("new")), text("n")));
        ok(rt_file_write_text(tp(&fx.d.join("a.txt")), text("a2")));
        ok(rt_file_atomic_write(tp(&fx.d.join("a.txt")), bytes(b"a3")));
        // Deleting the link removes only the link.
        ok(rt_file_delete(text(&h)));
        assert!(!hx.h.exists());
        assert_eq!(f_state(fx).0, "OUTSIDE F");
        assert_eq!(f_state(fx).2, 1);
    });
}

/// A host that grants fs.hardlink may write through the link (and changes F: that is what it allowed).
#[test]
fn hardlink_writes_allowed_with_fs_hardlink() {
    in_child("hardlink_writes_allowed_with_fs_hardlink", || {
        let hx = hard_fixture();
        let d = hx.fx.d.display();
        restrict(&format!("fs.read={d};fs.write={d};fs.hardlink=true"));
        assert!(cap_check("fs.hardlink"));
        let h = s(&hx.h);
        ok(rt_file_write_text(text(&h), text("granted")));
        assert_eq!(fs::read_to_string(&hx.fx.f).unwrap(), "granted");
        ok(rt_file_append_text(text(&h), text("+")));
        assert_eq!(fs::read_to_string(&hx.fx.f).unwrap(), "granted+");
        ok(rt_file_copy(tp(&hx.fx.d.join("a.txt")), text(&h)));
        assert_eq!(fs::read_to_string(&hx.fx.f).unwrap(), "inside a");
        // Atomic replacement gives D/h a new inode: F keeps the old content.
        ok(rt_file_atomic_write(text(&h), bytes(b"atomic")));
        assert_eq!(fs::read_to_string(&hx.h).unwrap(), "atomic");
        assert_eq!(fs::read_to_string(&hx.fx.f).unwrap(), "inside a");
    });
}

/// Without a policy nothing is refused (allow-all stays allow-all).
#[test]
fn hardlink_writes_allowed_under_allow_all() {
    in_child("hardlink_writes_allowed_under_allow_all", || {
        let hx = hard_fixture();
        assert!(cap_check("fs.hardlink"));
        ok(rt_file_write_text(tp(&hx.h), text("free")));
        assert_eq!(fs::read_to_string(&hx.fx.f).unwrap(), "free");
        ok(rt_file_append_text(tp(&hx.h), text("!")));
        assert_eq!(fs::read_to_string(&hx.fx.f).unwrap(), "free!");
    });
}

/// Once dropped, fs.hardlink cannot be granted again by a later restrict.
#[test]
fn hardlink_cannot_be_regranted() {
    in_child("hardlink_cannot_be_regranted", || {
        let hx = hard_fixture();
        hx.fx.scope();
        assert!(!cap_check("fs.hardlink"));
        // SAFETY: `rt_cap_parse(RtValue) -> RtValue`, declared above as exported by core; the
        // argument is a fresh text value on this stack.
        let p = unsafe { rt_cap_parse(text("fs.hardlink=true")) };
        let p = ok(p);
        // SAFETY: `rt_cap_restrict(RtValue) -> RtValue` as exported; `p` is on this stack (alive).
        let r = unsafe { rt_cap_restrict(p.raw()) };
        // Error or not, the answer stays no.
        let _ = Value::from_raw(r).error();
        assert!(!cap_check("fs.hardlink"), "a later restrict re-granted fs.hardlink");
        assert_eq!(cap_current("fs.hardlink").as_bool(), Some(false));
        // And via the full policy text too.
        let d = hx.fx.d.display();
        // SAFETY: as above: declared signature of core's export, a fresh text argument.
        let p = ok(unsafe { rt_cap_parse(text(&format!("fs.read={d};fs.write={d};fs.hardlink=true"))) });
        // SAFETY: as above: `p` is a live value on this stack.
        let _ = unsafe { rt_cap_restrict(p.raw()) };
        assert!(!cap_check("fs.hardlink"), "a later restrict re-granted fs.hardlink");
        writes_through_links_refused(&hx);
    });
}
