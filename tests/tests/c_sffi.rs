//! A C host that does exactly what Simple's dynamic SFFI does
//! (`sffi/dynamic.spl`, docs/SIMPLE.md "Loading"): `dlopen` each library by
//! path, `dlsym` each function by name, and call it through a function
//! pointer of Simple's all-`i64` family `int64_t (*)(int64_t, ...)` with at
//! most 8 arguments — as a trampoline does, through a properly typed
//! non-variadic pointer chosen by arity. Values are made only through the host
//! surface (`rt_string_new`, `rt_int_new`, ...), never by building heap
//! objects. Covers every built domain: every registry function resolves by
//! `dlsym` in its own library to the address `rt_registry_lookup` gives, with
//! an arity the trampoline can call; then real calls in each domain.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

fn lib_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace().join(target)
    };
    let dir = target.join("debug");
    for f in ["libffi_core.so", "rt"] {
        assert!(
            dir.join(f).is_file(),
            "{} is missing: run `cargo build` at the workspace root",
            dir.join(f).display()
        );
    }
    dir
}

const HOST_C: &str = r#"
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Simple's family: int64_t (*)(int64_t, ...), one typed pointer per arity. */
typedef int64_t (*F0)(void);
typedef int64_t (*F1)(int64_t);
typedef int64_t (*F2)(int64_t, int64_t);
typedef int64_t (*F3)(int64_t, int64_t, int64_t);
typedef int64_t (*F4)(int64_t, int64_t, int64_t, int64_t);
typedef int64_t (*F5)(int64_t, int64_t, int64_t, int64_t, int64_t);
typedef int64_t (*F6)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef int64_t (*F7)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);
typedef int64_t (*F8)(int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t);

/* The trampoline: what Simple's spl_wffi_call_i64(fptr, args, nargs) does. */
static int64_t trampoline(void *f, const int64_t *a, int n) {
    switch (n) {
    case 0: return ((F0)f)();
    case 1: return ((F1)f)(a[0]);
    case 2: return ((F2)f)(a[0], a[1]);
    case 3: return ((F3)f)(a[0], a[1], a[2]);
    case 4: return ((F4)f)(a[0], a[1], a[2], a[3]);
    case 5: return ((F5)f)(a[0], a[1], a[2], a[3], a[4]);
    case 6: return ((F6)f)(a[0], a[1], a[2], a[3], a[4], a[5]);
    case 7: return ((F7)f)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    case 8: return ((F8)f)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    default: fprintf(stderr, "FAIL trampoline: %d arguments\n", n); exit(1);
    }
}

/* Immediate words: the same in Simple and simple-rt. */
#define NIL ((int64_t)0x03)
#define TRUE_ ((int64_t)0x0B)
#define FALSE_ ((int64_t)0x13)

static const char *libdir;
static int failures;

/* Host surface, resolved by dlsym from libffi_core.so (C types). */
static int64_t (*s_new)(const uint8_t *, size_t);
static const uint8_t *(*s_ptr)(int64_t);
static size_t (*s_len)(int64_t);
static int64_t (*i_new)(int64_t);
static int64_t (*i_get)(int64_t);
static uint32_t (*e_code)(int64_t);
static int64_t (*e_msg)(int64_t);
static int64_t (*b_new)(const uint8_t *, size_t);
static size_t (*b_len)(int64_t);
static int64_t (*a_new)(size_t);
static int64_t (*a_push)(int64_t, int64_t);
static size_t (*a_len)(int64_t);
static void *(*lookup)(const uint8_t *, size_t, uint32_t *);

static void *sym(void *h, const char *name) {
    void *p;
    dlerror();
    p = dlsym(h, name);
    if (p == NULL) { fprintf(stderr, "FAIL dlsym %s: %s\n", name, dlerror()); exit(1); }
    return p;
}

/* dlopen by path; repeated opens return the same refcounted handle. */
static void *open_lib(const char *domain) {
    char path[4096];
    void *h;
    snprintf(path, sizeof path, "%s/libffi_%s.so", libdir, domain);
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) { fprintf(stderr, "FAIL dlopen %s: %s\n", path, dlerror()); exit(1); }
    return h;
}

static int64_t str(const char *s) { return s_new((const uint8_t *)s, strlen(s)); }
static int is_str(int64_t v, const char *want) {
    return e_code(v) == 0 && s_len(v) == strlen(want) && memcmp(s_ptr(v), want, s_len(v)) == 0;
}
static void show_err(const char *what, int64_t v) {
    if (e_code(v) != 0) {
        int64_t m = e_msg(v);
        fprintf(stderr, "  %s: Error %u: %.*s\n", what, e_code(v), (int)s_len(m), (const char *)s_ptr(m));
    }
}

