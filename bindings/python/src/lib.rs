//! `simple_rt._native`: the Python package's native core (PyO3).
//!
//! - Functions are found at run time through the registry
//!   (`rt_registry_lookup`: address and arity; every domain function takes
//!   0-8 `RtValue` words and returns one), so this extension knows no domain.
//! - Values convert between runtime words and Python objects here, in one
//!   pass, with no foreign call per node (`to_py` reads the runtime's objects
//!   through `ffi_sdk::Value`; `from_py` builds them with `ArrayBuilder` and
//!   dict pairs).
//! - Collector rules (docs/CONCURRENCY.md): the calling thread is registered
//!   with the collector only inside a call (`rt_thread_attach` ...
//!   `rt_thread_detach`); while attached, every word lives in a Rust local (on
//!   the stack or in a register of a registered thread, which the collector
//!   scans); a word a Python object keeps (`Handle`) is pinned for the
//!   object's life.
//! - The GIL is released while a blocking function runs (and whenever a
//!   handle or callable is passed: a library thread may need the GIL to run a
//!   callback); a non-blocking call with plain data keeps it (cheaper).
//! - Python callables become Callback handles (`rt_callback_new`): one
//!   trampoline per arity, `user_data` a boxed `Py<PyAny>` released by the
//!   callback's release function; results are returned pinned
//!   (RT_CALLBACK_RESULT_PINNED), exceptions become Error values.

#![deny(clippy::undocumented_unsafe_blocks)]

mod json;
mod value;

use ffi_sdk::abi::{self, Kind, RtValue};
use ffi_sdk::value::{ArrayBuilder, Value};
use pyo3::exceptions::{PyAttributeError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

extern "C" {
    fn rt_thread_attach() -> u32;
    fn rt_thread_detach() -> u32;
    fn rt_registry_lookup(name: *const u8, n: usize, arity: *mut u32) -> *mut c_void;
    fn rt_registry_json() -> RtValue;
    fn rt_error_code(v: RtValue) -> u32;
    fn rt_error_message(v: RtValue) -> RtValue;
    fn rt_callback_new(func: *mut c_void, user_data: *mut c_void) -> RtValue;
    fn rt_callback_new2(func: *mut c_void, user_data: *mut c_void) -> RtValue;
    fn rt_callback_on_release(cb: RtValue, release: *mut c_void) -> RtValue;
    fn rt_callback_set_flags(cb: RtValue, flags: u32) -> RtValue;
    fn rt_int_get(v: RtValue) -> i64;
    fn rt_float_get(v: RtValue) -> f64;
    fn rt_value_valid(v: RtValue) -> bool;
}

pub(crate) const MAX_DEPTH: usize = 512;
const CODE_INVALID: u32 = 1;
const CODE_TYPE: u32 = 2;
const CODE_CLOSED: u32 = 11;
const CODE_PANIC: u32 = 12;

/// Python hooks set once by the package: the exception factory
/// `(code, message, details) -> RtError` and the callable converter
/// `(callable) -> Handle` (it picks the arity).
pub(crate) struct Hooks {
    pub(crate) error: Py<PyAny>,
    callable: Py<PyAny>,
    rt_error: Py<PyAny>,
}
static HOOKS: OnceLock<Hooks> = OnceLock::new();

/// Registered with the collector for one scope (nests).
pub(crate) struct Attached;
impl Attached {
    #[inline]
    pub(crate) fn new() -> Attached {
        // SAFETY: core's `uint32_t rt_thread_attach(void)`, declared with that type above: no
        // arguments, no memory shared; it nests, and this guard's drop is the matching detach.
        unsafe { rt_thread_attach() };
        Attached
    }
}
impl Drop for Attached {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: core's `uint32_t rt_thread_detach(void)`: no arguments; it ends the attach this
        // guard made (guards drop in reverse order, so depths stay matched). Words made while
        // attached are dead or pinned by now (module docs).
        unsafe { rt_thread_detach() };
    }
}

// ---------------------------------------------------------------- Handle

/// An opaque native resource (regex, child process, file lock, callback...).
/// The word stays pinned while this object lives, so it stays valid after
/// `close()` (use after close gives Error Closed, never a crash).
#[pyclass(subclass, weakref, module = "simple_rt", name = "Handle")]
pub struct Handle {
    word: AtomicU64,
}

impl Handle {
    fn new_pinned(w: RtValue) -> Handle {
        // SAFETY: callers run attached and pass a handle word they hold in a local (a call's
        // result or an item of one), so it is a live runtime value as `rt_value_pin` requires;
        // the pin is dropped exactly once, by this Handle's drop.
        unsafe { abi::rt_value_pin(w) };
        Handle { word: AtomicU64::new(w) }
    }
    fn raw(&self) -> RtValue {
        self.word.load(Ordering::Relaxed)
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let w = *self.word.get_mut();
        if w != abi::NIL {
            // SAFETY: `w` was pinned once by `new_pinned` and is still pinned (so still alive);
            // this is the one matching unpin (drop runs once).
            unsafe { abi::rt_value_unpin(w) };
        }
    }
}

