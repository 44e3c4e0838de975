//! ffi_codegen: Cranelift JIT/AOT and target facts. Not built yet: no exports.
