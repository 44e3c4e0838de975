//! ffi_time against Python's datetime (an independent implementation) as
//! the oracle, chrono's own RFC 3339 parser, the system clock, and RFC 3339
//! edge cases.

use ffi_sdk::testing::{collect, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_time::chrono::*;
use ffi_time::time::*;
use ffi_time::timestamp::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// xorshift64*: deterministic random numbers without a dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// Runs a Python program with `input` on stdin and returns its stdout lines.
fn python(prog: &str, input: &str) -> Vec<String> {
    let mut child = Command::new("python3")
        .args(["-c", prog])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed as the oracle");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let w = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    w.join().unwrap();
    assert!(out.status.success(), "python failed");
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

fn dict() -> Value {
    Value::dict()
}

fn get_i(d: Value, k: &str) -> i64 {
    d.get(k).as_int().unwrap_or_else(|| panic!("{k} missing in {d:?}"))
}

/// Year 0001-01-01 and 9999-12-31T23:59:59.999999 in unix micros.
const MIN_US: i64 = -62_135_596_800_000_000;
const MAX_US: i64 = 253_402_300_799_999_999;

#[test]
fn calendar_fields_and_format_match_python() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut instants: Vec<i64> = vec![
        0, -1, 1, -1_000_000, 951_782_400_000_000, /* 2000-02-29 */
        -2_203_891_200_000_000, /* 1900-03-01 */ 4_107_542_400_000_000, /* 2100-03-01 */
        MIN_US, MAX_US, -86_400_000_000, 68_169_600_000_000 - 1,
    ];
    for _ in 0..4000 {
        instants.push(rng.range(MIN_US, MAX_US));
    }
    // Around 1970 too, where sign handling matters.
    for _ in 0..1000 {
        instants.push(rng.range(-10_000_000_000, 10_000_000_000));
    }
    let input: String = instants.iter().map(|m| format!("{m}\n")).collect();
    let prog = r#"
import sys, datetime
E = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
for line in sys.stdin:
    d = E + datetime.timedelta(microseconds=int(line))
    print(d.year, d.month, d.day, d.hour, d.minute, d.second, d.isoformat(timespec='microseconds').replace('+00:00', 'Z'))
"#;
    let want = python(prog, &input);
    assert_eq!(want.len(), instants.len());
    let six = dict();
    six.set("digits", Value::int(6));
    for (m, line) in instants.iter().zip(&want) {
        let f: Vec<&str> = line.split(' ').collect();
        let got = [
            rt_timestamp_get_year(int(*m)),
            rt_timestamp_get_month(int(*m)),
            rt_timestamp_get_day(int(*m)),
            rt_timestamp_get_hour(int(*m)),
            rt_timestamp_get_minute(int(*m)),
            rt_timestamp_get_second(int(*m)),
        ];
        for (i, g) in got.iter().enumerate() {
            assert_eq!(ok(*g).as_int().unwrap().to_string(), f[i], "field {i} of {m}");
        }
        let s = ok(rt_time_format_iso8601(int(*m), six.raw()));
        assert_eq!(s.as_text().unwrap(), f[6], "format of {m}");
    }
}

#[test]
fn parse_matches_python_over_random_texts() {
    // Python writes random RFC 3339 texts and the exact instant as integers.
    let prog = r#"
import random, datetime
random.seed(7)
E = datetime.datetime(1970, 1, 1)
for _ in range(4000):
    y = random.randint(1, 9999); mo = random.randint(1, 12)
    d = random.randint(1, 28 if mo == 2 else 30)
    if mo == 2 and random.random() < 0.2 and (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)): d = 29
    h, mi, s = random.randint(0, 23), random.randint(0, 59), random.randint(0, 59)
    nd = random.choice([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    frac = ''.join(random.choice('0123456789') for _ in range(nd))
    om = random.choice([0, 0, random.randint(-1439, 1439), 14 * 60, -12 * 60])
    z = random.choice(['Z', 'z']) if om == 0 and random.random() < 0.7 else None
    sep = random.choice(['T', 'T', 't', ' '])
    off = z or ('%s%02d:%02d' % ('-' if om < 0 else '+', abs(om) // 60, abs(om) % 60))
    txt = '%04d-%02d-%02d%s%02d:%02d:%02d%s%s' % (y, mo, d, sep, h, mi, s, '.' + frac if nd else '', off)
    td = datetime.datetime(y, mo, d, h, mi, s) - E
    secs = td.days * 86400 + td.seconds - om * 60
    nanos = int((frac + '000000000')[:9])
    print(txt + '|' + str(secs) + '|' + str(nanos) + '|' + str(om if off not in ('Z', 'z') else 0))
"#;
    let lines = python(prog, "");
    assert_eq!(lines.len(), 4000);
    for line in &lines {
        let f: Vec<&str> = line.split('|').collect();
        let d = ok(rt_time_parse_iso8601(text(f[0])));
        let (secs, nanos, om): (i64, i64, i64) = (f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap());
        assert_eq!(get_i(d, "secs"), secs, "{}", f[0]);
        assert_eq!(get_i(d, "nanos"), nanos, "{}", f[0]);
        assert_eq!(get_i(d, "offset_minutes"), om, "{}", f[0]);
        assert_eq!(get_i(d, "micros"), secs * 1_000_000 + nanos / 1000, "{}", f[0]);
        // chrono's own parser agrees on the instant.
        let c = chrono::DateTime::parse_from_rfc3339(f[0]).unwrap();
        assert_eq!((c.timestamp(), c.timestamp_subsec_nanos() as i64), (secs, nanos), "{}", f[0]);
        // And the text comes back exactly in canonical form, through the dict.
        let back = ok(rt_time_format_iso8601(d.raw(), NIL));
        let again = ok(rt_time_parse_iso8601(back.raw()));
        for k in ["secs", "nanos", "offset_minutes", "micros"] {
            assert_eq!(get_i(again, k), get_i(d, k), "{k} of {}", f[0]);
        }
    }
}

#[test]
fn round_trip_is_exact() {
    let mut rng = Rng(99);
    for _ in 0..5000 {
        let secs = rng.range(MIN_US / 1_000_000 + 86_400, MAX_US / 1_000_000 - 86_400);
        let nanos = match rng.next() % 4 {
            0 => 0,
            1 => rng.range(0, 999) * 1_000_000,
            2 => rng.range(0, 999_999) * 1000,
            _ => rng.range(0, 999_999_999),
        };
        let off = rng.range(-1439, 1439);
        let d = dict();
        d.set("secs", Value::int(secs));
        d.set("nanos", Value::int(nanos));
        d.set("offset_minutes", Value::int(off));
        let s = ok(rt_time_format_iso8601(d.raw(), NIL));
        let p = ok(rt_time_parse_iso8601(s.raw()));
        assert_eq!((get_i(p, "secs"), get_i(p, "nanos"), get_i(p, "offset_minutes")), (secs, nanos, off), "{s:?}");
        // text -> dict -> text is the identity on canonical text.
        let s2 = ok(rt_time_format_iso8601(p.raw(), NIL));
        assert_eq!(s2.as_text(), s.as_text());
        // micros -> text -> micros.
        let m = secs * 1_000_000 + nanos / 1000;
        let t = ok(rt_time_format_iso8601(int(m), NIL));
        assert_eq!(get_i(ok(rt_time_parse_iso8601(t.raw())), "micros"), m);
    }
}

#[test]
fn formatter_and_calendar_match_chrono() {
    use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
    let mut rng = Rng(4242);
    for _ in 0..20_000 {
        let secs = rng.range(MIN_US / 1_000_000 + 86_400, MAX_US / 1_000_000 - 86_400);
        let nanos = match rng.next() % 4 {
            0 => 0,
            1 => rng.range(0, 999) as u32 * 1_000_000,
            2 => rng.range(0, 999_999) as u32 * 1000,
            _ => rng.range(0, 999_999_999) as u32,
        };
        let off = match rng.next() % 3 {
            0 => 0,
            _ => rng.range(-1439, 1439) as i32,
        };
        let st = Stamp { secs, nanos, offset_minutes: off };
        let dt = DateTime::from_timestamp(secs, nanos).unwrap().with_timezone(&FixedOffset::east_opt(off * 60).unwrap());
        for (digits, fmt) in [(None, SecondsFormat::AutoSi), (Some(0), SecondsFormat::Secs), (Some(3), SecondsFormat::Millis),
            (Some(6), SecondsFormat::Micros), (Some(9), SecondsFormat::Nanos)]
        {
            for z in [true, false] {
                assert_eq!(format_rfc3339(st, digits, z).unwrap(), dt.to_rfc3339_opts(fmt, z), "{st:?} {digits:?}");
            }
        }
        // The day count agrees with chrono both ways.
        let days = secs.div_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let nd = NaiveDate::from_ymd_opt(y as i32, m, d).unwrap();
        assert_eq!(nd, DateTime::from_timestamp(secs, 0).unwrap().date_naive());
        assert_eq!(days_from_civil(y, m, d), days);
    }
}

#[test]
fn parse_to_micros() {
    let cases: &[(&str, i64)] = &[
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59.9999999Z", -1),
        ("1969-12-31T23:59:59.999999Z", -1),
        ("2000-02-29T12:00:00.123456789+01:00", 951_822_000_123_456),
        ("0001-01-01T00:00:00Z", MIN_US),
        ("9999-12-31T23:59:59.999999999Z", MAX_US),
    ];
    for (s, m) in cases {
        assert_eq!(ok(rt_time_parse_iso8601_micros(text(s))).as_int(), Some(*m), "{s}");
        assert_eq!(get_i(ok(rt_time_parse_iso8601(text(s))), "micros"), *m, "{s}");
    }
    let (c, msg) = err(rt_time_parse_iso8601_micros(text("2024-02-30T00:00:00Z")));
    assert_eq!(c, Code::Parse);
    assert!(msg.starts_with("rt_time_parse_iso8601_micros: day 30 does not exist in 2024-02 at position 8"), "{msg}");
    assert_eq!(err(rt_time_parse_iso8601_micros(NIL)).0, Code::TypeMismatch);
}

#[test]
fn rfc3339_edge_cases() {
    let cases: &[(&str, i64, i64, i64)] = &[
        // text, secs, nanos, offset_minutes
        ("1970-01-01T00:00:00Z", 0, 0, 0),
        ("1969-12-31T23:59:59.999999999Z", -1, 999_999_999, 0),
        ("0001-01-01T00:00:00Z", -62_135_596_800, 0, 0),
        ("9999-12-31T23:59:59.999999999Z", 253_402_300_799, 999_999_999, 0),
        ("0000-01-01T00:00:00Z", -62_167_219_200, 0, 0),
        ("2000-01-01T00:00:00+14:00", 946_634_400, 0, 840),
        ("2000-01-01T00:00:00-12:00", 946_728_000, 0, -720),
        ("2000-01-01t00:00:00z", 946_684_800, 0, 0),
        ("2000-01-01 00:00:00Z", 946_684_800, 0, 0),
        ("2000-02-29T12:00:00.5Z", 951_825_600, 500_000_000, 0),
        ("2000-01-01T00:00:00.1234567891234Z", 946_684_800, 123_456_789, 0),
        ("2000-01-01T00:00:00-00:00", 946_684_800, 0, 0),
        // Leap seconds (RFC 3339 §5.7 examples): the second 23:59:59 plus 1e9 ns.
        ("1990-12-31T23:59:60Z", 662_687_999, 1_000_000_000, 0),
        ("1990-12-31T15:59:60-08:00", 662_687_999, 1_000_000_000, -480),
        ("2016-12-31T23:59:60.5Z", 1_483_228_799, 1_500_000_000, 0),
    ];
    for (s, secs, nanos, off) in cases {
        let d = ok(rt_time_parse_iso8601(text(s)));
        assert_eq!((get_i(d, "secs"), get_i(d, "nanos"), get_i(d, "offset_minutes")), (*secs, *nanos, *off), "{s}");
    }
    // Formatting keeps the leap second and the offsets.
    for s in ["1990-12-31T23:59:60Z", "1990-12-31T15:59:60-08:00", "2016-12-31T23:59:60.500Z", "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999999999Z", "2000-01-01T00:00:00+14:00", "2000-01-01T00:00:00-12:00"]
    {
        let d = ok(rt_time_parse_iso8601(text(s)));
        assert_eq!(ok(rt_time_format_iso8601(d.raw(), NIL)).as_text().unwrap(), s);
    }
    // The leap second's micros fall in the next second (unix time has no :60).
    let d = ok(rt_time_parse_iso8601(text("2016-12-31T23:59:60Z")));
    assert_eq!(get_i(d, "micros"), 1_483_228_800_000_000);
}

#[test]
fn format_options() {
    let m = 951_825_600_123_456; // 2000-02-29T12:00:00.123456Z
    let f = |o: Value| ok(rt_time_format_iso8601(int(m), o.raw())).as_text().unwrap().to_string();
    assert_eq!(f(Value::NIL), "2000-02-29T12:00:00.123456Z");
    let cases: &[(&str, i64, &str)] = &[
        ("digits", 0, "2000-02-29T12:00:00Z"),
        ("digits", 3, "2000-02-29T12:00:00.123Z"),
        ("digits", 6, "2000-02-29T12:00:00.123456Z"),
        ("digits", 9, "2000-02-29T12:00:00.123456000Z"),
        ("offset_minutes", 330, "2000-02-29T17:30:00.123456+05:30"),
        ("offset_minutes", -720, "2000-02-29T00:00:00.123456-12:00"),
    ];
    for (k, v, want) in cases {
        let o = dict();
        o.set(k, Value::int(*v));
        assert_eq!(f(o), *want, "{k}={v}");
    }
    let o = dict();
    o.set("z", Value::FALSE);
    assert_eq!(f(o), "2000-02-29T12:00:00.123456+00:00");
    // Auto digits: 0, 3, 6 or 9 as needed.
    assert_eq!(ok(rt_time_format_iso8601(int(0), NIL)).as_text().unwrap(), "1970-01-01T00:00:00Z");
    assert_eq!(ok(rt_time_format_iso8601(int(-1000), NIL)).as_text().unwrap(), "1969-12-31T23:59:59.999Z");
    // A dict with micros only, and one where micros agrees with secs/nanos.
    let d = dict();
    d.set("micros", Value::int(m));
    assert_eq!(ok(rt_time_format_iso8601(d.raw(), NIL)).as_text().unwrap(), "2000-02-29T12:00:00.123456Z");
    d.set("secs", Value::int(951_825_600));
    d.set("nanos", Value::int(123_456_789));
    assert_eq!(ok(rt_time_format_iso8601(d.raw(), NIL)).as_text().unwrap(), "2000-02-29T12:00:00.123456789Z");
}

#[test]
fn format_bad_input() {
    let bad_opts: &[(&str, Value)] = &[
        ("digits", Value::int(5)),
        ("digits", Value::int(-1)),
        ("offset_minutes", Value::int(1440)),
        ("z", Value::int(1)),
        ("colour", Value::TRUE),
    ];
    for (k, v) in bad_opts {
        let o = dict();
        o.set(k, *v);
        let (c, msg) = err(rt_time_format_iso8601(int(0), o.raw()));
        assert_eq!(c, Code::InvalidArgument, "{k}: {msg}");
        assert!(msg.starts_with("rt_time_format_iso8601: "), "{msg}");
    }
    // Wrong kinds.
    for v in [text("2020"), NIL, Value::float(1.5).raw(), Value::TRUE.raw()] {
        assert_eq!(err(rt_time_format_iso8601(v, NIL)).0, Code::TypeMismatch);
    }
    assert_eq!(err(rt_time_format_iso8601(int(0), text("digits"))).0, Code::TypeMismatch);
    // Not writable in RFC 3339: years beyond 0000..=9999.
    for m in [MAX_US + 1, -62_167_219_200_000_001, i64::MAX, i64::MIN] {
        let (c, msg) = err(rt_time_format_iso8601(int(m), NIL));
        assert_eq!(c, Code::OutOfRange, "{m}: {msg}");
    }
    // An offset can push a valid instant out of range.
    let o = dict();
    o.set("offset_minutes", Value::int(60));
    assert_eq!(err(rt_time_format_iso8601(int(MAX_US), o.raw())).0, Code::OutOfRange);
    // Bad dicts.
    let bad_dicts: Vec<Vec<(&str, Value)>> = vec![
        vec![],
        vec![("nanos", Value::int(5))],
        vec![("secs", Value::int(0)), ("nanos", Value::int(2_000_000_000))],
        vec![("secs", Value::int(0)), ("nanos", Value::int(-1))],
        vec![("secs", Value::int(0)), ("micros", Value::int(5))],
        vec![("secs", text("0").into_value())],
        vec![("secs", Value::int(0)), ("extra", Value::int(1))],
        vec![("secs", Value::int(0)), ("offset_minutes", Value::int(-1440))],
        // A leap second that is not at 23:59:59 UTC.
        vec![("secs", Value::int(0)), ("nanos", Value::int(1_000_000_000))],
    ];
    for entries in bad_dicts {
        let d = dict();
        for (k, v) in &entries {
            d.set(k, *v);
        }
        let (c, msg) = err(rt_time_format_iso8601(d.raw(), NIL));
        assert_eq!(c, Code::InvalidArgument, "{entries:?}: {msg}");
    }
}

trait IntoValue {
    fn into_value(self) -> Value;
}
impl IntoValue for u64 {
    fn into_value(self) -> Value {
        Value::from_raw(self)
    }
}

#[test]
fn parse_errors_name_the_position() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "text ends early: expected the year"),
        ("2024", 4, "'-' after the year"),
        ("24-01-01T00:00:00Z", 2, "digit of the year"),
        ("2024-13-01T00:00:00Z", 5, "month 13"),
        ("2024-00-01T00:00:00Z", 5, "month 00"),
        ("2023-02-29T00:00:00Z", 8, "day 29 does not exist in 2023-02"),
        ("2024-04-31T00:00:00Z", 8, "day 31"),
        ("2024-01-00T00:00:00Z", 8, "day 00"),
        ("2024-01-01X00:00:00Z", 10, "'T'"),
        ("2024-01-01T24:00:00Z", 11, "hour 24"),
        ("2024-01-01T00:60:00Z", 14, "minute 60"),
        ("2024-01-01T00:00:61Z", 17, "second 61"),
        ("2024-01-01T12:00:60Z", 17, "leap second"),
        ("2016-12-31T23:59:60+01:00", 17, "leap second"),
        ("2024-01-01T00:00:00", 19, "text ends early: expected 'Z'"),
        ("2024-01-01T00:00:00.Z", 20, "digit after '.'"),
        ("2024-01-01T00:00:00.", 20, "text ends early: expected a digit after '.'"),
        ("2024-01-01T00:00:00+1:00", 21, "digit of the offset hour"),
        ("2024-01-01T00:00:00+24:00", 20, "offset hour 24"),
        ("2024-01-01T00:00:00+01:60", 23, "offset minute 60"),
        ("2024-01-01T00:00:00+0100", 22, "':' in the UTC offset"),
        ("2024-01-01T00:00:00Z ", 20, "unexpected text"),
        (" 2024-01-01T00:00:00Z", 0, "digit of the year"),
        ("2024-01-01T00:00:00ZZ", 20, "unexpected text"),
        ("2024-01-01T00:00:00.5é", 21, "expected 'Z'"),
        ("2024-01-01", 10, "text ends early"),
        ("+2024-01-01T00:00:00Z", 0, "digit of the year"),
        // Found by fuzzing (fuzz/regressions/time_parse): non-digits where the fast
        // path reads two digits overflowed u8 arithmetic (Error Panic in debug builds).
        ("2024-02-29T1&:00:03.", 12, "digit of the hour"),
        ("2024-02-29T12:00:00+*0:00", 20, "digit of the offset hour"),
    ];
    for (s, pos, frag) in cases {
        let v = Value::from_raw(rt_time_parse_iso8601(text(s)));
        let (c, msg) = v.error().unwrap_or_else(|| panic!("{s:?} parsed"));
        assert_eq!(c, Code::Parse, "{s:?}: {msg}");
        assert!(msg.contains(frag) && msg.contains(&format!("at position {pos}")), "{s:?}: {msg}");
        assert!(msg.starts_with("rt_time_parse_iso8601: "), "{msg}");
        // chrono rejects them too, except leap seconds away from 23:59 UTC, which it does not check.
        let leap = msg.contains("leap second");
        assert_eq!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), leap, "chrono on {s:?}");
    }
    // Wrong kinds.
    for v in [int(5), NIL, ffi_sdk::testing::bytes(b"2024-01-01T00:00:00Z")] {
        assert_eq!(err(rt_time_parse_iso8601(v)).0, Code::TypeMismatch);
    }
}

