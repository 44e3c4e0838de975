//! Tensors (plan section 6.1): creation, conversion in and out, element-wise
//! arithmetic, matmul, shape changes, reductions and autograd.

use ffi_sdk::prelude::*;
use ffi_sdk::FromArg;
use std::fmt::Display;
use std::sync::{Mutex, MutexGuard};
use tch::{Device, Kind, TchError, Tensor};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ------------------------------------------------------------------ handle

/// A tensor (handle type `tensor`).
pub struct TensorH(pub Tensor);

// SAFETY: libtorch tensors are reference-counted atomically and every
// operation this library runs through a shared `TensorH` is one libtorch
// call that reads it (making a new tensor) or one libtorch takes its own
// locks for (autograd, requires_grad); PyTorch itself shares tensors
// between threads the same way. Not covered: a parameter from
// `rt_torch_param_get` shares storage that `rt_optim_step` / `rt_model_load`
// write in place under the optimizer's / store's lock, which a reader of the
// tensor handle does not take, so reading it during a step on another thread
// is a data race on the storage (as in PyTorch): hosts must not overlap them.
unsafe impl Sync for TensorH {}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for TensorH {
    const NAME: &'static str = "tensor";
}

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl TensorH {
    /// Owns `t` (counted in [`live_tensors`]).
    pub fn new(t: Tensor) -> TensorH {
        LIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        TensorH(t)
    }
}

