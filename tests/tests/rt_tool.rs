//! The `rt` host tool, run as a user runs it: list, call (results, Error
//! exit codes, --policy denials), demo, and the generated-file drift check.
//!
//! Needs `cargo build` first (the rt binary and the libraries in
//! <target>/debug; the README's test command does it).

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf()
}

fn target_debug() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_absolute() { target } else { workspace().join(target) };
    target.join("debug")
}

fn rt_bin() -> PathBuf {
    let p = target_debug().join("rt");
    assert!(p.is_file(), "{} is missing: run `cargo build` at the workspace root first", p.display());
    assert!(target_debug().join("libffi_core.so").is_file(), "libffi_core.so is missing: run `cargo build` first");
    p
}

fn rt(args: &[&str]) -> Output {
    Command::new(rt_bin())
        .args(args)
        .env_remove("SIMPLE_RT_LIB_DIR")
        .current_dir(workspace())
        .output()
        .expect("run rt")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts the exit code and returns (stdout, stderr).
fn expect(out: Output, code: i32) -> (String, String) {
    let (so, se) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "exit status\n--- stdout\n{so}\n--- stderr\n{se}");
    (so, se)
}

#[test]
fn list_prints_the_registry() {
    let (so, _) = expect(rt(&["list"]), 0);
    let line = so.lines().find(|l| l.contains(" rt_hostname ")).unwrap_or_else(|| panic!("no rt_hostname in:\n{so}"));
    assert!(line.contains("rt_hostname() -> text") && line.contains("sys.info") && line.contains("verified"), "{line}");
    assert!(so.contains("size_t rt_string_len(RtValue v)"), "host entries show their C prototype");
    let (so, _) = expect(rt(&["list", "--json", "system"]), 0);
    let j: Json = serde_json::from_str(&so).expect("list --json prints JSON");
    let arr = j.as_array().expect("an array");
    assert!(arr.iter().all(|e| e["domain"] == "system"));
    let h = arr.iter().find(|e| e["name"] == "rt_hostname").expect("rt_hostname listed");
    assert_eq!(h["arity"], 0);
    assert_eq!(h["capability"], "sys.info");
    let (_, se) = expect(rt(&["list", "no_such_domain"]), 1);
    assert!(se.contains("no loaded function has domain"), "{se}");
}

