//! Modules compiled from CLIF text: JIT (run in this process) or object (an ELF file
//! for the system linker).

use crate::convert::{self, Slot, Tramp};
use crate::target;
use cranelift_codegen::ir::{self, ExternalName, Function, Signature, UserExternalName, UserFuncName};
use cranelift_codegen::isa::{self, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{CodegenError, Context};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module, ModuleError};
use cranelift_object::{ObjectBuilder, ObjectModule};
use ffi_sdk::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A defined function: its id and signature.
#[derive(Clone)]
pub(crate) struct FnInfo {
    pub id: FuncId,
    pub sig: Signature,
}

/// Addresses resolved for a JIT module's imports (read by its symbol lookup).
type SymbolTable = Arc<Mutex<HashMap<String, usize>>>;

/// Where imports may come from.
pub(crate) enum Imports {
    /// Only these names (`symbols` option as an array), resolved in the rt registry then the process.
    Names(Vec<String>),
    /// No `symbols` option: none (JIT); any name is left to the linker (object).
    Default,
}

/// A module's state, behind one lock.
pub struct Inner {
    pub(crate) jit: Option<JITModule>,
    pub(crate) obj: Option<ObjectModule>,
    pub(crate) emitted: bool,
    pub(crate) isa: OwnedTargetIsa,
    pub(crate) funcs: HashMap<String, FnInfo>,
    pub(crate) imports: HashMap<String, FuncId>,
    pub(crate) allowed: Imports,
    pub(crate) symbols: SymbolTable,
    pub(crate) dirty: bool,
    pub(crate) tramps: HashMap<String, (usize, usize)>,
    pub(crate) ctx: Context,
    pub(crate) data_count: u32,
    pub(crate) broken: bool,
}

// SAFETY: the JIT module holds raw pointers to its own code memory; it is only used
// under the module's mutex, and freed once (in Drop) when the last owner is gone.
unsafe impl Send for Inner {}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(m) = self.jit.take() {
            // SAFETY: no call into this module's code can be running: every execute holds an
            // owner of the handle (so Drop waits for it), and addresses given out are documented
            // as valid only until close.
            unsafe { m.free_memory() };
        }
    }
}

/// A Cranelift module (handle type `cranelift_module`).
pub struct CgModule {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) is_jit: bool,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for CgModule {
    const NAME: &'static str = "cranelift_module";
}

