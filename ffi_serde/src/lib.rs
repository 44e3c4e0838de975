//! ffi_serde: JSON, TOML, YAML, bincode to and from values. Not built yet: no exports.
