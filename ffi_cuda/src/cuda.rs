//! The 18 exports (plan section 6.2) over cudarc's driver API.

use crate::ptx::{self, Param};
use cudarc::driver::sys;
use cudarc::driver::{CudaContext, CudaEvent, CudaFunction, CudaModule, CudaSlice, CudaStream, DriverError, LaunchConfig, PushKernelArg};
use ffi_sdk::prelude::*;
use ffi_sdk::deadline;
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// The message of every function when the driver is absent.
pub const NO_DRIVER: &str = "no CUDA driver (libcuda.so.1 not found)";

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The driver's state, probed once: Ok(device count) or why it cannot be used.
fn driver_state() -> &'static Result<usize, String> {
    static STATE: OnceLock<Result<usize, String>> = OnceLock::new();
    STATE.get_or_init(|| {
        // cudarc panics when it cannot load the library: ask first.
        // SAFETY: is_culib_present only tries libloading::Library::new on cudarc's fixed
        // candidate names and drops each handle; loading the vendor's libcuda runs its
        // initialisers, which is what any later driver call would do anyway.
        if !unsafe { sys::is_culib_present() } {
            return Err(NO_DRIVER.to_string());
        }
        if let Err(e) = cudarc::driver::result::init() {
            if e.0 == sys::cudaError_enum::CUDA_ERROR_NO_DEVICE {
                return Ok(0);
            }
            return Err(format!("the CUDA driver failed to initialise ({})", describe(&e)));
        }
        match CudaContext::device_count() {
            Ok(n) => Ok(n.max(0) as usize),
            Err(e) => Err(format!("cuDeviceGetCount failed ({})", describe(&e))),
        }
    })
}

/// Whether a usable driver was found (for tests and `rt demo`).
pub fn driver_present() -> bool {
    driver_state().is_ok()
}

fn driver(func: &str) -> RtResult<usize> {
    match driver_state() {
        Ok(n) => Ok(*n),
        Err(m) => Err(Error::unsupported(func, m)),
    }
}

fn describe(e: &DriverError) -> String {
    match e.error_string() {
        Ok(s) => format!("{:?}: {}", e.0, s.to_string_lossy()),
        Err(_) => format!("{:?}", e.0),
    }
}

fn derr(func: &str, what: &str, e: DriverError) -> Error {
    let code = match e.0 {
        sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY => Code::LimitExceeded,
        sys::cudaError_enum::CUDA_ERROR_INVALID_VALUE => Code::InvalidArgument,
        sys::cudaError_enum::CUDA_ERROR_INVALID_PTX
        | sys::cudaError_enum::CUDA_ERROR_INVALID_IMAGE
        | sys::cudaError_enum::CUDA_ERROR_NO_BINARY_FOR_GPU => Code::Parse,
        sys::cudaError_enum::CUDA_ERROR_NOT_FOUND => Code::NotFound,
        _ => Code::Io,
    };
    Error::plain(code, func, format!("{what}: {}", describe(&e)))
}