impl Drop for TensorH {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How many tensors this library holds (handles not yet freed, loader inputs): for tests.
pub fn live_tensors() -> usize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// A tensor argument (`handle<tensor>`).
pub type T = Handle<TensorH>;

/// Wraps a tensor in a new handle value.
pub fn wrap(t: Tensor) -> Value {
    new_handle(TensorH::new(t))
}

// ------------------------------------------------------------------ errors

/// libtorch's message without the C++ stack trace it appends.
pub fn clean(e: &TchError) -> String {
    let s = match e {
        TchError::Torch(m) => m.clone(),
        other => other.to_string(),
    };
    let s = s.split("\nException raised from").next().unwrap_or("");
    let mut out: String = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    if out.len() > 600 {
        let mut cut = 600;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// An Error for a libtorch failure: LimitExceeded for out of memory, Io / Parse
/// for files, InvalidArgument for everything else (shapes, dtypes, devices).
pub fn terr(func: &str, what: impl Display, e: TchError) -> Error {
    let msg = clean(&e);
    let low = msg.to_ascii_lowercase();
    let code = if low.contains("out of memory") || low.contains("can't allocate memory") || low.contains("not enough memory") {
        Code::LimitExceeded
    } else {
        match e {
            TchError::Io(_) => Code::Io,
            TchError::FileFormat(_) | TchError::Zip(_) => Code::Parse,
            _ => Code::InvalidArgument,
        }
    };
    Error::plain(code, func, format!("{what}: {msg}"))
}

/// `f_*` result to RtResult with a description of the operation.
pub trait Ctx<X> {
    fn ctx(self, func: &str, what: impl Display) -> RtResult<X>;
    /// The same with the description made only on failure (no formatting on the hot path).
    fn ctxf(self, func: &str, what: impl FnOnce() -> String) -> RtResult<X>;
}
impl<X> Ctx<X> for Result<X, TchError> {
    fn ctx(self, func: &str, what: impl Display) -> RtResult<X> {
        self.map_err(|e| terr(func, what, e))
    }
    fn ctxf(self, func: &str, what: impl FnOnce() -> String) -> RtResult<X> {
        self.map_err(|e| terr(func, what(), e))
    }
}

// ------------------------------------------------------------------ devices and dtypes

/// The number of CUDA devices libtorch sees, or why there are none usable.
/// libtorch's CUDA half (`libtorch_cuda.so`, which needs cuDNN, cuBLAS...) is
/// not linked: it is loaded here, once, the first time a CUDA device is asked
/// for, so CPU use never needs the CUDA libraries.
pub fn cuda_devices() -> &'static Result<usize, String> {
    static S: std::sync::OnceLock<Result<usize, String>> = std::sync::OnceLock::new();
    S.get_or_init(|| {
        // SAFETY: a NUL-terminated name; dlopen/dlerror are thread-safe in glibc and the
        // library is never closed (its CUDA hooks register themselves on load).
        let h = unsafe { libc::dlopen(c"libtorch_cuda.so".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if h.is_null() {
            // SAFETY: dlerror returns NULL or a NUL-terminated message.
            let e = unsafe { libc::dlerror() };
            // SAFETY: `e` is non-null here, so it is dlerror's NUL-terminated message, kept in
            // this thread's dl state until the next dl call (we copy it out at once).
            let why = if e.is_null() { "unknown".into() } else { unsafe { std::ffi::CStr::from_ptr(e) }.to_string_lossy().into_owned() };
            return Err(format!("libtorch_cuda.so did not load: {why}"));
        }
        Ok(tch::Cuda::device_count().max(0) as usize)
    })
}

/// Parses "cpu", "cuda", "cuda:N": CUDA needs capability `gpu` and a device.
pub fn device(func: &'static str, s: &str) -> RtResult<Device> {
    let n = match s {
        "cpu" => return Ok(Device::Cpu),
        "cuda" => 0,
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return Err(Error::invalid(func, "device must be \"cpu\", \"cuda\" or \"cuda:N\"", format!("{s:?}"))),
        },
    };
    cap::check(func, "gpu", s)?;
    let count = match cuda_devices() {
        Ok(0) => return Err(Error::unsupported(func, format!("no CUDA device for {s:?} (libtorch sees none: no driver or no GPU)"))),
        Ok(n) => *n,
        Err(why) => return Err(Error::unsupported(func, format!("no CUDA device for {s:?} ({why})"))),
    };
    if n >= count {
        return Err(Error::new(Code::OutOfRange, func, format!("no CUDA device {n} ({count} present)"), s));
    }
    Ok(Device::Cuda(n))
}

/// The device option of `opts` ("cpu" when absent).
pub fn opt_device(func: &'static str, opts: &Opts) -> RtResult<Device> {
    match opts.text("device")? {
        Some(s) => device(func, s),
        None => Ok(Device::Cpu),
    }
}

/// The name of a device as `rt_tensor_device` returns it.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

const DTYPES: &str = "float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool";

/// Parses a dtype name (PyTorch's, without `torch.`; `float`, `double`, `long`, `int`, `half` too).
pub fn dtype(func: &str, s: &str) -> RtResult<Kind> {
    Ok(match s {
        "float32" | "float" => Kind::Float,
        "float64" | "double" => Kind::Double,
        "float16" | "half" => Kind::Half,
        "bfloat16" => Kind::BFloat16,
        "int64" | "long" => Kind::Int64,
        "int32" | "int" => Kind::Int,
        "int16" | "short" => Kind::Int16,
        "int8" => Kind::Int8,
        "uint8" => Kind::Uint8,
        "bool" => Kind::Bool,
        _ => return Err(Error::invalid(func, format!("unknown dtype (known: {DTYPES})"), format!("{s:?}"))),
    })
}

/// PyTorch's name of a dtype (without `torch.`).
pub fn dtype_name(k: Kind) -> &'static str {
    match k {
        Kind::Float => "float32",
        Kind::Double => "float64",
        Kind::Half => "float16",
        Kind::BFloat16 => "bfloat16",
        Kind::Int64 => "int64",
        Kind::Int => "int32",
        Kind::Int16 => "int16",
        Kind::Int8 => "int8",
        Kind::Uint8 => "uint8",
        Kind::Bool => "bool",
        Kind::ComplexFloat => "complex64",
        Kind::ComplexDouble => "complex128",
        _ => "other",
    }
}

fn opt_dtype(func: &str, opts: &Opts) -> RtResult<Option<Kind>> {
    opts.text("dtype")?.map(|s| dtype(func, s)).transpose()
}

fn kind_of(func: &str, t: &Tensor) -> RtResult<Kind> {
    t.f_kind().ctx(func, "the tensor's dtype")
}

fn is_float(k: Kind) -> bool {
    matches!(k, Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16)
}

/// A shape: an array of ints, each 0 or more (`allow_minus_one`: one -1 too, for reshape).
pub fn shape(func: &str, what: &str, v: Value, allow_minus_one: bool) -> RtResult<Vec<i64>> {
    if !v.is_array() {
        return Err(Error::new(Code::TypeMismatch, func, format!("{what} must be an array of ints"), v.describe()));
    }
    let mut out = Vec::with_capacity(v.len());
    for (i, x) in v.items().enumerate() {
        match x.as_int() {
            Some(n) if n >= 0 || (allow_minus_one && n == -1) => out.push(n),
            Some(n) => return Err(Error::invalid(func, format!("{what}[{i}] must be 0 or more"), n)),
            None => return Err(Error::new(Code::TypeMismatch, func, format!("{what}[{i}] must be an int"), x.describe())),
        }
    }
    Ok(out)
}

/// Applies the `requires_grad` option.
fn finish(func: &str, t: Tensor, opts: &Opts) -> RtResult<Value> {
    let t = match opts.bool("requires_grad")? {
        Some(true) => t.f_set_requires_grad(true).ctx(func, "requires_grad")?,
        _ => t,
    };
    Ok(wrap(t))
}

/// The one lock around seeding libtorch's global generator and drawing from it.
pub(crate) static RNG: Mutex<()> = Mutex::new(());

type Maker = fn(&[i64], (Kind, Device)) -> Result<Tensor, TchError>;

fn create(func: &'static str, shp: Array, opts: Opts, f: Maker) -> RtResult<Value> {
    opts.only(&["dtype", "device", "requires_grad"])?;
    let dims = shape(func, "shape", shp.0, false)?;
    let kind = opt_dtype(func, &opts)?.unwrap_or(Kind::Float);
    let dev = opt_device(func, &opts)?;
    let t = f(&dims, (kind, dev)).ctxf(func, || format!("cannot make a {dims:?} {} tensor", dtype_name(kind)))?;
    finish(func, t, &opts)
}

/// A tensor of zeros of `shape` (array of ints).
///
/// # Options
/// - dtype (text, default "float32"): float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool
/// - device (text, default "cpu"): "cpu", "cuda", "cuda:N"
/// - requires_grad (bool, default false): track gradients (floating dtypes only)
///
/// # Errors
/// - InvalidArgument: a negative dimension, an unknown dtype or device, an unknown option, or libtorch refused
/// - Unsupported: a CUDA device without one
/// - OutOfRange: cuda:N past the last device
/// - LimitExceeded: out of memory
/// - CapabilityDenied: a CUDA device without capability gpu
#[rt_fn(cap = "gpu", scoped, tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_zeros(shape: Array, opts: Opts) -> RtResult<Value> {
    create(FN, shape, opts, |d, o| Tensor::f_zeros(d, o))
}

/// A tensor of ones of `shape` (array of ints).
///
/// # Options
/// - dtype (text, default "float32"): as rt_tensor_zeros
/// - device (text, default "cpu"): "cpu", "cuda", "cuda:N"
/// - requires_grad (bool, default false): track gradients (floating dtypes only)
///
/// # Errors
/// - InvalidArgument: a negative dimension, an unknown dtype or device, an unknown option, or libtorch refused
/// - Unsupported: a CUDA device without one
/// - OutOfRange: cuda:N past the last device
/// - LimitExceeded: out of memory
/// - CapabilityDenied: a CUDA device without capability gpu
#[rt_fn(cap = "gpu", scoped, tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_ones(shape: Array, opts: Opts) -> RtResult<Value> {
    create(FN, shape, opts, |d, o| Tensor::f_ones(d, o))
}

