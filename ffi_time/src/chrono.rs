//! RFC 3339 text: a formatter and a strict parser, both allocation-free
//! (the only allocation is the result value), and a detailed second pass that
//! names the position of the first error (chrono's parse error carries none).
//! Calendar arithmetic is the proleptic Gregorian day count (H. Hinnant's
//! days_from_civil); tests check both directions against chrono and Python.
//!
//! Grammar accepted (RFC 3339 §5.6): `YYYY-MM-DD`, then `T`, `t` or one space
//! (the §5.6 note), `hh:mm:ss`, an optional `.` with one or more digits, then
//! `Z`, `z` or `±hh:mm`. Years 0000..=9999. Fractions keep 9 digits
//! (nanoseconds); further digits are checked and dropped. Second `60` (a leap
//! second) is accepted only where the UTC time is 23:59:60; it is kept as
//! `secs` of 23:59:59 with `nanos` of 1_000_000_000 or more (chrono's
//! convention), and formats back as `:60`.

use ::chrono::{Datelike, NaiveDate};
use ffi_sdk::error::quote;
use ffi_sdk::prelude::*;

/// An instant with nanosecond precision and the UTC offset it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Unix seconds (UTC).
    pub secs: i64,
    /// 0..=999_999_999, or up to 1_999_999_999 during a leap second.
    pub nanos: u32,
    /// Minutes east of UTC, -1439..=1439.
    pub offset_minutes: i32,
}

impl Stamp {
    /// Unix microseconds, floor-rounded (a leap second lands in the next second).
    pub fn micros(&self) -> i64 {
        self.secs * 1_000_000 + (self.nanos / 1000) as i64
    }
}

/// Where and why parsing failed (`pos` is a byte offset).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseFail {
    pub pos: usize,
    pub what: String,
}

fn fail<T>(pos: usize, what: impl Into<String>) -> Result<T, ParseFail> {
    Err(ParseFail { pos, what: what.into() })
}

struct Cur<'a> {
    b: &'a [u8],
    p: usize,
}

impl Cur<'_> {
    fn digits(&mut self, n: usize, field: &str) -> Result<u32, ParseFail> {
        let mut v = 0u32;
        for _ in 0..n {
            match self.b.get(self.p) {
                Some(c @ b'0'..=b'9') => v = v * 10 + (c - b'0') as u32,
                Some(_) => return fail(self.p, format!("expected a digit of the {field}")),
                None => return fail(self.p, format!("text ends early: expected the {field}")),
            }
            self.p += 1;
        }
        Ok(v)
    }
    fn byte(&mut self, want: &[u8], what: &str) -> Result<u8, ParseFail> {
        match self.b.get(self.p) {
            Some(c) if want.contains(c) => {
                self.p += 1;
                Ok(*c)
            }
            Some(_) => fail(self.p, format!("expected {what}")),
            None => fail(self.p, format!("text ends early: expected {what}")),
        }
    }
}

/// Parses RFC 3339 text strictly (see the module doc for the grammar).
pub fn parse_rfc3339(s: &str) -> Result<Stamp, ParseFail> {
    match parse_fast(s.as_bytes()) {
        Some(st) => Ok(st),
        None => parse_detailed(s),
    }
}

