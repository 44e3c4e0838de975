//! CPUs and memory.
//!
//! `rt_cpu_count` is what a caller sizes a thread pool with, so it is called
//! often; it used to re-read the system each time (`num_cpus`: about 1 us).
//! What can change while the process runs, and what cannot (decided here):
//!
//! - the cgroup CPU quota (`cpu.max` in cgroup v2, `cpu.cfs_quota_us` /
//!   `cpu.cfs_period_us` in v1) is read **once**, at the first call, and
//!   cached: changing a running container's quota is rare, and reading it
//!   costs several file opens. A process that must see a new quota restarts.
//! - the calling thread's CPU affinity can change at any time
//!   (`sched_setaffinity`, `taskset -p`), so it is read on **every** call: one
//!   `sched_getaffinity` system call and a population count (no 1024-step
//!   loop), about 0.1 us on bare metal, 0.4 us in this project's VM.
//! - the number of physical cores of the machine is read once (from
//!   /proc/cpuinfo) and cached.

use ffi_sdk::prelude::*;
use std::sync::OnceLock;
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

/// CPUs in the calling thread's affinity mask, read now; None if the kernel refuses.
fn affinity_count() -> Option<usize> {
    // SAFETY: cpu_set_t is plain bits (all-zero is a valid empty set); the
    // kernel writes at most size_of::<cpu_set_t>() bytes into `set`.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        Some(libc::CPU_COUNT(&set) as usize)
    }
}

/// Online CPUs (sysconf), at least 1: the fallback when affinity is unreadable
/// (more than 1024 CPUs, or a kernel without the call).
fn online_count() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 {
        1
    } else {
        n as usize
    }
}

/// CPUs allowed by the cgroup quota, read once (see the module docs); None = no quota.
fn cgroup_quota() -> Option<usize> {
    static QUOTA: OnceLock<Option<usize>> = OnceLock::new();
    *QUOTA.get_or_init(|| cgroup::quota_cpus("/proc/self/cgroup", "/proc/self/mountinfo"))
}

/// Logical CPUs this thread may use now: its affinity, capped by the cgroup quota.
pub fn cpu_count() -> usize {
    let n = affinity_count().unwrap_or_else(online_count);
    match cgroup_quota() {
        Some(q) => n.min(q).max(1),
        None => n.max(1),
    }
}

/// Logical CPUs this process may run on (affinity and cgroup quota respected).
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_cpu_count() -> 16
// The affinity is read on each call, the cgroup quota once (module docs).
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_cpu_count() -> i64 {
    cpu_count() as i64
}

/// Physical CPU cores of the machine.
///
/// # Errors
/// Only the implicit codes.
// Read once, then cached (module docs).
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_cpu_physical_count() -> i64 {
    static PHYS: OnceLock<usize> = OnceLock::new();
    *PHYS.get_or_init(num_cpus::get_physical) as i64
}

fn memory() -> System {
    System::new_with_specifics(RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()))
}

/// Total RAM in bytes (MemTotal).
///
/// # Errors
/// - Unsupported: total memory is not readable on this system
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_memory_total() -> RtResult<u64> {
    match memory().total_memory() {
        0 => Err(Error::unsupported(FN, "total memory is not readable on this system")),
        n => Ok(n),
    }
}

/// RAM available for new work in bytes (MemAvailable), read fresh on each call.
///
/// # Errors
/// - Unsupported: available memory is not readable on this system
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_memory_available() -> RtResult<u64> {
    let s = memory();
    if s.total_memory() == 0 {
        return Err(Error::unsupported(FN, "available memory is not readable on this system"));
    }
    Ok(s.available_memory())
}

/// The cgroup CPU quota (v2 and v1), as `num_cpus` and the Rust standard
/// library read it: quota / period rounded up, the smallest along the v2
/// hierarchy from the process's cgroup up to the mount.
pub(crate) mod cgroup {
    use std::path::{Path, PathBuf};

    /// CPUs the quota allows, or None (no cgroup, no quota, unreadable).
    pub fn quota_cpus(cgroup_file: &str, mountinfo_file: &str) -> Option<usize> {
        let cgroups = std::fs::read_to_string(cgroup_file).ok()?;
        let mountinfo = std::fs::read_to_string(mountinfo_file).ok()?;
        for line in cgroups.lines() {
            // hierarchy-ID:controllers:path
            let mut f = line.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            if ctrl.is_empty() {
                if let Some(q) = v2(&mountinfo, path) {
                    return Some(q);
                }
            } else if ctrl.split(',').any(|c| c == "cpu") {
                if let Some(q) = v1(&mountinfo, path) {
                    return Some(q);
                }
            }
        }
        None
    }