impl CgModule {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Inner {
    pub(crate) fn module(&mut self, func: &'static str) -> RtResult<&mut dyn Module> {
        if let Some(m) = self.jit.as_mut() {
            return Ok(m);
        }
        match self.obj.as_mut() {
            Some(m) => Ok(m),
            None => Err(Error::plain(Code::Closed, func, "the object module was emitted already; make a new module")),
        }
    }
}

fn setting_text(v: Value) -> Option<String> {
    if let Some(b) = v.as_bool() {
        return Some(b.to_string());
    }
    if let Some(i) = v.as_int() {
        return Some(i.to_string());
    }
    v.as_text().map(str::to_string)
}

/// Applies one setting: to the ISA builder if it knows it, else to the shared flags.
/// `true` also enables presets (`skylake`, `sse42`).
fn apply_setting(func: &'static str, ib: &mut isa::Builder, sb: &mut settings::Builder, name: &str, value: &str) -> RtResult<()> {
    if value == "true" && ib.enable(name).is_ok() {
        return Ok(());
    }
    if ib.set(name, value).is_ok() {
        return Ok(());
    }
    if value == "true" && sb.enable(name).is_ok() {
        return Ok(());
    }
    target::set_shared(sb, name, value).map_err(|e| Error::invalid(func, format!("bad Cranelift setting: {e}"), format!("{name}={value}")))
}

/// Settings for a module, from its options.
pub(crate) struct Config {
    pub jit: bool,
    pub triple: Option<String>,
    pub opt_level: String,
    pub flags: Vec<(String, String)>,
    pub imports: Imports,
    pub addresses: Vec<(String, usize)>,
    pub name: String,
}

impl Config {
    pub(crate) fn new(jit: bool) -> Config {
        Config {
            jit,
            triple: None,
            opt_level: "speed".into(),
            flags: Vec::new(),
            imports: Imports::Default,
            addresses: Vec::new(),
            name: "simple".into(),
        }
    }
}

/// Builds the ISA: host (features detected) or a named triple, with the settings asked for.
/// A JIT module must run here: a requested CPU feature this host lacks is Error Unsupported.
pub(crate) fn make_isa(func: &'static str, c: &Config) -> RtResult<OwnedTargetIsa> {
    let mut sb = settings::builder();
    let set = |sb: &mut settings::Builder, k: &str, v: &str| target::set_shared(sb, k, v).map_err(|e| Error::internal(func, e));
    set(&mut sb, "opt_level", &c.opt_level)
        .map_err(|_| Error::invalid(func, "opt_level must be none, speed or speed_and_size", quote(&c.opt_level)))?;
    set(&mut sb, "is_pic", if c.jit { "false" } else { "true" })?;
    // The library verifies every function itself before compiling (with positions in the errors).
    set(&mut sb, "enable_verifier", "false")?;
    let host = target_lexicon::Triple::host();
    let (mut ib, native) = match &c.triple {
        None => (cranelift_native::builder().map_err(|e| Error::unsupported(func, e))?, true),
        Some(t) => {
            let tr: target_lexicon::Triple =
                t.parse().map_err(|e| Error::invalid(func, format!("bad target triple: {e}"), quote(t)))?;
            let native = tr == host;
            let b = if native {
                cranelift_native::builder().map_err(|e| Error::unsupported(func, e))?
            } else {
                isa::lookup(tr).map_err(|e| {
                    Error::new(Code::Unsupported, func, format!("no Cranelift backend in this build for that target: {e}"), quote(t))
                })?
            };
            (b, native)
        }
    };
    if c.jit && !native {
        return Err(Error::invalid(func, "a jit module runs on this host: give no target, or use kind \"object\"", quote(c.triple.as_deref().unwrap_or(""))));
    }
    for (k, v) in &c.flags {
        apply_setting(func, &mut ib, &mut sb, k, v)?;
    }
    let isa = ib
        .finish(settings::Flags::new(sb))
        .map_err(|e| Error::invalid(func, format!("Cranelift rejected these settings: {e}"), "flags"))?;
    if c.jit {
        let have = target::isa_features(&target::native_isa(func, settings::builder())?);
        for f in target::isa_features(&isa) {
            if !have.contains(&f) {
                return Err(Error::new(Code::Unsupported, func, "this CPU lacks a feature the settings ask for", &f).with("feature", f.as_str()));
            }
        }
    }
    Ok(isa)
}

extern "C" fn ceilf(x: f32) -> f32 { x.ceil() }
extern "C" fn ceil(x: f64) -> f64 { x.ceil() }
extern "C" fn floorf(x: f32) -> f32 { x.floor() }
extern "C" fn floor(x: f64) -> f64 { x.floor() }
extern "C" fn truncf(x: f32) -> f32 { x.trunc() }
extern "C" fn trunc(x: f64) -> f64 { x.trunc() }
extern "C" fn nearbyintf(x: f32) -> f32 { x.round_ties_even() }
extern "C" fn nearbyint(x: f64) -> f64 { x.round_ties_even() }
extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 { a.mul_add(b, c) }
extern "C" fn fma(a: f64, b: f64, c: f64) -> f64 { a.mul_add(b, c) }

/// The libcalls Cranelift may emit on x86_64, bound here (not looked up by name, so the
/// process need not have libm loaded globally).
fn libcalls() -> HashMap<String, usize> {
    let l: [(&str, usize); 14] = [
        ("ceilf", ceilf as *const () as usize),
        ("ceil", ceil as *const () as usize),
        ("floorf", floorf as *const () as usize),
        ("floor", floor as *const () as usize),
        ("truncf", truncf as *const () as usize),
        ("trunc", trunc as *const () as usize),
        ("nearbyintf", nearbyintf as *const () as usize),
        ("nearbyint", nearbyint as *const () as usize),
        ("fmaf", fmaf as *const () as usize),
        ("fma", fma as *const () as usize),
        ("memcpy", libc::memcpy as *const () as usize),
        ("memset", libc::memset as *const () as usize),
        ("memmove", libc::memmove as *const () as usize),
        ("memcmp", libc::memcmp as *const () as usize),
    ];
    l.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// A new module handle from a config.
pub(crate) fn new_module(func: &'static str, c: Config) -> RtResult<Value> {
    let isa = make_isa(func, &c)?;
    let mut table: HashMap<String, usize> = libcalls();
    table.extend(c.addresses.iter().cloned());
    let symbols: SymbolTable = Arc::new(Mutex::new(table));
    let (jit, obj) = if c.jit {
        let mut b = JITBuilder::with_isa(isa.clone(), cranelift_module::default_libcall_names());
        let table = symbols.clone();
        b.symbol_lookup_fn(Box::new(move |name| {
            table.lock().unwrap_or_else(|e| e.into_inner()).get(name).map(|a| *a as *const u8)
        }));
        (Some(JITModule::new(b)), None)
    } else {
        let b = ObjectBuilder::new(isa.clone(), c.name.as_bytes().to_vec(), cranelift_module::default_libcall_names())
            .map_err(|e| Error::invalid(func, format!("cannot make an object module: {e}"), quote(&c.name)))?;
        (None, Some(ObjectModule::new(b)))
    };
    let inner = Inner {
        jit,
        obj,
        emitted: false,
        isa,
        funcs: HashMap::new(),
        imports: HashMap::new(),
        allowed: c.imports,
        symbols,
        dirty: false,
        tramps: HashMap::new(),
        ctx: Context::new(),
        data_count: 0,
        broken: false,
    };
    Ok(new_handle(CgModule { inner: Mutex::new(inner), is_jit: c.jit }))
}

/// Makes a Cranelift module for JIT or AOT compilation.
///
/// Options (all optional): `kind` "jit" (default; needs `codegen.jit`) or "object";
/// `target` a triple (object modules; default the host); `opt_level` "none", "speed"
/// (default) or "speed_and_size"; `flags` a dict of Cranelift settings, shared or ISA
/// (`{"has_avx": true, "enable_llvm_abi_extensions": true}`; a JIT module refuses a CPU
/// feature this host lacks); `symbols` the host functions CLIF code may import: an array
/// of names (a function of a loaded rt library, else a symbol of the process) or a dict
/// name → address (int); `name` the object's name.
/// Returns a `cranelift_module` handle; `rt_handle_close` frees its code.
///
/// # Options
/// - kind (text, default "jit"): `kind` "jit" default
/// - target (text): `target` a triple object modules
/// - opt_level (text): `opt_level` "none", "speed" (default) or "speed_and_size"
/// - flags: `flags` a dict of Cranelift settings, shared or ISA `{"has_avx": true, "enable_llvm_abi_extensions": true}`
/// - symbols: the host functions CLIF code may import (array of names, or dict name -> address)
/// - name (text): `name` the object's name
///
/// # Errors
/// - InvalidArgument: option kind must be "jit" or "object"; option flags must be a dict of setting to bool, int or text; flag <k> must be a bool, int or text; symbols: address of <k> must be a non-zero int
/// - CapabilityDenied: the process policy refused
/// - Unsupported: no Cranelift backend in this build for that target; this CPU lacks a feature the settings ask for; no Cranelift backend for this host; Cranelift cannot target this host
#[rt_fn(scoped, tier = "empirical")]
pub fn rt_cranelift_init(opts: Opts) -> RtResult<Value> {
    opts.only(&["kind", "target", "opt_level", "flags", "symbols", "name"])?;
    let jit = match opts.text("kind")?.unwrap_or("jit") {
        "jit" => true,
        "object" => false,
        k => return Err(Error::invalid(FN, "option kind must be \"jit\" or \"object\"", quote(k))),
    };
    if jit {
        cap::check(FN, "codegen.jit", "")?;
    }
    let mut c = Config::new(jit);
    c.triple = opts.text("target")?.map(str::to_string);
    if let Some(o) = opts.text("opt_level")? {
        c.opt_level = o.to_string();
    }
    if let Some(n) = opts.text("name")? {
        c.name = n.to_string();
    }
    let flags = opts.get("flags");
    if !flags.is_nil() {
        if !flags.is_dict() {
            return Err(Error::invalid(FN, "option flags must be a dict of setting to bool, int or text", flags.describe()));
        }
        for (k, v) in flags.entries() {
            let k = k.as_text().unwrap_or("").to_string();
            let v = setting_text(v)
                .ok_or_else(|| Error::invalid(FN, format!("flag {k} must be a bool, int or text"), v.describe()))?;
            c.flags.push((k, v));
        }
    }
    let syms = opts.get("symbols");
    if syms.is_array() {
        c.imports = Imports::Names(opts.texts("symbols")?.unwrap_or_default());
    } else if syms.is_dict() {
        let mut names = Vec::new();
        for (k, v) in syms.entries() {
            let k = k.as_text().unwrap_or("").to_string();
            let a = v.as_int().filter(|a| *a != 0).ok_or_else(|| {
                Error::invalid(FN, format!("symbols: address of {k} must be a non-zero int"), v.describe())
            })?;
            c.addresses.push((k.clone(), a as usize));
            names.push(k);
        }
        c.imports = Imports::Names(names);
    } else if !syms.is_nil() {
        return Err(Error::invalid(FN, "option symbols must be an array of names or a dict name -> address", syms.describe()));
    }
    new_module(FN, c)
}

extern "C" {
    fn rt_registry_lookup(name: *const u8, n: usize, arity: *mut u32) -> *mut libc::c_void;
}

/// Address of an importable host symbol: a loaded rt library's function, else the process's.
pub(crate) fn lookup_host(name: &str) -> Option<usize> {
    let mut arity = 0u32;
    // SAFETY: core's bootstrap `rt_registry_lookup(const uint8_t *, size_t, uint32_t *)`,
    // declared above with that prototype: the name goes as pointer and length of a live
    // `&str` (no NUL needed) and `arity` is a writable u32 on this stack.
    let p = unsafe { rt_registry_lookup(name.as_ptr(), name.len(), &mut arity) };
    if !p.is_null() {
        return Some(p as usize);
    }
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: RTLD_DEFAULT is a valid pseudo-handle and `c` a NUL-terminated CString alive
    // for the call; only the address is taken, nothing is called here.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
    (!p.is_null()).then_some(p as usize)
}

/// The name a CLIF function is known by (`%fib` → `fib`, `u0:1` stays).
pub fn func_name(n: &UserFuncName) -> String {
    match n {
        UserFuncName::Testcase(t) => t.to_string().trim_start_matches('%').to_string(),
        UserFuncName::User(u) => format!("u{}:{}", u.namespace, u.index),
    }
}

impl Inner {
    /// FuncId of an import, declared on first use (resolved now for JIT modules, so
    /// finalizing never meets an unknown symbol).
    pub(crate) fn import(&mut self, func: &'static str, name: &str, sig: &Signature) -> RtResult<FuncId> {
        if let Some(id) = self.imports.get(name) {
            return Ok(*id);
        }
        let is_jit = self.jit.is_some();
        if is_jit || matches!(self.allowed, Imports::Names(_)) {
            let ok = match &self.allowed {
                Imports::Names(n) => n.iter().any(|x| x == name),
                Imports::Default => false,
            };
            if !ok {
                return Err(Error::not_found(
                    func,
                    "function is neither defined in this module nor declared in the symbols option",
                    quote(name),
                ));
            }
            if is_jit {
                let known = self.symbols.lock().unwrap_or_else(|e| e.into_inner()).contains_key(name);
                if !known {
                    let a = lookup_host(name)
                        .ok_or_else(|| Error::not_found(func, "symbol not found in the loaded rt libraries or the process", quote(name)))?;
                    self.symbols.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), a);
                }
            }
        }
        let id = self
            .module(func)?
            .declare_function(name, Linkage::Import, sig)
            .map_err(|e| module_error(func, name, e))?;
        self.imports.insert(name.to_string(), id);
        Ok(id)
    }

