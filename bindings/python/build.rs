fn main() {
    // libffi_core.so dynamically (one heap, one policy, one registry per
    // process), found beside the extension through DT_RPATH $ORIGIN.
    ffi_sdk::build::link_core();
}
