//! Loading the libraries the way an interpreter does: `dlopen(RTLD_NOW |
//! RTLD_LOCAL)` of `libffi_core.so` first (ABI major checked), then every
//! domain library that is present. Only two symbols are taken with `dlsym`
//! (`rt_abi_version` and `rt_registry_lookup`, the bootstrap); everything
//! else, host surface included, is resolved through `rt_registry_lookup`.

use crate::model::{Abi, Entry, Registry};
use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};

/// The ABI major this tool speaks.
pub const ABI_MAJOR: u32 = 1;

use crate::domains::{DOMAINS, FEATURE_DOMAINS};

pub type RtValue = u64;

type LookupFn = unsafe extern "C" fn(*const u8, usize, *mut u32) -> *mut c_void;
type AbiVersionFn = unsafe extern "C" fn() -> u32;

/// The host surface this tool uses, resolved through the registry. Each
/// pointer's C signature is checked against the registry entry at load.
pub struct Host {
    pub kind: unsafe extern "C" fn(RtValue) -> u32,
    pub int_new: unsafe extern "C" fn(i64) -> RtValue,
    pub int_get: unsafe extern "C" fn(RtValue) -> i64,
    pub float_new: unsafe extern "C" fn(f64) -> RtValue,
    pub float_get: unsafe extern "C" fn(RtValue) -> f64,
    pub bool_new: unsafe extern "C" fn(bool) -> RtValue,
    pub string_new: unsafe extern "C" fn(*const u8, usize) -> RtValue,
    pub string_ptr: unsafe extern "C" fn(RtValue) -> *const u8,
    pub string_len: unsafe extern "C" fn(RtValue) -> usize,
    pub bytes_new: unsafe extern "C" fn(*const u8, usize) -> RtValue,
    pub bytes_ptr: unsafe extern "C" fn(RtValue) -> *const u8,
    pub bytes_len: unsafe extern "C" fn(RtValue) -> usize,
    pub array_new: unsafe extern "C" fn(usize) -> RtValue,
    pub array_push: unsafe extern "C" fn(RtValue, RtValue) -> RtValue,
    pub array_len: unsafe extern "C" fn(RtValue) -> usize,
    pub array_get: unsafe extern "C" fn(RtValue, usize) -> RtValue,
    pub dict_new: unsafe extern "C" fn() -> RtValue,
    pub dict_set: unsafe extern "C" fn(RtValue, RtValue, RtValue) -> RtValue,
    pub dict_len: unsafe extern "C" fn(RtValue) -> usize,
    pub dict_key_at: unsafe extern "C" fn(RtValue, usize) -> RtValue,
    pub dict_value_at: unsafe extern "C" fn(RtValue, usize) -> RtValue,
    pub error_code: unsafe extern "C" fn(RtValue) -> u32,
    pub error_name: unsafe extern "C" fn(u32) -> *const c_char,
    pub error_message: unsafe extern "C" fn(RtValue) -> RtValue,
    pub error_details: unsafe extern "C" fn(RtValue) -> RtValue,
    pub value_pin: unsafe extern "C" fn(RtValue),
    pub value_unpin: unsafe extern "C" fn(RtValue),
    pub registry_json: unsafe extern "C" fn() -> RtValue,
}

/// One library that was found.
pub struct Lib {
    pub domain: String,
}

/// The loaded runtime: libraries, host surface, registry and ABI description.
pub struct Runtime {
    pub dir: PathBuf,
    pub libs: Vec<Lib>,
    /// Domains whose library is not in the directory.
    pub absent: Vec<String>,
    /// Domains whose library is there but failed to load (with dlerror's text).
    pub failed: Vec<(String, String)>,
    pub abi_version: u32,
    lookup: LookupFn,
    pub h: Host,
    pub registry: Registry,
    pub abi: Abi,
}