    /// Points the function's references to other functions at module ids (defined in this
    /// module, in `batch`, or imported).
    fn relink(&mut self, func: &'static str, f: &mut Function, batch: &HashMap<String, FnInfo>) -> RtResult<()> {
        let mut redo = Vec::new();
        for (r, ext) in f.dfg.ext_funcs.iter() {
            let name = match &ext.name {
                ExternalName::TestCase(t) => t.to_string().trim_start_matches('%').to_string(),
                ExternalName::User(u) => {
                    let u = &f.params.user_named_funcs()[*u];
                    format!("u{}:{}", u.namespace, u.index)
                }
                _ => continue,
            };
            let id = if let Some(i) = batch.get(&name).or_else(|| self.funcs.get(&name)) {
                i.id
            } else {
                let sig = f.dfg.signatures[ext.signature].clone();
                self.import(func, &name, &sig)?
            };
            redo.push((r, id, !batch.contains_key(&name) && !self.funcs.contains_key(&name)));
        }
        for (r, id, is_import) in redo {
            let n = f.params.ensure_user_func_name(UserExternalName { namespace: 0, index: id.as_u32() });
            f.dfg.ext_funcs[r].name = ExternalName::User(n);
            if is_import {
                f.dfg.ext_funcs[r].colocated = false;
            }
        }
        for (_, gv) in f.global_values.iter() {
            if let ir::GlobalValueData::Symbol { name, .. } = gv {
                return Err(Error::new(Code::Unsupported, func, "data symbols in CLIF text are not supported (use the builder's data objects)", format!("{name:?}")));
            }
        }
        Ok(())
    }

