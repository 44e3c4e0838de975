//! A child sees no more of the file system than the policy lets its parent's
//! calls see (confine.rs, docs/SECURITY.md): real programs (cat, sh, rm, mv,
//! ls) under `fs.read`/`fs.write` scopes, their descendants too; TCP
//! connect/bind under `net.*` scopes with ports (python3 sockets); only the
//! programs `process.spawn` allows, for descendants too; a policy
//! that leaves fs whole confines nothing; one with exceptions cannot be
//! passed on. Each case runs in a child process (the policy only narrows).

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_process::child::*;
use ffi_process::process::*;
use ffi_sdk::testing::{err, in_child, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// T/O (outside: secret.txt holding OUTSIDE) and T/D (the scope: a.txt, links to O).
struct Fix {
    _t: tempfile::TempDir,
    o: PathBuf,
    d: PathBuf,
}

fn fixture() -> Fix {
    let t = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(t.path()).unwrap();
    let (o, d) = (root.join("O"), root.join("D"));
    std::fs::create_dir_all(&o).unwrap();
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(o.join("secret.txt"), "OUTSIDE\n").unwrap();
    std::fs::write(d.join("a.txt"), "inside\n").unwrap();
    symlink(o.join("secret.txt"), d.join("link")).unwrap();
    symlink(&o, d.join("linkdir")).unwrap();
    symlink("../../O", d.join("sub/rel")).unwrap();
    Fix { _t: t, o, d }
}

fn p(x: &Path) -> &str {
    x.to_str().unwrap()
}

fn run(program: &str, a: &[&str]) -> (i64, String, String) {
    let argv = Value::array(a.len());
    for s in a {
        argv.push(Value::text(s));
    }
    let r = ok(rt_process_run(text(program), argv.raw(), NIL));
    let f = |k: &str| r.get(k).as_text().unwrap_or("").to_string();
    (r.get("code").as_int().unwrap_or(-1), f("stdout"), f("stderr"))
}

fn sh(script: &str) -> (i64, String, String) {
    run("sh", &["-c", script])
}

/// The outside tree: names and contents, for before/after comparisons.
fn snapshot(o: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(o)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap_or_default()))
        .collect();
    v.sort();
    v
}

#[test]
fn children_read_and_write_only_within_the_fs_scopes() {
    let _g = guard();
    in_child("children_read_and_write_only_within_the_fs_scopes", || {
        let f = fixture();
        let (d, o) = (p(&f.d), p(&f.o));
        let before = snapshot(&f.o);
        restrict(&format!("fs.read={d};fs.write={d}"));

        // Inside: read and written by the program and by its descendants.
        assert_eq!(run("cat", &[&format!("{d}/a.txt")]).1, "inside\n");
        assert_eq!(sh(&format!("echo made > {d}/new && cat {d}/new")).1, "made\n");
        assert_eq!(sh(&format!("sh -c 'cat {d}/a.txt'")).1, "inside\n");
        // /dev/null and the programs themselves keep working.
        assert_eq!(sh("echo gone > /dev/null; cat /dev/null; echo ok").1, "ok\n");

        // Outside, by any spelling: nothing read, listed, written, removed or moved.
        for target in [
            format!("{o}/secret.txt"),
            format!("{d}/link"),
            format!("{d}/linkdir/secret.txt"),
            format!("{d}/sub/rel/secret.txt"),
            format!("{d}/../O/secret.txt"),
            format!("/proc/self/root{o}/secret.txt"),
            "/etc/passwd".to_string(),
        ] {
            let (code, out, errs) = run("cat", &[&target]);
            assert_ne!(code, 0, "cat {target} succeeded: {out}");
            assert!(!out.contains("OUTSIDE") && !out.contains("root:"), "cat {target}: {out}");
            assert!(errs.contains("Permission denied"), "cat {target}: {errs}");
            // A grandchild in its own session: the same.
            let (_, out, _) = sh(&format!("setsid sh -c 'cat {target}' 2>&1; sh -c 'sh -c \"cat {target}\"' 2>&1"));
            assert!(!out.contains("OUTSIDE") && !out.contains("root:"), "descendant read {target}: {out}");
        }
        for spelling in [o.to_string(), format!("{d}/linkdir"), format!("{d}/linkdir/"), format!("{d}/linkdir/."), format!("{d}/linkdir//"), format!("{d}/sub/rel/.")] {
            let (code, out, _) = run("ls", &[&spelling]);
            assert!(code != 0 && !out.contains("secret"), "ls {spelling}: {out}");
        }
        // No hard link to an outside file can be made inside the scope (it would widen access).
        let (code, _, _) = run("ln", &[&format!("{o}/secret.txt"), &format!("{d}/hard")]);
        assert!(code != 0 && !f.d.join("hard").exists(), "ln made a hard link to an outside file");
        for script in [
            format!("echo x > {o}/new"),
            format!("echo x >> {o}/secret.txt"),
            format!(": > {d}/link"),
            format!("rm -f {o}/secret.txt"),
            format!("rm -f {d}/linkdir/secret.txt"),
            format!("mv {d}/a.txt {o}/"),
            format!("mkdir {o}/dir"),
            format!("ln -s /etc {o}/etc"),
            format!("cp {d}/a.txt {d}/linkdir/copy"),
        ] {
            sh(&script);
            assert_eq!(snapshot(&f.o), before, "{script} changed the outside tree");
        }
        assert_eq!(std::fs::read_to_string(f.d.join("a.txt")).unwrap(), "inside\n", "mv moved a.txt out");

        // The same through a Child handle.
        let argv = Value::array(1);
        argv.push(Value::text(&format!("{o}/secret.txt")));
        let h = ok(rt_process_spawn(text("cat"), argv.raw(), NIL));
        let st = ok(rt_process_wait(h.raw(), NIL));
        assert_ne!(st.get("code").as_int(), Some(0), "a spawned cat read outside");
    });
}

