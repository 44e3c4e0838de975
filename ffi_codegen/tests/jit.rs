//! JIT, AOT, the builder API and bad input, through the exports.

use ffi_codegen::builder::*;
use ffi_codegen::module::*;
use ffi_sdk::testing::{close, dict, err, int, ok, text, NIL};
use ffi_sdk::{Code, Value};

fn jit() -> Value {
    ok(rt_cranelift_init(NIL))
}
fn arr(items: &[Value]) -> u64 {
    let a = Value::array(items.len());
    for i in items {
        a.push(*i);
    }
    a.raw()
}
fn run(m: Value, name: &str, args: &[Value]) -> u64 {
    rt_cranelift_jit_execute(m.raw(), text(name), arr(args))
}

const FIB: &str = "
function %fib(i64) -> i64 {
block0(v0: i64):
    v7 = iconst.i64 2
    v1 = icmp ult v0, v7
    brif v1, block1, block2
block1:
    return v0
block2:
    v8 = iconst.i64 1
    v2 = isub v0, v8
    v3 = call fn0(v2)
    v4 = isub v0, v7
    v5 = call fn0(v4)
    v6 = iadd v3, v5
    return v6
}
";

#[test]
fn fib_loops_floats_and_calls() {
    let m = jit();
    let src = format!(
        "{FIB}
function %fibr(i64) -> i64 {{
    fn0 = %fib(i64) -> i64
block0(v0: i64):
    v1 = call fn0(v0)
    return v1
}}
function %sum(i64) -> i64 {{
block0(v0: i64):
    v1 = iconst.i64 0
    jump block1(v0, v1)
block1(v2: i64, v3: i64):
    brif v2, block2, block3(v3)
block2:
    v4 = iadd v3, v2
    v7 = iconst.i64 1
    v5 = isub v2, v7
    jump block1(v5, v4)
block3(v6: i64):
    return v6
}}
function %hyp(f64, f64) -> f64 {{
block0(v0: f64, v1: f64):
    v2 = fmul v0, v0
    v3 = fmul v1, v1
    v4 = fadd v2, v3
    v5 = sqrt v4
    return v5
}}
function %pair(i32, i8) -> i32, i8 {{
block0(v0: i32, v1: i8):
    return v0, v1
}}"
    );
    // fib refers to itself as fn0 = %fib: declare it.
    let src = src.replacen("function %fib(i64) -> i64 {\n", "function %fib(i64) -> i64 {\n    fn0 = %fib(i64) -> i64\n", 1);
    let names = ok(rt_cranelift_compile_fn(m.raw(), text(&src)));
    assert_eq!(names.len(), 5);
    assert_eq!(ok(run(m, "fib", &[Value::int(20)])).as_int(), Some(6765));
    assert_eq!(ok(run(m, "fibr", &[Value::int(10)])).as_int(), Some(55));
    assert_eq!(ok(run(m, "sum", &[Value::int(100_000)])).as_int(), Some(5_000_050_000));
    assert_eq!(ok(run(m, "hyp", &[Value::float(3.0), Value::float(4.0)])).as_float(), Some(5.0));
    let p = ok(run(m, "pair", &[Value::int(-7), Value::int(255)]));
    assert_eq!((p.at(0).as_int(), p.at(1).as_int()), (Some(-7), Some(-1)));
    // Direct address: callable as a C function pointer.
    let a = ok(rt_cranelift_function_address(m.raw(), text("fib"))).as_int().unwrap();
    // SAFETY: `fib` is CLIF `(i64) -> i64` in the host's default call convention, so the
    // address is that C function; `m` is open (closed only after the last call of `f`).
    let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(a as usize) };
    assert_eq!(f(25), 75025);
    close(m.raw());
}

