//! ffi_net: Sockets and HTTP. Not built yet: no exports.
