//! The functions served under Simple's names (`sffi/process.spl`,
//! `sffi/system.spl`, `io/process_ops.spl`): happy paths against real
//! children, bad input (Error code and a message naming the function), and
//! the capability each needs (in a child run: the policy narrows for good).
//! Every test checks that it leaves no process behind (common.rs).

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_process::child::*;
use ffi_process::compat::*;
use ffi_process::host::*;
use ffi_process::shell::*;
use ffi_sdk::testing::{bytes, close, err, err_named, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::time::{Duration, Instant};

/// Reads a child's stdout until it holds `want` (or 5 s pass).
fn read_until(h: u64, want: &str) -> String {
    let mut got = String::new();
    let t = Instant::now();
    while !got.contains(want) && t.elapsed() < Duration::from_secs(5) {
        got.push_str(ok(rt_process_read_stdout(h)).as_text().unwrap());
        std::thread::sleep(Duration::from_millis(5));
    }
    got
}

#[test]
fn spawn_piped_write_read_close() {
    let _g = guard();
    let h = ok(rt_process_spawn_piped(text("cat"), args(&[]), NIL)).raw();
    assert_eq!(ok(rt_process_is_running(h)).as_bool(), Some(true));
    assert_eq!(ok(rt_process_is_alive(h)).as_bool(), Some(true));
    assert_eq!(ok(rt_process_exists(h)).as_bool(), Some(true));
    ok(rt_process_write_stdin(h, text("hello\n")));
    assert_eq!(read_until(h, "hello\n"), "hello\n");
    // Partial writes: the window [offset, min(data_len, offset + max_bytes)).
    let data = text("0123456789");
    assert_eq!(ok(rt_process_write_stdin_some(h, data, int(10), int(2), int(3))).as_int(), Some(3));
    assert_eq!(ok(rt_process_write_stdin_some(h, data, NIL, int(8), int(100))).as_int(), Some(2));
    assert_eq!(ok(rt_process_write_stdin_some(h, data, int(6), int(6), int(4))).as_int(), Some(0));
    assert_eq!(read_until(h, "89"), "23489");
    // A megabyte through the pipe while cat echoes it back (the pump drains stdout meanwhile).
    let big = vec![b'z'; 1 << 20];
    ok(rt_process_write_stdin(h, bytes(&big)));
    // End of file: cat exits 0.
    assert_eq!(ok(rt_process_stdin_close(h)).as_bool(), Some(true));
    assert_eq!(ok(rt_process_stdin_close(h)).as_bool(), Some(false));
    let r = ok(rt_process_wait(h, int(5000)));
    assert_eq!(num(r, "code"), Some(0));
    assert_eq!(r.get("stdout").as_text().unwrap().len(), 1 << 20);
    assert_eq!(ok(rt_process_is_running(h)).as_bool(), Some(false));
    // Writing after the close is Error Closed naming the function.
    err_named(rt_process_write_stdin(h, text("x")), Code::Closed, "rt_process_write_stdin");
    close(h);
}

#[test]
fn close_piped_kills_and_closes() {
    let _g = guard();
    // A child that ignores its stdin: close_piped must still end it (and its descendants).
    let h = ok(rt_process_spawn_piped(text("sh"), args(&["-c", "sleep 100 & sleep 100; wait"]), NIL)).raw();
    let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
    assert!(alive(pid));
    assert_eq!(ok(rt_process_close_piped(h)).as_bool(), Some(true));
    assert!(wait_dead(pid));
    // The handle is closed: every call is Error Closed.
    err_named(rt_process_close_piped(h), Code::Closed, "rt_process_close_piped");
    err_named(rt_process_is_running(h), Code::Closed, "rt_process_is_running");
}

/// A write blocked on a full pipe (the child never reads) ends when another thread closes the handle.
#[test]
fn blocked_write_ends_on_close() {
    let _g = guard();
    let h = ok(rt_process_spawn_piped(text("sleep"), args(&["100"]), NIL)).raw();
    let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
    let writer = std::thread::spawn(move || {
        let big = vec![b'x'; 4 << 20];
        let (c, m) = err(rt_process_write_stdin(h, bytes(&big)));
        (c, m)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!writer.is_finished(), "the write should wait on the full pipe");
    let t0 = Instant::now();
    close(h);
    let (c, m) = writer.join().unwrap();
    assert_eq!(c, Code::Closed, "{m}");
    assert!(m.starts_with("rt_process_write_stdin: "), "{m}");
    assert!(t0.elapsed() < Duration::from_secs(3), "close took {:?}", t0.elapsed());
    assert!(wait_dead(pid));
}

#[test]
fn write_stdin_bad_input() {
    let _g = guard();
    // Not spawned with a stdin pipe.
    let h = ok(rt_process_spawn_async(text("sleep"), args(&["100"]), NIL)).raw();
    let m = err_named(rt_process_write_stdin(h, text("x")), Code::Closed, "rt_process_write_stdin");
    assert!(m.contains("stdin_pipe"), "{m}");
    err_named(rt_process_write_stdin_some(h, text("x"), NIL, int(0), int(1)), Code::Closed, "rt_process_write_stdin_some");
    close(h);
    let h = ok(rt_process_spawn_piped(text("cat"), args(&[]), NIL)).raw();
    let data = text("abc");
    err_named(rt_process_write_stdin_some(h, data, int(4), int(0), int(1)), Code::InvalidArgument, "rt_process_write_stdin_some");
    err_named(rt_process_write_stdin_some(h, data, int(3), int(4), int(1)), Code::OutOfRange, "rt_process_write_stdin_some");
    err_named(rt_process_write_stdin_some(h, data, int(3), int(0), int(0)), Code::InvalidArgument, "rt_process_write_stdin_some");
    err_named(rt_process_write_stdin_some(h, data, int(3), int(-1), int(1)), Code::InvalidArgument, "rt_process_write_stdin_some");
    err_named(rt_process_write_stdin(h, int(5)), Code::TypeMismatch, "rt_process_write_stdin");
    close(h);
    // A child that exited: its stdin is closed at the other end (EPIPE, no SIGPIPE for us).
    let h = ok(rt_process_spawn_piped(text("true"), args(&[]), NIL)).raw();
    ok(rt_process_wait(h, int(5000)));
    let big = vec![b'x'; 1 << 20];
    let m = err_named(rt_process_write_stdin(h, bytes(&big)), Code::Closed, "rt_process_write_stdin");
    assert!(m.contains("closed its stdin"), "{m}");
    close(h);
    // Spawn errors name the function.
    err_named(rt_process_spawn_piped(text("/nonexistent/prog"), args(&[]), NIL), Code::NotFound, "rt_process_spawn_piped");
    err_named(rt_process_spawn_piped(text("cat"), args(&[]), dict(&[("stdin", t("x"))]).raw()), Code::InvalidArgument, "rt_process_spawn_piped");
    err_named(rt_process_spawn_async(text(""), args(&[]), NIL), Code::InvalidArgument, "rt_process_spawn_async");
}

#[test]
fn spawn_async_wait_kill_exists() {
    let _g = guard();
    let h = ok(rt_process_spawn_async(text("sh"), args(&["-c", "exit 7"]), NIL)).raw();
    assert_eq!(num(ok(rt_process_wait(h, int(5000))), "code"), Some(7));
    assert_eq!(ok(rt_process_is_running(h)).as_bool(), Some(false));
    assert_eq!(ok(rt_process_exists(h)).as_bool(), Some(false));
    close(h);
    // Simple's one-argument kill: nil signal = SIGKILL.
    let h = ok(rt_process_spawn_async(text("sleep"), args(&["100"]), NIL)).raw();
    assert_eq!(ok(rt_process_kill(h, NIL)).as_bool(), Some(true));
    assert_eq!(num(ok(rt_process_wait(h, int(5000))), "signal"), Some(libc::SIGKILL as i64));
    close(h);
    // The id form: this process exists; an id no process has does not.
    assert_eq!(ok(rt_process_exists(int(std::process::id() as i64))).as_bool(), Some(true));
    assert_eq!(ok(rt_process_exists(int(1))).as_bool(), Some(true));
    assert_eq!(ok(rt_process_exists(int(i32::MAX as i64))).as_bool(), Some(false));
    err_named(rt_process_exists(int(0)), Code::InvalidArgument, "rt_process_exists");
    err_named(rt_process_exists(int(-5)), Code::InvalidArgument, "rt_process_exists");
    let m = err_named(rt_process_exists(text("12")), Code::TypeMismatch, "rt_process_exists");
    assert!(m.contains("Child handle or a process id"), "{m}");
}

#[test]
fn run_bounded_keeps_head_and_tail() {
    let _g = guard();
    // 10,000 bytes with 100 kept: the first 50, the marker, the last 50.
    let script = "i=0; while [ $i -lt 1000 ]; do printf '%09d\\n' $i; i=$((i+1)); done";
    let r = ok(rt_process_run_bounded(text("sh"), args(&["-c", script]), int(0), int(100), NIL));
    let out = txt(r, "stdout");
    assert_eq!(num(r, "code"), Some(0));
    assert_eq!(num(r, "stdout_omitted"), Some(9900));
    assert_eq!(num(r, "stderr_omitted"), Some(0));
    assert!(out.starts_with("000000000\n000000001\n"), "{out}");
    assert!(out.contains("\n[output truncated: 9900 bytes omitted]\n"), "{out}");
    assert!(out.ends_with("000000998\n000000999\n"), "{out}");
    assert_eq!(out.len(), 100 + "\n[output truncated: 9900 bytes omitted]\n".len());
    // Within the budget: nothing dropped, no marker.
    let r = ok(rt_process_run_bounded(text("sh"), args(&["-c", "echo small; echo err >&2"]), int(5000), int(100), NIL));
    assert_eq!((txt(r, "stdout"), txt(r, "stderr")), ("small\n".to_string(), "err\n".to_string()));
    // UTF-8 cut points move to character boundaries.
    let r = ok(rt_process_run_bounded(text("sh"), args(&["-c", "i=0; while [ $i -lt 100 ]; do printf 'é'; i=$((i+1)); done"]), int(0), int(11), NIL));
    let out = txt(r, "stdout");
    assert!(out.starts_with("ééé\n[output truncated: "), "{out}");
    // A deadline kills the program and every descendant.
    let t0 = Instant::now();
    let r = ok(rt_process_run_bounded(text("sh"), args(&["-c", "echo started; sleep 100 & sleep 100"]), int(300), int(1000), NIL));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(r.get("timed_out").as_bool(), Some(true));
    assert_eq!(txt(r, "stdout"), "started\n");
    err_named(rt_process_run_bounded(text("true"), args(&[]), int(0), int(-1), NIL), Code::InvalidArgument, "rt_process_run_bounded");
    err_named(
        rt_process_run_bounded(text("true"), args(&[]), int(0), int(10), dict(&[("max_output", i(5))]).raw()),
        Code::InvalidArgument,
        "rt_process_run_bounded",
    );
}

#[test]
fn run_inherit_execute_native_process_output() {
    let _g = guard();
    assert_eq!(ok(rt_process_run_inherit(text("sh"), args(&["-c", "exit 5"]), NIL)).as_int(), Some(5));
    assert_eq!(ok(rt_process_run_inherit(text("sh"), args(&["-c", "kill -TERM $$"]), NIL)).as_int(), Some(128 + 15));
    let m = err_named(
        rt_process_run_inherit(text("sleep"), args(&["100"]), dict(&[("timeout_ms", i(200))]).raw()),
        Code::Timeout,
        "rt_process_run_inherit",
    );
    assert!(m.contains("200 ms"), "{m}");
    err_named(rt_process_run_inherit(text("nonexistent-program-xyz"), args(&[]), NIL), Code::NotFound, "rt_process_run_inherit");

    let r = ok(rt_execute_native(text("sh"), args(&["-c", "echo hi; exit 2"]), int(5000), NIL));
    assert_eq!((txt(r, "stdout"), num(r, "code")), ("hi\n".to_string(), Some(2)));
    let r = ok(rt_execute_native(text("sleep"), args(&["100"]), int(200), NIL));
    assert_eq!(r.get("timed_out").as_bool(), Some(true));
    let r = ok(rt_execute_native(text("true"), args(&[]), int(0), NIL));
    assert_eq!(num(r, "code"), Some(0));
    err_named(rt_execute_native(text("/no/such/binary"), args(&[]), int(0), NIL), Code::NotFound, "rt_execute_native");

    // stdout whatever the exit status; stderr to ours unless captured.
    let out = ok(rt_process_output(text("sh"), args(&["-c", "echo out; echo err >&2; exit 3"]), dict(&[("stderr", t("null"))]).raw()));
    assert_eq!(out.as_text(), Some("out\n"));
    let out = ok(rt_process_output(text("printf"), args(&["\\377"]), dict(&[("text", Value::FALSE)]).raw()));
    assert_eq!(out.as_bytes(), Some(&[0xffu8][..]));
    err_named(rt_process_output(text("printf"), args(&["\\377"]), NIL), Code::Parse, "rt_process_output");
    err_named(rt_process_output(text("true"), int(1), NIL), Code::TypeMismatch, "rt_process_output");
    err_named(rt_process_output(text("sleep"), args(&["100"]), dict(&[("timeout_ms", i(100))]).raw()), Code::Timeout, "rt_process_output");
}

#[test]
fn shell_family_and_last_exit_code() {
    let _g = guard();
    assert_eq!(ok(rt_exec(text("exit 4"), NIL)).as_int(), Some(4));
    assert_eq!(ok(rt_shell_exit_code()).as_int(), Some(4));
    let out = ok(rt_exec_output(text("echo a; echo b >&2; exit 2"), dict(&[("stderr", t("null"))]).raw()));
    assert_eq!(out.as_text(), Some("a\n"));
    assert_eq!(ok(rt_shell_exit_code()).as_int(), Some(2));
    assert_eq!(ok(rt_shell_output(text("printf '%s' \"$((6*7))\""), NIL)).as_text(), Some("42"));
    assert_eq!(ok(rt_shell_exit_code()).as_int(), Some(0));
    let r = ok(rt_shell_exec_tuple(text("printf out; printf err >&2; exit 3"), NIL));
    assert_eq!((txt(r, "stdout"), txt(r, "stderr"), num(r, "code")), ("out".into(), "err".into(), Some(3)));
    assert_eq!(ok(rt_shell_exit_code()).as_int(), Some(3));
    // Per thread: another thread has run nothing.
    assert_eq!(std::thread::spawn(|| ok(rt_shell_exit_code()).as_int()).join().unwrap(), Some(0));
    // A signal: 128 + N, as shells report.
    ok(rt_exec(text("kill -KILL $$"), NIL));
    assert_eq!(ok(rt_shell_exit_code()).as_int(), Some(128 + 9));
    // Bad input names the function.
    err_named(rt_exec(text("a\0b"), NIL), Code::InvalidArgument, "rt_exec");
    err_named(rt_exec(text("true"), dict(&[("stdout", t("capture"))]).raw()), Code::InvalidArgument, "rt_exec");
    err_named(rt_exec_output(text("sleep 100"), dict(&[("timeout_ms", i(100))]).raw()), Code::Timeout, "rt_exec_output");
    err_named(rt_shell_output(int(3), NIL), Code::TypeMismatch, "rt_shell_output");
    err_named(rt_shell_exec_tuple(text("true"), dict(&[("bogus", i(1))]).raw()), Code::InvalidArgument, "rt_shell_exec_tuple");
}

#[test]
fn host_memory_stdio() {
    let _g = guard();
    let kib = ok(rt_process_hwm_kib()).as_int().unwrap();
    assert!(kib > 1000, "{kib}");
    // stdio.
    ok(rt_stderr_write(text("")));
    ok(rt_stdout_flush());
    ok(rt_stderr_flush());
    err_named(rt_stderr_write(int(1)), Code::TypeMismatch, "rt_stderr_write");
    err_named(rt_exit(int(1 << 40)), Code::OutOfRange, "rt_exit");
}

/// rt_exit ends the process with the code, flushing stdout first (run in a child of this test binary).
#[test]
fn exit_ends_the_process_with_the_code() {
    let _g = guard();
    if std::env::var("RT_EXIT_CHILD").is_ok() {
        print!("flushed-before-exit");
        ok(rt_exit(int(7)));
        unreachable!("rt_exit returned");
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "exit_ends_the_process_with_the_code", "--nocapture", "--test-threads=1"])
        .env("RT_EXIT_CHILD", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("flushed-before-exit"));
}

#[test]
fn capabilities() {
    let _g = guard();
    ffi_sdk::testing::in_child("capabilities", || {
        let tp = std::fs::canonicalize("/bin/true").unwrap();
        ffi_sdk::testing::restrict(&format!("process.spawn={};sys.info=false;fs.read=true", tp.display()));
        // Scoped by program: true is allowed, sh is not.
        let h = ok(rt_process_spawn_async(text("true"), args(&[]), NIL)).raw();
        ok(rt_process_wait(h, int(5000)));
        // The handle form of rt_process_exists needs nothing.
        assert_eq!(ok(rt_process_exists(h)).as_bool(), Some(false));
        close(h);
        assert_eq!(ok(rt_process_run_inherit(text("true"), args(&[]), NIL)).as_int(), Some(0));
        for (r, f) in [
            (rt_process_spawn_piped(text("sh"), args(&[]), NIL), "rt_process_spawn_piped"),
            (rt_process_spawn_async(text("sh"), args(&[]), NIL), "rt_process_spawn_async"),
            (rt_process_run_bounded(text("sh"), args(&[]), int(0), int(10), NIL), "rt_process_run_bounded"),
            (rt_process_run_inherit(text("sh"), args(&[]), NIL), "rt_process_run_inherit"),
            (rt_execute_native(text("sh"), args(&[]), int(0), NIL), "rt_execute_native"),
            (rt_process_output(text("sh"), args(&[]), NIL), "rt_process_output"),
            // A shell runs anything: unscoped process.spawn.
            (rt_exec(text("true"), NIL), "rt_exec"),
            (rt_exec_output(text("true"), NIL), "rt_exec_output"),
            (rt_shell_output(text("true"), NIL), "rt_shell_output"),
            (rt_shell_exec_tuple(text("true"), NIL), "rt_shell_exec_tuple"),
            (rt_process_exists(int(1)), "rt_process_exists"),
        ] {
            err_named(r, Code::CapabilityDenied, f);
        }
        // Functions on the calling process need nothing.
        assert!(ok(rt_process_hwm_kib()).as_int().unwrap() > 0);
        assert_eq!(ok(rt_shell_exit_code()).as_int(), Some(0));
    });
}
