//! The functions serving Simple's time externs, with Python's datetime as oracle.

use ffi_sdk::testing::{err, int, ok, text};
use ffi_sdk::Code;
use ffi_time::calendar::*;
use ffi_time::clock::*;
use std::process::Command;

fn py(expr: &str) -> String {
    let o = Command::new("python3").args(["-c", &format!("import datetime as d,time\nprint({expr})")]).output().unwrap();
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

#[test]
fn clocks_agree_with_each_other_and_the_os() {
    let us = ok(rt_time_now()).as_int().unwrap();
    let ms = ok(rt_time_now_ms()).as_int().unwrap();
    let s = ok(rt_time_now_seconds()).as_int().unwrap();
    let ns = ok(rt_time_now_nanos()).as_int().unwrap();
    assert!((ms - us / 1000).abs() < 2000 && (s - us / 1_000_000).abs() < 2 && (ns / 1000 - us).abs() < 2_000_000);
    for v in [rt_time_ms(), rt_time_millis(), rt_time_now_unix_millis()] {
        assert!((ok(v).as_int().unwrap() - ms).abs() < 2000);
    }
    for v in [rt_timestamp_now(), rt_time_now_micros()] {
        assert!((ok(v).as_int().unwrap() - us).abs() < 2_000_000);
    }
    let pys: i64 = py("int(time.time())").parse().unwrap();
    assert!((pys - s).abs() < 3);
    assert!((ok(rt_time_now_seconds_f64()).as_float().unwrap() - s as f64).abs() < 3.0);
    let y = ok(rt_time_year()).as_int().unwrap();
    assert_eq!(y.to_string(), py("d.datetime.now(d.timezone.utc).year"));
    let m = ok(rt_time_month()).as_int().unwrap();
    assert!((1..=12).contains(&m));
    for (v, hi) in [(rt_time_day(), 31), (rt_time_hour(), 23), (rt_time_minute(), 59), (rt_time_second(), 60)] {
        assert!((0..=hi).contains(&ok(v).as_int().unwrap()));
    }
    assert!(ok(rt_time_now_iso()).as_text().unwrap().ends_with('Z'));
}

#[test]
fn sleep() {
    let t = std::time::Instant::now();
    ok(rt_sleep_ms(int(20)));
    assert!(t.elapsed().as_millis() >= 20);
    ok(rt_sleep_secs(int(0)));
    assert_eq!(err(rt_sleep_ms(int(-1))).0, Code::OutOfRange);
    assert_eq!(err(rt_sleep_secs(int(-1))).0, Code::OutOfRange);
    assert_eq!(err(rt_sleep_ms(text("1"))).0, Code::TypeMismatch);
}

#[test]
fn timestamps_match_python() {
    for (y, mo, d, h, mi, s, us) in [(2024, 2, 29, 12, 30, 45, 123456), (1969, 12, 31, 23, 59, 59, 999999), (1, 1, 1, 0, 0, 0, 0), (9999, 12, 31, 23, 59, 59, 0)] {
        let ts = ok(rt_timestamp_from_components(int(y), int(mo), int(d), int(h), int(mi), int(s), int(us))).as_int().unwrap();
        let want = py(&format!(
            "(d.datetime({y},{mo},{d},{h},{mi},{s},{us},tzinfo=d.timezone.utc)-d.datetime(1970,1,1,tzinfo=d.timezone.utc))//d.timedelta(microseconds=1)"
        ));
        assert_eq!(ts.to_string(), want);
        assert_eq!(ok(rt_timestamp_get_microsecond(int(ts))).as_int(), Some(us));
        let iso = ok(rt_timestamp_to_iso(int(ts))).as_text().unwrap().to_string();
        assert_eq!(iso, format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z"));
        assert_eq!(ok(rt_timestamp_from_iso(text(&iso))).as_int(), Some(ts));
        let plain = ok(rt_timestamp_to_string(int(ts))).as_text().unwrap().to_string();
        assert_eq!(plain, format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"));
        assert_eq!(ok(rt_timestamp_parse(text(&plain))).as_int(), Some(ts - us));
    }
    assert_eq!(ok(rt_timestamp_parse(text("2024-03-01"))).as_int(), Some(1_709_251_200_000_000));
    assert_eq!(ok(rt_timestamp_parse(text("2024-03-01T00:00:00+01:00"))).as_int(), Some(1_709_247_600_000_000));
    assert_eq!(ok(rt_timestamp_add_days(int(0), int(-1))).as_int(), Some(-86_400_000_000));
    assert_eq!(ok(rt_timestamp_diff_days(int(3 * 86_400_000_000 + 5), int(0))).as_int(), Some(3));
    assert_eq!(ok(rt_timestamp_diff_seconds(int(5_500_000), int(0))).as_int(), Some(5));
    assert_eq!(err(rt_timestamp_from_components(int(2023), int(2), int(29), int(0), int(0), int(0), int(0))).0, Code::OutOfRange);
    assert_eq!(err(rt_timestamp_from_components(int(2023), int(13), int(1), int(0), int(0), int(0), int(0))).0, Code::OutOfRange);
    assert_eq!(err(rt_timestamp_from_iso(text("2024-13-01T00:00:00Z"))).0, Code::Parse);
    assert_eq!(err(rt_timestamp_parse(text("yesterday"))).0, Code::Parse);
    assert_eq!(err(rt_timestamp_add_days(int(i64::MAX >> 4), int(i64::MAX >> 4))).0, Code::OutOfRange);
}