/// Standard normal samples of `shape`. With `seed` the draw is
/// `torch.manual_seed(seed); torch.randn(shape)`: the same numbers as PyTorch.
///
/// # Options
/// - dtype (text, default "float32"): a floating dtype
/// - device (text, default "cpu"): "cpu", "cuda", "cuda:N"
/// - seed (int): seeds libtorch's generator first (deterministic)
/// - requires_grad (bool, default false): track gradients
///
/// # Errors
/// - InvalidArgument: a negative dimension, an integer dtype, an unknown dtype or device, an unknown option
/// - Unsupported: a CUDA device without one
/// - OutOfRange: cuda:N past the last device
/// - LimitExceeded: out of memory
/// - CapabilityDenied: a CUDA device without capability gpu
#[rt_fn(cap = "gpu", scoped, tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_randn(shape: Array, opts: Opts) -> RtResult<Value> {
    opts.only(&["dtype", "device", "requires_grad", "seed"])?;
    let dims = self::shape(FN, "shape", shape.0, false)?;
    let kind = opt_dtype(FN, &opts)?.unwrap_or(Kind::Float);
    let dev = opt_device(FN, &opts)?;
    let seed = opts.int("seed")?;
    let t = {
        let _g = lock(&RNG);
        if let Some(s) = seed {
            tch::manual_seed(s);
        }
        Tensor::f_randn(&dims, (kind, dev)).ctxf(FN, || format!("cannot draw a {dims:?} {} tensor", dtype_name(kind)))?
    };
    finish(FN, t, &opts)
}