    /// Compiles parsed, verified functions; all or nothing: on failure none of them is callable.
    pub(crate) fn define_all(&mut self, func: &'static str, funcs: Vec<Function>) -> RtResult<Vec<String>> {
        self.module(func)?;
        let mut batch: HashMap<String, FnInfo> = HashMap::new();
        let mut names = Vec::with_capacity(funcs.len());
        for f in &funcs {
            let name = func_name(&f.name);
            if self.funcs.contains_key(&name) || batch.contains_key(&name) || self.imports.contains_key(&name) {
                return Err(Error::new(Code::AlreadyExists, func, "a function of that name is already in the module", quote(&name)));
            }
            let id = self
                .module(func)?
                .declare_function(&name, Linkage::Export, &f.signature)
                .map_err(|e| module_error(func, &name, e))?;
            batch.insert(name.clone(), FnInfo { id, sig: f.signature.clone() });
            names.push(name);
        }
        for f in &funcs {
            abi_precheck(func, f, &self.isa)?;
        }
        let mut failed = None;
        let mut defined = Vec::new();
        for (mut f, name) in funcs.into_iter().zip(names.iter()) {
            if let Err(e) = self.relink(func, &mut f, &batch) {
                failed = Some(e);
                break;
            }
            let id = batch[name].id;
            if let Err(e) = self.define(func, id, f) {
                failed = Some(e);
                break;
            }
            defined.push(name.clone());
        }
        if let Some(e) = failed {
            // Declared but not compiled: give each a body that traps, so the module stays
            // consistent (nothing refers to a missing symbol); none of the batch is callable.
            for name in &names {
                if !defined.contains(name) {
                    let info = &batch[name];
                    let mut f = Function::with_name_signature(UserFuncName::default(), info.sig.clone());
                    trap_body(&mut f);
                    let _ = self.define(func, info.id, f);
                }
            }
            self.dirty = true;
            return Err(e);
        }
        for (n, i) in batch {
            self.funcs.insert(n, i);
        }
        self.dirty = true;
        Ok(names)
    }

