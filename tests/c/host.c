/* A C host written only from include/simple_rt.h and SPEC.md.
 *
 * Build (tests/tests/c_host.rs does this):
 *   gcc -std=c99 -Wall -Wextra -Werror -pedantic tests/c/host.c -I include \
 *       -L target/debug -lffi_core -lffi_system -Wl,-rpath,target/debug
 *
 * Prints one "ok ..." line per check and facts for the Rust test to compare
 * with the system ("hostname=...", "cpus=..."), then "ALL OK". On the first
 * failed check it prints "FAIL file:line: expr" and exits 1.
 */
#include "simple_rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;

#define CHECK(e)                                                     \
    do {                                                             \
        if (!(e)) {                                                  \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #e);      \
            fflush(stdout);                                          \
            exit(1);                                                 \
        }                                                            \
        checks++;                                                    \
    } while (0)

static RtValue str(const char *s) { return rt_string_new((const uint8_t *)s, strlen(s)); }

/* Whether v is a string equal to s. */
static bool str_eq(RtValue v, const char *s) {
    size_t n = strlen(s);
    return rt_kind(v) == RT_KIND_STRING && rt_string_len(v) == n && memcmp(rt_string_ptr(v), s, n) == 0;
}

/* Prints a string value (which may hold NULs) up to its length. */
static void print_str(const char *label, RtValue v) {
    printf("%s=", label);
    fwrite(rt_string_ptr(v), 1, rt_string_len(v), stdout);
    printf("\n");
}

static void test_abi(void) {
    uint32_t v = rt_abi_version();
    CHECK(v >> 16 == RT_ABI_MAJOR);
    CHECK(RT_ABI_VERSION >> 16 == RT_ABI_MAJOR);
    printf("ok abi %u.%u\n", (unsigned)(v >> 16), (unsigned)(v & 0xFFFF));
}

static void test_specials(void) {
    CHECK(rt_kind(RT_NIL) == RT_KIND_NIL);
    CHECK(rt_kind(RT_TRUE) == RT_KIND_BOOL && rt_kind(RT_FALSE) == RT_KIND_BOOL);
    CHECK(rt_bool_new(true) == RT_TRUE && rt_bool_new(false) == RT_FALSE);
    CHECK(rt_v_make_bool(true) == RT_TRUE);
    CHECK(rt_v_is_nil(RT_NIL) && rt_v_is_bool(RT_FALSE) && rt_v_is_special(RT_TRUE));
    CHECK(rt_bool_get(RT_TRUE) && !rt_bool_get(RT_FALSE) && !rt_bool_get(RT_NIL));
    printf("ok specials\n");
}

static void test_ints(void) {
    /* Inline: the word layout of SPEC 2, readable with the header's helpers. */
    RtValue a = rt_int_new(42);
    CHECK(rt_v_is_inline_int(a) && a == (RtValue)42 << 3);
    CHECK(rt_v_int_inline(a) == 42 && rt_int_get(a) == 42);
    CHECK(rt_v_make_int(-7) == rt_int_new(-7) && rt_v_int_inline(rt_int_new(-7)) == -7);
    CHECK(rt_v_int_inline(rt_int_new(RT_INLINE_INT_MIN)) == RT_INLINE_INT_MIN);
    CHECK(rt_v_int_inline(rt_int_new(RT_INLINE_INT_MAX)) == RT_INLINE_INT_MAX);
    CHECK(rt_v_int_fits_inline(RT_INLINE_INT_MAX) && !rt_v_int_fits_inline(RT_INLINE_INT_MAX + 1));
    /* Boxed: beyond 61 bits, lossless. */
    {
        const int64_t big[] = {RT_INLINE_INT_MAX + 1, RT_INLINE_INT_MIN - 1, INT64_MAX, INT64_MIN,
                               (int64_t)1 << 62, -((int64_t)1 << 62) - 12345};
        size_t i;
        for (i = 0; i < sizeof big / sizeof big[0]; i++) {
            RtValue b = rt_int_new(big[i]);
            CHECK(rt_v_is_heap(b));
            CHECK(rt_kind(b) == RT_KIND_INT);
            CHECK(rt_int_get(b) == big[i]);
        }
    }
    CHECK(rt_int_get(str("7")) == 0); /* not an int: 0 */
    printf("ok ints (inline and boxed, INT64_MIN..INT64_MAX)\n");
}