#[test]
fn timestamp_getters_bad_input() {
    type F = extern "C" fn(u64) -> u64;
    let fs: [F; 6] = [rt_timestamp_get_year, rt_timestamp_get_month, rt_timestamp_get_day, rt_timestamp_get_hour,
        rt_timestamp_get_minute, rt_timestamp_get_second];
    for f in fs {
        assert_eq!(err(f(text("0"))).0, Code::TypeMismatch);
        assert_eq!(err(f(NIL)).0, Code::TypeMismatch);
        assert_eq!(err(f(Value::float(0.0).raw())).0, Code::TypeMismatch);
        assert_eq!(err(f(int(i64::MAX))).0, Code::OutOfRange);
        assert_eq!(err(f(int(i64::MIN))).0, Code::OutOfRange);
        // Far from 1970 but inside chrono's range: fine.
        assert!(ok(f(int(-8_000_000_000_000_000_000))).as_int().is_some());
    }
    // Year 1 BC is year 0 (proleptic Gregorian, astronomical numbering). -8e18 µs: year -251540, checked
    // with Python by shifting whole 400-year cycles (146097 days) into its range.
    assert_eq!(ok(rt_timestamp_get_year(int(-62_167_219_200_000_000))).as_int(), Some(0));
    assert_eq!(ok(rt_timestamp_get_year(int(-8_000_000_000_000_000_000))).as_int(), Some(-251_540));
}

