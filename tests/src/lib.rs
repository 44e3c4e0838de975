//! Test support for the cross-library tests: the libraries are loaded as a
//! real host loads them (`dlopen` with `RTLD_NOW | RTLD_LOCAL`), functions are
//! reached through `dlsym` or the registry, and tests that change process
//! state run in a child process of the test binary.
//!
//! This crate never links `ffi_core` or `ffi_sdk` (that would define every
//! `rt_*` symbol a second time); it declares the C prototypes it needs as
//! function-pointer types.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::OnceLock;

/// One runtime value (SPEC §2).
pub type RtValue = u64;

pub const TAG_MASK: u64 = 0b111;
pub const TAG_INT: u64 = 0b000;
pub const TAG_HEAP: u64 = 0b001;
pub const TAG_FLOAT: u64 = 0b010;
pub const NIL: RtValue = 0x03;
pub const TRUE: RtValue = 0x0B;
pub const FALSE: RtValue = 0x13;

/// `rt_kind` numbers.
pub mod escape_tree;

pub mod kind {
    pub const INVALID: u32 = 0;
    pub const NIL: u32 = 1;
    pub const BOOL: u32 = 2;
    pub const INT: u32 = 3;
    pub const FLOAT: u32 = 4;
    pub const STRING: u32 = 5;
    pub const BYTES: u32 = 6;
    pub const ARRAY: u32 = 7;
    pub const DICT: u32 = 8;
    pub const ERROR: u32 = 9;
    pub const HANDLE: u32 = 10;
}

/// Error codes (SPEC §3).
pub mod code {
    pub const INVALID_ARGUMENT: u32 = 1;
    pub const TYPE_MISMATCH: u32 = 2;
    pub const NOT_FOUND: u32 = 3;
    pub const CAPABILITY_DENIED: u32 = 6;
    pub const PARSE: u32 = 9;
    pub const CLOSED: u32 = 11;
    pub const INTERNAL: u32 = 13;
    pub const OUT_OF_RANGE: u32 = 14;
    pub const LIMIT_EXCEEDED: u32 = 15;
}

// The project's one domain list (SPEC §1): `DOMAINS`, `FEATURE_DOMAINS`,
// `default_domains()`, shared with `rt` (this crate links no ffi_* crate).
include!("../../rt/src/domains.rs");

/// Libraries that need outside runtimes (libtorch, a CUDA driver): a failed dlopen is a skip, not a failure.
pub const OPTIONAL: [&str; 3] = FEATURE_DOMAINS;

// ------------------------------------------------------------------ locating

/// `target/<profile>` of the running test or bench binary (`.../target/<profile>/deps/<bin>`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test binary");
    let deps = exe.parent().expect("test binary has a parent dir");
    let p = if deps.file_name().is_some_and(|n| n == "deps") { deps.parent().unwrap_or(deps) } else { deps };
    p.to_path_buf()
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The directory the libraries are loaded from: `SIMPLE_RT_LIB_DIR`, else
/// `target/<profile>` or `target/<profile>/deps` — whichever holds the newer
/// `libffi_core.so` (a dependency build refreshes `deps/` without uplifting;
/// on a tie `target/<profile>` wins). All libraries come from that one dir so
/// their `$ORIGIN` rpath resolves `libffi_core.so` to the same file.
pub fn lib_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("SIMPLE_RT_LIB_DIR") {
            let d = PathBuf::from(d);
            assert!(
                d.join("libffi_core.so").is_file(),
                "SIMPLE_RT_LIB_DIR={} has no libffi_core.so",
                d.display()
            );
            return d;
        }
        let prof = profile_dir();
        let cands = [prof.clone(), prof.join("deps")];
        let mut best: Option<(&PathBuf, std::time::SystemTime)> = None;
        for c in &cands {
            if let Some(t) = mtime(&c.join("libffi_core.so")) {
                if best.as_ref().is_none_or(|(_, bt)| t > *bt) {
                    best = Some((c, t));
                }
            }
        }
        match best {
            Some((d, _)) => d.clone(),
            None => {
                let profile = prof.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let flag = if profile == "debug" { String::new() } else { " --release".to_string() };
                panic!(
                    "libffi_core.so not found in {} or {}/deps: build the libraries first with \
                     `cargo build{flag} -p ffi_core -p ffi_system` (or set SIMPLE_RT_LIB_DIR)",
                    prof.display(),
                    prof.display()
                )
            }
        }
    })
    .clone()
}

