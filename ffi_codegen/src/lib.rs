//! ffi_codegen: Cranelift JIT and AOT over the C ABI.
//!
//! - [`module`]: modules from CLIF text (`rt_cranelift_init`, `rt_cranelift_compile_fn`,
//!   `rt_cranelift_jit_execute`, `rt_cranelift_function_address`, `rt_cranelift_emit_object`).
//! - [`builder`]: Simple's builder API (`sffi/codegen.spl`): the same names and argument
//!   order over simple-rt values.
//! - [`target`]: `rt_target_triple`, `rt_target_features`.
//! - [`convert`]: values in and out of JIT code by the function's signature.
//!
//! State: every module, function context and signature is a handle (closing a module frees
//! its JIT memory); nothing is kept outside handles.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod builder;
pub mod convert;
pub mod module;
pub mod target;
