//! ffi_archive: tar, gzip, xz with safe extraction. Not built yet: no exports.