static void test_floats(void) {
    RtValue f = rt_float_new(1.5); /* low 3 bits of 1.5 are 0: inline */
    CHECK(rt_v_is_inline_float(f) && rt_v_float_fits_inline(1.5));
    CHECK(rt_v_float_inline(f) == 1.5 && rt_float_get(f) == 1.5 && rt_kind(f) == RT_KIND_FLOAT);
    CHECK(rt_v_make_float(1.5) == f);
    {
        RtValue g = rt_float_new(0.1); /* 0.1 has low bits set: boxed, and exact */
        CHECK(!rt_v_float_fits_inline(0.1) && rt_v_is_heap(g));
        CHECK(rt_kind(g) == RT_KIND_FLOAT && rt_float_get(g) == 0.1);
        CHECK(rt_float_get(rt_float_new(-1e308)) == -1e308);
        CHECK(isinf(rt_float_get(rt_float_new(HUGE_VAL))));
        CHECK(isnan(rt_float_get(rt_float_new(nan("")))));
    }
    CHECK(isnan(rt_float_get(rt_int_new(1)))); /* not a float: NaN */
    printf("ok floats (inline and boxed)\n");
}

static void test_strings_bytes(void) {
    static const uint8_t with_nul[] = {'a', 0, 'b', 0xC3, 0xA9};
    RtValue s = rt_string_new(with_nul, sizeof with_nul);
    CHECK(rt_kind(s) == RT_KIND_STRING);
    CHECK(rt_string_len(s) == 5 && memcmp(rt_string_ptr(s), with_nul, 5) == 0);
    CHECK(rt_string_ptr(s)[5] == 0); /* trailing NUL kept for C */
    CHECK(rt_string_len(rt_string_new(NULL, 0)) == 0);
    {
        static const uint8_t bad[] = {'o', 'k', 0xFF, 0xFE};
        RtValue e = rt_string_new(bad, sizeof bad);
        CHECK(rt_kind(e) == RT_KIND_ERROR && rt_error_code(e) == RT_ERR_INVALID_ARGUMENT);
    }
    CHECK(rt_string_ptr(rt_int_new(1)) == NULL && rt_string_len(RT_NIL) == 0);
    {
        static const uint8_t raw[] = {0x00, 0xFF, 0x80, 0x0A};
        RtValue b = rt_bytes_new(raw, sizeof raw);
        CHECK(rt_kind(b) == RT_KIND_BYTES && rt_bytes_len(b) == 4 && memcmp(rt_bytes_ptr(b), raw, 4) == 0);
        CHECK(rt_bytes_ptr(s) == NULL);
    }
    printf("ok strings (interior NUL, UTF-8 checked) and bytes\n");
}

static void test_arrays_dicts(void) {
    RtValue a = rt_array_new(0);
    RtValue d = rt_dict_new();
    CHECK(rt_kind(a) == RT_KIND_ARRAY && rt_kind(d) == RT_KIND_DICT);
    CHECK(rt_array_push(a, rt_int_new(1)) == a);
    CHECK(rt_array_push(a, str("two")) == a);
    CHECK(rt_array_push(a, rt_float_new(3.25)) == a);
    CHECK(rt_array_len(a) == 3);
    CHECK(rt_int_get(rt_array_get(a, 0)) == 1 && str_eq(rt_array_get(a, 1), "two"));
    CHECK(rt_float_get(rt_array_get(a, 2)) == 3.25);
    CHECK(rt_error_code(rt_array_get(a, 3)) == RT_ERR_OUT_OF_RANGE);
    CHECK(rt_error_code(rt_array_push(d, RT_NIL)) == RT_ERR_TYPE_MISMATCH);

    CHECK(rt_dict_set(d, str("zeta"), rt_int_new(26)) == d);
    CHECK(rt_dict_set(d, str("alpha"), a) == d);
    CHECK(rt_dict_set(d, rt_int_new(5), str("five")) == d);
    CHECK(rt_dict_set(d, str("zeta"), rt_int_new(-26)) == d); /* keeps its position */
    CHECK(rt_dict_len(d) == 3);
    CHECK(str_eq(rt_dict_key_at(d, 0), "zeta") && str_eq(rt_dict_key_at(d, 1), "alpha"));
    CHECK(rt_int_get(rt_dict_key_at(d, 2)) == 5);
    CHECK(rt_int_get(rt_dict_get(d, str("zeta"))) == -26);
    CHECK(rt_dict_get(d, str("alpha")) == a);
    CHECK(str_eq(rt_dict_value_at(d, 2), "five"));
    CHECK(rt_dict_get(d, str("absent")) == RT_NIL);
    CHECK(rt_error_code(rt_dict_key_at(d, 3)) == RT_ERR_OUT_OF_RANGE);
    CHECK(rt_error_code(rt_dict_get(a, str("x"))) == RT_ERR_TYPE_MISMATCH);
    printf("ok arrays and dicts (insertion order)\n");
}

