//! A C host cancelling library calls from signal handlers (docs/DEADLINES.md):
//! a SIGALRM handler and a SIGINT handler call
//! `rt_cancel_trigger_signal_safe(id)` (an atomic store and a write(2) to
//! an eventfd), and the blocking call on the main thread (rt_sleep_ms,
//! rt_process_run of a process tree) returns Error Cancelled promptly, the
//! tree killed. Written from the generated header only.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn lib_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_absolute() { target } else { workspace().join(target) };
    target.join("debug")
}

const HOST: &str = r#"
#define _GNU_SOURCE
#include "simple_rt.h"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile uint64_t token_id;

static void on_signal(int sig) {
    (void)sig;
    rt_cancel_trigger_signal_safe(token_id);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static RtValue fresh_token(void) {
    RtValue t = rt_cancel_new();
    rt_value_pin(t);
    token_id = (uint64_t)rt_int_get(rt_cancel_id(t));
    rt_cancel_bind(t);
    return t;
}

int main(int argc, char **argv) {
    const char *marker = argc > 1 ? argv[1] : "sleep 30";
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    /* 1. SIGALRM after 200 ms cancels a 10 s sleep. */
    RtValue t = fresh_token();
    struct itimerval it;
    memset(&it, 0, sizeof it);
    it.it_value.tv_usec = 200000;
    setitimer(ITIMER_REAL, &it, NULL);
    double t0 = now_ms();
    RtValue r = rt_sleep_ms(rt_int_new(10000));
    printf("sleep code=%u ms=%.1f\n", rt_error_code(r), now_ms() - t0);
    rt_cancel_unbind();
    rt_value_unpin(t);

    /* 2. SIGINT from outside (the test) cancels a process run. */
    t = fresh_token();
    char script[256];
    snprintf(script, sizeof script, "%s1 & %s2; wait", marker, marker);
    RtValue args = rt_array_new(2);
    rt_array_push(args, rt_string_new((const uint8_t *)"-c", 2));
    rt_array_push(args, rt_string_new((const uint8_t *)script, strlen(script)));
    printf("ready\n");
    fflush(stdout);
    t0 = now_ms();
    r = rt_process_run(rt_string_new((const uint8_t *)"sh", 2), args, RT_NIL);
    printf("run code=%u ms=%.1f\n", rt_error_code(r), now_ms() - t0);
    rt_cancel_unbind();
    rt_value_unpin(t);
    printf("DONE\n");
    return 0;
}
"#;

fn procs_with(marker: &str) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).replace('\0', " ").contains(marker) {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn c_host_cancels_from_signal_handlers() {
    let lib = lib_dir();
    for l in ["libffi_core.so", "libffi_time.so", "libffi_process.so"] {
        if !lib.join(l).is_file() {
            eprintln!("skip: {} not built", lib.join(l).display());
            return;
        }
    }
    let dir = std::env::temp_dir().join(format!("rt-c-cancel-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("cancel.c");
    std::fs::write(&src, HOST).unwrap();
    let exe = dir.join("cancel");
    let out = Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(&src)
        .arg("-I")
        .arg(workspace().join("include"))
        .arg("-L")
        .arg(&lib)
        .args(["-lffi_core", "-lffi_time", "-lffi_process"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc runs");
    assert!(out.status.success(), "gcc: {}", String::from_utf8_lossy(&out.stderr));

    let marker = format!("sleep 32{}", std::process::id() % 1000);
    let mut child = Command::new(&exe).arg(&marker).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut all = String::new();
    let mut next = || {
        let l = lines.next().expect("a line from the C host").unwrap();
        all.push_str(&l);
        all.push('\n');
        l
    };
    let sleep = next();
    assert_eq!(next(), "ready");
    // Wait until the tree runs, then Ctrl-C the host.
    let t = Instant::now();
    while procs_with(&marker) < 2 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill takes no pointers; `child` has not been waited for, so its pid still
    // names our own child (a zombie at worst) and cannot have been reused.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let run = next();
    assert_eq!(next(), "DONE");
    assert!(child.wait().unwrap().success());
    eprintln!("c_cancel: {sleep}; {run} (SIGINT sent once the tree ran)");
    let ms = |l: &str| l.split("ms=").nth(1).unwrap().parse::<f64>().unwrap();
    assert!(sleep.starts_with("sleep code=18 "), "{all}");
    assert!(ms(&sleep) < 1000.0, "{all}");
    assert!(run.starts_with("run code=18 "), "{all}");
    let t = Instant::now();
    while procs_with(&marker) > 0 {
        assert!(t.elapsed() < Duration::from_secs(2), "the process tree outlived the cancel");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
