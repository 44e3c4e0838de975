//! Shared test support: serial execution and the leftover-process check.
//!
//! Every test takes [`guard`]: tests run one at a time, and when a test ends
//! the guard asserts (1) this process has no child left, running or zombie
//! (`/proc/self/task/*/children`), and (2) no process anywhere still carries
//! this run's marker variable `RT_TEST_MARK` (set in our environment, so it
//! is inherited by every child and grandchild, wherever they were reparented).
#![allow(dead_code)]

use ffi_sdk::Value;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

static SERIAL: Mutex<()> = Mutex::new(());
static MARK: Once = Once::new();

pub struct Guard(#[allow(dead_code)] MutexGuard<'static, ()>);

pub fn guard() -> Guard {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    MARK.call_once(|| {
        if std::env::var_os("RT_TEST_MARK").is_none() {
            // Only test threads waiting on SERIAL exist now; none reads the environment.
            std::env::set_var("RT_TEST_MARK", format!("ffi_process-{}", std::process::id()));
        }
    });
    Guard(g)
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        assert_no_leftovers();
    }
}

/// Child pids of this process (all threads), zombies included.
pub fn own_children() -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for t in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out
}

fn ancestors() -> Vec<i32> {
    let mut out = vec![std::process::id() as i32];
    let mut pid = std::process::id() as i32;
    while pid > 1 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { break };
        let Some(rest) = stat.rsplit_once(')').map(|x| x.1) else { break };
        let ppid: i32 = rest.split_whitespace().nth(1).and_then(|x| x.parse().ok()).unwrap_or(0);
        out.push(ppid);
        pid = ppid;
    }
    out
}

/// Live processes (not us, not our ancestors) whose environment has our marker.
pub fn marked_processes() -> Vec<(i32, String)> {
    let mark = format!("RT_TEST_MARK={}", std::env::var("RT_TEST_MARK").unwrap_or_default());
    let skip = ancestors();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if skip.contains(&pid) {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        if env.split(|b| *b == 0).any(|v| v == mark.as_bytes()) && alive(pid) {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default().replace('\0', " ");
            out.push((pid, cmd));
        }
    }
    out
}

pub fn assert_no_leftovers() {
    // Reaping and killing are prompt but asynchronous in places (pump threads): allow 3 s.
    let t = Instant::now();
    loop {
        let kids = own_children();
        let marked = marked_processes();
        if kids.is_empty() && marked.is_empty() {
            return;
        }
        if t.elapsed() > Duration::from_secs(3) {
            panic!("processes left behind: children {kids:?} (states {:?}), marked {marked:?}",
                kids.iter().map(|p| state(*p)).collect::<Vec<_>>());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The state letter of a process (`R`, `S`, `Z`...), None if gone.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().next()?.chars().next()
}

/// Alive = exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    !matches!(state(pid), None | Some('Z') | Some('X'))
}

/// Waits up to 5 s for `pid` to be dead.
pub fn wait_dead(pid: i32) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(5) {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// The real python executable (not a pyenv shim script).
pub fn python() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let o = std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]).output().unwrap();
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    })
}

/// A dict value from (key, value) pairs.
pub fn dict(entries: &[(&str, Value)]) -> Value {
    let d = Value::dict();
    for (k, v) in entries {
        d.set(k, *v);
    }
    d
}

/// An array of texts.
pub fn args(items: &[&str]) -> u64 {
    Value::text_array(items.iter().copied()).raw()
}

pub fn t(s: &str) -> Value {
    Value::text(s)
}
pub fn i(n: i64) -> Value {
    Value::int(n)
}

/// Reads `key` of a result dict as text.
pub fn txt(d: Value, key: &str) -> String {
    d.get(key).as_text().unwrap_or_else(|| panic!("{key} is not text in {d:?}")).to_string()
}
pub fn num(d: Value, key: &str) -> Option<i64> {
    d.get(key).as_int()
}
