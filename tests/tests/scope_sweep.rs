//! Scoped file system policy, swept over every path-taking function outside
//! ffi_io (docs/SECURITY.md, "Paths" and "Hard links"). ffi_io has its own
//! matrix (ffi_io/tests/escape.rs) and is left out here; everything else the
//! registry marks `fs.*`, plus the functions that check a path argument under
//! another capability (rt_http_download, rt_http_upload, the multipart `path`
//! and `ca_file` options of the HTTP requests, and torch's rt_model_save /
//! rt_model_load when that library is loaded), is in [`cases`]. `table_covers_the_registry` fails when
//! the registry has such a function the table lacks, so a new one cannot be
//! added without being swept.
//!
//! Fixture (one canonical temp root T, on tmpfs where there is one):
//!
//! ```text
//! T/F                                   "OUTSIDE F"       (a file outside)
//! T/O/{o_secret.txt, in.txt, o_sub/{o_deep.txt, o_empty/}, o_sock}
//!                                       a tree outside; o_sock a listening Unix socket; in.txt
//!                                       has the name of the in-scope source A/srcdir/in.txt
//! T/A/{in.txt, srcdir/in.txt, good.tar, good.tar.gz, good.zip, in.gz, in.xz, hist, h.tar, ca.pem}
//!                                       readable assets (fs.read only)
//! T/D/                                  the scope: fs.read=D,A;fs.write=D
//!     a.txt, sub/b.txt, sub/in.txt, link_sock -> T/O/o_sock
//!     and, in D and again in D/sub:
//!     link_dir -> T/O, link_file -> T/F, link_dangling -> T/O/o_missing,
//!     link_rel -> ../O (../../O in sub), link_chain -> link_chain2 -> T/O
//! ```
//!
//! Every outside file holds the marker `OUTSIDE`, every outside name starts
//! with `o_`. Each function's attacked argument is called with every
//! spelling of its role ([`spellings`]: through each link, `..`, trailing
//! `/`, `/.`, `//`, `/./`, /proc/self/root, /proc/thread-self/root,
//! /proc/self/fd/N, /proc/self/cwd, relative to a working directory D,
//! absolute outside paths, dangling links for creation), and:
//! - (a) the tree outside D (names, kinds, modes, sizes, mtimes of files and
//!   directories, inodes, link counts, contents, link targets) is the same
//!   before and after the call: a temporary created and removed outside
//!   shows in its directory's mtime;
//! - (b) nothing returned (walked through arrays, dicts and Error details;
//!   an archive a writer produced; the bytes our HTTP server received)
//!   carries the marker, or an outside name (in an Error: one the caller
//!   did not spell);
//! - (c) the call returns an Error, CapabilityDenied, or one of the few
//!   refusals listed in [`acceptable`] with the reason, whose message starts
//!   with the function's name.
//!
//! A control call per function with an in-scope path must succeed (a
//! function that refuses everything would otherwise pass); the static
//! directory the control registers is then served and its links to O must
//! answer 404, and archive members named through D's links
//! (`link_dir/o_new`...) extracted into D must leave O alone.
//!
//! Also:
//! - races (`sweep_races`): the write functions (and a few readers whose
//!   result shows what they read) run with paths under D/sub while another
//!   thread swaps D/sub for a symlink to O; O never changes, nothing of O is
//!   returned, archived or uploaded;
//! - hard links (`sweep_hard_links`): a hard link D/h to T/F is refused as
//!   every writer's destination (CapabilityDenied, "hard link") whatever the
//!   spelling, and F keeps its content and inode; hard links to F planted at
//!   the names a writer's temporary file could take are never written
//!   through (this found rt_cranelift_emit_object writing the object into F);
//!   a hard link in D to the outside socket T/O/o_sock is refused by
//!   rt_unix_socket_connect;
//! - watch events (`watch_events_never_name_outside`): rt_watch_path on D
//!   never reports what happens in O, also when a link it went through is
//!   replaced by a real directory before the poll.
//!
//! Every test that narrows the policy runs in a child process (`in_child`).

#![deny(clippy::undocumented_unsafe_blocks)]

use rt_tests::escape_tree::*;
use rt_tests::*;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// In every outside file's content.
const MARK: &str = "OUTSIDE";

/// Functions swept although their capability is not `fs.*`: they check a
/// path argument internally (fs.write / fs.read) under `net.http` or torch's.
const PATH_UNDER_OTHER_CAP: [&str; 4] = ["rt_http_download", "rt_http_upload", "rt_model_save", "rt_model_load"];

/// Table functions that live in a feature library (torch): skipped when it is not loaded.
const OPTIONAL_FUNCS: [&str; 3] = ["rt_model_save", "rt_model_load", "rt_torch_store_new"];

const CLIF: &str = "function %add(i64, i64) -> i64 {\nblock0(v0: i64, v1: i64):\n    v2 = iadd v0, v1\n    return v2\n}\n";

// ---------------------------------------------------------------- fixture

struct Fx {
    _g: tempfile::TempDir,
    t: PathBuf,
    d: PathBuf,
    o: PathBuf,
    f: PathBuf,
    a: PathBuf,
    /// Descriptors kept open for the process: /proc/self/fd/{nd} is D, /proc/self/fd/{no} is O.
    nd: i32,
    no: i32,
    /// The listener behind T/O/o_sock (a connect that escaped would reach it).
    _outside_sock: std::os::unix::net::UnixListener,
    pristine: RefCell<Vec<String>>,
}

impl Fx {
    fn new() -> Fx {
        let g = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).expect("temp dir");
        let t = fs::canonicalize(g.path()).expect("canonical temp dir");
        let (d, o, f, a) = (t.join("D"), t.join("O"), t.join("F"), t.join("A"));
        fs::create_dir_all(o.join("o_sub/o_empty")).unwrap();
        fs::write(o.join("o_secret.txt"), "OUTSIDE secret").unwrap();
        fs::write(o.join("o_sub/o_deep.txt"), "OUTSIDE deep").unwrap();
        fs::write(o.join("in.txt"), "OUTSIDE in").unwrap();
        fs::write(&f, "OUTSIDE F").unwrap();
        let sock = std::os::unix::net::UnixListener::bind(o.join("o_sock")).expect("bind T/O/o_sock");
        fs::create_dir(&d).unwrap();
        fs::create_dir_all(a.join("srcdir")).unwrap();
        fs::write(a.join("in.txt"), "inside text\n").unwrap();
        fs::write(a.join("srcdir/in.txt"), "inside text\n").unwrap();
        fs::write(a.join("hist"), "inside history\n").unwrap();
        // Any PEM certificate will do for opts.ca_file (an http:// URL never uses it).
        let pem = fs::read_dir("/etc/ssl/certs")
            .ok()
            .and_then(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "pem")))
            .and_then(|p| fs::read(p).ok());
        fs::write(a.join("ca.pem"), pem.unwrap_or_default()).unwrap();
        let nd = fs::File::open(&d).expect("open D").into_raw_fd();
        let no = fs::File::open(&o).expect("open O").into_raw_fd();
        let fx = Fx { _g: g, t, d, o, f, a, nd, no, _outside_sock: sock, pristine: RefCell::default() };
        fx.reset_inside();
        std::env::set_current_dir(&fx.d).expect("cwd D");
        fx
    }

    /// The archives and compressed files in A, made with the libraries under allow-all.
    fn assets(&self, c: &Core) {
        let a = |n: &str| s(&self.a.join(n));
        c.ok(c.call("rt_tar_create", &[c.text(&a("good.tar")), c.text(&a("srcdir"))]));
        c.ok(c.call("rt_tar_create", &[c.text(&a("good.tar.gz")), c.text(&a("srcdir"))]));
        c.ok(c.call("rt_gzip_compress_file", &[c.text(&a("in.txt")), c.text(&a("in.gz"))]));
        c.ok(c.call("rt_xz_compress_file", &[c.text(&a("in.txt")), c.text(&a("in.xz"))]));
        let z = c.ok(c.call("rt_zip_create", &[c.text(&a("good.zip"))]));
        c.ok(c.call("rt_zip_add_data", &[z, c.text("in.txt"), c.bytes(b"inside zip\n")]));
        c.ok(c.call("rt_zip_add_data", &[z, c.text("h"), c.bytes(b"PWNED by zip\n")]));
        c.ok(c.call("rt_zip_close", &[z]));
        let w = c.ok(c.call("rt_tar_create", &[c.text(&a("h.tar")), NIL]));
        c.ok(c.call("rt_tar_add_data", &[w, c.text("h"), c.bytes(b"PWNED by tar\n")]));
        c.ok(c.call("rt_tar_close", &[w]));
        c.ok(c.call("rt_readline_add_history", &[c.text("inside line")]));
    }

    /// fs.read on D and A, fs.write on D; every other capability stays as it was (allow-all).
    fn scope(&self, c: &Core) {
        c.restrict(&format!("fs.read={},{};fs.write={}", s(&self.d), s(&self.a), s(&self.d)));
        assert!(!self.cap("fs.hardlink", c), "scoping fs.write without naming fs.hardlink drops it");
        assert!(!self.cap_on("fs.read", &self.o, c) && !self.cap_on("fs.write", &self.o, c) && self.cap_on("fs.write", &self.d, c));
    }

    fn cap(&self, cap: &str, c: &Core) -> bool {
        c.ok(c.call("rt_cap_check", &[c.text(cap), NIL])) == TRUE
    }

    fn cap_on(&self, cap: &str, p: &Path, c: &Core) -> bool {
        c.ok(c.call("rt_cap_check", &[c.text(cap), c.text(&s(p))])) == TRUE
    }

    /// Empties D (D itself stays: the working directory and /proc/self/fd/{nd} stay valid) and rebuilds it.
    fn reset_inside(&self) {
        for e in fs::read_dir(&self.d).unwrap() {
            remove_any(&e.unwrap().path());
        }
        let d = &self.d;
        fill_scope(d, &self.o, &self.f);
        // The name of T/O/in.txt: read through a swapped D/sub it would be O's.
        fs::write(d.join("sub/in.txt"), "inside in").unwrap();
        symlink(self.o.join("o_sock"), d.join("link_sock")).unwrap();
        *self.pristine.borrow_mut() = self.inside();
    }

    fn inside(&self) -> Vec<String> {
        tree(&self.d)
    }

    /// Rebuilds D when a call changed anything in it.
    fn restore_inside(&self) {
        if self.inside() != *self.pristine.borrow() {
            self.reset_inside();
        }
    }

    /// Everything under T but D (A included: it is read-only to the policy), sorted, with T's own mtime.
    fn outside(&self) -> Vec<String> {
        outside(&self.t, &self.d)
    }

    /// (content, inode, links) of F.
    fn f_state(&self) -> (String, u64, u64) {
        let m = fs::metadata(&self.f).unwrap();
        (String::from_utf8_lossy(&fs::read(&self.f).unwrap()).into_owned(), m.ino(), m.nlink())
    }
}

