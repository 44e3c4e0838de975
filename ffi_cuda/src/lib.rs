//! ffi_cuda: CUDA devices, memory, streams, events and PTX kernels through the
//! driver API (cudarc, the driver loaded at run time). Built with the `cuda`
//! feature; without it the library is empty.
//!
//! Without a driver (no `libcuda.so.1`, as on every CI machine)
//! `rt_cuda_device_count()` is 0 and every other function returns Error
//! Unsupported "no CUDA driver (libcuda.so.1 not found)": the driver is probed
//! before cudarc is asked for anything (cudarc panics on a missing library).
//!
//! Handles: `cuda_buffer` (device memory of a fixed byte size, freed on
//! `rt_cuda_free`, `rt_handle_close` or collection), `cuda_stream`,
//! `cuda_event`. Every copy is checked against the buffer's size before the
//! driver sees it. Kernels come from PTX text; the parameter list of the
//! `.entry` is read from the PTX and each argument is converted to its
//! declared type (a buffer handle for a `.u64`/`.b64` pointer, ints range
//! checked, floats), so a wrong argument list is an Error, never a fault.
//! Capability `gpu` for every function.

#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "cuda")]
pub mod cuda;
#[cfg(feature = "cuda")]
pub mod ptx;
