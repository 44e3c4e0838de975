//! YAML parse: rt_yaml_parse (values on the collector heap) vs PyYAML's C
//! loader (`yaml.load(s, Loader=yaml.CLoader)`, libyaml) in a subprocess, and
//! saphyr-parser's event stream alone (the reader's floor: events pulled and
//! dropped, no values), then the time of inputs that used to be pathological.
//! `cargo bench -p ffi_serde --bench yaml`.
//!
//! Documents are generated (deterministic): block-style records (the shape of
//! configuration and CI files: nested mappings, sequences, quoted and plain
//! scalars, a literal block), the same records in flow style (JSON-like), and
//! a document that repeats anchored mappings through aliases and merge keys.

use ffi_sdk::bench;
use ffi_sdk::testing::{ok, NIL};
use ffi_sdk::Value;
use ffi_serde::yaml::rt_yaml_parse;
use std::path::Path;
use std::time::{Duration, Instant};

fn time<F: FnMut()>(f: F) -> f64 {
    bench::median(Duration::from_millis(150), 10_000, 7, f)
}

fn python_time(file: &Path) -> Option<f64> {
    let code = "import yaml,timeit,sys\ns=open(sys.argv[1],encoding='utf-8').read()\n\
                f=lambda: yaml.load(s, Loader=yaml.CLoader)\nf()\n\
                n=max(1,int(0.15/max(1e-7,timeit.timeit(f, number=1))))\n\
                r=sorted(timeit.repeat(f, number=n, repeat=7))\nprint(r[3]/n)";
    bench::python(code, &[file.as_os_str()])
}

fn block_records(n: usize) -> String {
    let mut s = String::from("# generated records\nrecords:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - id: {}\n    name: \"user {i}\"\n    email: user{i}@example.com\n    active: {}\n    score: {}\n    \
             tags: [alpha, beta, t{}]\n    address:\n      street: {} Main Street\n      city: Springfield\n      \
             zip: '{:05}'\n    notes: |\n      first line of the note {i}\n      second line\n    parent: ~\n",
            1_000_000 + i,
            i % 3 == 0,
            i as f64 / 8.0,
            i % 17,
            i % 900,
            i % 99_999
        ));
    }
    s
}

fn flow_records(n: usize) -> String {
    let mut s = String::from("{\"records\": [\n");
    for i in 0..n {
        if i > 0 {
            s.push_str(",\n");
        }
        s.push_str(&format!(
            "  {{\"id\": {}, \"name\": \"user {i}\", \"email\": \"user{i}@example.com\", \"active\": {}, \"score\": {}, \
             \"tags\": [\"alpha\", \"beta\", \"t{}\"], \"address\": {{\"street\": \"{} Main Street\", \"city\": \"Springfield\"}}, \"parent\": null}}",
            1_000_000 + i,
            i % 3 == 0,
            i as f64 / 8.0,
            i % 17,
            i % 900
        ));
    }
    s.push_str("\n]}\n");
    s
}

fn anchors(n: usize) -> String {
    let mut s = String::from("defaults: &d\n  retries: 3\n  timeout: 2.5\n  labels: [a, b, c]\njobs:\n");
    for i in 0..n {
        s.push_str(&format!("  job{i}:\n    <<: *d\n    name: job {i}\n    needs: [job{}]\n", i.saturating_sub(1)));
    }
    s
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("rt-bench-yaml-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let docs = [
        ("block records", block_records(4000)),
        ("flow records", flow_records(4000)),
        ("anchors + merge keys", anchors(8000)),
    ];
    bench::table_header(&[
        "document",
        "size",
        "rt_yaml_parse (MB/s)",
        "saphyr-parser events only (MB/s)",
        "PyYAML CLoader (MB/s)",
        "rt / PyYAML",
    ]);
    for (name, src) in &docs {
        let path = tmp.join("doc.yaml");
        std::fs::write(&path, src).unwrap();
        let mb = src.len() as f64 / 1e6;
        let t = Value::text(src);
        ok(rt_yaml_parse(t.raw(), NIL));
        let rt = time(|| {
            std::hint::black_box(rt_yaml_parse(t.raw(), NIL));
        });
        let events = time(|| {
            for ev in saphyr_parser::Parser::new_from_str(src) {
                std::hint::black_box(ev.is_ok());
            }
        });
        let py = python_time(&path);
        println!(
            "| {name} | {mb:.2} MB | {:.1} | {:.1} | {} | {} |",
            mb / rt,
            mb / events,
            py.map_or("n/a".into(), |p| format!("{:.1}", mb / p)),
            py.map_or("n/a".into(), |p| format!("{:.1}x", p / rt))
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);

    // Pathological inputs: seconds to the result (a value or an Error), one call each.
    // RT_BENCH_YAML_NESTED=40000,100000 chooses the nested flow mapping sizes.
    let sizes: Vec<usize> = std::env::var("RT_BENCH_YAML_NESTED")
        .unwrap_or_else(|_| "40000,100000".into())
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect();
    println!();
    bench::table_header(&["input", "size", "result", "seconds"]);
    let mut cases: Vec<(String, String)> = sizes
        .iter()
        .map(|&n| (format!("`{{a: ` x {n} + `1` + `}}` x {n}"), format!("{}1{}", "{a: ".repeat(n), "}".repeat(n))))
        .collect();
    cases.push(("`[` x 10,000,000".into(), "[".repeat(10_000_000)));
    cases.push(("`- ` x 5,000,000".into(), "- ".repeat(5_000_000)));
    let mut lol = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    for w in names.windows(2) {
        lol.push_str(&format!("{}: &{} [{}]\n", w[1], w[1], vec![format!("*{}", w[0]); 9].join(", ")));
    }
    cases.push(("billion laughs (9^10)".into(), lol));
    for (name, src) in &cases {
        let t = Value::text(src);
        let t0 = Instant::now();
        let r = Value::from_raw(rt_yaml_parse(t.raw(), NIL));
        let secs = t0.elapsed().as_secs_f64();
        let result = match r.error() {
            Some((c, _)) => format!("Error {c:?}"),
            None => r.describe(),
        };
        println!("| {name} | {} bytes | {result} | {secs:.3} |", src.len());
    }
}
