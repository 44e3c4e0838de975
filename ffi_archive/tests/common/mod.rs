//! Shared helpers for the ffi_archive tests.
#![allow(dead_code)]

use ffi_sdk::abi::RtValue;
use ffi_sdk::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `sh -c cmd`; panics with its stderr on failure; returns stdout.
pub fn sh(cmd: &str) -> Vec<u8> {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(out.status.success(), "`{cmd}` failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Runs a Python script with arguments; panics on failure; returns stdout.
pub fn py(script: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new("python3").arg("-c").arg(script).args(args).stderr(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A dict of options from (key, value) pairs.
pub fn opts(pairs: &[(&str, Value)]) -> RtValue {
    ffi_sdk::testing::dict(pairs)
}

pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Deterministic pseudo-random bytes that compress somewhat (text-like).
pub fn texty(n: usize, seed: u64) -> Vec<u8> {
    let words: [&[u8]; 12] = [b"alpha ", b"beta ", b"gamma ", b"delta\n", b"archive ", b"runtime ", b"0123 ", b"x", b"yy ", b"zzz\n", b"simple ", b"rt "];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x % 7 == 0 {
            out.push((x >> 24) as u8);
        } else {
            out.extend_from_slice(words[(x % 12) as usize]);
        }
    }
    out.truncate(n);
    out
}

/// Peak resident memory of this process (VmHWM) in bytes.
pub fn peak_rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}