/// Every text and bytes inside a value (arrays and dicts walked; an Error's message), joined.
fn flat(c: &Core, v: RtValue, out: &mut Vec<u8>, depth: u32) {
    if depth > 16 {
        return;
    }
    match c.kind_of(v) {
        kind::STRING => out.extend_from_slice(c.get_text(v).unwrap_or_default().as_bytes()),
        kind::BYTES => out.extend_from_slice(&c.get_bytes(v).unwrap_or_default()),
        kind::ARRAY => {
            for i in 0..(c.array_len)(v) {
                flat(c, (c.array_get)(v, i), out, depth + 1);
            }
        }
        kind::DICT => {
            for i in 0..(c.dict_len)(v) {
                flat(c, (c.dict_key_at)(v, i), out, depth + 1);
                flat(c, (c.dict_value_at)(v, i), out, depth + 1);
            }
        }
        kind::ERROR => {
            if let Some((_, m)) = c.error(v) {
                out.extend_from_slice(m.as_bytes());
            }
            flat(c, (c.error_details)(v), out, depth + 1);
        }
        _ => {}
    }
    out.push(b'\n');
}

/// Names in the outside tree that a result could reveal.
const OUTSIDE_NAMES: [&str; 4] = ["o_secret", "o_deep", "o_empty", "o_sub"];

/// What a value reveals from outside: the marker always; outside names in a
/// successful result, or in an Error when the caller did not spell them.
fn leak(c: &Core, v: RtValue, spelled: &str) -> Option<String> {
    let mut b = Vec::new();
    flat(c, v, &mut b, 0);
    let t = String::from_utf8_lossy(&b);
    let is_err = c.kind_of(v) == kind::ERROR;
    let name = OUTSIDE_NAMES.iter().find(|n| t.contains(*n) && !(is_err && spelled.contains(*n)));
    if t.contains(MARK) || name.is_some() {
        Some(t.chars().take(400).collect())
    } else {
        None
    }
}

// ---------------------------------------------------------------- a local HTTP server

/// Answers every request with 200 "inside body"; records every byte it received.
struct Http {
    port: u16,
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<u8>>>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl Http {
    fn start() -> Http {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        l.set_nonblocking(true).unwrap();
        let port = l.local_addr().unwrap().port();
        let (stop, got) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(Vec::new())));
        let (st, g) = (stop.clone(), got.clone());
        let h = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let _ = Http::serve(s, &g);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Http { port, stop, got, h: Some(h) }
    }

    fn serve(mut s: std::net::TcpStream, got: &Mutex<Vec<u8>>) -> std::io::Result<()> {
        s.set_nonblocking(false)?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let n = s.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        got.lock().unwrap().extend_from_slice(&buf);
        let body = "inside body\n";
        write!(s, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
        s.flush()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/f", self.port)
    }

    fn received(&self) -> String {
        String::from_utf8_lossy(&self.got.lock().unwrap()).into_owned()
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.h.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------- the table

/// What the attacked argument is, which decides its spellings.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// A file that is read (a final link followed).
    ReadFile,
    /// A directory that is read or served.
    ReadDir,
    /// A file that is created or replaced (a final link followed: its target written).
    WriteFile,
    /// A directory that is created if missing and written into.
    WriteDir,
    /// A Unix socket path that is created itself (a final link is not followed).
    Listen,
    /// A Unix socket that is connected to (fs.write).
    Connect,
}

/// What a call needs besides its path.
struct Ctx<'a> {
    c: &'a Core,
    fx: &'a Fx,
    http: &'a Http,
    /// An HttpServer handle (pinned) for rt_http_server_static.
    server: RtValue,
    n: Cell<u64>,
    /// Socket handles to close at the end (pinned meanwhile).
    keep: RefCell<Vec<RtValue>>,
}

impl Ctx<'_> {
    fn t(&self, p: &str) -> RtValue {
        self.c.text(p)
    }
    fn a(&self, name: &str) -> RtValue {
        self.c.text(&s(&self.fx.a.join(name)))
    }
    /// A fresh name in D.
    fn fresh(&self, stem: &str) -> String {
        let n = self.n.get();
        self.n.set(n + 1);
        s(&self.fx.d.join(format!("{stem}_{n}")))
    }
    /// Closes a handle result (after inspection) so nothing stays open between calls.
    fn settle(&self, v: RtValue) {
        if self.c.kind_of(v) == kind::HANDLE {
            self.c.call("rt_handle_close", &[v]);
        }
    }
    /// `v` when it is an Error, else the bytes of the archive at `path` (what a writer produced).
    fn archive_or(&self, v: RtValue, path: &str) -> RtValue {
        if self.c.kind_of(v) == kind::ERROR {
            return v;
        }
        match fs::read(path) {
            Ok(b) => self.c.bytes(&b),
            Err(e) => self.c.text(&format!("no archive at {path}: {e}")),
        }
    }
    fn emit_object(&self, path: &str) -> RtValue {
        let c = self.c;
        let m = c.ok(c.call("rt_cranelift_init", &[c.dict(&[("kind", c.text("object"))])]));
        c.ok(c.call("rt_cranelift_compile_fn", &[m, c.text(CLIF)]));
        let r = c.call("rt_cranelift_emit_object", &[m, c.text(path)]);
        c.call("rt_handle_close", &[m]);
        r
    }
}

type Call = fn(&Ctx, &str) -> RtValue;
type Control = fn(&Ctx) -> String;

struct Case {
    func: &'static str,
    /// The attacked argument.
    arg: &'static str,
    role: Role,
    /// Calls `func` with the path under attack in `arg`; returns what to inspect.
    call: Call,
    /// An in-scope path for `arg` with which the call must succeed.
    control: Control,
}

fn case(func: &'static str, arg: &'static str, role: Role, call: Call, control: Control) -> Case {
    Case { func, arg, role, call, control }
}

fn dst(x: &Ctx) -> String {
    x.fresh("ctl_out")
}
fn dst_dir(x: &Ctx) -> String {
    x.fresh("ctl_dir")
}

