//! The process environment: working directory, home, variables.
//!
//! Thread safety: setenv/unsetenv are not thread-safe against getenv running
//! at the same time in another thread (POSIX; glibc may free or move the
//! environment block under a concurrent reader). Every function here goes
//! through one process-wide lock (readers share it, rt_env_set/rt_env_unset
//! take it alone), and Rust's std takes its own lock as well, so our own
//! calls never race. What no lock can cover is C code reading the
//! environment behind our back: libc itself (getaddrinfo, localtime reading
//! TZ, setlocale), other native libraries, or a host's own getenv. Set
//! variables early, before starting threads that do such things, or pass an
//! environment to child processes instead of changing our own.

use crate::common::{io_err, path_text};
use ffi_sdk::prelude::*;
use std::sync::RwLock;

/// Guards every environment access made by this library.
static ENV_LOCK: RwLock<()> = RwLock::new(());

fn valid_name(func: &'static str, name: &str) -> RtResult<()> {
    if name.is_empty() {
        return Err(Error::invalid(func, "variable name is empty", "\"\""));
    }
    if name.contains('=') {
        return Err(Error::invalid(func, "variable name contains '='", ffi_sdk::error::quote(name)));
    }
    if name.contains('\0') {
        return Err(Error::invalid(func, "variable name contains a NUL byte", ffi_sdk::error::quote(name)));
    }
    Ok(())
}

fn read_var(func: &'static str, name: &str) -> RtResult<Option<String>> {
    let v = {
        let _g = ENV_LOCK.read().unwrap_or_else(|e| e.into_inner());
        std::env::var_os(name)
    };
    match v {
        None => Ok(None),
        Some(os) => os.into_string().map(Some).map_err(|os| {
            Error::new(Code::Parse, func, format!("the value of {name} is not UTF-8"), os.to_string_lossy())
        }),
    }
}

/// The current working directory (absolute). Needs fs.read on it: its name tells where the process runs.
///
/// # Errors
/// - NotFound: it was removed
/// - PermissionDenied: the operating system refused access
/// - Io: an operating-system failure (details.errno)
/// - Parse: path is not UTF-8
#[rt_fn(cap = "fs.read", scoped, tier = "verified")]
pub fn rt_env_cwd() -> RtResult<String> {
    let d = std::env::current_dir().map_err(|e| io_err(FN, "current directory", &e))?;
    ffi_sdk::cap::check_path(FN, "fs.read", &d)?;
    Ok(path_text(FN, &d)?.to_string())
}

/// The user's home directory (`$HOME`, else the password database; `dirs` crate). Needs env.read for HOME.
///
/// # Errors
/// - NotFound: there is none
/// - Parse: path is not UTF-8
#[rt_fn(cap = "env.read", scoped, tier = "verified")]
pub fn rt_env_home() -> RtResult<String> {
    ffi_sdk::cap::check(FN, "env.read", "HOME")?;
    let h = {
        let _g = ENV_LOCK.read().unwrap_or_else(|e| e.into_inner());
        dirs::home_dir()
    };
    match h {
        Some(p) if !p.as_os_str().is_empty() => Ok(path_text(FN, &p)?.to_string()),
        _ => Err(Error::plain(Code::NotFound, FN, "no home directory: HOME is unset and the user has no passwd entry")),
    }
}

/// The value of an environment variable; nil only when it is unset (an empty value is ""). Needs env.read for the
/// name.
///
/// # Errors
/// - InvalidArgument: the name is empty or contains '=' or NUL
/// - Parse: the value is not UTF-8
///
/// # Example
/// rt_env_get("HOME") -> "/root"
#[rt_fn(cap = "env.read", scoped, tier = "verified")]
pub fn rt_env_get(name: &str) -> RtResult<Option<String>> {
    valid_name(FN, name)?;
    ffi_sdk::cap::check(FN, "env.read", name)?;
    read_var(FN, name)
}

