"""ffi_time from Python, with the datetime module as the oracle."""

import datetime
import random
import time

import simple_rt
from helpers import child, raises, requires

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -62_135_596_800_000_000   # 0001-01-01T00:00:00Z
MAX_US = 253_402_300_799_999_999   # 9999-12-31T23:59:59.999999Z

pytestmark = requires("time")


def test_clocks():
    us = simple_rt.rt_time_now_unix_micros()
    assert abs(us / 1e6 - time.time()) < 2
    assert abs(simple_rt.rt_current_time_ms() - us // 1000) < 2000
    # Same clock as time.monotonic_ns (CLOCK_MONOTONIC).
    a = time.monotonic_ns()
    m = simple_rt.rt_time_monotonic_ns()
    b = time.monotonic_ns()
    assert a <= m <= b
    t = time.monotonic()
    assert simple_rt.rt_time_sleep_ms(50) is None
    assert time.monotonic() - t >= 0.05
    raises("InvalidArgument", simple_rt.rt_time_sleep_ms, -1)
    raises("TypeMismatch", simple_rt.rt_time_sleep_ms, "5")


def test_fields_and_format_against_datetime():
    rnd = random.Random(11)
    instants = [0, -1, MIN_US, MAX_US, 951_782_400_000_000] + [rnd.randint(MIN_US, MAX_US) for _ in range(2000)]
    for m in instants:
        d = EPOCH + datetime.timedelta(microseconds=m)
        got = (simple_rt.rt_timestamp_get_year(m), simple_rt.rt_timestamp_get_month(m), simple_rt.rt_timestamp_get_day(m),
               simple_rt.rt_timestamp_get_hour(m), simple_rt.rt_timestamp_get_minute(m), simple_rt.rt_timestamp_get_second(m))
        assert got == (d.year, d.month, d.day, d.hour, d.minute, d.second), m
        want = d.isoformat(timespec="microseconds").replace("+00:00", "Z")
        assert simple_rt.rt_time_format_iso8601(m, {"digits": 6}) == want


def test_parse_against_fromisoformat():
    rnd = random.Random(5)
    for _ in range(2000):
        m = rnd.randint(MIN_US + 86_400_000_000, MAX_US - 86_400_000_000)
        off = rnd.randint(-1439, 1439)
        tz = datetime.timezone(datetime.timedelta(minutes=off))
        d = (EPOCH + datetime.timedelta(microseconds=m)).astimezone(tz)
        s = d.isoformat(timespec="microseconds")
        p = simple_rt.rt_time_parse_iso8601(s)
        assert p["micros"] == m and p["offset_minutes"] == off, s
        assert p["secs"] * 1_000_000 + p["nanos"] // 1000 == m
        assert datetime.datetime.fromisoformat(s) == EPOCH + datetime.timedelta(microseconds=p["micros"])
        # And back to the same text.
        assert simple_rt.rt_time_format_iso8601(p, {"digits": 6, "z": False}) == s


def test_rfc3339_edge_cases():
    p = simple_rt.rt_time_parse_iso8601("1990-12-31T23:59:60Z")
    assert (p["secs"], p["nanos"]) == (662_687_999, 1_000_000_000)
    assert simple_rt.rt_time_format_iso8601(p, None) == "1990-12-31T23:59:60Z"
    for s in ("2000-01-01T00:00:00+14:00", "2000-01-01T00:00:00-12:00", "0001-01-01T00:00:00Z",
              "9999-12-31T23:59:59.999999999Z", "2024-02-29T12:34:56.123456789+05:30"):
        assert simple_rt.rt_time_format_iso8601(simple_rt.rt_time_parse_iso8601(s), None) == s
    assert simple_rt.rt_time_parse_iso8601("2000-01-01t00:00:00z")["micros"] == 946_684_800_000_000
    e = raises("Parse", simple_rt.rt_time_parse_iso8601, "2023-02-29T00:00:00Z")
    assert e.details["position"] == 8 and e.details["column"] == 9 and "position 8" in e.message
    e = raises("Parse", simple_rt.rt_time_parse_iso8601, "2024-01-01T00:00:00")
    assert e.details["position"] == 19
    raises("OutOfRange", simple_rt.rt_time_format_iso8601, MAX_US + 1, None)
    raises("OutOfRange", simple_rt.rt_timestamp_get_year, 2**63 - 1)
    raises("InvalidArgument", simple_rt.rt_time_format_iso8601, 0, {"digits": 4})
    raises("TypeMismatch", simple_rt.rt_time_format_iso8601, "2020", None)
    raises("TypeMismatch", simple_rt.rt_time_parse_iso8601, 5)
    raises("TypeMismatch", simple_rt.rt_timestamp_get_day, None)


def test_no_capability_needed():
    p = child("""
        import simple_rt
        simple_rt.restrict("*=false")
        assert simple_rt.rt_time_now_unix_micros() > 0
        assert simple_rt.rt_timestamp_get_year(0) == 1970
        assert simple_rt.rt_time_format_iso8601(simple_rt.rt_time_parse_iso8601("1970-01-01T00:00:00Z"), None) == "1970-01-01T00:00:00Z"
        simple_rt.rt_time_sleep_ms(1)
        print("ok")
    """, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
