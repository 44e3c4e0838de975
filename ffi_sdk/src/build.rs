//! For domain crates' `build.rs`: link `libffi_core.so` dynamically.

use std::path::PathBuf;

/// Adds `-lffi_core` from the target's `deps` dir, `$ORIGIN` rpath, and
/// `-z nodelete` (a library that made handles must never be unloaded).
pub fn link_core() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    // OUT_DIR = <target>/<profile>/build/<pkg>-<hash>/out
    let profile = out.ancestors().nth(3).expect("target profile dir");
    println!("cargo:rustc-link-search=native={}", profile.join("deps").display());
    println!("cargo:rustc-link-lib=dylib=ffi_core");
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN");
    println!("cargo:rustc-link-arg=-Wl,-z,nodelete");
}