    /// Compiles one function under `id` (the context is reused between functions).
    pub(crate) fn define(&mut self, func: &'static str, id: FuncId, f: Function) -> RtResult<()> {
        let name = func_name(&f.name);
        self.ctx.clear();
        self.ctx.func = f;
        let ctx = &mut self.ctx;
        let m: &mut dyn Module = if let Some(m) = self.jit.as_mut() {
            m
        } else if let Some(m) = self.obj.as_mut() {
            m
        } else {
            return Err(Error::plain(Code::Closed, func, "the object module was emitted already; make a new module"));
        };
        let r = m.define_function(id, ctx);
        ctx.clear();
        self.dirty = true;
        r.map_err(|e| module_error(func, &name, e))
    }

    /// Finalizes pending JIT definitions.
    pub(crate) fn finalize(&mut self, func: &'static str) -> RtResult<()> {
        if self.dirty {
            if self.broken {
                return Err(Error::internal(func, "the module failed to finalize earlier; make a new module"));
            }
            if let Some(m) = self.jit.as_mut() {
                // Imports are resolved before compiling; a symbol Cranelift still cannot
                // resolve makes it panic: the module is then unusable, not the process.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.finalize_definitions()));
                match r {
                    Ok(r) => r.map_err(|e| module_error(func, "module", e))?,
                    Err(p) => {
                        self.broken = true;
                        let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
                        return Err(Error::internal(func, format!("finalizing the module failed: {msg}")));
                    }
                }
            }
            self.dirty = false;
        }
        Ok(())
    }

    fn jit_fn(&mut self, func: &'static str, name: &str) -> RtResult<FnInfo> {
        if self.jit.is_none() {
            return Err(Error::invalid(func, "an object module cannot run code: make it with kind \"jit\"", quote(name)));
        }
        self.funcs
            .get(name)
            .cloned()
            .ok_or_else(|| Error::not_found(func, "no function of that name in the module", quote(name)))
    }

    /// Address of a defined JIT function (finalizing first).
    pub(crate) fn address(&mut self, func: &'static str, name: &str) -> RtResult<usize> {
        let info = self.jit_fn(func, name)?;
        self.finalize(func)?;
        Ok(self.jit.as_ref().map(|m| m.get_finalized_function(info.id) as usize).unwrap_or(0))
    }

