//! CUDA on a real GPU (tests/gpu/run.sh). Each test is skipped, with the
//! reason printed, where no CUDA device exists (CI); with RT_REQUIRE_GPU=1
//! (set by tests/gpu/run.sh) a missing device is a failure instead.
#![cfg(feature = "cuda")]

use ffi_cuda::cuda::*;
use ffi_sdk::testing::{bytes, close, dict, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use std::time::Instant;

/// c[i] = a[i] + b[i] and c[i] = alpha * a[i] + b[i], i < n (PTX 6.0, sm_50: JIT-compiled for newer GPUs).
const PTX: &str = r#"
.version 6.0
.target sm_50
.address_size 64

.visible .entry vadd(.param .u64 pa, .param .u64 pb, .param .u64 pc, .param .u32 n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<11>;
    ld.param.u64 %rd1, [pa];
    ld.param.u64 %rd2, [pb];
    ld.param.u64 %rd3, [pc];
    ld.param.u32 %r2, [n];
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.s32 %r1, %r3, %r4, %r5;
    setp.ge.u32 %p1, %r1, %r2;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd4, %rd1;
    cvta.to.global.u64 %rd5, %rd2;
    cvta.to.global.u64 %rd6, %rd3;
    mul.wide.u32 %rd7, %r1, 4;
    add.s64 %rd8, %rd4, %rd7;
    add.s64 %rd9, %rd5, %rd7;
    add.s64 %rd10, %rd6, %rd7;
    ld.global.f32 %f1, [%rd8];
    ld.global.f32 %f2, [%rd9];
    add.f32 %f3, %f1, %f2;
    st.global.f32 [%rd10], %f3;
DONE:
    ret;
}

.visible .entry axpy(.param .u64 pa, .param .u64 pb, .param .u64 pc, .param .f32 alpha, .param .u32 n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<6>;
    .reg .b64 %rd<11>;
    ld.param.u64 %rd1, [pa];
    ld.param.u64 %rd2, [pb];
    ld.param.u64 %rd3, [pc];
    ld.param.f32 %f4, [alpha];
    ld.param.u32 %r2, [n];
    mov.u32 %r3, %ctaid.x;
    mov.u32 %r4, %ntid.x;
    mov.u32 %r5, %tid.x;
    mad.lo.s32 %r1, %r3, %r4, %r5;
    setp.ge.u32 %p1, %r1, %r2;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd4, %rd1;
    cvta.to.global.u64 %rd5, %rd2;
    cvta.to.global.u64 %rd6, %rd3;
    mul.wide.u32 %rd7, %r1, 4;
    add.s64 %rd8, %rd4, %rd7;
    add.s64 %rd9, %rd5, %rd7;
    add.s64 %rd10, %rd6, %rd7;
    ld.global.f32 %f1, [%rd8];
    ld.global.f32 %f2, [%rd9];
    fma.rn.f32 %f3, %f4, %f1, %f2;
    st.global.f32 [%rd10], %f3;
DONE:
    ret;
}
"#;

fn gpu() -> bool {
    let n = Value::from_raw(rt_cuda_device_count()).as_int().unwrap_or(0);
    if n > 0 {
        return true;
    }
    if std::env::var("RT_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("RT_REQUIRE_GPU=1 but no CUDA device was found");
    }
    eprintln!("skipped: no CUDA device (no driver or no GPU); tests/gpu/run.sh runs this on a GPU machine");
    false
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn from_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}
fn arr(items: &[u64]) -> u64 {
    let a = Value::array(items.len());
    for i in items {
        a.push(Value::from_raw(*i));
    }
    a.raw()
}

#[test]
fn device_info() {
    if !gpu() {
        return;
    }
    assert_eq!(ok(rt_cuda_device_get()).as_int(), Some(0));
    ok(rt_cuda_device_set(int(0)));
    let name = ok(rt_cuda_device_name(NIL)).as_text().unwrap().to_string();
    let mem = ok(rt_cuda_device_memory(NIL));
    println!("device 0: {name}, {:?}", mem.describe());
    assert!(mem.get("total").as_int().unwrap() > 0);
    assert_eq!(err(rt_cuda_device_set(int(1 << 20))).0, Code::OutOfRange);
}

#[test]
fn vector_add_from_ptx_matches_cpu() {
    if !gpu() {
        return;
    }
    let n = 1_000_000usize;
    let a: Vec<f32> = (0..n).map(|i| i as f32 * 0.5).collect();
    let b: Vec<f32> = (0..n).map(|i| (n - i) as f32 * 0.25).collect();
    let (da, db, dc) = (ok(rt_cuda_malloc(int(4 * n as i64))), ok(rt_cuda_malloc(int(4 * n as i64))), ok(rt_cuda_malloc(int(4 * n as i64))));
    ok(rt_cuda_memcpy_h2d(da.raw(), bytes(&f32s(&a)), NIL));
    ok(rt_cuda_memcpy_h2d(db.raw(), bytes(&f32s(&b)), NIL));
    let args = arr(&[da.raw(), db.raw(), dc.raw(), int(n as i64)]);
    ok(rt_cuda_launch_kernel(text(PTX), text("vadd"), int(n.div_ceil(256) as i64), int(256), args, NIL));
    let c = from_f32s(ok(rt_cuda_memcpy_d2h(dc.raw(), NIL, NIL)).as_bytes().unwrap());
    for i in 0..n {
        assert_eq!(c[i], a[i] + b[i], "element {i}");
    }
    // A float argument, an asynchronous launch on a stream, and the copy that waits for it.
    let s = ok(rt_cuda_stream_create());
    let args = arr(&[da.raw(), db.raw(), dc.raw(), Value::float(2.0).raw(), int(n as i64)]);
    ok(rt_cuda_launch_kernel(text(PTX), text("axpy"), int(n.div_ceil(256) as i64), int(256), args,
        dict(&[("stream", s), ("sync", Value::FALSE)])));
    let c = from_f32s(ok(rt_cuda_memcpy_d2h(dc.raw(), NIL, NIL)).as_bytes().unwrap());
    for i in 0..n {
        assert_eq!(c[i], 2.0f32.mul_add(a[i], b[i]), "axpy element {i}");
    }
    ok(rt_cuda_stream_sync(s.raw()));
    ok(rt_cuda_stream_destroy(s.raw()));
    assert_eq!(err(rt_cuda_stream_sync(s.raw())).0, Code::Closed);
    for d in [da, db, dc] {
        ok(rt_cuda_free(d.raw()));
        assert_eq!(err(rt_cuda_memcpy_d2h(d.raw(), NIL, NIL)).0, Code::Closed);
    }
}

#[test]
fn wrong_kernel_arguments_are_errors() {
    if !gpu() {
        return;
    }
    let d = ok(rt_cuda_malloc(int(16)));
    let launch = |name: &str, args: &[u64]| rt_cuda_launch_kernel(text(PTX), text(name), int(1), int(4), arr(args), NIL);
    assert_eq!(err(launch("vadd", &[d.raw(), d.raw()])).0, Code::InvalidArgument);
    assert_eq!(err(launch("vadd", &[d.raw(), d.raw(), d.raw(), text("x")])).0, Code::TypeMismatch);
    assert_eq!(err(launch("vadd", &[d.raw(), d.raw(), d.raw(), int(-1)])).0, Code::OutOfRange);
    assert_eq!(err(launch("vadd", &[d.raw(), d.raw(), d.raw(), int(1 << 40)])).0, Code::OutOfRange);
    assert_eq!(err(launch("nope", &[])).0, Code::NotFound);
    assert_eq!(err(rt_cuda_launch_kernel(text("garbage"), text("k"), int(1), int(1), arr(&[]), NIL)).0, Code::NotFound);
    assert_eq!(err(rt_cuda_launch_kernel(text(PTX), text("vadd"), int(0), int(1), arr(&[]), NIL)).0, Code::InvalidArgument);
    close(d.raw());
}

#[test]
fn out_of_bounds_copies_are_rejected() {
    if !gpu() {
        return;
    }
    let a = ok(rt_cuda_malloc(int(100)));
    let b = ok(rt_cuda_malloc(int(50)));
    assert_eq!(err(rt_cuda_memcpy_h2d(a.raw(), bytes(&[1; 101]), NIL)).0, Code::OutOfRange);
    assert_eq!(err(rt_cuda_memcpy_h2d(a.raw(), bytes(&[1; 10]), int(91))).0, Code::OutOfRange);
    assert_eq!(err(rt_cuda_memcpy_h2d(a.raw(), bytes(&[1; 10]), int(-1))).0, Code::OutOfRange);
    assert_eq!(err(rt_cuda_memcpy_d2h(a.raw(), int(90), int(11))).0, Code::OutOfRange);
    assert_eq!(err(rt_cuda_memcpy_d2h(a.raw(), int(101), NIL)).0, Code::OutOfRange);
    assert_eq!(err(rt_cuda_memcpy_d2d(b.raw(), a.raw(), dict(&[("len", Value::int(51))]))).0, Code::OutOfRange);
    assert_eq!(err(rt_cuda_memcpy_d2d(a.raw(), a.raw(), dict(&[("len", Value::int(20)), ("dst_offset", Value::int(10))]))).0, Code::InvalidArgument);
    // In-bounds d2d, same buffer and across buffers.
    ok(rt_cuda_memcpy_h2d(a.raw(), bytes(&(0..100u8).collect::<Vec<_>>()), NIL));
    ok(rt_cuda_memcpy_d2d(a.raw(), a.raw(), dict(&[("len", Value::int(10)), ("dst_offset", Value::int(50))])));
    ok(rt_cuda_memcpy_d2d(b.raw(), a.raw(), dict(&[("src_offset", Value::int(50))])));
    let got = ok(rt_cuda_memcpy_d2h(b.raw(), NIL, NIL)).as_bytes().unwrap().to_vec();
    let mut want: Vec<u8> = (50..100u8).collect();
    want[..10].copy_from_slice(&(0..10u8).collect::<Vec<_>>());
    assert_eq!(got, want);
}

#[test]
fn memcpy_round_trip_1_gib() {
    if !gpu() {
        return;
    }
    let n = 1usize << 30;
    let data: Vec<u8> = (0..n).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let d = ok(rt_cuda_malloc(int(n as i64)));
    let d2 = ok(rt_cuda_malloc(int(n as i64)));
    ok(rt_cuda_memcpy_h2d(d.raw(), bytes(&data), NIL));
    ok(rt_cuda_memcpy_d2d(d2.raw(), d.raw(), NIL));
    let back = ok(rt_cuda_memcpy_d2h(d2.raw(), NIL, NIL));
    assert!(back.as_bytes().unwrap() == &data[..], "1 GiB round trip differs");
    close(d.raw());
    close(d2.raw());
}

#[test]
fn events_time_a_kernel() {
    if !gpu() {
        return;
    }
    let n = 1 << 24;
    let d = ok(rt_cuda_malloc(int(4 * n)));
    let (e0, e1) = (ok(rt_cuda_event_create(NIL)), ok(rt_cuda_event_create(NIL)));
    assert_eq!(err(rt_cuda_event_elapsed(e0.raw(), e1.raw())).0, Code::InvalidArgument);
    ok(rt_cuda_event_record(e0.raw(), NIL));
    let args = arr(&[d.raw(), d.raw(), d.raw(), int(n)]);
    ok(rt_cuda_launch_kernel(text(PTX), text("vadd"), int(n / 256), int(256), args, dict(&[("sync", Value::FALSE)])));
    ok(rt_cuda_event_record(e1.raw(), NIL));
    ok(rt_cuda_event_sync(e1.raw()));
    let ms = ok(rt_cuda_event_elapsed(e0.raw(), e1.raw())).as_float().unwrap();
    println!("vadd of {n} floats: {ms:.3} ms");
    assert!(ms > 0.0 && ms < 10_000.0);
    let light = ok(rt_cuda_event_create(dict(&[("timing", Value::FALSE)])));
    ok(rt_cuda_event_record(light.raw(), NIL));
    assert_eq!(err(rt_cuda_event_elapsed(e0.raw(), light.raw())).0, Code::InvalidArgument);
}

#[test]
fn bandwidth_vs_cudarc_directly() {
    if !gpu() {
        return;
    }
    let n = 256usize << 20;
    let reps = 5;
    let data = vec![7u8; n];
    let mbs = |secs: f64| (n * reps) as f64 / secs / 1e6;
    // Through the library.
    let d = ok(rt_cuda_malloc(int(n as i64)));
    let host = Value::from_raw(bytes(&data));
    let t = Instant::now();
    for _ in 0..reps {
        ok(rt_cuda_memcpy_h2d(d.raw(), host.raw(), NIL));
    }
    let lib_h2d = mbs(t.elapsed().as_secs_f64());
    let t = Instant::now();
    for _ in 0..reps {
        ok(rt_cuda_memcpy_d2h(d.raw(), NIL, NIL));
    }
    let lib_d2h = mbs(t.elapsed().as_secs_f64());
    close(d.raw());
    // cudarc directly (pageable host memory, as above).
    let ctx = cudarc::driver::CudaContext::new(0).unwrap();
    let s = ctx.default_stream();
    let mut dd = s.alloc_zeros::<u8>(n).unwrap();
    let mut back = vec![0u8; n];
    let t = Instant::now();
    for _ in 0..reps {
        s.memcpy_htod(&data, &mut dd).unwrap();
        s.synchronize().unwrap();
    }
    let raw_h2d = mbs(t.elapsed().as_secs_f64());
    let t = Instant::now();
    for _ in 0..reps {
        s.memcpy_dtoh(&dd, &mut back).unwrap();
        s.synchronize().unwrap();
    }
    let raw_d2h = mbs(t.elapsed().as_secs_f64());
    println!("BANDWIDTH 256 MiB x{reps}: h2d library {lib_h2d:.0} MB/s, cudarc {raw_h2d:.0} MB/s ({:.2}x); \
              d2h library {lib_d2h:.0} MB/s, cudarc {raw_d2h:.0} MB/s ({:.2}x)",
             lib_h2d / raw_h2d, lib_d2h / raw_d2h);
}