thread_local! {
    /// The calling thread's current device (`cudaSetDevice` semantics).
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// The primary context of each device, made on first use; cudarc's own
/// multi-stream event tracking is off: this library orders work itself (every
/// copy waits for its stream, an asynchronous launch leaves an event on each
/// buffer it used that later users wait for).
fn context(func: &str, ordinal: usize) -> RtResult<Arc<CudaContext>> {
    let n = driver(func)?;
    if ordinal >= n {
        return Err(Error::new(Code::OutOfRange, func, format!("no CUDA device {ordinal} ({n} present)"), ordinal));
    }
    static CTXS: Mutex<Vec<Option<Arc<CudaContext>>>> = Mutex::new(Vec::new());
    let mut g = lock(&CTXS);
    if g.len() < n {
        g.resize(n, None);
    }
    if let Some(c) = &g[ordinal] {
        return Ok(c.clone());
    }
    let c = CudaContext::new(ordinal).map_err(|e| derr(func, "cannot create the device context", e))?;
    // SAFETY: without event tracking, cross-stream ordering is ours to keep (cudarc's
    // contract), and this module keeps it: every use of a buffer first waits for the
    // buffer's `pending` event (`take_pending`), launches record a new one, allocation and
    // copies synchronise their stream before returning, and `CudaBuffer::drop` synchronises
    // the pending event before freeing. Called before any slice exists in this context, so
    // no slice is left half-tracked.
    unsafe { c.disable_event_tracking() };
    g[ordinal] = Some(c.clone());
    Ok(c)
}

fn current(func: &str) -> RtResult<Arc<CudaContext>> {
    context(func, CURRENT.with(|c| c.get()))
}

// ------------------------------------------------------------------ handles

/// A handle argument that first checks for the driver: without one, every
/// call is Error Unsupported whatever the argument (no handle of these types
/// can exist then), so a host sees one consistent answer.
pub struct Dev<T: HandleType>(Handle<T>);

impl<'a, T: HandleType> ffi_sdk::FromArg<'a> for Dev<T> {
    const TY: ffi_sdk::TypeDesc = <Handle<T> as ffi_sdk::FromArg<'a>>::TY;
    fn from_arg(v: u64, func: &'static str, idx: usize, name: &'static str) -> RtResult<Self> {
        driver(func)?;
        <Handle<T> as ffi_sdk::FromArg<'a>>::from_arg(v, func, idx, name).map(Dev)
    }
}

impl<T: HandleType> std::ops::Deref for Dev<T> {
    type Target = Handle<T>;
    fn deref(&self) -> &Handle<T> {
        &self.0
    }
}

struct BufInner {
    slice: Option<CudaSlice<u8>>,
    /// Recorded after an asynchronous launch that used the buffer.
    pending: Option<Arc<CudaEvent>>,
}

/// Device memory (handle type `cuda_buffer`).
pub struct CudaBuffer {
    inner: Mutex<BufInner>,
    len: usize,
    ctx: Arc<CudaContext>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for CudaBuffer {
    const NAME: &'static str = "cuda_buffer";
}

impl Drop for CudaBuffer {
    fn drop(&mut self) {
        let mut g = lock(&self.inner);
        if let Some(ev) = g.pending.take() {
            let _ = ev.synchronize();
        }
        drop(g.slice.take());
    }
}

/// A stream (handle type `cuda_stream`).
pub struct StreamH {
    stream: Arc<CudaStream>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for StreamH {
    const NAME: &'static str = "cuda_stream";
}

/// An event (handle type `cuda_event`).
pub struct EventH {
    event: CudaEvent,
    timing: bool,
    recorded: Mutex<bool>,
}
// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for EventH {
    const NAME: &'static str = "cuda_event";
}

/// Waits for `done` to become true, honouring the thread's deadline (the GPU
/// work itself cannot be undone; it completes later).
fn wait_until(func: &'static str, mut done: impl FnMut() -> RtResult<bool>, block: impl FnOnce() -> RtResult<()>) -> RtResult<()> {
    if !deadline::active() {
        return block();
    }
    let mut pause = Duration::from_micros(20);
    loop {
        if done()? {
            return Ok(());
        }
        deadline::sleep(func, pause)?;
        pause = (pause * 2).min(Duration::from_millis(2));
    }
}

fn stream_query(func: &str, s: &CudaStream) -> RtResult<bool> {
    // SAFETY: `s` is borrowed from a live `CudaStream` (its Arc is held by the caller), so the
    // raw CUstream handle is valid for the call; cuStreamQuery only reads its state.
    match unsafe { sys::cuStreamQuery(s.cu_stream()) } {
        sys::cudaError_enum::CUDA_SUCCESS => Ok(true),
        sys::cudaError_enum::CUDA_ERROR_NOT_READY => Ok(false),
        e => Err(derr(func, "cuStreamQuery", DriverError(e))),
    }
}

fn sync_stream(func: &'static str, s: &CudaStream) -> RtResult<()> {
    wait_until(func, || stream_query(func, s), || s.synchronize().map_err(|e| derr(func, "stream synchronize", e)))
}

fn stream_of(ctx: &Arc<CudaContext>, s: &Option<Dev<StreamH>>) -> Arc<CudaStream> {
    match s {
        Some(h) => h.stream.clone(),
        None => ctx.default_stream(),
    }
}

fn same_ctx(func: &str, a: &Arc<CudaContext>, b: &Arc<CudaContext>) -> RtResult<()> {
    if a.ordinal() != b.ordinal() {
        return Err(Error::invalid(func, "the stream and the buffer are on different devices", format!("{} vs {}", a.ordinal(), b.ordinal())));
    }
    Ok(())
}

fn range(func: &str, what: &str, off: i64, len: i64, size: usize) -> RtResult<(usize, usize)> {
    if off < 0 || len < 0 || (off as u128 + len as u128) > size as u128 {
        return Err(Error::new(
            Code::OutOfRange,
            func,
            format!("{what} bytes {off}..{} are outside the {size}-byte buffer", off as i128 + len as i128),
            off,
        ));
    }
    Ok((off as usize, len as usize))
}

// ------------------------------------------------------------------ devices

/// The number of CUDA devices: 0 when no driver is installed (never an Error for that).
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_device_count() -> RtResult<i64> {
    match driver_state() {
        Ok(n) => Ok(*n as i64),
        Err(m) if m == NO_DRIVER => Ok(0),
        Err(m) => Err(Error::unsupported(FN, m)),
    }
}

/// The calling thread's current device ordinal (0 until `rt_cuda_device_set`).
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_device_get() -> RtResult<i64> {
    driver(FN)?;
    Ok(CURRENT.with(|c| c.get()) as i64)
}

/// Makes `device` the calling thread's current device (used by malloc, streams, events and launches).
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: no CUDA device <device> (<n> present)
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_device_set(device: i64) -> RtResult<()> {
    let n = driver(FN)?;
    if device < 0 || device as usize >= n {
        return Err(Error::new(Code::OutOfRange, FN, format!("no CUDA device {device} ({n} present)"), device));
    }
    CURRENT.with(|c| c.set(device as usize));
    Ok(())
}

/// The name of `device` (the current one when nil).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: a device ordinal is never negative; no CUDA device <ordinal> (<n> present)
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_device_name(device: Option<i64>) -> RtResult<String> {
    let ctx = device_ctx(FN, device)?;
    ctx.name().map_err(|e| derr(FN, "cuDeviceGetName", e))
}

fn device_ctx(func: &str, device: Option<i64>) -> RtResult<Arc<CudaContext>> {
    match device {
        None => current(func),
        Some(d) if d < 0 => Err(Error::new(Code::OutOfRange, func, "a device ordinal is never negative", d)),
        Some(d) => context(func, d as usize),
    }
}

/// Memory of `device` (the current one when nil): `{free, total}` in bytes,
/// plus `compute_capability` ("8.0").
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: a device ordinal is never negative; no CUDA device <ordinal> (<n> present)
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "experimental", ret = "dict")]
pub fn rt_cuda_device_memory(device: Option<i64>) -> RtResult<Value> {
    let ctx = device_ctx(FN, device)?;
    let (free, total) = ctx.mem_get_info().map_err(|e| derr(FN, "cuMemGetInfo", e))?;
    let (ma, mi) = ctx.compute_capability().map_err(|e| derr(FN, "compute capability", e))?;
    let d = Value::dict();
    d.set("free", Value::int(free as i64));
    d.set("total", Value::int(total as i64));
    d.set("compute_capability", Value::text(&format!("{ma}.{mi}")));
    Ok(d)
}

