//! Issue 9 §3-4: what a child inherits under a restricted policy, close while
//! another thread waits, the bound on captured output, and timeouts and kills
//! that reach every descendant (setsid, double fork). Each test failed on the
//! code before the change.

#![deny(clippy::undocumented_unsafe_blocks)]

mod common;

use common::*;
use ffi_process::child::*;
use ffi_process::process::*;
use ffi_process::shell::*;
use ffi_sdk::testing::{err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::time::{Duration, Instant};

extern "C" {
    fn rt_handle_close(h: u64) -> u64;
}
fn close(h: u64) -> u64 {
    // SAFETY: the declaration above matches core's export `RtValue rt_handle_close(RtValue)`
    // (RtValue is a u64); any value is accepted (a non-handle gives an Error value).
    unsafe { rt_handle_close(h) }
}

/// The environment of a child as name → value lines (`/usr/bin/env`).
fn child_env(f: impl FnOnce() -> u64) -> Vec<String> {
    let r = ok(f());
    txt(r, "stdout").lines().map(str::to_string).collect()
}

fn has(env: &[String], name: &str) -> bool {
    env.iter().any(|l| l.split_once('=').map(|x| x.0) == Some(name))
}

/// Host variables the child must not see unless the policy lets the caller read them.
fn set_host_env() {
    // Only this (child) test process runs now; nothing else reads the environment.
    std::env::set_var("RT_SECRET_TOKEN", "s3cret");
    std::env::set_var("RT_OK_VISIBLE", "yes");
    std::env::set_var("LD_PRELOAD", "/nonexistent/rt-preload.so");
    std::env::set_var("LD_BIND_NOW", "1");
    std::env::set_var("DYLD_INSERT_LIBRARIES", "/nonexistent/x.dylib");
}

#[test]
fn scoped_env_read_limits_what_children_inherit() {
    let _g = guard();
    ffi_sdk::testing::in_child("scoped_env_read_limits_what_children_inherit", || {
        set_host_env();
        // Control, still allow-all: everything is inherited.
        let env = child_env(|| rt_process_run(text("/usr/bin/env"), args(&[]), NIL));
        assert!(has(&env, "RT_SECRET_TOKEN") && has(&env, "LD_PRELOAD"), "{env:?}");

        ffi_sdk::testing::restrict("env.read=RT_OK_*,RT_TEST_*,PATH;process.spawn=/usr/bin,/bin");
        let passed = dict(&[("env", dict(&[("RT_PASSED", t("1")), ("RT_OK_VISIBLE", t("over"))]))]);
        let env = child_env(|| rt_process_run(text("/usr/bin/env"), args(&[]), passed.raw()));
        assert!(!has(&env, "RT_SECRET_TOKEN"), "secret inherited: {env:?}");
        for v in ["LD_PRELOAD", "LD_BIND_NOW", "DYLD_INSERT_LIBRARIES", "HOME"] {
            assert!(!has(&env, v), "{v} inherited: {env:?}");
        }
        assert!(env.contains(&"RT_OK_VISIBLE=over".to_string()), "{env:?}");
        assert!(env.contains(&"RT_PASSED=1".to_string()), "explicit env is passed: {env:?}");
        assert!(has(&env, "PATH"), "{env:?}");
        // The same through a Child handle.
        let h = ok(rt_process_spawn(text("/usr/bin/env"), args(&[]), NIL)).raw();
        let env: Vec<String> = txt(ok(rt_process_wait(h, NIL)), "stdout").lines().map(str::to_string).collect();
        close(h);
        assert!(!has(&env, "RT_SECRET_TOKEN") && !has(&env, "LD_PRELOAD") && has(&env, "RT_OK_VISIBLE"), "{env:?}");
        // Explicitly passing any LD_* / DYLD_* needs unscoped process.spawn.
        for var in ["LD_PRELOAD", "LD_BIND_NOW", "LD_DEBUG", "DYLD_LIBRARY_PATH"] {
            let (c, msg) = err(rt_process_run(text("/usr/bin/env"), args(&[]), dict(&[("env", dict(&[(var, t("x"))]))]).raw()));
            assert_eq!(c, Code::CapabilityDenied, "{msg}");
            assert!(msg.starts_with("rt_process_run needs process.spawn") && msg.contains(var), "{msg}");
        }
        // PATH hidden from the caller: the program is looked up in the default PATH, not the host's.
        ffi_sdk::testing::restrict("env.read=RT_OK_*,RT_TEST_*");
        let env = child_env(|| rt_process_run(text("env"), args(&[]), NIL));
        assert!(!has(&env, "PATH") && has(&env, "RT_OK_VISIBLE") && !has(&env, "RT_SECRET_TOKEN"), "{env:?}");
    });
}

#[test]
fn loader_variables_need_unscoped_spawn_even_with_env_read() {
    let _g = guard();
    ffi_sdk::testing::in_child("loader_variables_need_unscoped_spawn_even_with_env_read", || {
        set_host_env();
        // env.read unscoped, process.spawn scoped: every variable but LD_*/DYLD_* is inherited.
        ffi_sdk::testing::restrict("process.spawn=/usr/bin,/bin");
        let env = child_env(|| rt_process_run(text("/usr/bin/env"), args(&[]), NIL));
        assert!(has(&env, "RT_SECRET_TOKEN") && has(&env, "HOME"), "{env:?}");
        for v in ["LD_PRELOAD", "LD_BIND_NOW", "DYLD_INSERT_LIBRARIES"] {
            assert!(!has(&env, v), "{v} inherited under scoped process.spawn: {env:?}");
        }
    });
}

#[test]
fn unscoped_spawn_keeps_readable_loader_variables() {
    let _g = guard();
    ffi_sdk::testing::in_child("unscoped_spawn_keeps_readable_loader_variables", || {
        set_host_env();
        // process.spawn unscoped: LD_* follow the env.read rule like any variable.
        ffi_sdk::testing::restrict("env.read=RT_OK_*,RT_TEST_*,LD_BIND_NOW,PATH;process.spawn=true");
        let env = child_env(|| rt_shell(text("/usr/bin/env"), NIL));
        assert!(has(&env, "LD_BIND_NOW") && has(&env, "RT_OK_VISIBLE"), "{env:?}");
        assert!(!has(&env, "LD_PRELOAD") && !has(&env, "RT_SECRET_TOKEN"), "{env:?}");
        let r = ok(rt_shell(text("echo $LD_LIBRARY_PATH"), dict(&[("env", dict(&[("LD_LIBRARY_PATH", t("/x"))]))]).raw()));
        assert_eq!(txt(r, "stdout"), "/x\n");
    });
}

#[test]
fn close_releases_a_waiter_and_kills_the_child() {
    let _g = guard();
    for kill_on_close in [true, false] {
        let opts = dict(&[("kill_on_close", Value::bool(kill_on_close))]);
        let prog = if kill_on_close { "sleep 1000" } else { "sleep 2" };
        let h = ok(rt_process_spawn(text("sh"), args(&["-c", prog]), opts.raw())).raw();
        let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let v = rt_process_wait(h, NIL);
            let _ = tx.send(Value::from_raw(v).error());
        });
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        assert_eq!(ok(close(h)).as_bool(), Some(true));
        let got = rx.recv_timeout(Duration::from_secs(5));
        if got.is_err() {
            // Today's behaviour: the waiter blocks until the child exits. Free it, then fail.
            // SAFETY: kill takes no pointers; `-pid` names the process group of the child this test
            // spawned (still unreaped, since the waiter is blocked), so nothing unrelated is hit.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            waiter.join().unwrap();
            panic!("waiter still blocked 5 s after close (kill_on_close {kill_on_close})");
        }
        waiter.join().unwrap();
        let (c, msg) = got.unwrap().expect("wait returned an Error");
        assert_eq!(c, Code::Closed, "{msg}");
        assert!(msg.starts_with("rt_process_wait: ") && msg.contains("closed"), "{msg}");
        assert!(t0.elapsed() < Duration::from_secs(3));
        if kill_on_close {
            assert!(!alive(pid), "child {pid} survived close");
        } else {
            assert!(alive(pid), "kill_on_close false leaves it running");
            assert!(wait_dead(pid));
        }
    }
}

