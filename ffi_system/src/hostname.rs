use ffi_sdk::prelude::*;

/// The machine's host name (gethostname).
///
/// # Errors
/// - Io: gethostname failed (details.errno)
/// - Parse: the name is not UTF-8
///
/// # Example
/// rt_hostname() -> "build-box"
#[rt_fn(cap = "sys.info", tier = "verified")]
pub fn rt_hostname() -> RtResult<String> {
    let h = ::hostname::get().map_err(|e| Error::io(FN, "gethostname", &e))?;
    h.into_string().map_err(|h| Error::parse(FN, "host name is not UTF-8", h.to_string_lossy()))
}