#[test]
fn clocks() {
    let sys = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let us = ok(rt_time_now_unix_micros()).as_int().unwrap();
    let ms = ok(rt_current_time_ms()).as_int().unwrap();
    assert!((us - sys).abs() < 2_000_000, "{us} vs {sys}");
    assert!((ms - us / 1000).abs() < 2000);
    // The `date` command as an outside clock.
    let out = Command::new("date").arg("+%s").output().unwrap();
    let date_s: i64 = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    assert!((date_s - us / 1_000_000).abs() <= 2);
    // Monotonic: never goes back, and sleep sleeps at least as long as asked.
    let a = ok(rt_time_monotonic_ns()).as_int().unwrap();
    let t = std::time::Instant::now();
    assert!(ok(rt_time_sleep_ms(int(30))).is_nil());
    let el = t.elapsed();
    let b = ok(rt_time_monotonic_ns()).as_int().unwrap();
    assert!(el >= std::time::Duration::from_millis(30), "{el:?}");
    assert!(b - a >= 30_000_000, "{}", b - a);
    // CLOCK_MONOTONIC agrees with Rust's Instant (the same clock) within the elapsed time.
    assert!((b - a) as u128 <= el.as_nanos() + 5_000_000);
    let mut last = 0;
    for _ in 0..1000 {
        let n = ok(rt_time_monotonic_ns()).as_int().unwrap();
        assert!(n >= last);
        last = n;
    }
    assert!(ok(rt_time_sleep_ms(int(0))).is_nil());
}

