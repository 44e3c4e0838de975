//! The process's command-line arguments.

use ffi_sdk::prelude::*;

/// The arguments the process was started with (`/proc/self/cmdline` via std::env::args_os), the program name
/// first. In a host that embeds the libraries (an interpreter) these are the host's arguments.
///
/// # Errors
/// - Parse: for an argument that is not UTF-8 (details.index)
#[rt_fn(cap = "sys.info", tier = "verified", ret = "array<text>")]
pub fn rt_get_args() -> RtResult<Value> {
    let out = Value::array(0);
    for (i, a) in std::env::args_os().enumerate() {
        match a.into_string() {
            Ok(s) => {
                out.push(Value::text(&s));
            }
            Err(a) => {
                return Err(Error::parse(FN, format!("argument {i} is not UTF-8"), a.to_string_lossy()).with("index", i));
            }
        }
    }
    Ok(out)
}