/// Days from 1970-01-01 to `y-m-d` (proleptic Gregorian; any year).
#[inline]
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = y - (m <= 2) as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month, day)` of a day count from 1970-01-01 (inverse of [`days_from_civil`]).
#[inline]
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400)) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Two ASCII digits at `i` (the caller checked the length).
#[inline(always)]
fn d2(b: &[u8], i: usize) -> Option<u32> {
    let (x, y) = (b[i].wrapping_sub(b'0') as u32, b[i + 1].wrapping_sub(b'0') as u32);
    // `then`, not `then_some`: the sum must not be computed for non-digits (found by fuzzing).
    (x < 10 && y < 10).then(|| x * 10 + y)
}

/// The parser for well-formed text; None sends the text to [`parse_detailed`] for the error.
#[inline]
fn parse_fast(b: &[u8]) -> Option<Stamp> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = d2(b, 0)? * 100 + d2(b, 2)?;
    let (month, day) = (d2(b, 5)?, d2(b, 8)?);
    let (hour, minute, second) = (d2(b, 11)?, d2(b, 14)?, d2(b, 17)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut p = 19;
    let mut nanos = 0u32;
    if b[p] == b'.' {
        p += 1;
        let start = p;
        while p < b.len() && b[p].is_ascii_digit() {
            if p - start < 9 {
                nanos = nanos * 10 + (b[p] - b'0') as u32;
            }
            p += 1;
        }
        let n = p - start;
        if n == 0 {
            return None;
        }
        if n < 9 {
            nanos *= POW10[9 - n];
        }
    }
    let offset: i32 = match b.get(p)? {
        b'Z' | b'z' if p + 1 == b.len() => 0,
        c @ (b'+' | b'-') if p + 6 == b.len() && b[p + 3] == b':' => {
            let (oh, om) = (d2(b, p + 1)?, d2(b, p + 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = (oh * 60 + om) as i32;
            if *c == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let mut sec = second;
    if second == 60 {
        if (hour as i32 * 60 + minute as i32 - offset).rem_euclid(1440) != 1439 {
            return None;
        }
        sec = 59;
        nanos += 1_000_000_000;
    }
    let days = days_from_civil(year as i64, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + sec) as i64 - offset as i64 * 60;
    Some(Stamp { secs, nanos, offset_minutes: offset })
}

const POW10: [u32; 10] = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// The strict parser again, slowly, naming the first error and its byte position.
fn parse_detailed(s: &str) -> Result<Stamp, ParseFail> {
    let mut c = Cur { b: s.as_bytes(), p: 0 };
    let year = c.digits(4, "year")?;
    c.byte(b"-", "'-' after the year")?;
    let mpos = c.p;
    let month = c.digits(2, "month")?;
    if !(1..=12).contains(&month) {
        return fail(mpos, format!("month {month:02} is not in 01..12"));
    }
    c.byte(b"-", "'-' after the month")?;
    let dpos = c.p;
    let day = c.digits(2, "day")?;
    let date = match NaiveDate::from_ymd_opt(year as i32, month, day) {
        Some(d) if day >= 1 => d,
        _ => return fail(dpos, format!("day {day:02} does not exist in {year:04}-{month:02}")),
    };
    c.byte(b"Tt ", "'T' between date and time")?;
    let hpos = c.p;
    let hour = c.digits(2, "hour")?;
    if hour > 23 {
        return fail(hpos, format!("hour {hour:02} is not in 00..23"));
    }
    c.byte(b":", "':' after the hour")?;
    let mipos = c.p;
    let minute = c.digits(2, "minute")?;
    if minute > 59 {
        return fail(mipos, format!("minute {minute:02} is not in 00..59"));
    }
    c.byte(b":", "':' after the minute")?;
    let spos = c.p;
    let second = c.digits(2, "second")?;
    if second > 60 {
        return fail(spos, format!("second {second:02} is not in 00..60"));
    }
    let mut nanos = 0u32;
    if c.b.get(c.p) == Some(&b'.') {
        c.p += 1;
        let start = c.p;
        while let Some(d @ b'0'..=b'9') = c.b.get(c.p) {
            let k = c.p - start;
            if k < 9 {
                nanos = nanos * 10 + (d - b'0') as u32;
            }
            c.p += 1;
        }
        let n = c.p - start;
        if n == 0 {
            return match c.b.get(c.p) {
                Some(_) => fail(c.p, "expected a digit after '.'"),
                None => fail(c.p, "text ends early: expected a digit after '.'"),
            };
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let sign = c.byte(b"Zz+-", "'Z' or a UTC offset like +01:00")?;
    let mut offset: i32 = 0;
    if sign == b'+' || sign == b'-' {
        let ohpos = c.p;
        let oh = c.digits(2, "offset hour")?;
        if oh > 23 {
            return fail(ohpos, format!("offset hour {oh:02} is not in 00..23"));
        }
        c.byte(b":", "':' in the UTC offset")?;
        let ompos = c.p;
        let om = c.digits(2, "offset minute")?;
        if om > 59 {
            return fail(ompos, format!("offset minute {om:02} is not in 00..59"));
        }
        offset = (oh * 60 + om) as i32;
        if sign == b'-' {
            offset = -offset;
        }
    }
    if c.p != c.b.len() {
        return fail(c.p, "unexpected text after the UTC offset");
    }
    let mut sec = second;
    if second == 60 {
        let utc_min = (hour as i32 * 60 + minute as i32 - offset).rem_euclid(1440);
        if utc_min != 23 * 60 + 59 {
            return fail(spos, "second 60 (a leap second) is only valid at 23:59:60 UTC");
        }
        sec = 59;
        nanos += 1_000_000_000;
    }
    let days = date.num_days_from_ce() as i64 - 719_163;
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + sec) as i64 - offset as i64 * 60;
    Ok(Stamp { secs, nanos, offset_minutes: offset })
}

/// Longest RFC 3339 text written: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+hh:mm`.
pub const MAX_LEN: usize = 35;

