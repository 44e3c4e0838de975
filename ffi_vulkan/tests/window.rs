//! A window (winit, X11) + surface + swapchain presents frames under an
//! Xvfb this test starts itself (skipped, with the reason, only where Xvfb
//! cannot start; a failure instead with RT_REQUIRE_VULKAN=1). The window
//! work runs in a child run of this binary with DISPLAY set, so the X
//! server outlives every X connection and is stopped after.
#![cfg(feature = "vulkan")]

mod common;
use common::*;
use ffi_sdk::testing::{bytes, close, dict, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};
use ffi_vulkan::vk::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILD: &str = "RT_VK_WINDOW_CHILD";

/// Stops the X server (SIGTERM, so it removes its socket and lock file;
/// SIGKILL and the files removed here if it does not stop) however the test ends.
struct Xvfb(std::process::Child, u32);
impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.1));
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.1));
    }
}

/// Starts `Xvfb :N` on the first free display number from 90.
fn start_xvfb() -> Result<(Xvfb, String), String> {
    for n in 90..150 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
            continue;
        }
        let child = Command::new("Xvfb")
            .args([&format!(":{n}"), "-screen", "0", "320x240x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("Xvfb cannot start ({e}); install xvfb"))?;
        let mut x = Xvfb(child, n);
        for _ in 0..200 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return Ok((x, format!(":{n}")));
            }
            if let Ok(Some(_)) = x.0.try_wait() {
                std::mem::forget(x); // reaped; its files (if any) belong to whoever won the race
                break; // lost a race for this number: try the next
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    Err("Xvfb did not come up on any display :90 to :149".into())
}

fn run_child(mode: &str, display: Option<&str>) {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "window_swapchain_presents_frames", "--nocapture", "--test-threads=1"]).env(CHILD, mode);
    match display {
        Some(d) => c.env("DISPLAY", d),
        None => c.env_remove("DISPLAY"),
    };
    let st = c.status().expect("re-running the test binary");
    assert!(st.success(), "child run ({mode}) failed");
}

#[test]
fn window_swapchain_presents_frames() {
    match std::env::var(CHILD).as_deref() {
        Ok("present") => return present(),
        Ok("nodisplay") => return no_display(),
        _ => {}
    }
    run_child("nodisplay", None);
    let (x, display) = match start_xvfb() {
        Ok(v) => v,
        Err(m) => {
            assert!(!require(), "RT_REQUIRE_VULKAN=1 but: {m}");
            eprintln!("skipped: {m}");
            return;
        }
    };
    run_child("present", Some(&display));
    drop(x);
}

fn no_display() {
    let (c, m) = err(rt_vk_window_create(text("t"), int(64), int(64)));
    assert_eq!(c, Code::Unsupported, "{m}");
    assert!(m.contains("DISPLAY"), "{m}");
}

const VERT: &str = r#"#version 450
const vec2 P[3] = vec2[](vec2(-0.8, -0.8), vec2(0.8, -0.8), vec2(-0.8, 0.8));
void main() { gl_Position = vec4(P[gl_VertexIndex], 0.0, 1.0); }
"#;
const FRAG: &str = r#"#version 450
layout(location = 0) out vec4 o;
void main() { o = vec4(1.0, 0.5, 0.25, 1.0); }
"#;