static void test_errors(void) {
    RtValue e = rt_error_new(RT_ERR_NOT_FOUND, str("my_host: no such thing (x)"));
    CHECK(rt_kind(e) == RT_KIND_ERROR && rt_error_code(e) == RT_ERR_NOT_FOUND);
    CHECK(strcmp(rt_error_name(RT_ERR_NOT_FOUND), "NotFound") == 0);
    CHECK(strcmp(rt_error_name(RT_ERR_CAPABILITY_DENIED), "CapabilityDenied") == 0);
    CHECK(str_eq(rt_error_message(e), "my_host: no such thing (x)"));
    CHECK(rt_error_code(rt_int_new(3)) == 0);
    CHECK(rt_error_code(rt_error_message(rt_int_new(3))) == RT_ERR_TYPE_MISMATCH);
    printf("ok errors (code, name, message)\n");
}

static void test_registry(void) {
    RtValue j = rt_registry_json();
    const char *p;
    CHECK(rt_kind(j) == RT_KIND_STRING);
    p = (const char *)rt_string_ptr(j);
    CHECK(p[0] == '[');
    CHECK(strstr(p, "\"name\":\"rt_hostname\"") != NULL);
    CHECK(strstr(p, "\"name\":\"rt_string_new\"") != NULL);
    CHECK(strstr(p, "\"domain\":\"system\"") != NULL);
    printf("ok registry json (%lu bytes)\n", (unsigned long)rt_string_len(j));
}

static void test_system_calls(void) {
    uint32_t arity = 99;
    void *p = rt_registry_lookup((const uint8_t *)"rt_cpu_count", 12, &arity);
    RtValue by_lookup, direct;
    CHECK(p != NULL && arity == 0);
    by_lookup = rt_as_fn0(p)();
    direct = rt_cpu_count();
    CHECK(rt_kind(by_lookup) == RT_KIND_INT && rt_int_get(by_lookup) >= 1);
    CHECK(rt_int_get(by_lookup) == rt_int_get(direct));
    printf("cpus=%lld\n", (long long)rt_int_get(direct));

    p = rt_registry_lookup((const uint8_t *)"rt_hostname", 11, &arity);
    CHECK(p != NULL && arity == 0);
    by_lookup = rt_as_fn0(p)();
    direct = rt_hostname();
    CHECK(rt_kind(direct) == RT_KIND_STRING && rt_string_len(direct) > 0);
    CHECK(rt_string_len(by_lookup) == rt_string_len(direct));
    CHECK(memcmp(rt_string_ptr(by_lookup), rt_string_ptr(direct), rt_string_len(direct)) == 0);
    print_str("hostname", direct);

    CHECK(rt_int_get(rt_memory_total()) > 0);
    CHECK(str_eq(rt_os_name(), "linux"));

    /* A one-argument domain function through the arity-chosen pointer. */
    p = rt_registry_lookup((const uint8_t *)"rt_value_equal", 14, &arity);
    CHECK(p != NULL && arity == 2);
    CHECK(rt_as_fn2(p)(str("same"), str("same")) == RT_TRUE);
    CHECK(rt_as_fn2(p)(str("same"), str("other")) == RT_FALSE);

    arity = 77;
    CHECK(rt_registry_lookup((const uint8_t *)"rt_no_such_function", 19, &arity) == NULL && arity == 77);
    printf("ok ffi_system by registry lookup and by direct link\n");
}

/* Hides a word from the conservative scanner (it sees neither this nor the stack copy). */
static uint64_t hidden[2];
#define HIDE_MASK UINT64_C(0x5A5A5A5A5A5A5A5A)

static int64_t stat_of(const char *key) {
    RtValue s = rt_gc_stats();
    RtValue v = rt_dict_get(s, str(key));
    CHECK(rt_kind(v) == RT_KIND_INT);
    return rt_int_get(v);
}

