//! Loopback HTTP benchmarks, measured side by side in one run:
//! 1,000 sequential GETs of a small body (rt_http_get with keep-alive, one
//! `curl` process given 1,000 URLs, Python urllib), and a 1 GiB download
//! (rt_http_download vs `curl -o`, RT_BENCH_ROUNDS rounds, default 3, in
//! alternating order), with this process's peak RSS.
//! Run: `cargo bench -p ffi_net --bench net`.

use ffi_net::http::{rt_http_download, rt_http_get};
use ffi_sdk::testing::{ok, text, NIL};
use std::process::Command;
use std::time::Instant;

const N: usize = 1000;
const GIB: u64 = 1 << 30;

fn server() -> u16 {
    let s = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = s.server_addr().to_ip().unwrap().port();
    let s = std::sync::Arc::new(s);
    for _ in 0..4 {
        let s = s.clone();
        std::thread::spawn(move || {
            for rq in s.incoming_requests() {
                if rq.url() == "/big" {
                    let body = std::io::Read::take(std::io::repeat(b'x'), GIB);
                    let _ = rq.respond(tiny_http::Response::new(200.into(), vec![], body, Some(GIB as usize), None));
                } else {
                    let _ = rq.respond(tiny_http::Response::from_string("hello, world\n"));
                }
            }
        });
    }
    port
}

fn rss_hwm_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user + system) used so far by this process and by its waited-for children.
fn cpu_s() -> (f64, f64) {
    let get = |who| {
        // SAFETY: getrusage writes one `rusage` into the zeroed local it is given, nothing else.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `u` is a valid, writable rusage for the whole call.
        unsafe { libc::getrusage(who, &mut u) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    (get(libc::RUSAGE_SELF), get(libc::RUSAGE_CHILDREN))
}

fn main() {
    let port = server();
    let small = format!("http://127.0.0.1:{port}/small");
    ok(rt_http_get(text(&small), NIL));

    let t = Instant::now();
    for _ in 0..N {
        let r = ok(rt_http_get(text(&small), NIL));
        assert_eq!(r.get("status").as_int(), Some(200));
    }
    let ours = t.elapsed().as_secs_f64();

    let mut args = vec!["-s".to_string()];
    for _ in 0..N {
        args.extend(["-o".to_string(), "/dev/null".to_string(), small.clone()]);
    }
    let t = Instant::now();
    let st = Command::new("curl").args(&args).stdout(std::process::Stdio::null()).status();
    let curl = t.elapsed().as_secs_f64();
    let curl_ok = st.map(|s| s.success()).unwrap_or(false);

    let py = format!(
        "import urllib.request,time\nt=time.perf_counter()\nfor _ in range({N}):\n    urllib.request.urlopen('{small}').read()\nprint(time.perf_counter()-t)"
    );
    let out = Command::new("python3").arg("-c").arg(&py).output();
    let pyt: f64 = out.ok().and_then(|o| String::from_utf8(o.stdout).ok()).and_then(|s| s.trim().parse().ok()).unwrap_or(f64::NAN);

    println!("{N} sequential GETs of 13 bytes on loopback (tiny_http server in this process):");
    println!("  rt_http_get (keep-alive)      {:8.0} req/s", N as f64 / ours);
    if curl_ok {
        println!("  curl, one process, keep-alive {:8.0} req/s   ratio rt/curl {:.2}", N as f64 / curl, curl / ours);
    }
    println!("  python urllib (no keep-alive) {:8.0} req/s   ratio rt/urllib {:.2}", N as f64 / pyt, pyt / ours);

    // The download: rounds alternate which side goes first (page-cache state and the box's load
    // move between runs); the medians are compared.
    let rounds: usize = std::env::var("RT_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3).max(1);
    let d = tempfile::tempdir().unwrap();
    let big = format!("http://127.0.0.1:{port}/big");
    let before = rss_hwm_kib();
    let (mut rt, mut cu) = (Vec::new(), Vec::new());
    let (mut rt_cpu, mut cu_cpu) = (0.0, 0.0);
    let mut curl_ok = true;
    for i in 0..rounds {
        for side in [i % 2, 1 - i % 2] {
            let t = Instant::now();
            let (s0, c0) = cpu_s();
            if side == 0 {
                let r = ok(rt_http_download(text(&big), text(d.path().join("a").to_str().unwrap()), NIL));
                assert_eq!(r.get("bytes").as_int(), Some(GIB as i64));
                rt.push(t.elapsed().as_secs_f64());
                let (s1, c1) = cpu_s();
                rt_cpu += s1 - s0 + c1 - c0;
                let _ = std::fs::remove_file(d.path().join("a"));
            } else {
                let st = Command::new("curl").args(["-s", "-o"]).arg(d.path().join("b")).arg(&big).status();
                curl_ok &= st.map(|s| s.success()).unwrap_or(false);
                cu.push(t.elapsed().as_secs_f64());
                let (s1, c1) = cpu_s();
                cu_cpu += s1 - s0 + c1 - c0;
                let _ = std::fs::remove_file(d.path().join("b"));
            }
        }
    }
    let after = rss_hwm_kib();
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mibs = |v: &[f64]| v.iter().map(|s| format!("{:.0}", 1024.0 / s)).collect::<Vec<_>>().join(" ");
    let (rt_s, cu_s) = (mibs(&rt), mibs(&cu));
    println!("1 GiB download on loopback to a file ({rounds} rounds, alternating order; MiB/s per round, then the median):");
    println!("  rt_http_download  {} -> {:7.0} MiB/s (sha256 and fsync too)", rt_s, 1024.0 / med(&mut rt));
    if curl_ok {
        let (r, c) = (med(&mut rt), med(&mut cu));
        println!("  curl -o           {} -> {:7.0} MiB/s   ratio rt/curl {:.2}", cu_s, 1024.0 / c, c / r);
    }
    println!(
        "  CPU per GiB, server thread included: rt {:.2} s, curl {:.2} s",
        rt_cpu / rounds as f64,
        cu_cpu / rounds as f64
    );
    println!("  peak RSS of this process: {} MiB before, {} MiB after the downloads", before / 1024, after / 1024);
}