#[test]
fn a_scoped_fs_write_alone_confines_writes_only() {
    let _g = guard();
    in_child("a_scoped_fs_write_alone_confines_writes_only", || {
        let f = fixture();
        let (d, o) = (p(&f.d), p(&f.o));
        restrict(&format!("fs.write={d}"));
        assert_eq!(run("cat", &[&format!("{o}/secret.txt")]).1, "OUTSIDE\n", "reads are the parent's: whole");
        assert_ne!(sh(&format!("echo x > {o}/new")).0, 0);
        assert!(!f.o.join("new").exists());
        assert_eq!(sh(&format!("echo x > {d}/new; cat {d}/new")).1, "x\n");
    });
}

#[test]
fn a_policy_without_fs_scopes_confines_nothing() {
    let _g = guard();
    in_child("a_policy_without_fs_scopes_confines_nothing", || {
        let f = fixture();
        let o = p(&f.o);
        restrict("sys.info=false");
        assert_eq!(run("cat", &[&format!("{o}/secret.txt")]).1, "OUTSIDE\n");
        assert_eq!(sh(&format!("echo x > {o}/new && cat {o}/new")).1, "x\n");
    });
}

#[test]
fn a_script_runs_with_its_interpreter_and_nothing_more() {
    let _g = guard();
    in_child("a_script_runs_with_its_interpreter_and_nothing_more", || {
        let f = fixture();
        let (d, o) = (p(&f.d), p(&f.o));
        let script = f.d.join("show.sh");
        // Builtins only: the policy lets the parent start this script and nothing else.
        std::fs::write(&script, format!("#!/bin/sh\nwhile read l; do echo \"$l\"; done < {d}/a.txt\nwhile read l; do echo \"$l\"; done < {o}/secret.txt\n")).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        restrict(&format!("fs.read={d};process.spawn={}", p(&script)));
        let (_, out, errs) = run(p(&script), &[]);
        assert_eq!(out, "inside\n", "stderr: {errs}");
    });
}

#[test]
fn scopes_with_exceptions_cannot_be_passed_on() {
    let _g = guard();
    in_child("scopes_with_exceptions_cannot_be_passed_on", || {
        let f = fixture();
        let d = p(&f.d);
        restrict(&format!("fs.read={d},!{d}/sub"));
        let (c, m) = err(rt_process_run(text("true"), Value::array(0).raw(), NIL));
        assert_eq!(c, Code::Unsupported, "{m}");
        assert!(m.starts_with("rt_process_run: ") && m.contains("exceptions"), "{m}");
    });
}