#[pymethods]
impl Handle {
    /// The runtime word (pinned while this object lives).
    #[getter]
    fn word(&self) -> u64 {
        self.raw()
    }
    /// The handle's type name (`Regex`, `Child`, ...).
    #[getter(r#type)]
    fn type_(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        call_name(slf.py(), "rt_handle_type", &[slf.as_any().clone()])
    }
    #[getter]
    fn is_open(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        call_name(slf.py(), "rt_handle_is_open", &[slf.as_any().clone()])
    }
    /// Releases the resource now; True if it was open, False if it was closed already.
    fn close(slf: &Bound<'_, Self>) -> PyResult<Py<PyAny>> {
        call_name(slf.py(), "rt_handle_close", &[slf.as_any().clone()])
    }
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }
    #[pyo3(signature = (*_exc))]
    fn __exit__(slf: &Bound<'_, Self>, _exc: &Bound<'_, PyTuple>) -> PyResult<bool> {
        Handle::close(slf)?;
        Ok(false)
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Handle>().map(|o| o.borrow().raw() == self.raw()).unwrap_or(false)
    }
    fn __hash__(&self) -> u64 {
        self.raw() >> 3
    }
    fn __repr__(slf: &Bound<'_, Self>) -> String {
        let t = Handle::type_(slf).ok().map(|t| t.to_string()).unwrap_or_else(|| "?".into());
        let open = match Handle::is_open(slf) {
            Ok(o) => {
                if o.bind(slf.py()).is_truthy().unwrap_or(false) {
                    "open"
                } else {
                    "closed"
                }
            }
            Err(_) => "?",
        };
        format!("<simple_rt.Handle {t} {open} {:#x}>", slf.borrow().raw())
    }
}

/// A Callback handle running a Python callable on library threads.
#[pyclass(extends = Handle, module = "simple_rt", name = "Callback")]
pub struct Callback {
    #[pyo3(get)]
    r#fn: Py<PyAny>,
}

#[pymethods]
impl Callback {
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        self.r#fn.call1(py, args)
    }
}

// ------------------------------------------------------------ conversion

pub(crate) fn hooks() -> PyResult<&'static Hooks> {
    HOOKS.get().ok_or_else(|| PyRuntimeError::new_err("simple_rt._native: set_hooks was not called"))
}

/// The exception object for an Error word (the thread is attached).
fn error_obj(py: Python<'_>, w: RtValue) -> PyResult<Py<PyAny>> {
    let v = Value::from_raw(w);
    // SAFETY: core's `uint32_t rt_error_code(RtValue)`: `w` is an Error word the caller keeps
    // reachable while attached (this function's contract); by value, nothing shared.
    let code = unsafe { rt_error_code(w) };
    // SAFETY: core's `RtValue rt_error_message(RtValue)` on the same live Error word; the text
    // it returns is held in `m`, on this attached thread's stack, while it is read.
    let m = Value::from_raw(unsafe { rt_error_message(w) });
    let msg = m.as_text().unwrap_or("").to_string();
    let d = v.error_details();
    let details = to_py(py, d.raw(), 0)?;
    hooks()?.error.call1(py, (code, msg, details))
}

pub(crate) fn error_err(py: Python<'_>, w: RtValue) -> PyErr {
    match error_obj(py, w) {
        Ok(o) => PyErr::from_value(o.into_bound(py)),
        Err(e) => e,
    }
}

/// Dict keys made during one conversion, by content (a direct-mapped cache:
/// documents repeat their keys, and one Python string per distinct key saves
/// the decoding and the memory).
struct KeyCache {
    slots: Vec<Option<(Box<[u8]>, Py<PyAny>)>>,
}

const KEY_SLOTS: usize = 1024;
const KEY_MAX: usize = 64;

impl KeyCache {
    fn new() -> KeyCache {
        KeyCache { slots: Vec::new() }
    }
    fn key(&mut self, py: Python<'_>, s: &str) -> Py<PyAny> {
        let b = s.as_bytes();
        if b.len() > KEY_MAX {
            return PyString::new(py, s).into_any().unbind();
        }
        if self.slots.is_empty() {
            self.slots.resize_with(KEY_SLOTS, || None);
        }
        let mut h: u64 = 0xcbf29ce484222325;
        for &c in b {
            h = (h ^ c as u64).wrapping_mul(0x100000001b3);
        }
        let slot = &mut self.slots[(h as usize) & (KEY_SLOTS - 1)];
        if let Some((k, v)) = slot {
            if **k == *b {
                return v.clone_ref(py);
            }
        }
        let v = PyString::intern(py, s).into_any().unbind();
        *slot = Some((b.into(), v.clone_ref(py)));
        v
    }
}

/// A runtime word as a Python object, in one pass (the thread is attached
/// and `w` is reachable: an argument, a call's result in a local, or pinned).
pub(crate) fn to_py(py: Python<'_>, w: RtValue, depth: usize) -> PyResult<Py<PyAny>> {
    to_py_in(py, w, depth, &mut KeyCache::new())
}