/// Writes an instant as RFC 3339 into `buf`, returning the length. `digits`:
/// `None` = as many as needed (0, 3, 6 or 9), else exactly 0, 3, 6 or 9
/// (truncating). `use_z`: `Z` for a zero offset, else `+00:00`. Fails (with
/// a reason) for years outside 0000..=9999 or a bad offset or digits.
pub fn format_into(st: Stamp, digits: Option<u8>, use_z: bool, buf: &mut [u8; MAX_LEN]) -> Result<usize, &'static str> {
    if !matches!(digits, None | Some(0 | 3 | 6 | 9)) {
        return Err("digits must be 0, 3, 6 or 9");
    }
    if !(-1439..=1439).contains(&st.offset_minutes) {
        return Err("offset_minutes must be in -1439..=1439");
    }
    if st.nanos >= 2_000_000_000 {
        return Err("nanos must be below 2e9");
    }
    let (leap, nanos) = if st.nanos >= 1_000_000_000 { (true, st.nanos - 1_000_000_000) } else { (false, st.nanos) };
    let local = st.secs.checked_add(st.offset_minutes as i64 * 60).ok_or("instant is outside years 0000..=9999")?;
    let (days, tod) = (local.div_euclid(86_400), local.rem_euclid(86_400) as u32);
    // Years 0000..=9999 only (RFC 3339 has four year digits).
    if !(-719_528..=2_932_896).contains(&days) {
        return Err("instant is outside years 0000..=9999, which RFC 3339 cannot write");
    }
    let (y, m, d) = civil_u32(days);
    let (hh, mm, mut ss) = (tod / 3600, tod / 60 % 60, tod % 60);
    if leap {
        ss += 1;
    }
    put2(buf, 0, y / 100);
    put2(buf, 2, y % 100);
    buf[4] = b'-';
    put2(buf, 5, m);
    buf[7] = b'-';
    put2(buf, 8, d);
    buf[10] = b'T';
    put2(buf, 11, hh);
    buf[13] = b':';
    put2(buf, 14, mm);
    buf[16] = b':';
    put2(buf, 17, ss);
    let k = match digits {
        Some(k) => k,
        None if nanos == 0 => 0,
        None if nanos % 1_000_000 == 0 => 3,
        None if nanos % 1000 == 0 => 6,
        None => 9,
    };
    let mut n = 19;
    if k > 0 {
        buf[19] = b'.';
        match k {
            3 => {
                let v = nanos / 1_000_000;
                buf[20] = b'0' + (v / 100) as u8;
                put2(buf, 21, v % 100);
            }
            6 => {
                let v = nanos / 1000;
                put2(buf, 20, v / 10_000);
                put2(buf, 22, v / 100 % 100);
                put2(buf, 24, v % 100);
            }
            _ => {
                buf[20] = b'0' + (nanos / 100_000_000) as u8;
                let v = nanos % 100_000_000;
                put2(buf, 21, v / 1_000_000);
                put2(buf, 23, v / 10_000 % 100);
                put2(buf, 25, v / 100 % 100);
                put2(buf, 27, v % 100);
            }
        }
        n = 20 + k as usize;
    }
    if st.offset_minutes == 0 && use_z {
        buf[n] = b'Z';
        n += 1;
    } else {
        let o = st.offset_minutes.unsigned_abs();
        buf[n] = if st.offset_minutes < 0 { b'-' } else { b'+' };
        put2(buf, n + 1, o / 60);
        buf[n + 3] = b':';
        put2(buf, n + 4, o % 60);
        n += 6;
    }
    Ok(n)
}

