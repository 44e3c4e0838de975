/* A C host as an interpreter would be: dlopen every domain library with
 * RTLD_LOCAL, find functions only through rt_registry_lookup, call them by
 * arity, check real results. Written from include/simple_rt.h and the SPEC.
 *
 * Usage: domains LIB_DIR TMP_DIR
 */
#include "simple_rt.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures = 0;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);     \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static RtValue text(const char *s) { return rt_string_new((const uint8_t *)s, strlen(s)); }

static int is_text(RtValue v, const char *s) {
    return rt_kind(v) == RT_KIND_STRING && rt_string_len(v) == strlen(s) &&
           memcmp(rt_string_ptr(v), s, strlen(s)) == 0;
}

static void *lookup(const char *name, uint32_t want_arity) {
    uint32_t arity = 99;
    void *p = rt_registry_lookup((const uint8_t *)name, strlen(name), &arity);
    if (p == NULL || arity != want_arity) {
        fprintf(stderr, "FAIL lookup %s (arity %u, want %u)\n", name, arity, want_arity);
        failures++;
        return NULL;
    }
    return p;
}

static RtValue call1(const char *name, RtValue a) {
    void *p = lookup(name, 1);
    return p ? rt_as_fn1(p)(a) : RT_NIL;
}
static RtValue call2(const char *name, RtValue a, RtValue b) {
    void *p = lookup(name, 2);
    return p ? rt_as_fn2(p)(a, b) : RT_NIL;
}
static RtValue call3(const char *name, RtValue a, RtValue b, RtValue c) {
    void *p = lookup(name, 3);
    return p ? rt_as_fn3(p)(a, b, c) : RT_NIL;
}

static void report_error(const char *what, RtValue v) {
    if (rt_error_code(v) != 0) {
        RtValue m = rt_error_message(v);
        fprintf(stderr, "FAIL %s: %s: %.*s\n", what, rt_error_name(rt_error_code(v)), (int)rt_string_len(m),
                (const char *)rt_string_ptr(m));
        failures++;
    }
}