// ------------------------------------------------------------------ memory

/// Allocates `size` bytes (zeroed) on the current device: a `cuda_buffer`
/// handle, freed by `rt_cuda_free`, `rt_handle_close` or the collector.
///
/// # Errors
/// - InvalidArgument: size must be 0 or more
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: no CUDA device <ordinal> (<n> present)
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_malloc(size: i64) -> RtResult<Value> {
    let ctx = current(FN)?;
    if size < 0 {
        return Err(Error::invalid(FN, "size must be 0 or more", size));
    }
    let stream = ctx.default_stream();
    let slice = stream.alloc_zeros::<u8>(size as usize).map_err(|e| derr(FN, &format!("cannot allocate {size} bytes"), e))?;
    sync_stream(FN, &stream)?;
    Ok(new_handle(CudaBuffer { inner: Mutex::new(BufInner { slice: Some(slice), pending: None }), len: size as usize, ctx }))
}

/// Frees a buffer (the same as closing its handle; idempotent). Later use is Error Closed.
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `buffer` was closed
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_free(buffer: Dev<CudaBuffer>) -> RtResult<()> {
    driver(FN)?;
    buffer.close();
    Ok(())
}

fn take_pending(g: &mut BufInner, stream: &CudaStream, func: &str) -> RtResult<()> {
    if let Some(ev) = g.pending.as_ref() {
        stream.wait(ev).map_err(|e| derr(func, "waiting for an earlier launch", e))?;
    }
    Ok(())
}