    /// The mount of the hierarchy (`cgroup2`, or `cgroup` with the cpu controller)
    /// and the directory of `path` under it.
    fn dir(mountinfo: &str, path: &str, v2: bool) -> Option<(PathBuf, PathBuf)> {
        for line in mountinfo.lines() {
            // id parent maj:min root mount-point options [optional...] - fstype source super-options
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 5 || r.is_empty() {
                continue;
            }
            let ok = if v2 { r[0] == "cgroup2" } else { r[0] == "cgroup" && r.get(2).is_some_and(|o| o.split(',').any(|c| c == "cpu")) };
            if !ok {
                continue;
            }
            let (root, mnt) = (l[3], Path::new(l[4]));
            let rel = path.strip_prefix(root).unwrap_or(path).trim_start_matches('/');
            return Some((mnt.to_path_buf(), mnt.join(rel)));
        }
        None
    }

    fn ceil_div(quota: u64, period: u64) -> Option<usize> {
        if quota == 0 || period == 0 {
            return None;
        }
        Some(quota.div_ceil(period) as usize)
    }

    fn v2(mountinfo: &str, path: &str) -> Option<usize> {
        let (mnt, mut d) = dir(mountinfo, path, true)?;
        let mut best: Option<usize> = None;
        loop {
            if let Ok(s) = std::fs::read_to_string(d.join("cpu.max")) {
                let mut w = s.split_whitespace();
                if let (Some(q), Some(p)) = (w.next(), w.next()) {
                    if let (Ok(q), Ok(p)) = (q.parse::<u64>(), p.parse::<u64>()) {
                        if let Some(n) = ceil_div(q, p) {
                            best = Some(best.map_or(n, |b| b.min(n)));
                        }
                    }
                }
            }
            if d == mnt || !d.pop() || !d.starts_with(&mnt) {
                break;
            }
        }
        best
    }

    fn v1(mountinfo: &str, path: &str) -> Option<usize> {
        let (_, d) = dir(mountinfo, path, false)?;
        let read = |f: &str| std::fs::read_to_string(d.join(f)).ok()?.trim().parse::<i64>().ok();
        let (q, p) = (read("cpu.cfs_quota_us")?, read("cpu.cfs_period_us")?);
        if q <= 0 || p <= 0 {
            return None;
        }
        ceil_div(q as u64, p as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_of_a_fake_v2_hierarchy() {
        let t = tempfile_dir();
        let mnt = t.join("cg");
        std::fs::create_dir_all(mnt.join("a/b")).unwrap();
        std::fs::write(mnt.join("cpu.max"), "max 100000\n").unwrap();
        std::fs::write(mnt.join("a/cpu.max"), "250000 100000\n").unwrap();
        std::fs::write(mnt.join("a/b/cpu.max"), "max 100000\n").unwrap();
        std::fs::write(t.join("cgroup"), "0::/a/b\n").unwrap();
        std::fs::write(
            t.join("mountinfo"),
            format!("35 24 0:30 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", mnt.display()),
        )
        .unwrap();
        let q = cgroup::quota_cpus(t.join("cgroup").to_str().unwrap(), t.join("mountinfo").to_str().unwrap());
        assert_eq!(q, Some(3)); // 2.5 CPUs rounded up, from the parent
        std::fs::write(mnt.join("a/cpu.max"), "max 100000\n").unwrap();
        let q = cgroup::quota_cpus(t.join("cgroup").to_str().unwrap(), t.join("mountinfo").to_str().unwrap());
        assert_eq!(q, None);
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn quota_of_a_fake_v1_hierarchy() {
        let t = tempfile_dir();
        let mnt = t.join("cpu");
        std::fs::create_dir_all(mnt.join("docker/x")).unwrap();
        std::fs::write(mnt.join("docker/x/cpu.cfs_quota_us"), "150000\n").unwrap();
        std::fs::write(mnt.join("docker/x/cpu.cfs_period_us"), "100000\n").unwrap();
        std::fs::write(t.join("cgroup"), "5:cpu,cpuacct:/docker/x\n").unwrap();
        std::fs::write(
            t.join("mountinfo"),
            format!("40 24 0:35 / {} rw - cgroup cgroup rw,cpu,cpuacct\n", mnt.display()),
        )
        .unwrap();
        let q = cgroup::quota_cpus(t.join("cgroup").to_str().unwrap(), t.join("mountinfo").to_str().unwrap());
        assert_eq!(q, Some(2));
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn count_follows_a_changed_affinity() {
        let before = cpu_count();
        assert!(before >= 1);
        std::thread::spawn(move || {
            // SAFETY: cpu_set_t is plain bits; CPU_SET writes inside the set.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
                let first = (0..libc::CPU_SETSIZE as usize).find(|&i| libc::CPU_ISSET(i, &set)).unwrap();
                let mut one: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(first, &mut one);
                assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one), 0);
            }
            assert_eq!(cpu_count(), 1, "a thread pinned to one CPU sees 1");
        })
        .join()
        .unwrap();
        assert_eq!(cpu_count(), before, "other threads keep theirs");
    }

    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!("rt-cpu-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
