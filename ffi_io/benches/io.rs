//! ffi_io benchmark: each operation through the exported rt_* function, the
//! same operation done directly in Rust (std / ring / walkdir / glob), and
//! the usual command-line tool run as a process, side by side in one run.
//!
//! `cargo bench -p ffi_io` (release). Inputs live in a temp dir, created once
//! per run: a 100 MB file, a 256 MB file and a tree of 100,000 files.
//! Env `RT_BENCH_RUNS` (default 7) sets the runs per measurement; the table
//! shows the best run (other work on a shared machine only adds time).

use ffi_io::{dir, file, glob as rtglob};
use ffi_sdk::bench::{self, sh};
use ffi_sdk::testing::{bytes, ok, text, NIL};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The best of the runs: on a shared machine other work only ever adds time.
fn best(v: &[Duration]) -> Duration {
    v.iter().copied().min().unwrap_or_default()
}

fn tv(t: libc::timeval) -> Duration {
    Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000)
}

/// CPU time (user + system) of this process (collector marker threads included), and of waited-for children.
fn cpu() -> (Duration, Duration) {
    // SAFETY: `rusage` is plain integers and timevals, so all-zero is a valid value; both
    // getrusage calls get a valid, writable `rusage` on this stack and only fill it.
    unsafe {
        let mut me: libc::rusage = std::mem::zeroed();
        let mut ch: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut me);
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ch);
        (tv(me.ru_utime) + tv(me.ru_stime), tv(ch.ru_utime) + tv(ch.ru_stime))
    }
}

/// Wall and CPU time of one call (CPU: this process plus the children it waited for).
fn time(f: &mut impl FnMut()) -> (Duration, Duration) {
    let (m0, c0) = cpu();
    let s = Instant::now();
    f();
    let wall = s.elapsed();
    let (m1, c1) = cpu();
    (wall, (m1 - m0) + (c1 - c0))
}

