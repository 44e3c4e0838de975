//! What a scoped policy costs (docs/SECURITY.md, "Paths"): the same calls
//! allow-all and then under `fs.read`/`fs.write` scoped to the bench's temp
//! dir (the policy can only narrow, so allow-all is measured first), each
//! side by side with the operation done directly in Rust (std / walkdir).
//!
//! `cargo bench -p ffi_io --bench scoped`. Per-call figures are medians of
//! batches (ffi_sdk::bench::median).

use ffi_io::{dir, file};
use ffi_sdk::bench::median;
use ffi_sdk::testing::{bytes, ok, restrict, text, NIL};
use std::fs;
use std::path::Path;
use std::time::Duration;

const BATCH: Duration = Duration::from_millis(20);

struct Case {
    name: &'static str,
    direct: Box<dyn FnMut()>,
    rt: Box<dyn FnMut()>,
}

fn cases(root: &Path) -> Vec<Case> {
    let small = root.join("d/a/b/c/small.bin");
    let out = root.join("d/a/b/c/out.bin");
    let tree = root.join("tree");
    let (s1, s2, o1, o2, t1, t2) = (small.clone(), small.clone(), out.clone(), out.clone(), tree.clone(), tree.clone());
    let data = vec![7u8; 4096];
    let d2 = data.clone();
    vec![
        Case {
            name: "read 4 KiB file",
            direct: Box::new(move || assert_eq!(fs::read(&s1).unwrap().len(), 4096)),
            rt: Box::new(move || assert_eq!(ok(file::rt_file_read_bytes(text(s2.to_str().unwrap()))).as_bytes().map_or(0, |b| b.len()), 4096)),
        },
        Case {
            name: "write 4 KiB file",
            direct: Box::new(move || fs::write(&o1, &data).unwrap()),
            rt: Box::new(move || {
                ok(file::rt_file_write_bytes(text(o2.to_str().unwrap()), bytes(&d2)));
            }),
        },
        Case {
            name: "walk 10,000 entries",
            direct: Box::new(move || {
                let n = walkdir::WalkDir::new(&t1).min_depth(1).sort_by_file_name().into_iter().count();
                assert_eq!(n, 10_100);
            }),
            rt: Box::new(move || assert_eq!(ok(dir::rt_dir_walk(text(t2.to_str().unwrap()), NIL)).len(), 10_100)),
        },
    ]
}

fn main() {
    let g = tempfile::tempdir().unwrap();
    let root = g.path().canonicalize().unwrap();
    fs::create_dir_all(root.join("d/a/b/c")).unwrap();
    fs::write(root.join("d/a/b/c/small.bin"), vec![1u8; 4096]).unwrap();
    for i in 0..100 {
        let sub = root.join(format!("tree/d{i:03}"));
        fs::create_dir_all(&sub).unwrap();
        for j in 0..100 {
            fs::write(sub.join(format!("f{j:03}")), "x").unwrap();
        }
    }
    let mut rows = Vec::new();
    for mut c in cases(&root) {
        let direct = median(BATCH, 100_000, 15, &mut c.direct);
        let rt = median(BATCH, 100_000, 15, &mut c.rt);
        rows.push((c.name, direct, rt, 0.0, 0.0));
    }
    restrict(&format!("fs.read={0};fs.write={0}", root.display()));
    for (i, mut c) in cases(&root).into_iter().enumerate() {
        rows[i].3 = median(BATCH, 100_000, 15, &mut c.direct);
        rows[i].4 = median(BATCH, 100_000, 15, &mut c.rt);
    }
    println!("| operation | direct (std/walkdir) | rt allow-all | rt scoped | direct (2nd run) | scoped / allow-all | scoped / direct |");
    println!("|---|---|---|---|---|---|---|");
    let us = |s: f64| format!("{:.1} us", s * 1e6);
    for (name, d, a, d2, s) in rows {
        println!("| {name} | {} | {} | {} | {} | {:.2}x | {:.2}x |", us(d), us(a), us(s), us(d2), s / a, s / d2.min(d));
    }
    let _ = g;
}
