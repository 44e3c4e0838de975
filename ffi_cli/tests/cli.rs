//! Signals sent to this process (in a child run per test), file watching,
//! and readline / password input in a real pseudo-terminal (openpty: the
//! test binary re-runs itself on the pty's slave side).

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_cli::readline::*;
use ffi_cli::signal::*;
use ffi_cli::watch::*;
use ffi_sdk::abi::RtValue;
use ffi_sdk::testing::{dict, err, in_child, int, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

#[track_caller]
fn expect(v: RtValue, want: Code, func: &str) -> String {
    let (c, m) = err(v);
    assert_eq!(c, want, "{m}");
    assert!(m.starts_with(func), "message should name {func}: {m}");
    m
}

fn names(v: Value) -> Vec<String> {
    v.items().map(|x| x.as_text().unwrap().to_string()).collect()
}

#[test]
fn signals_recorded_in_order() {
    in_child("signals_recorded_in_order", || {
        ok(rt_signal_handler(Value::text_array(["SIGUSR1", "usr2", "HUP"]).raw()));
        ok(rt_signal_handler(int(15)));
        assert!(ok(rt_signal_poll(NIL)).is_empty());
        // SAFETY: raise and kill(getpid()) take signal numbers by value and share no memory; every
        // signal sent has the pipe-writing handler installed just above (in this forked child), so
        // none terminates the process.
        unsafe {
            libc::raise(libc::SIGUSR2);
            libc::raise(libc::SIGUSR1);
            libc::kill(libc::getpid(), libc::SIGTERM);
            libc::raise(libc::SIGHUP);
        }
        let got = names(ok(rt_signal_poll(dict(&[("timeout_ms", Value::int(1000))]))));
        assert_eq!(got, ["SIGUSR2", "SIGUSR1", "SIGTERM", "SIGHUP"]);
        // A signal from another thread while polling wakes the poll.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            // SAFETY: kill(getpid(), SIGUSR1) is by value; SIGUSR1's handler is installed (above), so it
            // only writes to the signal pipe.
            unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) };
        });
        let t = Instant::now();
        assert_eq!(names(ok(rt_signal_poll(dict(&[("timeout_ms", Value::int(5000))])))), ["SIGUSR1"]);
        assert!(t.elapsed() < Duration::from_secs(3));
        let t = Instant::now();
        assert!(ok(rt_signal_poll(dict(&[("timeout_ms", Value::int(150))]))).is_empty());
        assert!(t.elapsed() >= Duration::from_millis(140));
    });
}

#[test]
fn signal_bad_input_and_refusals() {
    for bad in ["SIGPWR", "SIGXCPU", "SIGKILL", "SIGSTOP", "SIGNOPE", ""] {
        expect(rt_signal_handler(text(bad)), Code::InvalidArgument, "rt_signal_handler");
    }
    let rt6 = libc::SIGRTMIN() + 6;
    let m = expect(rt_signal_handler(int(rt6 as i64)), Code::InvalidArgument, "rt_signal_handler");
    assert!(m.contains("collector"), "{m}");
    expect(rt_signal_handler(int(9)), Code::InvalidArgument, "rt_signal_handler");
    expect(rt_signal_handler(Value::array(0).raw()), Code::InvalidArgument, "rt_signal_handler");
    expect(rt_signal_handler(Value::dict().raw()), Code::TypeMismatch, "rt_signal_handler");
    expect(rt_signal_poll(dict(&[("timeout", Value::int(1))])), Code::InvalidArgument, "rt_signal_poll");
}

#[test]
fn signal_capability() {
    in_child("signal_capability", || {
        restrict("signal=false");
        expect(rt_signal_handler(text("SIGINT")), Code::CapabilityDenied, "rt_signal_handler");
    });
}

fn poll_until(w: RtValue, want: impl Fn(&[(String, Vec<String>)]) -> bool) -> Vec<(String, Vec<String>)> {
    let mut all = Vec::new();
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let evs = ok(rt_watch_poll(w, dict(&[("timeout_ms", Value::int(500))])));
        for e in evs.items() {
            all.push((e.get("kind").as_text().unwrap().to_string(), names(e.get("paths"))));
        }
        if want(&all) {
            break;
        }
    }
    all
}

