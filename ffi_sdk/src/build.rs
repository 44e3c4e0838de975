//! For domain crates' `build.rs`: link `libffi_core.so` dynamically.

use std::path::PathBuf;

/// Adds `-lffi_core` from the target's `deps` dir, `$ORIGIN` as DT_RPATH, and
/// `-z nodelete` (a library that made handles must never be unloaded).
pub fn link_core() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR = <target>/<profile>/build/<pkg>-<hash>/out
    let profile = out.ancestors().nth(3).expect("target profile dir");
    println!("cargo:rustc-link-search=native={}", profile.join("deps").display());
    println!("cargo:rustc-link-lib=dylib=ffi_core");
    // DT_RPATH (not RUNPATH): searched before LD_LIBRARY_PATH, so a domain
    // library always uses the libffi_core.so beside it, the copy a host
    // loading that directory has loaded: one runtime per process.
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    println!("cargo:rustc-link-arg=-Wl,-z,nodelete");
}