/* dlsym by name in the domain's library, then the trampoline. */
static int64_t call(void *lib, const char *name, int n, int64_t a0, int64_t a1, int64_t a2) {
    int64_t a[8] = {0, 0, 0, NIL, NIL, NIL, NIL, NIL};
    a[0] = a0;
    a[1] = a1;
    a[2] = a2;
    return trampoline(sym(lib, name), a, n);
}

#define CHECK(d, c) do { if (!(c)) { fprintf(stderr, "FAIL %s: %s (line %d)\n", d, #c, __LINE__); failures++; } } while (0)

/* Every registry function: dlsym in its library == rt_registry_lookup, arity <= 8. */
static int resolve_all(const char *list) {
    FILE *f = fopen(list, "r");
    char domain[64], name[256];
    unsigned arity;
    int n = 0;
    if (f == NULL) { perror(list); exit(1); }
    while (fscanf(f, "%63s %255s %u", domain, name, &arity) == 3) {
        void *p = sym(open_lib(domain), name);
        uint32_t reg_arity = 99;
        void *q = lookup((const uint8_t *)name, strlen(name), &reg_arity);
        if (p != q || reg_arity != arity || arity > 8) {
            fprintf(stderr, "FAIL %s: dlsym %p, registry %p, arity %u/%u\n", name, p, q, reg_arity, arity);
            failures++;
        }
        n++;
    }
    fclose(f);
    return n;
}

static int has(const char *list, const char *name) {
    FILE *f = fopen(list, "r");
    char domain[64], nm[256];
    unsigned arity;
    int found = 0;
    while (f != NULL && fscanf(f, "%63s %255s %u", domain, nm, &arity) == 3) found |= strcmp(nm, name) == 0;
    if (f != NULL) fclose(f);
    return found;
}

