//! A graphics pipeline (vertex + fragment SPIR-V, dynamic rendering) draws a
//! triangle into an offscreen image; the image is copied into a buffer, read
//! back and checked pixel by pixel. Runs on lavapipe; the validation layer
//! is on where installed and must report no errors.
#![cfg(feature = "vulkan")]

mod common;
use common::*;
use ffi_sdk::testing::{bytes, close, dict, err, int, ok, NIL};
use ffi_sdk::{Code, Value};
use ffi_vulkan::vk::*;

const VERT: &str = r#"#version 450
const vec2 P[3] = vec2[](vec2(-0.8, -0.8), vec2(0.8, -0.8), vec2(-0.8, 0.8));
void main() { gl_Position = vec4(P[gl_VertexIndex], 0.0, 1.0); }
"#;
const FRAG: &str = r#"#version 450
layout(push_constant) uniform P { vec4 color; } p;
layout(location = 0) out vec4 o;
void main() { o = p.color; }
"#;

const W: i64 = 64;
const H: i64 = 48;

fn floats(v: &[f64]) -> Value {
    let a = Value::array(v.len());
    for x in v {
        a.push(Value::float(*x));
    }
    a
}

/// Where the triangle (-0.8,-0.8) (0.8,-0.8) (-0.8,0.8) covers pixel centre
/// (x, y): Some(true) inside, Some(false) outside, None exactly on an edge
/// (the tie-breaking rule decides; not checked); and whether the centre is
/// within one pixel of an edge (checked like the others: the edge pixels).
fn covered(x: i64, y: i64) -> (Option<bool>, bool) {
    // Pixel centres in normalised device coordinates, times 10 * W * H to stay in integers.
    let nx = (2 * x + 1) * 10 * H - 10 * W * H; // = ndc_x * 10 * W * H
    let ny = (2 * y + 1) * 10 * W - 10 * W * H;
    let lo = -8 * W * H; // -0.8 * 10 * W * H
    // Edges: nx > lo, ny > lo, nx + ny < 0.
    let e = [nx - lo, ny - lo, -(nx + ny)];
    // One pixel in these units: 20 H along x, 20 W along y; the diagonal edge
    // moves by 20 H + 20 W per pixel step in both.
    let near = e[0].abs() <= 20 * H || e[1].abs() <= 20 * W || e[2].abs() <= 20 * H + 20 * W;
    let inside = if e.iter().any(|v| *v < 0) {
        Some(false)
    } else if e.contains(&0) {
        None
    } else {
        Some(true)
    };
    (inside, near)
}

#[test]
fn triangle_rendered_offscreen_matches_pixel_by_pixel() {
    let Some((inst, validated)) = instance() else { return };
    let (Some(vs), Some(fs)) = (spirv("tri.vert", VERT), spirv("tri.frag", FRAG)) else { return };
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    let q = ok(rt_vk_queue_get(dev.raw(), NIL));
    let img = ok(rt_vk_image_create(dev.raw(), int(W), int(H), NIL));
    let info = ok(rt_vk_image_info_get(img.raw()));
    assert_eq!(info.get("size_bytes").as_int(), Some(W * H * 4));
    assert_eq!(info.get("format").as_text(), Some("rgba8"));
    let pipe = ok(rt_vk_pipeline_graphics(dev.raw(), bytes(&vs), bytes(&fs), NIL));
    let out = ok(rt_vk_buffer_create(dev.raw(), int(W * H * 4), NIL));
    let mem = ok(rt_vk_memory_allocate(dev.raw(), out.raw(), dict(&[("location", Value::text("gpu_to_cpu"))])));
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    // Colour (1, 0.5, 0.25, 1) on a clear of (0, 0, 1, 1).
    let color = f32s(&[1.0, 0.5, 0.25, 1.0]);
    ok(rt_vk_command_begin(cb.raw()));
    assert_eq!(err(rt_vk_image_copy(cb.raw(), img.raw(), out.raw())).0, Code::InvalidArgument, "not rendered yet");
    ok(rt_vk_render_start(cb.raw(), img.raw(), dict(&[("clear_color", floats(&[0.0, 0.0, 1.0, 1.0]))])));
    assert_eq!(err(rt_vk_draw_record(cb.raw(), pipe.raw(), int(3), NIL)).0, Code::InvalidArgument, "push constants missing");
    ok(rt_vk_draw_record(cb.raw(), pipe.raw(), int(3), dict(&[("push_constants", Value::bytes(&color))])));
    assert_eq!(err(rt_vk_command_end(cb.raw())).0, Code::InvalidArgument, "rendering still open");
    ok(rt_vk_render_end(cb.raw()));
    ok(rt_vk_image_copy(cb.raw(), img.raw(), out.raw()));
    ok(rt_vk_command_end(cb.raw()));
    let fence = ok(rt_vk_submit(q.raw(), cb.raw()));
    assert_eq!(ok(rt_vk_fence_wait(fence.raw(), NIL)).as_bool(), Some(true));
    let px = ok(rt_vk_memory_map(mem.raw(), NIL, NIL)).as_bytes().unwrap().to_vec();
    assert_eq!(px.len() as i64, W * H * 4);
    let (tri, clear) = ([255u8, 128, 64, 255], [0u8, 0, 255, 255]);
    let (mut inside, mut outside, mut edge, mut near_edge) = (0, 0, 0, 0);
    for y in 0..H {
        for x in 0..W {
            let i = ((y * W + x) * 4) as usize;
            let got = &px[i..i + 4];
            let (c, near) = covered(x, y);
            if near && c.is_some() {
                near_edge += 1;
            }
            match c {
                Some(true) => {
                    inside += 1;
                    assert_eq!(got, tri, "pixel ({x}, {y}) is inside the triangle");
                }
                Some(false) => {
                    outside += 1;
                    assert_eq!(got, clear, "pixel ({x}, {y}) is outside the triangle");
                }
                None => {
                    edge += 1;
                    assert!(got == tri || got == clear, "edge pixel ({x}, {y}) is {got:?}");
                }
            }
        }
    }
    println!("{W}x{H}: {inside} pixels inside, {outside} outside ({near_edge} of them within a pixel of an edge), {edge} exactly on one (either colour)");
    assert!(inside > 500 && outside > 500 && near_edge > 100);
    // Pixels right next to each edge, inside and out, by name.
    let at = |x: i64, y: i64| px[((y * W + x) * 4) as usize..((y * W + x) * 4 + 4) as usize].to_vec();
    assert_eq!(at(3, 2), clear, "top left, outside the corner");
    assert_eq!(at(W - 1, H - 1), clear, "bottom right");
    assert_eq!(at(10, 10), tri, "near the right angle");
    if validated {
        let n = assert_no_validation_errors(inst, "triangle");
        println!("validation layer on: {n} message(s), no errors");
    }
    // Lifetimes: the image is recorded in the command buffer until it is re-recorded.
    assert_eq!(err(rt_vk_image_destroy(img.raw())).0, Code::Busy);
    ok(rt_vk_command_begin(cb.raw()));
    ok(rt_vk_command_end(cb.raw()));
    ok(rt_vk_image_destroy(img.raw()));
    assert_eq!(err(rt_vk_image_info_get(img.raw())).0, Code::Closed);
    for h in [fence, cb, pool, mem, out, pipe, q, dev, inst] {
        close(h.raw());
    }
}

