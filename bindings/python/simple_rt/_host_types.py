"""C types of host-surface functions (registry `ctype` / `c_returns`) for ctypes."""

import ctypes

_CTYPES = {
    "RtValue": ctypes.c_uint64,
    "uint32_t": ctypes.c_uint32,
    "int32_t": ctypes.c_int32,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "double": ctypes.c_double,
    "bool": ctypes.c_bool,
    "void": None,
    "const uint8_t *": ctypes.c_void_p,
    "uint32_t *": ctypes.POINTER(ctypes.c_uint32),
    "const char *": ctypes.c_char_p,
    "void *": ctypes.c_void_p,
    "const void *": ctypes.c_void_p,
}


def ctype(name):
    try:
        return _CTYPES[name]
    except KeyError:
        return ctypes.c_void_p if name.endswith("*") else ctypes.c_uint64