/// Path of `libffi_<name>.so` in [`lib_dir`].
pub fn lib_path(name: &str) -> PathBuf {
    lib_dir().join(format!("libffi_{name}.so"))
}

/// Domain libraries present in [`lib_dir`] (not core, never macros), in [`DOMAINS`] order.
pub fn present_domains() -> Vec<&'static str> {
    DOMAINS.iter().copied().filter(|d| lib_path(d).is_file()).collect()
}

// ------------------------------------------------------------------ dlopen

/// A library opened with `RTLD_NOW | RTLD_LOCAL` (never closed).
pub struct Lib {
    pub name: String,
    pub handle: *mut c_void,
}

// SAFETY: the handle is an opaque dlopen handle that is never dlclosed; dlsym is thread-safe
// and takes it by value, so moving a Lib to another thread is harmless.
unsafe impl Send for Lib {}
// SAFETY: `&Lib` only reads `handle` and passes it to dlsym, which may be called from any
// thread concurrently; nothing mutates a Lib through a shared reference.
unsafe impl Sync for Lib {}

fn dlerror() -> String {
    // SAFETY: dlerror takes no arguments; glibc keeps its state per thread, so no other thread
    // races on the message it returns.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown dlopen error".into()
    } else {
        // SAFETY: `e` is non-NULL and points at the NUL-terminated message dlerror keeps for this
        // thread, valid until the next dl* call on it; it is copied out before any.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

impl Lib {
    /// dlopen `libffi_<name>.so` from [`lib_dir`].
    pub fn open(name: &str) -> Result<Lib, String> {
        Lib::open_path(name, &lib_path(name))
    }

    pub fn open_path(name: &str, path: &Path) -> Result<Lib, String> {
        let c = CString::new(path.to_string_lossy().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: `c` is a CString alive for the call; the flags are valid dlopen modes. Running the
        // library's constructors is the point (the libraries are ours, built by this workspace).
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if h.is_null() {
            return Err(format!("dlopen {}: {}", path.display(), dlerror()));
        }
        Ok(Lib { name: name.to_string(), handle: h })
    }

    /// Address of `symbol` as seen through this library's handle (itself and its dependencies).
    pub fn addr(&self, symbol: &str) -> Option<*mut c_void> {
        let c = CString::new(symbol).ok()?;
        // SAFETY: `self.handle` is a handle from a successful dlopen, never closed; `c` is a live
        // CString.
        let p = unsafe { libc::dlsym(self.handle, c.as_ptr()) };
        (!p.is_null()).then_some(p)
    }

    /// `symbol` as a value of function-pointer type `T`.
    ///
    /// # Safety
    /// `T` must be the symbol's real C signature.
    pub unsafe fn sym<T: Copy>(&self, symbol: &str) -> T {
        assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<*mut c_void>());
        let p = self.addr(symbol).unwrap_or_else(|| panic!("{}: symbol {symbol} not found", self.name));
        std::mem::transmute_copy(&p)
    }
}

// ------------------------------------------------------------------ the host surface

type FnV = extern "C" fn() -> RtValue;
type FnVV = extern "C" fn(RtValue) -> RtValue;
type FnVVV = extern "C" fn(RtValue, RtValue) -> RtValue;

/// The host surface of `libffi_core.so` (SPEC §3) as typed function pointers.
#[allow(clippy::type_complexity)]
pub struct Core {
    pub lib: Lib,
    pub abi_version: extern "C" fn() -> u32,
    pub kind: extern "C" fn(RtValue) -> u32,
    pub int_new: extern "C" fn(i64) -> RtValue,
    pub int_get: extern "C" fn(RtValue) -> i64,
    pub float_new: extern "C" fn(f64) -> RtValue,
    pub float_get: extern "C" fn(RtValue) -> f64,
    pub bool_new: extern "C" fn(bool) -> RtValue,
    pub bool_get: extern "C" fn(RtValue) -> bool,
    pub string_new: extern "C" fn(*const u8, usize) -> RtValue,
    pub string_ptr: extern "C" fn(RtValue) -> *const u8,
    pub string_len: extern "C" fn(RtValue) -> usize,
    pub bytes_new: extern "C" fn(*const u8, usize) -> RtValue,
    pub bytes_ptr: extern "C" fn(RtValue) -> *const u8,
    pub bytes_len: extern "C" fn(RtValue) -> usize,
    pub array_new: extern "C" fn(usize) -> RtValue,
    pub array_push: FnVVV,
    pub array_len: extern "C" fn(RtValue) -> usize,
    pub array_get: extern "C" fn(RtValue, usize) -> RtValue,
    pub array_set: extern "C" fn(RtValue, usize, RtValue) -> RtValue,
    pub dict_new: FnV,
    pub dict_set: extern "C" fn(RtValue, RtValue, RtValue) -> RtValue,
    pub dict_get: FnVVV,
    pub dict_has: extern "C" fn(RtValue, RtValue) -> bool,
    pub dict_remove: FnVVV,
    pub dict_len: extern "C" fn(RtValue) -> usize,
    pub dict_key_at: extern "C" fn(RtValue, usize) -> RtValue,
    pub dict_value_at: extern "C" fn(RtValue, usize) -> RtValue,
    pub error_new: extern "C" fn(u32, RtValue) -> RtValue,
    pub error_code: extern "C" fn(RtValue) -> u32,
    pub error_name: extern "C" fn(u32) -> *const c_char,
    pub error_message: FnVV,
    pub error_details: FnVV,
    pub value_pin: extern "C" fn(RtValue),
    pub value_unpin: extern "C" fn(RtValue),
    pub value_pin_count: extern "C" fn(RtValue) -> u32,
    pub value_valid: extern "C" fn(RtValue) -> bool,
    pub registry_json: FnV,
    pub registry_lookup: extern "C" fn(*const u8, usize, *mut u32) -> *mut c_void,
    pub gc_malloc: extern "C" fn(usize) -> *mut c_void,
    pub gc_free: extern "C" fn(*mut c_void),
    pub thread_attach: extern "C" fn() -> u32,
    pub thread_detach: extern "C" fn() -> u32,
    /// The capability fast-path flag (0 = allow-all and no audit).
    pub cap_slow: &'static AtomicU32,
}

impl Core {
    /// Opens `libffi_core.so` (or finds it already loaded) and resolves the host surface.
    pub fn open() -> Core {
        Core::from_lib(Lib::open("core").unwrap_or_else(|e| panic!("{e}")))
    }

    /// Resolves the host surface through `lib` (core itself, or a library that depends on it).
    pub fn from_lib(lib: Lib) -> Core {
        // SAFETY: each `lib.sym` names a core export whose C prototype (include/simple_rt.h) is the
        // field's type, so the transmuted addresses are called with their real signatures; the
        // library is never unloaded, so they stay valid. `RT_CAP_SLOW` is core's
        // `static AtomicU32` (4-byte aligned): dlsym gives its address, and a `'static` shared
        // reference to it is sound because it is only ever accessed atomically.
        unsafe {
            let cap_slow: *const AtomicU32 = lib.sym("RT_CAP_SLOW");
            Core {
                abi_version: lib.sym("rt_abi_version"),
                kind: lib.sym("rt_kind"),
                int_new: lib.sym("rt_int_new"),
                int_get: lib.sym("rt_int_get"),
                float_new: lib.sym("rt_float_new"),
                float_get: lib.sym("rt_float_get"),
                bool_new: lib.sym("rt_bool_new"),
                bool_get: lib.sym("rt_bool_get"),
                string_new: lib.sym("rt_string_new"),
                string_ptr: lib.sym("rt_string_ptr"),
                string_len: lib.sym("rt_string_len"),
                bytes_new: lib.sym("rt_bytes_new"),
                bytes_ptr: lib.sym("rt_bytes_ptr"),
                bytes_len: lib.sym("rt_bytes_len"),
                array_new: lib.sym("rt_array_new"),
                array_push: lib.sym("rt_array_push"),
                array_len: lib.sym("rt_array_len"),
                array_get: lib.sym("rt_array_get"),
                array_set: lib.sym("rt_array_set"),
                dict_new: lib.sym("rt_dict_new"),
                dict_set: lib.sym("rt_dict_set"),
                dict_get: lib.sym("rt_dict_get"),
                dict_has: lib.sym("rt_dict_has"),
                dict_remove: lib.sym("rt_dict_remove"),
                dict_len: lib.sym("rt_dict_len"),
                dict_key_at: lib.sym("rt_dict_key_at"),
                dict_value_at: lib.sym("rt_dict_value_at"),
                error_new: lib.sym("rt_error_new"),
                error_code: lib.sym("rt_error_code"),
                error_name: lib.sym("rt_error_name"),
                error_message: lib.sym("rt_error_message"),
                error_details: lib.sym("rt_error_details"),
                value_pin: lib.sym("rt_value_pin"),
                value_unpin: lib.sym("rt_value_unpin"),
                value_pin_count: lib.sym("rt_value_pin_count"),
                value_valid: lib.sym("rt_value_valid"),
                registry_json: lib.sym("rt_registry_json"),
                registry_lookup: lib.sym("rt_registry_lookup"),
                gc_malloc: lib.sym("rt_gc_malloc"),
                gc_free: lib.sym("rt_gc_free"),
                thread_attach: lib.sym("rt_thread_attach"),
                thread_detach: lib.sym("rt_thread_detach"),
                cap_slow: &*cap_slow,
                lib,
            }
        }
    }

    // ---- building values ----
    pub fn text(&self, s: &str) -> RtValue {
        (self.string_new)(s.as_ptr(), s.len())
    }
    pub fn bytes(&self, b: &[u8]) -> RtValue {
        (self.bytes_new)(b.as_ptr(), b.len())
    }
    pub fn int(&self, i: i64) -> RtValue {
        (self.int_new)(i)
    }
    /// A text array.
    pub fn text_array(&self, items: &[&str]) -> RtValue {
        let a = (self.array_new)(items.len());
        for s in items {
            (self.array_push)(a, self.text(s));
        }
        a
    }
    /// A dict with text keys.
    pub fn dict(&self, entries: &[(&str, RtValue)]) -> RtValue {
        let d = (self.dict_new)();
        for (k, v) in entries {
            (self.dict_set)(d, self.text(k), *v);
        }
        d
    }

    // ---- reading values ----
    pub fn kind_of(&self, v: RtValue) -> u32 {
        (self.kind)(v)
    }
    /// The text of a string value (None if not a string).
    pub fn get_text(&self, v: RtValue) -> Option<String> {
        let p = (self.string_ptr)(v);
        if p.is_null() {
            return None;
        }
        let n = (self.string_len)(v);
        // SAFETY: `rt_string_ptr` returned non-NULL, so `v` is a string and `p` its first of
        // `rt_string_len(v)` = `n` bytes, in the collector heap; `v` is on this stack (scanned by
        // the conservative collector) and strings are immutable, so the bytes stay valid while
        // they are copied.
        let b = unsafe { std::slice::from_raw_parts(p, n) };
        Some(String::from_utf8(b.to_vec()).expect("runtime string is UTF-8"))
    }
    pub fn get_bytes(&self, v: RtValue) -> Option<Vec<u8>> {
        let p = (self.bytes_ptr)(v);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` is non-NULL, so `v` is a bytes value and `p` its data, `rt_bytes_len(v)` bytes
        // long; `v` stays on this stack (kept alive by the conservative collector) while the
        // slice is copied out by `to_vec`, and nothing else writes it meanwhile.
        Some(unsafe { std::slice::from_raw_parts(p, (self.bytes_len)(v)) }.to_vec())
    }
    pub fn get_int(&self, v: RtValue) -> Option<i64> {
        (self.kind_of(v) == kind::INT).then(|| (self.int_get)(v))
    }
    /// `dict[key]` for a text key.
    pub fn get(&self, dict: RtValue, key: &str) -> RtValue {
        (self.dict_get)(dict, self.text(key))
    }
    /// (code, message) when `v` is an Error.
    pub fn error(&self, v: RtValue) -> Option<(u32, String)> {
        if self.kind_of(v) != kind::ERROR {
            return None;
        }
        let c = (self.error_code)(v);
        let m = self.get_text((self.error_message)(v)).unwrap_or_default();
        Some((c, m))
    }
    /// Name of an error code ("CapabilityDenied").
    pub fn code_name(&self, c: u32) -> String {
        let p = (self.error_name)(c);
        assert!(!p.is_null(), "rt_error_name({c}) returned NULL");
        // SAFETY: `p` is non-NULL (asserted) and `rt_error_name` returns a pointer to a static
        // NUL-terminated name in core, which is never unloaded.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
    /// The value, or a panic naming the Error.
    #[track_caller]
    pub fn ok(&self, v: RtValue) -> RtValue {
        if let Some((c, m)) = self.error(v) {
            panic!("expected success, got {}: {m}", self.code_name(c));
        }
        v
    }
    /// The Error's (code, message), or a panic.
    #[track_caller]
    pub fn err(&self, v: RtValue) -> (u32, String) {
        self.error(v).unwrap_or_else(|| panic!("expected an Error, got a value of kind {}", self.kind_of(v)))
    }

    // ---- registry ----
    /// Every loaded function's entry.
    pub fn registry(&self) -> Vec<serde_json::Value> {
        let s = self.get_text((self.registry_json)()).expect("rt_registry_json returns text");
        match serde_json::from_str(&s).expect("registry JSON parses") {
            serde_json::Value::Array(a) => a,
            other => panic!("registry is not an array: {other}"),
        }
    }
    /// Address and arity of `name`.
    pub fn lookup(&self, name: &str) -> Option<(*mut c_void, u32)> {
        let mut ar = u32::MAX;
        let p = (self.registry_lookup)(name.as_ptr(), name.len(), &mut ar);
        (!p.is_null()).then_some((p, ar))
    }
    /// Calls a domain-style function by name; missing trailing arguments are nil.
    #[track_caller]
    pub fn call(&self, name: &str, args: &[RtValue]) -> RtValue {
        let (p, n) = self.lookup(name).unwrap_or_else(|| panic!("{name} is not in the registry"));
        assert!(args.len() <= n as usize, "{name} takes {n} arguments, got {}", args.len());
        let mut a = [NIL; 8];
        a[..args.len()].copy_from_slice(args);
        // SAFETY: `p` and `n` are the address and arity the registry records for `name`, so `p` is
        // called with exactly its parameter count; callers name domain functions (every
        // parameter and the result one RtValue word), never host-surface ones such as
        // `rt_string_new`, whose pointer parameters would receive value words.
        unsafe { call_arity(p, n, &a) }
    }
    /// Whether `name` is in the registry.
    pub fn has(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }

    // ---- collector ----
    pub fn collect(&self) {
        self.ok(self.call("rt_gc_collect", &[]));
    }
    /// One `rt_gc_stats` field.
    pub fn stat(&self, field: &str) -> i64 {
        let s = self.ok(self.call("rt_gc_stats", &[]));
        self.get_int(self.get(s, field)).unwrap_or_else(|| panic!("rt_gc_stats has no int {field}"))
    }
    /// Narrows the process policy with the text form.
    #[track_caller]
    pub fn restrict(&self, policy: &str) {
        let p = self.ok(self.call("rt_cap_parse", &[self.text(policy)]));
        self.ok(self.call("rt_cap_restrict", &[p]));
    }
}

/// Calls `addr` as `RtValue f(RtValue x arity)` with the first `arity` words of `a`.
///
/// # Safety
/// `addr` must be a domain-style function of that arity.
pub unsafe fn call_arity(addr: *mut c_void, arity: u32, a: &[RtValue; 8]) -> RtValue {
    type V = RtValue;
    use std::mem::transmute as t;
    match arity {
        0 => t::<*mut c_void, extern "C" fn() -> V>(addr)(),
        1 => t::<*mut c_void, extern "C" fn(V) -> V>(addr)(a[0]),
        2 => t::<*mut c_void, extern "C" fn(V, V) -> V>(addr)(a[0], a[1]),
        3 => t::<*mut c_void, extern "C" fn(V, V, V) -> V>(addr)(a[0], a[1], a[2]),
        4 => t::<*mut c_void, extern "C" fn(V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3]),
        5 => t::<*mut c_void, extern "C" fn(V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4]),
        6 => t::<*mut c_void, extern "C" fn(V, V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4], a[5]),
        7 => t::<*mut c_void, extern "C" fn(V, V, V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]),
        8 => t::<*mut c_void, extern "C" fn(V, V, V, V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]),
        n => panic!("arity {n} is more than 8"),
    }
}

/// The process-wide core (opened once; libraries are never unloaded).
pub fn core() -> &'static Core {
    static CORE: OnceLock<Core> = OnceLock::new();
    CORE.get_or_init(Core::open)
}

/// Opens core and every present domain library (optional ones may fail); returns the opened names.
pub fn open_all() -> Vec<String> {
    let _ = core();
    let mut out = vec!["core".to_string()];
    for d in present_domains() {
        match Lib::open(d) {
            Ok(l) => {
                std::mem::forget(l);
                out.push(d.to_string());
            }
            Err(e) if OPTIONAL.contains(&d) => eprintln!("note: skipping optional {d}: {e}"),
            Err(e) => panic!("{e}"),
        }
    }
    out
}

// ------------------------------------------------------------------ child processes

const CHILD_KEY: &str = "RT_TESTS_CHILD";

/// True in the child run of `test_name` started by [`in_child`] / [`child_output`].
pub fn is_child(test_name: &str) -> bool {
    std::env::var(CHILD_KEY).ok().as_deref() == Some(test_name)
}

/// Runs the test `test_name` of this binary alone in a new process with `env` added.
pub fn child_output(test_name: &str, env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["--exact", test_name, "--nocapture", "--test-threads=1"]).env(CHILD_KEY, test_name);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("re-running the test binary")
}

/// Runs `body` in a child process (the test named `test_name` re-run alone),
/// so a test that narrows the policy or loads libraries in a given order
/// does not affect the others. Fails with the child's output.
#[track_caller]
pub fn in_child(test_name: &str, env: &[(&str, &str)], body: impl FnOnce()) {
    if is_child(test_name) {
        body();
        return;
    }
    let out = child_output(test_name, env);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && all.contains("1 passed"),
        "child run of {test_name} {env:?} failed ({}):\n{all}",
        out.status
    );
}

/// Defined `rt_*` / `RT_*` dynamic symbols of a library (`nm -D --defined-only`).
pub fn exported_symbols(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(path)
        .output()
        .expect("running nm (binutils)");
    assert!(out.status.success(), "nm failed on {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .filter(|s| s.starts_with("rt_") || s.starts_with("RT_"))
        .map(str::to_string)
        .collect()
}

/// A C host for the tests: compiles `source` (C11, warnings are errors,
/// plus `cflags`) against the generated header, links `libffi_<l>.so` for
/// each of `libs` from [`lib_dir`] with that directory as rpath, runs it and
/// returns its stdout, after checking that it exited 0 and printed `ALL OK`.
pub fn run_c_host(tag: &str, source: &str, libs: &[&str], cflags: &[&str]) -> String {
    let lib = lib_dir();
    for l in libs {
        assert!(lib_path(l).is_file(), "{} is missing: build the libraries first", lib_path(l).display());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_path_buf();
    let dir = std::env::temp_dir().join(format!("rt-c-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let (src, exe) = (dir.join("host.c"), dir.join("host"));
    std::fs::write(&src, source).expect("write host.c");
    let out = std::process::Command::new("gcc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(cflags)
        .arg(&src)
        .arg("-I")
        .arg(root.join("include"))
        .arg("-L")
        .arg(&lib)
        .args(libs.iter().map(|l| format!("-lffi_{l}")))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("gcc runs");
    assert!(out.status.success(), "gcc failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let run = std::process::Command::new(&exe).output().expect("run the C host");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert!(
        run.status.success() && stdout.contains("ALL OK"),
        "C host {tag} ({}):\n{stdout}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
    stdout
}
