//! Codegen costs, ratios in one run: compile time through the library vs Cranelift called
//! directly on the same CLIF; call overhead of rt_cranelift_jit_execute and of the JIT
//! address called directly vs a plain function pointer; JIT'd fib(30) vs C at -O0/-O2.
//! `cargo bench -p ffi_codegen`. Prints a table; nothing is asserted.

use cranelift_codegen::settings::{self, Configurable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module};
use ffi_codegen::builder::rt_cranelift_finalize_module;
use ffi_codegen::module::*;
use ffi_sdk::testing::{ok, text, NIL};
use ffi_sdk::{bench, Root, Value};
use std::hint::black_box;
use std::time::Instant;

const N: usize = 300;

fn clif(i: usize) -> String {
    format!(
        "function %f{i}(i64, i64) -> i64 {{\nblock0(v0: i64, v1: i64):\n  v2 = iconst.i64 0\n  jump block1(v0, v2)\nblock1(v3: i64, v4: i64):\n  brif v3, block2, block3(v4)\nblock2:\n  v5 = imul v3, v1\n  v6 = iadd v4, v5\n  v7 = iconst.i64 1\n  v8 = isub v3, v7\n  jump block1(v8, v6)\nblock3(v9: i64):\n  return v9\n}}\n"
    )
}

const FIB: &str = "function %fib(i64) -> i64 {\n    fn0 = %fib(i64) -> i64\nblock0(v0: i64):\n    v7 = iconst.i64 2\n    v1 = icmp ult v0, v7\n    brif v1, block1, block2\nblock1:\n    return v0\nblock2:\n    v8 = iconst.i64 1\n    v2 = isub v0, v8\n    v3 = call fn0(v2)\n    v4 = isub v0, v7\n    v5 = call fn0(v4)\n    v6 = iadd v3, v5\n    return v6\n}\n";

#[inline(never)]
extern "C" fn plain(x: i64) -> i64 {
    x + 1
}