/// Sets an environment variable of this process (inherited by children started later). Needs env.write for the
/// name. Not thread-safe against C code reading the environment concurrently: see the module documentation; calls
/// through this library are serialized by a process-wide lock.
///
/// # Errors
/// - InvalidArgument: for an invalid name or a value containing NUL
#[rt_fn(cap = "env.write", scoped, tier = "verified")]
pub fn rt_env_set(name: &str, value: &str) -> RtResult<()> {
    valid_name(FN, name)?;
    if value.contains('\0') {
        return Err(Error::invalid(FN, "value contains a NUL byte", ffi_sdk::error::quote(value)));
    }
    ffi_sdk::cap::check(FN, "env.write", name)?;
    let _g = ENV_LOCK.write().unwrap_or_else(|e| e.into_inner());
    std::env::set_var(name, value);
    Ok(())
}

/// Removes an environment variable (nothing to do when it is unset). Same
/// rules and thread-safety constraint as rt_env_set.
///
/// # Errors
/// - InvalidArgument: variable name is empty; variable name contains '='; variable name contains a NUL byte
#[rt_fn(cap = "env.write", scoped, tier = "verified")]
pub fn rt_env_unset(name: &str) -> RtResult<()> {
    valid_name(FN, name)?;
    ffi_sdk::cap::check(FN, "env.write", name)?;
    let _g = ENV_LOCK.write().unwrap_or_else(|e| e.into_inner());
    std::env::remove_var(name);
    Ok(())
}

/// Simple's name for rt_env_unset: removes a variable (nothing to do when unset).
///
/// # Errors
/// - InvalidArgument: variable name is empty; variable name contains '='; variable name contains a NUL byte
#[rt_fn(cap = "env.write", scoped, tier = "verified")]
pub fn rt_env_remove(name: &str) -> RtResult<()> {
    valid_name(FN, name)?;
    ffi_sdk::cap::check(FN, "env.write", name)?;
    let _g = ENV_LOCK.write().unwrap_or_else(|e| e.into_inner());
    std::env::remove_var(name);
    Ok(())
}

/// Every environment variable as an array of `[name, value]` pairs, sorted
/// by name. Under a scoped env.read only the variables it allows are listed;
/// a name or value that is not UTF-8 is skipped.
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(cap = "env.read", scoped, tier = "verified", ret = "array<array<text>>")]
pub fn rt_env_vars() -> RtResult<Value> {
    let mut vars: Vec<(String, String)> = {
        let _g = ENV_LOCK.read().unwrap_or_else(|e| e.into_inner());
        std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
    };
    vars.sort();
    let out = Value::array(vars.len());
    for (k, v) in &vars {
        if ffi_sdk::cap::check(FN, "env.read", k).is_ok() {
            let pair = Value::array(2);
            pair.push(Value::text(k));
            pair.push(Value::text(v));
            out.push(pair);
        }
    }
    Ok(out)
}

/// An environment variable read as an int (decimal, optional sign, spaces trimmed); `default_value` when it is
/// unset or empty.
///
/// # Errors
/// - InvalidArgument: variable name is empty; variable name contains '='; variable name contains a NUL byte
/// - Parse: it is set to something else
#[rt_fn(cap = "env.read", scoped, tier = "verified")]
pub fn rt_env_get_i64(name: &str, default_value: i64) -> RtResult<i64> {
    valid_name(FN, name)?;
    ffi_sdk::cap::check(FN, "env.read", name)?;
    match read_var(FN, name)? {
        None => Ok(default_value),
        Some(v) if v.trim().is_empty() => Ok(default_value),
        Some(v) => v.trim().parse::<i64>().map_err(|e| {
            Error::parse(FN, format!("{name} is not an integer ({e})"), ffi_sdk::error::quote(&v))
        }),
    }
}

/// The directory for temporary files: `$TMPDIR` when set and not empty,
/// else `/tmp` (std::env::temp_dir). Needs env.read for TMPDIR.
///
/// # Errors
/// - Parse: path is not UTF-8
#[rt_fn(cap = "env.read", scoped, tier = "verified")]
pub fn rt_env_temp() -> RtResult<String> {
    ffi_sdk::cap::check(FN, "env.read", "TMPDIR")?;
    let d = {
        let _g = ENV_LOCK.read().unwrap_or_else(|e| e.into_inner());
        std::env::temp_dir()
    };
    Ok(path_text(FN, &d)?.to_string())
}