/// Run alone (it narrows this process's policy): the cost of building a ruleset.
#[test]
#[ignore]
fn ruleset_cost() {
    let f = fixture();
    let d = p(&f.d);
    restrict(&format!("fs.read={d};fs.write={d}"));
    let exe = std::path::Path::new("/usr/bin/true");
    let t = std::time::Instant::now();
    for _ in 0..1000 {
        ffi_process::confine::ruleset("x", exe).unwrap();
    }
    eprintln!("ruleset: {:?} each", t.elapsed() / 1000);
    let t = std::time::Instant::now();
    for _ in 0..1000 {
        std::hint::black_box(ffi_sdk::cap::scope("fs.read"));
    }
    eprintln!("scope: {:?} each", t.elapsed() / 1000);
}

/// A TCP listener on 127.0.0.1 in this process; its port.
fn listener() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// A python3 child connecting to `port` (and binding an ephemeral port): what it printed.
fn py_net(port: u16) -> String {
    let code = format!(
        "import socket\nfor what, f in [('connect', lambda: socket.create_connection(('127.0.0.1', {port}), timeout=5)), ('bind', lambda: socket.socket().bind(('127.0.0.1', 0)))]:\n    try:\n        f(); print(what, 'ok')\n    except OSError as e:\n        print(what, 'refused', e.errno)\n"
    );
    run("python3", &["-c", &code]).1
}

#[test]
fn children_connect_and_bind_only_where_the_parent_may() {
    let _g = guard();
    in_child("children_connect_and_bind_only_where_the_parent_may", || {
        let ((_a, pa), (_b, pb)) = (listener(), listener());
        assert_eq!(py_net(pa), "connect ok\nbind ok\n", "before any restriction");
        restrict(&format!("net.connect=127.0.0.1:{pa};net.http=false;net.listen=false"));
        assert_eq!(py_net(pa), "connect ok\nbind refused 13\n");
        assert_eq!(py_net(pb), "connect refused 13\nbind refused 13\n");
        restrict("net.connect=false");
        assert_eq!(py_net(pa), "connect refused 13\nbind refused 13\n");
    });
}

#[test]
fn a_net_scope_without_a_port_leaves_tcp_whole() {
    let _g = guard();
    in_child("a_net_scope_without_a_port_leaves_tcp_whole", || {
        let (_a, pa) = listener();
        // Any port of 127.0.0.1: Landlock cannot say "this host", so the child is not narrowed.
        restrict("net.connect=127.0.0.1;net.http=127.0.0.1");
        assert!(py_net(pa).starts_with("connect ok\n"));
    });
}

#[test]
fn a_directory_swapped_for_a_link_while_children_run_gives_nothing_away() {
    let _g = guard();
    in_child("a_directory_swapped_for_a_link_while_children_run_gives_nothing_away", || {
        let f = fixture();
        let (d, o) = (f.d.clone(), f.o.clone());
        std::fs::write(d.join("sub/secret.txt"), "inside\n").unwrap();
        restrict(&format!("fs.read={};fs.write={}", p(&d), p(&d)));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The host (allowed: the test itself is not confined) swaps D/sub for a link to O and back.
        let swapper = {
            let (d, o, stop) = (d.clone(), o.clone(), stop.clone());
            std::thread::spawn(move || {
                let (sub, real) = (d.join("sub"), d.join("sub.real"));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::rename(&sub, &real);
                    let _ = symlink(&o, &sub);
                    std::thread::yield_now();
                    let _ = std::fs::remove_file(&sub);
                    let _ = std::fs::rename(&real, &sub);
                }
            })
        };
        let script = format!("for i in 1 2 3 4 5 6 7 8 9 10; do cat {0}/sub/secret.txt; echo x >> {0}/sub/secret.txt; done 2>/dev/null", p(&d));
        let mut seen_inside = 0;
        for _ in 0..20 {
            let (_, out, _) = sh(&script);
            assert!(!out.contains("OUTSIDE"), "a child read outside during the swap: {out}");
            seen_inside += out.matches("inside").count();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().unwrap();
        assert_eq!(std::fs::read_to_string(o.join("secret.txt")).unwrap(), "OUTSIDE\n", "a child wrote outside during the swap");
        assert!(seen_inside > 0, "the children never read inside: the race did not run");
    });
}