int main(int argc, char **argv) {
    char path[4096];
    void *lib, *core;
    int64_t r, v;
    if (argc != 4) { fprintf(stderr, "usage: sffi LIBDIR DATADIR LIST\n"); return 2; }
    libdir = argv[1];
    core = open_lib("core");
    *(void **)&s_new = sym(core, "rt_string_new");
    *(void **)&s_ptr = sym(core, "rt_string_ptr");
    *(void **)&s_len = sym(core, "rt_string_len");
    *(void **)&i_new = sym(core, "rt_int_new");
    *(void **)&i_get = sym(core, "rt_int_get");
    *(void **)&e_code = sym(core, "rt_error_code");
    *(void **)&e_msg = sym(core, "rt_error_message");
    *(void **)&b_new = sym(core, "rt_bytes_new");
    *(void **)&b_len = sym(core, "rt_bytes_len");
    *(void **)&a_new = sym(core, "rt_array_new");
    *(void **)&a_push = sym(core, "rt_array_push");
    *(void **)&a_len = sym(core, "rt_array_len");
    *(void **)&lookup = sym(core, "rt_registry_lookup");

    /* Immediates agree with Simple's: an int is i << 3. */
    CHECK("core", i_new(5) == (5 << 3) && i_get(-7 * 8) == -7);

    printf("resolved %d\n", resolve_all(argv[3]));

    lib = core;
    CHECK("core", call(lib, "rt_value_equal", 2, str("a"), str("a"), NIL) == TRUE_);
    CHECK("core", call(lib, "rt_cap_check", 2, str("fs.read"), NIL, NIL) == TRUE_);
    printf("ok core\n");

    lib = open_lib("io");
    snprintf(path, sizeof path, "%s/f.txt", argv[2]);
    r = call(lib, "rt_file_write_text", 2, str(path), str("abc"), NIL);
    show_err("rt_file_write_text", r);
    CHECK("io", r == NIL);
    CHECK("io", is_str(call(lib, "rt_file_read_text", 1, str(path), NIL, NIL), "abc"));
    CHECK("io", e_code(call(lib, "rt_file_read_text", 1, str(""), NIL, NIL)) == 1); /* InvalidArgument */
    /* A raw Simple integer where text is expected: an Error value, not a crash. */
    CHECK("io", e_code(call(lib, "rt_file_read_text", 1, 42 << 3, NIL, NIL)) == 2); /* TypeMismatch */
    printf("ok io\n");

    lib = open_lib("process");
    v = a_new(1);
    a_push(v, str("hi"));
    r = call(lib, "rt_process_run", 3, str("echo"), v, NIL);
    show_err("rt_process_run", r);
    CHECK("process", e_code(r) == 0);
    CHECK("process", i_get(call(lib, "rt_getpid", 0, NIL, NIL, NIL)) > 0);
    if (has(argv[3], "rt_process_spawn_piped")) {
        /* Simple's piped child: the pid is a Child handle word, passed back unchanged. */
        int64_t h = call(lib, "rt_process_spawn_piped", 3, str("cat"), a_new(0), NIL);
        show_err("rt_process_spawn_piped", h);
        CHECK("process", e_code(h) == 0);
        CHECK("process", call(lib, "rt_process_write_stdin", 2, h, str("piped\n"), NIL) == NIL);
        CHECK("process", call(lib, "rt_process_stdin_close", 1, h, NIL, NIL) == TRUE_);
        CHECK("process", e_code(call(lib, "rt_process_wait", 2, h, i_new(5000), NIL)) == 0);
        CHECK("process", call(lib, "rt_process_is_running", 1, h, NIL, NIL) == FALSE_);
        CHECK("process", i_get(call(lib, "rt_exec", 2, str("exit 3"), NIL, NIL)) == 3);
        CHECK("process", i_get(call(lib, "rt_shell_exit_code", 0, NIL, NIL, NIL)) == 3);
        CHECK("process", e_code(call(lib, "rt_process_is_running", 1, 42 << 3, NIL, NIL)) == 2); /* TypeMismatch */
    }
    printf("ok process\n");

    lib = open_lib("time");
    CHECK("time", i_get(call(lib, "rt_timestamp_get_year", 1, i_new(-1), NIL, NIL)) == 1969);
    CHECK("time", e_code(call(lib, "rt_time_parse_iso8601", 1, str("2024-13-01T00:00:00Z"), NIL, NIL)) == 9);
    printf("ok time\n");

    lib = open_lib("crypto");
    CHECK("crypto", is_str(call(lib, "rt_sha1_hash", 1, str("abc"), NIL, NIL), "a9993e364706816aba3e25717850c26c9cd0d89d"));
    printf("ok crypto\n");

    lib = open_lib("archive");
    v = b_new((const uint8_t *)"hello hello hello", 17);
    r = call(lib, "rt_gzip_compress", 2, v, NIL, NIL);
    r = call(lib, "rt_gzip_decompress", 2, r, NIL, NIL);
    CHECK("archive", e_code(r) == 0 && b_len(r) == 17);
    if (has(argv[3], "rt_tar_open")) {
        /* Simple's tar builder and reader: rt_tar_create(path) -> handle, add, close; open, list, close. */
        int64_t w, rd;
        snprintf(path, sizeof path, "%s/a.tar", argv[2]);
        w = call(lib, "rt_tar_create", 3, str(path), NIL, NIL);
        show_err("rt_tar_create", w);
        CHECK("archive", e_code(w) == 0);
        CHECK("archive", call(lib, "rt_tar_add_data", 3, w, str("x.txt"), str("tar via sffi")) == NIL);
        CHECK("archive", call(lib, "rt_tar_close", 1, w, NIL, NIL) == NIL);
        rd = call(lib, "rt_tar_open", 2, str(path), NIL, NIL);
        show_err("rt_tar_open", rd);
        r = call(lib, "rt_tar_list", 2, rd, NIL, NIL);
        CHECK("archive", e_code(r) == 0 && a_len(r) == 1);
        CHECK("archive", call(lib, "rt_tar_close", 1, rd, NIL, NIL) == NIL);
    }
    printf("ok archive\n");

    lib = open_lib("data");
    CHECK("data", e_code(call(lib, "rt_regex_new", 2, str("[0-9]+"), NIL, NIL)) == 0);
    CHECK("data", e_code(call(lib, "rt_regex_new", 2, str("("), NIL, NIL)) == 9);
    printf("ok data\n");

    lib = open_lib("serde");
    r = call(lib, "rt_json_parse", 2, str("{\"a\":[1,2.5,null]}"), NIL, NIL);
    CHECK("serde", is_str(call(lib, "rt_json_stringify", 2, r, NIL, NIL), "{\"a\":[1,2.5,null]}"));
    printf("ok serde\n");

    lib = open_lib("system");
    CHECK("system", i_get(call(lib, "rt_cpu_count", 0, NIL, NIL, NIL)) > 0);
    CHECK("system", e_code(call(lib, "rt_os_name", 0, NIL, NIL, NIL)) == 0);
    printf("ok system\n");

    lib = open_lib("concurrent");
    r = call(lib, "rt_atomic_int_new", 1, i_new(5), NIL, NIL);
    CHECK("concurrent", e_code(r) == 0);
    call(lib, "rt_atomic_int_fetch_add", 2, r, i_new(2), NIL);
    CHECK("concurrent", i_get(call(lib, "rt_atomic_int_load", 1, r, NIL, NIL)) == 7);
    printf("ok concurrent\n");

    lib = open_lib("codegen");
    CHECK("codegen", e_code(call(lib, "rt_target_triple", 0, NIL, NIL, NIL)) == 0);
    printf("ok codegen\n");
    lib = open_lib("net");
    CHECK("net", e_code(call(lib, "rt_http_url_encode", 1, str("a b"), NIL, NIL)) == 0);
    printf("ok net\n");
    lib = open_lib("cli");
    CHECK("cli", e_code(call(lib, "rt_readline_history", 0, NIL, NIL, NIL)) == 0);
    printf("ok cli\n");

    /* Feature domains (GPU): called when the library was built with its feature.
       Without a device the answer is a clean Error Unsupported (10), never a crash. */
    if (has(argv[3], "rt_cuda_device_count")) {
        lib = open_lib("cuda");
        r = call(lib, "rt_cuda_device_count", 0, NIL, NIL, NIL);
        CHECK("cuda", e_code(r) == 0 && i_get(r) >= 0);
        printf("ok cuda\n");
    }
    if (has(argv[3], "rt_vk_instance_create")) {
        lib = open_lib("vulkan");
        r = call(lib, "rt_vk_instance_create", 1, NIL, NIL, NIL);
        CHECK("vulkan", e_code(r) == 0 || e_code(r) == 10);
        printf("ok vulkan\n");
    }
    if (has(argv[3], "rt_tensor_zeros")) {
        lib = open_lib("torch");
        r = call(lib, "rt_tensor_zeros", 2, NIL, NIL, NIL);
        CHECK("torch", e_code(r) == 2); /* a nil shape is TypeMismatch */
        printf("ok torch\n");
    }
    (void)FALSE_;
    if (failures) { fprintf(stderr, "%d failure(s)\n", failures); return 1; }
    printf("SFFI OK\n");
    return 0;
}
"#;

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    stdout
}

