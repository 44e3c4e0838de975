//! `rt demo`: real calls through the C ABI in every domain whose library
//! loaded, one line per call, ending with capability denials.
//!
//! The steps are data: function, JSON arguments, what it shows, and what is
//! expected. A step whose function is not in the registry is skipped. In the
//! arguments, a string starting with `$tmp` has the demo's temp directory
//! substituted, `"$prev"` is the previous step's result and `"$name"` the
//! result a step saved under `name`; inside a longer string `${name}` is
//! replaced by that result's text (an int as digits).

use crate::convert::{self, short};
use crate::runtime::{Pinned, RtValue, Runtime};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::process::ExitCode;

enum Expect {
    /// Any non-Error result.
    Ok,
    /// A result equal to this JSON (the convert module's mapping).
    Equals(&'static str),
    /// An Error with this name.
    Error(&'static str),
}

struct Step {
    /// The heading the step is printed under.
    section: &'static str,
    func: &'static str,
    args: &'static str,
    what: &'static str,
    save: Option<&'static str>,
    /// Other functions that must be loaded for the step to make sense.
    needs: &'static [&'static str],
    expect: Expect,
    /// An Error here skips the rest of the section (e.g. no Vulkan device) instead of failing.
    gate: bool,
    /// When non-empty and the result is a dict: only these keys are shown and compared.
    pick: &'static [&'static str],
}

const fn step(section: &'static str, func: &'static str, args: &'static str, what: &'static str) -> Step {
    Step { section, func, args, what, save: None, needs: &[], expect: Expect::Ok, gate: false, pick: &[] }
}

impl Step {
    const fn save(mut self, name: &'static str) -> Step {
        self.save = Some(name);
        self
    }
    const fn equals(mut self, json: &'static str) -> Step {
        self.expect = Expect::Equals(json);
        self
    }
    const fn error(mut self, name: &'static str) -> Step {
        self.expect = Expect::Error(name);
        self
    }
    const fn needs(mut self, fns: &'static [&'static str]) -> Step {
        self.needs = fns;
        self
    }
    const fn gate(mut self) -> Step {
        self.gate = true;
        self
    }
    const fn pick(mut self, keys: &'static [&'static str]) -> Step {
        self.pick = keys;
        self
    }
}

