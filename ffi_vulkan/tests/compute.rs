//! Vulkan compute on whatever device the loader finds: lavapipe (Mesa's CPU
//! device, `mesa-vulkan-drivers`) on CI and developer machines. Each test is
//! skipped, with the reason printed, where no Vulkan device exists; with
//! RT_REQUIRE_VULKAN=1 (set by ./x.sh test) that is a failure instead.
#![cfg(feature = "vulkan")]

mod common;
use common::*;
use ffi_sdk::testing::{bytes, close, dict, err, int, ok, NIL};
use ffi_sdk::{Code, Value};
use ffi_vulkan::vk::*;

const ADD: &str = r#"#version 450
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer C { float c[]; };
layout(push_constant) uniform P { uint n; } p;
void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i < p.n) c[i] = a[i] + b[i];
}
"#;

const REDUCE: &str = r#"#version 450
layout(local_size_x = 256) in;
layout(set = 0, binding = 0) readonly buffer In { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Out { float y[]; };
layout(push_constant) uniform P { uint n; } p;
shared float s[256];
void main() {
    uint t = gl_LocalInvocationID.x;
    uint i = gl_WorkGroupID.x * 512u + t;
    float v = 0.0;
    if (i < p.n) v += x[i];
    if (i + 256u < p.n) v += x[i + 256u];
    s[t] = v;
    barrier();
    for (uint k = 128u; k > 0u; k >>= 1) {
        if (t < k) s[t] += s[t + k];
        barrier();
    }
    if (t == 0u) y[gl_WorkGroupID.x] = s[0];
}
"#;

/// Sums the first `n` floats of `input` on the device: passes of the
/// reduction shader (512 elements per workgroup) until one value is left.
fn reduce_sum(dev: Value, q: Value, pipe: Value, input: Value, n: usize) -> f32 {
    let parts = n.div_ceil(512);
    // Handles in a Rust Vec are not seen by the collector: `keep` (on the stack) holds them too.
    let keep = Value::array(4);
    let mut tmp = Vec::new();
    for _ in 0..2 {
        let b = ok(rt_vk_buffer_create(dev.raw(), int(4 * parts.max(1) as i64), NIL));
        let m = ok(rt_vk_memory_allocate(dev.raw(), b.raw(), dict(&[("location", Value::text("gpu_to_cpu"))])));
        keep.push(b);
        keep.push(m);
        tmp.push((b, m));
    }
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    ok(rt_vk_command_begin(cb.raw()));
    let (mut src, mut len, mut k) = (input, n, 0);
    loop {
        let groups = len.div_ceil(512);
        let dst = tmp[k % 2].0;
        let push = dict(&[("push_constants", Value::bytes(&(len as u32).to_le_bytes()))]);
        ok(rt_vk_dispatch(cb.raw(), pipe.raw(), arr(&[src, dst]), int(groups as i64), push));
        src = dst;
        len = groups;
        k += 1;
        if len == 1 {
            break;
        }
    }
    ok(rt_vk_command_end(cb.raw()));
    let fence = ok(rt_vk_submit(q.raw(), cb.raw()));
    assert_eq!(ok(rt_vk_fence_wait(fence.raw(), NIL)).as_bool(), Some(true));
    let out = ok(rt_vk_memory_map(tmp[(k - 1) % 2].1.raw(), int(0), int(4)));
    let b = out.as_bytes().unwrap();
    let sum = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    for h in [fence, cb, pool] {
        close(h.raw());
    }
    for (b, m) in tmp {
        close(m.raw());
        close(b.raw());
    }
    std::hint::black_box(keep);
    sum
}

#[test]
fn physical_devices_are_described() {
    let Some((i, _)) = instance() else { return };
    let pds = ok(rt_vk_physical_devices(i.raw()));
    let d = pds.at(0);
    println!("device 0: {} ({}), Vulkan {}", d.get("name").describe(), d.get("type").describe(), d.get("api_version").describe());
    assert!(!d.get("name").as_text().unwrap().is_empty());
    assert!(!d.get("queue_families").is_empty());
    assert!(!d.get("memory_heaps").is_empty());
    assert!(d.get("limits").get("max_compute_work_group_count").at(0).as_int().unwrap() >= 65535);
}

#[test]
fn add_two_million_element_buffers_matches_cpu() {
    let Some((inst, validated)) = instance() else { return };
    let Some(code) = spirv("add.comp", ADD) else { return };
    let Some(rcode) = spirv("reduce.comp", REDUCE) else { return };
    let n = 1usize << 20;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1000.0).collect();
    let b: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1013) as f32 * 0.125).collect();
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    let q = ok(rt_vk_queue_get(dev.raw(), NIL));
    // Handles in a Rust Vec are not seen by the collector: `keep` (on the stack) holds them too.
    let keep = Value::array(6);
    let mut mems = Vec::new();
    let mut bufs = Vec::new();
    for (k, data) in [Some(&a), Some(&b), None].into_iter().enumerate() {
        let buf = ok(rt_vk_buffer_create(dev.raw(), int(4 * n as i64), NIL));
        let loc = if k == 2 { "gpu_to_cpu" } else { "cpu_to_gpu" };
        let mem = ok(rt_vk_memory_allocate(dev.raw(), buf.raw(), dict(&[("location", Value::text(loc))])));
        if let Some(d) = data {
            ok(rt_vk_memory_write(mem.raw(), bytes(&f32s(d)), NIL));
        }
        keep.push(buf);
        keep.push(mem);
        bufs.push(buf);
        mems.push(mem);
    }
    let sh = ok(rt_vk_shader_load(dev.raw(), bytes(&code)));
    let info = ok(rt_vk_shader_info_get(sh.raw()));
    assert_eq!(info.get("bindings").len(), 3);
    assert_eq!(info.get("push_constant_size").as_int(), Some(4));
    assert_eq!(info.get("local_size").at(0).as_int(), Some(256));
    let pipe = ok(rt_vk_pipeline_compute(sh.raw(), NIL));
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    ok(rt_vk_command_begin(cb.raw()));
    let push = Value::bytes(&(n as u32).to_le_bytes());
    ok(rt_vk_dispatch(cb.raw(), pipe.raw(), arr(&bufs), int((n / 256) as i64), dict(&[("push_constants", push)])));
    ok(rt_vk_command_end(cb.raw()));
    let t = std::time::Instant::now();
    let fence = ok(rt_vk_submit(q.raw(), cb.raw()));
    assert_eq!(ok(rt_vk_fence_wait(fence.raw(), NIL)).as_bool(), Some(true));
    println!("dispatch of {n} adds + fence: {:?}", t.elapsed());
    let out = ok(rt_vk_memory_map(mems[2].raw(), NIL, NIL));
    let c: Vec<f32> = out.as_bytes().unwrap().chunks_exact(4).map(|x| f32::from_le_bytes([x[0], x[1], x[2], x[3]])).collect();
    assert_eq!(c.len(), n);
    for i in 0..n {
        assert_eq!(c[i], a[i] + b[i], "element {i}");
    }
    // The reduction sums c on the device; the CPU sums it in f64.
    let rsh = ok(rt_vk_shader_load(dev.raw(), bytes(&rcode)));
    let rpipe = ok(rt_vk_pipeline_compute(rsh.raw(), NIL));
    let gpu = reduce_sum(dev, q, rpipe, bufs[2], n) as f64;
    let cpu: f64 = c.iter().map(|x| *x as f64).sum();
    println!("sum of c: device {gpu}, CPU {cpu}");
    assert!((gpu - cpu).abs() <= 1e-5 * cpu.abs().max(1.0), "device sum {gpu} vs CPU {cpu}");
    close(rpipe.raw());
    close(rsh.raw());
    if validated {
        assert_no_validation_errors(inst, "add + reduce");
    }
    // Lifetimes: parents refuse to go while children are open; use after destroy is Closed.
    assert_eq!(err(rt_vk_device_destroy(dev.raw())).0, Code::Busy);
    assert_eq!(err(rt_vk_instance_destroy(inst.raw())).0, Code::Busy);
    assert_eq!(err(rt_vk_buffer_destroy(bufs[0].raw())).0, Code::Busy, "recorded in a command buffer");
    // Re-recording after the fence, then closing everything in the "wrong" order.
    ok(rt_vk_command_begin(cb.raw()));
    ok(rt_vk_command_end(cb.raw()));
    ok(rt_vk_buffer_destroy(bufs[0].raw()));
    assert_eq!(err(rt_vk_memory_map(bufs[0].raw(), NIL, NIL)).0, Code::TypeMismatch);
    assert_eq!(err(rt_vk_buffer_destroy(bufs[0].raw())).0, Code::Closed);
    ok(rt_vk_memory_free(mems[0].raw()));
    assert_eq!(err(rt_vk_memory_map(mems[0].raw(), NIL, NIL)).0, Code::Closed);
    for h in [dev, inst, pipe, sh, pool, q, fence, cb] {
        close(h.raw());
    }
    for h in bufs.iter().chain(mems.iter()) {
        close(h.raw());
    }
    std::hint::black_box(keep);
}

