//! ffi_time: Wall and monotonic clocks, calendar fields, RFC 3339. Not built yet: no exports.
