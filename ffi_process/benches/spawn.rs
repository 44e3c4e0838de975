//! Spawn-and-wait latency of `true`: the exported functions against
//! std::process::Command called directly and Python's subprocess.run (run as
//! a process, timing its own loop). `cargo bench -p ffi_process`. Prints one
//! table; nothing is asserted.

#![deny(clippy::undocumented_unsafe_blocks)]

use ffi_process::child::{rt_process_spawn, rt_process_wait};
use ffi_process::process::rt_process_run;
use ffi_sdk::abi::NIL;
use ffi_sdk::{bench, Root, Value};
use std::hint::black_box;
use std::process::{Command, Stdio};

const N: usize = 200;
const ROUNDS: usize = 5;

extern "C" {
    fn rt_handle_close(h: u64) -> u64;
}

/// µs per call of each case: the best of ROUNDS rounds of N calls, the
/// cases interleaved round by round so that load from other work on a shared
/// machine falls on all of them alike.
fn measure(cases: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    bench::warm_up(20, cases);
    bench::race(ROUNDS, N, cases).into_iter().map(|d| bench::per_op(d, N) * 1e6).collect()
}

fn python_us(capture: bool) -> f64 {
    let prog = format!(
        r#"
import subprocess, time
for _ in range(20): subprocess.run(["true"], capture_output={capture})
best = 1e9
for _ in range({ROUNDS}):
    t = time.perf_counter()
    for _ in range({N}): subprocess.run(["true"], capture_output={cap2})
    best = min(best, (time.perf_counter() - t) * 1e6 / {N})
print(best)
"#,
        capture = if capture { "True" } else { "False" },
        cap2 = if capture { "True" } else { "False" },
    );
    bench::python(&prog, &[]).unwrap_or(f64::NAN)
}

fn main() {
    let prog = Root::new(Value::text("true"));
    let args = Root::new(Value::array(0));
    let (p, a) = (prog.get().raw(), args.get().raw());

    let mut rt_run = || {
        let r = Value::from_raw(rt_process_run(p, a, NIL));
        assert_eq!(r.get("code").as_int(), Some(0));
    };
    let mut rt_spawn = || {
        let h = rt_process_spawn(p, a, NIL);
        black_box(rt_process_wait(h, NIL));
        // SAFETY: the declaration above matches core's export `RtValue rt_handle_close(RtValue)`
        // (RtValue is a u64); `h` is the live handle value just returned by spawn, on this stack.
        unsafe { rt_handle_close(h) };
    };
    let mut std_output = || {
        let o = Command::new("true").output().unwrap();
        assert!(o.status.success());
    };
    let mut std_status = || {
        let s = Command::new("true").stdin(Stdio::null()).status().unwrap();
        assert!(s.success());
    };
    let m = measure(&mut [&mut rt_run, &mut rt_spawn, &mut std_output, &mut std_status]);
    let (rt_run, rt_spawn, std_output, std_status) = (m[0], m[1], m[2], m[3]);
    let py_capture = python_us(true);
    let py_plain = python_us(false);

    println!("spawn-and-wait of `true`, {N} calls, best of {ROUNDS} rounds, µs per call (lower is better)");
    println!("{:<44} {:>10} {:>12}", "how", "µs/call", "vs std");
    let row = |name: &str, us: f64| println!("{:<44} {:>10.1} {:>12.2}", name, us, us / std_output);
    row("rt_process_run (captures stdout+stderr)", rt_run);
    row("rt_process_spawn + rt_process_wait + close", rt_spawn);
    row("std Command::output() (captures both)", std_output);
    row("std Command::status() (no capture)", std_status);
    row("python3 subprocess.run(capture_output=True)", py_capture);
    row("python3 subprocess.run()", py_plain);

    // Last (the policy only narrows): the same run under scoped fs.read/fs.write, where the
    // child runs under a Landlock ruleset (confine.rs; made once, then reused), next to
    // std again in the same rounds.
    let scope = std::env::temp_dir();
    let scope = std::fs::canonicalize(&scope).unwrap_or(scope);
    ffi_sdk::testing::restrict(&format!("fs.read={0};fs.write={0}", scope.display()));
    let mut rt_run_confined = || {
        let r = Value::from_raw(rt_process_run(p, a, NIL));
        assert_eq!(r.get("code").as_int(), Some(0));
    };
    let mut std_output = || {
        let o = Command::new("true").output().unwrap();
        assert!(o.status.success());
    };
    let m = measure(&mut [&mut rt_run_confined, &mut std_output]);
    println!(
        "{:<44} {:>10.1} {:>12.2}",
        "rt_process_run, fs scoped (Landlock)",
        m[0],
        m[0] / m[1]
    );
}