fn present() {
    let Some((inst, validated)) = instance() else { return };
    let (Some(vs), Some(fs)) = (spirv("win.vert", VERT), spirv("win.frag", FRAG)) else { return };
    let info = ok(rt_vk_instance_info_get(inst.raw()));
    assert_eq!(info.get("surfaces").as_bool(), Some(true), "the loader offers no X11 surface extension");
    let dev = ok(rt_vk_device_create(inst.raw(), NIL, NIL));
    let q = ok(rt_vk_queue_get(dev.raw(), NIL));
    assert_eq!(err(rt_vk_window_create(text("t"), int(0), int(64))).0, Code::OutOfRange);
    let win = ok(rt_vk_window_create(text("simple-rt vulkan"), int(160), int(120)));
    let wi = ok(rt_vk_window_info_get(win.raw()));
    println!("window: {}x{}", wi.get("width").as_int().unwrap(), wi.get("height").as_int().unwrap());
    assert_eq!(wi.get("close_requested").as_bool(), Some(false));
    let surf = ok(rt_vk_surface_create(inst.raw(), win.raw()));
    let sc = ok(rt_vk_swapchain_create(dev.raw(), surf.raw(), NIL));
    let si = ok(rt_vk_swapchain_info_get(sc.raw()));
    println!(
        "swapchain: {}x{}, {} images, {}, {}",
        si.get("width").as_int().unwrap(),
        si.get("height").as_int().unwrap(),
        si.get("images").as_int().unwrap(),
        si.get("format").as_text().unwrap(),
        si.get("present_mode").as_text().unwrap()
    );
    let n_images = si.get("images").as_int().unwrap();
    assert!(n_images >= 1);
    assert_eq!(err(rt_vk_swapchain_create(dev.raw(), surf.raw(), dict(&[("present_mode", Value::text("sometimes"))]))).0, Code::InvalidArgument);
    // A rendered image to show in some frames.
    let img = ok(rt_vk_image_create(dev.raw(), int(80), int(60), NIL));
    let pipe = ok(rt_vk_pipeline_graphics(dev.raw(), bytes(&vs), bytes(&fs), NIL));
    let pool = ok(rt_vk_command_pool(dev.raw()));
    let cb = ok(rt_vk_command_buffer(pool.raw()));
    assert_eq!(err(rt_vk_present(q.raw(), sc.raw(), dict(&[("image", img)]))).0, Code::InvalidArgument, "not rendered");
    ok(rt_vk_command_begin(cb.raw()));
    ok(rt_vk_render_start(cb.raw(), img.raw(), NIL));
    ok(rt_vk_draw_record(cb.raw(), pipe.raw(), int(3), NIL));
    ok(rt_vk_render_end(cb.raw()));
    ok(rt_vk_command_end(cb.raw()));
    let fence = ok(rt_vk_submit(q.raw(), cb.raw()));
    assert_eq!(ok(rt_vk_fence_wait(fence.raw(), NIL)).as_bool(), Some(true));
    let frames = 8;
    let t = std::time::Instant::now();
    for k in 0..frames {
        let opts = if k % 2 == 0 {
            dict(&[("image", img)])
        } else {
            let c = Value::array(4);
            for x in [0.0, k as f64 / frames as f64, 1.0, 1.0] {
                c.push(Value::float(x));
            }
            dict(&[("clear_color", c)])
        };
        let r = ok(rt_vk_present(q.raw(), sc.raw(), opts));
        let i = r.get("index").as_int().unwrap();
        assert!((0..n_images).contains(&i), "image index {i}");
    }
    println!("{frames} frames presented in {:?}", t.elapsed());
    assert_eq!(ok(rt_vk_swapchain_info_get(sc.raw())).get("presented").as_int(), Some(frames));
    // Parents refuse to go while their children are open.
    assert_eq!(err(rt_vk_window_destroy(win.raw())).0, Code::Busy);
    assert_eq!(err(rt_vk_surface_destroy(surf.raw())).0, Code::Busy);
    ok(rt_vk_swapchain_destroy(sc.raw()));
    assert_eq!(err(rt_vk_present(q.raw(), sc.raw(), NIL)).0, Code::Closed);
    ok(rt_vk_surface_destroy(surf.raw()));
    ok(rt_vk_window_destroy(win.raw()));
    assert_eq!(err(rt_vk_window_info_get(win.raw())).0, Code::Closed);
    if validated {
        let n = assert_no_validation_errors(inst, "window + present");
        println!("validation layer on: {n} message(s), no errors");
    }
    for h in [fence, cb, pool, pipe, img, q, dev, inst] {
        close(h.raw());
    }
}