#[test]
fn call_converts_arguments_and_prints_json() {
    let (so, _) = expect(rt(&["call", "rt_cpu_count"]), 0);
    let nproc = Command::new("nproc").output().expect("nproc");
    assert_eq!(so.trim(), text(&nproc.stdout).trim());

    // A bare word that is not JSON is a string; JSON strings too.
    let (so, _) = expect(rt(&["call", "rt_value_equal", "\"abc\"", "abc"]), 0);
    assert_eq!(so.trim(), "true");
    let (so, _) = expect(rt(&["call", "rt_value_equal", "1", "\"1\""]), 0);
    assert_eq!(so.trim(), "false", "1 is an int, \"1\" a string");
    // Bytes, floats (boxed and inline), big ints, nested values.
    let (so, _) = expect(rt(&["call", "rt_value_equal", r#"{"$bytes":"00ff"}"#, r#"{"$bytes":"00FF"}"#]), 0);
    assert_eq!(so.trim(), "true");
    let (so, _) = expect(rt(&["call", "rt_value_equal", "0.1", "0.1"]), 0);
    assert_eq!(so.trim(), "true");
    let (so, _) = expect(rt(&["call", "rt_value_equal", "9223372036854775807", "9223372036854775807"]), 0);
    assert_eq!(so.trim(), "true");
    // Text policy -> dict, printed in insertion order.
    let (so, _) = expect(rt(&["call", "rt_cap_parse", "fs.read=/tmp,/srv;sys.info=false"]), 0);
    assert_eq!(so.trim(), r#"{"fs.read":["/tmp","/srv"],"sys.info":false}"#);
    // Missing trailing optional arguments are nil.
    let (so, _) = expect(rt(&["call", "rt_cap_check", "sys.info"]), 0);
    assert_eq!(so.trim(), "true");
    let (so, _) = expect(rt(&["call", "rt_gc_stats"]), 0);
    let stats: Json = serde_json::from_str(&so).expect("JSON");
    assert!(stats["heap_size"].as_i64().is_some_and(|n| n > 0), "{so}");
}

#[test]
fn call_reports_errors_with_exit_2() {
    let (so, se) = expect(rt(&["call", "rt_cap_restrict", r#"{"no.such.cap": false}"#]), 2);
    assert!(so.is_empty());
    assert!(se.starts_with("error: InvalidArgument (1): rt_cap_restrict: unknown capability"), "{se}");
    let (_, se) = expect(rt(&["call", "rt_cap_parse", "42"]), 2);
    assert!(se.starts_with("error: TypeMismatch (2): rt_cap_parse"), "{se}");
    // Errors with details print them.
    let (_, se) = expect(rt(&["call", "rt_cap_parse", "no equals sign"]), 2);
    assert!(se.starts_with("error: Parse (9)") && se.contains("details: {\"rule\":1}"), "{se}");
}

#[test]
fn policy_narrows_before_the_call() {
    let (_, se) = expect(rt(&["--policy", "sys.info=false", "call", "rt_hostname"]), 2);
    assert!(se.starts_with("error: CapabilityDenied (6): rt_hostname needs sys.info"), "{se}");
    // Other capabilities are untouched, and the option is accepted after the command too.
    let (so, _) = expect(rt(&["call", "--policy", "fs.read=/tmp", "rt_cap_check", "sys.info"]), 0);
    assert_eq!(so.trim(), "true");
    let (so, _) = expect(rt(&["--policy=*=false", "call", "rt_cap_check", "sys.info"]), 0);
    assert_eq!(so.trim(), "false");
    let (_, se) = expect(rt(&["--policy", "no.such=false", "call", "rt_cpu_count"]), 2);
    assert!(se.contains("--policy refused") && se.contains("InvalidArgument"), "{se}");
    let (_, se) = expect(rt(&["--policy", "garbage", "call", "rt_cpu_count"]), 2);
    assert!(se.contains("Parse"), "{se}");
}

#[test]
fn call_refuses_what_it_cannot_call() {
    let (_, se) = expect(rt(&["call", "rt_string_new", "x"]), 1);
    assert!(se.contains("host-surface"), "{se}");
    let (_, se) = expect(rt(&["call", "rt_no_such_fn"]), 1);
    assert!(se.contains("not in the registry"), "{se}");
    let (_, se) = expect(rt(&["call", "rt_cpu_count", "1"]), 1);
    assert!(se.contains("takes 0 argument(s), 1 given"), "{se}");
    let (_, se) = expect(rt(&["call", "rt_value_equal", r#"{"$bytes":"abc"}"#]), 1);
    assert!(se.contains("odd number of hex digits"), "{se}");
    let (_, se) = expect(rt(&["call", "rt_value_equal", "99999999999999999999", "1"]), 1);
    assert!(se.contains("does not fit a 64-bit signed int"), "{se}");
    let (_, se) = expect(rt(&["--lib-dir", "/nonexistent", "list"]), 1);
    assert!(se.contains("/nonexistent/libffi_core.so not found"), "{se}");
    let (_, se) = expect(rt(&["frobnicate"]), 1);
    assert!(se.contains("unknown command"), "{se}");
}

#[test]
fn demo_runs_every_loaded_domain_and_a_denial() {
    let (so, _) = expect(rt(&["demo"]), 0);
    assert!(so.contains("[system]") && so.contains("ok   rt_hostname() -> "), "{so}");
    assert!(so.contains("ok   rt_gc_stats() -> "), "{so}");
    assert!(so.contains("error CapabilityDenied (6): rt_hostname needs sys.info"), "{so}");
    assert!(so.contains(" 0 failed"), "{so}");
}

#[test]
fn generated_files_are_up_to_date() {
    // The checked-in files cover every domain, the feature ones included (`rt gen --all`,
    // as `./x.sh gen` writes them): that needs the torch library, which tests/torch/run.sh
    // builds and `./x.sh` links beside the main build in target/torch/libs.
    let libs = workspace().join("target/torch/libs");
    if !libs.join("libffi_torch.so").exists() {
        eprintln!("rt_tool: generated files not checked here: {} is missing (./x.sh test checks them)", libs.display());
        return;
    }
    let (so, se) = expect(rt(&["--lib-dir", libs.to_str().expect("utf-8 path"), "gen", "--all", "--check"]), 0);
    assert!(so.contains("files up to date"), "{so}{se}");
}

#[test]
fn gen_is_deterministic_and_check_catches_drift() {
    let ws = workspace();
    let root = std::env::temp_dir().join(format!("rt-gen-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("ffi_sdk/src")).expect("mkdir");
    std::fs::copy(ws.join("ffi_sdk/src/abi.rs"), root.join("ffi_sdk/src/abi.rs")).expect("copy abi.rs");
    let r = root.to_str().expect("utf-8 temp path");

    // Into an empty root: everything is missing, then written.
    let (_, se) = expect(rt(&["gen", "--check", "--root", r]), 1);
    assert!(se.contains("include/simple_rt.h is missing"), "{se}");
    let (so, _) = expect(rt(&["gen", "--root", r]), 0);
    assert!(so.contains("wrote include/simple_rt.h") && so.contains("wrote docs/API.md"), "{so}");
    // Idempotent: a second run changes nothing and --check passes.
    let (so, _) = expect(rt(&["gen", "--root", r]), 0);
    assert!(so.contains("(0 changed)"), "{so}");
    expect(rt(&["gen", "--check", "--root", r]), 0);
    // Deterministic: byte-identical to a second generation in another root.
    let root2 = root.join("again");
    std::fs::create_dir_all(root2.join("ffi_sdk/src")).expect("mkdir");
    std::fs::copy(ws.join("ffi_sdk/src/abi.rs"), root2.join("ffi_sdk/src/abi.rs")).expect("copy");
    expect(rt(&["gen", "--root", root2.to_str().expect("utf-8")]), 0);
    for f in ["include/simple_rt.h", "bindings/python/simple_rt/_api.py", "docs/API.md", "bindings/simple/system.spl"] {
        let a = std::fs::read(root.join(f)).expect("read");
        let b = std::fs::read(root2.join(f)).expect("read");
        assert!(a == b, "{f} differs between two generations");
    }
    std::fs::remove_dir_all(&root2).expect("rm");

    // A changed declaration in a checked-in file is caught, with a diff hint naming it.
    let h = root.join("include/simple_rt.h");
    let orig = std::fs::read_to_string(&h).expect("read");
    let edited = orig.replacen("RtValue rt_hostname(void);", "RtValue rt_hostname(RtValue flags);", 1);
    assert_ne!(orig, edited, "the header declares rt_hostname");
    std::fs::write(&h, edited).expect("write");
    let (_, se) = expect(rt(&["gen", "--check", "--root", r]), 1);
    assert!(se.contains("include/simple_rt.h differs"), "{se}");
    assert!(se.contains("- RtValue rt_hostname(RtValue flags);") && se.contains("+ RtValue rt_hostname(void);"), "{se}");

    // A generated binding for a domain that no longer exists is caught and removed.
    let stale = root.join("bindings/simple/gone.spl");
    std::fs::write(&stale, format!("# {}\nextern fn rt_gone() -> nil\n", first_line_mark(&root))).expect("write");
    let (_, se) = expect(rt(&["gen", "--check", "--root", r]), 1);
    assert!(se.contains("bindings/simple/gone.spl is generated but no loaded domain produces it"), "{se}");
    let (so, _) = expect(rt(&["gen", "--root", r]), 0);
    assert!(so.contains("removed bindings/simple/gone.spl") && so.contains("wrote include/simple_rt.h"), "{so}");
    assert!(!stale.exists());
    expect(rt(&["gen", "--check", "--root", r]), 0);
    let _ = std::fs::remove_dir_all(&root);
}

/// The marker text generated files start with (read from a generated .spl).
fn first_line_mark(root: &Path) -> String {
    let t = std::fs::read_to_string(root.join("bindings/simple/system.spl")).expect("system.spl generated");
    t.lines().next().expect("a first line").trim_start_matches("# ").to_string()
}

#[test]
fn gen_refuses_a_directory_without_the_libraries() {
    let (_, se) = expect(rt(&["--lib-dir", "/tmp", "gen", "--check"]), 1);
    assert!(se.contains("libffi_core.so not found"), "{se}");
}

#[test]
fn refuses_a_core_library_of_another_abi_major() {
    // A stand-in libffi_core.so that reports ABI 2.0: the tool must refuse it before calling anything else.
    let dir = std::env::temp_dir().join(format!("rt-abi-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    let src = dir.join("fake.c");
    std::fs::write(
        &src,
        "#include <stddef.h>\n#include <stdint.h>\n\
         uint32_t rt_abi_version(void) { return 2u << 16; }\n\
         void *rt_registry_lookup(const uint8_t *n, size_t l, uint32_t *a) { (void)n; (void)l; (void)a; return NULL; }\n",
    )
    .expect("write");
    let st = Command::new("gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(dir.join("libffi_core.so"))
        .arg(&src)
        .status()
        .expect("run gcc");
    assert!(st.success(), "gcc -shared failed");
    let (_, se) = expect(rt(&["--lib-dir", dir.to_str().expect("utf-8"), "list"]), 1);
    assert!(se.contains("speaks ABI 2.0, this tool speaks ABI 1.x: refusing to load it"), "{se}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_broken_domain_library_is_reported_and_gen_refuses_partial_sets() {
    // core and system as built, io replaced by a file that is not a library, the rest absent.
    let dir = std::env::temp_dir().join(format!("rt-partial-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for lib in ["libffi_core.so", "libffi_system.so"] {
        std::os::unix::fs::symlink(target_debug().join(lib), dir.join(lib)).expect("symlink");
    }
    std::fs::write(dir.join("libffi_io.so"), "not an ELF file").expect("write");
    let d = dir.to_str().expect("utf-8");
    let (so, se) = expect(rt(&["--lib-dir", d, "call", "rt_os_name"]), 0);
    assert_eq!(so.trim(), "\"linux\"");
    assert!(se.contains("warning: libffi_io.so did not load"), "{se}");
    // Domains that are not loaded are not callable, and the message says what is loaded.
    let (_, se) = expect(rt(&["--lib-dir", d, "call", "rt_sha256_hash", "abc"]), 1);
    assert!(se.contains("not in the registry of the loaded libraries (core, system)"), "{se}");
    // gen would silently drop domains: it refuses instead.
    let (_, se) = expect(rt(&["--lib-dir", d, "gen", "--check"]), 1);
    assert!(se.contains("libffi_process.so is missing") && se.contains("libffi_io.so failed to load"), "{se}");
    let _ = std::fs::remove_dir_all(&dir);
}
