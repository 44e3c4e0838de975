fn main() { ffi_sdk::build::link_core(); }