static void test_pins_and_gc(void) {
    int i;
    int64_t before = stat_of("collections");
    int64_t heap_limit;
    {
        RtValue s = str("pinned survives collections");
        RtValue arr = rt_array_new(1);
        rt_array_push(arr, str("inside a pinned array"));
        rt_value_pin(s);
        rt_value_pin(s); /* counted */
        rt_value_pin(arr);
        CHECK(rt_value_pin_count(s) == 2 && rt_value_pin_count(arr) == 1);
        rt_value_pin(rt_int_new(5)); /* no-op on immediates */
        CHECK(rt_value_pin_count(rt_int_new(5)) == 0);
        hidden[0] = s ^ HIDE_MASK;
        hidden[1] = arr ^ HIDE_MASK;
    }
    /* Churn: garbage and forced collections while only the pins hold s and arr. */
    for (i = 0; i < 20; i++) {
        int k;
        for (k = 0; k < 2000; k++) {
            RtValue g = rt_array_new(4);
            rt_array_push(g, str("garbage garbage garbage garbage"));
        }
        rt_gc_collect();
    }
    {
        RtValue s = hidden[0] ^ HIDE_MASK;
        RtValue arr = hidden[1] ^ HIDE_MASK;
        CHECK(str_eq(s, "pinned survives collections"));
        CHECK(str_eq(rt_array_get(arr, 0), "inside a pinned array"));
        rt_value_unpin(s);
        CHECK(rt_value_pin_count(s) == 1);
        rt_value_unpin(s);
        rt_value_unpin(arr);
        CHECK(rt_value_pin_count(s) == 0 && rt_value_pin_count(arr) == 0);
        rt_value_unpin(s); /* extra unpin: harmless */
    }
    CHECK(stat_of("collections") >= before + 20);

    /* Unpinned garbage is reclaimed: 256 MiB of 64 KiB strings keeps the heap small. */
    {
        static uint8_t chunk[64 * 1024];
        memset(chunk, 'x', sizeof chunk);
        for (i = 0; i < 4096; i++) {
            RtValue g = rt_string_new(chunk, sizeof chunk);
            CHECK(rt_kind(g) == RT_KIND_STRING);
        }
        rt_gc_collect();
        heap_limit = (int64_t)128 << 20;
        CHECK(stat_of("heap_size") < heap_limit);
    }
    printf("ok pin/unpin and rt_gc_collect (heap_size=%lld)\n", (long long)stat_of("heap_size"));

    /* rt_gc_malloc'd memory is scanned: a value whose word lives there survives. */
    {
        RtValue *cell = (RtValue *)rt_gc_malloc(2 * sizeof(RtValue));
        CHECK(cell != NULL);
        cell[0] = str("kept by a collector block");
        for (i = 0; i < 5; i++) {
            int k;
            for (k = 0; k < 2000; k++) {
                rt_array_push(rt_array_new(1), str("more garbage"));
            }
            rt_gc_collect();
        }
        CHECK(str_eq(cell[0], "kept by a collector block"));
        rt_gc_free(cell);
    }
    printf("ok rt_gc_malloc block scanned, rt_gc_free\n");
}

static void test_capability_denial(void) {
    RtValue policy = rt_cap_parse(str("sys.info=false"));
    RtValue r, e;
    CHECK(rt_kind(policy) == RT_KIND_DICT);
    r = rt_cap_restrict(policy);
    CHECK(r == RT_NIL);
    e = rt_hostname();
    CHECK(rt_error_code(e) == RT_ERR_CAPABILITY_DENIED);
    CHECK(strstr((const char *)rt_string_ptr(rt_error_message(e)), "rt_hostname needs sys.info") != NULL);
    CHECK(rt_cap_check(str(RT_CAP_SYS_INFO), RT_NIL) == RT_FALSE);
    /* The policy never widens again. */
    CHECK(rt_error_code(rt_cap_restrict(rt_cap_parse(str("sys.info=true")))) == 0);
    CHECK(rt_error_code(rt_cpu_count()) == RT_ERR_CAPABILITY_DENIED);
    /* An unknown capability is refused (and changes nothing). */
    policy = rt_cap_parse(str("no.such.cap=false"));
    CHECK(rt_kind(policy) == RT_KIND_DICT);
    CHECK(rt_error_code(rt_cap_restrict(policy)) == RT_ERR_INVALID_ARGUMENT);
    CHECK(rt_error_code(rt_cap_parse(str("no equals sign"))) == RT_ERR_PARSE);
    print_str("denied", rt_error_message(e));
    printf("ok capability denial\n");
}

int main(void) {
    test_abi();
    test_specials();
    test_ints();
    test_floats();
    test_strings_bytes();
    test_arrays_dicts();
    test_errors();
    test_registry();
    test_system_calls();
    test_pins_and_gc();
    test_capability_denial();
    printf("ALL OK (%d checks)\n", checks);
    return 0;
}