int main(int argc, char **argv) {
    static const char *domains[] = {"io", "process", "time", "crypto", "archive", "data", "serde", "system"};
    char path[4096];
    size_t i;
    if (argc != 3) {
        fprintf(stderr, "usage: domains LIB_DIR TMP_DIR\n");
        return 2;
    }
    for (i = 0; i < sizeof domains / sizeof domains[0]; i++) {
        snprintf(path, sizeof path, "%s/libffi_%s.so", argv[1], domains[i]);
        if (dlopen(path, RTLD_NOW | RTLD_LOCAL) == NULL) {
            fprintf(stderr, "FAIL dlopen %s: %s\n", path, dlerror());
            return 1;
        }
    }

    {   /* io: write, read back, size, hash */
        RtValue p, r;
        snprintf(path, sizeof path, "%s/c-host.txt", argv[2]);
        p = text(path);
        rt_value_pin(p);
        r = call2("rt_file_write_text", p, text("abc"));
        report_error("rt_file_write_text", r);
        CHECK(is_text(call1("rt_file_read_text", p), "abc"));
        CHECK(rt_int_get(call1("rt_file_size", p)) == 3);
        CHECK(is_text(call1("rt_file_hash_sha256", p),
                      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        CHECK(rt_error_code(call1("rt_file_read_text", text(""))) == RT_ERR_INVALID_ARGUMENT);
        rt_value_unpin(p);
        printf("ok io\n");
    }
    {   /* process: run a real child */
        RtValue args = rt_array_new(1), r, out;
        rt_array_push(args, text("from C"));
        r = call3("rt_process_run", text("echo"), args, RT_NIL);
        report_error("rt_process_run", r);
        out = rt_dict_get(r, text("stdout"));
        CHECK(is_text(out, "from C\n"));
        CHECK(rt_int_get(rt_dict_get(r, text("code"))) == 0);
        CHECK(rt_error_code(call3("rt_process_run", text("/no/such/program"), rt_array_new(0), RT_NIL)) ==
              RT_ERR_NOT_FOUND);
        printf("ok process\n");
    }
    {   /* time: the epoch and a parse error */
        RtValue r = call2("rt_time_format_iso8601", rt_int_new(0), RT_NIL);
        CHECK(is_text(r, "1970-01-01T00:00:00Z"));
        CHECK(rt_int_get(call1("rt_timestamp_get_year", rt_int_new(-1))) == 1969);
        CHECK(rt_error_code(call1("rt_time_parse_iso8601", text("2024-13-01T00:00:00Z"))) == RT_ERR_PARSE);
        printf("ok time\n");
    }
    {   /* crypto: FIPS 180 vector and a bad kind */
        CHECK(is_text(call1("rt_sha1_hash", text("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d"));
        CHECK(rt_error_code(call1("rt_sha256_hash", rt_int_new(5))) == RT_ERR_TYPE_MISMATCH);
        printf("ok crypto\n");
    }
    {   /* archive: gzip round trip, corrupt input */
        static const uint8_t junk[] = {0x1f, 0x8b, 0x08, 0x00, 0x01};
        RtValue data = rt_bytes_new((const uint8_t *)"hello hello hello", 17), gz, back;
        rt_value_pin(data);
        gz = call2("rt_gzip_compress", data, RT_NIL);
        report_error("rt_gzip_compress", gz);
        back = call2("rt_gzip_decompress", gz, RT_NIL);
        CHECK(rt_kind(back) == RT_KIND_BYTES && rt_bytes_len(back) == 17 &&
              memcmp(rt_bytes_ptr(back), "hello hello hello", 17) == 0);
        CHECK(rt_error_code(call2("rt_gzip_decompress", rt_bytes_new(junk, sizeof junk), RT_NIL)) == RT_ERR_PARSE);
        rt_value_unpin(data);
        printf("ok archive\n");
    }
    {   /* data: a regex handle, then closed */
        RtValue re = call2("rt_regex_new", text("[0-9]+"), RT_NIL), m;
        CHECK(rt_kind(re) == RT_KIND_HANDLE);
        rt_value_pin(re);
        m = call2("rt_regex_find", re, text("abc 123 def"));
        CHECK(is_text(rt_dict_get(m, text("text")), "123"));
        CHECK(call1("rt_handle_close", re) == RT_TRUE);
        CHECK(rt_error_code(call2("rt_regex_find", re, text("1"))) == RT_ERR_CLOSED);
        CHECK(rt_error_code(call2("rt_regex_new", text("("), RT_NIL)) == RT_ERR_PARSE);
        rt_value_unpin(re);
        printf("ok data\n");
    }
    {   /* serde: JSON in and out */
        RtValue v = call2("rt_json_parse", text("{\"a\":[1,2.5,null]}"), RT_NIL);
        report_error("rt_json_parse", v);
        CHECK(rt_kind(v) == RT_KIND_DICT && rt_array_len(rt_dict_get(v, text("a"))) == 3);
        CHECK(is_text(call2("rt_json_stringify", v, RT_NIL), "{\"a\":[1,2.5,null]}"));
        CHECK(rt_error_code(call2("rt_json_parse", text("[1,"), RT_NIL)) == RT_ERR_PARSE);
        printf("ok serde\n");
    }
    {   /* one policy for all libraries: narrowing in core is seen by io */
        RtValue pol = rt_dict_new(), r;
        RtValue scopes = rt_array_new(1);
        rt_array_push(scopes, text(argv[2]));
        rt_dict_set(pol, text("fs.read"), scopes);
        r = call1("rt_cap_restrict", pol);
        report_error("rt_cap_restrict", r);
        r = call1("rt_file_read_text", text("/etc/hostname"));
        CHECK(rt_error_code(r) == RT_ERR_CAPABILITY_DENIED);
        printf("ok policy\n");
    }
    if (failures) {
        fprintf(stderr, "%d failures\n", failures);
        return 1;
    }
    printf("ALL DOMAINS OK\n");
    return 0;
}
