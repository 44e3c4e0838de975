//! ffi_vulkan: Vulkan compute and graphics (feature vulkan). Not built yet: no exports.
