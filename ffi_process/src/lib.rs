//! ffi_process: Processes that can be limited, timed out and killed; shell; sandbox limits. Not built yet: no exports.