#[test]
fn imports_an_rt_function() {
    // ffi_codegen itself is loaded: JIT code calls rt_target_triple and rt_cranelift_* via the registry;
    // here it calls rt_target_triple (arity 0) and returns its word.
    let m = ok(rt_cranelift_init(dict(&[("symbols", Value::text_array(["rt_target_triple"]))])));
    let src = "
function %t() -> i64 {
    fn0 = %rt_target_triple() -> i64
block0:
    v0 = call fn0()
    return v0
}";
    ok(rt_cranelift_compile_fn(m.raw(), text(src)));
    let addr = ok(rt_cranelift_function_address(m.raw(), text("t"))).as_int().unwrap();
    // SAFETY: `t` is CLIF `() -> i64` in the default call convention (the RtValue it returns
    // read as u64); `m` stays open while `f` is called.
    let f: extern "C" fn() -> u64 = unsafe { std::mem::transmute(addr as usize) };
    let v = Value::from_raw(f());
    assert_eq!(v.as_text(), Some(target_lexicon::Triple::host().to_string().as_str()));
    // Not declared in symbols: NotFound, and the module stays usable.
    let (c, msg) = err(rt_cranelift_compile_fn(m.raw(), text("function %u() -> i64 {\n fn0 = %getpid() -> i64\nblock0:\n v0 = call fn0()\n return v0\n}")));
    assert_eq!(c, Code::NotFound, "{msg}");
    close(m.raw());
}