fn dlerror_text() -> String {
    // SAFETY: dlerror returns a thread-local C string or NULL.
    let p = unsafe { libc::dlerror() };
    if p.is_null() {
        "unknown dlopen error".to_string()
    } else {
        // SAFETY: `p` is non-NULL, so it is dlerror's NUL-terminated message, owned by libc
        // and valid until the next dl* call on this thread; it is copied out right here.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

fn dlopen_local(path: &Path) -> Result<*mut c_void, String> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| format!("library path contains a NUL byte: {}", path.display()))?;
    // SAFETY: a valid C string; the handle is never closed (the runtime lives as long as the process).
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if h.is_null() {
        Err(dlerror_text())
    } else {
        Ok(h)
    }
}

fn dlsym_req(h: *mut c_void, name: &str, lib: &Path) -> Result<*mut c_void, String> {
    let c = CString::new(name).map_err(|_| format!("bad symbol name {name:?}"))?;
    // SAFETY: `h` is a live handle from dlopen.
    let p = unsafe { libc::dlsym(h, c.as_ptr()) };
    if p.is_null() {
        Err(format!("{}: symbol {name} not found ({})", lib.display(), dlerror_text()))
    } else {
        Ok(p)
    }
}

/// Which domain libraries to load.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Domains {
    /// Every library that is present.
    All,
    /// Only the default build's domains (the feature domains are left out).
    Default,
}

impl Runtime {
    /// Loads `libffi_core.so` and the domain libraries found in `dir`.
    pub fn load(dir: &Path, which: Domains) -> Result<Runtime, String> {
        let core_path = dir.join("libffi_core.so");
        if !core_path.is_file() {
            return Err(format!(
                "{} not found (build the libraries with `cargo build`, or point --lib-dir / SIMPLE_RT_LIB_DIR at them)",
                core_path.display()
            ));
        }
        let core = dlopen_local(&core_path).map_err(|e| format!("cannot load {}: {e}", core_path.display()))?;
        let ver_p = dlsym_req(core, "rt_abi_version", &core_path)?;
        let look_p = dlsym_req(core, "rt_registry_lookup", &core_path)?;
        // SAFETY: `ver_p` is the address dlsym gave for core's `rt_abi_version`, whose
        // SPEC §3 prototype is `uint32_t rt_abi_version(void)` = `AbiVersionFn`.
        let abi_version_fn: AbiVersionFn = unsafe { std::mem::transmute::<*mut c_void, AbiVersionFn>(ver_p) };
        // SAFETY: as above: `look_p` is core's `rt_registry_lookup`, whose SPEC §3 prototype
        // `void *(const uint8_t *, size_t, uint32_t *)` is `LookupFn`; a data pointer and an
        // `extern "C"` fn pointer have the same size and representation on the targets we build.
        let lookup: LookupFn = unsafe { std::mem::transmute::<*mut c_void, LookupFn>(look_p) };
        // SAFETY: `rt_abi_version(void) -> uint32_t` (the prototype transmuted to above) takes
        // no arguments and reads no caller memory; core stays loaded for the process lifetime.
        let abi_version = unsafe { abi_version_fn() };
        if abi_version >> 16 != ABI_MAJOR {
            return Err(format!(
                "{} speaks ABI {}.{}, this tool speaks ABI {ABI_MAJOR}.x: refusing to load it",
                core_path.display(),
                abi_version >> 16,
                abi_version & 0xFFFF
            ));
        }

        let mut libs = vec![Lib { domain: "core".into() }];
        let mut absent = Vec::new();
        let mut failed = Vec::new();
        for d in DOMAINS {
            if which == Domains::Default && FEATURE_DOMAINS.contains(&d) {
                continue;
            }
            let p = dir.join(format!("libffi_{d}.so"));
            if !p.is_file() {
                absent.push(d.to_string());
                continue;
            }
            match dlopen_local(&p) {
                Ok(_) => libs.push(Lib { domain: d.to_string() }),
                Err(e) => failed.push((d.to_string(), e)),
            }
        }

        let h = resolve_host(lookup)?;
        let mut rt = Runtime {
            dir: dir.to_path_buf(),
            libs,
            absent,
            failed,
            abi_version,
            lookup,
            h,
            registry: Registry::default(),
            abi: Abi::default(),
        };
        // SAFETY: `rt_registry_json(void)`: the ABI major was checked above and its arity (0)
        // by `resolve_host`, so the v1 header prototype holds; the full C signatures of every
        // host pointer are checked against this registry text right after, before other use.
        let reg_text = rt.text(unsafe { (rt.h.registry_json)() }).ok_or("rt_registry_json did not return text")?;
        rt.registry = Registry::parse(&reg_text)?;
        check_host_signatures(&rt.registry)?;
        let abi_v = rt.call("rt_abi_info_json", &[])?;
        let abi_text = match rt.error_of(abi_v) {
            Some(e) => return Err(format!("rt_abi_info_json failed: {}", e.one_line())),
            None => rt.text(abi_v).ok_or("rt_abi_info_json did not return text")?,
        };
        rt.abi = Abi::parse(&abi_text)?;
        Ok(rt)
    }