// ------------------------------------------------------------------ data in

struct Flat {
    dims: Vec<i64>,
    f: Vec<f64>,
    i: Vec<i64>,
    all_int: bool,
    all_bool: bool,
    any_bool: bool,
}

fn walk(func: &str, v: Value, depth: usize, path: &mut Vec<usize>, out: &mut Flat) -> RtResult<()> {
    let at = || path.iter().map(|i| format!("[{i}]")).collect::<String>();
    if depth == out.dims.len() {
        if let Some(n) = v.as_int() {
            out.all_bool = false;
            out.f.push(n as f64);
            out.i.push(n);
        } else if let Some(x) = v.as_float() {
            out.all_bool = false;
            out.all_int = false;
            out.f.push(x);
        } else if let Some(b) = v.as_bool() {
            out.any_bool = true;
            out.f.push(b as i64 as f64);
            out.i.push(b as i64);
        } else if v.is_array() {
            return Err(Error::invalid(func, format!("ragged data: data{} is an array where a number was expected", at()), v.describe()));
        } else {
            return Err(Error::new(Code::TypeMismatch, func, format!("data{} must be a number or bool", at()), v.describe()));
        }
        return Ok(());
    }
    if !v.is_array() {
        return Err(Error::invalid(func, format!("ragged data: data{} is not an array of length {}", at(), out.dims[depth]), v.describe()));
    }
    let items = v.array_items();
    if items.len() as i64 != out.dims[depth] {
        return Err(Error::invalid(
            func,
            format!("ragged data: data{} has {} items, its siblings {}", at(), items.len(), out.dims[depth]),
            items.len(),
        ));
    }
    for k in 0..items.len() {
        path.push(k);
        walk(func, items.item(k), depth + 1, path, out)?;
        path.pop();
    }
    Ok(())
}

/// The most elements taken from nested arrays (2 GiB as float64 on the way).
const MAX_NESTED: usize = 1 << 28;

fn from_nested(func: &str, data: Value, kind: Option<Kind>) -> RtResult<Tensor> {
    let mut dims = Vec::new();
    let mut v = data;
    while v.is_array() {
        dims.push(v.len() as i64);
        if v.is_empty() {
            break;
        }
        v = v.at(0);
        if dims.len() > 64 {
            return Err(Error::new(Code::LimitExceeded, func, "data nests deeper than 64 levels", dims.len()));
        }
    }
    // The product of the first items' lengths: the element count if the walk
    // below (which checks every length) succeeds, so also its bound.
    let n = dims.iter().try_fold(1usize, |a, d| a.checked_mul(*d as usize)).unwrap_or(usize::MAX);
    if n > MAX_NESTED {
        return Err(Error::new(
            Code::LimitExceeded,
            func,
            format!("nested data of shape {dims:?} is over {MAX_NESTED} elements: pass bytes with the shape option"),
            n,
        ));
    }
    let mut flat = Flat { dims, f: Vec::with_capacity(n.min(1 << 20)), i: Vec::new(), all_int: true, all_bool: true, any_bool: false };
    walk(func, data, 0, &mut Vec::new(), &mut flat)?;
    let dims = flat.dims.clone();
    let natural = if n == 0 {
        Kind::Float
    } else if flat.all_bool {
        Kind::Bool
    } else if flat.all_int {
        Kind::Int64
    } else {
        Kind::Float
    };
    let kind = kind.unwrap_or(natural);
    let t = if flat.all_int && n > 0 && !is_float(kind) {
        Tensor::f_from_slice(&flat.i).ctx(func, "from_data")?
    } else {
        Tensor::f_from_slice(&flat.f).ctx(func, "from_data")?
    };
    let t = t.f_reshape(&dims).ctx(func, "from_data")?;
    if t.f_kind().ctx(func, "from_data")? == kind {
        Ok(t)
    } else {
        t.f_to_kind(kind).ctxf(func, || format!("cannot convert the data to {}", dtype_name(kind)))
    }
}

