//! Shared by the Vulkan tests: an instance (validation layer on where it is
//! installed), SPIR-V from GLSL through glslangValidator, and the check
//! that the validation layer reported no errors.
#![allow(dead_code)]

use ffi_sdk::testing::{dict, ok, NIL};
use ffi_sdk::{Code, Value};
use ffi_vulkan::vk::*;
use std::path::PathBuf;
use std::process::Command;

pub fn require() -> bool {
    std::env::var("RT_REQUIRE_VULKAN").as_deref() == Ok("1")
}

/// An instance with at least one physical device, or None (skip, reason
/// printed). The validation layer is on where it is installed (Debian
/// vulkan-validationlayers); the second value says whether it is.
pub fn instance() -> Option<(Value, bool)> {
    let mut validated = true;
    let mut i = Value::from_raw(rt_vk_instance_create(dict(&[("validation", Value::bool(true))])));
    if let Some((Code::Unsupported, m)) = i.error() {
        if m.contains("VK_LAYER_KHRONOS_validation") {
            eprintln!("note: {m}: running without validation");
            validated = false;
            i = Value::from_raw(rt_vk_instance_create(NIL));
        }
    }
    if let Some((_, m)) = i.error() {
        assert!(!require(), "RT_REQUIRE_VULKAN=1 but: {m}");
        eprintln!("skipped: no Vulkan instance ({m}); install mesa-vulkan-drivers libvulkan1 for lavapipe");
        return None;
    }
    let pds = ok(rt_vk_physical_devices(i.raw()));
    if pds.is_empty() {
        assert!(!require(), "RT_REQUIRE_VULKAN=1 but the loader lists no physical device");
        eprintln!("skipped: the Vulkan loader lists no physical device; install mesa-vulkan-drivers for lavapipe");
        return None;
    }
    Some((i, validated))
}

/// Drains the instance's messages, prints them, and fails on any error.
/// Returns how many messages there were.
pub fn assert_no_validation_errors(inst: Value, what: &str) -> usize {
    let msgs = ok(rt_vk_instance_messages_drain(inst.raw()));
    let mut errors = 0;
    for m in msgs.items() {
        let sev = m.get("severity").as_text().unwrap_or("").to_string();
        println!("{what}: validation {sev}: {} {}", m.get("id").describe(), m.get("message").describe());
        if sev == "error" {
            errors += 1;
        }
    }
    assert_eq!(errors, 0, "{what}: the validation layer reported {errors} error(s) (printed above)");
    msgs.len()
}

/// SPIR-V compiled from GLSL by glslangValidator (glslang-tools), or None
/// (skip). `name` ends in the stage's extension (.comp, .vert, .frag).
pub fn spirv(name: &str, src: &str) -> Option<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (g, s) = (dir.join(name), dir.join(format!("{name}.spv")));
    std::fs::write(&g, src).unwrap();
    match Command::new("glslangValidator").arg("-V").arg(&g).arg("-o").arg(&s).output() {
        Ok(o) if o.status.success() => Some(std::fs::read(&s).unwrap()),
        Ok(o) => panic!("glslangValidator failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)),
        Err(e) => {
            assert!(!require(), "RT_REQUIRE_VULKAN=1 but glslangValidator cannot run: {e}");
            eprintln!("skipped: glslangValidator not found ({e}); install glslang-tools");
            None
        }
    }
}

pub fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn arr(items: &[Value]) -> u64 {
    let a = Value::array(items.len());
    for i in items {
        a.push(*i);
    }
    a.raw()
}