    /// Address and arity of a function by name, through `rt_registry_lookup`.
    pub fn lookup(&self, name: &str) -> Option<(*mut c_void, u32)> {
        let mut arity = u32::MAX;
        // SAFETY: name bytes with explicit length; `arity` is a valid out pointer.
        let p = unsafe { (self.lookup)(name.as_ptr(), name.len(), &mut arity) };
        if p.is_null() {
            None
        } else {
            Some((p, arity))
        }
    }

    /// Calls a domain-style function (RtValue arguments, RtValue result) by
    /// name; `args.len()` must equal its arity.
    pub fn call(&self, name: &str, args: &[RtValue]) -> Result<RtValue, String> {
        if let Some(e) = self.registry.get(name) {
            if e.host {
                return Err(format!(
                    "{name} is a host-surface function taking C types ({}); it cannot be called with RtValue arguments",
                    e.c_prototype()
                ));
            }
        }
        let (addr, arity) = self.lookup(name).ok_or_else(|| format!("{name} is not in the registry"))?;
        if arity as usize != args.len() {
            return Err(format!("{name} takes {arity} argument(s), {} given", args.len()));
        }
        // SAFETY: the registry says `addr` is an `extern "C"` function of `arity` RtValue
        // arguments returning RtValue (host entries were refused above).
        unsafe { call_by_arity(addr, args) }
    }

    // ---- reading values ----

    pub fn text(&self, v: RtValue) -> Option<String> {
        // SAFETY: `rt_string_ptr`/`rt_string_len` (prototypes checked at load) accept any
        // value (NULL / 0 for a non-string). For a string `p` points at `n` initialised bytes
        // inside the heap object `v`, which the caller keeps alive (its stack or a pin); the
        // slice is copied into a Rust String before anything here can allocate or collect.
        unsafe {
            let p = (self.h.string_ptr)(v);
            if p.is_null() {
                return None;
            }
            let n = (self.h.string_len)(v);
            Some(String::from_utf8_lossy(std::slice::from_raw_parts(p, n)).into_owned())
        }
    }

    pub fn bytes(&self, v: RtValue) -> Option<Vec<u8>> {
        // SAFETY: as in `text`: `rt_bytes_ptr`/`rt_bytes_len` give NULL or `n` readable bytes
        // inside the live object `v`, copied into a Vec before anything else runs.
        unsafe {
            let p = (self.h.bytes_ptr)(v);
            if p.is_null() {
                return None;
            }
            let n = (self.h.bytes_len)(v);
            Some(std::slice::from_raw_parts(p, n).to_vec())
        }
    }

