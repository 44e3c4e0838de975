// Link libffi_core.so the way the domain crates do (a target that names no
// domain crate, like cap_parse, would not get it from them), and find it at
// run time beside the binaries: cargo fuzz puts them in
// target/<triple>/release/ and the library in release/deps/.
fn main() {
    ffi_sdk::build::link_core();
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/deps");
}