/// Copies `data` into `dst` at byte `offset` (0 when nil). Returns when the copy is complete.
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: the buffer was freed; `dst` was closed
/// - OutOfRange: it does not fit
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_memcpy_h2d(dst: Dev<CudaBuffer>, data: &[u8], offset: Option<i64>) -> RtResult<()> {
    driver(FN)?;
    let (off, n) = range(FN, "destination", offset.unwrap_or(0), data.len() as i64, dst.len)?;
    if n == 0 {
        return Ok(());
    }
    let stream = dst.ctx.default_stream();
    let mut g = lock(&dst.inner);
    take_pending(&mut g, &stream, FN)?;
    let slice = g.slice.as_mut().ok_or_else(|| Error::plain(Code::Closed, FN, "the buffer was freed"))?;
    let mut view = slice.slice_mut(off..off + n);
    stream.memcpy_htod(data, &mut view).map_err(|e| derr(FN, "cuMemcpyHtoD", e))?;
    sync_stream(FN, &stream)
}

/// Copies `len` bytes (the rest of the buffer when nil) from byte `offset` (0 when nil) of `src` into new bytes.
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: the buffer was freed; `src` was closed
/// - OutOfRange: past the end
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_memcpy_d2h(src: Dev<CudaBuffer>, offset: Option<i64>, len: Option<i64>) -> RtResult<Value> {
    driver(FN)?;
    let off = offset.unwrap_or(0);
    let len = len.unwrap_or((src.len as i64 - off).max(0));
    let (off, n) = range(FN, "source", off, len, src.len)?;
    let (out, buf) = Value::bytes_uninit(n)?;
    if n == 0 {
        return Ok(out);
    }
    let stream = src.ctx.default_stream();
    let mut g = lock(&src.inner);
    take_pending(&mut g, &stream, FN)?;
    let slice = g.slice.as_ref().ok_or_else(|| Error::plain(Code::Closed, FN, "the buffer was freed"))?;
    let view = slice.slice(off..off + n);
    stream.memcpy_dtoh(&view, buf).map_err(|e| derr(FN, "cuMemcpyDtoH", e))?;
    sync_stream(FN, &stream)?;
    Ok(out)
}