#[test]
fn watch_create_modify_rename_remove() {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    let w = ok(rt_watch_path(text(root.to_str().unwrap()), dict(&[("debounce_ms", Value::int(30))]))).raw();
    let a = root.join("a.txt");
    let b = root.join("b.txt");
    let (a_s, b_s) = (a.to_string_lossy().into_owned(), b.to_string_lossy().into_owned());
    std::fs::write(&a, "1").unwrap();
    let ev = poll_until(w, |e| e.iter().any(|(k, p)| k == "create" && p == &[a_s.clone()]));
    assert!(ev.iter().any(|(k, p)| k == "create" && p == &[a_s.clone()]), "{ev:?}");
    std::fs::OpenOptions::new().append(true).open(&a).unwrap().write_all(b"2").unwrap();
    let ev = poll_until(w, |e| e.iter().any(|(k, _)| k == "modify"));
    assert!(ev.iter().any(|(k, p)| k == "modify" && p == &[a_s.clone()]), "{ev:?}");
    std::fs::rename(&a, &b).unwrap();
    let ev = poll_until(w, |e| e.iter().any(|(k, _)| k == "rename"));
    assert!(ev.iter().any(|(k, p)| k == "rename" && p == &[a_s.clone(), b_s.clone()]), "{ev:?}");
    std::fs::remove_file(&b).unwrap();
    let ev = poll_until(w, |e| e.iter().any(|(k, _)| k == "remove"));
    assert!(ev.iter().any(|(k, p)| k == "remove" && p == &[b_s.clone()]), "{ev:?}");
    // Coalescing: many writes to one file in one batch are one event.
    let c = root.join("c.txt");
    std::fs::write(&c, "x").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _ = ok(rt_watch_poll(w, dict(&[("timeout_ms", Value::int(200))])));
    for i in 0..50 {
        std::fs::write(&c, format!("{i}")).unwrap();
    }
    let evs = ok(rt_watch_poll(w, dict(&[("timeout_ms", Value::int(2000))])));
    let mods = evs.items().filter(|e| e.get("kind").as_text() == Some("modify")).count();
    assert!(mods <= 2, "{} events", evs.len());
    ok(rt_watch_close(w));
    ok(rt_watch_close(w));
    expect(rt_watch_poll(w, NIL), Code::Closed, "rt_watch_poll");
}

#[test]
fn watch_ten_thousand_files() {
    let d = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(d.path()).unwrap();
    for i in 0..100 {
        let sub = root.join(format!("d{i}"));
        std::fs::create_dir(&sub).unwrap();
        for j in 0..100 {
            std::fs::write(sub.join(format!("f{j}")), "").unwrap();
        }
    }
    let t = Instant::now();
    let w = ok(rt_watch_path(text(root.to_str().unwrap()), NIL)).raw();
    eprintln!("watch on 10,000 files in 100 directories set up in {:?}", t.elapsed());
    let target = root.join("d57").join("f42");
    std::fs::write(&target, "changed").unwrap();
    let s = target.to_string_lossy().into_owned();
    let ev = poll_until(w, |e| e.iter().any(|(k, p)| k == "modify" && p == &[s.clone()]));
    assert!(ev.iter().any(|(k, p)| k == "modify" && p == &[s.clone()]), "{ev:?}");
    ok(rt_watch_close(w));
}

#[test]
fn watch_bad_input() {
    expect(rt_watch_path(text("/nonexistent/nowhere"), NIL), Code::NotFound, "rt_watch_path");
    expect(rt_watch_path(text("/tmp"), dict(&[("kinds", Value::text_array(["explode"]))])), Code::InvalidArgument, "rt_watch_path");
    expect(rt_watch_path(text("/tmp"), dict(&[("nope", Value::TRUE)])), Code::InvalidArgument, "rt_watch_path");
    expect(rt_watch_poll(int(1), NIL), Code::TypeMismatch, "rt_watch_poll");
}

#[test]
fn watch_scope_checked_and_outside_events_hidden() {
    in_child("watch_scope_checked_and_outside_events_hidden", || {
        let d = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(d.path()).unwrap();
        let inside = root.join("in");
        let outside = root.join("out");
        std::fs::create_dir(&inside).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, inside.join("link")).unwrap();
        restrict(&format!("fs.read={}", inside.display()));
        expect(rt_watch_path(text(outside.to_str().unwrap()), NIL), Code::CapabilityDenied, "rt_watch_path");
        let w = ok(rt_watch_path(text(inside.to_str().unwrap()), dict(&[("debounce_ms", Value::int(20))]))).raw();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::fs::write(inside.join("visible"), "v").unwrap();
        let v = inside.join("visible").to_string_lossy().into_owned();
        let ev = poll_until(w, |e| e.iter().any(|(_, p)| p.contains(&v)));
        assert!(ev.iter().any(|(_, p)| p.contains(&v)), "{ev:?}");
        assert!(!ev.iter().any(|(_, p)| p.iter().any(|x| x.contains("secret"))), "{ev:?}");
    });
}

#[test]
fn history_load_save_and_plain_input() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("hist");
    ok(rt_readline_clear_history());
    ok(rt_readline_add_history(text("one")));
    ok(rt_readline_add_history(text("two")));
    ok(rt_readline_add_history(text("two")));
    ok(rt_readline_add_history(text("")));
    assert_eq!(names(ok(rt_readline_history())), ["one", "two"]);
    assert_eq!(ok(rt_readline_history_save(text(f.to_str().unwrap()))).as_int(), Some(2));
    ok(rt_readline_clear_history());
    assert_eq!(ok(rt_readline_history_load(text(f.to_str().unwrap()))).as_int(), Some(2));
    assert_eq!(names(ok(rt_readline_history())), ["one", "two"]);
    expect(rt_readline_history_load(text("/nonexistent/h")), Code::NotFound, "rt_readline_history_load");
    expect(rt_readline(int(1), NIL), Code::TypeMismatch, "rt_readline");
}