const DIGITS2: &[u8; 200] = b"0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

#[inline(always)]
fn put2(buf: &mut [u8; MAX_LEN], i: usize, v: u32) {
    let j = (v as usize % 100) * 2;
    buf[i] = DIGITS2[j];
    buf[i + 1] = DIGITS2[j + 1];
}

/// [`civil_from_days`] for years 0000..=9999 in u32 arithmetic (the formatter's hot path).
#[inline(always)]
fn civil_u32(days: i64) -> (u32, u32, u32) {
    // Shifted by one 400-year era so everything is non-negative.
    let z = (days + 719_468 + 146_097) as u32;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    ((yoe + era * 400 + (m <= 2) as u32).wrapping_sub(400), m, d)
}

/// [`format_into`] as a String.
pub fn format_rfc3339(st: Stamp, digits: Option<u8>, use_z: bool) -> Result<String, &'static str> {
    let mut buf = [0u8; MAX_LEN];
    let n = format_into(st, digits, use_z, &mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Reads the instant argument of `rt_time_format_iso8601`.
fn stamp_of(func: &'static str, v: Value) -> RtResult<Stamp> {
    if let Some(micros) = v.as_int() {
        return Ok(Stamp {
            secs: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1000) as u32,
            offset_minutes: 0,
        });
    }
    if !v.is_dict() {
        return Err(ffi_sdk::args::kind_error(func, 0, "time", "int (unix micros) or dict {secs, nanos, offset_minutes}", v));
    }
    let d = Opts::new(func, v);
    d.only(&["micros", "secs", "nanos", "offset_minutes"]).map_err(|e| e.with("argument", 1usize))?;
    let micros = d.int("micros")?;
    let secs = d.int("secs")?;
    let nanos = d.int_in("nanos", 0, 1_999_999_999)?;
    let offset = d.int_in("offset_minutes", -1439, 1439)?.unwrap_or(0) as i32;
    let st = match (secs, micros) {
        (Some(s), m) => {
            let st = Stamp { secs: s, nanos: nanos.unwrap_or(0) as u32, offset_minutes: offset };
            if let Some(m) = m {
                let agree = s.checked_mul(1_000_000).and_then(|x| x.checked_add(st.nanos as i64 / 1000));
                if agree != Some(m) {
                    return Err(Error::invalid(func, "micros disagrees with secs and nanos", m));
                }
            }
            st
        }
        (None, Some(m)) => {
            if nanos.is_some() {
                return Err(Error::invalid(func, "nanos needs secs", v.describe()));
            }
            Stamp { secs: m.div_euclid(1_000_000), nanos: (m.rem_euclid(1_000_000) * 1000) as u32, offset_minutes: offset }
        }
        (None, None) => return Err(Error::invalid(func, "time dict needs secs or micros", v.describe())),
    };
    if st.nanos >= 1_000_000_000 && st.secs.rem_euclid(86_400) != 86_399 {
        return Err(Error::invalid(func, "nanos >= 1e9 (a leap second) is only valid at 23:59:59 UTC", st.secs));
    }
    Ok(st)
}

