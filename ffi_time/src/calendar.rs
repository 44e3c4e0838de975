//! Timestamp arithmetic, building and text under the names Simple's standard
//! library calls (`sffi/time.spl`, `sffi/system.spl`). A timestamp is unix
//! microseconds (UTC), the crate's one unit.

use crate::chrono::{days_from_civil, parse_rfc3339};
use crate::clock::iso;
use crate::timestamp::utc_of_micros;
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;

const DAY_US: i64 = 86_400_000_000;

/// RFC 3339 text in UTC with 6 fractional digits (`2024-02-29T12:00:00.000000Z`)
/// of a timestamp.
///
/// # Errors
/// - OutOfRange: the timestamp falls outside years 0000..=9999.
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_to_iso(ts: i64) -> RtResult<String> {
    iso(FN, ts)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC, seconds floor-rounded) of a timestamp.
/// Error OutOfRange outside years 0000..=9999.
///
/// # Errors
/// - OutOfRange: the text form needs a year 0000..=9999; timestamp is outside years -262143..=262142
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_to_string(ts: i64) -> RtResult<String> {
    let t = utc_of_micros(FN, ts)?;
    let s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    if s.len() != 19 {
        return Err(Error::new(Code::OutOfRange, FN, "the text form needs a year 0000..=9999", ts));
    }
    Ok(s)
}

/// Parses RFC 3339 text (any offset; see rt_time_parse_iso8601) to a
/// timestamp (floor-rounded to the microsecond). Error Parse with details.position.
///
/// # Errors
/// - Parse: … at position …
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_from_iso(iso: &str) -> RtResult<i64> {
    parse_rfc3339(iso).map(|st| st.micros()).map_err(|f| {
        Error::new(Code::Parse, FN, format!("{} at position {}", f.what, f.pos), quote(iso)).with("position", f.pos)
    })
}

/// Parses a date-time to a timestamp: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.ffffff]` and `YYYY-MM-DD` read as UTC.
///
/// # Errors
/// - Parse: for anything else
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_parse(s: &str) -> RtResult<i64> {
    if let Ok(st) = parse_rfc3339(s) {
        return Ok(st.micros());
    }
    let fmt = ::chrono::NaiveDateTime::parse_from_str;
    let naive = fmt(s, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| fmt(s, "%Y-%m-%dT%H:%M:%S%.f"))
        .or_else(|_| ::chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_time(::chrono::NaiveTime::MIN)));
    match naive {
        Ok(n) => Ok(n.and_utc().timestamp_micros()),
        Err(e) => Err(Error::parse(
            FN,
            format!("not RFC 3339, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` ({e})"),
            quote(s),
        )),
    }
}

/// Whole seconds from `b` to `a` (`a - b`, truncated toward zero).
///
/// # Errors
/// - OutOfRange: difference overflows
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_diff_seconds(a: i64, b: i64) -> RtResult<i64> {
    a.checked_sub(b)
        .map(|d| d / 1_000_000)
        .ok_or_else(|| Error::new(Code::OutOfRange, FN, "difference overflows", format!("{a} - {b}")))
}

/// Whole days from `micros2` to `micros1` (`micros1 - micros2`, truncated toward zero).
///
/// # Errors
/// - OutOfRange: difference overflows
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_diff_days(micros1: i64, micros2: i64) -> RtResult<i64> {
    micros1
        .checked_sub(micros2)
        .map(|d| d / DAY_US)
        .ok_or_else(|| Error::new(Code::OutOfRange, FN, "difference overflows", format!("{micros1} - {micros2}")))
}

/// The timestamp `days` days (of 86400 s, UTC has no DST) after `micros`; negative goes back.
///
/// # Errors
/// - OutOfRange: result overflows
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_add_days(micros: i64, days: i64) -> RtResult<i64> {
    days.checked_mul(DAY_US)
        .and_then(|d| micros.checked_add(d))
        .ok_or_else(|| Error::new(Code::OutOfRange, FN, "result overflows", format!("{micros} + {days} days")))
}

/// The timestamp of a UTC date and time: month 1..=12, day valid for the
/// month, hour 0..=23, minute 0..=59, second 0..=59, microsecond 0..=999999.
/// Error OutOfRange naming the first field out of range.
///
/// # Errors
/// - OutOfRange: an index or number is outside its range
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_from_components(
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    microsecond: i64,
) -> RtResult<i64> {
    let shown = format!("{year}-{month}-{day} {hour}:{minute}:{second}.{microsecond}");
    let bad = |what: &str| Error::new(Code::OutOfRange, FN, format!("{what} is out of range"), &shown);
    if !(-262_000..=262_000).contains(&year) {
        return Err(bad("year"));
    }
    if !(1..=12).contains(&month) {
        return Err(bad("month"));
    }
    let dim = ::chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, 1)
        .and_then(|d| d.checked_add_months(::chrono::Months::new(1)))
        .and_then(|d| d.pred_opt())
        .map_or(31, |d| ::chrono::Datelike::day(&d) as i64);
    if !(1..=dim).contains(&day) {
        return Err(bad("day"));
    }
    for (v, hi, what) in [(hour, 23, "hour"), (minute, 59, "minute"), (second, 59, "second"), (microsecond, 999_999, "microsecond")] {
        if !(0..=hi).contains(&v) {
            return Err(bad(what));
        }
    }
    let days = days_from_civil(year, month as u32, day as u32);
    Ok(days * DAY_US + (hour * 3600 + minute * 60 + second) * 1_000_000 + microsecond)
}

/// Microsecond of the second 0..=999999 of a timestamp (floor for negative instants).
///
/// # Errors
/// Only the implicit codes.
#[rt_fn(tier = "verified")]
pub fn rt_timestamp_get_microsecond(micros: i64) -> i64 {
    micros.rem_euclid(1_000_000)
}