/// Every swept function × attacked argument. rt_cap_audit is last: its
/// control turns auditing on for the rest of the process.
fn cases() -> Vec<Case> {
    use Role::*;
    vec![
        // ---- archive: compression file to file
        case("rt_gzip_compress_file", "src", ReadFile, |x, p| x.c.call("rt_gzip_compress_file", &[x.t(p), x.t(&x.fresh("o.gz"))]), |x| s(&x.fx.a.join("in.txt"))),
        case("rt_gzip_compress_file", "dst", WriteFile, |x, p| x.c.call("rt_gzip_compress_file", &[x.a("in.txt"), x.t(p)]), dst),
        case("rt_gzip_decompress_file", "src", ReadFile, |x, p| x.c.call("rt_gzip_decompress_file", &[x.t(p), x.t(&x.fresh("o.txt"))]), |x| s(&x.fx.a.join("in.gz"))),
        case("rt_gzip_decompress_file", "dst", WriteFile, |x, p| x.c.call("rt_gzip_decompress_file", &[x.a("in.gz"), x.t(p)]), dst),
        case("rt_xz_compress_file", "src", ReadFile, |x, p| x.c.call("rt_xz_compress_file", &[x.t(p), x.t(&x.fresh("o.xz"))]), |x| s(&x.fx.a.join("in.txt"))),
        case("rt_xz_compress_file", "dst", WriteFile, |x, p| x.c.call("rt_xz_compress_file", &[x.a("in.txt"), x.t(p)]), dst),
        case("rt_xz_decompress_file", "src", ReadFile, |x, p| x.c.call("rt_xz_decompress_file", &[x.t(p), x.t(&x.fresh("o.txt"))]), |x| s(&x.fx.a.join("in.xz"))),
        case("rt_xz_decompress_file", "dst", WriteFile, |x, p| x.c.call("rt_xz_decompress_file", &[x.a("in.xz"), x.t(p)]), dst),
        // ---- archive: tar
        case("rt_tar_create", "output", WriteFile, |x, p| x.c.call("rt_tar_create", &[x.t(p), x.a("srcdir")]), dst),
        case(
            "rt_tar_create",
            "sources (a path; links stored as links)",
            ReadDir,
            |x, p| {
                let out = x.fresh("o.tar");
                let v = x.c.call("rt_tar_create", &[x.t(&out), x.t(p)]);
                x.archive_or(v, &out)
            },
            // D itself: its links lead outside and are stored as links, never followed.
            |x| s(&x.fx.d),
        ),
        case(
            "rt_tar_create",
            "sources (a file in an array, follow_symlinks)",
            ReadFile,
            |x, p| {
                let out = x.fresh("o.tar");
                let o = x.c.dict(&[("follow_symlinks", TRUE)]);
                let v = x.c.call("rt_tar_create", &[x.t(&out), x.c.text_array(&[p]), o]);
                x.archive_or(v, &out)
            },
            |x| s(&x.fx.a.join("in.txt")),
        ),
        case(
            "rt_tar_create",
            "opts.base",
            ReadDir,
            |x, p| {
                let out = x.fresh("o.tar");
                let o = x.c.dict(&[("base", x.t(p))]);
                // in.txt is in O ("OUTSIDE in") and in A/srcdir (the control).
                let v = x.c.call("rt_tar_create", &[x.t(&out), x.c.text_array(&["in.txt"]), o]);
                x.archive_or(v, &out)
            },
            |x| s(&x.fx.a.join("srcdir")),
        ),
        case(
            "rt_tar_create",
            "output (TarWriter: sources nil)",
            WriteFile,
            |x, p| {
                let w = x.c.call("rt_tar_create", &[x.t(p), NIL]);
                if x.c.kind_of(w) == kind::ERROR {
                    return w;
                }
                x.c.ok(x.c.call("rt_tar_add_data", &[w, x.c.text("d.txt"), x.c.bytes(b"inside data")]));
                x.c.call("rt_tar_close", &[w])
            },
            dst,
        ),
        case(
            "rt_tar_add_file",
            "file_path",
            ReadFile,
            |x, p| {
                let out = x.fresh("w.tar");
                let w = x.c.ok(x.c.call("rt_tar_create", &[x.t(&out), NIL]));
                let v = x.c.call("rt_tar_add_file", &[w, x.c.text("entry"), x.t(p)]);
                x.c.ok(x.c.call("rt_tar_close", &[w]));
                x.archive_or(v, &out)
            },
            |x| s(&x.fx.a.join("in.txt")),
        ),
        case("rt_tar_list", "archive", ReadFile, |x, p| x.c.call("rt_tar_list", &[x.t(p)]), |x| s(&x.fx.a.join("good.tar"))),
        case("rt_tar_open", "path", ReadFile, |x, p| x.c.call("rt_tar_open", &[x.t(p)]), |x| s(&x.fx.a.join("good.tar"))),
        case("rt_tar_extract", "archive", ReadFile, |x, p| x.c.call("rt_tar_extract", &[x.t(p), x.t(&x.fresh("x"))]), |x| s(&x.fx.a.join("good.tar"))),
        case("rt_tar_extract", "target_dir", WriteDir, |x, p| x.c.call("rt_tar_extract", &[x.a("good.tar"), x.t(p)]), dst_dir),
        case(
            "rt_tar_extract_file",
            "tar (a path)",
            ReadFile,
            |x, p| x.c.call("rt_tar_extract_file", &[x.t(p), x.c.text("in.txt"), x.t(&x.fresh("o.txt"))]),
            |x| s(&x.fx.a.join("good.tar")),
        ),
        case("rt_tar_extract_file", "output_path", WriteFile, |x, p| x.c.call("rt_tar_extract_file", &[x.a("good.tar"), x.c.text("in.txt"), x.t(p)]), dst),
        case("rt_targz_create", "tar_path", ReadFile, |x, p| x.c.call("rt_targz_create", &[x.t(p), x.t(&x.fresh("o.tar.gz"))]), |x| s(&x.fx.a.join("good.tar"))),
        case("rt_targz_create", "output_path", WriteFile, |x, p| x.c.call("rt_targz_create", &[x.a("good.tar"), x.t(p)]), dst),
        case("rt_targz_extract", "input_path", ReadFile, |x, p| x.c.call("rt_targz_extract", &[x.t(p), x.t(&x.fresh("x"))]), |x| s(&x.fx.a.join("good.tar.gz"))),
        case("rt_targz_extract", "output_dir", WriteDir, |x, p| x.c.call("rt_targz_extract", &[x.a("good.tar.gz"), x.t(p)]), dst_dir),
        // ---- archive: zip
        case(
            "rt_zip_create",
            "path",
            WriteFile,
            |x, p| {
                let z = x.c.call("rt_zip_create", &[x.t(p)]);
                if x.c.kind_of(z) == kind::ERROR {
                    return z;
                }
                x.c.ok(x.c.call("rt_zip_add_data", &[z, x.c.text("d.txt"), x.c.bytes(b"inside data")]));
                x.c.call("rt_zip_close", &[z])
            },
            dst,
        ),
        case(
            "rt_zip_add_file",
            "file_path",
            ReadFile,
            |x, p| {
                let out = x.fresh("w.zip");
                // Stored (level 0), so content that got in shows as is.
                let z = x.c.ok(x.c.call("rt_zip_create", &[x.t(&out), x.c.dict(&[("level", x.c.int(0))])]));
                let v = x.c.call("rt_zip_add_file", &[z, x.c.text("entry"), x.t(p)]);
                x.c.ok(x.c.call("rt_zip_close", &[z]));
                x.archive_or(v, &out)
            },
            |x| s(&x.fx.a.join("in.txt")),
        ),
        case("rt_zip_open", "path", ReadFile, |x, p| x.c.call("rt_zip_open", &[x.t(p)]), |x| s(&x.fx.a.join("good.zip"))),
        case(
            "rt_zip_extract",
            "output_dir",
            WriteDir,
            |x, p| {
                let z = x.c.ok(x.c.call("rt_zip_open", &[x.a("good.zip")]));
                let v = x.c.call("rt_zip_extract", &[z, x.t(p)]);
                x.c.call("rt_zip_close", &[z]);
                v
            },
            dst_dir,
        ),
        case(
            "rt_zip_extract_file",
            "output_path",
            WriteFile,
            |x, p| {
                let z = x.c.ok(x.c.call("rt_zip_open", &[x.a("good.zip")]));
                let v = x.c.call("rt_zip_extract_file", &[z, x.c.text("in.txt"), x.t(p)]);
                x.c.call("rt_zip_close", &[z]);
                v
            },
            dst,
        ),
        // ---- cli
        case("rt_readline_history_load", "path", ReadFile, |x, p| x.c.call("rt_readline_history_load", &[x.t(p)]), |x| s(&x.fx.a.join("hist"))),
        case("rt_readline_history_save", "path", WriteFile, |x, p| x.c.call("rt_readline_history_save", &[x.t(p)]), dst),
        case(
            "rt_watch_path",
            "path (a directory)",
            ReadDir,
            |x, p| x.c.call("rt_watch_path", &[x.t(p), x.c.dict(&[("debounce_ms", x.c.int(0))])]),
            |x| s(&x.fx.d),
        ),
        case("rt_watch_path", "path (a file)", ReadFile, |x, p| x.c.call("rt_watch_path", &[x.t(p)]), |x| s(&x.fx.a.join("in.txt"))),
        // ---- codegen
        case("rt_cranelift_emit_object", "path", WriteFile, |x, p| x.emit_object(p), dst),
        // ---- net
        case(
            "rt_http_server_static",
            "dir",
            ReadDir,
            |x, p| x.c.call("rt_http_server_static", &[x.server, x.c.text("/static"), x.t(p)]),
            |x| s(&x.fx.d),
        ),
        case(
            "rt_socket_unix_listen",
            "path",
            Listen,
            |x, p| {
                let v = x.c.call("rt_socket_unix_listen", &[x.t(p)]);
                if x.c.kind_of(v) == kind::HANDLE {
                    x.c.call("rt_socket_close", &[v]);
                }
                v
            },
            |x| x.fresh("sock"),
        ),
        case(
            "rt_socket_unix_listen",
            "path (opts.replace: a stale socket is removed first)",
            Listen,
            |x, p| {
                let v = x.c.call("rt_socket_unix_listen", &[x.t(p), x.c.dict(&[("replace", TRUE)])]);
                if x.c.kind_of(v) == kind::HANDLE {
                    x.c.call("rt_socket_close", &[v]);
                }
                v
            },
            |x| x.fresh("sock"),
        ),
        case(
            "rt_unix_socket_connect",
            "path",
            Connect,
            |x, p| {
                let v = x.c.call("rt_unix_socket_connect", &[x.t(p), x.c.dict(&[("timeout_ms", x.c.int(2000))])]);
                if x.c.kind_of(v) == kind::HANDLE {
                    x.c.call("rt_socket_close", &[v]);
                }
                v
            },
            |x| {
                // A listener in D (pinned, closed by teardown).
                let p = x.fresh("lsock");
                let l = x.c.ok(x.c.call("rt_socket_unix_listen", &[x.t(&p)]));
                (x.c.value_pin)(l);
                x.keep.borrow_mut().push(l);
                p
            },
        ),
        case("rt_http_download", "path", WriteFile, |x, p| x.c.call("rt_http_download", &[x.t(&x.http.url()), x.t(p)]), dst),
        case(
            "rt_http_upload",
            "file_path",
            ReadFile,
            |x, p| x.c.call("rt_http_upload", &[x.t(&x.http.url()), x.t(p), x.c.text("file")]),
            |x| s(&x.fx.a.join("in.txt")),
        ),
        case(
            "rt_http_post",
            "opts.multipart[].path",
            ReadFile,
            |x, p| {
                let part = x.c.dict(&[("name", x.c.text("f")), ("path", x.t(p))]);
                let parts = (x.c.array_new)(1);
                (x.c.array_push)(parts, part);
                x.c.call("rt_http_post", &[x.t(&x.http.url()), NIL, x.c.dict(&[("multipart", parts)])])
            },
            |x| s(&x.fx.a.join("in.txt")),
        ),
        case(
            "rt_http_get",
            "opts.ca_file",
            ReadFile,
            |x, p| x.c.call("rt_http_get", &[x.t(&x.http.url()), x.c.dict(&[("ca_file", x.t(p))])]),
            |x| s(&x.fx.a.join("ca.pem")),
        ),
        // ---- torch (only when libffi_torch is loaded)
        case(
            "rt_model_save",
            "path",
            WriteFile,
            |x, p| {
                let st = x.c.ok(x.c.call("rt_torch_store_new", &[]));
                let v = x.c.call("rt_model_save", &[st, x.t(p)]);
                x.c.call("rt_handle_close", &[st]);
                v
            },
            dst,
        ),
        case(
            "rt_model_load",
            "path",
            ReadFile,
            |x, p| {
                let st = x.c.ok(x.c.call("rt_torch_store_new", &[]));
                let v = x.c.call("rt_model_load", &[st, x.t(p)]);
                x.c.call("rt_handle_close", &[st]);
                v
            },
            |x| {
                let p = x.fresh("model.pt");
                let st = x.c.ok(x.c.call("rt_torch_store_new", &[]));
                x.c.ok(x.c.call("rt_model_save", &[st, x.t(&p)]));
                x.c.call("rt_handle_close", &[st]);
                p
            },
        ),
        // ---- core (last: see above)
        case("rt_cap_audit", "path", WriteFile, |x, p| x.c.call("rt_cap_audit", &[x.t(p)]), dst),
    ]
}

