//! ffi_data: Regex, interning, arenas, concurrent and ordered maps of values. Not built yet: no exports.