/// Copies between buffers (the same buffer allowed when the ranges do not overlap).
///
/// # Options
/// - len (int): default: the smaller of what is left in each
/// - src_offset (int, default 0): src offset
/// - dst_offset (int, default 0): 0
///
/// # Errors
/// - InvalidArgument: the source and destination ranges overlap; an unknown option, or an option of the wrong kind or range
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: the buffer was freed; the source buffer was freed; the destination buffer was freed; `dst` was closed
/// - OutOfRange: past either end
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_memcpy_d2d(dst: Dev<CudaBuffer>, src: Dev<CudaBuffer>, opts: Opts) -> RtResult<()> {
    driver(FN)?;
    opts.only(&["len", "src_offset", "dst_offset"])?;
    let so = opts.int("src_offset")?.unwrap_or(0);
    let dof = opts.int("dst_offset")?.unwrap_or(0);
    let len = opts.int("len")?.unwrap_or_else(|| (src.len as i64 - so).min(dst.len as i64 - dof).max(0));
    let (so, n) = range(FN, "source", so, len, src.len)?;
    let (dof, _) = range(FN, "destination", dof, len, dst.len)?;
    if n == 0 {
        return Ok(());
    }
    let stream = dst.ctx.default_stream();
    let same = std::ptr::eq(&**dst as *const CudaBuffer, &**src as *const CudaBuffer);
    if same {
        if so < dof + n && dof < so + n {
            return Err(Error::invalid(FN, "the source and destination ranges overlap", format!("{so}..{} and {dof}..{}", so + n, dof + n)));
        }
        let mut g = lock(&dst.inner);
        take_pending(&mut g, &stream, FN)?;
        let slice = g.slice.as_mut().ok_or_else(|| Error::plain(Code::Closed, FN, "the buffer was freed"))?;
        let ptr = {
            use cudarc::driver::DevicePtr;
            let (p, _rec) = slice.device_ptr(&stream);
            p
        };
        // SAFETY: `range` checked both `so..so+n` and `dof..dof+n` against the buffer's length,
        // the ranges were just checked not to overlap, and `ptr` is the live allocation (its
        // lock `g` is held and pending work waited for); the copy is synchronised below.
        unsafe { cudarc::driver::result::memcpy_dtod_async(ptr + dof as u64, ptr + so as u64, n, stream.cu_stream()) }
            .map_err(|e| derr(FN, "cuMemcpyDtoD", e))?;
        return sync_stream(FN, &stream);
    }
    let mut gd = lock(&dst.inner);
    let mut gs = lock(&src.inner);
    take_pending(&mut gd, &stream, FN)?;
    take_pending(&mut gs, &stream, FN)?;
    let sslice = gs.slice.as_ref().ok_or_else(|| Error::plain(Code::Closed, FN, "the source buffer was freed"))?;
    let dslice = gd.slice.as_mut().ok_or_else(|| Error::plain(Code::Closed, FN, "the destination buffer was freed"))?;
    let sv = sslice.slice(so..so + n);
    let mut dv = dslice.slice_mut(dof..dof + n);
    stream.memcpy_dtod(&sv, &mut dv).map_err(|e| derr(FN, "cuMemcpyDtoD", e))?;
    drop(gs);
    drop(gd);
    sync_stream(FN, &stream)
}

// ------------------------------------------------------------------ streams and events

/// A new stream on the current device (handle type `cuda_stream`).
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: no CUDA device <ordinal> (<n> present)
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_stream_create() -> RtResult<Value> {
    let ctx = current(FN)?;
    let stream = ctx.new_stream().map_err(|e| derr(FN, "cuStreamCreate", e))?;
    Ok(new_handle(StreamH { stream }))
}

/// Waits until all work queued on `stream` is complete.
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `stream` was closed
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_stream_sync(stream: Dev<StreamH>) -> RtResult<()> {
    driver(FN)?;
    sync_stream(FN, &stream.stream)
}

/// Destroys a stream (the same as closing its handle; queued work still completes).
///
/// # Errors
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `stream` was closed
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_stream_destroy(stream: Dev<StreamH>) -> RtResult<()> {
    driver(FN)?;
    stream.close();
    Ok(())
}

/// A new event on the current device (handle type `cuda_event`).
///
/// # Options
/// - timing (bool, default true): false makes a lighter event `rt_cuda_event_elapsed` refuses
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - OutOfRange: no CUDA device <ordinal> (<n> present)
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_event_create(opts: Opts) -> RtResult<Value> {
    let ctx = current(FN)?;
    opts.only(&["timing"])?;
    let timing = opts.bool("timing")?.unwrap_or(true);
    let flags = if timing { sys::CUevent_flags::CU_EVENT_DEFAULT } else { sys::CUevent_flags::CU_EVENT_DISABLE_TIMING };
    let event = ctx.new_event(Some(flags)).map_err(|e| derr(FN, "cuEventCreate", e))?;
    Ok(new_handle(EventH { event, timing, recorded: Mutex::new(false) }))
}