fn elt_size(k: Kind) -> usize {
    k.elt_size_in_bytes()
}

/// A tensor from `data`: nested arrays of numbers (shape from the nesting;
/// dtype float32 when any item is a float, int64 when all are ints, bool when
/// all are bools), or bytes (native little-endian elements, copied once) with
/// the `shape` option.
///
/// # Options
/// - shape (array of ints): required with bytes
/// - dtype (text, default: from the data; "float32" for bytes): the tensor's dtype
/// - device (text, default "cpu"): "cpu", "cuda", "cuda:N"
/// - requires_grad (bool, default false): track gradients (floating dtypes only)
///
/// # Errors
/// - InvalidArgument: ragged arrays, bytes whose length is not the shape's (or bool bytes other than 0/1), a missing shape, an unknown dtype/device/option
/// - LimitExceeded: nesting deeper than 64, nested data over 2^28 elements, or out of memory
/// - Unsupported: a CUDA device without one
/// - OutOfRange: cuda:N past the last device
/// - CapabilityDenied: a CUDA device without capability gpu
#[rt_fn(cap = "gpu", scoped, tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_from_data(data: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["shape", "dtype", "device", "requires_grad"])?;
    let kind = opt_dtype(FN, &opts)?;
    let dev = opt_device(FN, &opts)?;
    let t = if let Some(b) = data.as_bytes() {
        let sv = opts.get("shape");
        if sv.is_nil() {
            return Err(Error::invalid(FN, "bytes need the shape option", format!("{} bytes", b.len())));
        }
        let dims = shape(FN, "shape", sv, false)?;
        let kind = kind.unwrap_or(Kind::Float);
        let n = dims.iter().try_fold(1i64, |a, d| a.checked_mul(*d)).unwrap_or(i64::MAX);
        let want = (n as i128) * elt_size(kind) as i128;
        if want != b.len() as i128 {
            return Err(Error::invalid(
                FN,
                format!("shape {dims:?} of {} needs {want} bytes", dtype_name(kind)),
                format!("{} bytes", b.len()),
            ));
        }
        if kind == Kind::Bool {
            if let Some(i) = b.iter().position(|x| *x > 1) {
                return Err(Error::invalid(FN, format!("bool bytes must be 0 or 1; byte {i} is {}", b[i]), "bytes"));
            }
        }
        Tensor::f_from_data_size(b, &dims, kind).ctx(FN, "from bytes")?
    } else if data.is_array() || data.as_int().is_some() || data.as_float().is_some() || data.as_bool().is_some() {
        from_nested(FN, data, kind)?
    } else {
        return Err(Error::new(Code::TypeMismatch, FN, "data must be nested arrays of numbers or bytes", data.describe()));
    };
    let t = if dev != Device::Cpu { t.f_to_device(dev).ctx(FN, "to the device")? } else { t };
    finish(FN, t, &opts)
}

// ------------------------------------------------------------------ data out

/// A detached, contiguous CPU copy (or view) of `t`.
fn host(func: &str, t: &Tensor) -> RtResult<Tensor> {
    let t = t.f_detach().ctx(func, "detach")?;
    let t = if t.device() != Device::Cpu { t.f_to_device(Device::Cpu).ctx(func, "copy to the CPU")? } else { t };
    t.f_contiguous().ctx(func, "contiguous")
}

fn nest<X: Copy>(dims: &[i64], data: &[X], mk: &dyn Fn(X) -> Value) -> Value {
    if dims.is_empty() {
        return mk(data[0]);
    }
    let n = dims[0] as usize;
    let out = Value::array(n);
    if dims.len() == 1 {
        for x in &data[..n] {
            out.push(mk(*x));
        }
        return out;
    }
    let step: usize = dims[1..].iter().product::<i64>() as usize;
    for k in 0..n {
        out.push(nest(&dims[1..], &data[k * step..(k + 1) * step], mk));
    }
    out
}