// ---------------------------------------------------------------- spellings

/// Spellings that all name T/O, through every kind of indirection.
fn o_prefixes(fx: &Fx) -> Vec<String> {
    let (t, d) = (s(&fx.t), s(&fx.d));
    vec![
        format!("{d}/link_dir"),
        format!("{d}/sub/link_dir"),
        format!("{d}/link_rel"),
        format!("{d}/sub/link_rel"),
        format!("{d}/link_chain"),
        format!("{d}/sub/link_chain"),
        format!("{d}/link_dir/o_sub/.."),
        format!("{d}/../O"),
        format!("{d}/sub/../../O"),
        format!("{d}/./sub/.././../O"),
        format!("{d}//link_dir"),
        format!("{d}/sub//link_rel"),
        format!("{t}/O"),
        format!("{t}//O"),
        format!("/proc/self/root{t}/O"),
        format!("/proc/thread-self/root{t}/O"),
        format!("/proc/self/fd/{}", fx.no),
        format!("/proc/self/fd/{}/link_dir", fx.nd),
        "/proc/self/cwd/link_dir".into(),
        "link_dir".into(),
        "../O".into(),
        "./sub/link_rel".into(),
    ]
}

/// A few prefixes that get every trailing variant.
fn some(p: &[String]) -> Vec<String> {
    [0, 3, 4, 9, 14].iter().filter_map(|&i| p.get(i).cloned()).collect()
}

/// Spellings of the T/F file and of the dangling link (outside, missing).
fn file_links(fx: &Fx) -> Vec<String> {
    let (t, d) = (s(&fx.t), s(&fx.d));
    vec![
        format!("{d}/link_file"),
        format!("{d}/sub/link_file"),
        format!("{d}/link_file/"),
        format!("{d}/link_file/."),
        format!("{d}/link_file//"),
        format!("{d}/sub/../link_file"),
        format!("{t}/F"),
        format!("{t}//F"),
        format!("/proc/self/root{t}/F"),
        format!("/proc/self/fd/{}/link_file", fx.nd),
        "link_file".into(),
        format!("{d}/link_dangling"),
        format!("{d}/sub/link_dangling"),
        format!("{d}/link_dangling/."),
        "sub/link_dangling".into(),
    ]
}