    /// (trampoline, signature) for executing `name`, compiling the trampoline on first use.
    fn trampoline(&mut self, func: &'static str, name: &str) -> RtResult<(usize, Signature)> {
        let info = self.jit_fn(func, name)?;
        if let Some((t, _)) = self.tramps.get(name) {
            return Ok((*t, info.sig));
        }
        convert::check_signature(func, name, &info.sig)?;
        let ptr = self.isa.pointer_type();
        let cc = self.isa.default_call_conv();
        let tsig = convert::trampoline_signature(ptr, cc);
        let m = self.jit.as_mut().ok_or_else(|| Error::internal(func, "no jit module"))?;
        let tid = m.declare_anonymous_function(&tsig).map_err(|e| module_error(func, name, e))?;
        let mut f = Function::with_name_signature(UserFuncName::default(), tsig);
        let callee = m.declare_func_in_func(info.id, &mut f);
        convert::build_trampoline(&mut f, &info.sig, callee, ptr);
        self.ctx.clear();
        self.ctx.func = f;
        let r = m.define_function(tid, &mut self.ctx);
        self.ctx.clear();
        r.map_err(|e| module_error(func, name, e))?;
        self.dirty = true;
        self.finalize(func)?;
        let m = self.jit.as_ref().ok_or_else(|| Error::internal(func, "no jit module"))?;
        let t = m.get_finalized_function(tid) as usize;
        let a = m.get_finalized_function(info.id) as usize;
        self.tramps.insert(name.to_string(), (t, a));
        Ok((t, info.sig))
    }
}

/// Refuses what Cranelift's x86_64 ABI code would panic on: i128 parameters or results
/// (in any signature the function uses) without `enable_llvm_abi_extensions`, outside the
/// tail calling convention.
pub(crate) fn abi_precheck(func: &'static str, f: &Function, isa: &OwnedTargetIsa) -> RtResult<()> {
    if isa.flags().enable_llvm_abi_extensions() {
        return Ok(());
    }
    let sigs = std::iter::once(&f.signature).chain(f.dfg.signatures.values());
    for s in sigs {
        if s.call_conv == isa::CallConv::Tail {
            continue;
        }
        for p in s.params.iter().chain(s.returns.iter()) {
            let t = p.value_type;
            if t.bits() > 64 && !t.is_vector() && !t.is_float() {
                return Err(Error::new(
                    Code::Unsupported,
                    func,
                    format!("{t} parameters or results need the flag enable_llvm_abi_extensions on x86_64"),
                    format!("function {}", func_name(&f.name)),
                ));
            }
        }
    }
    Ok(())
}

/// A body that traps (for functions declared but not compiled).
fn trap_body(f: &mut Function) {
    use cranelift_codegen::cursor::{Cursor, FuncCursor};
    use cranelift_codegen::ir::InstBuilder;
    let b = f.dfg.make_block();
    for p in f.signature.params.clone() {
        f.dfg.append_block_param(b, p.value_type);
    }
    f.layout.append_block(b);
    let mut cur = FuncCursor::new(f).at_bottom(b);
    cur.ins().trap(ir::TrapCode::unwrap_user(1));
}

/// An Error from a Cranelift module error: verifier errors are Parse, unsupported code
/// Unsupported, limits LimitExceeded.
pub(crate) fn module_error(func: &'static str, name: &str, e: ModuleError) -> Error {
    match e {
        ModuleError::Compilation(CodegenError::Verifier(v)) => {
            Error::new(Code::Parse, func, format!("verifier: {v}"), format!("function {name}"))
        }
        ModuleError::Compilation(CodegenError::Unsupported(s)) => {
            Error::new(Code::Unsupported, func, format!("Cranelift cannot compile this here: {s}"), format!("function {name}"))
        }
        ModuleError::Compilation(CodegenError::ImplLimitExceeded) | ModuleError::Compilation(CodegenError::CodeTooLarge) => {
            Error::new(Code::LimitExceeded, func, "function exceeds Cranelift's limits", format!("function {name}"))
        }
        ModuleError::Compilation(CodegenError::Regalloc(r)) => {
            Error::new(Code::Unsupported, func, format!("register allocation failed: {r:?}"), format!("function {name}"))
        }
        ModuleError::DuplicateDefinition(n) | ModuleError::IncompatibleDeclaration(n) => {
            Error::new(Code::AlreadyExists, func, "a symbol of that name is already declared differently", quote(&n))
        }
        ModuleError::IncompatibleSignature(n, a, b) => {
            Error::new(Code::InvalidArgument, func, format!("signature {b} differs from the declared {a}"), quote(&n))
        }
        other => Error::new(Code::Internal, func, format!("Cranelift module error: {other}"), format!("function {name}")),
    }
}