/// The tensor's values as nested arrays (a number for a 0-d tensor): floats for
/// floating dtypes, ints for integer dtypes, bools for bool. Copies to the CPU.
///
/// # Errors
/// - InvalidArgument: a complex dtype or libtorch refused
/// - LimitExceeded: out of memory
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_values_get(tensor: T) -> RtResult<Value> {
    let t = host(FN, &tensor.0)?;
    let dims = t.size();
    let n = t.numel();
    let k = kind_of(FN, &t)?;
    if matches!(k, Kind::ComplexFloat | Kind::ComplexDouble | Kind::ComplexHalf) {
        return Err(Error::invalid(FN, "complex tensors have no nested-array form", dtype_name(k)));
    }
    if is_float(k) {
        let t = t.f_to_kind(Kind::Double).ctx(FN, "to float64")?;
        let mut v = vec![0f64; n];
        t.f_copy_data(&mut v, n).ctx(FN, "copy out")?;
        Ok(nest(&dims, &v, &|x| Value::float(x)))
    } else if k == Kind::Bool {
        let mut v = vec![false; n];
        t.f_copy_data(&mut v, n).ctx(FN, "copy out")?;
        Ok(nest(&dims, &v, &|x| Value::bool(x)))
    } else {
        let t = t.f_to_kind(Kind::Int64).ctx(FN, "to int64")?;
        let mut v = vec![0i64; n];
        t.f_copy_data(&mut v, n).ctx(FN, "copy out")?;
        Ok(nest(&dims, &v, &|x| Value::int(x)))
    }
}

/// The tensor's elements as bytes: row-major, native little-endian, in its own
/// dtype (read back with `rt_tensor_from_data(bytes, {shape, dtype})`).
///
/// # Errors
/// - InvalidArgument: libtorch refused
/// - LimitExceeded: out of memory
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_bytes_get(tensor: T) -> RtResult<Value> {
    let t = host(FN, &tensor.0)?;
    let k = kind_of(FN, &t)?;
    let n = t.numel();
    let (out, buf) = Value::bytes_uninit(n * elt_size(k))?;
    if n > 0 {
        t.f_copy_data_u8(buf, n).ctx(FN, "copy out")?;
    }
    Ok(out)
}

// ------------------------------------------------------------------ properties

/// The shape as an array of ints.
///
/// # Errors
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "array<int>")]
pub fn rt_tensor_shape(tensor: T) -> RtResult<Value> {
    let out = Value::array(tensor.0.dim());
    for d in tensor.0.size() {
        out.push(Value::int(d));
    }
    Ok(out)
}

/// The dtype's name as PyTorch spells it without `torch.` ("float32", "int64", "bool"...).
///
/// # Errors
/// - InvalidArgument: a dtype libtorch does not name
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_dtype(tensor: T) -> RtResult<String> {
    Ok(dtype_name(kind_of(FN, &tensor.0)?).to_string())
}

/// The device: "cpu" or "cuda:N".
///
/// # Errors
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_device(tensor: T) -> RtResult<String> {
    Ok(device_name(tensor.0.device()))
}

/// A copy of the tensor on `device` ("cpu", "cuda", "cuda:N"); the same
/// values, part of the autograd graph.
///
/// # Errors
/// - InvalidArgument: an unknown device
/// - Unsupported: a CUDA device without one
/// - OutOfRange: cuda:N past the last device
/// - LimitExceeded: out of memory
/// - Closed: the tensor was closed
/// - CapabilityDenied: a CUDA device without capability gpu
#[rt_fn(cap = "gpu", scoped, tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_to_device(tensor: T, device: &str) -> RtResult<Value> {
    let d = self::device(FN, device)?;
    Ok(wrap(tensor.0.f_to_device(d).ctxf(FN, || format!("to {device}"))?))
}

// ------------------------------------------------------------------ arithmetic

/// The second operand of add/sub/mul/div: a tensor or a number.
pub enum Operand {
    T(Handle<TensorH>),
    I(i64),
    F(f64),
}

impl<'a> FromArg<'a> for Operand {
    const TY: ffi_sdk::TypeDesc = <Value as FromArg<'a>>::TY;
    fn from_arg(v: u64, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        let val = Value::from_raw(v);
        if let Some(i) = val.as_int() {
            return Ok(Operand::I(i));
        }
        if let Some(f) = val.as_float() {
            return Ok(Operand::F(f));
        }
        match <Handle<TensorH> as FromArg<'a>>::from_arg(v, func, idx, name) {
            Ok(h) => Ok(Operand::T(h)),
            Err(e) if e.code == Code::Closed => Err(e),
            Err(_) => Err(ffi_sdk::args::kind_error(func, idx, name, "a tensor handle or a number", val)),
        }
    }
}