fn to_py_in(py: Python<'_>, w: RtValue, depth: usize, keys: &mut KeyCache) -> PyResult<Py<PyAny>> {
    match w & abi::TAG_MASK {
        abi::TAG_INT => return Ok(((w as i64) >> 3).into_pyobject(py)?.into_any().unbind()),
        abi::TAG_FLOAT => return Ok(PyFloat::new(py, f64::from_bits(w & !abi::TAG_MASK)).into_any().unbind()),
        _ => {}
    }
    if w == abi::NIL {
        return Ok(py.None());
    }
    if w == abi::TRUE {
        return Ok(PyBool::new(py, true).to_owned().into_any().unbind());
    }
    if w == abi::FALSE {
        return Ok(PyBool::new(py, false).to_owned().into_any().unbind());
    }
    let v = Value::from_raw(w);
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("simple_rt: value nested too deeply to convert"));
    }
    Ok(match v.kind() {
        Kind::String => PyString::new(py, v.as_text().unwrap_or("")).into_any().unbind(),
        Kind::Bytes => PyBytes::new(py, v.as_bytes().unwrap_or(&[])).into_any().unbind(),
        // SAFETY: core's `int64_t rt_int_get(RtValue)`; `w` is a live int (kind checked), by value.
        Kind::Int => unsafe { rt_int_get(w) }.into_pyobject(py)?.into_any().unbind(),
        // SAFETY: core's `double rt_float_get(RtValue)`; `w` is a live float, by value.
        Kind::Float => PyFloat::new(py, unsafe { rt_float_get(w) }).into_any().unbind(),
        Kind::Array => {
            let items = v.array_items();
            let mut out: Vec<Py<PyAny>> = Vec::with_capacity(items.len());
            for i in 0..items.len() {
                out.push(to_py_in(py, items.item(i).raw(), depth + 1, keys)?);
            }
            PyList::new(py, out)?.into_any().unbind()
        }
        Kind::Dict => {
            let d = PyDict::new(py);
            let items = v.dict_entries();
            for i in 0..items.len() {
                let (k, x) = items.entry(i);
                let mut key = match k.as_text() {
                    Some(t) => keys.key(py, t),
                    None => to_py_in(py, k.raw(), depth + 1, keys)?,
                };
                // Unhashable keys as tuples (a list's items, a dict's items).
                if let Ok(l) = key.bind(py).cast::<PyList>() {
                    key = l.to_tuple().into_any().unbind();
                } else if let Ok(kd) = key.bind(py).cast::<PyDict>() {
                    key = kd.items().to_tuple().into_any().unbind();
                }
                d.set_item(key, to_py_in(py, x.raw(), depth + 1, keys)?)?;
            }
            d.into_any().unbind()
        }
        Kind::Error => error_obj(py, w)?,
        Kind::Handle => Py::new(py, Handle::new_pinned(w))?.into_any(),
        _ => py.None(),
    })
}

fn err_kind(what: &str, x: &Bound<'_, PyAny>) -> PyErr {
    let t = x.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("simple_rt: cannot convert {t} to a runtime value ({what})"))
}

/// A Python object as a runtime word (the thread is attached; the word
/// must be kept in a local or a collector-visible slot by the caller).
pub(crate) fn from_py(x: &Bound<'_, PyAny>, depth: usize) -> PyResult<RtValue> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err("simple_rt: value nested too deeply to convert"));
    }
    if x.is_none() {
        return Ok(abi::NIL);
    }
    if let Ok(s) = x.cast_exact::<PyString>() {
        let t = s.to_str()?;
        return Ok(Value::text(t).raw());
    }
    if let Ok(b) = x.cast_exact::<PyBool>() {
        return Ok(if b.is_true() { abi::TRUE } else { abi::FALSE });
    }
    if x.is_instance_of::<PyInt>() {
        if x.is_instance_of::<PyBool>() {
            return Ok(if x.is_truthy()? { abi::TRUE } else { abi::FALSE });
        }
        let i: i64 = x.extract().map_err(|_| {
            pyo3::exceptions::PyOverflowError::new_err("simple_rt: int out of the 64-bit range")
        })?;
        return Ok(Value::int(i).raw());
    }
    if let Ok(f) = x.cast::<PyFloat>() {
        return Ok(Value::float(f.value()).raw());
    }
    if let Ok(s) = x.cast::<PyString>() {
        return Ok(Value::text(s.to_str()?).raw());
    }
    if let Ok(b) = x.cast::<PyBytes>() {
        return Ok(Value::bytes(b.as_bytes()).raw());
    }
    if let Ok(l) = x.cast::<PyList>() {
        let mut ab = ArrayBuilder::new(l.len()).map_err(|e| PyRuntimeError::new_err(e.message))?;
        for i in 0..l.len() {
            let it = l.get_item(i)?;
            let w = from_py(&it, depth + 1)?;
            ab.push(Value::from_raw(w)).map_err(|e| PyRuntimeError::new_err(e.message))?;
        }
        return Ok(ab.finish().raw());
    }
    if let Ok(d) = x.cast::<PyDict>() {
        let out = Value::dict_with_capacity(d.len());
        for (k, v) in d.iter() {
            if k.is_instance_of::<PyTuple>() {
                return Err(err_kind("a dict key must be None, bool, int, float, str or bytes", &k));
            }
            let kw = from_py(&k, depth + 1)?;
            let vw = from_py(&v, depth + 1)?;
            out.set_value(Value::from_raw(kw), Value::from_raw(vw)).map_err(|e| PyValueError::new_err(e.message))?;
        }
        return Ok(out.raw());
    }
    if let Ok(t) = x.cast::<PyTuple>() {
        let mut ab = ArrayBuilder::new(t.len()).map_err(|e| PyRuntimeError::new_err(e.message))?;
        for it in t.iter() {
            let w = from_py(&it, depth + 1)?;
            ab.push(Value::from_raw(w)).map_err(|e| PyRuntimeError::new_err(e.message))?;
        }
        return Ok(ab.finish().raw());
    }
    if let Ok(h) = x.cast::<Handle>() {
        return Ok(h.borrow().raw());
    }
    if let Ok(v) = x.cast::<value::PyValue>() {
        return Ok(v.get().raw());
    }
    if let Ok(b) = x.cast::<PyByteArray>() {
        // SAFETY: no Python code runs while the bytes are copied (the GIL is
        // held), so the bytearray cannot be resized under the borrow.
        return Ok(Value::bytes(unsafe { b.as_bytes() }).raw());
    }
    if x.is_instance_of::<pyo3::types::PyMemoryView>() {
        let b: Vec<u8> = x.call_method0("tobytes")?.extract()?;
        return Ok(Value::bytes(&b).raw());
    }
    if x.is_callable() {
        let h = hooks()?.callable.call1(x.py(), (x,))?;
        let h = h.bind(x.py());
        if let Ok(h) = h.cast::<Handle>() {
            return Ok(h.borrow().raw());
        }
        return Err(err_kind("the callable converter returned no Handle", x));
    }
    Err(err_kind("expected None, bool, int, float, str, bytes, list, tuple, dict or Handle", x))
}