/// Parses CLIF text (host calling convention by default) and verifies every function.
pub(crate) fn parse_verified(func: &'static str, text: &str, isa: &OwnedTargetIsa) -> RtResult<Vec<Function>> {
    let opts = cranelift_reader::ParseOptions { default_calling_convention: isa.default_call_conv(), ..Default::default() };
    let body = strip_preamble(text);
    let tf = cranelift_reader::parse_test(&body, opts).map_err(|e| {
        let line = e.location.line_number;
        Error::new(Code::Parse, func, format!("CLIF line {line}: {}", e.message), clip_line(text, line))
            .with("line", line)
            .with("column", 1usize)
    })?;
    if tf.functions.is_empty() {
        return Err(Error::parse(func, "no function in the CLIF text", quote(text)));
    }
    let mut out = Vec::with_capacity(tf.functions.len());
    for (f, details) in tf.functions {
        if let Err(errs) = cranelift_codegen::verify_function(&f, isa.as_ref()) {
            let first = &errs.0[0];
            let line = details.map.location(first.location).map(|l| l.line_number).unwrap_or(details.location.line_number);
            let src = text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            let ent = first.location.to_string();
            let col = src.find(&ent).map(|c| c + 1).unwrap_or(1);
            let name = func_name(&f.name);
            return Err(Error::new(
                Code::Parse,
                func,
                format!("verifier, function {name}, line {line} column {col}: {errs}"),
                quote(src.trim()),
            )
            .with("line", line)
            .with("column", col));
        }
        out.push(f);
    }
    Ok(out)
}

/// The text with its test-runner preamble (`test`, `set`, `target`, `feature` lines before
/// the first function) blanked, line numbers kept: a module's settings come from its options.
pub fn strip_preamble(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut body = false;
    for line in text.split_inclusive('\n') {
        let l = line.trim_start();
        if !body && l.starts_with("function") {
            body = true;
        }
        let skip = !body && ["test ", "set ", "target ", "feature "].iter().any(|p| l.starts_with(p));
        if skip {
            out.push('\n');
        } else {
            out.push_str(line);
        }
    }
    out
}

fn clip_line(text: &str, line: usize) -> String {
    quote(text.lines().nth(line.saturating_sub(1)).unwrap_or("").trim())
}

/// Compiles CLIF text (one or more functions) into the module; returns the names
/// defined. Every function is verified first: a parse or verifier failure is Error Parse
/// with `details.line`/`column` and the verifier's message. Functions may call each other
/// and import the host functions named in the module's `symbols` option.
/// Example (the `rt demo` codegen step): `m = rt_cranelift_init(nil)`; compiling the CLIF
/// lines `function %add(i64, i64) -> i64 {` / `block0(v0: i64, v1: i64):` / `v2 = iadd v0, v1` /
/// `return v2` / `}` gives `["add"]`; `rt_cranelift_jit_execute(m, "add", [40, 2])` is 42; a C
/// host casts `rt_int_get(rt_cranelift_function_address(m, "add"))` to
/// `int64_t (*)(int64_t, int64_t)` and calls it directly (tests/tests/c_codegen.rs).
///
/// # Errors
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - Parse: CLIF line <line>: …; no function in the CLIF text; verifier, function <name>, line <line> column <col>
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `module` was closed
#[rt_fn(scoped, tier = "verified")]
pub fn rt_cranelift_compile_fn(module: Handle<CgModule>, clif_text: &str) -> RtResult<Vec<String>> {
    if module.is_jit {
        cap::check(FN, "codegen.jit", "")?;
    }
    let mut m = module.lock();
    let funcs = parse_verified(FN, clif_text, &m.isa)?;
    m.define_all(FN, funcs)
}

/// Runs a JIT-compiled function: `args` (an array) converted by its signature (i8..i64
/// from ints in the type's signed or unsigned range, f32/f64 from floats or ints,
/// vectors from arrays of lanes); the result is the value (ints sign-extended), an array
/// for several results, nil for none. A wrong argument count or kind is an Error and no
/// call is made; i128/f16/f128 are Error Unsupported. Finalizes the module on first use.
/// Needs `codegen.jit`. A trap in the code (e.g. division by zero) kills the process.
///
/// # Errors
/// - InvalidArgument: function <name> takes … arguments, got <n>
/// - NotFound: what it names does not exist
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `module` was closed
/// - OutOfRange: … does not fit <ty> (<lo>..=<hi>)
#[rt_fn(cap = "codegen.jit", tier = "verified")]
pub fn rt_cranelift_jit_execute(module: Handle<CgModule>, name: &str, args: Array) -> RtResult<Value> {
    let (tramp, sig) = module.lock().trampoline(FN, name)?;
    execute_with(FN, tramp, &sig, name, args.0)
}

