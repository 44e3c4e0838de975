use ffi_sdk::prelude::*;
use sysinfo::{MemoryRefreshKind, RefreshKind, System};

/// Logical CPUs this process may run on (affinity and cgroup quota respected).
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_cpu_count() -> i64 {
    num_cpus::get() as i64
}

/// Physical CPU cores of the machine.
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_cpu_physical_count() -> i64 {
    num_cpus::get_physical() as i64
}

fn memory() -> System {
    System::new_with_specifics(RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()))
}

/// Total RAM in bytes (MemTotal).
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_memory_total() -> RtResult<u64> {
    match memory().total_memory() {
        0 => Err(Error::unsupported(FN, "total memory is not readable on this system")),
        n => Ok(n),
    }
}

/// RAM available for new work in bytes (MemAvailable), read fresh on each call.
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_memory_available() -> RtResult<u64> {
    let s = memory();
    if s.total_memory() == 0 {
        return Err(Error::unsupported(FN, "available memory is not readable on this system"));
    }
    Ok(s.available_memory())
}