fn spellings(fx: &Fx, role: Role) -> Vec<String> {
    let p = o_prefixes(fx);
    let few = some(&p);
    let mut v = Vec::new();
    let dir_suffixes = ["/", "/.", "//", "/./", "/o_sub", "/o_sub/.", "/o_sub/o_empty/.."];
    match role {
        Role::ReadFile => {
            v.extend(p.iter().map(|x| format!("{x}/o_secret.txt")));
            for x in &few {
                for suf in ["/./o_secret.txt", "//o_secret.txt", "/o_sub/o_deep.txt", "/o_sub/../o_secret.txt", "/o_secret.txt/", "/o_secret.txt/."] {
                    v.push(format!("{x}{suf}"));
                }
            }
            v.extend(file_links(fx));
        }
        Role::WriteFile => {
            v.extend(p.iter().map(|x| format!("{x}/o_new")));
            v.extend(p.iter().map(|x| format!("{x}/o_secret.txt")));
            for x in &few {
                for suf in ["/./o_new", "//o_new", "/o_sub/o_deep.txt", "/o_sub/o_new", "/o_new_dir/o_new", "/o_new/", "/o_new/."] {
                    v.push(format!("{x}{suf}"));
                }
            }
            v.extend(file_links(fx));
        }
        Role::ReadDir => {
            v.extend(p.iter().cloned());
            for x in &few {
                v.extend(dir_suffixes.iter().map(|suf| format!("{x}{suf}")));
            }
            v.extend(file_links(fx));
        }
        Role::WriteDir => {
            v.extend(p.iter().cloned());
            v.extend(p.iter().map(|x| format!("{x}/o_new")));
            for x in &few {
                v.extend(dir_suffixes.iter().map(|suf| format!("{x}{suf}")));
                v.push(format!("{x}/o_new/deeper"));
            }
            v.extend(file_links(fx));
        }
        Role::Listen => {
            v.extend(p.iter().map(|x| format!("{x}/o_new")));
            for x in &few {
                for suf in ["/./o_new", "//o_new", "/o_sub/o_new", "/o_new/", "/o_sock"] {
                    v.push(format!("{x}{suf}"));
                }
            }
            v.extend(file_links(fx));
            let d = s(&fx.d);
            v.extend([format!("{d}/link_dir/."), format!("{d}/link_dir/"), format!("{d}/link_sock")]);
        }
        Role::Connect => {
            v.extend(p.iter().map(|x| format!("{x}/o_sock")));
            for x in &few {
                v.extend(["/./o_sock", "//o_sock", "/o_sub/../o_sock"].iter().map(|suf| format!("{x}{suf}")));
            }
            let d = s(&fx.d);
            v.extend([format!("{d}/link_sock"), format!("{d}/sub/../link_sock"), "link_sock".into(), format!("/proc/self/fd/{}/link_sock", fx.nd)]);
            v.extend(file_links(fx));
        }
    }
    v
}

// ---------------------------------------------------------------- judging

/// Refusals other than CapabilityDenied that are a proper answer to an
/// escape spelling, with the reason; None: not acceptable.
fn acceptable(c: &Core, role: Role, spelled: &str, code: u32, msg: &str) -> Option<&'static str> {
    let name = c.code_name(code);
    if name == "InvalidArgument"
        && (msg.contains("names a directory, not a file") || msg.contains("names '/', '.' or '..'"))
        && (spelled.ends_with('/') || spelled.ends_with("/.") || spelled.ends_with(".."))
    {
        return Some("the spelling names a directory where a file is written: refused on the spelling, before any resolution");
    }
    if name == "InvalidArgument" && msg.contains("source name: `..` in path refused") {
        return Some("rt_tar_create names array sources as given: a `..` in one is refused on the spelling, before any resolution");
    }
    if name == "AlreadyExists" && role == Role::Listen {
        let last = spelled.trim_end_matches(['/', '.']).rsplit('/').next().unwrap_or("");
        if last.starts_with("link_") {
            return Some("a listener acts on the final name itself, never following it: a link of D is there, so the name is taken");
        }
    }
    None
}

/// Whether an Error message starts with the function's name ("rt_x: ..." or "rt_x needs fs.read for ...").
fn names_fn(msg: &str, func: &str) -> bool {
    msg.strip_prefix(func).is_some_and(|r| r.starts_with(':') || r.starts_with(' '))
}

fn broken(name: &str) -> bool {
    matches!(name, "Panic" | "Internal" | "TypeMismatch")
}

/// Runs one attacked call and judges it; failures are pushed to `fails`.
fn attack(x: &Ctx, k: &Case, spelled: &str, tally: &mut BTreeMap<String, u32>, fails: &mut Vec<String>) {
    let c = x.c;
    let before = x.fx.outside();
    let v = (k.call)(x, spelled);
    let what = format!("{}({}={spelled:?})", k.func, k.arg);
    if let Some(l) = leak(c, v, spelled) {
        fails.push(format!("{what}: returned outside content or names: {l:?}"));
    }
    match c.error(v) {
        None => fails.push(format!("{what}: ESCAPE: succeeded (kind {})", c.kind_of(v))),
        Some((code, msg)) => {
            let name = c.code_name(code);
            if !names_fn(&msg, k.func) {
                fails.push(format!("{what}: the message does not start with the function's name: {msg}"));
            }
            if broken(&name) {
                fails.push(format!("{what}: broken Error {name}: {msg}"));
            } else if name != "CapabilityDenied" {
                match acceptable(c, k.role, spelled, code, &msg) {
                    Some(why) => *tally.entry(format!("{} {name}: {why}", k.func)).or_default() += 1,
                    None => fails.push(format!("{what}: {name} where CapabilityDenied was expected: {msg}")),
                }
            } else {
                *tally.entry("CapabilityDenied".into()).or_default() += 1;
            }
        }
    }
    x.settle(v);
    let after = x.fx.outside();
    if after != before {
        fails.push(format!("{what}: ESCAPE: the outside tree changed: {}", diff(&before, &after)));
    }
    x.fx.restore_inside();
}

fn report(what: &str, fails: &[String]) {
    assert!(fails.is_empty(), "{what}: {} failures:\n{}", fails.len(), fails.iter().take(60).cloned().collect::<Vec<_>>().join("\n"));
}

/// The functions the sweep must cover: registry `fs.*` outside io, plus PATH_UNDER_OTHER_CAP present.
fn must_sweep(c: &Core) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for e in c.registry() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let cap = e["capability"].as_str().unwrap_or("");
        let domain = e["domain"].as_str().unwrap_or("");
        if (cap.starts_with("fs.") && domain != "io") || PATH_UNDER_OTHER_CAP.contains(&name.as_str()) {
            out.insert(name);
        }
    }
    out
}

// ---------------------------------------------------------------- tests

/// The table cannot go stale: every fs-capability function outside io (and
/// every PATH_UNDER_OTHER_CAP function present) is in it, and every table
/// function exists (torch's only when loaded).
#[test]
fn table_covers_the_registry() {
    open_all();
    let c = core();
    let need = must_sweep(c);
    let have: BTreeSet<String> = cases().iter().map(|k| k.func.to_string()).collect();
    let missing: Vec<&String> = need.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "functions taking a path under a scoped capability are missing from the sweep table in tests/tests/scope_sweep.rs \
         (add a case: which argument is the path, how to call it, an in-scope control): {missing:?}"
    );
    let stale: Vec<&String> = have.iter().filter(|f| !c.has(f) && !OPTIONAL_FUNCS.contains(&f.as_str())).collect();
    assert!(stale.is_empty(), "the sweep table names functions the registry does not have: {stale:?}");
    assert!(need.len() >= 26, "the registry lists only {} functions to sweep: {need:?}", need.len());
    eprintln!("sweeping {} functions ({} table rows): {need:?}", need.len(), cases().len());
}

fn setup<'a>(c: &'a Core, fx: &'a Fx, http: &'a Http) -> Ctx<'a> {
    let server = c.ok(c.call("rt_http_server_create", &[c.int(0)]));
    (c.value_pin)(server);
    Ctx { c, fx, http, server, n: Cell::new(0), keep: RefCell::default() }
}

fn teardown(x: &Ctx) {
    for h in x.keep.borrow_mut().drain(..) {
        x.c.call("rt_socket_close", &[h]);
        (x.c.value_unpin)(h);
    }
    x.c.call("rt_http_server_destroy", &[x.server]);
    (x.c.value_unpin)(x.server);
    let got = x.http.received();
    assert!(!got.contains(MARK), "the HTTP server received outside content: {:?}", &got[..got.len().min(400)]);
}

/// Every function × every spelling of its role is refused and changes and
/// reveals nothing outside; each control call succeeds.
#[test]
fn sweep_escapes() {
    in_child("sweep_escapes", &[], || {
        open_all();
        let c = core();
        let fx = Fx::new();
        fx.assets(c);
        let http = Http::start();
        let x = setup(c, &fx, &http);
        fx.scope(c);
        let t0 = Instant::now();
        let (mut fails, mut tally) = (Vec::new(), BTreeMap::new());
        let (mut calls, mut rows) = (0usize, 0usize);
        for k in cases() {
            if !c.has(k.func) {
                assert!(OPTIONAL_FUNCS.contains(&k.func), "{} is not loaded", k.func);
                eprintln!("note: {} is not loaded (feature library): skipped", k.func);
                continue;
            }
            rows += 1;
            let t1 = Instant::now();
            let sp = spellings(&fx, k.role);
            for p in &sp {
                attack(&x, &k, p, &mut tally, &mut fails);
                calls += 1;
            }
            // The control: an in-scope path must work.
            let before = fx.outside();
            let p = (k.control)(&x);
            let v = (k.call)(&x, &p);
            calls += 1;
            if let Some((code, m)) = c.error(v) {
                fails.push(format!("{}({}={p:?}) control (in scope) failed: {}: {m}", k.func, k.arg, c.code_name(code)));
            }
            if let Some(l) = leak(c, v, &p) {
                fails.push(format!("{}({}={p:?}) control returned outside content or names: {l:?}", k.func, k.arg));
            }
            x.settle(v);
            let after = fx.outside();
            if after != before {
                fails.push(format!("{}({}) control changed the outside tree: {}", k.func, k.arg, diff(&before, &after)));
            }
            fx.restore_inside();
            eprintln!("{:<28} {:<46} {:>3} spellings  {:?}", k.func, k.arg, sp.len(), t1.elapsed());
        }
        served_links_refused(&x, &mut fails);
        members_through_links(&x, &mut fails);
        teardown(&x);
        eprintln!("sweep: {rows} table rows, {calls} calls in {:?}", t0.elapsed());
        for (k, n) in &tally {
            eprintln!("  {n:>5} x {k}");
        }
        report("sweep_escapes", &fails);
    });
}