/// Runs the three contenders `runs` times, interleaved; returns the best
/// wall times and the best CPU times.
fn measure(runs: usize, mut w: impl FnMut(), mut d: impl FnMut(), mut t: impl FnMut()) -> [[Duration; 3]; 2] {
    let mut r: [Vec<(Duration, Duration)>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    // One warm-up round (page cache, allocator, collector heap).
    w();
    d();
    t();
    for _ in 0..runs {
        r[0].push(time(&mut w));
        r[1].push(time(&mut d));
        r[2].push(time(&mut t));
    }
    let wall = |i: usize| best(&r[i].iter().map(|x| x.0).collect::<Vec<_>>());
    let cpu = |i: usize| best(&r[i].iter().map(|x| x.1).collect::<Vec<_>>());
    [[wall(0), wall(1), wall(2)], [cpu(0), cpu(1), cpu(2)]]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

struct Row {
    op: String,
    tool: String,
    t: [[Duration; 3]; 2],
}

fn make_tree(root: &Path, top: usize, mid: usize, files: usize) -> usize {
    let mut n = 0;
    for i in 0..top {
        for j in 0..mid {
            let d = root.join(format!("d{i:03}/e{j:02}"));
            fs::create_dir_all(&d).unwrap();
            for k in 0..files {
                let ext = if k % 4 == 0 { "txt" } else { "rs" };
                fs::File::create(d.join(format!("f{k:03}.{ext}"))).unwrap();
                n += 1;
            }
        }
    }
    n
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let runs: usize = std::env::var("RT_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = fs::canonicalize(tmp.path()).unwrap();
    let mut rows = Vec::new();

    // ---- 100 MB read / write ----
    let data: Vec<u8> = (0..100usize << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 & 0x7f).collect();
    let f100 = root.join("f100");
    fs::write(&f100, &data).unwrap();
    let p100 = f100.to_str().unwrap().to_string();
    let t = measure(
        runs,
        || assert_eq!(ok(file::rt_file_read_bytes(text(&p100))).as_bytes().unwrap().len(), 100 << 20),
        || assert_eq!(fs::read(&f100).unwrap().len(), 100 << 20),
        || sh(&format!("cat {p100} > /dev/null")),
    );
    rows.push(Row { op: "read 100 MB (bytes)".into(), tool: "cat > /dev/null".into(), t });
    // Like for like with warm memory: direct Rust into a buffer reused across runs.
    let mut reused: Vec<u8> = Vec::with_capacity(101 << 20);
    let t = measure(
        runs,
        || assert_eq!(ok(file::rt_file_read_bytes(text(&p100))).as_bytes().unwrap().len(), 100 << 20),
        || {
            reused.clear();
            fs::File::open(&f100).unwrap().read_to_end(&mut reused).unwrap();
            assert_eq!(reused.len(), 100 << 20);
        },
        || sh(&format!("cat {p100} > /dev/null")),
    );
    rows.push(Row { op: "read 100 MB (bytes), direct into a reused Vec".into(), tool: "cat > /dev/null".into(), t });
    // What src/blob.rs avoids: fs::read, then a copy into a new value.
    let t = measure(
        runs,
        || assert_eq!(ffi_sdk::Value::bytes(&fs::read(&f100).unwrap()).as_bytes().unwrap().len(), 100 << 20),
        || assert_eq!(fs::read(&f100).unwrap().len(), 100 << 20),
        || sh(&format!("cat {p100} > /dev/null")),
    );
    rows.push(Row { op: "(reference) fs::read + copy into a value".into(), tool: "cat > /dev/null".into(), t });
    let t = measure(
        runs,
        || assert_eq!(ok(file::rt_file_read_text(text(&p100))).as_text().unwrap().len(), 100 << 20),
        || assert_eq!(fs::read_to_string(&f100).unwrap().len(), 100 << 20),
        || sh(&format!("cat {p100} > /dev/null")),
    );
    rows.push(Row { op: "read 100 MB (text, UTF-8 checked)".into(), tool: "cat > /dev/null".into(), t });
    let out = root.join("out100");
    let pout = out.to_str().unwrap().to_string();
    let v = bytes(&data);
    let t = measure(
        runs,
        || {
            ok(file::rt_file_write_bytes(text(&pout), v));
        },
        || fs::write(&out, &data).unwrap(),
        || sh(&format!("cat {p100} > {pout}")),
    );
    rows.push(Row { op: "write 100 MB".into(), tool: "cat src > dst".into(), t });
    drop(data);

    // ---- 256 MB SHA-256 ----
    let f256 = root.join("f256");
    {
        let chunk: Vec<u8> = (0..1usize << 20).map(|i| (i * 7 + (i >> 11)) as u8).collect();
        let mut f = fs::File::create(&f256).unwrap();
        for _ in 0..256 {
            std::io::Write::write_all(&mut f, &chunk).unwrap();
        }
    }
    let p256 = f256.to_str().unwrap().to_string();
    let direct_hash = || {
        let mut f = fs::File::open(&f256).unwrap();
        let mut h = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; file::HASH_BUF];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.finish()
    };
    let want: String = direct_hash().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(ok(file::rt_file_hash_sha256(text(&p256))).as_text().unwrap(), want);
    let t = measure(
        runs,
        || {
            ok(file::rt_file_hash_sha256(text(&p256)));
        },
        || {
            direct_hash();
        },
        || sh(&format!("sha256sum {p256} > /dev/null")),
    );
    rows.push(Row { op: "SHA-256 of 256 MB".into(), tool: "sha256sum".into(), t });
    fs::remove_file(&f256).unwrap();

    // ---- 100k-file tree: walk and glob ----
    let tree = root.join("tree");
    let s = Instant::now();
    let n = make_tree(&tree, 100, 10, 100);
    eprintln!("created {n} files in {:.1} s", s.elapsed().as_secs_f64());
    let ptree = tree.to_str().unwrap().to_string();
    let walk_direct = || {
        let v: Vec<PathBuf> = walkdir::WalkDir::new(&tree)
            .min_depth(1)
            .sort_by_file_name()
            .into_iter()
            .map(|e| e.unwrap().into_path())
            .collect();
        v
    };
    let wn = ok(dir::rt_dir_walk(text(&ptree), NIL)).len();
    assert_eq!(wn, walk_direct().len());
    assert_eq!(wn, n + 100 + 1000);
    let t = measure(
        runs,
        || assert_eq!(ok(dir::rt_dir_walk(text(&ptree), NIL)).len(), wn),
        || assert_eq!(walk_direct().len(), wn),
        || sh(&format!("find {ptree} -mindepth 1 > /dev/null")),
    );
    rows.push(Row { op: format!("walk tree ({wn} entries)"), tool: "find".into(), t });
    let pat = format!("{ptree}/**/*.txt");
    let glob_direct = || glob::glob(&pat).unwrap().map(|p| p.unwrap()).collect::<Vec<PathBuf>>();
    let gn = glob_direct().len();
    assert_eq!(gn, n / 4);
    let t = measure(
        runs,
        || assert_eq!(ok(rtglob::rt_glob(text(&pat), NIL)).len(), gn),
        || assert_eq!(glob_direct().len(), gn),
        || sh(&format!("find {ptree} -name '*.txt' > /dev/null")),
    );
    rows.push(Row { op: format!("glob **/*.txt ({gn} matches)"), tool: "find -name".into(), t });

    for (k, title) in ["wall time", "CPU time (user + system; the tool's includes its process start)"].iter().enumerate() {
        println!("\n{title}\n");
        bench::table_header(&["operation", "rt_* wrapper", "direct Rust", "tool", "tool (process)", "wrapper / direct", "tool / direct"]);
        for r in &rows {
            let [w, d, t] = r.t[k];
            println!(
                "| {} | {} | {} | `{}` | {} | {:.3} | {:.2} |",
                r.op,
                ms(w),
                ms(d),
                r.tool,
                ms(t),
                w.as_secs_f64() / d.as_secs_f64(),
                t.as_secs_f64() / d.as_secs_f64()
            );
        }
    }
    println!("\n(best of {runs} interleaved runs each, after one warm-up; files in the page cache)");
}
