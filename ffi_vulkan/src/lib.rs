//! ffi_vulkan: Vulkan compute and graphics through ash (libvulkan.so.1
//! loaded at run time), gpu-allocator and SPIR-V reflection
//! (rspirv-reflect); windows through winit (X11) and ash-window. Built with
//! the `vulkan` feature; without it the library is empty.
//!
//! Objects are handles with explicit lifetimes. Every child holds its parent
//! (buffer → device → instance, swapchain → surface → window), so the
//! Vulkan objects are destroyed in a safe order whatever order the handles
//! are closed or collected in; an explicit destroy of a parent while
//! children are open is Error Busy naming how many; use after destroy is
//! Error Closed. A submitted command buffer keeps everything it uses alive
//! until its fence has signalled. Capability `gpu` for every function.
//!
//! Compute path: instance (validation layer and its messages on request) →
//! physical devices → device + queue → buffers + memory (gpu-allocator;
//! `rt_vk_memory_map` returns a copy of the mapped bytes,
//! `rt_vk_memory_write` writes into them) → shader from SPIR-V (reflection
//! gives the descriptor bindings, push constants and workgroup size) →
//! compute pipeline (layout built from the reflection) → command pool and
//! buffer → dispatch → submit → fence wait. Graphics: image → graphics
//! pipeline (vertex + fragment SPIR-V, dynamic rendering) → render start,
//! draw, render end → image copy into a buffer. Presentation: window →
//! surface → swapchain → present.

#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "vulkan")]
pub mod vk;