#[test]
fn reduction_of_a_million_floats_is_exact() {
    let Some((inst, validated)) = instance() else { return };
    let Some(rcode) = spirv("reduce2.comp", REDUCE) else { return };
    // Small integers: every partial sum stays below 2^24, so f32 is exact in any order.
    let n = 1usize << 20;
    let x: Vec<f32> = (0..n).map(|i| (i % 16) as f32).collect();
    let cpu: f32 = x.iter().sum();
    assert_eq!(cpu, 7_864_320.0);
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    let q = ok(rt_vk_queue_get(dev.raw(), NIL));
    let buf = ok(rt_vk_buffer_create(dev.raw(), int(4 * n as i64), NIL));
    let mem = ok(rt_vk_memory_allocate(dev.raw(), buf.raw(), NIL));
    ok(rt_vk_memory_write(mem.raw(), bytes(&f32s(&x)), NIL));
    let sh = ok(rt_vk_shader_load(dev.raw(), bytes(&rcode)));
    let pipe = ok(rt_vk_pipeline_compute(sh.raw(), NIL));
    let t = std::time::Instant::now();
    let gpu = reduce_sum(dev, q, pipe, buf, n);
    println!("sum of {n} floats on the device: {gpu} in {:?} (CPU {cpu})", t.elapsed());
    assert_eq!(gpu, cpu);
    // Odd lengths too (partial workgroups).
    for m in [1usize, 511, 513, 1000] {
        let want: f32 = x[..m].iter().sum();
        assert_eq!(reduce_sum(dev, q, pipe, buf, m), want, "first {m} floats");
    }
    if validated {
        assert_no_validation_errors(inst, "reduce");
    }
    for h in [pipe, sh, mem, buf, q, dev, inst] {
        close(h.raw());
    }
}

