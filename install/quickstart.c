#include <simple_rt.h>
#include <stdio.h>

/* Every domain function returns one RtValue: an Error when rt_error_code != 0. */
static int failed(const char *what, RtValue v) {
    uint32_t code = rt_error_code(v);
    if (code == RT_ERR_NONE) return 0;
    fprintf(stderr, "%s: %s (%u): %s\n", what, rt_error_name(code), (unsigned)code,
            (const char *)rt_string_ptr(rt_error_message(v)));
    return 1;
}

int main(void) {
    if (rt_abi_version() >> 16 != RT_ABI_MAJOR) return 1;          /* the header matches the library */
    RtValue text = rt_string_new((const uint8_t *)"abc", 3);        /* libffi_core (host surface) */
    RtValue hash = rt_sha256_hash(text);                            /* libffi_crypto */
    if (failed("rt_string_new", text) || failed("rt_sha256_hash", hash)) return 1;
    printf("sha256(abc) = %s\n", (const char *)rt_string_ptr(hash));
    RtValue path = rt_string_new((const uint8_t *)"/no/such/file", 13);
    RtValue got = rt_file_read_text(path);                          /* libffi_io */
    if (rt_error_code(got) != RT_ERR_NOT_FOUND) return 1;          /* failure is a value */
    failed("as expected", got);                       /* NotFound (3): rt_file_read_text: ... */
    return 0;
}
