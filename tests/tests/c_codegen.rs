//! A C host (C11, written from the generated header) that uses ffi_codegen
//! the way a compiler would: CLIF text in, the JIT'd function's address out,
//! called directly through a C function pointer; the same function through
//! rt_cranelift_jit_execute; bad input and use after close as Error codes.
//!
//! Needs the libraries built first (`cargo build` at the workspace root).

const HOST_C: &str = r#"
#include "simple_rt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c, what) do { if (!(c)) { printf("FAIL %s (line %d)\n", what, __LINE__); exit(1); } } while (0)

static RtValue text(const char *s) { return rt_string_new((const uint8_t *)s, strlen(s)); }

static const char *CLIF =
    "function %add(i64, i64) -> i64 {\n"
    "block0(v0: i64, v1: i64):\n"
    "    v2 = iadd v0, v1\n"
    "    return v2\n"
    "}\n"
    "function %sum_to(i64) -> i64 {\n"
    "block0(v0: i64):\n"
    "    v1 = iconst.i64 0\n"
    "    v7 = iconst.i64 1\n"
    "    jump block1(v0, v1)\n"
    "block1(v2: i64, v3: i64):\n"
    "    v4 = iadd v3, v2\n"
    "    v5 = isub v2, v7\n"
    "    brif v5, block1(v5, v4), block2(v4)\n"
    "block2(v6: i64):\n"
    "    return v6\n"
    "}\n";

typedef int64_t (*add_fn)(int64_t, int64_t);
typedef int64_t (*sum_fn)(int64_t);

int main(void) {
    RtValue m = rt_cranelift_init(RT_NIL);
    CHECK(rt_kind(m) == RT_KIND_HANDLE, "rt_cranelift_init gives a module handle");
    rt_value_pin(m);
    RtValue names = rt_cranelift_compile_fn(m, text(CLIF));
    if (rt_error_code(names) != 0) printf("%s\n", (const char *)rt_string_ptr(rt_error_message(names)));
    CHECK(rt_error_code(names) == 0 && rt_array_len(names) == 2, "two functions compiled");

    RtValue a = rt_cranelift_function_address(m, text("add"));
    CHECK(rt_error_code(a) == 0 && rt_kind(a) == RT_KIND_INT, "address of add");
    add_fn add = (add_fn)(uintptr_t)rt_int_get(a);
    CHECK(add(40, 2) == 42 && add(-5, 3) == -2, "add called through a C function pointer");
    RtValue s = rt_cranelift_function_address(m, text("sum_to"));
    sum_fn sum_to = (sum_fn)(uintptr_t)rt_int_get(s);
    CHECK(sum_to(100000) == (int64_t)100000 * 100001 / 2, "a loop called directly");
    printf("ok JIT addresses called from C\n");

    RtValue args = rt_array_new(2);
    rt_array_push(args, rt_int_new(40));
    rt_array_push(args, rt_int_new(2));
    RtValue r = rt_cranelift_jit_execute(m, text("add"), args);
    CHECK(rt_int_get(r) == 42, "rt_cranelift_jit_execute");
    RtValue one = rt_array_new(1);
    rt_array_push(one, rt_int_new(1));
    CHECK(rt_error_code(rt_cranelift_jit_execute(m, text("add"), one)) == RT_ERR_INVALID_ARGUMENT, "wrong argument count");
    CHECK(rt_error_code(rt_cranelift_jit_execute(m, text("nope"), args)) == RT_ERR_NOT_FOUND, "unknown function");
    CHECK(rt_error_code(rt_cranelift_compile_fn(m, text("function %bad(i64) {"))) == RT_ERR_PARSE, "malformed CLIF");
    printf("ok execute and bad input\n");

    rt_handle_close(m);
    CHECK(rt_error_code(rt_cranelift_function_address(m, text("add"))) == RT_ERR_CLOSED, "address after close");
    CHECK(rt_error_code(rt_cranelift_jit_execute(m, text("add"), args)) == RT_ERR_CLOSED, "execute after close");
    rt_value_unpin(m);
    printf("ok use after close\nALL OK\n");
    return 0;
}
"#;

#[test]
fn c_host_calls_jit_code_directly() {
    let out = rt_tests::run_c_host("codegen", HOST_C, &["core", "codegen"], &[]);
    for line in ["ok JIT addresses called from C", "ok execute and bad input", "ok use after close"] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
}