/// The static directory registered by the control (D): links in it lead
/// outside, so serving them must answer 404 (never outside content).
fn served_links_refused(x: &Ctx, fails: &mut Vec<String>) {
    let c = x.c;
    let srv = x.server;
    let port = c.get_int(c.call("rt_http_server_port", &[srv])).expect("server port");
    let paths = [
        "/static/a.txt",
        "/static/link_file",
        "/static/link_dir/o_secret.txt",
        "/static/sub/link_rel/o_secret.txt",
        "/static/link_chain/o_sub/o_deep.txt",
        "/static/link_dir/",
        "/static/sub/link_file",
        "/static/%2e%2e/O/o_secret.txt",
        "/static/..%2fO/o_secret.txt",
        "/static/sub/%2e%2e/%2e%2e/F",
    ];
    let get = move |path: &str| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).expect("connect to the static server");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    // Served by rt_http_server_start on its own thread (registered with the collector), stopped below.
    let serving = std::thread::spawn(move || {
        let c = core();
        (c.thread_attach)();
        let r = c.call("rt_http_server_start", &[srv]);
        let e = c.error(r).map(|(code, m)| format!("{}: {m}", c.code_name(code)));
        (c.thread_detach)();
        e
    });
    for path in paths {
        let before = x.fx.outside();
        let resp = get(path);
        let status = resp.split_whitespace().nth(1).unwrap_or("").to_string();
        if resp.contains(MARK) || (path != "/static/a.txt" && status == "200") {
            fails.push(format!("GET {path}: ESCAPE: served {:?}", &resp[..resp.len().min(300)]));
        }
        if path == "/static/a.txt" && !(status == "200" && resp.contains("inside a")) {
            fails.push(format!("GET {path} (in scope) was not served: {resp:?}"));
        }
        if x.fx.outside() != before {
            fails.push(format!("GET {path} changed the outside tree"));
        }
    }
    c.ok(c.call("rt_http_server_stop", &[srv]));
    if let Some(e) = serving.join().expect("serving thread") {
        fails.push(format!("rt_http_server_start: {e}"));
    }
}

/// Archive members named through D's links, extracted into D (in scope):
/// refused or written inside D (a member named like a link replaces the
/// link), never through the link; O unchanged. ffi_archive/tests/escape.rs
/// has the full member matrix; this is the same fixture as the sweep.
fn members_through_links(x: &Ctx, fails: &mut Vec<String>) {
    let c = x.c;
    let members = [
        "link_dir/o_new",
        "link_dir/o_secret.txt",
        "sub/link_rel/o_new",
        "link_chain/o_sub/o_new",
        "sub/link_dir/o_sub/o_deep.txt",
        "link_file",
        "link_dangling",
        "sub/link_dangling",
    ];
    let d = s(&x.fx.d);
    for m in members {
        let tar = x.fresh("m.tar");
        let w = c.ok(c.call("rt_tar_create", &[c.text(&tar), NIL]));
        c.ok(c.call("rt_tar_add_data", &[w, c.text(m), c.bytes(b"PWNED")]));
        c.ok(c.call("rt_tar_close", &[w]));
        let zip = x.fresh("m.zip");
        let z = c.ok(c.call("rt_zip_create", &[c.text(&zip)]));
        c.ok(c.call("rt_zip_add_data", &[z, c.text(m), c.bytes(b"PWNED")]));
        c.ok(c.call("rt_zip_close", &[z]));
        // Moved (by the test, not under the policy) to A, out of the way of D's rebuilds.
        let (tar, zip) = (x.fx.a.join(Path::new(&tar).file_name().unwrap()), x.fx.a.join(Path::new(&zip).file_name().unwrap()));
        fs::rename(x.fx.d.join(tar.file_name().unwrap()), &tar).unwrap();
        fs::rename(x.fx.d.join(zip.file_name().unwrap()), &zip).unwrap();
        let (tar, zip) = (s(&tar), s(&zip));
        type Extract = fn(&Core, &str, &str, &str) -> RtValue;
        let ways: [(&str, Extract); 2] = [
            ("rt_tar_extract", |c, tar, _, d| c.call("rt_tar_extract", &[c.text(tar), c.text(d)])),
            ("rt_zip_extract", |c, _, zip, d| {
                let r = c.ok(c.call("rt_zip_open", &[c.text(zip)]));
                let v = c.call("rt_zip_extract", &[r, c.text(d)]);
                c.call("rt_zip_close", &[r]);
                v
            }),
        ];
        for (func, extract) in ways {
            // Each extraction meets D as built (the links in place).
            x.fx.reset_inside();
            let before = x.fx.outside();
            let v = extract(c, &tar, &zip, &d);
            let outcome = c.error(v).map_or("extracted".to_string(), |(code, msg)| format!("{}: {msg}", c.code_name(code)));
            eprintln!("member {m:<32} {func}: {}", outcome.chars().take(140).collect::<String>());
            if let Some((code, msg)) = c.error(v) {
                if broken(&c.code_name(code)) || !names_fn(&msg, func) {
                    fails.push(format!("{func}(member {m:?} into D): {}: {msg}", c.code_name(code)));
                }
            }
            let after = x.fx.outside();
            if after != before {
                fails.push(format!("{func}(member {m:?} into D): ESCAPE: the outside tree changed: {}", diff(&before, &after)));
            }
        }
    }
    x.fx.reset_inside();
}

// ---------------------------------------------------------------- races

type RaceCall = fn(&Ctx, &str) -> RtValue;

/// The write functions, each called with a fresh name under D/sub (`p`).
fn racers() -> Vec<(&'static str, RaceCall)> {
    vec![
        ("rt_tar_extract", |x, p| x.c.call("rt_tar_extract", &[x.a("good.tar"), x.t(p)])),
        ("rt_targz_extract", |x, p| x.c.call("rt_targz_extract", &[x.a("good.tar.gz"), x.t(p)])),
        ("rt_zip_extract", |x, p| {
            let z = x.c.ok(x.c.call("rt_zip_open", &[x.a("good.zip")]));
            let v = x.c.call("rt_zip_extract", &[z, x.t(p)]);
            x.c.call("rt_zip_close", &[z]);
            v
        }),
        ("rt_tar_create", |x, p| x.c.call("rt_tar_create", &[x.t(p), x.a("srcdir")])),
        ("rt_zip_create", |x, p| {
            let z = x.c.call("rt_zip_create", &[x.t(p)]);
            if x.c.kind_of(z) != kind::HANDLE {
                return z;
            }
            x.c.call("rt_zip_add_data", &[z, x.c.text("d.txt"), x.c.bytes(b"PWNED")]);
            x.c.call("rt_zip_close", &[z])
        }),
        ("rt_gzip_compress_file", |x, p| x.c.call("rt_gzip_compress_file", &[x.a("in.txt"), x.t(p)])),
        ("rt_gzip_decompress_file", |x, p| x.c.call("rt_gzip_decompress_file", &[x.a("in.gz"), x.t(p)])),
        ("rt_xz_compress_file", |x, p| x.c.call("rt_xz_compress_file", &[x.a("in.txt"), x.t(p)])),
        ("rt_xz_decompress_file", |x, p| x.c.call("rt_xz_decompress_file", &[x.a("in.xz"), x.t(p)])),
        ("rt_targz_create", |x, p| x.c.call("rt_targz_create", &[x.a("good.tar"), x.t(p)])),
        ("rt_tar_extract_file", |x, p| x.c.call("rt_tar_extract_file", &[x.a("good.tar"), x.c.text("in.txt"), x.t(p)])),
        ("rt_zip_extract_file", |x, p| {
            let z = x.c.ok(x.c.call("rt_zip_open", &[x.a("good.zip")]));
            let v = x.c.call("rt_zip_extract_file", &[z, x.c.text("in.txt"), x.t(p)]);
            x.c.call("rt_zip_close", &[z]);
            v
        }),
        ("rt_readline_history_save", |x, p| x.c.call("rt_readline_history_save", &[x.t(p)])),
        ("rt_cranelift_emit_object", |x, p| x.emit_object(p)),
        ("rt_socket_unix_listen", |x, p| {
            let v = x.c.call("rt_socket_unix_listen", &[x.t(p)]);
            if x.c.kind_of(v) == kind::HANDLE {
                x.c.call("rt_socket_close", &[v]);
            }
            v
        }),
        ("rt_http_download", |x, p| x.c.call("rt_http_download", &[x.t(&x.http.url()), x.t(p)])),
    ]
}

