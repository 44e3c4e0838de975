//! ffi_torch: PyTorch tensors (feature pytorch). Not built yet: no exports.