type TT = fn(&Tensor, &Tensor) -> Result<Tensor, TchError>;
type TS = fn(&Tensor, tch::Scalar) -> Result<Tensor, TchError>;

fn binary(func: &str, op: &str, a: &Tensor, b: &Operand, tt: TT, ts: TS) -> RtResult<Value> {
    let r = match b {
        Operand::T(h) => tt(a, &h.0),
        Operand::I(i) => ts(a, tch::Scalar::int(*i)),
        Operand::F(f) => ts(a, tch::Scalar::float(*f)),
    };
    let r = r.map_err(|e| {
        let rhs = match b {
            Operand::T(h) => format!("{:?}", h.0.size()),
            Operand::I(i) => i.to_string(),
            Operand::F(f) => f.to_string(),
        };
        terr(func, format!("{:?} {op} {rhs}", a.size()), e)
    })?;
    Ok(wrap(r))
}

/// `a + b`: `b` a tensor (broadcast) or a number; PyTorch's type promotion.
///
/// # Errors
/// - InvalidArgument: shapes that do not broadcast, tensors on different devices, dtypes libtorch refuses
/// - LimitExceeded: out of memory
/// - Closed: a tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_add(a: T, b: Operand) -> RtResult<Value> {
    binary(FN, "+", &a.0, &b, |x, y| x.f_add(y), |x, s| x.f_add_scalar(s))
}

/// `a - b`: `b` a tensor (broadcast) or a number.
///
/// # Errors
/// - InvalidArgument: shapes that do not broadcast, tensors on different devices, bool operands
/// - LimitExceeded: out of memory
/// - Closed: a tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_sub(a: T, b: Operand) -> RtResult<Value> {
    binary(FN, "-", &a.0, &b, |x, y| x.f_sub(y), |x, s| x.f_sub_scalar(s))
}

/// `a * b` element-wise: `b` a tensor (broadcast) or a number.
///
/// # Errors
/// - InvalidArgument: shapes that do not broadcast, tensors on different devices
/// - LimitExceeded: out of memory
/// - Closed: a tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_mul(a: T, b: Operand) -> RtResult<Value> {
    binary(FN, "*", &a.0, &b, |x, y| x.f_mul(y), |x, s| x.f_mul_scalar(s))
}

/// `a / b` (true division: integer tensors give floats): `b` a tensor or a number.
///
/// # Errors
/// - InvalidArgument: shapes that do not broadcast, tensors on different devices
/// - LimitExceeded: out of memory
/// - Closed: a tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_div(a: T, b: Operand) -> RtResult<Value> {
    binary(FN, "/", &a.0, &b, |x, y| x.f_div(y), |x, s| x.f_div_scalar(s))
}

/// Matrix product with PyTorch's `matmul` rules (1-d, 2-d, batched, broadcast).
///
/// # Errors
/// - InvalidArgument: inner dimensions that differ, 0-d operands, different dtypes or devices
/// - LimitExceeded: out of memory
/// - Closed: a tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_matmul(a: T, b: T) -> RtResult<Value> {
    let r = a.0.f_matmul(&b.0).ctxf(FN, || format!("{:?} @ {:?}", a.0.size(), b.0.size()))?;
    Ok(wrap(r))
}

/// Swaps dimensions `dim0` and `dim1` (default -2 and -1: a matrix transpose;
/// negative counts from the end). A view sharing the data.
///
/// # Errors
/// - InvalidArgument: a dimension out of range (libtorch's message)
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_transpose(tensor: T, dim0: Option<i64>, dim1: Option<i64>) -> RtResult<Value> {
    let (d0, d1) = (dim0.unwrap_or(-2), dim1.unwrap_or(-1));
    Ok(wrap(tensor.0.f_transpose(d0, d1).ctxf(FN, || format!("transpose({d0}, {d1}) of {:?}", tensor.0.size()))?))
}

/// The same elements in `shape` (array of ints, one may be -1 = inferred).
///
/// # Errors
/// - InvalidArgument: a shape with another element count, more than one -1, other negatives
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_reshape(tensor: T, shape: Array) -> RtResult<Value> {
    let dims = self::shape(FN, "shape", shape.0, true)?;
    Ok(wrap(tensor.0.f_reshape(&dims).ctxf(FN, || format!("reshape {:?} to {dims:?}", tensor.0.size()))?))
}