fn main() {
    let srcs: Vec<String> = (0..N).map(clif).collect();
    // Compile: library (parse + verify + compile) vs direct (parse + compile with the verifier on, Cranelift's default).
    let mut lib_s = f64::MAX;
    let mut dir_s = f64::MAX;
    for _ in 0..5 {
        let m = ok(rt_cranelift_init(NIL));
        let r = Root::new(m);
        let roots: Vec<Root> = srcs.iter().map(|s| Root::new(Value::text(s))).collect();
        let t = Instant::now();
        for s in &roots {
            ok(rt_cranelift_compile_fn(r.get().raw(), s.get().raw()));
        }
        ok(rt_cranelift_finalize_module(r.get().raw()));
        lib_s = lib_s.min(t.elapsed().as_secs_f64());
        ffi_sdk::testing::close(m.raw());

        let mut sb = settings::builder();
        sb.set("opt_level", "speed").unwrap();
        sb.set("is_pic", "false").unwrap();
        let isa = cranelift_native::builder().unwrap().finish(settings::Flags::new(sb)).unwrap();
        let mut jm = JITModule::new(JITBuilder::with_isa(isa, cranelift_module::default_libcall_names()));
        let mut ctx = jm.make_context();
        let t = Instant::now();
        for s in &srcs {
            for f in cranelift_reader::parse_functions(s).unwrap() {
                let name = f.name.to_string();
                let id = jm.declare_function(&name[1..], Linkage::Export, &f.signature).unwrap();
                ctx.func = f;
                jm.define_function(id, &mut ctx).unwrap();
                jm.clear_context(&mut ctx);
            }
        }
        jm.finalize_definitions().unwrap();
        dir_s = dir_s.min(t.elapsed().as_secs_f64());
        // SAFETY: no pointer into `jm`'s code was ever taken (nothing was looked up or called)
        // and `jm` is consumed here, so freeing its code memory leaves nothing dangling.
        unsafe { jm.free_memory() };
    }
    println!("compile per function: library {:.1} us, Cranelift direct {:.1} us, ratio {:.2}x", lib_s / N as f64 * 1e6, dir_s / N as f64 * 1e6, lib_s / dir_s);

    // Call overhead.
    let m = ok(rt_cranelift_init(NIL));
    let mr = Root::new(m);
    ok(rt_cranelift_compile_fn(m.raw(), text("function %inc(i64) -> i64 {\nblock0(v0: i64):\n  v1 = iconst.i64 1\n  v2 = iadd v0, v1\n  return v2\n}\n")));
    ok(rt_cranelift_compile_fn(m.raw(), text(FIB)));
    let name = Root::new(Value::text("inc"));
    let args = Value::array(1);
    args.push(Value::int(41));
    let args = Root::new(args);
    let addr = ok(rt_cranelift_function_address(m.raw(), text("inc"))).as_int().unwrap() as usize;
    // SAFETY: `inc` was compiled from CLIF `(i64) -> i64` with the host's default (SysV) call
    // convention, so its address is an `extern "C" fn(i64) -> i64`; the module stays alive
    // (rooted by `mr`, never closed) for every call below.
    let jf: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(addr) };
    let pf: extern "C" fn(i64) -> i64 = black_box(plain);
    const C: usize = 200_000;
    let d = bench::race(15, C, &mut [
        &mut || { black_box(rt_cranelift_jit_execute(mr.get().raw(), name.get().raw(), args.get().raw())); },
        &mut || { black_box(jf(black_box(41))); },
        &mut || { black_box(pf(black_box(41))); },
    ]);
    let (ex, ja, pl) = (bench::per_op(d[0], C) * 1e9, bench::per_op(d[1], C) * 1e9, bench::per_op(d[2], C) * 1e9);
    println!("call: rt_cranelift_jit_execute {ex:.1} ns, JIT address direct {ja:.2} ns, plain fn pointer {pl:.2} ns, ratio {:.2}x", ja / pl);

    // fib(30): JIT vs C.
    let fa = ok(rt_cranelift_function_address(m.raw(), text("fib"))).as_int().unwrap() as usize;
    // SAFETY: `fib` is CLIF `(i64) -> i64` in the default call convention, and its module is
    // still rooted by `mr` and open while `fib` is called.
    let fib: extern "C" fn(i64) -> i64 = unsafe { std::mem::transmute(fa) };
    let t = Instant::now();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        assert_eq!(fib(black_box(30)), 832040);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    let _ = t;
    let dir = std::env::temp_dir().join(format!("cg_bench_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fib.c"), "#include <stdio.h>\n#include <time.h>\nlong fib(long n){return n<2?n:fib(n-1)+fib(n-2);}\nint main(){double b=1e9;for(int i=0;i<5;i++){struct timespec a,c;clock_gettime(CLOCK_MONOTONIC,&a);volatile long r=fib(30);clock_gettime(CLOCK_MONOTONIC,&c);double s=(c.tv_sec-a.tv_sec)+(c.tv_nsec-a.tv_nsec)*1e-9;if(s<b)b=s;(void)r;}printf(\"%f\\n\",b);}\n").unwrap();
    let mut c_times = Vec::new();
    for o in ["-O0", "-O2"] {
        let st = std::process::Command::new("cc").current_dir(&dir).args([o, "fib.c", "-o", "fib"]).status().unwrap();
        assert!(st.success());
        let out = std::process::Command::new(dir.join("fib")).output().unwrap();
        c_times.push(String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().unwrap());
    }
    std::fs::remove_dir_all(&dir).ok();
    println!(
        "fib(30): JIT {:.1} ms, C -O0 {:.1} ms ({:.2}x), C -O2 {:.1} ms ({:.2}x)",
        best * 1e3,
        c_times[0] * 1e3,
        best / c_times[0],
        c_times[1] * 1e3,
        best / c_times[1]
    );
}
