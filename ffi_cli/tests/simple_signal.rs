//! Simple's latched signals (`rt_signal_install` / `rt_signal_check`) on the
//! one signal mechanism of `signal.rs`: latch and clear, a signal from another
//! process, chaining to a handler the host installed before, refusals, the
//! capability, and both APIs seeing the same signal in one process.

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_cli::signal::*;
use ffi_sdk::testing::{dict, err_named, in_child, int, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn check(sig: i32) -> bool {
    ok(rt_signal_check(int(sig as i64))).as_bool().unwrap()
}

fn poll(timeout_ms: i64) -> Vec<String> {
    ok(rt_signal_poll(dict(&[("timeout_ms", Value::int(timeout_ms))]))).items().map(|x| x.as_text().unwrap().to_string()).collect()
}

#[test]
fn install_latches_and_check_clears() {
    in_child("install_latches_and_check_clears", || {
        assert_eq!(ok(rt_signal_install(int(libc::SIGUSR2 as i64))).as_bool(), Some(true));
        assert_eq!(ok(rt_signal_install(int(libc::SIGUSR2 as i64))).as_bool(), Some(true));
        assert!(!check(libc::SIGUSR2));
        // SAFETY: raise takes no pointers; SIGUSR2 now has the latching handler rt_signal_install just
        // put in place (checked true above), so it does not terminate the process.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert!(check(libc::SIGUSR2));
        assert!(!check(libc::SIGUSR2));
        // From another process (its kill reaches us through the latch, not the default action).
        let st = std::process::Command::new("kill").args(["-USR2", &std::process::id().to_string()]).status().unwrap();
        assert!(st.success());
        let t0 = Instant::now();
        while !check(libc::SIGUSR2) {
            assert!(t0.elapsed() < Duration::from_secs(5), "SIGUSR2 never latched");
            std::thread::sleep(Duration::from_millis(5));
        }
        // Never installed: false.
        assert!(!check(libc::SIGWINCH));
    });
}

#[test]
fn install_refusals() {
    for s in [libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD, libc::SIGSEGV, libc::SIGPWR, libc::SIGXCPU, libc::SIGRTMIN() + 6, 0, 99] {
        err_named(rt_signal_install(int(s as i64)), Code::InvalidArgument, "rt_signal_install");
    }
    err_named(rt_signal_check(int(9)), Code::InvalidArgument, "rt_signal_check");
    err_named(rt_signal_install(int(1 << 40)), Code::InvalidArgument, "rt_signal_install");
    err_named(rt_signal_install(text("SIGINT")), Code::TypeMismatch, "rt_signal_install");
    err_named(rt_signal_handler(text("SIGCHLD")), Code::InvalidArgument, "rt_signal_handler");
}

/// A handler the host installed before rt_signal_install is still called (chained).
#[test]
fn install_chains_the_previous_handler() {
    in_child("install_chains_the_previous_handler", || {
        static SEEN: AtomicBool = AtomicBool::new(false);
        extern "C" fn mine(_: libc::c_int) {
            SEEN.store(true, Ordering::SeqCst);
        }
        // SAFETY: this runs alone in a fresh run of the test binary (`in_child`); `mine` is an extern "C"
        // fn that only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(libc::SIGUSR1, mine as *const () as libc::sighandler_t) };
        ok(rt_signal_install(int(libc::SIGUSR1 as i64)));
        // SAFETY: raise takes no pointers; SIGUSR1 is handled by rt_signal_install's latch (chaining to
        // `mine`), installed just above, so the process is not terminated.
        unsafe { libc::raise(libc::SIGUSR1) };
        assert!(SEEN.load(Ordering::SeqCst));
        assert!(check(libc::SIGUSR1));
    });
}

/// One mechanism: a signal installed through both APIs (in either order) is seen by both; one
/// latched only does not reach the poll; rt_signal_reset ends both.
#[test]
fn both_apis_see_the_same_signal() {
    in_child("both_apis_see_the_same_signal", || {
        ok(rt_signal_install(int(libc::SIGUSR1 as i64)));
        ok(rt_signal_handler(text("SIGUSR1")));
        ok(rt_signal_handler(text("SIGHUP")));
        ok(rt_signal_install(int(libc::SIGHUP as i64)));
        ok(rt_signal_install(int(libc::SIGUSR2 as i64)));
        // SAFETY: raise takes no pointers; each signal raised has the one handler installed just above,
        // so none terminates the process.
        unsafe {
            libc::raise(libc::SIGUSR1);
            libc::raise(libc::SIGHUP);
            libc::raise(libc::SIGUSR2);
        }
        assert_eq!(poll(1000), ["SIGUSR1", "SIGHUP"]);
        assert!(check(libc::SIGUSR1));
        assert!(check(libc::SIGHUP));
        assert!(check(libc::SIGUSR2));
        assert!(poll(0).is_empty());
        // Installing the other API's way again does not replace the handler (the latch still counts).
        ok(rt_signal_handler(text("SIGUSR2")));
        // SAFETY: as above: SIGUSR2 has the handler in place.
        unsafe { libc::raise(libc::SIGUSR2) };
        assert!(check(libc::SIGUSR2));
        assert_eq!(poll(1000), ["SIGUSR2"]);
        // Reset: the default action again, for both.
        ok(rt_signal_reset(text("SIGUSR1")));
        // SAFETY: a query only (NULL new action); `old` is a live local sigaction, all-zero valid.
        let old = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            assert_eq!(libc::sigaction(libc::SIGUSR1, std::ptr::null(), &mut old), 0);
            old
        };
        assert_eq!(old.sa_sigaction, libc::SIG_DFL);
        assert!(!check(libc::SIGUSR1));
        assert!(ok(rt_signal_poll(NIL)).items().next().is_none());
    });
}

#[test]
fn install_capability() {
    in_child("install_capability", || {
        restrict("signal=false");
        err_named(rt_signal_install(int(libc::SIGUSR1 as i64)), Code::CapabilityDenied, "rt_signal_install");
        // Reading the latch needs nothing.
        assert!(!check(libc::SIGUSR1));
    });
}