#[test]
fn validation_messages_are_collected() {
    let i = Value::from_raw(rt_vk_instance_create(dict(&[("validation", Value::bool(true)), ("severity", Value::text("verbose"))])));
    match i.error() {
        Some((Code::Unsupported, m)) => {
            eprintln!("skipped: {m}");
            return;
        }
        Some((c, m)) => panic!("{}: {m}", c.name()),
        None => {}
    }
    let dev = ok(rt_vk_device_create(i.raw(), NIL, NIL));
    let msgs = ok(rt_vk_instance_messages_drain(i.raw()));
    println!("{} verbose/info messages, e.g. {}", msgs.len(), if msgs.is_empty() { String::new() } else { msgs.at(0).get("message").describe() });
    assert!(!msgs.is_empty(), "the loader and layer report at least their set-up at verbose severity");
    let layer = msgs.items().any(|m| m.get("message").as_text().is_some_and(|t| t.contains("VK_LAYER_KHRONOS_validation")));
    assert!(layer, "the validation layer is among the loaded layers");
    assert!(ok(rt_vk_instance_messages_drain(i.raw())).len() <= 1, "drained");
    assert_eq!(err(rt_vk_instance_create(dict(&[("severity", Value::text("loud"))]))).0, Code::InvalidArgument);
    close(dev.raw());
    close(i.raw());
}

#[test]
fn bad_input_is_an_error() {
    let Some((inst, _)) = instance() else { return };
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    assert_eq!(err(rt_vk_device_create(inst.raw(), int(99), NIL)).0, Code::OutOfRange);
    assert_eq!(err(rt_vk_shader_load(dev.raw(), bytes(b"not spir-v at all!!!"))).0, Code::Parse);
    let mut junk = 0x0723_0203u32.to_le_bytes().to_vec();
    junk.extend_from_slice(&[0xAB; 64]);
    assert_eq!(err(rt_vk_shader_load(dev.raw(), bytes(&junk))).0, Code::Parse);
    assert_eq!(err(rt_vk_buffer_create(dev.raw(), int(0), NIL)).0, Code::InvalidArgument);
    let buf = ok(rt_vk_buffer_create(dev.raw(), int(64), NIL));
    let mem = ok(rt_vk_memory_allocate(dev.raw(), buf.raw(), NIL));
    assert_eq!(err(rt_vk_memory_allocate(dev.raw(), buf.raw(), NIL)).0, Code::AlreadyExists);
    assert_eq!(err(rt_vk_memory_write(mem.raw(), bytes(&[0; 65]), NIL)).0, Code::OutOfRange);
    assert_eq!(err(rt_vk_memory_map(mem.raw(), int(60), int(5))).0, Code::OutOfRange);
    ok(rt_vk_memory_write(mem.raw(), bytes(b"hello"), int(59)));
    assert_eq!(ok(rt_vk_memory_map(mem.raw(), int(59), NIL)).as_bytes().unwrap(), b"hello");
    ok(rt_vk_memory_unmap(mem.raw()));
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    let q = ok(rt_vk_queue_get(dev.raw(), NIL));
    assert_eq!(err(rt_vk_submit(q.raw(), cb.raw())).0, Code::InvalidArgument, "not recorded");
    assert_eq!(err(rt_vk_command_end(cb.raw())).0, Code::InvalidArgument);
    let (c, m) = err(rt_vk_pipeline_graphics(dev.raw(), bytes(b""), bytes(b""), NIL));
    assert_eq!(c, Code::Parse, "{m}");
    for h in [cb, pool, q, mem, buf, dev, inst] {
        close(h.raw());
    }
}
