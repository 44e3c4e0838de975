//! Capabilities: codegen.jit gates JIT modules and running code; emit_object needs fs.write.

use ffi_codegen::module::*;
use ffi_sdk::testing::{dict, err, in_child, ok, restrict, text, NIL};
use ffi_sdk::{Code, Value};

#[test]
fn jit_denied() {
    in_child("jit_denied", || {
        let m = ok(rt_cranelift_init(NIL));
        ok(rt_cranelift_compile_fn(m.raw(), text("function %one() -> i64 {\nblock0:\n  v0 = iconst.i64 1\n  return v0\n}")));
        restrict("codegen.jit=false;*=true");
        assert_eq!(err(rt_cranelift_init(NIL)).0, Code::CapabilityDenied);
        assert_eq!(err(rt_cranelift_jit_execute(m.raw(), text("one"), Value::array(0).raw())).0, Code::CapabilityDenied);
        assert_eq!(err(rt_cranelift_function_address(m.raw(), text("one"))).0, Code::CapabilityDenied);
        // Object modules need no codegen.jit.
        ok(rt_cranelift_init(dict(&[("kind", Value::text("object"))])));
    });
}

#[test]
fn emit_outside_scope_denied() {
    in_child("emit_outside_scope_denied", || {
        let dir = std::env::temp_dir().join(format!("cg_cap_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        restrict(&format!("fs.write={};*=true", dir.display()));
        let m = ok(rt_cranelift_init(dict(&[("kind", Value::text("object"))])));
        ok(rt_cranelift_compile_fn(m.raw(), text("function %one() -> i64 {\nblock0:\n  v0 = iconst.i64 1\n  return v0\n}")));
        assert_eq!(err(rt_cranelift_emit_object(m.raw(), text("/tmp/outside_scope_cg.o"))).0, Code::CapabilityDenied);
        let inside = dir.join("one.o");
        ok(rt_cranelift_emit_object(m.raw(), text(inside.to_str().unwrap())));
        assert!(std::fs::metadata(&inside).unwrap().len() > 0);
        std::fs::remove_dir_all(&dir).ok();
    });
}