#[test]
fn captured_output_is_bounded() {
    let _g = guard();
    // Default cap: 64 MiB per stream.
    let t0 = Instant::now();
    let (c, msg) = err(rt_process_run(text("sh"), args(&["-c", "head -c 100000000 /dev/zero"]), NIL));
    assert_eq!(c, Code::LimitExceeded, "{msg}");
    assert!(msg.starts_with("rt_process_run: stdout exceeded max_output (67108864 bytes)") && msg.contains("\"sh\""), "{msg}");
    assert!(t0.elapsed() < Duration::from_secs(20));
    // The option, on stderr, through every capturing function.
    let small = dict(&[("max_output", i(1000))]);
    let (c, msg) = err(rt_process_run(text("sh"), args(&["-c", "yes >&2"]), small.raw()));
    assert_eq!(c, Code::LimitExceeded, "{msg}");
    assert!(msg.contains("stderr exceeded max_output (1000 bytes)"), "{msg}");
    let (c, msg) = err(rt_shell(text("yes"), small.raw()));
    assert_eq!((c, msg.starts_with("rt_shell: stdout exceeded")), (Code::LimitExceeded, true), "{msg}");
    let (c, _) = err(rt_process_run_timeout(text("yes"), args(&[]), int(60_000), small.raw()));
    assert_eq!(c, Code::LimitExceeded);
    let (c, _) = err(rt_process_run_with_limits(text("yes"), args(&[]), dict(&[]).raw(), small.raw()));
    assert_eq!(c, Code::LimitExceeded);
    // Exactly at the cap is fine; bytes mode too.
    let r = ok(rt_process_run(text("head"), args(&["-c", "1000", "/dev/zero"]), dict(&[("max_output", i(1000)), ("text", Value::FALSE)]).raw()));
    assert_eq!(r.get("stdout").as_bytes().unwrap().len(), 1000);
    // A Child handle: the cap bounds output buffered and not yet read.
    let h = ok(rt_process_spawn(text("yes"), args(&[]), small.raw())).raw();
    let pid = ok(rt_process_pid(h)).as_int().unwrap() as i32;
    let (c, msg) = err(rt_process_wait(h, int(10_000)));
    assert_eq!(c, Code::LimitExceeded, "{msg}");
    assert!(msg.starts_with("rt_process_wait: stdout exceeded max_output (1000 bytes)"), "{msg}");
    assert!(wait_dead(pid));
    assert_eq!(err(rt_process_read_stdout(h)).0, Code::LimitExceeded);
    close(h);
    // A reader that keeps up is never cut off.
    let h = ok(rt_process_spawn(text("sh"), args(&["-c", "for i in 1 2 3 4 5; do head -c 800 /dev/zero | tr '\\0' a; sleep 0.1; done"]), small.raw())).raw();
    let mut n = 0;
    let t0 = Instant::now();
    while n < 4000 && t0.elapsed() < Duration::from_secs(10) {
        n += ok(rt_process_read_stdout(h)).as_text().unwrap().len();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(n, 4000);
    assert_eq!(num(ok(rt_process_wait(h, NIL)), "code"), Some(0));
    close(h);
    // Bad values.
    for v in [i(-1), t("1")] {
        let (c, msg) = err(rt_process_run(text("true"), args(&[]), dict(&[("max_output", v)]).raw()));
        assert_eq!(c, Code::InvalidArgument, "{msg}");
        assert!(msg.contains("max_output"), "{msg}");
    }
}

/// Peak resident memory of this process (VmHWM) in bytes.
fn vm_hwm() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn two_gib_of_output_keeps_the_host_bounded() {
    let _g = guard();
    ffi_sdk::testing::in_child("two_gib_of_output_keeps_the_host_bounded", || {
        let before = vm_hwm();
        let t0 = Instant::now();
        let r = rt_process_run(text("head"), args(&["-c", "2147483648", "/dev/zero"]), NIL);
        let after = vm_hwm();
        eprintln!(
            "2 GiB to stdout, default options: {:?}, VmHWM {} MB before, {} MB after ({:?})",
            Value::from_raw(r).error().map(|e| e.0),
            before >> 20,
            after >> 20,
            t0.elapsed()
        );
        assert_eq!(err(r).0, Code::LimitExceeded);
        assert!(after < 512 << 20, "peak RSS {} MB", after >> 20);
    });
}

/// Live processes whose environment holds `RT_DESC=<mark>`.
fn marked(mark: &str) -> Vec<i32> {
    let want = format!("RT_DESC={mark}");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if env.split(|b| *b == 0).any(|v| v == want.as_bytes()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Asserts that nothing carrying `mark` is alive (within 2 s); kills what is, so a failure leaves nothing behind.
fn assert_none_survive(mark: &str, what: &str) {
    let t0 = Instant::now();
    loop {
        let left = marked(mark);
        if left.is_empty() {
            return;
        }
        if t0.elapsed() > Duration::from_secs(2) {
            let cmds: Vec<String> = left
                .iter()
                .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().replace('\0', " "))
                .collect();
            for p in &left {
                // SAFETY: kill takes no pointers; each `p` was just found alive carrying this test's mark
                // in its environment, so it is one of our own descendants.
                unsafe { libc::kill(*p, libc::SIGKILL) };
            }
            panic!("{what}: descendants survived: {left:?} {cmds:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts `setsid sleep` (new session, holding stdout), a double fork, a double fork
/// that also calls setsid (output closed), then prints "ready" and sleeps.
const ESCAPERS: &str = "setsid sleep 1000 & (sleep 1000 &) ; (setsid sleep 1000 >/dev/null 2>&1 </dev/null &) ; \
    sh -c 'sleep 1000 & exec setsid sleep 1000' >/dev/null 2>&1 & sleep 0.2; echo ready; exec sleep 1000";

fn mark_opts(mark: &str, extra: &[(&str, Value)]) -> Value {
    let mut e: Vec<(&str, Value)> = vec![("env", dict(&[("RT_DESC", t(mark))]))];
    e.extend_from_slice(extra);
    dict(&e)
}

#[test]
fn timeout_and_kill_reach_every_descendant() {
    let _g = guard();
    let base = format!("desc-{}", std::process::id());
    // rt_process_run_timeout, with and without a grace period.
    for grace in [0, 200] {
        let mark = format!("{base}-timeout-{grace}");
        let r = ok(rt_process_run_timeout(text("sh"), args(&["-c", ESCAPERS]), int(800), mark_opts(&mark, &[("grace_ms", i(grace))]).raw()));
        assert_eq!(r.get("timed_out").as_bool(), Some(true), "{r:?}");
        assert_eq!(txt(r, "stdout"), "ready\n");
        assert_none_survive(&mark, "rt_process_run_timeout");
    }
    // rt_shell with timeout_ms.
    let mark = format!("{base}-shell");
    let r = ok(rt_shell(text(ESCAPERS), mark_opts(&mark, &[("timeout_ms", i(800))]).raw()));
    assert_eq!(r.get("timed_out").as_bool(), Some(true));
    assert_none_survive(&mark, "rt_shell timeout");
    // rt_shell_exec.
    let mark = format!("{base}-exec");
    let (c, _) = err(rt_shell_exec(text(ESCAPERS), mark_opts(&mark, &[("timeout_ms", i(800)), ("stdout", t("null"))]).raw()));
    assert_eq!(c, Code::Timeout);
    assert_none_survive(&mark, "rt_shell_exec timeout");
    // A Child killed with SIGKILL, and one closed.
    for how in ["kill", "close"] {
        let mark = format!("{base}-{how}");
        let h = ok(rt_process_spawn(text("sh"), args(&["-c", ESCAPERS]), mark_opts(&mark, &[]).raw())).raw();
        let t0 = Instant::now();
        let mut got = String::new();
        while !got.contains("ready") && t0.elapsed() < Duration::from_secs(10) {
            got.push_str(ok(rt_process_read_stdout(h)).as_text().unwrap());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(got.contains("ready"));
        assert!(marked(&mark).len() >= 5, "escapers started: {:?}", marked(&mark));
        if how == "kill" {
            assert_eq!(ok(rt_process_kill(h, int(9))).as_bool(), Some(true));
            let w = ok(rt_process_wait(h, int(10_000)));
            assert_eq!(num(w, "signal"), Some(9));
        }
        close(h);
        assert_none_survive(&mark, how);
    }
    // The leader exits at once; a setsid descendant keeps stdout open: the timeout still reaches it.
    let mark = format!("{base}-leader-gone");
    let r = ok(rt_process_run_timeout(text("sh"), args(&["-c", "setsid sleep 1000 & echo started"]), int(500), mark_opts(&mark, &[]).raw()));
    assert_eq!((r.get("timed_out").as_bool(), num(r, "code")), (Some(true), Some(0)), "{r:?}");
    assert_none_survive(&mark, "leader gone");
}

#[test]
fn normal_exit_still_leaves_detached_daemons_alone() {
    let _g = guard();
    // Documented: a run that finishes normally does not kill a descendant that closed its output.
    let mark = format!("daemon-{}", std::process::id());
    let r = ok(rt_shell(text("setsid sleep 2 >/dev/null 2>&1 </dev/null & echo $!"), mark_opts(&mark, &[]).raw()));
    assert_eq!(num(r, "code"), Some(0));
    let pid: i32 = txt(r, "stdout").trim().parse().unwrap();
    assert!(alive(pid));
    // SAFETY: kill takes no pointers; `pid` is the daemon this test started (alive() just saw it).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    assert!(wait_dead(pid));
}

/// The signal bit masks of `/usr/bin/cat /proc/self/status` run by us: (SigBlk, SigIgn, SigCgt).
fn child_signal_masks() -> (u64, u64, u64) {
    let r = ok(rt_process_run(text("/bin/cat"), args(&["/proc/self/status"]), NIL));
    let status = txt(r, "stdout");
    let field = |name: &str| {
        let l = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {status}"));
        u64::from_str_radix(l.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    (field("SigBlk:"), field("SigIgn:"), field("SigCgt:"))
}

extern "C" fn on_usr1(_: libc::c_int) {}

#[test]
fn children_start_with_clean_signal_state() {
    let _g = guard();
    // The program's process runs in the host's memory until exec: a host handler must never run
    // there, and the program starts as after a fork + exec (handlers default, ignored stay ignored,
    // nothing blocked, SIGPIPE default).
    ffi_sdk::testing::in_child("children_start_with_clean_signal_state", || {
        let bit = |s: i32| 1u64 << (s - 1);
        // SAFETY: this runs in a fresh run of the test binary (`in_child`), alone, so the dispositions
        // and mask changed here affect no other test; `on_usr1` is an empty extern "C" fn, trivially
        // async-signal-safe; `set` is a zeroed (valid) sigset on this stack, written by sigemptyset
        // and read by pthread_sigmask.
        unsafe {
            libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        let (blk, ign, cgt) = child_signal_masks();
        assert_eq!(blk, 0, "signals blocked in the child: {blk:x}");
        assert_eq!(cgt, 0, "handlers caught in the child: {cgt:x}");
        assert!(ign & bit(libc::SIGUSR2) != 0, "an ignored signal stays ignored: {ign:x}");
        assert!(ign & bit(libc::SIGPIPE) == 0, "SIGPIPE is reset to default: {ign:x}");
        // And the host's own state is untouched.
        // SAFETY: all-zero bytes are a valid `sigaction`; sigaction with a NULL new action only
        // writes the current one into `old`, a live local.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut old);
            assert_eq!(old.sa_sigaction, on_usr1 as *const () as libc::sighandler_t);
        }
    });
}

#[test]
fn exec_failures_are_reported_and_leave_nothing() {
    let _g = guard();
    // A file with the x bit that the kernel cannot execute (no ELF header, no #!): execve fails with
    // ENOEXEC in the program's process, after the supervisor started; the error comes back as before.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("not-a-program");
    std::fs::write(&p, [0u8, 1, 2, 3]).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = p.to_str().unwrap();
    for _ in 0..20 {
        let (c, msg) = err(rt_process_run(text(path), args(&[]), NIL));
        assert_eq!(c, Code::Io, "{msg}");
        assert!(msg.contains("Exec format error") && msg.contains("not-a-program"), "{msg}");
        let (c, msg) = err(rt_process_run_timeout(text(path), args(&[]), int(5000), NIL));
        assert!(c == Code::Io && msg.contains("Exec format error"), "{msg}");
        let (c, msg) = err(rt_process_spawn(text(path), args(&[]), NIL));
        assert!(c == Code::Io && msg.starts_with("rt_process_spawn: ") && msg.contains("Exec format error"), "{msg}");
    }
    // A limit above the hard limit fails in the child before exec: PermissionDenied with the hint.
    let mut hard = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `hard` is a live, writable `rlimit` on this stack, the one struct getrlimit fills.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut hard) };
    // SAFETY: geteuid takes nothing and cannot fail.
    if hard.rlim_max != libc::RLIM_INFINITY && unsafe { libc::geteuid() } != 0 {
        let lim = dict(&[("open_files", i(hard.rlim_max as i64 + 1))]);
        let (c, msg) = err(rt_process_run_with_limits(text("true"), args(&[]), lim.raw(), NIL));
        assert!(c == Code::PermissionDenied && msg.contains("hard limit"), "{msg}");
    }
}

#[test]
fn many_concurrent_runs_and_spawns() {
    let _g = guard();
    // Supervisors share the host's memory while they run: many at once, from several threads, each
    // with its own stacks (reused after it exits), must not disturb each other or the host.
    let threads: Vec<_> = (0..4)
        .map(|k| {
            std::thread::spawn(move || {
                for n in 0..50 {
                    let want = format!("{k}-{n}");
                    let r = ok(rt_process_run(text("echo"), args(&[&want]), NIL));
                    assert_eq!(txt(r, "stdout"), format!("{want}\n"));
                    let h = ok(rt_process_spawn(text("sh"), args(&["-c", "cat; exit 3"]), dict(&[("stdin", t(&want))]).raw())).raw();
                    let w = ok(rt_process_wait(h, NIL));
                    assert_eq!((txt(w, "stdout"), num(w, "code")), (want.clone(), Some(3)));
                    close(h);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