const STEPS: &[Step] = &[
    // core
    step("core", "rt_gc_stats", "[]", "collector statistics (one Boehm heap for every library)"),
    step("core", "rt_gc_collect", "[]", "a full collection"),
    step("core", "rt_registry_duplicates", "[]", "no rt_* symbol defined by two libraries").equals("[]"),
    step("core", "rt_cap_check", r#"["sys.info", null]"#, "the policy starts allow-all").equals("true"),
    // system
    step("system", "rt_hostname", "[]", "host name"),
    step("system", "rt_os_name", "[]", "operating system"),
    step("system", "rt_arch_name", "[]", "architecture"),
    step("system", "rt_cpu_count", "[]", "logical CPUs this process may use"),
    step("system", "rt_cpu_physical_count", "[]", "physical cores"),
    step("system", "rt_memory_total", "[]", "RAM in bytes"),
    step("system", "rt_memory_available", "[]", "RAM available in bytes"),
    // io
    step("io", "rt_file_write_text", r#"["$tmp/hello.txt", "hello from simple-rt\n"]"#, "write a file in a temp dir"),
    step("io", "rt_file_read_text", r#"["$tmp/hello.txt"]"#, "read it back").equals(r#""hello from simple-rt\n""#),
    step("io", "rt_dir_list", r#"["$tmp"]"#, "list the temp dir"),
    // process
    step("process", "rt_process_run", r#"["echo", ["hello", "from a child"]]"#, "run echo, capture its output"),
    step("process", "rt_getpid", "[]", "this process's id"),
    // time
    step("time", "rt_time_now_unix_micros", "[]", "wall clock, microseconds since 1970").save("now"),
    step("time", "rt_time_format_iso8601", r#"["$now"]"#, "the same instant as RFC 3339"),
    step("time", "rt_timestamp_get_year", r#"["$now"]"#, "its year (UTC)"),
    // crypto
    step("crypto", "rt_sha256_hash", r#"["abc"]"#, "SHA-256 (FIPS 180-2 test vector)")
        .equals(r#""ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad""#),
    // archive
    step("archive", "rt_gzip_compress", r#"["hello hello hello hello hello hello hello hello"]"#, "gzip 47 bytes").save("gz"),
    step("archive", "rt_gzip_decompress", r#"["$gz"]"#, "and back (round trip checked)").equals(
        r#"{"$bytes":"68656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f2068656c6c6f"}"#,
    ),
    // codegen
    step("codegen", "rt_target_triple", "[]", "the JIT's target"),
    step("codegen", "rt_cranelift_init", "[null]", "a JIT module (a handle)").save("cg"),
    step(
        "codegen",
        "rt_cranelift_compile_fn",
        r#"["$cg", "function %add(i64, i64) -> i64 {\nblock0(v0: i64, v1: i64):\n    v2 = iadd v0, v1\n    return v2\n}"]"#,
        "compile CLIF text",
    ),
    step("codegen", "rt_cranelift_jit_execute", r#"["$cg", "add", [40, 2]]"#, "JIT it and call it").equals("42"),
    // data
    step("data", "rt_regex_new", r#"["[0-9]+"]"#, "compile a regex (a handle)").save("re"),
    step("data", "rt_regex_find", r#"["$re", "order 66 shipped in 3 days"]"#, "first match"),
    step("data", "rt_handle_close", r#"["$re"]"#, "close the handle").equals("true").needs(&["rt_regex_new"]),
    step("data", "rt_intern_string", r#"["simple"]"#, "intern a string: a small int symbol").save("sym"),
    step("data", "rt_intern_resolve", r#"["$sym"]"#, "and resolve it").equals(r#""simple""#),
    // serde
    step("serde", "rt_json_parse", r#"["{\"name\":\"simple\",\"tags\":[1,2.5,null,true]}"]"#, "JSON text to values").save("doc"),
    step("serde", "rt_json_stringify", r#"["$doc"]"#, "and back to JSON text"),
    // capability denials (the policy only narrows: these come last)
    step("net", "rt_io_tcp_bind", r#"["127.0.0.1:0"]"#, "listen on a free loopback port (a Socket handle)").save("srv"),
    step("net", "rt_io_tcp_local_addr", r#"["$srv"]"#, "its address").save("addr"),
    step("net", "rt_io_tcp_connect", r#"["$addr"]"#, "connect to it").save("cli"),
    step("net", "rt_io_tcp_write_text", r#"["$cli", "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n"]"#, "send an HTTP request"),
    step("net", "rt_io_tcp_accept_timeout", r#"["$srv", 2000]"#, "accept it on the server side").save("conn"),
    step("net", "rt_io_tcp_read_line", r#"["$conn"]"#, "the server reads the request line").equals(r#""GET /hello HTTP/1.1""#),
    step("net", "rt_io_tcp_write_text", r#"["$conn", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"]"#, "and answers"),
    step("net", "rt_io_tcp_read_line", r#"["$cli"]"#, "the client reads the status line").equals(r#""HTTP/1.1 200 OK""#),
    step("net", "rt_http_get", r#"["http://127.0.0.1:1/", {"timeout_ms": 2000}]"#, "HTTP to a closed loopback port: an Error value").error("Io"),
    step("net", "rt_http_url_encode", r#"["a b&c"]"#, "URL encoding").equals(r#""a%20b%26c""#),
    // The library's own HTTP server on loopback, served on a thread (libffi_concurrent), and a GET.
    step("http server", "rt_http_server_create", r#"[0, {"host": "127.0.0.1"}]"#, "an HTTP server on a free loopback port")
        .save("hs")
        .gate(),
    step("http server", "rt_http_server_port", r#"["$hs"]"#, "the port it chose").save("hport"),
    step("http server", "rt_http_server_route", r#"["$hs", "GET", "/hello/*", "rt_http_request_path"]"#, "GET /hello/* answered by a registered function: the request's path")
        .equals("true"),
    step("http server", "rt_thread_spawn", r#"["rt_http_server_start", "$hs"]"#, "serve it on a thread of its own (a Thread handle)")
        .save("hth")
        .needs(&["rt_http_server_start", "rt_http_get"]),
    step("http server", "rt_http_get", r#"["http://127.0.0.1:${hport}/hello/world", {"text": true, "timeout_ms": 5000}]"#, "GET from it: status and body")
        .pick(&["status", "body"])
        .equals(r#"{"status": 200, "body": "/hello/world"}"#)
        .needs(&["rt_thread_spawn"]),
    step("http server", "rt_http_server_stop", r#"["$hs"]"#, "stop serving").equals("true"),
    step("http server", "rt_thread_join", r#"["$hth", {"timeout_ms": 5000}]"#, "rt_http_server_start returned").equals("true"),
    step("http server", "rt_http_server_destroy", r#"["$hs"]"#, "close the server").equals("null"),
    step("watch", "rt_watch_path", r#"["$tmp", {"debounce_ms": 50}]"#, "watch the temp dir (a Watch handle)").save("w"),
    step("watch", "rt_file_write_text", r#"["$tmp/watched.txt", "x"]"#, "create a file in it").needs(&["rt_watch_path"]),
    step("watch", "rt_watch_poll", r#"["$w", {"timeout_ms": 2000}]"#, "the events, coalesced"),

    // Vulkan compute (libffi_vulkan, built with --features vulkan): c = a + b on 4 floats.
    step("vulkan", "rt_vk_instance_create", "[]", "a Vulkan instance (no loader or device: the section is skipped)").save("vk").gate(),
    step("vulkan", "rt_vk_device_create", r#"["$vk"]"#, "a device on the first physical device (lavapipe without a GPU)").save("vkdev").gate(),
    step("vulkan", "rt_vk_queue_get", r#"["$vkdev"]"#, "its first queue").save("vkq"),
    step("vulkan", "rt_vk_buffer_create", r#"["$vkdev", 16]"#, "buffer a, 4 floats").save("vka"),
    step("vulkan", "rt_vk_memory_allocate", r#"["$vkdev", "$vka"]"#, "host-visible memory for it").save("vkma"),
    step("vulkan", "rt_vk_memory_write", r#"["$vkma", {"$bytes": "0000803f000000400000404000008040"}]"#, "a = [1, 2, 3, 4]"),
    step("vulkan", "rt_vk_buffer_create", r#"["$vkdev", 16]"#, "buffer b").save("vkb"),
    step("vulkan", "rt_vk_memory_allocate", r#"["$vkdev", "$vkb"]"#, "its memory").save("vkmb"),
    step("vulkan", "rt_vk_memory_write", r#"["$vkmb", {"$bytes": "000020410000a0410000f04100002042"}]"#, "b = [10, 20, 30, 40]"),
    step("vulkan", "rt_vk_buffer_create", r#"["$vkdev", 16]"#, "buffer c").save("vkc"),
    step("vulkan", "rt_vk_memory_allocate", r#"["$vkdev", "$vkc", {"location": "gpu_to_cpu"}]"#, "read-back memory").save("vkmc"),
    step(
        "vulkan",
        "rt_vk_shader_load",
        concat!(r#"["$vkdev", {"$bytes": ""#, include_str!("../../ffi_vulkan/demo/add4.spv.hex"), r#""}]"#),
        "c = a + b (SPIR-V of ffi_vulkan/demo/add4.comp; bindings by reflection)",
    )
    .save("vksh"),
    step("vulkan", "rt_vk_pipeline_compute", r#"["$vksh"]"#, "a compute pipeline, layout from the reflection").save("vkp"),
    step("vulkan", "rt_vk_command_pool", r#"["$vkdev"]"#, "a command pool").save("vkpool"),
    step("vulkan", "rt_vk_command_buffer", r#"["$vkpool"]"#, "a command buffer").save("vkcb"),
    step("vulkan", "rt_vk_command_begin", r#"["$vkcb"]"#, "record:"),
    step("vulkan", "rt_vk_dispatch", r#"["$vkcb", "$vkp", ["$vka", "$vkb", "$vkc"], 1]"#, "one workgroup of 4"),
    step("vulkan", "rt_vk_command_end", r#"["$vkcb"]"#, "done recording"),
    step("vulkan", "rt_vk_submit", r#"["$vkq", "$vkcb"]"#, "submit: a fence").save("vkf"),
    step("vulkan", "rt_vk_fence_wait", r#"["$vkf", 10000]"#, "wait for it").equals("true"),
    step("vulkan", "rt_vk_memory_map", r#"["$vkmc"]"#, "c = [11, 22, 33, 44], read back")
        .equals(r#"{"$bytes": "000030410000b0410000044200003042"}"#),

    step("capability denial", "rt_cap_restrict", r#"[{"fs.read": ["$tmp"]}]"#, "narrow fs.read to the temp dir")
        .equals("null")
        .needs(&["rt_file_read_text"]),
    step("capability denial", "rt_file_read_text", r#"["$tmp/hello.txt"]"#, "inside the scope: still allowed")
        .equals(r#""hello from simple-rt\n""#),
    step("capability denial", "rt_file_read_text", r#"["/etc/hostname"]"#, "outside the scope: denied").error("CapabilityDenied"),
    step("capability denial", "rt_cap_restrict", r#"[{"sys.info": false}]"#, "drop sys.info").equals("null").needs(&["rt_hostname"]),
    step("capability denial", "rt_hostname", "[]", "now denied").error("CapabilityDenied"),
    step("capability denial", "rt_cap_check", r#"["sys.info", null]"#, "and reported so").equals("false").needs(&["rt_hostname"]),
];

/// Replaces a leading `$tmp` in every string with the temp directory.
fn with_tmp(j: &Json, tmp: &str) -> Json {
    match j {
        Json::String(s) => match s.strip_prefix("$tmp") {
            Some(rest) => Json::String(format!("{tmp}{rest}")),
            None => j.clone(),
        },
        Json::Array(a) => Json::Array(a.iter().map(|x| with_tmp(x, tmp)).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), with_tmp(v, tmp))).collect()),
        other => other.clone(),
    }
}

/// The names of `${name}` inside `s`.
fn inner_refs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        let Some(j) = rest[i + 2..].find('}') else { break };
        out.push(&rest[i + 2..i + 2 + j]);
        rest = &rest[i + 3 + j..];
    }
    out
}

/// Replaces every `${name}` inside the strings of `j` with `text(name)`.
fn interpolate(j: &Json, text: &dyn Fn(&str) -> Option<String>) -> Json {
    match j {
        Json::String(s) if s.contains("${") => {
            let mut out = s.clone();
            for n in inner_refs(s) {
                if let Some(t) = text(n) {
                    out = out.replace(&format!("${{{n}}}"), &t);
                }
            }
            Json::String(out)
        }
        Json::Array(a) => Json::Array(a.iter().map(|x| interpolate(x, text)).collect()),
        Json::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), interpolate(v, text))).collect()),
        other => other.clone(),
    }
}

/// `$name` and `${name}` references in the arguments.
fn refs(j: &Json, out: &mut Vec<String>) {
    match j {
        Json::String(s) if s.contains("${") => out.extend(inner_refs(s).into_iter().map(str::to_string)),
        Json::String(s) if s.starts_with('$') && s.len() > 1 && !s.starts_with("$tmp") => out.push(s[1..].to_string()),
        Json::Array(a) => a.iter().for_each(|x| refs(x, out)),
        Json::Object(m) => m.values().for_each(|x| refs(x, out)),
        _ => {}
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn make_temp() -> Result<TempDir, String> {
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let p = base.join(format!("rt-demo-{}-{nanos}", std::process::id()));
    std::fs::create_dir(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
    let c = p.canonicalize().map_err(|e| format!("cannot resolve {}: {e}", p.display()))?;
    Ok(TempDir(c))
}

pub fn run(rt: &Runtime) -> ExitCode {
    let tmp = match make_temp() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rt demo: {e}");
            return ExitCode::from(1);
        }
    };
    let tmp_s = tmp.0.to_string_lossy().into_owned();
    let hosts = rt.registry.host_fns().count();
    println!("simple-rt demo: every call below goes through the C ABI (dlopen + rt_registry_lookup)");
    println!(
        "  libraries: {} loaded from {} (ABI {}.{})",
        rt.loaded_domains().join(", "),
        rt.dir.display(),
        rt.abi_version >> 16,
        rt.abi_version & 0xFFFF
    );
    if !rt.absent.is_empty() {
        println!("  not built: {}", rt.absent.join(", "));
    }
    println!(
        "  registry: {} functions ({} domain functions, {} host-surface) in {} domains",
        rt.registry.entries.len(),
        rt.registry.entries.len() - hosts,
        hosts,
        rt.registry.domains().len()
    );
    println!("  temp dir: {tmp_s}");

    let mut saved: HashMap<&str, Pinned> = HashMap::new();
    let mut prev: Option<Pinned> = None;
    let (mut ran, mut skipped, mut failed) = (0usize, 0usize, 0usize);
    let mut absent: Vec<&str> = Vec::new();
    let mut section_shown = "";
    let mut gated_off: Vec<&str> = Vec::new();
    for s in STEPS {
        if gated_off.contains(&s.section) {
            skipped += 1;
            continue;
        }
        let Some(entry) = rt.registry.get(s.func) else {
            skipped += 1;
            absent.push(s.func);
            continue;
        };
        if let Some(n) = s.needs.iter().find(|n| rt.registry.get(n).is_none()) {
            skipped += 1;
            absent.push(n);
            continue;
        }
        let args_json: Json = match serde_json::from_str(s.args) {
            Ok(Json::Array(a)) => with_tmp(&Json::Array(a), &tmp_s),
            _ => {
                println!("  FAIL {}: the demo's argument list is not a JSON array: {}", s.func, s.args);
                failed += 1;
                continue;
            }
        };
        let mut want = Vec::new();
        refs(&args_json, &mut want);
        let missing: Vec<&String> =
            want.iter().filter(|n| !(saved.contains_key(n.as_str()) || (n.as_str() == "prev" && prev.is_some()))).collect();
        if !missing.is_empty() {
            println!("  skip {} (needs the result of an earlier step: ${})", s.func, missing[0]);
            skipped += 1;
            continue;
        }
        if s.section != section_shown {
            println!("\n[{}]", s.section);
            section_shown = s.section;
        }
        let text_of = |name: &str| -> Option<String> {
            let v = if name == "prev" { prev.as_ref()?.v } else { saved.get(name)?.v };
            Some(match convert::to_json(rt, v) {
                Json::String(t) => t,
                other => other.to_string(),
            })
        };
        let args_json = interpolate(&args_json, &text_of);
        let items = args_json.as_array().cloned().unwrap_or_default();
        let shown_args = items.iter().map(|a| short(a, 60)).collect::<Vec<_>>().join(", ");
        let call_text = format!("{}({shown_args})", s.func);
        if items.len() > entry.arity {
            println!("  FAIL {call_text}: {} takes {} argument(s) ({})", s.func, entry.arity, entry.signature);
            failed += 1;
            continue;
        }
        let subst = |name: &str| -> Option<RtValue> {
            let key = name.strip_prefix('$')?;
            if key == "prev" {
                return prev.as_ref().map(|p| p.v);
            }
            saved.get(key).map(|p| p.v)
        };
        let mut args: Vec<Pinned> = Vec::new();
        let mut bad = None;
        for a in &items {
            match convert::from_json(rt, a, &subst) {
                Ok(v) => args.push(Pinned::new(rt, v)),
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = bad {
            println!("  FAIL {call_text}: {e}");
            failed += 1;
            continue;
        }
        let nil = rt.abi.special("nil").unwrap_or(3);
        let mut raw: Vec<RtValue> = args.iter().map(|p| p.v).collect();
        raw.resize(entry.arity, nil);
        ran += 1;
        let r = match rt.call(s.func, &raw) {
            Ok(r) => Pinned::new(rt, r),
            Err(e) => {
                println!("  FAIL {call_text}: {e}");
                failed += 1;
                continue;
            }
        };
        drop(args);
        let err = rt.error_of(r.v);
        if let (true, Some(e)) = (s.gate, &err) {
            println!("  skip {call_text} -> error {}: the rest of [{}] is skipped", e.one_line(), s.section);
            gated_off.push(s.section);
            skipped += 1;
            continue;
        }
        let got = || match convert::to_json(rt, r.v) {
            Json::Object(m) if !s.pick.is_empty() => {
                Json::Object(s.pick.iter().filter_map(|k| m.get(*k).map(|v| (k.to_string(), v.clone()))).collect())
            }
            other => other,
        };
        let (ok, shown) = match (&s.expect, &err) {
            (Expect::Error(name), Some(e)) if e.name == *name => (true, format!("error {} ({}): {}", e.name, e.code, e.message)),
            (Expect::Error(name), Some(e)) => (false, format!("error {} (expected {name}): {}", e.name, e.message)),
            (Expect::Error(name), None) => {
                (false, format!("{} (expected error {name})", short(&got(), 100)))
            }
            (_, Some(e)) => (false, format!("error {}", e.one_line())),
            (Expect::Ok, None) => (true, short(&got(), 100)),
            (Expect::Equals(want), None) => {
                let got = got();
                match serde_json::from_str::<Json>(want) {
                    Ok(w) if w == got => (true, short(&got, 100)),
                    Ok(_) => (false, format!("{} (expected {want})", short(&got, 100))),
                    Err(e) => (false, format!("bad expectation in the demo ({e})")),
                }
            }
        };
        if ok {
            println!("  ok   {call_text} -> {shown}   # {}", s.what);
        } else {
            println!("  FAIL {call_text} -> {shown}   # {}", s.what);
            failed += 1;
        }
        if err.is_none() {
            if let Some(name) = s.save {
                saved.insert(name, Pinned::new(rt, r.v));
            }
            prev = Some(r);
        }
    }
    absent.sort_unstable();
    absent.dedup();
    println!("\n{ran} calls, {skipped} steps skipped, {failed} failed");
    if !absent.is_empty() {
        println!("skipped: not in the registry of the loaded libraries: {}", absent.join(", "));
    }
    drop(prev);
    drop(saved);
    if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
