//! `simple_rt.Value`: a runtime value kept native, for pipelines that never
//! need (all of) it as Python objects.
//!
//! - Made by a call's `.value(...)` form (`simple_rt.rt_json_parse.value(text)`)
//!   or from a Python object (`simple_rt.Value(obj)`, converted once).
//! - The word is pinned while the Python object lives (the collector keeps
//!   the value, whatever else happens), and passed as it is to any function
//!   (`simple_rt.rt_json_stringify(v)`: no conversion either way).
//! - Lazy access: `len(v)`, `v[i]` / `v[key]`, iteration (array items, dict
//!   keys), `in`, `keys()` / `values()` / `items()` / `get()`; nested arrays
//!   and dicts come back as `Value`s (pinned on their own), everything else
//!   as Python objects. `v.to_py()` converts the whole value in one pass.
//! - Every access registers the thread with the collector for its duration
//!   (as calls do) and holds the GIL; values are read under their own locks
//!   by the runtime's accessors.

use crate::{error_err, from_py, to_py, Attached};
use ffi_sdk::abi::{self, Kind, RtValue};
use ffi_sdk::value::Value;
use pyo3::exceptions::{PyIndexError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PySlice, PyTuple};

/// Structural equality of two runtime values, as Python's `==` compares the
/// objects they convert to: texts and bytes by content, numbers by value
/// (1 == 1.0, True == 1), arrays item by item, dicts by keys and values
/// (the thread is attached; both values reachable).
fn deep_eq(a: RtValue, b: RtValue, depth: usize) -> bool {
    if a == b {
        return true;
    }
    let (x, y) = (Value::from_raw(a), Value::from_raw(b));
    let num = |v: Value| -> Option<f64> {
        match v.kind() {
            Kind::Int => v.as_int().map(|i| i as f64),
            Kind::Float => v.as_float(),
            Kind::Bool => v.as_bool().map(|b| b as i64 as f64),
            _ => None,
        }
    };
    match (x.kind(), y.kind()) {
        (Kind::String, Kind::String) | (Kind::Bytes, Kind::Bytes) => x.as_text_or_bytes() == y.as_text_or_bytes(),
        (Kind::Int | Kind::Bool, Kind::Int | Kind::Bool) => {
            let i = |v: Value| v.as_int().or_else(|| v.as_bool().map(|b| b as i64));
            i(x) == i(y)
        }
        (Kind::Int | Kind::Float | Kind::Bool, Kind::Int | Kind::Float | Kind::Bool) => num(x) == num(y),
        (Kind::Array, Kind::Array) => {
            let (p, q) = (x.array_items(), y.array_items());
            depth < crate::MAX_DEPTH
                && p.len() == q.len()
                && (0..p.len()).all(|i| deep_eq(p.item(i).raw(), q.item(i).raw(), depth + 1))
        }
        (Kind::Dict, Kind::Dict) => {
            let p = x.dict_entries();
            depth < crate::MAX_DEPTH
                && p.len() == y.len()
                && (0..p.len()).all(|i| {
                    let (k, v) = p.entry(i);
                    // SAFETY: core's `bool rt_dict_has(RtValue, RtValue)`: `b` is a live dict (kind
                    // checked; reachable per this function's contract) and `k` a key of the live
                    // dict `a`; by value, the thread is attached.
                    let has = unsafe { abi::rt_dict_has(b, k.raw()) };
                    // SAFETY: core's `RtValue rt_dict_get(RtValue, RtValue)` on the same live dict and
                    // key; the value returned is held by `b`, so it stays alive while compared.
                    has && deep_eq(v.raw(), unsafe { abi::rt_dict_get(b, k.raw()) }, depth + 1)
                })
        }
        _ => false,
    }
}

/// A runtime value held natively (pinned while this object lives).
#[pyclass(module = "simple_rt", name = "Value", frozen, weakref)]
pub struct PyValue {
    word: RtValue,
}

impl PyValue {
    /// Pins `w` (the thread is attached and `w` reachable).
    pub fn new_pinned(w: RtValue) -> PyValue {
        // SAFETY: per this function's contract the thread is attached and `w` is a live runtime
        // word the caller holds, as `rt_value_pin` requires; the pin is dropped exactly once, by
        // this object's drop.
        unsafe { abi::rt_value_pin(w) };
        PyValue { word: w }
    }
    pub fn raw(&self) -> RtValue {
        self.word
    }
    fn value(&self) -> Value {
        Value::from_raw(self.word)
    }
}

impl Drop for PyValue {
    fn drop(&mut self) {
        // SAFETY: `word` was pinned once by `new_pinned` (the only constructor) and is still
        // pinned, so still alive; this is the one matching unpin (drop runs once).
        unsafe { abi::rt_value_unpin(self.word) };
    }
}