/// Readers of D/sub/in.txt (or D/sub itself) whose result shows what they read: an archive
/// stored uncompressed, the history, the bytes the HTTP server received (checked at the end).
fn read_racers() -> Vec<(&'static str, RaceCall)> {
    vec![
        ("rt_tar_create(sources=D/sub)", |x, _| {
            let out = x.fresh("r.tar");
            let v = x.c.call("rt_tar_create", &[x.t(&out), x.t(&s(&x.fx.d.join("sub")))]);
            x.archive_or(v, &out)
        }),
        ("rt_tar_add_file", |x, _| {
            let out = x.fresh("w.tar");
            let w = x.c.ok(x.c.call("rt_tar_create", &[x.t(&out), NIL]));
            let v = x.c.call("rt_tar_add_file", &[w, x.c.text("entry"), x.t(&s(&x.fx.d.join("sub/in.txt")))]);
            x.c.ok(x.c.call("rt_tar_close", &[w]));
            x.archive_or(v, &out)
        }),
        ("rt_zip_add_file", |x, _| {
            let out = x.fresh("w.zip");
            let z = x.c.ok(x.c.call("rt_zip_create", &[x.t(&out), x.c.dict(&[("level", x.c.int(0))])]));
            let v = x.c.call("rt_zip_add_file", &[z, x.c.text("entry"), x.t(&s(&x.fx.d.join("sub/in.txt")))]);
            x.c.ok(x.c.call("rt_zip_close", &[z]));
            x.archive_or(v, &out)
        }),
        ("rt_readline_history_load", |x, _| {
            let v = x.c.call("rt_readline_history_load", &[x.t(&s(&x.fx.d.join("sub/in.txt")))]);
            if x.c.kind_of(v) == kind::ERROR {
                return v;
            }
            x.c.call("rt_readline_history", &[])
        }),
        ("rt_http_upload", |x, _| x.c.call("rt_http_upload", &[x.t(&x.http.url()), x.t(&s(&x.fx.d.join("sub/in.txt"))), x.c.text("file")])),
    ]
}

const RACE_TIME: Duration = Duration::from_millis(500);
const RACE_ITERS: u32 = 3000;

/// Each write function with paths under D/sub while D/sub is swapped for a symlink to O: O never changes.
#[test]
fn sweep_races() {
    in_child("sweep_races", &[], || {
        open_all();
        let c = core();
        let fx = Fx::new();
        fx.assets(c);
        let http = Http::start();
        let x = setup(c, &fx, &http);
        fx.scope(c);
        let mut fails = Vec::new();
        for (label, call) in racers().into_iter().chain(read_racers()) {
            let name = label.split('(').next().unwrap_or(label);
            if !c.has(name) {
                continue;
            }
            fx.reset_inside();
            let before = fx.outside();
            let sw = Swapper::start(fx.d.join("sub"), fx.o.clone(), 2000);
            let t0 = Instant::now();
            let (mut n, mut oks, mut denied) = (0u32, 0u32, 0u32);
            while n < RACE_ITERS && t0.elapsed() < RACE_TIME {
                let p = s(&fx.d.join(format!("sub/r{n}")));
                let v = call(&x, &p);
                n += 1;
                if let Some(l) = leak(c, v, &p) {
                    fails.push(format!("{name}({p:?}) under the swap: returned outside content: {l:?}"));
                }
                match c.error(v) {
                    None => oks += 1,
                    Some((code, m)) => {
                        let cn = c.code_name(code);
                        if broken(&cn) || !names_fn(&m, name) {
                            fails.push(format!("{name}({p:?}) under the swap: {cn}: {m}"));
                        }
                        denied += u32::from(cn == "CapabilityDenied");
                    }
                }
                x.settle(v);
            }
            let swaps = sw.finish();
            let after = fx.outside();
            eprintln!("race {label:<30} {n:>4} calls in {:?}: {oks} ok, {denied} CapabilityDenied, {swaps} swaps", t0.elapsed());
            if after != before {
                fails.push(format!("{name}: ESCAPE under the swap: the outside tree changed: {}", diff(&before, &after)));
            }
            if swaps == 0 {
                fails.push(format!("{name}: the swapper never swapped"));
            }
        }
        fx.reset_inside();
        teardown(&x);
        report("sweep_races", &fails);
    });
}

// ---------------------------------------------------------------- hard links