#[test]
fn bad_graphics_input_is_an_error() {
    let Some((inst, validated)) = instance() else { return };
    let (Some(vs), Some(fs)) = (spirv("bad.vert", VERT), spirv("bad.frag", FRAG)) else { return };
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    // Stages swapped: each module lacks the entry point of its stage.
    let (c, m) = err(rt_vk_pipeline_graphics(dev.raw(), bytes(&fs), bytes(&vs), NIL));
    assert_eq!(c, Code::InvalidArgument, "{m}");
    assert!(m.contains("vertex"), "{m}");
    assert_eq!(err(rt_vk_pipeline_graphics(dev.raw(), bytes(b"junk"), bytes(&fs), NIL)).0, Code::Parse);
    assert_eq!(err(rt_vk_pipeline_graphics(dev.raw(), bytes(&vs), bytes(&fs), dict(&[("format", Value::text("rgb565"))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_vk_image_create(dev.raw(), int(0), int(4), NIL)).0, Code::OutOfRange);
    assert_eq!(err(rt_vk_image_create(dev.raw(), int(1 << 20), int(4), NIL)).0, Code::OutOfRange);
    // A graphics shader is not a compute shader and the other way round.
    assert_eq!(err(rt_vk_shader_load(dev.raw(), bytes(&vs))).0, Code::Unsupported);
    let pipe = ok(rt_vk_pipeline_graphics(dev.raw(), bytes(&vs), bytes(&fs), dict(&[("format", Value::text("bgra8"))])));
    let img = ok(rt_vk_image_create(dev.raw(), int(8), int(8), NIL));
    let small = ok(rt_vk_buffer_create(dev.raw(), int(16), NIL));
    let smem = ok(rt_vk_memory_allocate(dev.raw(), small.raw(), NIL));
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    assert_eq!(err(rt_vk_render_start(cb.raw(), img.raw(), NIL)).0, Code::InvalidArgument, "not recording");
    ok(rt_vk_command_begin(cb.raw()));
    assert_eq!(err(rt_vk_draw_record(cb.raw(), pipe.raw(), int(3), NIL)).0, Code::InvalidArgument, "no rendering open");
    assert_eq!(err(rt_vk_render_end(cb.raw())).0, Code::InvalidArgument);
    ok(rt_vk_render_start(cb.raw(), img.raw(), NIL));
    let push = dict(&[("push_constants", Value::bytes(&[0u8; 16]))]);
    let (c, m) = err(rt_vk_draw_record(cb.raw(), pipe.raw(), int(3), push));
    assert_eq!(c, Code::InvalidArgument, "format mismatch: {m}");
    assert_eq!(err(rt_vk_draw_record(cb.raw(), pipe.raw(), int(0), push)).0, Code::OutOfRange);
    let (c, m) = err(rt_vk_dispatch(cb.raw(), pipe.raw(), Value::array(0).raw(), int(1), NIL));
    assert_eq!(c, Code::InvalidArgument, "a graphics pipeline dispatched: {m}");
    assert_eq!(err(rt_vk_render_start(cb.raw(), img.raw(), NIL)).0, Code::InvalidArgument, "already rendering");
    assert_eq!(err(rt_vk_image_copy(cb.raw(), img.raw(), small.raw())).0, Code::OutOfRange);
    ok(rt_vk_render_end(cb.raw()));
    assert_eq!(err(rt_vk_image_copy(cb.raw(), img.raw(), small.raw())).0, Code::OutOfRange);
    ok(rt_vk_command_end(cb.raw()));
    if validated {
        assert_no_validation_errors(inst, "bad input");
    }
    for h in [cb, pool, smem, small, img, pipe, dev, inst] {
        close(h.raw());
    }
}
