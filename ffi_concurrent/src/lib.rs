//! ffi_concurrent: Threads, locks, channels, parallel map. Not built yet: no exports.