#[test]
fn sleep_bad_input() {
    let (c, msg) = err(rt_time_sleep_ms(int(-1)));
    assert_eq!(c, Code::InvalidArgument, "{msg}");
    assert!(msg.contains("must not be negative"), "{msg}");
    assert_eq!(err(rt_time_sleep_ms(text("10"))).0, Code::TypeMismatch);
    assert_eq!(err(rt_time_sleep_ms(NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_time_sleep_ms(Value::float(1.5).raw())).0, Code::TypeMismatch);
}

#[test]
fn parse_survives_collections() {
    // Results must stay intact while the collector runs between calls.
    let mut kept = Vec::new();
    for i in 0..2000i64 {
        let s = format!("2001-02-03T04:05:{:02}.{:09}Z", i % 60, i);
        let d = ok(rt_time_parse_iso8601(text(&s)));
        kept.push(ffi_sdk::Root::new(d));
        if i % 500 == 0 {
            collect();
        }
    }
    collect();
    for (i, r) in kept.iter().enumerate() {
        let d = r.get();
        assert_eq!(get_i(d, "nanos"), i as i64);
        assert_eq!(get_i(d, "secs"), 981_173_100 + (i as i64 % 60));
    }
}

#[test]
fn no_capability_needed() {
    ffi_sdk::testing::in_child("no_capability_needed", || {
        ffi_sdk::testing::restrict("*=false");
        assert!(ok(rt_time_now_unix_micros()).as_int().unwrap() > 0);
        assert!(ok(rt_current_time_ms()).as_int().unwrap() > 0);
        assert!(ok(rt_time_monotonic_ns()).as_int().unwrap() > 0);
        assert!(ok(rt_time_sleep_ms(int(1))).is_nil());
        assert_eq!(ok(rt_time_parse_iso8601_micros(text("1970-01-01T00:00:01Z"))).as_int(), Some(1_000_000));
        assert_eq!(ok(rt_timestamp_get_year(int(0))).as_int(), Some(1970));
        assert_eq!(ok(rt_timestamp_get_month(int(0))).as_int(), Some(1));
        assert_eq!(ok(rt_timestamp_get_day(int(0))).as_int(), Some(1));
        assert_eq!(ok(rt_timestamp_get_hour(int(0))).as_int(), Some(0));
        assert_eq!(ok(rt_timestamp_get_minute(int(0))).as_int(), Some(0));
        assert_eq!(ok(rt_timestamp_get_second(int(0))).as_int(), Some(0));
        let d = ok(rt_time_parse_iso8601(text("1970-01-01T00:00:00Z")));
        assert_eq!(ok(rt_time_format_iso8601(d.raw(), NIL)).as_text().unwrap(), "1970-01-01T00:00:00Z");
    });
}
