fn main() {
    ffi_sdk::build::link_core();
    // With `pytorch`: libtorch's directory (LIBTORCH/lib, from tests/torch/setup.sh)
    // as DT_RPATH too, so the library and its tests load it without LD_LIBRARY_PATH.
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_PYTORCH").is_some() {
        if let Some(lt) = std::env::var_os("LIBTORCH") {
            let lib = std::path::Path::new(&lt).join("lib");
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        }
    }
}
