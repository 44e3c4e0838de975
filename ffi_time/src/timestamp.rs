//! Calendar fields of an instant given in unix microseconds, in UTC
//! (proleptic Gregorian calendar, astronomical years: 1 BC is year 0).
//! Negative instants are floor-rounded: -1 µs is 1969-12-31T23:59:59.999999Z.

use ::chrono::{DateTime, Datelike, Timelike, Utc};
use ffi_sdk::prelude::*;

/// The UTC date-time of `micros` (unix microseconds); OutOfRange beyond chrono's ±262143 years.
pub fn utc_of_micros(func: &'static str, micros: i64) -> RtResult<DateTime<Utc>> {
    let secs = micros.div_euclid(1_000_000);
    let nanos = (micros.rem_euclid(1_000_000) * 1000) as u32;
    DateTime::from_timestamp(secs, nanos).ok_or_else(|| {
        Error::new(Code::OutOfRange, func, "timestamp is outside years -262143..=262142", micros)
    })
}

/// Year (UTC) of an instant in unix microseconds, e.g. 2024; year 0 is 1 BC.
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_year(micros: i64) -> RtResult<i64> {
    Ok(utc_of_micros(FN, micros)?.year() as i64)
}

/// Month 1..=12 (UTC) of an instant in unix microseconds.
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_month(micros: i64) -> RtResult<i64> {
    Ok(utc_of_micros(FN, micros)?.month() as i64)
}

/// Day of the month 1..=31 (UTC) of an instant in unix microseconds.
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_day(micros: i64) -> RtResult<i64> {
    Ok(utc_of_micros(FN, micros)?.day() as i64)
}

/// Hour 0..=23 (UTC) of an instant in unix microseconds.
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_hour(micros: i64) -> RtResult<i64> {
    Ok(utc_of_micros(FN, micros)?.hour() as i64)
}

/// Minute 0..=59 (UTC) of an instant in unix microseconds.
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_minute(micros: i64) -> RtResult<i64> {
    Ok(utc_of_micros(FN, micros)?.minute() as i64)
}

/// Second 0..=59 (UTC) of an instant in unix microseconds (unix time has no leap seconds).
///
/// # Errors
/// - OutOfRange: timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_second(micros: i64) -> RtResult<i64> {
    Ok(utc_of_micros(FN, micros)?.second() as i64)
}
