//! Timing pieces shared by the domain crates' benchmarks (`<crate>/benches/*.rs`,
//! `harness = false`): round-robin best-of races, median-of-batches timing,
//! outside tools and Python run as processes, and a markdown table header.
//! The libraries themselves never call this.
//!
//! std only, on purpose: ffi_serde's JSON bench also compiles this file into
//! a small standalone helper program (so both time with the same rule).

use std::ffi::OsStr;
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

/// Bytes per MB in the tables' MB/s figures (decimal).
pub const MB: f64 = 1_000_000.0;

/// Round robin, best of `rounds`: in each round every closure runs `reps[i]`
/// times back to back, one closure after the other, so load bursts on a
/// shared machine hit all of them alike. Returns the best batch time per closure.
pub fn race_batches(rounds: usize, reps: &[usize], fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    assert_eq!(reps.len(), fs.len(), "one repetition count per closure");
    let mut best = vec![Duration::MAX; fs.len()];
    for _ in 0..rounds {
        for (i, f) in fs.iter_mut().enumerate() {
            let t = Instant::now();
            for _ in 0..reps[i] {
                f();
            }
            best[i] = best[i].min(t.elapsed());
        }
    }
    best
}

/// [`race_batches`] with `calls` calls per round for every closure: the best
/// time of `calls` calls, per closure (no warm-up; see [`warm_up`]).
pub fn race(rounds: usize, calls: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    race_batches(rounds, &vec![calls; fs.len()], fs)
}

/// Calls each closure once and returns how many calls take about `target`
/// (at least 1, at most `max`), for [`race_batches`].
pub fn calibrate(target: Duration, max: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<usize> {
    fs.iter_mut()
        .map(|f| {
            let t0 = Instant::now();
            f();
            let one = t0.elapsed().max(Duration::from_nanos(50));
            ((target.as_secs_f64() / one.as_secs_f64()) as usize).clamp(1, max)
        })
        .collect()
}

/// Calls each closure `calls` times (closure by closure), untimed.
pub fn warm_up(calls: usize, fs: &mut [&mut dyn FnMut()]) {
    for f in fs.iter_mut() {
        for _ in 0..calls {
            f();
        }
    }
}

/// Seconds per operation of `ops` operations that took `d`.
pub fn per_op(d: Duration, ops: usize) -> f64 {
    d.as_secs_f64() / ops as f64
}

/// MB/s (decimal MB) of `bytes` processed in `d`.
pub fn mb_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / MB
}

/// Median seconds per call of `f`: one call to warm up, one to size batches
/// of about `batch` (1..=`max_calls` calls), then the median of `samples` batches.
pub fn median(batch: Duration, max_calls: usize, samples: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t = Instant::now();
    f();
    let one = t.elapsed().as_secs_f64().max(1e-7);
    let per_batch = ((batch.as_secs_f64() / one) as usize).clamp(1, max_calls);
    let mut s: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_secs_f64() / per_batch as f64
        })
        .collect();
    s.sort_by(|a, b| a.total_cmp(b));
    s[s.len() / 2]
}

/// Runs `sh -c cmd` (output as the command redirects it); panics unless it succeeds.
pub fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().expect("running sh");
    assert!(st.success(), "{cmd}");
}

/// Runs an outside tool with its output captured (and dropped); panics unless it succeeds.
pub fn tool(cmd: &mut Command) {
    let out = cmd.output().expect("running the tool");
    assert!(out.status.success(), "{:?} failed", cmd);
    black_box(out.stdout);
}

/// Runs `python3 -c code args...` and reads its stdout as one number; None
/// when python3 is missing, fails, or prints anything else.
pub fn python(code: &str, args: &[&OsStr]) -> Option<f64> {
    let out = Command::new("python3").arg("-c").arg(code).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// Prints a markdown table header: `| a | b |` and `|---|---|`.
pub fn table_header(columns: &[&str]) {
    println!("| {} |", columns.join(" | "));
    println!("|{}", "---|".repeat(columns.len()));
}

/// xorshift64 step (13, 7, 17): deterministic bench inputs; returns the new state.
pub fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