// ------------------------------------------------------------------ calls

type F0 = unsafe extern "C" fn() -> RtValue;
type F1 = unsafe extern "C" fn(RtValue) -> RtValue;
type F2 = unsafe extern "C" fn(RtValue, RtValue) -> RtValue;
type F3 = unsafe extern "C" fn(RtValue, RtValue, RtValue) -> RtValue;
type F4 = unsafe extern "C" fn(RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F5 = unsafe extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F6 = unsafe extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F7 = unsafe extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;
type F8 = unsafe extern "C" fn(RtValue, RtValue, RtValue, RtValue, RtValue, RtValue, RtValue, RtValue) -> RtValue;

/// Calls `addr` (a domain function of `arity` words) with `a`.
#[inline]
unsafe fn invoke(addr: usize, arity: usize, a: &[RtValue; 8]) -> RtValue {
    let p = addr as *const c_void;
    match arity {
        0 => std::mem::transmute::<*const c_void, F0>(p)(),
        1 => std::mem::transmute::<*const c_void, F1>(p)(a[0]),
        2 => std::mem::transmute::<*const c_void, F2>(p)(a[0], a[1]),
        3 => std::mem::transmute::<*const c_void, F3>(p)(a[0], a[1], a[2]),
        4 => std::mem::transmute::<*const c_void, F4>(p)(a[0], a[1], a[2], a[3]),
        5 => std::mem::transmute::<*const c_void, F5>(p)(a[0], a[1], a[2], a[3], a[4]),
        6 => std::mem::transmute::<*const c_void, F6>(p)(a[0], a[1], a[2], a[3], a[4], a[5]),
        7 => std::mem::transmute::<*const c_void, F7>(p)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]),
        _ => std::mem::transmute::<*const c_void, F8>(p)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]),
    }
}

fn lookup(name: &str) -> Option<(usize, usize)> {
    let mut arity = 0u32;
    // SAFETY: core's `void *rt_registry_lookup(const uint8_t *, size_t, uint32_t *)`: `name` is a
    // live str read for `name.len()` bytes during the call (no NUL needed), `&mut arity` a live
    // out-parameter; NULL means not found.
    let p = unsafe { rt_registry_lookup(name.as_ptr(), name.len(), &mut arity) };
    if p.is_null() {
        None
    } else {
        Some((p as usize, arity as usize))
    }
}

/// Text and bytes arguments from this size on release the GIL for the call
/// even when the function does not block: the work is proportional to them
/// (hashing 100 MB takes a while), and other Python threads run meanwhile.
const LARGE_ARG: usize = 64 << 10;

fn large_text(s: &Bound<'_, PyString>) -> bool {
    // Characters, not bytes: a cheap lower bound of the UTF-8 size.
    s.len().is_ok_and(|n| n >= LARGE_ARG)
}

/// The shared call path: converts, calls (GIL released when `nogil`, a
/// handle / callable or a large text or bytes is passed), converts the result
/// (or, `native`, keeps it as a `Value`) or raises.
fn do_call<'py>(
    py: Python<'py>,
    name: &str,
    addr: usize,
    arity: usize,
    nogil: bool,
    args: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<Py<PyAny>> {
    do_call_as(py, name, addr, arity, nogil, args, false)
}