type Writer = (&'static str, fn(&Ctx, &str) -> RtValue);

/// Every function that writes a destination file, called with `p` as that file.
fn writers() -> Vec<Writer> {
    let mut w: Vec<Writer> = racers()
        .into_iter()
        .filter(|(n, _)| !matches!(*n, "rt_tar_extract" | "rt_targz_extract" | "rt_zip_extract" | "rt_socket_unix_listen"))
        .collect();
    w.push(("rt_tar_create", |x, p| {
        // The TarWriter form: the check is at creation.
        let v = x.c.call("rt_tar_create", &[x.t(p), NIL]);
        if x.c.kind_of(v) != kind::HANDLE {
            return v;
        }
        x.c.call("rt_tar_close", &[v])
    }));
    w.push(("rt_cap_audit", |x, p| x.c.call("rt_cap_audit", &[x.t(p)])));
    w.push(("rt_model_save", |x, p| {
        let st = x.c.ok(x.c.call("rt_torch_store_new", &[]));
        let v = x.c.call("rt_model_save", &[st, x.t(p)]);
        x.c.call("rt_handle_close", &[st]);
        v
    }));
    w
}

/// A hard link D/h to T/F (made before the policy) is refused as every
/// writer's destination under the scoped fs.write, whatever the spelling;
/// F keeps its content, inode and links. Extraction onto a member named h
/// replaces the link (never writes through it): F unchanged.
#[test]
fn sweep_hard_links() {
    in_child("sweep_hard_links", &[], || {
        open_all();
        let c = core();
        let fx = Fx::new();
        fx.assets(c);
        let http = Http::start();
        let x = setup(c, &fx, &http);
        let h = fx.d.join("h");
        fs::hard_link(&fx.f, &h).expect("hard link D/h -> T/F (same file system)");
        *fx.pristine.borrow_mut() = fx.inside();
        fx.scope(c);
        let f0 = fx.f_state();
        assert_eq!(f0.2, 2);
        let d = s(&fx.d);
        let mut fails = Vec::new();
        let mut n = 0;
        for (name, w) in writers() {
            if !c.has(name) {
                continue;
            }
            for p in [s(&h), format!("{d}/./h"), format!("{d}/sub/../h"), format!("{d}//h"), format!("/proc/self/root{d}/h"), "h".to_string()] {
                let v = w(&x, &p);
                n += 1;
                match c.error(v) {
                    None => fails.push(format!("{name}({p:?}): a hard link to a file outside was accepted as the destination")),
                    Some((code, m)) => {
                        if c.code_name(code) != "CapabilityDenied" || !m.contains("hard link") || !names_fn(&m, name) {
                            fails.push(format!("{name}({p:?}): expected CapabilityDenied about hard links, got {}: {m}", c.code_name(code)));
                        }
                    }
                }
                x.settle(v);
                if fx.f_state() != f0 {
                    fails.push(format!("{name}({p:?}): F changed through the hard link: {:?}", fx.f_state()));
                    fs::write(&fx.f, "OUTSIDE F").unwrap();
                }
                if fs::metadata(&h).map(|m| m.ino()).ok() != Some(f0.1) {
                    fails.push(format!("{name}({p:?}): D/h was replaced (the link is gone)"));
                    remove_any(&h);
                    fs::hard_link(&fx.f, &h).unwrap();
                }
            }
        }
        // A hard link in D to the socket T/O/o_sock (a listener outside): connecting
        // is writing to it (fs.write), so it is refused as writing through a hard
        // link to a regular file is.
        let hs = fx.d.join("hs");
        fs::hard_link(fx.o.join("o_sock"), &hs).unwrap();
        for p in [s(&hs), format!("{d}/./hs"), "hs".to_string()] {
            let v = c.call("rt_unix_socket_connect", &[c.text(&p), c.dict(&[("timeout_ms", c.int(2000))])]);
            n += 1;
            match c.error(v) {
                None => fails.push(format!("rt_unix_socket_connect({p:?}): connected to a listener outside through a hard link in D")),
                Some((code, m)) => {
                    if c.code_name(code) != "CapabilityDenied" || !m.contains("hard link") {
                        fails.push(format!("rt_unix_socket_connect({p:?}): expected CapabilityDenied about hard links, got {}: {m}", c.code_name(code)));
                    }
                }
            }
            x.settle(v);
        }
        remove_any(&hs);
        // Squatted temporaries: a writer that makes its temporary under a name
        // someone with write access to D can predict must not open an existing
        // file there (a hard link to F) for writing: O_EXCL, a fresh name.
        let pid = std::process::id();
        for (i, (name, w)) in writers().into_iter().enumerate() {
            if !c.has(name) {
                continue;
            }
            let dst = format!("victim{i}");
            let squats: Vec<PathBuf> = [
                format!(".{dst}.{pid}.tmp"),
                format!(".{dst}.{pid}.0.tmp"),
                format!(".{dst}.{pid}.1.tmp"),
                format!(".{dst}.rt-download.{pid}.0.part"),
                format!(".{dst}.rt-atomic.{pid}.0.tmp"),
                format!(".{dst}.rt-atomic.{pid}.1.tmp"),
                format!(".{dst}.tmp"),
                format!("{dst}.tmp"),
                format!("{dst}.part"),
            ]
            .iter()
            .map(|q| fx.d.join(q))
            .collect();
            for q in &squats {
                fs::hard_link(&fx.f, q).unwrap();
            }
            let v = w(&x, &s(&fx.d.join(&dst)));
            n += 1;
            if let Some((code, m)) = c.error(v) {
                if broken(&c.code_name(code)) {
                    fails.push(format!("{name}(D/{dst}) with squatted temporaries: {}: {m}", c.code_name(code)));
                }
            }
            x.settle(v);
            let now = fx.f_state();
            if now.0 != f0.0 || now.1 != f0.1 {
                fails.push(format!("{name}(D/{dst}): ESCAPE: wrote into F through a squatted temporary name (a hard link to F): F is now {:?}", now.0.chars().take(40).collect::<String>()));
                fs::write(&fx.f, "OUTSIDE F").unwrap();
            }
            for q in &squats {
                remove_any(q);
            }
            remove_any(&fx.d.join(&dst));
        }
        // Extraction of a member named h: the link is removed and a new file made (F untouched), or refused.
        type Ex = (&'static str, fn(&Ctx) -> RtValue);
        let ex: [Ex; 2] = [
            ("rt_tar_extract", |x| x.c.call("rt_tar_extract", &[x.a("h.tar"), x.t(&s(&x.fx.d))])),
            ("rt_zip_extract", |x| {
                let z = x.c.ok(x.c.call("rt_zip_open", &[x.a("good.zip")]));
                let v = x.c.call("rt_zip_extract", &[z, x.t(&s(&x.fx.d))]);
                x.c.call("rt_zip_close", &[z]);
                v
            }),
        ];
        for (name, e) in ex {
            let v = e(&x);
            n += 1;
            let outcome = match c.error(v) {
                None => "replaced the link with a new file".to_string(),
                Some((code, m)) => format!("{}: {m}", c.code_name(code)),
            };
            eprintln!("hard link: {name} onto D/h: {outcome}");
            if fx.f_state().0 != f0.0 || fx.f_state().1 != f0.1 {
                fails.push(format!("{name}: extraction wrote through the hard link D/h into F"));
            }
            remove_any(&h);
            fs::hard_link(&fx.f, &h).unwrap();
        }
        eprintln!("hard links: {n} calls");
        teardown(&x);
        report("sweep_hard_links", &fails);
    });
}

// ---------------------------------------------------------------- watch events

/// rt_watch_path on D (in scope) while D holds links to O: events of O must
/// never be returned, also after a link the watch was set up through is
/// replaced by a real directory of the same name (the event paths then
/// resolve inside D).
#[test]
fn watch_events_never_name_outside() {
    in_child("watch_events_never_name_outside", &[], || {
        open_all();
        let c = core();
        let fx = Fx::new();
        // T/O2/o_sub2 outside, reached only through D/sw.
        let o2 = fx.t.join("O2");
        fs::create_dir_all(o2.join("o_sub2")).unwrap();
        let sw = fx.d.join("sw");
        symlink(&o2, &sw).unwrap();
        fx.scope(c);
        let w = c.ok(c.call("rt_watch_path", &[c.text(&s(&fx.d)), c.dict(&[("debounce_ms", c.int(20))])]));
        (c.value_pin)(w);
        let poll = |ms: i64| -> String {
            let v = c.ok(c.call("rt_watch_poll", &[w, c.dict(&[("timeout_ms", c.int(ms))])]));
            let mut b = Vec::new();
            flat(c, v, &mut b, 0);
            String::from_utf8_lossy(&b).into_owned()
        };
        let mut fails = Vec::new();
        // 1. Links in place: events in O come through D/link_dir, D/sw, ...: all outside.
        fs::write(fx.o.join("o_evt1"), "OUTSIDE evt").unwrap();
        fs::create_dir(fx.o.join("o_evtdir")).unwrap();
        fs::write(fx.d.join("in_evt1"), "inside").unwrap();
        let got = poll(400);
        if got.contains("o_evt") {
            fails.push(format!("events through links in D named outside entries: {got:?}"));
        }
        if !got.contains("in_evt1") {
            fails.push(format!("the in-scope event was not reported (control): {got:?}"));
        }
        // 2. The link the watch went through removed (then a real directory made
        //    in its place): the watches set up below it (on T/O2/o_sub2) must not
        //    report as D/sw/... now that such paths resolve inside D.
        fs::remove_file(&sw).unwrap();
        let _ = poll(100);
        fs::write(o2.join("o_sub2/o_evt2"), "OUTSIDE evt").unwrap();
        fs::write(fx.o.join("o_evtdir/o_evt3"), "OUTSIDE evt").unwrap();
        let got = poll(400);
        if got.contains("o_evt") || got.contains(MARK) {
            fails.push(format!("ESCAPE: after D/sw (a link to T/O2 when the watch began) was removed, events in T/O2/o_sub2 were reported as D/sw/...: {got:?}"));
        }
        fs::create_dir_all(sw.join("o_sub2")).unwrap();
        let _ = poll(100);
        fs::write(o2.join("o_sub2/o_evt4"), "OUTSIDE evt").unwrap();
        fs::write(fx.d.join("in_evt2"), "inside").unwrap();
        let got = poll(400);
        if got.contains("o_evt") || got.contains(MARK) {
            fails.push(format!("ESCAPE: after D/sw (a link to T/O2 when the watch began) became a directory, events in T/O2/o_sub2 were reported as D/sw/...: {got:?}"));
        }
        if !got.contains("in_evt2") {
            fails.push(format!("the in-scope event was not reported (control): {got:?}"));
        }
        // 3. An event in O queued (through a link in D) before the poll, the link
        //    replaced by a real directory of its name before the poll filters it.
        let _ = poll(100);
        fs::write(fx.o.join("o_evt5"), "OUTSIDE evt").unwrap();
        std::thread::sleep(Duration::from_millis(150));
        for dir in [fx.d.clone(), fx.d.join("sub")] {
            for l in ["link_dir", "link_rel", "link_chain", "link_chain2"] {
                fs::remove_file(dir.join(l)).unwrap();
                fs::create_dir(dir.join(l)).unwrap();
            }
        }
        fs::write(fx.d.join("in_evt3"), "inside").unwrap();
        let got = poll(400);
        if got.contains("o_evt") || got.contains(MARK) {
            fails.push(format!(
                "ESCAPE (names): an event in O queued through a link in D was returned after the link became a real directory: {got:?}"
            ));
        }
        c.call("rt_watch_close", &[w]);
        (c.value_unpin)(w);
        report("watch_events_never_name_outside", &fails);
    });
}
