//! Clocks and sleeping under the names Simple's standard library calls
//! (`sffi/time.spl`, `sffi/system.spl`). Instants stay unix microseconds
//! (the crate's one unit) unless the name says another unit.

use crate::time::wall_micros;
use crate::timestamp::utc_of_micros;
use ::chrono::{Datelike, Timelike};
use ffi_sdk::prelude::*;
use std::time::Duration;

/// Simple's `rt_time_now`: wall-clock time now as unix microseconds (same as rt_time_now_unix_micros).
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now() -> RtResult<i64> {
    wall_micros(FN)
}

/// Simple's `rt_timestamp_now`: wall-clock time now as unix microseconds.
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_now() -> RtResult<i64> {
    wall_micros(FN)
}

/// Wall-clock time now as unix microseconds (`rt_time_now_unix_micros` under time.spl's name).
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now_micros() -> RtResult<i64> {
    wall_micros(FN)
}

/// Wall-clock time now as unix milliseconds (floor).
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now_ms() -> RtResult<i64> {
    Ok(wall_micros(FN)?.div_euclid(1000))
}

/// Wall-clock time now as unix milliseconds (floor); same as rt_time_now_ms.
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now_unix_millis() -> RtResult<i64> {
    Ok(wall_micros(FN)?.div_euclid(1000))
}

/// Wall-clock time now as unix milliseconds (floor); same as rt_time_now_ms.
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_ms() -> RtResult<i64> {
    Ok(wall_micros(FN)?.div_euclid(1000))
}

/// Wall-clock time now as unix milliseconds (floor); same as rt_time_now_ms.
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_millis() -> RtResult<i64> {
    Ok(wall_micros(FN)?.div_euclid(1000))
}

/// Wall-clock time now as unix seconds (floor).
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now_seconds() -> RtResult<i64> {
    Ok(wall_micros(FN)?.div_euclid(1_000_000))
}

/// Wall-clock time now as unix seconds with a fraction (float; microsecond resolution).
///
/// # Errors
/// - OutOfRange: system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now_seconds_f64() -> RtResult<f64> {
    Ok(wall_micros(FN)? as f64 / 1e6)
}

/// Wall-clock time now as unix nanoseconds (CLOCK_REALTIME; an int up to year 2262).
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
/// - OutOfRange: the clock is outside the years 1678..=2262
/// - Busy: the resource is held by someone else
#[rt_fn(tier = "verified")]
pub fn rt_time_now_nanos() -> RtResult<i64> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return Err(Error::io(FN, "CLOCK_REALTIME", &std::io::Error::last_os_error()));
    }
    ts.tv_sec
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(ts.tv_nsec))
        .ok_or_else(|| Error::plain(Code::OutOfRange, FN, "the clock is outside the years 1678..=2262"))
}

/// Wall-clock time now as RFC 3339 text in UTC with microseconds (`2024-02-29T12:00:00.123456Z`).
///
/// # Errors
/// - OutOfRange: RFC 3339 needs a year 0000..=9999; timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_now_iso() -> RtResult<String> {
    iso(FN, wall_micros(FN)?)
}

/// RFC 3339 text (UTC, 6 fractional digits) of unix microseconds.
pub(crate) fn iso(func: &'static str, micros: i64) -> RtResult<String> {
    let t = utc_of_micros(func, micros)?;
    if !(0..=9999).contains(&t.year()) {
        return Err(Error::new(Code::OutOfRange, func, "RFC 3339 needs a year 0000..=9999", micros));
    }
    Ok(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
}

fn now_field(func: &'static str, f: fn(&::chrono::DateTime<::chrono::Utc>) -> i64) -> RtResult<i64> {
    Ok(f(&utc_of_micros(func, wall_micros(func)?)?))
}

/// The current year (UTC).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_year() -> RtResult<i64> {
    now_field(FN, |t| t.year() as i64)
}

/// The current month 1..=12 (UTC).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_month() -> RtResult<i64> {
    now_field(FN, |t| t.month() as i64)
}

/// The current day of the month 1..=31 (UTC).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_day() -> RtResult<i64> {
    now_field(FN, |t| t.day() as i64)
}

/// The current hour 0..=23 (UTC).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_hour() -> RtResult<i64> {
    now_field(FN, |t| t.hour() as i64)
}

/// The current minute 0..=59 (UTC).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_minute() -> RtResult<i64> {
    now_field(FN, |t| t.minute() as i64)
}

/// The current second 0..=59 (UTC).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142; system clock is past year 294247; system clock is before year -290308
#[rt_fn(tier = "verified")]
pub fn rt_time_second() -> RtResult<i64> {
    now_field(FN, |t| t.second() as i64)
}

/// Longest sleep accepted in one call, in milliseconds (2^31, about 24.8 days).
pub const MAX_SLEEP_MS: i64 = 1 << 31;

fn sleep(func: &'static str, ms: i64, shown: i64) -> RtResult<()> {
    if !(0..=MAX_SLEEP_MS).contains(&ms) {
        return Err(Error::new(Code::OutOfRange, func, format!("duration must be 0..={MAX_SLEEP_MS} ms"), shown));
    }
    // Loops on EINTR (the collector's stop signal interrupts sleeps); wakes early with Error
    // Timeout / Cancelled on the thread's deadline or cancel token (docs/DEADLINES.md).
    ffi_sdk::deadline::sleep(func, Duration::from_millis(ms as u64))
}

/// Blocks the calling thread for at least `ms` milliseconds.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: for a negative value or one above 2^31 ms
#[rt_fn(tier = "verified", blocking)]
pub fn rt_sleep_ms(ms: i64) -> RtResult<()> {
    sleep(FN, ms, ms)
}

/// Blocks the calling thread for at least `seconds` seconds.
///
/// # Errors
/// - Io: an operating-system failure (details.errno)
/// - OutOfRange: for a negative value or one above 2^31 ms
#[rt_fn(tier = "verified", blocking)]
pub fn rt_sleep_secs(seconds: i64) -> RtResult<()> {
    sleep(FN, seconds.saturating_mul(1000), seconds)
}
