//! Regex find-all and interning: the exported rt_* functions vs the crates called
//! directly vs Python (re.findall, sys.intern + dict), side by side in one run.
//! `cargo bench -p ffi_data --bench data`.

use ffi_data::intern::{rt_intern_resolve, rt_intern_string};
use ffi_data::regex::{rt_regex_find_all, rt_regex_new};
use ffi_sdk::bench;
use ffi_sdk::testing::{ok, NIL};
use ffi_sdk::Value;
use std::time::Duration;

/// Median seconds per call of `f`, over 9 batches of about 0.2 s each.
fn time<F: FnMut()>(f: F) -> f64 {
    bench::median(Duration::from_millis(200), 100_000, 9, f)
}

/// `python3 -c code <file>` with `input` in that (temp) file; the number it prints.
fn python(code: &str, input: &str) -> Option<f64> {
    let dir = std::env::temp_dir().join(format!("rt-bench-data-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let f = dir.join("input.txt");
    std::fs::write(&f, input).ok()?;
    let out = bench::python(code, &[f.as_os_str()]);
    let _ = std::fs::remove_dir_all(&dir);
    out
}

/// A log-like text: words, numbers, e-mail addresses, some non-ASCII.
fn corpus(bytes: usize) -> String {
    let words = ["GET", "/api/v1/items", "user", "alice@example.org", "200", "1532", "ms", "bob.smith@mail.co.uk", "ERROR", "timeout", "Zürich", "retry=3", "id=98231", "ok"];
    let mut s = String::with_capacity(bytes + 64);
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut i = 0;
    while s.len() < bytes {
        bench::xorshift(&mut x);
        s.push_str(words[(x % words.len() as u64) as usize]);
        i += 1;
        s.push(if i % 12 == 0 { '\n' } else { ' ' });
    }
    s
}

fn main() {
    bench::table_header(&["operation", "rt_* (wrapper)", "crate directly", "python3", "rt / crate", "rt vs python"]);

    // ---------------- regex find-all
    let text = corpus(1 << 20);
    let tv = Value::text(&text);
    for (label, pat, py_pat) in [
        ("regex find_all e-mails (1 MiB, sparse)", r"[\w.+-]+@[\w-]+\.[\w.]+", r"[\w.+-]+@[\w-]+\.[\w.]+"),
        ("regex find_all numbers (1 MiB, dense)", r"\d+", r"\d+"),
    ] {
        let re = ok(rt_regex_new(Value::text(pat).raw(), NIL));
        let direct = regex::Regex::new(pat).unwrap();
        let n_rt = ok(rt_regex_find_all(re.raw(), tv.raw(), NIL)).len();
        let n_direct = direct.find_iter(&text).count();
        assert_eq!(n_rt, n_direct);
        let t_rt = time(|| {
            std::hint::black_box(rt_regex_find_all(re.raw(), tv.raw(), NIL));
        });
        let t_direct = time(|| {
            let v: Vec<String> = direct.find_iter(&text).map(|m| m.as_str().to_owned()).collect();
            std::hint::black_box(v);
        });
        let code = format!(
            "import re,sys,timeit\ns=open(sys.argv[1],encoding='utf-8').read()\nr=re.compile(r'{py_pat}')\n\
             print(sorted(timeit.repeat(lambda: r.findall(s), number=3, repeat=7))[3]/3)"
        );
        let t_py = python(&code, &text);
        report(&format!("{label}, {n_rt} matches"), t_rt, t_direct, t_py, "ms", 1e3);
    }

    // ---------------- interning
    let words: Vec<String> = (0..10_000).map(|i| format!("identifier_{i}_{}", i * 7919 % 10_007)).collect();
    let values: Vec<Value> = words.iter().map(|w| Value::text(w)).collect();
    // `values` are kept alive by pins for the whole run (Rust memory, SPEC §4).
    let _pins: Vec<ffi_sdk::Root> = values.iter().map(|v| ffi_sdk::Root::new(*v)).collect();
    let rodeo = lasso::ThreadedRodeo::<lasso::Spur>::new();
    let mut syms = Vec::new();
    for (w, v) in words.iter().zip(&values) {
        rodeo.get_or_intern(w);
        syms.push(Value::int(ok(rt_intern_string(v.raw())).as_int().unwrap()));
    }
    let keys: Vec<lasso::Spur> = words.iter().map(|w| rodeo.get(w).unwrap()).collect();
    let n = words.len() as f64;
    let t_rt = time(|| {
        for v in &values {
            std::hint::black_box(rt_intern_string(v.raw()));
        }
    }) / n;
    let t_direct = time(|| {
        for w in &words {
            std::hint::black_box(rodeo.get_or_intern(w.as_str()));
        }
    }) / n;
    let code = "import sys,timeit\nw=[l for l in open(sys.argv[1]).read().split()]\nd={}\n\
                def f():\n    for x in w:\n        s=sys.intern(x)\n        d.setdefault(s,len(d))\n\
                f()\nprint(sorted(timeit.repeat(f, number=5, repeat=7))[3]/5/len(w))";
    let t_py = python(code, &words.join("\n"));
    report("intern (existing symbol), per call", t_rt, t_direct, t_py, "ns", 1e9);

    let t_rt = time(|| {
        for s in &syms {
            std::hint::black_box(rt_intern_resolve(s.raw()));
        }
    }) / n;
    let t_direct = time(|| {
        for k in &keys {
            std::hint::black_box(rodeo.resolve(k));
        }
    }) / n;
    let code = "import sys,timeit\nw=[sys.intern(l) for l in open(sys.argv[1]).read().split()]\n\
                def f():\n    for i in range(len(w)):\n        x=w[i]\n\
                f()\nprint(sorted(timeit.repeat(f, number=5, repeat=7))[3]/5/len(w))";
    let t_py = python(code, &words.join("\n"));
    report("resolve symbol -> text, per call", t_rt, t_direct, t_py, "ns", 1e9);
}

fn report(label: &str, rt: f64, direct: f64, py: Option<f64>, unit: &str, scale: f64) {
    let py_s = py.map_or("n/a".into(), |p| format!("{:.1} {unit}", p * scale));
    let py_r = py.map_or("n/a".into(), |p| format!("{:.2}x faster", p / rt));
    println!(
        "| {label} | {:.1} {unit} | {:.1} {unit} | {py_s} | {:.2} | {py_r} |",
        rt * scale,
        direct * scale,
        rt / direct
    );
}
