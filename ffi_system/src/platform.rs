use ffi_sdk::prelude::*;

/// Operating system family this library was built for: "linux", "macos", "windows", ...
///
/// # Errors
/// Only the implicit codes.
///
/// # Example
/// rt_os_name() -> "linux"
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_os_name() -> &'static str {
    std::env::consts::OS
}

/// CPU architecture this library was built for: "x86_64", "aarch64", ...
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_arch_name() -> &'static str {
    std::env::consts::ARCH
}