    /// A text value made from a Rust string (pinned by the caller if it must survive allocations).
    pub fn new_text(&self, s: &str) -> RtValue {
        // SAFETY: `rt_string_new(const uint8_t *, size_t)` with the pointer and length of the
        // live `&str` `s`; core copies the bytes during the call.
        unsafe { (self.h.string_new)(s.as_ptr(), s.len()) }
    }

    /// The kind name of a value ("nil", "int", "string", ...), from the ABI's kind table.
    pub fn kind_name(&self, v: RtValue) -> &str {
        // SAFETY: `rt_kind(RtValue) -> uint32_t` (prototype checked at load) accepts any value.
        let k = unsafe { (self.h.kind)(v) };
        self.abi.kind_name(k)
    }

    /// The Error carried by `v`, if it is one.
    pub fn error_of(&self, v: RtValue) -> Option<RtError> {
        // SAFETY: `rt_error_code(RtValue) -> uint32_t` accepts any value (0 = not an Error).
        let code = unsafe { (self.h.error_code)(v) };
        if code == 0 {
            return None;
        }
        // SAFETY: `rt_error_name(uint32_t) -> const char *` takes a plain code.
        let name_p = unsafe { (self.h.error_name)(code) };
        let name = if name_p.is_null() {
            "Unknown".to_string()
        } else {
            // SAFETY: a non-NULL `rt_error_name` result points into core's static, NUL-terminated
            // name table (ffi_core/src/error.rs), and core is never unloaded.
            unsafe { CStr::from_ptr(name_p) }.to_string_lossy().into_owned()
        };
        // SAFETY: `rt_error_message(RtValue)` on the Error `v` the caller keeps alive; the
        // message is reachable from `v`, so it stays alive while `text` copies it.
        let message = self.text(unsafe { (self.h.error_message)(v) }).unwrap_or_default();
        // SAFETY: `rt_error_details(RtValue)` on the live Error `v`; the details value is
        // reachable from `v` and is only read below while `v` is held by the caller.
        let det = unsafe { (self.h.error_details)(v) };
        let details = if self.kind_name(det) == "nil" { None } else { Some(crate::convert::to_json(self, det)) };
        Some(RtError { code, name, message, details })
    }

    /// Applies a policy in the text form (`rt_cap_parse` then `rt_cap_restrict`).
    pub fn restrict(&self, policy: &str) -> Result<(), Box<RtError>> {
        let t = Pinned::new(self, self.new_text(policy));
        if let Some(e) = self.error_of(t.v) {
            return Err(Box::new(e));
        }
        let d = self.call("rt_cap_parse", &[t.v]).map_err(|m| Box::new(RtError::tool(m)))?;
        if let Some(e) = self.error_of(d) {
            return Err(Box::new(e));
        }
        let d = Pinned::new(self, d);
        let r = self.call("rt_cap_restrict", &[d.v]).map_err(|m| Box::new(RtError::tool(m)))?;
        match self.error_of(r) {
            Some(e) => Err(Box::new(e)),
            None => Ok(()),
        }
    }

    /// Domains whose library loaded (core first).
    pub fn loaded_domains(&self) -> Vec<&str> {
        self.libs.iter().map(|l| l.domain.as_str()).collect()
    }
}

/// An Error value read out of the runtime (or a tool-side failure, code 0).
#[derive(Debug, Clone)]
pub struct RtError {
    pub code: u32,
    pub name: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl RtError {
    pub fn tool(message: String) -> RtError {
        RtError { code: 0, name: "Tool".into(), message, details: None }
    }
    pub fn one_line(&self) -> String {
        format!("{} ({}): {}", self.name, self.code, self.message)
    }
    /// `error: <Name> (<code>): <message>` and the details on a second line.
    pub fn report(&self) -> String {
        let mut s = format!("error: {}", self.one_line());
        if let Some(d) = &self.details {
            s.push_str(&format!("\n  details: {d}"));
        }
        s
    }
}

/// A value kept alive by a pin while Rust memory (invisible to the collector) holds it.
pub struct Pinned<'a> {
    rt: &'a Runtime,
    pub v: RtValue,
}