/// What access to a container returns for word `w`: arrays and dicts as
/// `Value`s, everything else as Python objects (the thread is attached).
pub fn child(py: Python<'_>, w: RtValue) -> PyResult<Py<PyAny>> {
    if w & abi::TAG_MASK == abi::TAG_HEAP {
        // SAFETY: `w` is an item or key of a live container (or a pinned value) read while
        // attached, so a runtime word whose header is live memory (`heap_ptr`'s contract).
        let k = unsafe { abi::heap_kind(w) };
        if k == abi::HK_ARRAY || k == abi::HK_DICT {
            return Ok(Py::new(py, PyValue::new_pinned(w))?.into_any());
        }
    }
    to_py(py, w, 0)
}

/// A call's result kept native (`f.value(...)`): strings, bytes, arrays and
/// dicts as `Value`s; immediates, handles as usual; an Error raises.
pub fn native_result(py: Python<'_>, w: RtValue) -> PyResult<Py<PyAny>> {
    if w & abi::TAG_MASK == abi::TAG_HEAP {
        // SAFETY: `w` is a call's result, held by the caller in a local while attached: a runtime
        // word whose header is live memory (`heap_ptr`'s contract).
        let k = unsafe { abi::heap_kind(w) };
        if matches!(k, abi::HK_ARRAY | abi::HK_DICT | abi::HK_STRING | abi::HK_BYTES) {
            return Ok(Py::new(py, PyValue::new_pinned(w))?.into_any());
        }
        if k == abi::HK_ERROR {
            return Err(error_err(py, w));
        }
    }
    to_py(py, w, 0)
}

fn kind_error(what: &str, k: Kind) -> PyErr {
    PyTypeError::new_err(format!("simple_rt.Value: {what} needs an array or a dict, not a {}", k.name()))
}

#[pymethods]
impl PyValue {
    /// `Value(obj)`: `obj` converted to a runtime value once (a `Value` is taken as it is).
    #[new]
    fn py_new(x: &Bound<'_, PyAny>) -> PyResult<PyValue> {
        let _at = Attached::new();
        let w = from_py(x, 0)?;
        let v = PyValue::new_pinned(w);
        std::hint::black_box(w);
        Ok(v)
    }