fn reduce_opts(func: &str, opts: &Opts) -> RtResult<(Option<Vec<i64>>, bool, Option<Kind>)> {
    opts.only(&["dims", "keepdim", "dtype"])?;
    let dims = match opts.get("dims") {
        v if v.is_nil() => None,
        v if v.as_int().is_some() => Some(vec![v.as_int().unwrap_or(0)]),
        v => {
            if !v.is_array() {
                return Err(Error::invalid(func, "option dims must be an int or an array of ints", v.describe()));
            }
            let mut out = Vec::new();
            for x in v.items() {
                out.push(x.as_int().ok_or_else(|| Error::invalid(func, "option dims must hold ints", x.describe()))?);
            }
            Some(out)
        }
    };
    Ok((dims, opts.bool("keepdim")?.unwrap_or(false), opt_dtype(func, opts)?))
}

/// The sum of all elements (a 0-d tensor), or along `dims`.
///
/// # Options
/// - dims (int or array of ints): the dimensions to reduce (all when absent)
/// - keepdim (bool, default false): keep reduced dimensions with size 1
/// - dtype (text): accumulate and return in this dtype
///
/// # Errors
/// - InvalidArgument: a dimension out of range, an unknown option or dtype
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_sum(tensor: T, opts: Opts) -> RtResult<Value> {
    let (dims, keep, k) = reduce_opts(FN, &opts)?;
    let r = match &dims {
        None => tensor.0.f_sum(k),
        Some(d) => tensor.0.f_sum_dim_intlist(d.as_slice(), keep, k),
    };
    Ok(wrap(r.ctxf(FN, || format!("sum over {dims:?} of {:?}", tensor.0.size()))?))
}

/// The mean of all elements (a 0-d tensor), or along `dims`; floating dtypes
/// only (or give `dtype`).
///
/// # Options
/// - dims (int or array of ints): the dimensions to reduce (all when absent)
/// - keepdim (bool, default false): keep reduced dimensions with size 1
/// - dtype (text): compute in this floating dtype
///
/// # Errors
/// - InvalidArgument: an integer tensor without dtype, a dimension out of range, an unknown option or dtype
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified", ret = "handle<tensor>")]
pub fn rt_tensor_mean(tensor: T, opts: Opts) -> RtResult<Value> {
    let (dims, keep, k) = reduce_opts(FN, &opts)?;
    let r = match &dims {
        None => tensor.0.f_mean(k),
        Some(d) => tensor.0.f_mean_dim(d.as_slice(), keep, k),
    };
    Ok(wrap(r.ctxf(FN, || format!("mean over {dims:?} of {:?}", tensor.0.size()))?))
}

// ------------------------------------------------------------------ autograd

/// Back-propagates from `tensor` (a scalar, e.g. a loss), accumulating into
/// the `grad` of every leaf that requires gradients. The graph is freed.
///
/// # Errors
/// - InvalidArgument: a non-scalar tensor, one that does not require grad, a graph already freed
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_backward(tensor: T) -> RtResult<()> {
    tensor.0.f_backward().ctxf(FN, || format!("backward from {:?}", tensor.0.size()))
}

/// The accumulated gradient of a leaf tensor (a tensor handle sharing it), or
/// nil when none was computed.
///
/// # Errors
/// - InvalidArgument: libtorch refused
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_grad(tensor: T) -> RtResult<Value> {
    let g = tensor.0.f_grad().ctx(FN, "grad")?;
    if !g.defined() {
        return Ok(Value::NIL);
    }
    Ok(wrap(g))
}

/// Whether gradients are tracked for the tensor; with `flag`, sets it first
/// (on this tensor itself, as `t.requires_grad_(flag)`).
///
/// # Errors
/// - InvalidArgument: true for a non-floating tensor, false for a non-leaf
/// - Closed: the tensor was closed
#[rt_fn(tier = "verified")]
pub fn rt_tensor_requires_grad(tensor: T, flag: Option<bool>) -> RtResult<bool> {
    if let Some(f) = flag {
        let _ = tensor.0.f_set_requires_grad(f).ctxf(FN, || format!("requires_grad({f}) on a {} tensor", tensor.0.f_kind().map(dtype_name).unwrap_or("?")))?;
    }
    Ok(tensor.0.requires_grad())
}