#[test]
fn aot_object_links_and_runs() {
    let dir = std::env::temp_dir().join(format!("cg_aot_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = ok(rt_cranelift_init(dict(&[("kind", Value::text("object"))])));
    let src = FIB.replacen("function %fib(i64) -> i64 {\n", "function %fib(i64) -> i64 {\n    fn0 = %fib(i64) -> i64\n", 1);
    ok(rt_cranelift_compile_fn(m.raw(), text(&src)));
    let obj = dir.join("fib.o");
    assert_eq!(ok(rt_cranelift_emit_object(m.raw(), text(obj.to_str().unwrap()))).as_bool(), Some(true));
    let (c, _) = err(rt_cranelift_compile_fn(m.raw(), text(&src)));
    assert_eq!(c, Code::Closed);
    std::fs::write(dir.join("main.c"), "#include <stdio.h>\nlong fib(long);\nint main(void){printf(\"%ld\\n\", fib(30));return 0;}\n").unwrap();
    let st = std::process::Command::new("cc").current_dir(&dir).args(["main.c", "fib.o", "-o", "prog"]).status().unwrap();
    assert!(st.success());
    let out = std::process::Command::new(dir.join("prog")).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "832040");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input() {
    let m = jit();
    let (c, msg) = err(rt_cranelift_compile_fn(m.raw(), text("function %f() -> i64 {\nblock0:\n  v0 = iconst.i64 1\n  v1 = bogus v0\n  return v1\n}")));
    assert_eq!(c, Code::Parse, "{msg}");
    assert!(msg.contains("rt_cranelift_compile_fn") && msg.contains("line 4"), "{msg}");
    // Verifier: returns an i32 from an i64 function.
    let bad = "function %g() -> i64 {\nblock0:\n  v0 = iconst.i32 1\n  return v0\n}";
    let r = rt_cranelift_compile_fn(m.raw(), text(bad));
    let (c, msg) = err(r);
    assert_eq!(c, Code::Parse, "{msg}");
    assert!(msg.contains("verifier"), "{msg}");
    assert_eq!(ffi_sdk::testing::details(r).get("line").as_int(), Some(4));
    ok(rt_cranelift_compile_fn(m.raw(), text("function %id(i8) -> i8 {\nblock0(v0: i8):\n  return v0\n}")));
    assert_eq!(err(run(m, "nope", &[])).0, Code::NotFound);
    assert_eq!(err(run(m, "id", &[])).0, Code::InvalidArgument);
    assert_eq!(err(run(m, "id", &[Value::text("x")])).0, Code::TypeMismatch);
    assert_eq!(err(run(m, "id", &[Value::int(300)])).0, Code::OutOfRange);
    assert_eq!(ok(run(m, "id", &[Value::int(200)])).as_int(), Some(-56));
    assert_eq!(err(rt_cranelift_compile_fn(m.raw(), text("function %id(i8) -> i8 {\nblock0(v0: i8):\n  return v0\n}"))).0, Code::AlreadyExists);
    assert_eq!(err(rt_cranelift_init(dict(&[("kind", Value::text("wasm"))]))).0, Code::InvalidArgument);
    assert_eq!(err(rt_cranelift_init(dict(&[("flags", { let d = Value::dict(); d.set("no_such_flag", Value::TRUE); d })]))).0, Code::InvalidArgument);
    let (c, msg) = err(rt_cranelift_compile_fn(m.raw(), text("function %w(i128) -> i128 {\nblock0(v0: i128):\n  return v0\n}")));
    assert_eq!(c, Code::Unsupported, "{msg}");
    let m2 = ok(rt_cranelift_init(dict(&[("flags", { let d = Value::dict(); d.set("enable_llvm_abi_extensions", Value::TRUE); d })])));
    ok(rt_cranelift_compile_fn(m2.raw(), text("function %w(i128) -> i128 {\nblock0(v0: i128):\n  return v0\n}")));
    let (c, msg) = err(run(m2, "w", &[Value::int(1)]));
    assert_eq!(c, Code::Unsupported);
    assert!(msg.contains("i128"), "{msg}");
    assert_eq!(err(rt_cranelift_jit_execute(int(5), text("id"), arr(&[]))).0, Code::TypeMismatch);
    assert_eq!(err(rt_cranelift_emit_object(m.raw(), text("/tmp/x.o"))).0, Code::InvalidArgument);
    close(m.raw());
    assert_eq!(err(run(m, "id", &[Value::int(1)])).0, Code::Closed);
    assert_eq!(err(rt_cranelift_compile_fn(m.raw(), text(FIB))).0, Code::Closed);
}

fn rss_kib() -> i64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmRSS:")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn ten_thousand_functions() {
    let m = jit();
    let mut names = Vec::new();
    let compile = |from: usize, names: &mut Vec<String>| {
        for i in from..from + 5000 {
            let src = format!("function %f{i}(i64) -> i64 {{\nblock0(v0: i64):\n  v2 = iconst.i64 {i}\n  v1 = iadd v0, v2\n  return v1\n}}");
            names.push(format!("f{i}"));
            ok(rt_cranelift_compile_fn(m.raw(), text(&src)));
        }
        ok(rt_cranelift_finalize_module(m.raw()));
    };
    compile(0, &mut names);
    let after_first = rss_kib();
    compile(5000, &mut names);
    let grown = rss_kib() - after_first;
    assert_eq!(ok(run(m, "f9999", &[Value::int(1)])).as_int(), Some(10000));
    // The code itself is a few dozen bytes a function (in 4 KiB pages per finalize batch);
    // per-function bookkeeping stays small: 5,000 more functions grow RSS by < 20 MiB.
    println!("RSS growth for the second 5,000 functions: {grown} KiB");
    assert!(grown < 20 * 1024, "grew {grown} KiB");
    close(m.raw());
}

#[test]
fn builder_matches_runtests() {
    // fib through Simple's builder: the same result as the CLIF text above.
    let m = ok(rt_cranelift_new_module(text("b"), int(0)));
    let sig = ok(rt_cranelift_new_signature(int(0)));
    ok(rt_cranelift_sig_add_param(sig.raw(), int(4)));
    ok(rt_cranelift_sig_set_return(sig.raw(), int(4)));
    let fid = ok(rt_cranelift_declare_function(m.raw(), text("fib"), sig.raw(), int(0)));
    let ctx = ok(rt_cranelift_begin_function(m.raw(), text("fib"), sig.raw()));
    let c = ctx.raw();
    let i = |v: u64| ok(v).as_int().unwrap();
    let b0 = i(rt_cranelift_create_block(c));
    let b1 = i(rt_cranelift_create_block(c));
    let b2 = i(rt_cranelift_create_block(c));
    ok(rt_cranelift_append_func_params(c, int(b0)));
    ok(rt_cranelift_switch_to_block(c, int(b0)));
    let n = i(rt_cranelift_block_param(c, int(b0), int(0)));
    let two = i(rt_cranelift_iconst(c, int(4), int(2)));
    let lt = i(rt_cranelift_icmp(c, int(6), int(n), int(two)));
    ok(rt_cranelift_brif(c, int(lt), int(b1), int(b2)));
    ok(rt_cranelift_switch_to_block(c, int(b1)));
    ok(rt_cranelift_return(c, int(n)));
    ok(rt_cranelift_switch_to_block(c, int(b2)));
    let fr = i(rt_cranelift_import_function(c, fid.raw()));
    let one = i(rt_cranelift_iconst(c, int(4), int(1)));
    let a = i(rt_cranelift_isub(c, int(n), int(one)));
    ok(rt_cranelift_call_args_clear(c));
    ok(rt_cranelift_call_arg(c, int(a)));
    let r1 = i(rt_cranelift_call(c, int(fr), int(0), int(0)));
    let b = i(rt_cranelift_isub(c, int(n), int(two)));
    let r2 = i(rt_cranelift_call(c, int(fr), arr(&[Value::int(b)]), int(1)));
    let s = i(rt_cranelift_iadd(c, int(r1), int(r2)));
    ok(rt_cranelift_return(c, int(s)));
    // A terminated block takes no more instructions.
    assert_eq!(err(rt_cranelift_iadd(c, int(r1), int(r2))).0, Code::InvalidArgument);
    ok(rt_cranelift_seal_all_blocks(c));
    ok(rt_cranelift_end_function(c));
    assert_eq!(ok(rt_cranelift_define_function(m.raw(), fid.raw(), c)).as_bool(), Some(true));
    assert_eq!(ok(run(m, "fib", &[Value::int(20)])).as_int(), Some(6765));
    let p = ok(rt_cranelift_get_function_ptr(m.raw(), text("fib"))).as_int().unwrap();
    // SAFETY: the built `fib` has signature `(i64) -> i64` in the default call convention;
    // `m` stays open for the call below.
    let f: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(p as usize) };
    assert_eq!(f(15), 610);

    // Float conversions and a stack slot (as runtests/fcvt-like checks): (f64)(i32 x) * 0.5 via memory.
    let sig2 = ok(rt_cranelift_new_signature(int(0)));
    ok(rt_cranelift_sig_add_param(sig2.raw(), int(3)));
    ok(rt_cranelift_sig_set_return(sig2.raw(), int(6)));
    let c2 = ok(rt_cranelift_begin_function(m.raw(), text("half"), sig2.raw())).raw();
    let e = i(rt_cranelift_create_block(c2));
    ok(rt_cranelift_append_func_params(c2, int(e)));
    ok(rt_cranelift_switch_to_block(c2, int(e)));
    let x = i(rt_cranelift_block_param(c2, int(e), int(0)));
    let xf = i(rt_cranelift_fcvt_from_sint(c2, int(6), int(x)));
    let slot = i(rt_cranelift_stack_slot(c2, int(8), int(8)));
    let addr = i(rt_cranelift_stack_addr(c2, int(slot), int(0)));
    ok(rt_cranelift_store(c2, int(xf), int(addr), int(0)));
    let back = i(rt_cranelift_load(c2, int(6), int(addr), int(0)));
    let h = i(rt_cranelift_fconst(c2, int(6), Value::float(0.5).raw()));
    let r = i(rt_cranelift_fmul(c2, int(back), int(h)));
    assert_eq!(err(rt_cranelift_iadd(c2, int(back), int(h))).0, Code::InvalidArgument);
    ok(rt_cranelift_return(c2, int(r)));
    ok(rt_cranelift_end_function(c2));
    ok(rt_cranelift_define_function(m.raw(), NIL, c2));
    assert_eq!(ok(run(m, "half", &[Value::int(-7)])).as_float(), Some(-3.5));
    // Bad ids are errors, never a panic.
    assert_eq!(err(rt_cranelift_iconst(c2, int(99), int(1))).0, Code::InvalidArgument);
    assert_eq!(err(rt_cranelift_switch_to_block(c2, int(1000))).0, Code::InvalidArgument);
    let c3 = ok(rt_cranelift_begin_function(m.raw(), text("bad"), sig2.raw())).raw();
    assert_eq!(err(rt_cranelift_iconst(c3, int(4), int(1))).0, Code::InvalidArgument);
    let e3 = i(rt_cranelift_create_block(c3));
    ok(rt_cranelift_switch_to_block(c3, int(e3)));
    ok(rt_cranelift_return_void(c3));
    assert_eq!(err(rt_cranelift_define_function(m.raw(), NIL, c3)).0, Code::Parse);
    ok(rt_cranelift_free_module(m.raw()));
    assert_eq!(err(run(m, "fib", &[Value::int(1)])).0, Code::Closed);
}
