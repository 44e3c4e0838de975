//! A C host and a C++ host, written only from the generated header and the
//! SPEC, compiled against the built libraries and run.
//!
//! Needs the libraries built first (`cargo build`; the README's test command
//! does it): libffi_core.so and libffi_system.so in the target directory
//! (CARGO_TARGET_DIR, else <workspace>/target), profile `debug`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn lib_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_absolute() { target } else { workspace().join(target) };
    let dir = target.join("debug");
    for lib in ["libffi_core.so", "libffi_system.so"] {
        assert!(
            dir.join(lib).is_file(),
            "{} is missing: build the libraries first (`cargo build` at the workspace root)",
            dir.join(lib).display()
        );
    }
    dir
}

struct Tmp(PathBuf);
impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(tag: &str) -> Tmp {
    let p = std::env::temp_dir().join(format!("rt-c-host-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).expect("create temp dir");
    Tmp(p)
}

/// Runs a command; panics with its output when it fails. Returns stdout.
fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    stdout
}

fn header_dir() -> PathBuf {
    let inc = workspace().join("include");
    assert!(inc.join("simple_rt.h").is_file(), "include/simple_rt.h is missing: run `target/debug/rt gen`");
    inc
}

#[test]
fn c_host_builds_reads_values_and_calls_ffi_system() {
    let lib = lib_dir();
    let t = tmp("c");
    let exe = t.0.join("host");
    let mut cc = Command::new("gcc");
    cc.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(workspace().join("tests/c/host.c"))
        .arg("-I")
        .arg(header_dir())
        .arg("-L")
        .arg(&lib)
        .args(["-lffi_core", "-lffi_system", "-lm"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe);
    run(&mut cc, "gcc -std=c99 host.c");
    let out = run(&mut Command::new(&exe), "the C host");
    assert!(out.contains("ALL OK"), "C host output:\n{out}");
    for line in [
        "ok ints (inline and boxed",
        "ok floats (inline and boxed)",
        "ok strings (interior NUL",
        "ok arrays and dicts",
        "ok errors (code, name, message)",
        "ok registry json",
        "ok ffi_system by registry lookup and by direct link",
        "ok pin/unpin and rt_gc_collect",
        "ok capability denial",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }

    // The values the C host read through the runtime match the system's own.
    let field = |k: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("no {k}= line in:\n{out}"))
            .to_string()
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read /proc/sys/kernel/hostname");
    assert_eq!(field("hostname"), host.trim());
    let cpus: i64 = field("cpus").parse().expect("cpus is an int");
    let nproc = run(&mut Command::new("nproc"), "nproc");
    assert_eq!(cpus, nproc.trim().parse::<i64>().expect("nproc prints an int"));
    assert!(field("denied").contains("rt_hostname needs sys.info"), "denial message: {}", field("denied"));
}

#[test]
fn header_is_clean_c99_and_cxx11_and_links_from_cxx() {
    let lib = lib_dir();
    let inc = header_dir();
    let t = tmp("cxx");
    // The header alone, as C99 and as C++ (several standards), warnings as errors.
    let probe = t.0.join("probe.c");
    std::fs::write(&probe, "#include \"simple_rt.h\"\nint main(void) { return rt_v_is_nil(RT_NIL) ? 0 : 1; }\n")
        .expect("write probe");
    for std in ["-std=c99", "-std=c11", "-std=gnu17"] {
        let mut cc = Command::new("gcc");
        cc.args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wshadow", "-fsyntax-only"])
            .arg("-I")
            .arg(&inc)
            .arg(&probe);
        run(&mut cc, &format!("gcc {std} on the header"));
    }
    for std in ["-std=c++11", "-std=c++17"] {
        let mut cc = Command::new("g++");
        cc.args([std, "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wshadow", "-x", "c++", "-fsyntax-only"])
            .arg("-I")
            .arg(&inc)
            .arg(&probe);
        run(&mut cc, &format!("g++ {std} on the header"));
    }
    // The C++ host: compiled, linked against libffi_core.so and run.
    let exe = t.0.join("header_cpp");
    let mut cxx = Command::new("g++");
    cxx.args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(workspace().join("tests/c/header.cpp"))
        .arg("-I")
        .arg(&inc)
        .arg("-L")
        .arg(&lib)
        .arg("-lffi_core")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe);
    run(&mut cxx, "g++ -std=c++11 header.cpp");
    let out = run(&mut Command::new(&exe), "the C++ host");
    assert!(out.contains("C++ OK"), "C++ host output:\n{out}");
}

/// Every built domain from C: dlopen with RTLD_LOCAL, registry lookup, call by arity.
#[test]
fn c_host_calls_every_domain_through_the_registry() {
    let lib = lib_dir();
    let t = tmp("domains");
    let exe = t.0.join("domains");
    let mut cc = Command::new("gcc");
    cc.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-D_POSIX_C_SOURCE=200809L"])
        .arg(workspace().join("tests/c/domains.c"))
        .arg("-I")
        .arg(header_dir())
        .arg("-L")
        .arg(&lib)
        .args(["-lffi_core", "-ldl"])
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe);
    run(&mut cc, "gcc -std=c99 domains.c");
    let data = t.0.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let data = std::fs::canonicalize(&data).expect("canonical data dir");
    let out = run(Command::new(&exe).arg(&lib).arg(&data), "the C domains host");
    for d in ["io", "process", "time", "crypto", "archive", "data", "serde", "policy"] {
        assert!(out.contains(&format!("ok {d}\n")), "missing `ok {d}` in:\n{out}");
    }
    assert!(out.contains("ALL DOMAINS OK"), "C host output:\n{out}");
}