impl<'a> Pinned<'a> {
    pub fn new(rt: &'a Runtime, v: RtValue) -> Pinned<'a> {
        // SAFETY: `rt_value_pin(RtValue)` (prototype checked at load) takes any value; the
        // matching unpin is in `Drop`, so every pin taken here is released exactly once.
        unsafe { (rt.h.value_pin)(v) };
        Pinned { rt, v }
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        // SAFETY: releases the one pin `Pinned::new` took on this same value.
        unsafe { (self.rt.h.value_unpin)(self.v) };
    }
}

/// Calls `addr` as `RtValue (*)(RtValue x n)` with n = `args.len()` (0..=8).
///
/// # Safety
/// `addr` must be such a function with exactly that arity.
pub unsafe fn call_by_arity(addr: *mut c_void, a: &[RtValue]) -> Result<RtValue, String> {
    type V = RtValue;
    use std::mem::transmute as t;
    Ok(match a.len() {
        0 => t::<*mut c_void, unsafe extern "C" fn() -> V>(addr)(),
        1 => t::<*mut c_void, unsafe extern "C" fn(V) -> V>(addr)(a[0]),
        2 => t::<*mut c_void, unsafe extern "C" fn(V, V) -> V>(addr)(a[0], a[1]),
        3 => t::<*mut c_void, unsafe extern "C" fn(V, V, V) -> V>(addr)(a[0], a[1], a[2]),
        4 => t::<*mut c_void, unsafe extern "C" fn(V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3]),
        5 => t::<*mut c_void, unsafe extern "C" fn(V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4]),
        6 => t::<*mut c_void, unsafe extern "C" fn(V, V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4], a[5]),
        7 => t::<*mut c_void, unsafe extern "C" fn(V, V, V, V, V, V, V) -> V>(addr)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]),
        8 => t::<*mut c_void, unsafe extern "C" fn(V, V, V, V, V, V, V, V) -> V>(addr)(
            a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7],
        ),
        n => return Err(format!("arity {n} is above the calling convention's maximum of 8")),
    })
}

/// The host-surface functions this tool calls with C types, and the C
/// signature it calls them with. Checked against the registry at load time
/// so a changed prototype is refused instead of called wrongly.
const HOST_USED: &[(&str, &str, &[&str])] = &[
    ("rt_kind", "uint32_t", &["RtValue"]),
    ("rt_int_new", "RtValue", &["int64_t"]),
    ("rt_int_get", "int64_t", &["RtValue"]),
    ("rt_float_new", "RtValue", &["double"]),
    ("rt_float_get", "double", &["RtValue"]),
    ("rt_bool_new", "RtValue", &["bool"]),
    ("rt_string_new", "RtValue", &["const uint8_t *", "size_t"]),
    ("rt_string_ptr", "const uint8_t *", &["RtValue"]),
    ("rt_string_len", "size_t", &["RtValue"]),
    ("rt_bytes_new", "RtValue", &["const uint8_t *", "size_t"]),
    ("rt_bytes_ptr", "const uint8_t *", &["RtValue"]),
    ("rt_bytes_len", "size_t", &["RtValue"]),
    ("rt_array_new", "RtValue", &["size_t"]),
    ("rt_array_push", "RtValue", &["RtValue", "RtValue"]),
    ("rt_array_len", "size_t", &["RtValue"]),
    ("rt_array_get", "RtValue", &["RtValue", "size_t"]),
    ("rt_dict_new", "RtValue", &[]),
    ("rt_dict_set", "RtValue", &["RtValue", "RtValue", "RtValue"]),
    ("rt_dict_len", "size_t", &["RtValue"]),
    ("rt_dict_key_at", "RtValue", &["RtValue", "size_t"]),
    ("rt_dict_value_at", "RtValue", &["RtValue", "size_t"]),
    ("rt_error_code", "uint32_t", &["RtValue"]),
    ("rt_error_name", "const char *", &["uint32_t"]),
    ("rt_error_message", "RtValue", &["RtValue"]),
    ("rt_error_details", "RtValue", &["RtValue"]),
    ("rt_value_pin", "void", &["RtValue"]),
    ("rt_value_unpin", "void", &["RtValue"]),
    ("rt_registry_json", "RtValue", &[]),
];