/// Records `event` on `stream` (the device's default stream when nil).
///
/// # Errors
/// - InvalidArgument: the stream and the buffer are on different devices
/// - NotFound: what it names does not exist
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `event` was closed; `stream` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_event_record(event: Dev<EventH>, stream: Option<Dev<StreamH>>) -> RtResult<()> {
    driver(FN)?;
    let ctx = event.event.context().clone();
    let s = stream_of(&ctx, &stream);
    same_ctx(FN, s.context(), &ctx)?;
    event.event.record(&s).map_err(|e| derr(FN, "cuEventRecord", e))?;
    *lock(&event.recorded) = true;
    Ok(())
}

/// Waits until the work before the event's last record is complete.
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `event` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_event_sync(event: Dev<EventH>) -> RtResult<()> {
    driver(FN)?;
    let ev = &event.event;
    wait_until(
        FN,
        || ev.try_is_complete().map_err(|e| derr(FN, "cuEventQuery", e)),
        || ev.synchronize().map_err(|e| derr(FN, "cuEventSynchronize", e)),
    )
}

/// Milliseconds between two recorded, completed timing events (a float).
///
/// # Errors
/// - InvalidArgument: the <which> event was made with timing: false; the <which> event was never recorded
/// - NotFound: what it names does not exist
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Closed: `start` was closed; `end` was closed
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "gpu", tier = "experimental")]
pub fn rt_cuda_event_elapsed(start: Dev<EventH>, end: Dev<EventH>) -> RtResult<f64> {
    driver(FN)?;
    for (e, which) in [(&start, "start"), (&end, "end")] {
        if !e.timing {
            return Err(Error::invalid(FN, format!("the {which} event was made with timing: false"), which));
        }
        if !*lock(&e.recorded) {
            return Err(Error::invalid(FN, format!("the {which} event was never recorded"), which));
        }
    }
    start.event.elapsed_ms(&end.event).map(|ms| ms as f64).map_err(|e| derr(FN, "cuEventElapsedTime", e))
}

// ------------------------------------------------------------------ kernels

type ModKey = (usize, u64);

fn module(func: &str, ctx: &Arc<CudaContext>, ptx_src: &str) -> RtResult<Arc<CudaModule>> {
    use std::hash::{Hash, Hasher};
    static MODS: OnceLock<Mutex<HashMap<ModKey, Arc<CudaModule>>>> = OnceLock::new();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    ptx_src.hash(&mut h);
    let key = (ctx.ordinal(), h.finish());
    let mods = MODS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(m) = lock(mods).get(&key) {
        return Ok(m.clone());
    }
    let m = ctx
        .load_module(cudarc::nvrtc::Ptx::from_src(ptx_src.to_string()))
        .map_err(|e| derr(func, "the driver refused the PTX", e))?;
    let mut g = lock(mods);
    if g.len() >= 256 {
        g.clear();
    }
    g.insert(key, m.clone());
    Ok(m)
}

fn dims(func: &str, what: &str, v: Value) -> RtResult<(u32, u32, u32)> {
    let bad = || Error::invalid(func, format!("{what} must be a positive int or an array of 1 to 3 positive ints"), v.describe());
    let one = |x: Value| -> RtResult<u32> {
        match x.as_int() {
            Some(i) if i >= 1 && i <= u32::MAX as i64 => Ok(i as u32),
            _ => Err(bad()),
        }
    };
    if v.is_array() {
        let n = v.len();
        if n == 0 || n > 3 {
            return Err(bad());
        }
        let mut d = [1u32; 3];
        for (i, slot) in d.iter_mut().enumerate().take(n) {
            *slot = one(v.at(i))?;
        }
        return Ok((d[0], d[1], d[2]));
    }
    Ok((one(v)?, 1, 1))
}

