//! ffi_io: Files, directories, environment, paths, glob, locks, mmap. Not built yet: no exports.