/// Formats an instant as RFC 3339 text, e.g. 951825600500000 → `2000-02-29T12:00:00.500Z`. `time` is unix
/// microseconds (int) or the dict `rt_time_parse_iso8601` returns (`secs`, `nanos`, `offset_minutes`; `micros`
/// must agree if present).
///
/// # Options
/// - digits (int: 0, 3, 6 or 9): fractional digits, truncating (default: as many as needed)
/// - offset_minutes (int -1439..=1439, default 0): the offset to write; overrides the dict's
/// - z (bool, default true): write `Z` for offset 0 (false: `+00:00`)
///
/// # Errors
/// - OutOfRange: the instant is outside years 0000..=9999
/// - InvalidArgument: a time dict without secs or micros, or whose micros disagree; an unknown option or bad digits
///
/// # Example
/// rt_time_format_iso8601(951825600500000) -> "2000-02-29T12:00:00.500Z"
#[rt_fn(tier = "verified", ret = "text")]
pub fn rt_time_format_iso8601(time: Value, opts: Opts) -> RtResult<Value> {
    opts.only(&["digits", "offset_minutes", "z"])?;
    let mut st = stamp_of(FN, time)?;
    let digits = match opts.int("digits")? {
        None => None,
        Some(d @ (0 | 3 | 6 | 9)) => Some(d as u8),
        Some(d) => return Err(Error::invalid(FN, "option digits must be 0, 3, 6 or 9", d)),
    };
    if let Some(o) = opts.int_in("offset_minutes", -1439, 1439)? {
        st.offset_minutes = o as i32;
    }
    let use_z = opts.bool("z")?.unwrap_or(true);
    let mut buf = [0u8; MAX_LEN];
    let n = format_into(st, digits, use_z, &mut buf).map_err(|why| {
        Error::new(Code::OutOfRange, FN, why, format!("secs {} nanos {}", st.secs, st.nanos))
    })?;
    // ASCII by construction.
    Ok(Value::text(std::str::from_utf8(&buf[..n]).map_err(|_| Error::internal(FN, "formatter wrote non-ASCII"))?))
}

static MICROS: Key = Key::new("micros");
static SECS: Key = Key::new("secs");
static NANOS: Key = Key::new("nanos");
static OFFSET_MINUTES: Key = Key::new("offset_minutes");

/// Parses RFC 3339 text (`2024-02-29T12:00:00.123456789+05:30`, `Z`/`z`, `t` or space as
/// separator, leap second `23:59:60` UTC) into `{micros, secs, nanos, offset_minutes}`:
/// unix micros (floor), unix seconds, nanoseconds 0..=999999999 (1e9.. in a leap second)
/// and the written offset. Error Parse with details position (byte, from 0) and column.
///
/// # Errors
/// - Parse: … at position …
#[rt_fn(tier = "verified", ret = "dict")]
pub fn rt_time_parse_iso8601(text: &str) -> RtResult<Value> {
    match parse_rfc3339(text) {
        Ok(st) => {
            let d = Value::record(&[
                (&MICROS, Value::int(st.micros())),
                (&SECS, Value::int(st.secs)),
                (&NANOS, Value::int(st.nanos as i64)),
                (&OFFSET_MINUTES, Value::int(st.offset_minutes as i64)),
            ]);
            if d.is_error() {
                return Err(Error::from_value(d));
            }
            Ok(d)
        }
        Err(f) => Err(parse_error(FN, text, f)),
    }
}

/// Error Parse naming the position (byte offset from 0; column counts characters from 1).
fn parse_error(func: &'static str, text: &str, f: ParseFail) -> Error {
    let column = text[..f.pos].chars().count() + 1;
    Error::new(Code::Parse, func, format!("{} at position {}", f.what, f.pos), quote(text))
        .with("position", f.pos)
        .with("line", 1usize)
        .with("column", column)
}

/// Parses RFC 3339 text like rt_time_parse_iso8601 but returns only unix microseconds (floor-rounded:
/// digits past the microsecond are dropped toward the past); allocation-free, for the common case.
///
/// # Errors
/// - Parse: … at position …
#[rt_fn(tier = "verified")]
pub fn rt_time_parse_iso8601_micros(text: &str) -> RtResult<i64> {
    parse_rfc3339(text).map(|st| st.micros()).map_err(|f| parse_error(FN, text, f))
}
