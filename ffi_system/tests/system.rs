//! ffi_system against the machine: /proc and the `hostname` command.

use ffi_sdk::testing::{err, ok};
use ffi_system::cpu::*;
use ffi_system::hostname::*;
use ffi_system::platform::*;

fn proc_meminfo(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = s.lines().find(|l| l.starts_with(key)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

#[test]
fn hostname_matches_command() {
    let out = std::process::Command::new("hostname").output().unwrap();
    let want = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(ok(rt_hostname()).as_text().unwrap(), want);
}

#[test]
fn cpu_counts_match_proc() {
    let n = ok(rt_cpu_count()).as_int().unwrap();
    let online = std::thread::available_parallelism().unwrap().get() as i64;
    assert_eq!(n, online);
    let phys = ok(rt_cpu_physical_count()).as_int().unwrap();
    assert!(phys >= 1 && phys <= n, "physical {phys} vs logical {n}");
}

#[test]
fn memory_matches_proc() {
    let total = ok(rt_memory_total()).as_int().unwrap() as u64;
    assert_eq!(total, proc_meminfo("MemTotal:"));
    let avail = ok(rt_memory_available()).as_int().unwrap() as u64;
    let want = proc_meminfo("MemAvailable:");
    // Available memory moves between the two reads; allow 5%.
    assert!(avail.abs_diff(want) < want / 20, "available {avail} vs /proc {want}");
    assert!(avail <= total);
}

#[test]
fn platform_names() {
    assert_eq!(ok(rt_os_name()).as_text().unwrap(), "linux");
    let uname = std::process::Command::new("uname").arg("-m").output().unwrap();
    assert_eq!(ok(rt_arch_name()).as_text().unwrap(), String::from_utf8(uname.stdout).unwrap().trim());
}

#[test]
fn denied_without_sys_info() {
    ffi_sdk::testing::in_child("denied_without_sys_info", || {
        ffi_sdk::testing::restrict("sys.info=false");
        let all = [rt_hostname(), rt_cpu_count(), rt_cpu_physical_count(), rt_memory_total(), rt_memory_available(), rt_os_name(), rt_arch_name()];
        for r in all {
            let (code, msg) = err(r);
            assert_eq!(code, ffi_sdk::Code::CapabilityDenied);
            assert!(msg.starts_with("rt_") && msg.contains("needs sys.info"), "{msg}");
        }
    });
}

#[test]
fn get_args_are_the_process_arguments() {
    let v = ffi_sdk::testing::ok(ffi_system::args::rt_get_args());
    let got: Vec<String> = v.items().map(|a| a.as_text().unwrap().to_string()).collect();
    let want: Vec<String> = std::env::args().collect();
    assert_eq!(got, want);
}
