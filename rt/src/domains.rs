// The one list of the project's domain libraries (issue 17: "one list of
// domains"). Included, not depended on, by every Rust user: `rt` (as the
// module `domains`) and the cross-library tests (`include!` in
// tests/src/lib.rs), since neither may link an ffi_* crate. Other users read
// it through `rt domains` (`./x.sh install`, install/install.sh) or are
// checked against it by tests/tests/domains.rs (the Python package's
// `DOMAINS` in bindings/python/simple_rt/_nrt.py and `CRATES` in
// bindings/python/build_backend/simple_rt_build.py, the workspace members).
//
// No inner doc comments here: the file is `include!`d.

/// Domain libraries loaded after `libffi_core.so`, in load order
/// (`libffi_<domain>.so`, crate `ffi_<domain>`). `ffi_macros` is a
/// proc-macro and is never loaded; `ffi_sdk` is compiled into every library.
pub const DOMAINS: [&str; 15] = [
    "io", "process", "time", "crypto", "archive", "codegen", "net", "concurrent", "data", "system", "cli",
    "serde", "torch", "cuda", "vulkan",
];

/// Domains behind workspace features (`pytorch`, `cuda`, `vulkan` on `rt`),
/// not in the default build; they need outside runtimes (libtorch, a CUDA
/// driver, a Vulkan loader), so a failed load of one is a skip, not a failure.
pub const FEATURE_DOMAINS: [&str; 3] = ["torch", "cuda", "vulkan"];

/// The default build's domains, in load order: what `./x.sh install`
/// installs and `pkg-config --libs simple-rt` links (after core).
pub fn default_domains() -> impl Iterator<Item = &'static str> {
    DOMAINS.into_iter().filter(|d| !FEATURE_DOMAINS.contains(d))
}