// The transmutes' target types are the `Host` fields' declared types.
#[allow(clippy::missing_transmute_annotations)]
fn resolve_host(lookup: LookupFn) -> Result<Host, String> {
    let get = |name: &str, want: usize| -> Result<*mut c_void, String> {
        let mut arity = u32::MAX;
        // SAFETY: `lookup` is core's `rt_registry_lookup` (SPEC §3 prototype, transmuted in
        // `load`): `name` is passed as pointer plus length of a live `&str` (no NUL needed)
        // and `arity` is a valid, writable u32 on this stack frame.
        let p = unsafe { lookup(name.as_ptr(), name.len(), &mut arity) };
        if p.is_null() {
            return Err(format!("libffi_core.so does not register the host function {name}"));
        }
        if arity as usize != want {
            return Err(format!("host function {name} has arity {arity} in the registry, expected {want}"));
        }
        Ok(p)
    };
    macro_rules! f {
        ($name:literal, $n:expr) => {
            // SAFETY: the prototype is checked against the registry's C types in check_host_signatures.
            unsafe { std::mem::transmute::<*mut c_void, _>(get($name, $n)?) }
        };
    }
    Ok(Host {
        kind: f!("rt_kind", 1),
        int_new: f!("rt_int_new", 1),
        int_get: f!("rt_int_get", 1),
        float_new: f!("rt_float_new", 1),
        float_get: f!("rt_float_get", 1),
        bool_new: f!("rt_bool_new", 1),
        string_new: f!("rt_string_new", 2),
        string_ptr: f!("rt_string_ptr", 1),
        string_len: f!("rt_string_len", 1),
        bytes_new: f!("rt_bytes_new", 2),
        bytes_ptr: f!("rt_bytes_ptr", 1),
        bytes_len: f!("rt_bytes_len", 1),
        array_new: f!("rt_array_new", 1),
        array_push: f!("rt_array_push", 2),
        array_len: f!("rt_array_len", 1),
        array_get: f!("rt_array_get", 2),
        dict_new: f!("rt_dict_new", 0),
        dict_set: f!("rt_dict_set", 3),
        dict_len: f!("rt_dict_len", 1),
        dict_key_at: f!("rt_dict_key_at", 2),
        dict_value_at: f!("rt_dict_value_at", 2),
        error_code: f!("rt_error_code", 1),
        error_name: f!("rt_error_name", 1),
        error_message: f!("rt_error_message", 1),
        error_details: f!("rt_error_details", 1),
        value_pin: f!("rt_value_pin", 1),
        value_unpin: f!("rt_value_unpin", 1),
        registry_json: f!("rt_registry_json", 0),
    })
}

fn check_host_signatures(reg: &Registry) -> Result<(), String> {
    for (name, ret, params) in HOST_USED {
        let e: &Entry = reg.get(name).ok_or_else(|| format!("the registry has no entry for {name}"))?;
        let got_params: Vec<&str> = e.params.iter().map(|p| p.ctype.as_deref().unwrap_or("?")).collect();
        if !e.host || e.c_returns.as_deref() != Some(*ret) || got_params != *params {
            return Err(format!(
                "ABI mismatch: the registry declares {}, this tool calls {ret} {name}({})",
                e.c_prototype(),
                params.join(", ")
            ));
        }
    }
    Ok(())
}