/// Runs `test` of this binary on the slave side of a new pty; `drive` gets the master.
fn in_pty(test: &str, out: &std::path::Path, drive: impl FnOnce(&mut std::fs::File)) -> String {
    let (mut m, mut s) = (0, 0);
    // SAFETY: `&mut m` and `&mut s` are live ints openpty writes the two descriptors to; name,
    // termios and window size are optional (NULL).
    assert_eq!(unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) }, 0);
    // SAFETY: openpty succeeded (asserted), so `m` and `s` are new open descriptors nothing else
    // owns; each OwnedFd takes sole ownership and closes it once.
    let (m, s) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]).env("RT_PTY_CHILD", out).env("TERM", "xterm");
    let sfd = {
        use std::os::fd::AsRawFd;
        s.as_raw_fd()
    };
    cmd.stdin(s.try_clone().unwrap()).stdout(s.try_clone().unwrap()).stderr(s.try_clone().unwrap());
    // SAFETY: the pre_exec closure runs in the forked child before exec and only makes the
    // async-signal-safe calls setsid and ioctl(TIOCSCTTY) on `sfd`, a plain int naming the pty
    // slave, which is open in the child (inherited: `s` is dropped only after spawn); it allocates
    // nothing and touches no lock.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(sfd, libc::TIOCSCTTY as _, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    drop(s);
    let mut master = std::fs::File::from(m);
    // Drain output in the background so the child never blocks on a full pty.
    let mut reader = master.try_clone().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n) = reader.read(&mut b) {
            if n == 0 {
                break;
            }
            seen2.lock().unwrap().extend_from_slice(&b[..n]);
        }
    });
    drive(&mut master);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success(), "pty child failed: {}", String::from_utf8_lossy(&seen.lock().unwrap()));
            break;
        }
        assert!(Instant::now() < end, "pty child hung: {}", String::from_utf8_lossy(&seen.lock().unwrap()));
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(100));
    let s = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    s
}

fn child_out() -> Option<std::path::PathBuf> {
    std::env::var_os("RT_PTY_CHILD").map(Into::into)
}

fn describe(v: RtValue) -> String {
    let v = Value::from_raw(v);
    if v.is_error() {
        let (code, _) = err(v.raw());
        format!("error:{}", if code == Code::Interrupted { "interrupted" } else { "other" })
    } else if v.is_nil() {
        "nil".into()
    } else {
        format!("line:{}", v.as_text().unwrap())
    }
}

fn wait_for(pause_ms: u64) {
    std::thread::sleep(Duration::from_millis(pause_ms));
}

#[test]
fn readline_editing_history_and_ctrl_c_in_a_pty() {
    if let Some(out) = child_out() {
        ok(rt_readline_clear_history());
        ok(rt_readline_add_history(text("from history")));
        let mut res = Vec::new();
        for _ in 0..4 {
            res.push(describe(rt_readline(text("> "), NIL)));
        }
        std::fs::write(out, res.join("\n")).unwrap();
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let _ = in_pty("readline_editing_history_and_ctrl_c_in_a_pty", &out, |m| {
        wait_for(800);
        // Type "helo", Left, insert "l", End, " world", Enter.
        m.write_all(b"helo\x1b[Dl\x1b[F world\r").unwrap();
        wait_for(300);
        // Up twice = the older history entry ("from history"), Enter.
        m.write_all(b"\x1b[A\x1b[A\r").unwrap();
        wait_for(300);
        m.write_all(b"abc\x03").unwrap();
        wait_for(300);
        m.write_all(b"\x04").unwrap();
    });
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got, "line:hello world\nline:from history\nerror:interrupted\nnil", "{got}");
}

#[test]
fn password_no_echo_in_a_pty() {
    if let Some(out) = child_out() {
        let a = describe(rt_password_read(text("Password: "), NIL));
        let b = describe(rt_password_read(text("Again: "), NIL));
        std::fs::write(out, format!("{a}\n{b}")).unwrap();
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    let screen = in_pty("password_no_echo_in_a_pty", &out, |m| {
        wait_for(800);
        m.write_all(b"s3cretX\x7f\r").unwrap();
        wait_for(300);
        m.write_all(b"zz\x03").unwrap();
    });
    assert!(screen.contains("Password: ") && !screen.contains("s3cret"), "{screen}");
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got, "line:s3cret\nerror:interrupted", "{got}");
}

#[test]
fn password_without_terminal() {
    // SAFETY: isatty on fd 0 by value only queries it; no memory is shared.
    if unsafe { libc::isatty(0) } == 1 {
        return;
    }
    expect(rt_password_read(text("pw: "), NIL), Code::Unsupported, "rt_password_read");
}