    /// The kind: "nil", "bool", "int", "float", "string", "bytes", "array", "dict", "error" or "handle".
    #[getter]
    fn kind(&self) -> &'static str {
        self.value().kind().name()
    }

    /// The runtime word (pinned while this object lives).
    #[getter]
    fn word(&self) -> u64 {
        self.word
    }

    /// The whole value as Python objects (one pass).
    fn to_py(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let _at = Attached::new();
        to_py(py, self.word, 0)
    }

    fn __len__(&self) -> PyResult<usize> {
        let v = self.value();
        Ok(match v.kind() {
            Kind::Array | Kind::Dict => v.len(),
            Kind::String => v.as_text().map_or(0, |t| t.chars().count()),
            Kind::Bytes => v.as_bytes().map_or(0, <[u8]>::len),
            k => return Err(PyTypeError::new_err(format!("simple_rt.Value of kind {} has no len()", k.name()))),
        })
    }

    fn __bool__(&self) -> PyResult<bool> {
        let v = self.value();
        Ok(match v.kind() {
            Kind::Array | Kind::Dict | Kind::String | Kind::Bytes => self.__len__()? > 0,
            Kind::Nil => false,
            Kind::Bool => v.as_bool() == Some(true),
            Kind::Int => v.as_int() != Some(0),
            Kind::Float => v.as_float() != Some(0.0),
            _ => true,
        })
    }

    /// Array: item `i` (negative from the end) or a slice (a list); dict: the value at `key`.
    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let _at = Attached::new();
        let v = self.value();
        match v.kind() {
            Kind::Array => {
                let items = v.array_items();
                let n = items.len();
                if let Ok(s) = key.cast::<PySlice>() {
                    let ix = s.indices(n as isize)?;
                    let mut out = Vec::with_capacity(ix.slicelength);
                    let mut i = ix.start;
                    for _ in 0..ix.slicelength {
                        out.push(child(py, items.item(i as usize).raw())?);
                        i += ix.step;
                    }
                    return Ok(PyList::new(py, out)?.into_any().unbind());
                }
                let i: isize = key
                    .extract()
                    .map_err(|_| PyTypeError::new_err("simple_rt.Value: array indices must be integers or slices"))?;
                let j = if i < 0 { i + n as isize } else { i };
                if j < 0 || j as usize >= n {
                    return Err(PyIndexError::new_err("simple_rt.Value: array index out of range"));
                }
                child(py, items.item(j as usize).raw())
            }
            Kind::Dict => {
                let k = from_py(key, 0)?;
                // SAFETY: `self.word` is a live dict (pinned; kind checked) and `k` a word just made
                // in this local while attached; by value.
                let r = if unsafe { abi::rt_dict_has(self.word, k) } {
                    // SAFETY: the same live dict and key; the result is held by the dict.
                    child(py, unsafe { abi::rt_dict_get(self.word, k) })
                } else {
                    Err(PyKeyError::new_err(key.clone().unbind()))
                };
                std::hint::black_box(k);
                r
            }
            k => Err(kind_error("indexing", k)),
        }
    }

    /// Array: whether an item equals `x`; dict: whether `x` is a key.
    fn __contains__(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<bool> {
        let _at = Attached::new();
        let v = self.value();
        match v.kind() {
            Kind::Dict => {
                let k = from_py(x, 0)?;
                // SAFETY: `self.word` is a live dict (pinned; kind checked) and `k` a word just made
                // in this local while attached; by value.
                let r = unsafe { abi::rt_dict_has(self.word, k) };
                std::hint::black_box(k);
                Ok(r)
            }
            Kind::Array => {
                let w = from_py(x, 0)?;
                let items = v.array_items();
                let mut found = false;
                for i in 0..items.len() {
                    if deep_eq(items.item(i).raw(), w, 0) {
                        found = true;
                        break;
                    }
                }
                std::hint::black_box(w);
                let _ = py;
                Ok(found)
            }
            k => Err(kind_error("`in`", k)),
        }
    }

    /// Array items or dict keys, one at a time.
    fn __iter__(slf: &Bound<'_, Self>) -> PyResult<ValueIter> {
        let k = slf.get().value().kind();
        match k {
            Kind::Array | Kind::Dict => Ok(ValueIter { of: slf.clone().unbind(), next: 0, what: Part::Default }),
            k => Err(kind_error("iteration", k)),
        }
    }

    /// A dict's keys (iterator).
    fn keys(slf: &Bound<'_, Self>) -> PyResult<ValueIter> {
        Self::dict_iter(slf, Part::Keys)
    }
    /// A dict's values (iterator).
    fn values(slf: &Bound<'_, Self>) -> PyResult<ValueIter> {
        Self::dict_iter(slf, Part::Values)
    }
    /// A dict's (key, value) pairs (iterator).
    fn items(slf: &Bound<'_, Self>) -> PyResult<ValueIter> {
        Self::dict_iter(slf, Part::Items)
    }

    /// A dict's value at `key`, or `default`.
    #[pyo3(signature = (key, default=None))]
    fn get(&self, py: Python<'_>, key: &Bound<'_, PyAny>, default: Option<Py<PyAny>>) -> PyResult<Py<PyAny>> {
        let k = self.value().kind();
        if k != Kind::Dict {
            return Err(kind_error("get()", k));
        }
        let _at = Attached::new();
        let w = from_py(key, 0)?;
        // SAFETY: `self.word` is a live dict (pinned; kind checked) and `w` a word just made in
        // this local while attached; by value.
        let r = if unsafe { abi::rt_dict_has(self.word, w) } {
            // SAFETY: the same live dict and key; the result is held by the dict.
            child(py, unsafe { abi::rt_dict_get(self.word, w) })
        } else {
            Ok(default.unwrap_or_else(|| py.None()))
        };
        std::hint::black_box(w);
        r
    }

    /// Equal values: with another `Value`, compared natively (structure and
    /// contents, as `==` compares their Python forms); else `to_py() == other`.
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<bool> {
        let _at = Attached::new();
        if let Ok(o) = other.cast::<PyValue>() {
            return Ok(deep_eq(self.word, o.get().word, 0));
        }
        to_py(py, self.word, 0)?.bind(py).eq(other)
    }

    fn __repr__(&self) -> String {
        let v = self.value();
        match v.kind() {
            Kind::Array | Kind::Dict => format!("<simple_rt.Value {} len={}>", v.kind().name(), v.len()),
            Kind::String | Kind::Bytes => {
                format!("<simple_rt.Value {} of {} bytes>", v.kind().name(), v.as_text_or_bytes().map_or(0, <[u8]>::len))
            }
            k => format!("<simple_rt.Value {}>", k.name()),
        }
    }
}

impl PyValue {
    fn dict_iter(slf: &Bound<'_, Self>, what: Part) -> PyResult<ValueIter> {
        let k = slf.get().value().kind();
        if k != Kind::Dict {
            return Err(kind_error("keys()/values()/items()", k));
        }
        Ok(ValueIter { of: slf.clone().unbind(), next: 0, what })
    }
}

#[derive(Clone, Copy)]
enum Part {
    /// Array items, dict keys.
    Default,
    Keys,
    Values,
    Items,
}

/// Iterates a `Value`'s items, keys, values or pairs (it keeps the value alive).
#[pyclass(module = "simple_rt", name = "ValueIterator")]
pub struct ValueIter {
    of: Py<PyValue>,
    next: usize,
    what: Part,
}

#[pymethods]
impl ValueIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }
    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let _at = Attached::new();
        let v = self.of.get().value();
        let i = self.next;
        let out = match v.kind() {
            Kind::Array => {
                let items = v.array_items();
                if i >= items.len() {
                    return Ok(None);
                }
                child(py, items.item(i).raw())?
            }
            _ => {
                let e = v.dict_entries();
                if i >= e.len() {
                    return Ok(None);
                }
                let (k, x) = e.entry(i);
                match self.what {
                    Part::Default | Part::Keys => child(py, k.raw())?,
                    Part::Values => child(py, x.raw())?,
                    Part::Items => PyTuple::new(py, [child(py, k.raw())?, child(py, x.raw())?])?.into_any().unbind(),
                }
            }
        };
        self.next = i + 1;
        Ok(Some(out))
    }
}