/// Converts, calls through the trampoline, converts back.
pub(crate) fn execute_with(func: &'static str, tramp: usize, sig: &Signature, name: &str, args: Value) -> RtResult<Value> {
    let n = args.len();
    if n != sig.params.len() {
        return Err(Error::new(
            Code::InvalidArgument,
            func,
            format!("function {name} takes {} arguments, got {n}", sig.params.len()),
            format!("signature {sig}"),
        ));
    }
    let slots = sig.params.len().max(sig.returns.len()).max(1);
    let mut small = [Slot::default(); 8];
    let mut big = Vec::new();
    let buf: &mut [Slot] = if slots <= 8 {
        &mut small[..slots]
    } else {
        big.resize(slots, Slot::default());
        &mut big
    };
    for (i, p) in sig.params.iter().enumerate() {
        convert::arg_in(func, i, p.value_type, args.at(i), &mut buf[i])?;
    }
    // SAFETY: the trampoline was compiled for exactly this signature; every slot it reads
    // was checked and written above, and it writes at most `returns.len()` slots.
    unsafe {
        let f: Tramp = std::mem::transmute::<usize, Tramp>(tramp);
        let p = buf.as_mut_ptr();
        f(p, p);
    }
    match sig.returns.len() {
        0 => Ok(Value::NIL),
        1 => convert::ret_out(sig.returns[0].value_type, &buf[0]),
        k => {
            let mut a = ffi_sdk::ArrayBuilder::new(k)?;
            for (j, r) in sig.returns.iter().enumerate() {
                a.push(convert::ret_out(r.value_type, &buf[j])?)?;
            }
            Ok(a.finish())
        }
    }
}

/// The address of a JIT-compiled function (finalizing the module first), as an int a host
/// can cast to the function's C type and call directly (the signature is the CLIF one, host
/// calling convention by default). Valid until the module is closed. Needs `codegen.jit`.
///
/// # Errors
/// - Closed: `module` was closed
#[rt_fn(cap = "codegen.jit", tier = "empirical")]
pub fn rt_cranelift_function_address(module: Handle<CgModule>, name: &str) -> RtResult<i64> {
    Ok(module.lock().address(FN, name)? as i64)
}

/// Writes an object module's code as an ELF object file to `path` (needs `fs.write` for
/// it; the file is replaced atomically), ready for `cc main.c obj.o`. Defined functions
/// are exported under their CLIF names. The module is finished by this: further compiles
/// are Error Closed. Returns true.
///
/// # Errors
/// - InvalidArgument: a jit module has no object file: make the module with kind "object"; the destination is a directory, not a file; path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Closed: the object module was emitted already; `module` was closed
#[rt_fn(cap = "fs.write", scoped, blocking, tier = "verified")]
pub fn rt_cranelift_emit_object(module: Handle<CgModule>, path: &str) -> RtResult<bool> {
    let t = beneath::resolve(FN, "fs.write", path, beneath::Follow::Yes)?;
    // The destination is checked and its temporary made (ffi_sdk::atomic_file: a directory,
    // a symlink that appeared since the walk, or, scoped, a file with other hard links is
    // refused) before the module is finished, so a refusal leaves the module usable.
    let mut out = ffi_sdk::atomic_file::AtomicFile::create(FN, &t, path, 0o666)?;
    let mut m = module.lock();
    if m.jit.is_some() {
        return Err(Error::invalid(FN, "a jit module has no object file: make the module with kind \"object\"", quote(path)));
    }
    let obj = m.obj.take().ok_or_else(|| Error::plain(Code::Closed, FN, "the object module was emitted already"))?;
    m.emitted = true;
    let bytes = obj
        .finish()
        .emit()
        .map_err(|e| Error::new(Code::Internal, FN, format!("cannot write the object: {e}"), quote(path)))?;
    let f = out.file.as_mut().ok_or_else(|| Error::internal(FN, "output file missing"))?;
    std::io::Write::write_all(f, &bytes).map_err(|e| t.err(&e))?;
    out.commit().map_err(|e| t.err(&e))?;
    Ok(true)
}

fn quote(s: &str) -> String {
    ffi_sdk::error::quote(s)
}
