//! A C host (C11, written from the generated header) that runs C callbacks
//! on library threads: rt_parallel_map and rt_thread_spawn with a callback
//! from rt_callback_new, Errors from the callback, the release function,
//! and two host pthreads mapping at once while collections are forced.
//!
//! Needs the libraries built first (`cargo build` at the workspace root):
//! libffi_core.so and libffi_concurrent.so in target/debug.

const HOST_C: &str = r#"
#include "simple_rt.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(c, what) do { if (!(c)) { printf("FAIL %s (line %d)\n", what, __LINE__); exit(1); } } while (0)

static atomic_long calls;
static atomic_int released;

/* x -> x * x + offset, counting calls; an Error for -7. */
static RtValue square(void *user_data, RtValue arg) {
    int64_t offset = *(const int64_t *)user_data;
    int64_t x = rt_int_get(arg);
    atomic_fetch_add(&calls, 1);
    if (x == -7) {
        const char *m = "seven is out";
        return rt_error_new(RT_ERR_INVALID_ARGUMENT, rt_string_new((const uint8_t *)m, strlen(m)));
    }
    return rt_int_new(x * x + offset);
}

static RtValue pair(void *user_data, RtValue a, RtValue b) {
    (void)user_data;
    RtValue arr = rt_array_new(2);
    rt_array_push(arr, a);
    rt_array_push(arr, b);
    return arr;
}

static void on_release(void *user_data) {
    (void)user_data;
    atomic_fetch_add(&released, 1);
}

static RtValue ints(int64_t n) {
    RtValue a = rt_array_new((size_t)n);
    for (int64_t i = 0; i < n; i++) rt_array_push(a, rt_int_new(i));
    return a;
}

static int64_t offset = 1;

static void *host_thread(void *p) {
    RtValue cb = *(RtValue *)p;
    for (int round = 0; round < 20; round++) {
        RtValue out = rt_parallel_map(cb, ints(1000), RT_NIL);
        CHECK(rt_error_code(out) == 0, "map from a host thread");
        for (int64_t i = 0; i < 1000; i++) CHECK(rt_int_get(rt_array_get(out, (size_t)i)) == i * i + 1, "value");
    }
    return NULL;
}

int main(void) {
    RtValue cb = rt_callback_new(rt_callback_fn1(square), &offset);
    CHECK(rt_kind(cb) == RT_KIND_HANDLE, "rt_callback_new gives a handle");
    rt_value_pin(cb); /* kept in a static-free local, but pthreads read it through a pointer */

    RtValue out = rt_parallel_map(cb, ints(10000), RT_NIL);
    CHECK(rt_error_code(out) == 0, "parallel map");
    CHECK(rt_array_len(out) == 10000, "length");
    for (int64_t i = 0; i < 10000; i++) CHECK(rt_int_get(rt_array_get(out, (size_t)i)) == i * i + 1, "order");
    CHECK(atomic_load(&calls) == 10000, "one call per item");
    printf("ok parallel map of a C callback (10000 items)\n");

    RtValue bad = ints(20);
    rt_array_set(bad, 9, rt_int_new(-7));
    RtValue e = rt_parallel_map(cb, bad, RT_NIL);
    CHECK(rt_error_code(e) == RT_ERR_INVALID_ARGUMENT, "the callback's Error code");
    RtValue m = rt_error_message(e);
    const char *msg = (const char *)rt_string_ptr(m);
    CHECK(strstr(msg, "rt_parallel_map: element 9 failed: seven is out") != NULL, msg);
    printf("ok callback Error propagates with its index: %s\n", msg);

    RtValue t = rt_thread_spawn(cb, rt_int_new(12), RT_NIL);
    CHECK(rt_kind(t) == RT_KIND_HANDLE, "spawn");
    RtValue r = rt_thread_join(t, RT_NIL);
    CHECK(rt_int_get(r) == 145, "join result");
    RtValue cb2 = rt_callback_new2(rt_callback_fn2(pair), NULL);
    RtValue t2 = rt_thread_spawn_isolated2(cb2, rt_int_new(1), rt_int_new(2));
    RtValue r2 = rt_thread_join(t2, RT_NIL);
    CHECK(rt_array_len(r2) == 2 && rt_int_get(rt_array_get(r2, 1)) == 2, "two-argument callback");
    printf("ok threads run C callbacks\n");

    pthread_t th[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, host_thread, &cb) == 0, "pthread_create");
    for (int i = 0; i < 10; i++) rt_gc_collect();
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    printf("ok two host threads map at once under forced collections\n");

    RtValue cb3 = rt_callback_new(rt_callback_fn1(square), &offset);
    CHECK(rt_error_code(rt_callback_on_release(cb3, rt_callback_release_fn(on_release))) == 0, "on_release");
    CHECK(rt_error_code(rt_callback_on_release(cb3, rt_callback_release_fn(on_release))) == RT_ERR_INVALID_ARGUMENT, "set twice");
    rt_handle_close(cb3);
    CHECK(atomic_load(&released) == 1, "released once on close");
    CHECK(rt_error_code(rt_parallel_map(cb3, ints(2), RT_NIL)) == RT_ERR_CLOSED, "closed callback");
    CHECK(rt_error_code(rt_callback_new(NULL, NULL)) == RT_ERR_INVALID_ARGUMENT, "NULL func");
    printf("ok release function and bad input\n");
    rt_value_unpin(cb);
    printf("ALL OK\n");
    return 0;
}
"#;

#[test]
fn c_host_runs_callbacks_on_library_threads() {
    let stdout = rt_tests::run_c_host("concurrent", HOST_C, &["core", "concurrent"], &["-pthread"]);
    for line in [
        "ok parallel map of a C callback",
        "ok callback Error propagates with its index: rt_parallel_map: element 9 failed: seven is out",
        "ok threads run C callbacks",
        "ok two host threads map at once",
        "ok release function and bad input",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
}
