//! RFC 3339 format/parse throughput: the exported functions against chrono
//! called directly, and Python's datetime (run as a process) for scale.
//! `cargo bench -p ffi_time`. Prints one table; nothing is asserted.

use chrono::{DateTime, SecondsFormat, Utc};
use ffi_sdk::{bench, Root, Value};
use ffi_time::chrono::{parse_rfc3339, rt_time_format_iso8601, rt_time_parse_iso8601, rt_time_parse_iso8601_micros};
use std::hint::black_box;

const N: usize = 20_000;
const ROUNDS: usize = 15;

/// Best of ROUNDS runs of `f` over all inputs (`f` returns how many): ns per operation.
fn best(mut f: impl FnMut() -> usize) -> f64 {
    let mut n = 0;
    let d = bench::race(ROUNDS, 1, &mut [&mut || n = f()])[0];
    bench::per_op(d, n) * 1e9
}

fn python_ns(op: &str) -> f64 {
    let prog = format!(
        r#"
import datetime, random, time
random.seed(1)
E = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
ds = [E + datetime.timedelta(microseconds=random.randint(0, 4102444800000000)) for _ in range({N})]
ss = [d.isoformat() for d in ds]
best = 1e9
for _ in range(5):
    t = time.perf_counter_ns()
    if "{op}" == "format":
        for d in ds: d.isoformat()
    else:
        for s in ss: datetime.datetime.fromisoformat(s)
    best = min(best, (time.perf_counter_ns() - t) / {N})
print(best)
"#
    );
    bench::python(&prog, &[]).unwrap_or(f64::NAN)
}

fn main() {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    // Instants 1970..2100 with microsecond precision (the common case).
    let micros: Vec<i64> = (0..N).map(|_| (bench::xorshift(&mut seed) % 4_102_444_800_000_000) as i64).collect();
    let texts: Vec<String> = micros
        .iter()
        .map(|m| DateTime::<Utc>::from_timestamp_micros(*m).unwrap().to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .collect();
    // The wrapper's inputs as values, made before timing and pinned.
    let int_args: Vec<u64> = micros.iter().map(|m| Value::int(*m).raw()).collect();
    let text_args: Vec<Root> = texts.iter().map(|s| Root::new(Value::text(s))).collect();
    let text_raw: Vec<u64> = text_args.iter().map(|r| r.get().raw()).collect();
    let nil = ffi_sdk::abi::NIL;

    // Sanity: both paths agree.
    for (m, s) in micros.iter().zip(&texts).take(100) {
        let v = Value::from_raw(rt_time_format_iso8601(Value::int(*m).raw(), nil));
        assert_eq!(v.as_text().unwrap(), s);
    }

    let fmt_rt = best(|| {
        for a in &int_args {
            black_box(rt_time_format_iso8601(black_box(*a), nil));
        }
        N
    });
    let fmt_chrono = best(|| {
        for m in &micros {
            let dt = DateTime::<Utc>::from_timestamp_micros(black_box(*m)).unwrap();
            black_box(dt.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        N
    });
    let parse_rt = best(|| {
        for a in &text_raw {
            black_box(rt_time_parse_iso8601(black_box(*a)));
        }
        N
    });
    let parse_micros = best(|| {
        for a in &text_raw {
            black_box(rt_time_parse_iso8601_micros(black_box(*a)));
        }
        N
    });
    let parse_core = best(|| {
        for s in &texts {
            black_box(parse_rfc3339(black_box(s)).map(|st| st.micros()).unwrap_or(0));
        }
        N
    });
    let parse_chrono = best(|| {
        for s in &texts {
            black_box(DateTime::parse_from_rfc3339(black_box(s)).ok());
        }
        N
    });
    // What the boundary adds: one text value of the same length (collector allocation + copy).
    let alloc_text = best(|| {
        for s in &texts {
            black_box(Value::text(black_box(s)));
        }
        N
    });
    let fmt_core = best(|| {
        let mut buf = [0u8; ffi_time::chrono::MAX_LEN];
        for m in &micros {
            let st = ffi_time::chrono::Stamp { secs: m.div_euclid(1_000_000), nanos: (m.rem_euclid(1_000_000) * 1000) as u32, offset_minutes: 0 };
            black_box(ffi_time::chrono::format_into(black_box(st), None, true, &mut buf).ok());
        }
        N
    });
    let py_fmt = python_ns("format");
    let py_parse = python_ns("parse");

    println!("RFC 3339, {N} random instants 1970..2100 (µs precision), best of {ROUNDS} rounds, ns per operation");
    println!("{:<8} {:>22} {:>16} {:>18} {:>14} {:>14}", "op", "wrapper (rt_* export)", "chrono direct", "python datetime", "rt/chrono", "python/rt");
    println!("{:<8} {:>22.1} {:>16.1} {:>18.1} {:>14.2} {:>14.2}", "format", fmt_rt, fmt_chrono, py_fmt, fmt_rt / fmt_chrono, py_fmt / fmt_rt);
    println!("{:<8} {:>22.1} {:>16.1} {:>18.1} {:>14.2} {:>14.2}", "parse", parse_rt, parse_chrono, py_parse, parse_rt / parse_chrono, py_parse / parse_rt);
    println!("{:<8} {:>22.1} {:>16.1} {:>18.1} {:>14.2} {:>14.2}", "parse_us", parse_micros, parse_chrono, py_parse, parse_micros / parse_chrono, py_parse / parse_micros);
    println!("format: rt_time_format_iso8601(int, nil) -> text value; chrono: from_timestamp_micros + to_rfc3339_opts(AutoSi) -> String");
    println!("parse: rt_time_parse_iso8601 -> dict {{micros, secs, nanos, offset_minutes}}; parse_us: rt_time_parse_iso8601_micros -> int;");
    println!("       chrono: DateTime::parse_from_rfc3339 (no allocation). This crate's parser called directly (-> micros): {parse_core:.1} ns ({:.2} of chrono)", parse_core / parse_chrono);
    println!("format breakdown: this crate's formatter alone {fmt_core:.1} ns; one text value of that length {alloc_text:.1} ns");
    println!("throughput (M ops/s): format rt {:.2}, chrono {:.2}; parse dict {:.2}, parse micros {:.2}, chrono {:.2}",
        1e3 / fmt_rt, 1e3 / fmt_chrono, 1e3 / parse_rt, 1e3 / parse_micros, 1e3 / parse_chrono);
}