/// Feature domains (GPU): resolved always, called when their library was built
/// with its feature (an empty library otherwise).
const IN_PROGRESS: &[&str] = &["cuda", "vulkan", "torch"];

#[test]
fn simple_sffi_path_reaches_every_domain() {
    let lib = lib_dir();
    let t = tempfile::tempdir().expect("temp dir");
    let src = t.path().join("sffi.c");
    std::fs::write(&src, HOST_C).expect("write sffi.c");
    let exe = t.path().join("sffi");
    // No -I and no -l of ours: the host knows only names and the i64 convention.
    // (-Wpedantic is off for the object-to-function-pointer casts dlsym needs.)
    let mut cc = Command::new("gcc");
    cc.args(["-std=c99", "-Wall", "-Wextra", "-Werror"])
        .arg(&src)
        .arg("-ldl")
        .arg("-o")
        .arg(&exe);
    run(&mut cc, "gcc sffi.c");

    // Every registry function with its domain and arity, from the registry the libraries serve.
    let json = run(
        Command::new(lib.join("rt"))
            .arg("--lib-dir")
            .arg(&lib)
            .args(["list", "--json"]),
        "rt list --json",
    );
    let reg: serde_json::Value = serde_json::from_str(&json).expect("registry json");
    let mut list = String::new();
    let mut domains = std::collections::BTreeSet::new();
    for e in reg.as_array().expect("the registry is an array") {
        if e["host"].as_bool() == Some(true) {
            continue;
        }
        let d = e["domain"].as_str().expect("domain");
        domains.insert(d.to_string());
        list.push_str(&format!(
            "{d} {} {}\n",
            e["name"].as_str().expect("name"),
            e["arity"]
        ));
    }
    let list_path = t.path().join("list.txt");
    std::fs::write(&list_path, &list).expect("write list");
    let data = t.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let data = std::fs::canonicalize(&data).expect("canonical data dir");

    let out = run(
        Command::new(&exe).arg(&lib).arg(&data).arg(&list_path),
        "the SFFI host",
    );
    assert!(out.contains("SFFI OK"), "{out}");
    let resolved: usize = out
        .lines()
        .find_map(|l| l.strip_prefix("resolved "))
        .and_then(|n| n.parse().ok())
        .expect("a `resolved N` line");
    assert_eq!(resolved, list.lines().count(), "{out}");
    for d in &domains {
        if !IN_PROGRESS.contains(&d.as_str()) {
            assert!(
                out.contains(&format!("ok {d}\n")),
                "domain {d} resolved but never called:\n{out}"
            );
        }
    }
}
