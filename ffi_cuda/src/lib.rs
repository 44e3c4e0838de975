//! ffi_cuda: CUDA devices, memory, streams (feature cuda). Not built yet: no exports.
