//! Clocks and sleeping.

use ffi_sdk::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the unix epoch, signed (before 1970 is negative).
pub(crate) fn wall_micros(func: &'static str) -> RtResult<i64> {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).map_err(|_| Error::plain(Code::OutOfRange, func, "system clock is past year 294247")),
        // A clock set before 1970: negative, floor-rounded like every instant here.
        Err(e) => {
            let d = e.duration();
            let us = i64::try_from(d.as_micros()).map_err(|_| Error::plain(Code::OutOfRange, func, "system clock is before year -290308"))?;
            Ok(if d.subsec_nanos() % 1000 != 0 { -us - 1 } else { -us })
        }
    }
}

/// Wall-clock time now as unix microseconds (UTC, may jump when the clock is set).
///
/// # Errors
/// - OutOfRange: the system clock is outside the range of 64-bit microseconds (before year -290308 or past 294247)
///
/// # Example
/// rt_time_now_unix_micros() -> 1764633600000000
#[rt_fn(tier = "verified")]
pub fn rt_time_now_unix_micros() -> RtResult<i64> {
    wall_micros(FN)
}

/// Wall-clock time now as unix milliseconds (UTC, may jump when the clock is set).
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_current_time_ms() -> RtResult<i64> {
    Ok(wall_micros(FN)?.div_euclid(1000))
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC: never goes back, arbitrary origin, for measuring intervals).
///
/// # Errors
/// - InvalidArgument: an argument has a bad value
/// - NotFound: what it names does not exist
/// - AlreadyExists: the target exists already
/// - PermissionDenied: the operating system refused access
/// - Timeout: the wait timed out
/// - Io: an operating-system failure (details.errno)
/// - Parse: malformed input (details.line/column/position where known)
/// - Unsupported: not supported (on this machine or build, or for this input)
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified")]
pub fn rt_time_monotonic_ns() -> RtResult<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::io(FN, "CLOCK_MONOTONIC", &e));
    }
    Ok(ts.tv_sec * 1_000_000_000 + ts.tv_nsec)
}

/// Blocks the calling thread for at least `ms` milliseconds (resumes after signals; negative is an error).
///
/// # Errors
/// - InvalidArgument: `ms` is negative
/// - Io: an operating-system failure (details.errno)
#[rt_fn(tier = "verified", blocking)]
pub fn rt_time_sleep_ms(ms: u64) -> RtResult<()> {
    // Loops on EINTR (the collector's stop signal interrupts sleeps); wakes early with Error
    // Timeout / Cancelled on the thread's deadline or cancel token (docs/DEADLINES.md).
    ffi_sdk::deadline::sleep(FN, Duration::from_millis(ms))
}
