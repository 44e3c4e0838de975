//! ffi_cli: Line editing, file watching, signals, password input. Not built yet: no exports.
