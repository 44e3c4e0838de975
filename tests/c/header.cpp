// The generated header compiled as C++ (g++ -std=c++11 -Wall -Wextra -Werror -pedantic),
// linked against libffi_core.so and run: extern "C" linkage and the inline helpers.
#include "simple_rt.h"

#include <cstdio>
#include <cstring>
#include <string>

static int failures = 0;

static void check(bool ok, const char *what) {
    if (!ok) {
        std::printf("FAIL %s\n", what);
        failures++;
    }
}

static RtValue text(const std::string &s) {
    return rt_string_new(reinterpret_cast<const uint8_t *>(s.data()), s.size());
}

int main() {
    static_assert(sizeof(RtValue) == 8, "RtValue is one 64-bit word");
    check((rt_abi_version() >> 16) == RT_ABI_MAJOR, "abi major");
    check(rt_v_make_int(-5) == rt_int_new(-5), "inline int encoding");
    check(rt_v_int_inline(rt_v_make_int(RT_INLINE_INT_MIN)) == RT_INLINE_INT_MIN, "inline int min");
    check(rt_v_is_heap(rt_int_new(INT64_MAX)) && rt_int_get(rt_int_new(INT64_MAX)) == INT64_MAX, "boxed int");
    check(rt_v_make_float(2.0) == rt_float_new(2.0), "inline float encoding");
    check(rt_v_float_inline(rt_float_new(0.5)) == 0.5, "inline float decoding");
    check(rt_kind(rt_float_new(0.1)) == RT_KIND_FLOAT && rt_float_get(rt_float_new(0.1)) == 0.1, "boxed float");
    check(rt_v_make_bool(true) == RT_TRUE && rt_v_is_nil(RT_NIL), "specials");

    std::string with_nul("a\0b", 3);
    RtValue s = text(with_nul);
    check(rt_kind(s) == RT_KIND_STRING && rt_string_len(s) == 3 &&
              std::memcmp(rt_string_ptr(s), with_nul.data(), 3) == 0,
          "string with interior NUL");

    RtValue d = rt_dict_new();
    rt_dict_set(d, text("k"), rt_int_new(1));
    check(rt_dict_len(d) == 1 && rt_int_get(rt_dict_get(d, text("k"))) == 1, "dict");

    uint32_t arity = 0;
    void *p = rt_registry_lookup(reinterpret_cast<const uint8_t *>("rt_gc_stats"), 11, &arity);
    check(p != NULL && arity == 0, "lookup rt_gc_stats");
    if (p != NULL) {
        RtValue stats = rt_as_fn0(p)();
        check(rt_kind(stats) == RT_KIND_DICT && rt_int_get(rt_dict_get(stats, text("heap_size"))) > 0, "gc stats");
    }
    RtValue e = rt_error_new(RT_ERR_TIMEOUT, text("cpp: took too long (1s)"));
    check(rt_error_code(e) == RT_ERR_TIMEOUT && std::string(rt_error_name(rt_error_code(e))) == "Timeout",
          "error value");

    if (failures == 0) {
        std::printf("C++ OK\n");
    }
    return failures == 0 ? 0 : 1;
}
