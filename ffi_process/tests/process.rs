//! ffi_process against real programs (sh, cat, dd, env, python3, setpriv)
//! and /proc. Every test checks that it leaves no process behind (common.rs).

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_process::child::*;
use ffi_process::process::*;
use ffi_process::sandbox::*;
use ffi_process::shell::*;
use ffi_sdk::testing::{collect, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn run(program: &str, a: &[&str], opts: Value) -> Value {
    ok(rt_process_run(text(program), args(a), opts.raw()))
}

fn sh_run(script: &str, opts: Value) -> Value {
    run("sh", &["-c", script], opts)
}

#[test]
fn run_captures_output_code_and_signal() {
    let _g = guard();
    let r = sh_run("echo out; echo err >&2; exit 3", Value::NIL);
    assert_eq!(txt(r, "stdout"), "out\n");
    assert_eq!(txt(r, "stderr"), "err\n");
    assert_eq!(num(r, "code"), Some(3));
    assert!(r.get("signal").is_nil());
    assert_eq!(r.get("timed_out").as_bool(), Some(false));
    assert_eq!(num(run("true", &[], Value::NIL), "code"), Some(0));
    assert_eq!(num(run("false", &[], Value::NIL), "code"), Some(1));
    // Killed by a signal: code nil, signal set.
    let r = sh_run("kill -USR1 $$", Value::NIL);
    assert!(r.get("code").is_nil());
    assert_eq!(num(r, "signal"), Some(libc::SIGUSR1 as i64));
    // Arguments arrive exactly (spaces, quotes, unicode, empty).
    let items = ["a b", "'q'", "\"", "", "é✓", "--x=1"];
    let r = run(python(), &["-c", "import sys, json; print(json.dumps(sys.argv[1:]))", items[0], items[1], items[2], items[3], items[4], items[5]], Value::NIL);
    assert_eq!(txt(r, "stdout").trim(), r#"["a b", "'q'", "\"", "", "\u00e9\u2713", "--x=1"]"#);
    // argv[0] is the program as given.
    let r = run("sh", &["-c", "echo $0"], Value::NIL);
    assert_eq!(txt(r, "stdout"), "sh\n");
}

#[test]
fn fifty_megabytes_on_both_streams_at_once() {
    let _g = guard();
    const N: usize = 50 * 1024 * 1024;
    // Two writers at once: a reader that drained one pipe at a time would deadlock.
    let script = format!("head -c {N} /dev/zero | tr '\\0' a & head -c {N} /dev/zero | tr '\\0' b >&2; wait");
    let r = sh_run(&script, Value::NIL);
    assert_eq!(num(r, "code"), Some(0));
    let (o, e) = (r.get("stdout").as_text().unwrap(), r.get("stderr").as_text().unwrap());
    assert_eq!((o.len(), e.len()), (N, N));
    assert!(o.bytes().all(|b| b == b'a') && e.bytes().all(|b| b == b'b'));
    // 50 MB in through stdin and out again while the output is drained.
    let data: Vec<u8> = (0..N).map(|i| (i * 7 % 251) as u8).collect();
    let r = run("cat", &[], dict(&[("stdin", Value::bytes(&data)), ("text", Value::FALSE)]));
    assert_eq!(r.get("stdout").as_bytes().unwrap(), &data[..]);
}

#[test]
fn stdin_cwd_env_options() {
    let _g = guard();
    let r = run("cat", &[], dict(&[("stdin", t("hello\nworld"))]));
    assert_eq!(txt(r, "stdout"), "hello\nworld");
    // Default stdin is /dev/null: cat ends at once.
    assert_eq!(txt(run("cat", &[], Value::NIL), "stdout"), "");
    // A child that does not read its stdin: the input is dropped, no SIGPIPE for us.
    let big = vec![b'x'; 4 << 20];
    let r = run("true", &[], dict(&[("stdin", Value::bytes(&big))]));
    assert_eq!(num(r, "code"), Some(0));

    let dir = tempfile::tempdir().unwrap();
    let dpath = std::fs::canonicalize(dir.path()).unwrap();
    let r = run("pwd", &[], dict(&[("cwd", t(dpath.to_str().unwrap()))]));
    assert_eq!(txt(r, "stdout").trim(), dpath.to_str().unwrap());

    // env: set over the inherited environment, nil removes, clear_env starts empty.
    std::env::var("HOME").expect("HOME set for this test");
    let env = dict(&[("RT_X", t("1 2")), ("HOME", Value::NIL)]);
    let r = sh_run("echo \"$RT_X|${HOME-unset}|${RT_TEST_MARK:+marked}\"", dict(&[("env", env)]));
    assert_eq!(txt(r, "stdout"), "1 2|unset|marked\n");
    let mark = std::env::var("RT_TEST_MARK").unwrap();
    let env = dict(&[("A", t("b")), ("RT_TEST_MARK", t(&mark))]);
    let r = run("/usr/bin/env", &[], dict(&[("env", env), ("clear_env", Value::TRUE)]));
    assert_eq!(txt(r, "stdout"), format!("A=b\nRT_TEST_MARK={mark}\n"));

    // PATH from the env option; ./x relative to cwd.
    let script = dpath.join("hello-rt");
    std::fs::write(&script, "#!/bin/sh\necho \"hi from $0\"\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", dpath.display());
    let r = run("hello-rt", &[], dict(&[("env", dict(&[("PATH", t(&path))]))]));
    // (The kernel hands a #! interpreter the script's path as $0.)
    assert_eq!(txt(r, "stdout"), format!("hi from {}\n", script.display()));
    let (c, msg) = err(rt_process_run(text("hello-rt"), args(&[]), NIL));
    assert_eq!(c, Code::NotFound, "{msg}");
    let r = run("./hello-rt", &[], dict(&[("cwd", t(dpath.to_str().unwrap()))]));
    assert_eq!(txt(r, "stdout"), format!("hi from {}\n", script.display()));
    // stdout/stderr modes.
    let r = sh_run("echo a; echo b >&2", dict(&[("stdout", t("null")), ("stderr", t("capture"))]));
    assert!(r.get("stdout").is_nil());
    assert_eq!(txt(r, "stderr"), "b\n");
}

#[test]
fn text_and_bytes_output() {
    let _g = guard();
    let (c, msg) = err(rt_process_run(text("printf"), args(&["ab\\377"]), NIL));
    assert_eq!(c, Code::Parse);
    assert!(msg.contains("stdout is not valid UTF-8 at byte 2") && msg.contains("text: false"), "{msg}");
    let r = run("printf", &["ab\\377"], dict(&[("text", Value::FALSE)]));
    assert_eq!(r.get("stdout").as_bytes().unwrap(), b"ab\xff");
    assert_eq!(r.get("stderr").as_bytes().unwrap(), b"");
}

#[test]
fn run_bad_input() {
    let _g = guard();
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, "not a program").unwrap();
    let p = plain.to_str().unwrap();
    let cases: Vec<(u64, u64, Value, Code, &str)> = vec![
        (text("no-such-program-rt"), args(&[]), Value::NIL, Code::NotFound, "\"no-such-program-rt\""),
        (text("/no/such/file"), args(&[]), Value::NIL, Code::NotFound, "/no/such/file"),
        (text(p), args(&[]), Value::NIL, Code::PermissionDenied, "not executable"),
        (text("/tmp"), args(&[]), Value::NIL, Code::PermissionDenied, "directory"),
        (text(""), args(&[]), Value::NIL, Code::InvalidArgument, "program is empty"),
        (text("tr\0ue"), args(&[]), Value::NIL, Code::InvalidArgument, "NUL"),
        (text("echo"), args(&["a", "b\0c"]), Value::NIL, Code::InvalidArgument, "args item 1 contains a NUL"),
        (int(5), args(&[]), Value::NIL, Code::TypeMismatch, "argument 1 (program) must be text"),
        (NIL, args(&[]), Value::NIL, Code::TypeMismatch, "program"),
        (text("true"), text("-x"), Value::NIL, Code::TypeMismatch, "argument 2 (args)"),
        (text("true"), NIL, Value::NIL, Code::TypeMismatch, "args"),
        (text("true"), { let a = Value::array(1); a.push(Value::int(1)); a.raw() }, Value::NIL, Code::TypeMismatch, "item 0 must be text"),
        (text("true"), args(&[]), t("opts"), Code::TypeMismatch, "argument 3 (opts)"),
        (text("true"), args(&[]), dict(&[("colour", Value::TRUE)]), Code::InvalidArgument, "unknown option"),
        (text("true"), args(&[]), dict(&[("stdout", t("file"))]), Code::InvalidArgument, "option stdout"),
        (text("true"), args(&[]), dict(&[("stdin", i(3))]), Code::InvalidArgument, "option stdin"),
        (text("true"), args(&[]), dict(&[("stdin", t("x")), ("inherit_stdin", Value::TRUE)]), Code::InvalidArgument, "exclude"),
        (text("true"), args(&[]), dict(&[("env", dict(&[("A", i(1))]))]), Code::InvalidArgument, "value of A"),
        (text("true"), args(&[]), dict(&[("env", dict(&[("A=B", t("1"))]))]), Code::InvalidArgument, "'='"),
        (text("true"), args(&[]), dict(&[("env", dict(&[("A", t("x\0y"))]))]), Code::InvalidArgument, "NUL"),
        (text("true"), args(&[]), dict(&[("env", t("A=1"))]), Code::InvalidArgument, "option env"),
        (text("true"), args(&[]), dict(&[("cwd", t("/no/such/dir"))]), Code::NotFound, "/no/such/dir"),
        (text("true"), args(&[]), dict(&[("cwd", t(p))]), Code::InvalidArgument, "not a directory"),
        (text("true"), args(&[]), dict(&[("timeout_ms", i(-1))]), Code::InvalidArgument, "timeout_ms"),
        (text("true"), args(&[]), dict(&[("grace_ms", i(10))]), Code::InvalidArgument, "grace_ms needs timeout_ms"),
        (text("true"), args(&[]), dict(&[("limits", dict(&[("cpu", i(1))]))]), Code::InvalidArgument, "unknown option"),
        (text("true"), args(&[]), dict(&[("limits", dict(&[("cpu_seconds", i(0))]))]), Code::InvalidArgument, "cpu_seconds"),
        (text("true"), args(&[]), dict(&[("limits", dict(&[("open_files", i(-5))]))]), Code::InvalidArgument, "open_files"),
        (text("true"), args(&[]), dict(&[("limits", i(5))]), Code::InvalidArgument, "limits must be a dict"),
    ];
    for (prog, a, opts, code, frag) in cases {
        let (c, msg) = err(rt_process_run(prog, a, opts.raw()));
        assert_eq!(c, code, "{msg}");
        assert!(msg.contains(frag) && msg.starts_with("rt_process_run: "), "want {frag:?} in {msg}");
    }
    // The other entry points check the same way.
    assert_eq!(err(rt_process_run_timeout(text("true"), args(&[]), int(-1), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_process_run_timeout(text("true"), args(&[]), text("1"), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_process_run_timeout(text("true"), args(&[]), int(10), dict(&[("timeout_ms", i(5))]).raw())).0, Code::InvalidArgument);
    assert_eq!(err(rt_process_run_with_limits(text("true"), args(&[]), NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_process_run_with_limits(text("true"), args(&[]), dict(&[("nope", i(1))]).raw(), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_process_run_with_limits(text("nope-rt"), args(&[]), dict(&[]).raw(), NIL)).0, Code::NotFound);
}

/// A child that ignores SIGTERM and starts a grandchild that ignores it too; prints the grandchild's pid.
const STUBBORN: &str = "trap '' TERM; (trap '' TERM; exec sleep 60) & echo $!; exec sleep 60";

#[test]
fn timeout_kills_the_whole_group() {
    let _g = guard();
    for grace in [0, 300] {
        let t0 = Instant::now();
        let r = ok(rt_process_run_timeout(text("sh"), args(&["-c", STUBBORN]), int(500), dict(&[("grace_ms", i(grace))]).raw()));
        assert!(t0.elapsed() < Duration::from_secs(20));
        assert_eq!(r.get("timed_out").as_bool(), Some(true));
        assert_eq!(num(r, "signal"), Some(libc::SIGKILL as i64), "SIGTERM is ignored, SIGKILL is not");
        assert!(r.get("code").is_nil());
        // The output written before the deadline is kept.
        let gpid: i32 = txt(r, "stdout").trim().parse().expect("grandchild pid");
        assert!(wait_dead(gpid), "grandchild {gpid} survived (state {:?})", state(gpid));
    }
    // The same through rt_process_run's timeout_ms option, and a timeout of 0.
    let r = sh_run("echo early; sleep 60", dict(&[("timeout_ms", i(300))]));
    assert_eq!((r.get("timed_out").as_bool(), txt(r, "stdout")), (Some(true), "early\n".to_string()));
    let r = ok(rt_process_run_timeout(text("sleep"), args(&["60"]), int(0), NIL));
    assert_eq!(r.get("timed_out").as_bool(), Some(true));
    // SIGTERM within the grace period ends a well-behaved child: signal 15.
    let r = ok(rt_process_run_timeout(text("sleep"), args(&["60"]), int(100), dict(&[("grace_ms", i(5000))]).raw()));
    assert_eq!(num(r, "signal"), Some(libc::SIGTERM as i64));
    // A child that finishes in time is not timed out.
    let r = ok(rt_process_run_timeout(text("echo"), args(&["fast"]), int(10_000), NIL));
    assert_eq!((r.get("timed_out").as_bool(), num(r, "code")), (Some(false), Some(0)));
}

/// Soft and hard values of one line of /proc/self/limits (e.g. "Max open files").
fn proc_limit(limits: &str, name: &str) -> (String, String) {
    let line = limits.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {limits}"));
    let f: Vec<&str> = line[name.len()..].split_whitespace().collect();
    (f[0].to_string(), f[1].to_string())
}

#[test]
fn limits_are_set_in_the_child_only() {
    let _g = guard();
    let lim = dict(&[("cpu_seconds", i(7)), ("address_space_bytes", i(1 << 30)), ("open_files", i(64)),
        ("processes", i(100)), ("file_size_bytes", i(1 << 20))]);
    let r = ok(rt_process_run_with_limits(text("cat"), args(&["/proc/self/limits"]), lim.raw(), NIL));
    let l = txt(r, "stdout");
    assert_eq!(proc_limit(&l, "Max cpu time"), ("7".into(), "8".into()));
    assert_eq!(proc_limit(&l, "Max address space"), ((1u64 << 30).to_string(), (1u64 << 30).to_string()));
    assert_eq!(proc_limit(&l, "Max open files"), ("64".into(), "64".into()));
    assert_eq!(proc_limit(&l, "Max processes"), ("100".into(), "100".into()));
    assert_eq!(proc_limit(&l, "Max file size"), ((1u64 << 20).to_string(), (1u64 << 20).to_string()));
    // The host keeps its own limits.
    let own = std::fs::read_to_string("/proc/self/limits").unwrap();
    assert_ne!(proc_limit(&own, "Max open files").0, "64");
    assert_eq!(proc_limit(&own, "Max cpu time").0, "unlimited");
}

#[test]
fn cpu_limit_sends_sigxcpu() {
    let _g = guard();
    let r = ok(rt_process_run_with_limits(text("sh"), args(&["-c", "while :; do :; done"]), dict(&[("cpu_seconds", i(1))]).raw(),
        dict(&[("timeout_ms", i(60_000))]).raw()));
    assert_eq!(num(r, "signal"), Some(libc::SIGXCPU as i64), "{r:?}");
    assert_eq!(r.get("timed_out").as_bool(), Some(false));
}

#[test]
fn address_space_limit_fails_allocation() {
    let _g = guard();
    let prog = "b = bytearray(1 << 30); print('allocated', len(b))";
    let r = ok(rt_process_run_with_limits(text(python()), args(&["-c", prog]), dict(&[("address_space_bytes", i(256 << 20))]).raw(), NIL));
    assert_eq!(num(r, "code"), Some(1), "{r:?}");
    assert!(txt(r, "stderr").contains("MemoryError"), "{}", txt(r, "stderr"));
    // Control: without the limit the same program succeeds.
    let r = run(python(), &["-c", prog], Value::NIL);
    assert_eq!(txt(r, "stdout"), "allocated 1073741824\n");
}

#[test]
fn open_files_limit_gives_emfile() {
    let _g = guard();
    let prog = "import os\nn = 0\ntry:\n    while n < 1000:\n        os.open('/dev/null', os.O_RDONLY); n += 1\nexcept OSError as e:\n    print(e.errno, n)\nelse:\n    print('none', n)";
    let r = ok(rt_process_run_with_limits(text(python()), args(&["-c", prog]), dict(&[("open_files", i(32))]).raw(), NIL));
    let out = txt(r, "stdout");
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f[0], libc::EMFILE.to_string(), "{out}");
    assert!(f[1].parse::<i32>().unwrap() < 32);
    let r = run(python(), &["-c", prog], Value::NIL);
    assert_eq!(txt(r, "stdout"), "none 1000\n");
}

#[test]
fn file_size_limit_stops_the_write() {
    let _g = guard();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("out.bin");
    let of = format!("of={}", f.display());
    let dd = ["if=/dev/zero", of.as_str(), "bs=65536", "count=32"];
    let r = ok(rt_process_run_with_limits(text("dd"), args(&dd), dict(&[("file_size_bytes", i(1 << 20))]).raw(), NIL));
    assert_eq!(num(r, "signal"), Some(libc::SIGXFSZ as i64), "{r:?}");
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 1 << 20);
    // Even when the host ignores SIGXFSZ (as CPython does), the child gets the default action back.
    // SAFETY: SIG_IGN installs no handler code; the disposition is process-wide, but `guard()`
    // serializes the tests of this binary that spawn, and it is reset to SIG_DFL below.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let r = ok(rt_process_run_with_limits(text("dd"), args(&dd), dict(&[("file_size_bytes", i(1 << 19))]).raw(), NIL));
    // SAFETY: restores the default disposition set at startup; no handler code involved.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_DFL) };
    assert_eq!(num(r, "signal"), Some(libc::SIGXFSZ as i64), "{r:?}");
    let r = run("dd", &dd, Value::NIL);
    assert_eq!(num(r, "code"), Some(0));
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 2 << 20);
}

#[test]
fn processes_limit_stops_fork() {
    let _g = guard();
    // RLIMIT_NPROC counts the processes of the real user and root is exempt, so the
    // limited child drops to an otherwise unused uid with setpriv before forking.
    let script = "for i in 1 2 3 4 5 6; do sleep 0.3 & done; wait; echo all-forked";
    let a = ["--reuid", "54321", "--regid", "54321", "--clear-groups", "sh", "-c", script];
    let r = ok(rt_process_run_with_limits(text("setpriv"), args(&a), dict(&[("processes", i(3))]).raw(), NIL));
    assert!(txt(r, "stderr").contains("fork"), "{r:?}");
    assert_ne!(num(r, "code"), Some(0));
    assert!(!txt(r, "stdout").contains("all-forked"));
    let r = run("setpriv", &a, Value::NIL);
    assert_eq!(txt(r, "stdout"), "all-forked\n");
    std::thread::sleep(Duration::from_millis(400));
}

fn wait_for_stdout(h: u64, want: &str) -> String {
    let t0 = Instant::now();
    let mut got = String::new();
    while t0.elapsed() < Duration::from_secs(10) {
        got.push_str(ok(rt_process_read_stdout(h)).as_text().unwrap());
        if got.contains(want) {
            return got;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no {want:?} in {got:?}");
}

#[test]
fn spawn_wait_kill_read() {
    let _g = guard();
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", "echo hi; echo oops >&2; exec sleep 60"]), NIL)).raw();
    let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
    assert!(alive(pid));
    assert_eq!(wait_for_stdout(h, "hi\n"), "hi\n");
    // Still running: a bounded wait times out and changes nothing.
    let (c, msg) = err(rt_process_wait(h, int(50)));
    assert_eq!(c, Code::Timeout, "{msg}");
    assert!(ok(rt_process_kill(h, int(libc::SIGTERM as i64))).as_bool().unwrap());
    let w = ok(rt_process_wait(h, NIL));
    assert_eq!(num(w, "signal"), Some(libc::SIGTERM as i64));
    assert!(w.get("code").is_nil());
    assert_eq!(txt(w, "stdout"), "", "already read");
    assert_eq!(txt(w, "stderr"), "oops\n");
    assert!(!alive(pid));
    // After exit: kill is false (nothing sent), wait returns the same status again.
    assert_eq!(ok(rt_process_kill(h, int(9))).as_bool(), Some(false));
    let w2 = ok(rt_process_wait(h, int(0)));
    assert_eq!(num(w2, "signal"), Some(libc::SIGTERM as i64));
    assert_eq!(txt(w2, "stderr"), "");
    // Close once: true; twice: false; anything after close: Closed.
    assert_eq!(ok(ffi_sdk_close(h)).as_bool(), Some(true));
    assert_eq!(ok(ffi_sdk_close(h)).as_bool(), Some(false));
    for r in [rt_process_wait(h, NIL), rt_process_kill(h, int(9)), rt_process_read_stdout(h), rt_process_read_stderr(h), rt_process_pid(h)] {
        assert_eq!(err(r).0, Code::Closed);
    }
    // stdin option and exit code through wait.
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", "read x; echo got $x; exit 5"]), dict(&[("stdin", t("abc\n"))]).raw())).raw();
    let w = ok(rt_process_wait(h, int(10_000)));
    assert_eq!((num(w, "code"), txt(w, "stdout")), (Some(5), "got abc\n".to_string()));
    ffi_sdk_close(h);
}

extern "C" {
    fn rt_handle_close(h: u64) -> u64;
}
fn ffi_sdk_close(h: u64) -> u64 {
    // SAFETY: the declaration above matches core's export `RtValue rt_handle_close(RtValue)`
    // (RtValue is a u64); any value is accepted (a non-handle gives an Error value).
    unsafe { rt_handle_close(h) }
}

#[test]
fn spawn_output_is_drained_without_reading() {
    let _g = guard();
    // 20 MB on each stream while nobody reads: the pump keeps the pipes empty.
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", "head -c 20971520 /dev/zero & head -c 20971520 /dev/zero >&2; wait"]),
        dict(&[("text", Value::FALSE)]).raw())).raw();
    let w = ok(rt_process_wait(h, int(60_000)));
    assert_eq!(num(w, "code"), Some(0));
    assert_eq!(w.get("stdout").as_bytes().unwrap().len(), 20 << 20);
    assert_eq!(w.get("stderr").as_bytes().unwrap().len(), 20 << 20);
    // Reading in pieces in text mode keeps multibyte characters whole.
    let h2 = ok(rt_process_spawn(text(python()), args(&["-c", "import sys,time\nfor i in range(200):\n    sys.stdout.buffer.write('é✓'.encode()[:1]); sys.stdout.flush(); sys.stdout.buffer.write('é✓'.encode()[1:]); sys.stdout.flush()"]), NIL)).raw();
    let mut got = String::new();
    loop {
        got.push_str(ok(rt_process_read_stdout(h2)).as_text().unwrap());
        if got.len() >= 200 * 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got, "é✓".repeat(200));
    ok(rt_process_wait(h2, NIL));
    ffi_sdk_close(h);
    ffi_sdk_close(h2);
}

#[test]
fn spawn_kill_reaches_grandchildren() {
    let _g = guard();
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", STUBBORN]), NIL)).raw();
    let out = wait_for_stdout(h, "\n");
    let gpid: i32 = out.trim().parse().unwrap();
    assert!(alive(gpid));
    assert!(ok(rt_process_kill(h, int(libc::SIGKILL as i64))).as_bool().unwrap());
    let w = ok(rt_process_wait(h, int(10_000)));
    assert_eq!(num(w, "signal"), Some(9));
    assert!(wait_dead(gpid), "grandchild {gpid} survived");
    ffi_sdk_close(h);
}

#[test]
fn group_members_holding_the_output_are_killed_too() {
    let _g = guard();
    // The leader exits at once; a background member keeps stdout open.
    let bg = "sleep 60 & echo $!";
    let r = ok(rt_process_run_timeout(text("sh"), args(&["-c", bg]), int(300), NIL));
    assert_eq!((r.get("timed_out").as_bool(), num(r, "code")), (Some(true), Some(0)), "{r:?}");
    let gpid: i32 = txt(r, "stdout").trim().parse().unwrap();
    assert!(wait_dead(gpid));
    // Through a handle: wait reports the open output; close ends the member.
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", bg]), NIL)).raw();
    let gpid: i32 = wait_for_stdout(h, "\n").trim().parse().unwrap();
    let (c, msg) = err(rt_process_wait(h, int(200)));
    assert_eq!(c, Code::Timeout);
    assert!(msg.contains("exited but its output is still open"), "{msg}");
    assert_eq!(ok(rt_process_kill(h, int(9))).as_bool(), Some(false), "the child itself has exited");
    assert!(alive(gpid));
    ffi_sdk_close(h);
    assert!(wait_dead(gpid));
}

#[test]
fn spawn_bad_input() {
    let _g = guard();
    let h = ok(rt_process_spawn(text("sleep"), args(&["60"]), dict(&[("stdout", t("null"))]).raw())).raw();
    let max = libc::SIGRTMAX() as i64;
    for s in [0, -1, max + 1, 1000, i64::MAX] {
        let (c, msg) = err(rt_process_kill(h, int(s)));
        assert_eq!(c, Code::InvalidArgument, "{s}: {msg}");
    }
    assert_eq!(err(rt_process_kill(h, text("TERM"))).0, Code::TypeMismatch);
    assert_eq!(err(rt_process_wait(h, int(-5))).0, Code::InvalidArgument);
    assert_eq!(err(rt_process_wait(h, text("5"))).0, Code::TypeMismatch);
    let (c, msg) = err(rt_process_read_stdout(h));
    assert_eq!(c, Code::InvalidArgument);
    assert!(msg.contains("not captured"), "{msg}");
    for v in [int(3), NIL, text("child"), Value::dict().raw()] {
        assert_eq!(err(rt_process_wait(v, NIL)).0, Code::TypeMismatch);
        assert_eq!(err(rt_process_kill(v, int(9))).0, Code::TypeMismatch);
        assert_eq!(err(rt_process_read_stdout(v)).0, Code::TypeMismatch);
        assert_eq!(err(rt_process_pid(v)).0, Code::TypeMismatch);
    }
    assert_eq!(err(rt_process_spawn(text("no-such-rt"), args(&[]), NIL)).0, Code::NotFound);
    assert_eq!(err(rt_process_spawn(text("true"), args(&[]), dict(&[("timeout_ms", i(5))]).raw())).0, Code::InvalidArgument);
    assert_eq!(err(rt_process_spawn(text("true"), args(&[]), dict(&[("kill_on_close", i(1))]).raw())).0, Code::InvalidArgument);
    // Closing a running child kills it and reaps it before close returns.
    let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
    assert_eq!(ok(ffi_sdk_close(h)).as_bool(), Some(true));
    assert!(!alive(pid));
    assert!(own_children().is_empty());
}

#[test]
fn thousand_spawns_leave_no_zombie() {
    let _g = guard();
    for k in 0..1000 {
        let h = ok(rt_process_spawn(text("true"), args(&[]), NIL)).raw();
        match k % 3 {
            0 => {
                assert_eq!(num(ok(rt_process_wait(h, NIL)), "code"), Some(0));
                ffi_sdk_close(h);
            }
            // Closed while perhaps still running.
            1 => {
                ffi_sdk_close(h);
            }
            // Waited, and left to the collector.
            _ => {
                ok(rt_process_wait(h, NIL));
            }
        }
    }
    collect();
    let t0 = Instant::now();
    while !own_children().is_empty() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(own_children(), Vec::<i32>::new());
}

#[test]
fn collected_handles_kill_their_children() {
    let _g = guard();
    let mut pids = Vec::new();
    for _ in 0..20 {
        let h = ok(rt_process_spawn(text("sleep"), args(&["60"]), NIL)).raw();
        pids.push(ok(rt_process_pid(h)).as_int().unwrap() as i32);
    }
    for _ in 0..3 {
        collect();
    }
    // The collector is conservative: a stray word on the stack may keep one or two alive.
    let survivors: Vec<i32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    assert!(survivors.len() <= 3, "{} of 20 still alive after collection", survivors.len());
    for p in survivors {
        // SAFETY: kill takes no pointers; each `p` is the pid of a `sleep 60` this test spawned,
        // seen alive just above.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
}

#[test]
fn kill_on_close_false_detaches_and_still_reaps() {
    let _g = guard();
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", "sleep 0.5; echo done"]), dict(&[("kill_on_close", Value::FALSE)]).raw())).raw();
    let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
    ffi_sdk_close(h);
    assert!(alive(pid), "detached child keeps running after close");
    assert!(wait_dead(pid));
    // The pump reaps it: the guard finds no zombie.
}

#[test]
fn shell_functions() {
    let _g = guard();
    let r = ok(rt_shell(text("echo $((1+2)); echo e >&2; exit 4"), NIL));
    assert_eq!((txt(r, "stdout"), txt(r, "stderr"), num(r, "code")), ("3\n".into(), "e\n".into(), Some(4)));
    let r = ok(rt_shell(text("cat; pwd"), dict(&[("stdin", t("in|")), ("cwd", t("/"))]).raw()));
    assert_eq!(txt(r, "stdout"), "in|/\n");
    assert_eq!(ok(rt_shell_exec(text("exit 7"), NIL)).as_int(), Some(7));
    assert_eq!(ok(rt_shell_exec(text("echo to-host-stdout"), dict(&[("stdout", t("null"))]).raw())).as_int(), Some(0));
    assert_eq!(ok(rt_shell_exec(text("kill -TERM $$"), NIL)).as_int(), Some(128 + 15));
    let (c, msg) = err(rt_shell_exec(text("sleep 60"), dict(&[("timeout_ms", i(100))]).raw()));
    assert_eq!(c, Code::Timeout, "{msg}");
    let r = ok(rt_shell(text(STUBBORN), dict(&[("timeout_ms", i(300))]).raw()));
    let gpid: i32 = txt(r, "stdout").trim().parse().unwrap();
    assert!(wait_dead(gpid));
    // Bad input.
    assert_eq!(err(rt_shell(text("echo a\0b"), NIL)).0, Code::InvalidArgument);
    assert_eq!(err(rt_shell(int(1), NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_shell_exec(NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_shell_exec(text("true"), dict(&[("stdout", t("capture"))]).raw())).0, Code::InvalidArgument);
    assert_eq!(err(rt_shell_exec(text("true"), dict(&[("text", Value::TRUE)]).raw())).0, Code::InvalidArgument);
    assert_eq!(err(rt_shell(text("true"), dict(&[("timeout_ms", i(-3))]).raw())).0, Code::InvalidArgument);
}

#[test]
fn runs_survive_concurrent_collections() {
    let _g = guard();
    // The collector stops registered threads with signals: every poll, read and
    // write of the engine sees EINTR many times here and must carry on.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let st = stop.clone();
    let collector = std::thread::spawn(move || {
        while !st.load(std::sync::atomic::Ordering::Relaxed) {
            collect();
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let workers: Vec<_> = (0..3)
        .map(|w| {
            std::thread::spawn(move || {
                let input = format!("worker {w}\n").repeat(20_000);
                for k in 0..15 {
                    let r = run("sh", &["-c", "cat; head -c 300000 /dev/zero | tr '\\0' x; echo err >&2"], dict(&[("stdin", t(&input))]));
                    let out = txt(r, "stdout");
                    assert_eq!(out.len(), input.len() + 300_000, "worker {w} run {k}");
                    assert!(out.starts_with(&input) && out[input.len()..].bytes().all(|b| b == b'x'));
                    assert_eq!(txt(r, "stderr"), "err\n");
                    let h = ok(rt_process_spawn(text("echo"), args(&[&format!("h{w}{k}")]), NIL)).raw();
                    collect();
                    assert_eq!(txt(ok(rt_process_wait(h, NIL)), "stdout"), format!("h{w}{k}\n"));
                    ffi_sdk_close(h);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    collector.join().unwrap();
}

#[test]
fn getpid_is_ours() {
    let _g = guard();
    assert_eq!(ok(rt_getpid()).as_int(), Some(std::process::id() as i64));
    // The child's parent is its supervisor (supervise.rs), whose parent is us.
    let r = sh_run("cat /proc/$PPID/stat", Value::NIL);
    let stat = txt(r, "stdout");
    let (comm, rest) = stat.rsplit_once(')').unwrap();
    assert!(comm.ends_with("(rt-supervisor"), "{stat}");
    assert_eq!(rest.split_whitespace().nth(1), Some(std::process::id().to_string().as_str()), "{stat}");
}

#[test]
fn sandbox_limits_apply_to_later_children() {
    let _g = guard();
    ffi_sdk::testing::in_child("sandbox_limits_apply_to_later_children", || {
        assert_eq!(ok(rt_sandbox_limits()).len(), 0);
        assert!(ok(rt_sandbox_set_limits(dict(&[("open_files", i(50)), ("cpu_seconds", i(100))]).raw())).is_nil());
        let l = ok(rt_sandbox_limits());
        assert_eq!((num(l, "open_files"), num(l, "cpu_seconds"), l.len()), (Some(50), Some(100), 2));
        let lim = |opts: Value| txt(run("cat", &["/proc/self/limits"], opts), "stdout");
        assert_eq!(proc_limit(&lim(Value::NIL), "Max open files"), ("50".into(), "50".into()));
        // The host itself is not limited.
        let own = std::fs::read_to_string("/proc/self/limits").unwrap();
        assert_ne!(proc_limit(&own, "Max open files").0, "50");
        // Only narrowing: lower is fine, higher is refused and changes nothing.
        let (c, msg) = err(rt_sandbox_set_limits(dict(&[("open_files", i(40)), ("cpu_seconds", i(200))]).raw()));
        assert_eq!(c, Code::PermissionDenied, "{msg}");
        assert_eq!(num(ok(rt_sandbox_limits()), "open_files"), Some(50));
        ok(rt_sandbox_set_limits(dict(&[("open_files", i(40))]).raw()));
        // A call may tighten the ceiling but not exceed it.
        let tight = dict(&[("limits", dict(&[("open_files", i(30))]))]);
        assert_eq!(proc_limit(&lim(tight), "Max open files").0, "30");
        let (c, msg) = err(rt_process_run(text("true"), args(&[]), dict(&[("limits", dict(&[("open_files", i(100))]))]).raw()));
        assert_eq!(c, Code::PermissionDenied, "{msg}");
        assert!(msg.contains("sandbox limit 40"), "{msg}");
        // Shell and spawn honour it too.
        let r = ok(rt_shell(text("ulimit -n"), NIL));
        assert_eq!(txt(r, "stdout"), "40\n");
        let h = ok(rt_process_spawn(text("cat"), args(&["/proc/self/limits"]), NIL)).raw();
        let w = ok(rt_process_wait(h, NIL));
        assert_eq!(proc_limit(&txt(w, "stdout"), "Max cpu time").0, "100");
        ffi_sdk_close(h);
        // Bad input.
        assert_eq!(err(rt_sandbox_set_limits(NIL)).0, Code::TypeMismatch);
        assert_eq!(err(rt_sandbox_set_limits(int(5))).0, Code::TypeMismatch);
        assert_eq!(err(rt_sandbox_set_limits(dict(&[("stack", i(1))]).raw())).0, Code::InvalidArgument);
        assert_eq!(err(rt_sandbox_set_limits(dict(&[("processes", i(-1))]).raw())).0, Code::InvalidArgument);
        assert_eq!(err(rt_sandbox_set_limits(dict(&[("processes", t("1"))]).raw())).0, Code::InvalidArgument);
    });
}

#[test]
fn capability_scoped_by_program() {
    let _g = guard();
    ffi_sdk::testing::in_child("capability_scoped_by_program", || {
        let dir = tempfile::tempdir().unwrap();
        let d = std::fs::canonicalize(dir.path()).unwrap();
        let script = d.join("mine");
        std::fs::write(&script, "#!/bin/sh\necho mine\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = d.join("true-link");
        let true_path = std::fs::canonicalize("/bin/true").unwrap();
        std::os::unix::fs::symlink(&true_path, &link).unwrap();
        let tp = true_path.to_str().unwrap().to_string();
        ffi_sdk::testing::restrict(&format!("process.spawn={tp}"));

        // Allowed: found through PATH, named absolutely, or through a symlink elsewhere (canonical path checked).
        assert_eq!(num(run("true", &[], Value::NIL), "code"), Some(0));
        assert_eq!(num(run("/bin/true", &[], Value::NIL), "code"), Some(0));
        assert_eq!(num(run(link.to_str().unwrap(), &[], Value::NIL), "code"), Some(0));
        let h = ok(rt_process_spawn(text("true"), args(&[]), NIL)).raw();
        ok(rt_process_wait(h, NIL));
        ffi_sdk_close(h);
        // Denied: other programs, named any way.
        let sp = script.to_str().unwrap();
        let (c, msg) = err(rt_process_run(text(sp), args(&[]), NIL));
        assert_eq!(c, Code::CapabilityDenied);
        assert_eq!(msg, format!("rt_process_run needs process.spawn for {sp}"));
        let (c, msg) = err(rt_process_run(text("./mine"), args(&[]), dict(&[("cwd", t(d.to_str().unwrap()))]).raw()));
        assert_eq!(c, Code::CapabilityDenied, "{msg}");
        assert!(msg.ends_with(sp), "{msg}");
        let sh = std::fs::canonicalize("/bin/sh").unwrap();
        for r in [
            rt_process_run(text("sh"), args(&[]), NIL),
            rt_process_spawn(text("sh"), args(&[]), NIL),
            rt_process_run_timeout(text("sh"), args(&[]), int(100), NIL),
            rt_process_run_with_limits(text("sh"), args(&[]), dict(&[]).raw(), NIL),
        ] {
            let (c, msg) = err(r);
            assert_eq!(c, Code::CapabilityDenied, "{msg}");
            assert!(msg.contains(&format!("needs process.spawn for {}", sh.display())), "{msg}");
        }
        // A shell can run anything: it needs process.spawn unscoped.
        for r in [rt_shell(text("true"), NIL), rt_shell_exec(text("true"), NIL)] {
            let (c, msg) = err(r);
            assert_eq!(c, Code::CapabilityDenied);
            assert!(msg.ends_with("needs process.spawn"), "{msg}");
        }
        // So does an environment that redirects the dynamic loader.
        for var in ["LD_PRELOAD", "LD_LIBRARY_PATH", "DYLD_INSERT_LIBRARIES"] {
            let (c, msg) = err(rt_process_run(text("true"), args(&[]), dict(&[("env", dict(&[(var, t("/tmp/x.so"))]))]).raw()));
            assert_eq!(c, Code::CapabilityDenied, "{msg}");
            assert!(msg.contains(var), "{msg}");
        }
        // Removing such a variable is fine.
        let r = run("true", &[], dict(&[("env", dict(&[("LD_PRELOAD", Value::NIL)]))]));
        assert_eq!(num(r, "code"), Some(0));
        // Functions that start nothing need nothing.
        assert!(ok(rt_getpid()).as_int().unwrap() > 0);
        ok(rt_sandbox_limits());
    });
}

#[test]
fn capability_unscoped_allows_loader_env_and_shell() {
    let _g = guard();
    ffi_sdk::testing::in_child("capability_unscoped_allows_loader_env_and_shell", || {
        // Restricted policy, but process.spawn kept whole.
        ffi_sdk::testing::restrict("fs.write=false;process.spawn=true");
        let r = sh_run("echo ${LD_LIBRARY_PATH}", dict(&[("env", dict(&[("LD_LIBRARY_PATH", t("/nowhere"))]))]));
        assert_eq!(txt(r, "stdout"), "/nowhere\n");
        assert_eq!(ok(rt_shell_exec(text("exit 3"), NIL)).as_int(), Some(3));
        ffi_sdk::testing::restrict("process.spawn=false");
        for r in [rt_process_run(text("true"), args(&[]), NIL), rt_shell(text("true"), NIL), rt_process_spawn(text("true"), args(&[]), NIL)] {
            assert_eq!(err(r).0, Code::CapabilityDenied);
        }
    });
}