fn do_call_as<'py>(
    py: Python<'py>,
    name: &str,
    addr: usize,
    arity: usize,
    nogil: bool,
    args: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
    native: bool,
) -> PyResult<Py<PyAny>> {
    if args.len() > arity {
        return Err(PyTypeError::new_err(format!(
            "{name}() takes {arity} argument{} ({} given)",
            if arity == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let _at = Attached::new();
    let mut a = [abi::NIL; 8];
    let mut release = nogil;
    for (i, x) in args.enumerate() {
        if !release && !x.is_none() && !x.is_instance_of::<PyInt>() {
            release = if let Ok(s) = x.cast::<PyString>() {
                large_text(s)
            } else if let Ok(b) = x.cast::<PyBytes>() {
                b.as_bytes().len() >= LARGE_ARG
            } else if let Ok(v) = x.cast::<value::PyValue>() {
                Value::from_raw(v.get().raw()).as_text_or_bytes().is_some_and(|t| t.len() >= LARGE_ARG)
            } else {
                x.is_instance_of::<Handle>() || x.is_callable()
            };
        }
        a[i] = from_py(&x, 0)?;
    }
    let a = &a;
    // `addr` and `arity` come from `rt_registry_lookup` (via `Function` or `lookup`), so `addr`
    // is a loaded domain function taking `arity` RtValue words and returning one, which is what
    // `invoke` calls it as; libraries stay loaded (NODELETE). The arguments are runtime words in
    // `a`, on this thread's stack; the thread stays attached (the guard above), also while the
    // GIL is released, so the collector keeps them alive.
    let r = if release {
        // SAFETY: as explained above: a registry function of this arity, live words in `a`.
        py.detach(move || unsafe { invoke(addr, arity, a) })
    } else {
        // SAFETY: as explained above: a registry function of this arity, live words in `a`.
        unsafe { invoke(addr, arity, a) }
    };
    if r & abi::TAG_MASK == abi::TAG_HEAP && Value::from_raw(r).kind() == Kind::Error {
        return Err(error_err(py, r));
    }
    let out = if native { value::native_result(py, r) } else { to_py(py, r, 0) };
    // Keeps the arguments and the result in memory the collector scans until here.
    std::hint::black_box((a, r));
    out
}

fn call_name(py: Python<'_>, name: &str, args: &[Bound<'_, PyAny>]) -> PyResult<Py<PyAny>> {
    let (addr, arity) = lookup(name).ok_or_else(|| not_found(name))?;
    do_call(py, name, addr, arity, true, args.iter().cloned())
}

fn not_found(name: &str) -> PyErr {
    PyAttributeError::new_err(format!("{name}: not in the registry of the loaded libraries"))
}

/// A domain function bound to its address: `f(*args)` converts, calls,
/// converts back. `nogil` releases the GIL for every call (blocking functions).
#[pyclass(module = "simple_rt", name = "Function", frozen)]
pub struct Function {
    #[pyo3(get)]
    name: String,
    addr: usize,
    #[pyo3(get)]
    arity: usize,
    #[pyo3(get)]
    nogil: bool,
    fast: Fast,
}

/// Functions with a path straight between Python objects and text (`json.rs`).
#[derive(Clone, Copy, PartialEq)]
enum Fast {
    None,
    JsonParse,
    JsonStringify,
}

/// The fast path of `fast` for `args`, or None when the ordinary call decides.
fn fast_call(py: Python<'_>, fast: Fast, args: &Bound<'_, PyTuple>) -> Option<PyResult<Py<PyAny>>> {
    let n = args.len();
    if n == 0 || n > 2 {
        return None;
    }
    let a0 = args.get_item(0).ok()?;
    let opts = if n == 2 { Some(args.get_item(1).ok()?) } else { None };
    match fast {
        Fast::JsonParse => {
            let bigint = json::parse_opts(opts.as_ref())?;
            let text = json::text_arg(&a0)?;
            Some(json::parse(py, text.bytes(), text.utf8, bigint))
        }
        Fast::JsonStringify => {
            let (pretty, sort_keys) = json::stringify_opts(opts.as_ref())?;
            if let Ok(v) = a0.cast::<value::PyValue>() {
                return Some(json::stringify_native(py, v.get().raw(), pretty, sort_keys));
            }
            json::stringify(py, &a0, pretty, sort_keys)
        }
        Fast::None => None,
    }
}

/// The fast path of `fast` for `f.value(*args)`, or None when the ordinary call decides.
fn fast_value_call(py: Python<'_>, fast: Fast, args: &Bound<'_, PyTuple>) -> Option<PyResult<Py<PyAny>>> {
    let n = args.len();
    if fast != Fast::JsonParse || n == 0 || n > 2 {
        return None;
    }
    let a0 = args.get_item(0).ok()?;
    let opts = if n == 2 { Some(args.get_item(1).ok()?) } else { None };
    let bigint = json::parse_opts(opts.as_ref())?;
    let text = json::text_arg(&a0)?;
    Some(json::parse_native(py, text.bytes(), text.utf8, bigint))
}

#[pymethods]
impl Function {
    #[new]
    #[pyo3(signature = (name, nogil=true))]
    fn new(name: String, nogil: bool) -> PyResult<Function> {
        let (addr, arity) = lookup(&name).ok_or_else(|| not_found(&name))?;
        let fast = match name.as_str() {
            "rt_json_parse" => Fast::JsonParse,
            "rt_json_stringify" => Fast::JsonStringify,
            _ => Fast::None,
        };
        Ok(Function { name, addr, arity, nogil, fast })
    }
    #[pyo3(signature = (*args))]
    fn __call__(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if self.fast != Fast::None {
            if let Some(r) = fast_call(py, self.fast, args) {
                return r;
            }
        }
        do_call(py, &self.name, self.addr, self.arity, self.nogil, args.iter())
    }
    /// `invoke(name, *args)`: as `f(*args)` (`name` ignored), the `_call`
    /// of a generated function bound to this one.
    #[pyo3(signature = (_name, *args))]
    fn invoke(&self, py: Python<'_>, _name: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        self.__call__(py, args)
    }
    /// `f.value(*args)`: as `f(*args)`, but a string, bytes, array or dict
    /// result stays native: a `simple_rt.Value` (pinned, lazily read).
    #[pyo3(signature = (*args))]
    fn value(&self, py: Python<'_>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        if self.fast != Fast::None {
            if let Some(r) = fast_value_call(py, self.fast, args) {
                return r;
            }
        }
        do_call_as(py, &self.name, self.addr, self.arity, self.nogil, args.iter(), true)
    }
    /// `invoke_value(name, *args)`: as `f.value(*args)`, the `_call` of a
    /// generated function's `.value` form.
    #[pyo3(signature = (_name, *args))]
    fn invoke_value(&self, py: Python<'_>, _name: &Bound<'_, PyAny>, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        self.value(py, args)
    }
    fn __repr__(&self) -> String {
        format!("<simple_rt.Function {}/{}>", self.name, self.arity)
    }
}

/// Calls the domain function `name` (missing trailing arguments are nil).
#[pyfunction]
#[pyo3(signature = (name, *args))]
fn call(py: Python<'_>, name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
    let (addr, arity) = lookup(name).ok_or_else(|| not_found(name))?;
    do_call(py, name, addr, arity, true, args.iter())
}

/// Address and arity of a loaded function, or None.
#[pyfunction]
fn lookup_fn(name: &str) -> Option<(usize, usize)> {
    lookup(name)
}

/// Converts `x` to a runtime value and back (tests of the conversion).
#[pyfunction]
fn roundtrip(py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let _at = Attached::new();
    let w = from_py(x, 0)?;
    let out = to_py(py, w, 0);
    std::hint::black_box(w);
    out
}

/// `(word, kind)` of `x` converted, with the word pinned once (the caller
/// unpins it): for tests of the encoding.
#[pyfunction]
fn word_of_pinned(x: &Bound<'_, PyAny>) -> PyResult<(u64, u32)> {
    let _at = Attached::new();
    let w = from_py(x, 0)?;
    // SAFETY: `w` was just made (or taken from a live Value/Handle) while attached and is in a
    // local, so it is a live runtime value; the caller takes over the pin (documented above).
    unsafe { abi::rt_value_pin(w) };
    Ok((w, Value::from_raw(w).kind() as u32))
}

/// Builds the value for `x` and returns `f(word)`: the word stays in this
/// frame (collector-visible, not pinned) while `f` runs on this thread.
#[pyfunction]
fn with_value(py: Python<'_>, x: &Bound<'_, PyAny>, f: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
    let _at = Attached::new();
    let w = from_py(x, 0)?;
    let r = f.call1((w,)).map(|r| r.unbind());
    std::hint::black_box(&w);
    let _ = py;
    r
}

/// The Python object for a word the caller keeps reachable (pinned). A
/// word that is no immediate and no start of a runtime object (any other
/// int) is a ValueError, not a read of whatever lies at that address.
#[pyfunction]
fn from_word(py: Python<'_>, w: u64) -> PyResult<Py<PyAny>> {
    let _at = Attached::new();
    // SAFETY: core's `bool rt_value_valid(RtValue)`: takes any 64-bit word; for a heap tag it
    // only asks the collector whether the address starts one of its objects (GC_base, which
    // reads none of the memory at the address) before reading the header.
    if !unsafe { rt_value_valid(w) } {
        return Err(PyValueError::new_err(format!("simple_rt.from_value: {w:#x} is not a runtime value")));
    }
    to_py(py, w, 0)
}

/// A `gc.callbacks` hook: after a collection, lets go of the str the JSON
/// fast path remembered if nothing else holds it (`json.rs`, `text_arg`).
#[pyfunction]
#[pyo3(signature = (phase, _info))]
fn gc_callback(phase: &str, _info: &Bound<'_, PyAny>) {
    if phase == "stop" {
        json::release_text();
    }
}

/// Every loaded function's registry entry, as JSON text.
#[pyfunction]
fn registry_json() -> String {
    let _at = Attached::new();
    // SAFETY: core's `RtValue rt_registry_json(void)`: no arguments; the string it returns is
    // kept in `w` on this attached thread's stack while it is read.
    let w = unsafe { rt_registry_json() };
    let s = Value::from_raw(w).as_text().unwrap_or("[]").to_string();
    std::hint::black_box(w);
    s
}

/// Loads `libffi_<domain>.so` from `directory` for each domain present
/// (RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE); returns the domains loaded.
/// libffi_core.so is loaded already (this extension links it).
#[pyfunction]
fn load(directory: &str, domains: Vec<String>) -> PyResult<Vec<String>> {
    let mut out = Vec::new();
    for d in domains {
        let p = std::path::Path::new(directory).join(format!("libffi_{d}.so"));
        if !p.is_file() {
            continue;
        }
        let c = std::ffi::CString::new(p.to_string_lossy().as_bytes())
            .map_err(|_| PyValueError::new_err("simple_rt: NUL in a library path"))?;
        // SAFETY: `c` is a live NUL-terminated path; dlopen copies what it needs. Loading runs
        // the library's constructors, which for these domain libraries only register with core.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL | libc::RTLD_NODELETE) };
        if h.is_null() {
            // SAFETY: dlerror takes nothing; its result is NULL or a NUL-terminated message valid
            // until the next dl* call on this thread, copied at once (NULL is checked).
            let m = unsafe { libc::dlerror() };
            let e = if m.is_null() {
                "unknown error".to_string()
            } else {
                // SAFETY: `m` is non-null: dlerror's NUL-terminated message, read before any other dl* call.
                unsafe { std::ffi::CStr::from_ptr(m) }.to_string_lossy().into_owned()
            };
            return Err(pyo3::exceptions::PyImportError::new_err(format!("simple_rt: cannot load {}: {e}", p.display())));
        }
        out.push(d);
    }
    Ok(out)
}

thread_local! {
    /// How many `thread_attach` calls from Python this thread has not yet detached.
    static PY_ATTACHED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Registers this thread with the collector until the matching `thread_detach` (nests); the depth.
#[pyfunction]
fn thread_attach() -> u32 {
    PY_ATTACHED.with(|c| c.set(c.get() + 1));
    // SAFETY: core's `uint32_t rt_thread_attach(void)`: no arguments, no memory shared.
    unsafe { rt_thread_attach() }
}

/// Ends one `thread_attach` made from Python on this thread; the remaining
/// depth. Without one, a RuntimeError: an unmatched detach could end the
/// attach of a runtime call in progress (a Python callback runs inside one),
/// whose values the collector would then no longer see.
#[pyfunction]
fn thread_detach() -> PyResult<u32> {
    let open = PY_ATTACHED.with(|c| {
        let n = c.get();
        c.set(n.saturating_sub(1));
        n
    });
    if open == 0 {
        return Err(PyRuntimeError::new_err("simple_rt: thread_detach without a thread_attach on this thread"));
    }
    // SAFETY: core's `uint32_t rt_thread_detach(void)`: no arguments. It ends an attach this
    // thread made through `thread_attach` above (counted), never one a call in progress made.
    Ok(unsafe { rt_thread_detach() })
}

/// Sets the exception factory `(code, message, details) -> exception`, the
/// callable converter `(fn) -> Handle` and the RtError base class.
#[pyfunction]
fn set_hooks(error: Py<PyAny>, callable: Py<PyAny>, rt_error: Py<PyAny>) -> PyResult<()> {
    HOOKS
        .set(Hooks { error, callable, rt_error })
        .map_err(|_| PyRuntimeError::new_err("simple_rt._native: hooks are set already"))
}

// -------------------------------------------------------------- callbacks

fn error_word(code: u32, msg: &str) -> RtValue {
    // SAFETY: core's `rt__error_make(uint32_t, const uint8_t *, size_t, RtValue)`: `msg` is a live
    // str read for `msg.len()` bytes (UTF-8, copied by core), details nil; the caller is attached.
    unsafe { abi::rt__error_make(code, msg.as_ptr(), msg.len(), abi::NIL) }
}

/// Runs the Python callable behind `ud` on a library thread; returns the
/// result word pinned (RT_CALLBACK_RESULT_PINNED). Nothing unwinds into C.
fn run_callback(ud: *mut c_void, args: &[RtValue]) -> RtValue {
    let r = std::panic::catch_unwind(|| {
        Python::attach(|py| {
            let _at = Attached::new();
            // SAFETY: `ud` is the `Box<CbData>` pointer `callback` gave rt_callback_new; the library
            // calls the trampoline only before it calls `release_cb` (the callback contract), so
            // the box is alive; it is only read (`Py<PyAny>` is Sync), with the GIL held.
            let f = unsafe { &*(ud as *const CbData) };
            let w = match (|| -> PyResult<RtValue> {
                let mut pa: Vec<Py<PyAny>> = Vec::with_capacity(args.len());
                for &a in args {
                    pa.push(to_py(py, a, 0)?);
                }
                if f.none_ok && pa.len() == 1 && pa[0].is_none(py) {
                    pa.clear();
                }
                let r = f.func.call1(py, PyTuple::new(py, pa)?)?;
                from_py(r.bind(py), 0)
            })() {
                Ok(w) => w,
                Err(e) => exception_word(py, &e),
            };
            // SAFETY: `w` was just made (or is a live Value/Handle word) while attached and is in
            // a local; the library unpins it (RT_CALLBACK_RESULT_PINNED, set in `callback`).
            unsafe { abi::rt_value_pin(w) };
            w
        })
    });
    r.unwrap_or_else(|_| {
        let w = error_word(CODE_PANIC, "python callback: panic in the binding");
        // SAFETY: `w` is the Error value just made and held in this local (the collector sees it:
        // a library thread running a callback is registered); the library unpins the result.
        unsafe { abi::rt_value_pin(w) };
        w
    })
}

/// An exception raised by a callback as an Error word (RtError keeps its code).
fn exception_word(py: Python<'_>, e: &PyErr) -> RtValue {
    let v = e.value(py);
    if let Some(h) = HOOKS.get() {
        if v.is_instance(h.rt_error.bind(py)).unwrap_or(false) {
            let code: u32 = v.getattr("code").and_then(|c| c.extract()).unwrap_or(CODE_PANIC);
            let msg: String = v
                .getattr("message")
                .and_then(|m| m.extract())
                .unwrap_or_else(|_| v.str().map(|s| s.to_string()).unwrap_or_default());
            return error_word(if code > 0 { code } else { CODE_PANIC }, &msg);
        }
    }
    let t = v.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    let s = v.str().map(|s| s.to_string()).unwrap_or_default();
    error_word(CODE_PANIC, &format!("python callback raised {t}: {s}"))
}

/// Callbacks made and not yet released by the library.
static LIVE_CALLBACKS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The number of Python callbacks the library may still call.
#[pyfunction]
fn live_callbacks() -> usize {
    LIVE_CALLBACKS.load(Ordering::SeqCst)
}

struct CbData {
    func: Py<PyAny>,
    none_ok: bool,
}

unsafe extern "C" fn tramp1(ud: *mut c_void, a: RtValue) -> RtValue {
    run_callback(ud, &[a])
}
unsafe extern "C" fn tramp2(ud: *mut c_void, a: RtValue, b: RtValue) -> RtValue {
    run_callback(ud, &[a, b])
}
unsafe extern "C" fn release_cb(ud: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        // SAFETY: the library calls the release function once, after the last call of the
        // trampoline, with the `Box<CbData>` pointer `callback` leaked; it is rebuilt and dropped
        // once, with the GIL held for the `Py<PyAny>` it releases.
        Python::attach(|_py| drop(unsafe { Box::from_raw(ud as *mut CbData) }));
        LIVE_CALLBACKS.fetch_sub(1, Ordering::SeqCst);
    });
}

/// A reusable Callback handle for the Python callable `fn` (arity 1 or 2;
/// `none_ok`: a single nil argument is dropped, for callables taking none).
#[pyfunction]
#[pyo3(signature = (func, arity=1, none_ok=false))]
fn callback(py: Python<'_>, func: Py<PyAny>, arity: u32, none_ok: bool) -> PyResult<Py<Callback>> {
    if arity != 1 && arity != 2 {
        return Err(PyValueError::new_err("simple_rt.callback: arity must be 1 or 2"));
    }
    let _at = Attached::new();
    let data = Box::into_raw(Box::new(CbData { func: func.clone_ref(py), none_ok })) as *mut c_void;
    // SAFETY: core's `RtValue rt_callback_new{,2}(void *, void *)`: the function pointer is the
    // trampoline of the matching arity (`(void *, RtValue[, RtValue]) -> RtValue`), `data` a live
    // leaked box the library keeps as user data; attached (guard above).
    let w = unsafe {
        if arity == 1 {
            rt_callback_new(tramp1 as *mut c_void, data)
        } else {
            rt_callback_new2(tramp2 as *mut c_void, data)
        }
    };
    if Value::from_raw(w).is_error() {
        // SAFETY: on an Error the library took no ownership of `data` (no callback was made),
        // so the box leaked above is still ours alone, rebuilt and dropped once.
        drop(unsafe { Box::from_raw(data as *mut CbData) });
        return Err(error_err(py, w));
    }
    // From here the library owns `data` (released through release_cb).
    LIVE_CALLBACKS.fetch_add(1, Ordering::SeqCst);
    let handle = Handle::new_pinned(w);
    // SAFETY: `w` is the live Callback (pinned by `handle`), `release_cb` has the
    // `void (*)(void *)` signature the release function needs and lives as long as the process.
    let r = unsafe { rt_callback_on_release(w, release_cb as *mut c_void) };
    if Value::from_raw(r).is_error() {
        return Err(error_err(py, r));
    }
    // SAFETY: `w` is the live, pinned Callback; flags by value (1 = RT_CALLBACK_RESULT_PINNED).
    let r = unsafe { rt_callback_set_flags(w, 1) };
    if Value::from_raw(r).is_error() {
        return Err(error_err(py, r));
    }
    Py::new(py, (Callback { r#fn: func }, handle))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Handle>()?;
    m.add_class::<Callback>()?;
    m.add_class::<Function>()?;
    m.add_class::<value::PyValue>()?;
    m.add_class::<value::ValueIter>()?;
    json::init(m.py());
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_function(wrap_pyfunction!(lookup_fn, m)?)?;
    m.add_function(wrap_pyfunction!(roundtrip, m)?)?;
    m.add_function(wrap_pyfunction!(word_of_pinned, m)?)?;
    m.add_function(wrap_pyfunction!(from_word, m)?)?;
    m.add_function(wrap_pyfunction!(with_value, m)?)?;
    m.add_function(wrap_pyfunction!(registry_json, m)?)?;
    m.add_function(wrap_pyfunction!(gc_callback, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(set_hooks, m)?)?;
    m.add_function(wrap_pyfunction!(callback, m)?)?;
    m.add_function(wrap_pyfunction!(thread_attach, m)?)?;
    m.add_function(wrap_pyfunction!(live_callbacks, m)?)?;
    m.add_function(wrap_pyfunction!(thread_detach, m)?)?;
    // SAFETY: core's `uint32_t rt_abi_version(void)`: no arguments, no memory shared.
    m.add("ABI_VERSION", unsafe { abi::rt_abi_version() })?;
    m.add("CODE_INVALID", CODE_INVALID)?;
    m.add("CODE_TYPE", CODE_TYPE)?;
    m.add("CODE_CLOSED", CODE_CLOSED)?;
    Ok(())
}