#[test]
fn children_start_only_the_programs_the_parent_may() {
    let _g = guard();
    in_child("children_start_only_the_programs_the_parent_may", || {
        // The parent may start sh (its canonical file) and nothing else; fs is whole.
        let shell = std::fs::canonicalize("/bin/sh").unwrap();
        restrict(&format!("process.spawn={}", p(&shell)));
        assert_eq!(sh("echo builtin").1, "builtin\n");
        let (_, out, errs) = sh("cat /etc/hostname && echo ran; exec ls /");
        assert!(!out.contains("ran") && out.is_empty(), "a child started a program the parent may not: {out}");
        assert!(errs.contains("Permission denied"), "{errs}");
        // Not in a pipeline either.
        let (_, out, _) = run("sh", &["-c", "echo x | cat"]);
        assert!(out.is_empty(), "cat ran: {out}");
    });
}

#[test]
fn a_spawn_scope_directory_lets_children_run_what_is_in_it() {
    let _g = guard();
    in_child("a_spawn_scope_directory_lets_children_run_what_is_in_it", || {
        let bin = std::fs::canonicalize("/bin/cat").unwrap();
        let dir = bin.parent().unwrap().to_path_buf();
        restrict(&format!("process.spawn={}", p(&dir)));
        assert_eq!(sh("echo x | cat").1, "x\n");
    });
}

#[test]
fn a_confined_child_signals_and_reaches_only_its_own_descendants() {
    let _g = guard();
    in_child("a_confined_child_signals_and_reaches_only_its_own_descendants", || {
        let f = fixture();
        // Outside the child's domain: a process of this test, and an abstract Unix socket.
        let mut other = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let name = format!("rt-confine-{}", std::process::id());
        let addr = <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name.as_bytes()).unwrap();
        let _listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let probe = format!(
            "kill -0 {} && echo signalled; sleep 30 & kill $! && echo own; python3 -c \"import socket\ntry:\n  socket.socket(socket.AF_UNIX).connect('\\0{name}'); print('connected')\nexcept OSError as e: print('refused', e.errno)\"",
            other.id()
        );
        // Unconfined: all three work (the test can fail).
        assert_eq!(sh(&probe).1, "signalled\nown\nconnected\n");
        restrict(&format!("fs.read={0};fs.write={0}", p(&f.d)));
        let (_, out, errs) = sh(&probe);
        assert_eq!(out, "own\nrefused 1\n", "a confined child reached outside its domain; stderr: {errs}");
        other.kill().unwrap();
        other.wait().unwrap();
    });
}

#[test]
fn a_fifo_named_as_the_program_does_not_stall_the_spawn() {
    let _g = guard();
    in_child("a_fifo_named_as_the_program_does_not_stall_the_spawn", || {
        let f = fixture();
        let fifo = f.d.join("fifo");
        let c = std::ffi::CString::new(p(&fifo)).unwrap();
        // SAFETY: `c` is a NUL-terminated path alive for the call; mkfifo only reads it.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
        restrict(&format!("fs.read={0};fs.write={0};process.spawn={0}", p(&f.d)));
        let (tx, rx) = std::sync::mpsc::channel();
        let prog = p(&fifo).to_string();
        std::thread::spawn(move || {
            let r = rt_process_run(text(&prog), Value::array(0).raw(), NIL);
            let _ = tx.send(Value::from_raw(r).is_error());
        });
        // The confinement reads a program's first line (its #! interpreter): never a FIFO's.
        let failed = rx.recv_timeout(std::time::Duration::from_secs(20)).expect("the spawn of a FIFO hung");
        assert!(failed, "a FIFO ran as a program");
    });
}