enum Arg {
    /// The index of a buffer in the launch's buffer list.
    Buf(usize),
    /// A scalar, little-endian in the low bytes of a u64 slot.
    Scalar(u64),
}

fn int_param(func: &str, i: usize, p: Param, v: Value) -> RtResult<u64> {
    let bits = match p {
        Param::U(b) | Param::S(b) | Param::B(b) => b,
        _ => 0,
    };
    let x = if let Some(b) = v.as_bool() { b as i64 } else {
        v.as_int().ok_or_else(|| Error::new(Code::TypeMismatch, func, format!("kernel argument {i} is {} and needs an int", p.name()), v.describe()))?
    };
    let ok = match p {
        Param::U(64) => x >= 0,
        Param::S(64) | Param::B(64) => true,
        Param::U(b) => x >= 0 && (x as u128) < (1u128 << b),
        Param::S(b) => x >= -(1i64 << (b - 1)) && x < (1i64 << (b - 1)),
        Param::B(b) => x >= -(1i64 << (b - 1)) && (x as i128) < (1i128 << b),
        _ => false,
    };
    if !ok {
        return Err(Error::new(Code::OutOfRange, func, format!("kernel argument {i} does not fit {}", p.name()), x));
    }
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    Ok(x as u64 & mask)
}

/// Launches kernel `name` from PTX text `ptx` on the current device with `grid` and `block` (an int or an array
/// of 1-3 ints). `args` must match the kernel's `.param` list as declared in the PTX: a `cuda_buffer` handle for
/// a 64-bit pointer parameter, ints (range checked) for integer ones, floats or ints for `.f32`/`.f64`. The
/// loaded module is cached per device and PTX text.
///
/// # Options
/// - stream: a `cuda_stream`; default: the device's default stream
/// - shared_mem (int >= 0, default 0): dynamic shared bytes, 0
/// - sync (bool, default true): return when the kernel has finished; false: return at once, later copies and frees of the buffers wait for it
///
/// # Errors
/// - InvalidArgument: bad kernel name; PTX text contains a NUL byte; kernel <name> takes … arguments (…), got …; kernel argument <i> is a buffer on another device
/// - NotFound: no kernel (.entry) of that name in the PTX (kernels: …)
/// - Unsupported: kernel argument <i>: by-value arrays, structs and .f16 parameters are not supported
/// - Closed: a buffer argument was freed
/// - OutOfRange: no CUDA device <ordinal> (<n> present); kernel argument <i> does not fit …
#[rt_fn(cap = "gpu", blocking, tier = "experimental")]
pub fn rt_cuda_launch_kernel(ptx: &str, name: &str, grid: Value, block: Value, args: Array, opts: Opts) -> RtResult<()> {
    let ctx = current(FN)?;
    opts.only(&["stream", "shared_mem", "sync"])?;
    let shared = opts.int_in("shared_mem", 0, u32::MAX as i64)?.unwrap_or(0) as u32;
    let sync = opts.bool("sync")?.unwrap_or(true);
    let stream_v = opts.get("stream");
    let stream_h: Option<Dev<StreamH>> = if stream_v.is_nil() {
        None
    } else {
        Some(<Dev<StreamH> as ffi_sdk::FromArg>::from_arg(stream_v.raw(), FN, 5, "opts.stream")?)
    };
    let stream = stream_of(&ctx, &stream_h);
    same_ctx(FN, stream.context(), &ctx)?;
    let grid = dims(FN, "grid", grid)?;
    let block = dims(FN, "block", block)?;
    if name.is_empty() || name.contains('\0') {
        return Err(Error::invalid(FN, "bad kernel name", ffi_sdk::error::quote(name)));
    }
    if ptx.contains('\0') {
        return Err(Error::invalid(FN, "PTX text contains a NUL byte", ptx.len()));
    }
    let params = ptx::params(ptx, name).ok_or_else(|| {
        let have = ptx::entries(ptx);
        Error::not_found(FN, format!("no kernel (.entry) of that name in the PTX (kernels: {})", have.join(", ")), ffi_sdk::error::quote(name))
    })?;
    let argv = args.0;
    if argv.len() != params.len() {
        return Err(Error::invalid(
            FN,
            format!("kernel {name} takes {} arguments ({}), got {}", params.len(), params.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "), argv.len()),
            argv.len(),
        ));
    }
    // Convert every argument before anything reaches the driver.
    let mut bufs: Vec<Handle<CudaBuffer>> = Vec::new();
    let mut conv: Vec<Arg> = Vec::with_capacity(params.len());
    for (i, (p, v)) in params.iter().zip(argv.items()).enumerate() {
        let a = match p {
            Param::Other => {
                return Err(Error::unsupported(FN, format!("kernel argument {i}: by-value arrays, structs and .f16 parameters are not supported")))
            }
            Param::F32 | Param::F64 => {
                let f = v.as_float().or_else(|| v.as_int().map(|x| x as f64)).ok_or_else(|| {
                    Error::new(Code::TypeMismatch, FN, format!("kernel argument {i} is {} and needs a float", p.name()), v.describe())
                })?;
                Arg::Scalar(if *p == Param::F32 { (f as f32).to_bits() as u64 } else { f.to_bits() })
            }
            Param::U(64) | Param::B(64) | Param::S(64) if v.kind() == ffi_sdk::abi::Kind::Handle => {
                let h = <Handle<CudaBuffer> as ffi_sdk::FromArg>::from_arg(v.raw(), FN, 4, "args")
                    .map_err(|e| Error { message: format!("{} (kernel argument {i})", e.message), ..e })?;
                if h.ctx.ordinal() != ctx.ordinal() {
                    return Err(Error::invalid(FN, format!("kernel argument {i} is a buffer on another device"), h.ctx.ordinal()));
                }
                let idx = match bufs.iter().position(|b| std::ptr::eq(&**b, &*h)) {
                    Some(k) => k,
                    None => {
                        bufs.push(h);
                        bufs.len() - 1
                    }
                };
                Arg::Buf(idx)
            }
            _ => Arg::Scalar(int_param(FN, i, *p, v)?),
        };
        conv.push(a);
    }
    let module = module(FN, &ctx, ptx)?;
    let f: CudaFunction = module.load_function(name).map_err(|e| derr(FN, &format!("no kernel {name} in the module"), e))?;
    // Lock each distinct buffer once; wait for earlier asynchronous launches.
    let mut guards: Vec<MutexGuard<'_, BufInner>> = Vec::with_capacity(bufs.len());
    for b in &bufs {
        let mut g = lock(&b.inner);
        take_pending(&mut g, &stream, FN)?;
        if g.slice.is_none() {
            return Err(Error::plain(Code::Closed, FN, "a buffer argument was freed"));
        }
        guards.push(g);
    }
    let ptrs: Vec<u64> = guards
        .iter()
        .map(|g| {
            use cudarc::driver::DevicePtr;
            let (p, _rec) = g.slice.as_ref().expect("checked above").device_ptr(&stream);
            p
        })
        .collect();
    let mut lb = stream.launch_builder(&f);
    for a in &conv {
        match a {
            Arg::Buf(k) => lb.arg(&ptrs[*k]),
            Arg::Scalar(s) => lb.arg(s),
        };
    }
    let cfg = LaunchConfig { grid_dim: grid, block_dim: block, shared_mem_bytes: shared };
    // SAFETY: the argument count and sizes match the kernel's declared
    // parameters (read from its PTX); pointers are live allocations, kept
    // alive until the kernel is known to be done (sync, or the pending event).
    unsafe { lb.launch(cfg) }.map_err(|e| derr(FN, &format!("launching {name}"), e))?;
    if sync {
        drop(guards);
        return sync_stream(FN, &stream);
    }
    let ev = Arc::new(ctx.new_event(None).map_err(|e| derr(FN, "cuEventCreate", e))?);
    ev.record(&stream).map_err(|e| derr(FN, "cuEventRecord", e))?;
    for g in guards.iter_mut() {
        g.pending = Some(ev.clone());
    }
    Ok(())
}
