"""Loading the simple-rt libraries and calling them through ctypes.

Hand-written and signature-free: every domain function is found at run time
through the registry (`rt_registry_lookup` gives address and arity; every
domain function takes and returns `RtValue` words), and the C types of the
host-surface functions come from the registry's `ctype` / `c_returns` fields.

Collector rules for CPython (SPEC section 4, DEPENDENCIES.md):
- A Python thread is registered with the collector only while it is inside
  a call (`rt_thread_attach` ... `rt_thread_detach`), never permanently:
  a permanently registered thread that runs `subprocess` (vfork) makes the
  collector abort ("Signals delivery fails constantly"). ffi_core caches
  each thread's stack base, so attach/detach per call is cheap, and its
  constructor leaves the loading thread unregistered.
- Python objects live in memory the collector does not scan, and a word
  returned through an ordinary ctypes call exists only as a Python int until
  the next call: a collection in another thread in between frees it (seen:
  3 corrupted round trips in 1,200 under forced collections). So every word
  the binding makes or receives lives in a *frame*: a pinned runtime array
  whose item slots act as collector-visible registers. Value-making calls go
  through libffi's `ffi_call` with the return address set to a frame slot,
  so the new word is stored by C code, never held only by Python. Nested
  items pass through a scratch slot straight into their parent. Arguments
  sit in slots 0-7 during the call, the result in slot 8 while it is read.
  Without libffi (or with SIMPLE_RT_NO_LIBFFI=1) plain ctypes calls are used
  and the short window remains (`Runtime.mode` says which).
- `Handle` objects keep their word pinned for their whole life.
- Python callables passed where the library wants a callable (thread
  spawn, parallel map) become Callback handles (`Runtime.callback`): one
  module-wide ctypes trampoline, `user_data` = a token naming the Python
  function in `_CALLBACKS`. The library runs it on its own threads (already
  registered with the collector; the attach bracket here nests) while the
  calling thread waits inside a ctypes call with the GIL released. The
  trampoline returns its result pinned (RT_CALLBACK_RESULT_PINNED: the
  library drops the pin once it holds the word) and turns an exception into
  an Error value (RtError keeps its code; anything else is Panic). The token
  is dropped by the callback's release function, once the library is done
  with it (docs/CONCURRENCY.md).

The call path (`_fast_call`, one Python function per domain function, built
once): immediates (None, bool, ints in 61 bits, floats whose low 3 bits are
0) are encoded in Python straight into their frame slots, and immediate
results are decoded from slot 8; only other values cost extra foreign calls.
Every call still takes a pooled frame and goes through `ffi_call`: whether a
result is a heap word (an Error, a boxed int...) is known only once it has
been returned, and by then it must be in a slot already. The attach bracket
costs nothing inside `attached()` (a thread-local depth check) and two
foreign calls otherwise. About 1.4 us per `rt_value_equal(1, 2)` (0.9 us
inside `attached()`) against 0.4 us for a bare, unsafe ctypes call
(bench_calls.py).
"""

import ctypes
import ctypes.util
import json
import linecache
import os
import struct
import sys
import threading
import types

V = ctypes.c_uint64
_string_at = ctypes.string_at

# The whole address space as a ctypes array of bytes and one of aligned
# words: `_MEM[p:p + n]` copies n bytes at p into a bytes object and
# `_W64[p >> 3]` reads the word at p, with no foreign call (string_at and
# c_uint64.from_address cost 2-4 times more). Used only to read objects
# whose kind the library has vouched for (the layout is checked at load).
_MEM = (ctypes.c_char * sys.maxsize).from_address(0)
_W64 = (ctypes.c_uint64 * (sys.maxsize // 8)).from_address(0)

#: Domain libraries loaded after libffi_core.so, when present.
DOMAINS = [
    "io", "process", "time", "crypto", "archive", "codegen", "net", "concurrent",
    "data", "system", "cli", "serde", "torch", "cuda", "vulkan",
]

ABI_MAJOR = 1

TAG_MASK = 0b111
TAG_INT = 0b000
TAG_HEAP = 0b001
TAG_FLOAT = 0b010
NIL = 0x03
TRUE = 0x0B
FALSE = 0x13
INLINE_INT_MIN = -(1 << 60)
INLINE_INT_MAX = (1 << 60) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
MASK64 = (1 << 64) - 1

# RtHeader.kind of Strings and Bytes (simple_rt.h, informative: checked at load).
HK_STRING_BYTES_MAGIC = 0x52540000
HK_STRING = 1
HK_BYTES = 2

# rt_kind numbers (part of the ABI).
K_INVALID, K_NIL, K_BOOL, K_INT, K_FLOAT, K_STRING, K_BYTES, K_ARRAY, K_DICT, K_ERROR, K_HANDLE = range(11)

#: Error code numbers (stable, SPEC section 3).
CODES = {
    "InvalidArgument": 1, "TypeMismatch": 2, "NotFound": 3, "AlreadyExists": 4,
    "PermissionDenied": 5, "CapabilityDenied": 6, "Timeout": 7, "Io": 8, "Parse": 9,
    "Unsupported": 10, "Closed": 11, "Panic": 12, "Internal": 13, "OutOfRange": 14,
    "LimitExceeded": 15, "Busy": 16, "Interrupted": 17, "Cancelled": 18,
}

_CTYPES = {
    "RtValue": V,
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


class RtError(Exception):
    """An Error value returned by a runtime function.

    `code` (int, stable), `name` ("CapabilityDenied"), `message`
    ("rt_hostname needs sys.info"), `details` (dict or None).
    """

    def __init__(self, code, name, message, details=None):
        super().__init__(code, name, message, details)
        self.code = code
        self.name = name
        self.message = message
        self.details = details

    def __str__(self):
        return "%s: %s" % (self.name, self.message)

    def __repr__(self):
        return "RtError(%d, %r, %r, %r)" % (self.code, self.name, self.message, self.details)


class LoadError(ImportError):
    """The libraries could not be found or loaded, or their ABI differs."""


class Handle:
    """An opaque native resource (file lock, child process, regex...).

    The word stays pinned while this object lives, so the runtime value is
    valid even after `close()` (use after close gives Error Closed, never a
    crash). `close()` releases the native resource now (idempotent); the
    collector releases it anyway once the handle is unreachable.
    """

    __slots__ = ("_word", "__weakref__")

    def __init__(self, word):
        self._word = word
        rt = runtime()
        with rt.attached():
            rt.pin(word)

    @property
    def word(self):
        return self._word

    @property
    def type(self):
        """The handle's type name (`Regex`, `Child`, ...)."""
        return call("rt_handle_type", self)

    @property
    def is_open(self):
        return call("rt_handle_is_open", self)

    def close(self):
        """Releases the resource now; True if it was open, False if it was closed already."""
        if self._word is None:
            return False
        return call("rt_handle_close", self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        w = self._word
        self._word = None
        if w is None:
            return
        try:
            rt = _RUNTIME
            if rt is not None:
                with rt.attached():
                    rt.unpin(w)
        except Exception:
            pass

    def __eq__(self, other):
        return isinstance(other, Handle) and other._word == self._word

    def __hash__(self):
        return hash(self._word)

    def __repr__(self):
        try:
            t = self.type
            state = "open" if self.is_open else "closed"
        except Exception:
            t, state = "?", "?"
        return "<simple_rt.Handle %s %s %#x>" % (t, state, self._word or 0)


class Callback(Handle):
    """A Callback handle running a Python callable on library threads (see
    `simple_rt.callback`). Passing a plain Python callable makes a temporary
    one per call instead."""

    __slots__ = ("fn",)

    def __init__(self, word, fn):
        Handle.__init__(self, word)
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)


#: token -> (Python callable, True when it takes no argument): the callbacks
#: the library may still call. Dropped by `_release_cb` (the library's release).
_CALLBACKS = {}


def _tokens():
    i = 1
    while True:
        yield i
        i += 1


_TOKENS = _tokens()


def _arity_of(fn):
    """2 when `fn` needs exactly two positional arguments, else 1."""
    import inspect
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    req = [p for p in sig.parameters.values()
           if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return 2 if len(req) == 2 else 1


def _takes_none(fn):
    """True when `fn` cannot take one positional argument (a nil argument is then dropped)."""
    import inspect
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return not any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
                   for p in sig.parameters.values())


def _run_callback(token, words):
    """Body of the trampolines: runs on a library thread holding the GIL.
    Returns the result word pinned (the library drops the pin)."""
    rt = _RUNTIME
    with rt.attached():
        f = rt._frame()
        try:
            try:
                entry = _CALLBACKS.get(token)
                if entry is None:
                    raise RtError(CODES["Closed"], "Closed", "simple_rt: the Python callback was released")
                fn, none_ok = entry
                args = [rt.from_value(w) for w in words]
                if none_ok and len(args) == 1 and args[0] is None:
                    args = []
                w = rt.build(f, RES, fn(*args))
            except RtError as e:
                w = rt._error_word(f, RES, e.code if e.code > 0 else CODES["Panic"], e.message or str(e))
            except BaseException as e:  # noqa: B902 - nothing may unwind into C
                w = rt._error_word(f, RES, CODES["Panic"],
                                   "python callback raised %s: %s" % (type(e).__name__, e))
            rt.pin(w)
            return w
        except BaseException:
            return NIL  # could not even build the Error (out of memory): nil
        finally:
            rt._release(f)


def _tramp1(user_data, a):
    return _run_callback(user_data or 0, (a,))


def _tramp2(user_data, a, b):
    return _run_callback(user_data or 0, (a, b))


def _release_cb(user_data):
    _CALLBACKS.pop(user_data or 0, None)


_TRAMP1 = ctypes.CFUNCTYPE(V, ctypes.c_void_p, V)(_tramp1)
_TRAMP2 = ctypes.CFUNCTYPE(V, ctypes.c_void_p, V, V)(_tramp2)
_RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(_release_cb)
_TRAMP1_ADDR = ctypes.cast(_TRAMP1, ctypes.c_void_p).value
_TRAMP2_ADDR = ctypes.cast(_TRAMP2, ctypes.c_void_p).value
_RELEASE_ADDR = ctypes.cast(_RELEASE, ctypes.c_void_p).value


def callback(fn, arity=None):
    """A reusable Callback handle for the Python callable `fn` (1 or 2 arguments)."""
    return runtime().callback(fn, arity)


def _candidate_dirs():
    env = os.environ.get("SIMPLE_RT_LIB_DIR")
    if env:
        return [env]
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    out = []
    for profile in ("debug", "release"):
        d = os.path.join(root, "target", profile)
        out += [d, os.path.join(d, "deps")]
    return out


def lib_dir():
    """The directory the libraries are (or would be) loaded from.

    `SIMPLE_RT_LIB_DIR` when set, else the workspace's target/debug (then its
    deps/, then target/release): the first that holds libffi_core.so.
    """
    dirs = _candidate_dirs()
    for d in dirs:
        if os.path.isfile(os.path.join(d, "libffi_core.so")):
            return d
    return dirs[0]


class _TLS(threading.local):
    #: Nesting depth of the attach bracket on this thread (0: not attached).
    depth = 0


_tls = _TLS()

#: Slots of a frame: 0-7 arguments, 8 the result, 9 scratch for nested items.
NSLOTS = 16
RES = 8
TMP = 9


class _FFI:
    """libffi's `ffi_call`, reached through ctypes: unlike a ctypes call, it
    stores the callee's return value at an address we choose (a frame slot,
    which the collector scans), so a fresh value is never held only by a
    Python int."""

    ABIS = {"x86_64": 2, "amd64": 2, "aarch64": 1, "arm64": 1}  # FFI_UNIX64, FFI_SYSV

    def __init__(self):
        import platform
        self.abi = self.ABIS.get(platform.machine().lower())
        if self.abi is None:
            raise OSError("no libffi ABI known for %s" % platform.machine())
        lib = None
        for name in ("libffi.so.8", "libffi.so.7", "libffi.so.6"):
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:
            name = ctypes.util.find_library("ffi")
            if not name:
                raise OSError("libffi not found")
            lib = ctypes.CDLL(name)
        self.lib = lib
        self.prep = lib.ffi_prep_cif
        self.prep.restype = ctypes.c_int
        self.prep.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.call = lib.ffi_call
        self.call.restype = None
        self.call.argtypes = [ctypes.c_void_p] * 4

        def t(n):
            return ctypes.addressof(ctypes.c_char.in_dll(lib, n))

        self.types = {
            "u64": t("ffi_type_uint64"),
            "s64": t("ffi_type_sint64"),
            "f64": t("ffi_type_double"),
            "ptr": t("ffi_type_pointer"),
            "size": t("ffi_type_uint64") if ctypes.sizeof(ctypes.c_size_t) == 8 else t("ffi_type_uint32"),
        }
        self._keep = []

    def cif(self, rtype, atypes):
        """A prepared call interface (address) for `rtype f(atypes...)`."""
        buf = ctypes.create_string_buffer(256)
        arr = (ctypes.c_void_p * max(1, len(atypes)))(*[self.types[a] for a in atypes])
        st = self.prep(ctypes.addressof(buf), self.abi, len(atypes), self.types[rtype], ctypes.addressof(arr))
        if st != 0:
            raise OSError("ffi_prep_cif failed (%d)" % st)
        self._keep.append((buf, arr))
        return ctypes.addressof(buf)


class _Frame:
    """A pinned runtime array of NSLOTS words, used as collector-visible
    registers: arguments are built into slots 0-7, the result lands in slot
    8, nested items pass through slot 9 on their way into their parent."""

    __slots__ = ("word", "items", "view", "sview", "fview", "res", "argv", "argp", "cargs", "cargv", "cargp", "blob")

    def __init__(self, word, items):
        self.word = word
        self.items = items
        self.view = (ctypes.c_uint64 * NSLOTS).from_address(items)
        # The same slots seen as signed words and as doubles: ints and floats
        # are encoded and decoded in place.
        self.sview = (ctypes.c_int64 * NSLOTS).from_address(items)
        self.fview = (ctypes.c_double * NSLOTS).from_address(items)
        self.res = items + 8 * RES
        self.argv = (ctypes.c_void_p * 8)(*[items + 8 * i for i in range(8)])
        self.argp = ctypes.addressof(self.argv)
        self.cargs = (ctypes.c_uint64 * 2)()
        a = ctypes.addressof(self.cargs)
        self.cargv = (ctypes.c_void_p * 2)(a, a + 8)
        self.cargp = ctypes.addressof(self.cargv)
        # The same two words seen as (pointer, length): assigning bytes stores their address.
        self.blob = _BlobArgs.from_address(a)


class _BlobArgs(ctypes.Structure):
    _fields_ = [("p", ctypes.c_char_p), ("n", ctypes.c_size_t)]


class _Op:
    """A C function of the host surface: address, libffi cif, ctypes fallback."""

    __slots__ = ("addr", "cif", "cfunc")

    def __init__(self, addr, cif, cfunc):
        self.addr = addr
        self.cif = cif
        self.cfunc = cfunc


class Runtime:
    """The loaded libraries and the host-surface functions the binding uses."""

    def __init__(self, directory=None):
        d = directory or lib_dir()
        core_path = os.path.join(d, "libffi_core.so")
        if not os.path.isfile(core_path):
            raise LoadError(
                "simple_rt: %s not found (build with `cargo build -p ffi_core`, "
                "or set SIMPLE_RT_LIB_DIR)" % core_path)
        mode = os.RTLD_NOW | os.RTLD_LOCAL
        self.dir = d
        self.core = ctypes.CDLL(core_path, mode=mode)
        self.libs = {"core": self.core}
        self.load_errors = {}
        c = self.core
        c.rt_abi_version.restype = ctypes.c_uint32
        c.rt_abi_version.argtypes = []
        ver = c.rt_abi_version()
        if ver >> 16 != ABI_MAJOR:
            raise LoadError("simple_rt: %s has ABI %d.%d; this binding needs major %d"
                            % (core_path, ver >> 16, ver & 0xFFFF, ABI_MAJOR))
        self.abi_version = ver
        for name in DOMAINS:
            p = os.path.join(d, "libffi_%s.so" % name)
            if not os.path.isfile(p):
                continue
            try:
                self.libs[name] = ctypes.CDLL(p, mode=mode)
            except OSError as e:  # e.g. torch without LD_LIBRARY_PATH
                self.load_errors[name] = str(e)
        self.ffi = None
        if not os.environ.get("SIMPLE_RT_NO_LIBFFI"):
            try:
                self.ffi = _FFI()
            except (OSError, AttributeError, ValueError):
                self.ffi = None
        self._funcs = {}
        #: name -> the function `call(name, ...)` uses (see `fn`).
        self._calls = {}
        self._entries = None
        self._pool = []
        self._blob_data = None
        self._setup_core()
        if self.ffi is not None and not self._ffi_works():
            self.ffi = None
            self._setup_core()
        #: "libffi" (results land in collector-visible frames) or "ctypes" (fallback).
        self.mode = "libffi" if self.ffi is not None else "ctypes"
        self._blob_data = self._blob_layout()

    # ---- host functions ----
    def _setup_core(self):
        c = self.core
        P = ctypes.c_void_p
        S = ctypes.c_size_t

        def sig(name, res, *args):
            f = getattr(c, name)
            f.restype = res
            f.argtypes = list(args)
            return f

        def op(name, rtype, atypes, res, *args):
            f = sig(name, res, *args)
            addr = ctypes.cast(f, ctypes.c_void_p).value
            cif = self.ffi.cif(rtype, atypes) if self.ffi is not None else None
            return _Op(addr, cif, f)

        self.attach = sig("rt_thread_attach", ctypes.c_uint32)
        self.detach = sig("rt_thread_detach", ctypes.c_uint32)
        self.kind = sig("rt_kind", ctypes.c_uint32, V)
        self.int_get = sig("rt_int_get", ctypes.c_int64, V)
        self.float_get = sig("rt_float_get", ctypes.c_double, V)
        self.string_ptr = sig("rt_string_ptr", P, V)
        self.string_len = sig("rt_string_len", S, V)
        self.bytes_ptr = sig("rt_bytes_ptr", P, V)
        self.bytes_len = sig("rt_bytes_len", S, V)
        self.array_push = sig("rt_array_push", V, V, V)
        self.array_len = sig("rt_array_len", S, V)
        self.array_get = sig("rt_array_get", V, V, S)
        self.dict_set = sig("rt_dict_set", V, V, V, V)
        self.dict_len = sig("rt_dict_len", S, V)
        self.dict_key_at = sig("rt_dict_key_at", V, V, S)
        self.dict_value_at = sig("rt_dict_value_at", V, V, S)
        self.error_code = sig("rt_error_code", ctypes.c_uint32, V)
        self.error_name = sig("rt_error_name", ctypes.c_char_p, ctypes.c_uint32)
        self.error_message = sig("rt_error_message", V, V)
        self.error_details = sig("rt_error_details", V, V)
        self.pin = sig("rt_value_pin", None, V)
        self.unpin = sig("rt_value_unpin", None, V)
        self.gc_disable = sig("rt_gc_disable", V)
        self.gc_enable = sig("rt_gc_enable", V)
        self.registry_lookup = sig("rt_registry_lookup", P, ctypes.c_char_p, S, ctypes.POINTER(ctypes.c_uint32))
        # Functions that make new values: called so that the word lands in a frame slot.
        self.op_string = op("rt_string_new", "u64", ["ptr", "size"], V, ctypes.c_char_p, S)
        self.op_bytes = op("rt_bytes_new", "u64", ["ptr", "size"], V, ctypes.c_char_p, S)
        self.op_int = op("rt_int_new", "u64", ["s64"], V, ctypes.c_int64)
        self.op_float = op("rt_float_new", "u64", ["f64"], V, ctypes.c_double)
        self.op_array = op("rt_array_new", "u64", ["size"], V, S)
        self.op_dict = op("rt_dict_new", "u64", [], V)
        self.op_registry = op("rt_registry_json", "u64", [], V)
        # Callbacks (absent from an older libffi_core.so: then Python callables are refused).
        try:
            self.op_callback = op("rt_callback_new", "u64", ["ptr", "ptr"], V, P, P)
            self.op_callback2 = op("rt_callback_new2", "u64", ["ptr", "ptr"], V, P, P)
            self.callback_set_flags = sig("rt_callback_set_flags", V, V, ctypes.c_uint32)
            self.callback_on_release = sig("rt_callback_on_release", V, V, P)
            self.op_error_new = op("rt_error_new", "u64", ["u64", "u64"], V, ctypes.c_uint32, V)
        except AttributeError:
            self.op_callback = None
        self._arity_cif = [self.ffi.cif("u64", ["u64"] * n) if self.ffi is not None else None
                           for n in range(9)]
        self._pool = []

    def _ffi_works(self):
        """Checks libffi against the library once (ABI constant, type layout)."""
        try:
            with self.attached():
                f = self._frame()
                try:
                    ok = self._new(f, 0, self.op_int, (-5) & MASK64) == (-5 << 3) & MASK64
                    ok = ok and self._new(f, 1, self.op_float, _fbits(1.5)) == _fbits(1.5) | TAG_FLOAT
                    w = self._new(f, 2, self.op_string, ctypes.cast(b"ab\x00c", ctypes.c_void_p).value, 4)
                    ok = ok and self.kind(w) == K_STRING and self._text(w) == "ab\x00c"
                    return ok
                finally:
                    self._release(f)
        except Exception:
            return False

    def _blob_layout(self):
        """The offset of a String's / Bytes' data from its base (RtBlobObj in
        simple_rt.h: 24-byte header, len, data) when the library agrees, else
        None (then rt_string_ptr / rt_bytes_ptr are asked each time)."""
        try:
            with self.attached():
                f = self._frame()
                try:
                    off = 32
                    for op, get, size, hk in ((self.op_string, self.string_ptr, self.string_len, HK_STRING),
                                              (self.op_bytes, self.bytes_ptr, self.bytes_len, HK_BYTES)):
                        w = self._blob(f, 0, op, b"layout")
                        base = w & ~TAG_MASK
                        if (w & TAG_MASK != TAG_HEAP or get(w) != base + off or size(w) != 6
                                or _W64[(base + 24) >> 3] != 6 or _MEM[base + off:base + off + 6] != b"layout"
                                or _W64[base >> 3] & 0xFFFFFFFF != HK_STRING_BYTES_MAGIC | hk):
                            return None
                    return off
                finally:
                    self._release(f)
        except Exception:
            return None

    # ---- attach bracket and frames ----
    def attached(self):
        return _Attached(self)

    def _frame(self):
        """A frame from the pool, or a new one. Must run while attached."""
        try:
            return self._pool.pop()
        except IndexError:
            pass
        # The new array is held only by a Python int until it is pinned:
        # collections are held off for that moment (once per frame).
        self.gc_disable()
        try:
            w = self.op_array.cfunc(NSLOTS)
            if self.kind(w) != K_ARRAY:
                raise MemoryError("simple_rt: cannot allocate a frame")
            for _ in range(NSLOTS):
                self.array_push(w, NIL)
            self.pin(w)
        finally:
            self.gc_enable()
        base = w & ~TAG_MASK
        # ArrayObj (simple_rt.h): 24-byte header, len, cap, items.
        n = ctypes.c_uint64.from_address(base + 24).value
        items = ctypes.c_uint64.from_address(base + 40).value
        if n != NSLOTS or self.array_len(w) != NSLOTS or not items:
            raise LoadError("simple_rt: unexpected array layout (ABI %#x)" % self.abi_version)
        f = _Frame(w, items)
        f.view[3] = 7 << 3
        if self.array_get(w, 3) != 7 << 3:
            raise LoadError("simple_rt: unexpected array layout (ABI %#x)" % self.abi_version)
        ctypes.memset(items, 0, 8 * NSLOTS)
        return f

    def _release(self, f):
        ctypes.memset(f.items, 0, 8 * NSLOTS)
        self._pool.append(f)

    def _new(self, f, slot, op, *cargs):
        """Calls a value-making host function; its result is stored in slot `slot` by C code."""
        if self.ffi is not None:
            for i, a in enumerate(cargs):
                f.cargs[i] = a
            self.ffi.call(op.cif, op.addr, f.items + 8 * slot, ctypes.addressof(f.cargv))
            return f.view[slot]
        # Fallback: the word is a Python int until it is stored (a short window).
        w = op.cfunc(*cargs)
        f.view[slot] = w
        return w

    # ---- registry ----
    def registry_text(self):
        with self.attached():
            f = self._frame()
            try:
                w = self._new(f, RES, self.op_registry)
                if self.kind(w) != K_STRING:
                    raise self._error(w)
                return self._text(w)
            finally:
                self._release(f)

    def registry(self):
        """Every loaded function's registry entry (list of dicts)."""
        return json.loads(self.registry_text())

    def entry(self, name):
        es = self._entries
        if es is None or name not in es:
            es = {e["name"]: e for e in self.registry()}
            self._entries = es
        return es.get(name)

    def lookup(self, name, domain=False):
        """(address, arity, cif, ctypes function) of a domain-style function;
        cached. `domain`: the caller knows `name` is no host-surface function
        (a generated `_api` function), so the registry JSON is not consulted."""
        f = self._funcs.get(name)
        if f is not None:
            return f
        b = name.encode()
        ar = ctypes.c_uint32(0)
        addr = self.registry_lookup(b, len(b), ctypes.byref(ar))
        if not addr:
            raise AttributeError("simple_rt: no function %r in the loaded libraries (%s)"
                                 % (name, ", ".join(sorted(self.libs))))
        n = ar.value
        e = None if domain else self.entry(name)
        if e is not None and e.get("host"):
            raise TypeError("simple_rt: %s is a host-surface function (C types); "
                            "use simple_rt.host(%r)" % (name, name))
        if n > 8:
            raise TypeError("simple_rt: %s has %d parameters (at most 8)" % (name, n))
        cfunc = ctypes.CFUNCTYPE(V, *([V] * n))(addr)
        f = (addr, n, self._arity_cif[n], cfunc)
        self._funcs[name] = f
        return f

    def host(self, name):
        """A host-surface function as a ctypes function with the registry's C types."""
        e = self.entry(name)
        if e is None or not e.get("host"):
            raise AttributeError("simple_rt: %r is not a host-surface function" % name)
        b = name.encode()
        addr = self.registry_lookup(b, len(b), None)
        try:
            res = _CTYPES[e["c_returns"]]
            args = [_CTYPES[p["ctype"]] for p in e["params"]]
        except KeyError as k:
            raise TypeError("simple_rt: no ctypes mapping for C type %s of %s" % (k, name))
        return ctypes.CFUNCTYPE(res, *args)(addr)

    # ---- Python -> RtValue ----
    def _leaf(self, f, slot, x):
        """The word for a non-container (made into `slot` when it needs the heap); None for containers."""
        if x is None:
            return NIL
        t = type(x)
        if t is bool:
            return TRUE if x else FALSE
        if t is int or (isinstance(x, int) and not isinstance(x, bool)):
            x = int(x)
            if INLINE_INT_MIN <= x <= INLINE_INT_MAX:
                return (x << 3) & MASK64
            if not I64_MIN <= x <= I64_MAX:
                raise OverflowError("simple_rt: int %d does not fit in 64 bits" % x)
            return self._new(f, slot, self.op_int, x & MASK64 if self.ffi is not None else x)
        if t is float or isinstance(x, float):
            bits = _fbits(x)
            if bits & TAG_MASK == 0:
                return bits | TAG_FLOAT
            return self._check(self._new(f, slot, self.op_float, bits if self.ffi is not None else float(x)))
        if t is str or isinstance(x, str):
            return self._check(self._blob(f, slot, self.op_string, x.encode("utf-8")))
        if isinstance(x, (bytes, bytearray, memoryview)):
            b = x.tobytes() if isinstance(x, memoryview) else bytes(x)
            return self._check(self._blob(f, slot, self.op_bytes, b))
        if isinstance(x, Handle):
            if x._word is None:
                raise RtError(CODES["Closed"], "Closed", "simple_rt: the handle was released")
            return x._word
        if isinstance(x, (list, tuple, dict)):
            return None
        if callable(x):
            if isinstance(x, Callback):
                return x.word
            return self._callback_word(f, slot, x, None)
        raise TypeError("simple_rt: cannot convert %s to a runtime value" % t.__name__)

    # ---- callbacks (Python callables run by library threads) ----
    def _callback_word(self, f, slot, fn, arity):
        """Makes a Callback handle for `fn` into frame slot `slot`; returns its word."""
        if self.op_callback is None:
            raise TypeError("simple_rt: this libffi_core.so has no rt_callback_new")
        if arity is None:
            arity = _arity_of(fn)
        if arity not in (1, 2):
            raise ValueError("simple_rt: a callback takes 1 or 2 arguments, not %r" % (arity,))
        token = next(_TOKENS)
        _CALLBACKS[token] = (fn, _takes_none(fn))
        try:
            op = self.op_callback if arity == 1 else self.op_callback2
            tramp = _TRAMP1_ADDR if arity == 1 else _TRAMP2_ADDR
            if self.ffi is not None:
                w = self._new(f, slot, op, tramp, token)
            else:
                w = self._new(f, slot, op, ctypes.c_void_p(tramp), ctypes.c_void_p(token))
            self._check(w)
            self._check(self.callback_set_flags(w, 1))  # RT_CALLBACK_RESULT_PINNED
            self._check(self.callback_on_release(w, _RELEASE_ADDR))
        except BaseException:
            _CALLBACKS.pop(token, None)
            raise
        return w

    def callback(self, fn, arity=None):
        """A Callback handle (a `Callback`, usable as a callable argument any
        number of times) running the Python callable `fn` with 1 or 2
        arguments (default: 2 when `fn` needs exactly 2 positional ones)."""
        with self.attached():
            f = self._frame()
            try:
                return Callback(self._callback_word(f, RES, fn, arity), fn)
            finally:
                self._release(f)

    def _error_word(self, f, slot, code, message):
        """An Error value with `code` and `message` made into `slot`."""
        mw = self.build(f, TMP, message)
        if self.ffi is not None:
            return self._new(f, slot, self.op_error_new, code, mw)
        return self._new(f, slot, self.op_error_new, code, mw)

    def _blob(self, f, slot, op, b):
        if self.ffi is not None:
            a = f.blob
            a.p = b  # keeps b alive in `a` until the next blob
            a.n = len(b)
            self.ffi.call(op.cif, op.addr, f.items + 8 * slot, ctypes.addressof(f.cargv))
            return f.view[slot]
        return self._new(f, slot, op, b, len(b))

    def _check(self, w):
        """Raises RtError when `w` (already rooted) is an Error."""
        if w & TAG_MASK == TAG_HEAP and self.kind(w) == K_ERROR:
            raise self._error(w)
        return w

    def _same(self, r, w):
        """`rt_array_push` / `rt_dict_set` return their container, or an Error."""
        if r != w:
            raise self._error(r)

    def _container(self, f, slot, x):
        if isinstance(x, dict):
            w = self._new(f, slot, self.op_dict)
        else:
            w = self._new(f, slot, self.op_array, len(x))
        return self._check(w)

    def build(self, f, slot, x):
        """Builds the value of `x` into frame slot `slot` (must run while attached)."""
        w = self._leaf(f, slot, x)
        if w is None:
            w = self._container(f, slot, x)
            self._fill(f, w, x, 0)
        else:
            f.view[slot] = w
        return w

    def _fill(self, f, w, x, depth):
        # Every new item passes through the TMP slot and goes into its parent
        # at once; the parent is reachable from a frame slot.
        if depth > 1000:
            raise RecursionError("simple_rt: value nested deeper than 1000 levels")
        if isinstance(x, dict):
            for k, v in x.items():
                kw = self._leaf(f, TMP, k)
                if kw is None:
                    raise TypeError("simple_rt: dict keys must be scalars, got %s" % type(k).__name__)
                vw = self._leaf(f, TMP, v) if _is_immediate(v) else None
                if vw is not None:
                    self._same(self.dict_set(w, kw, vw), w)
                    continue
                self._same(self.dict_set(w, kw, NIL), w)  # the key is now reachable
                vw = self._leaf(f, TMP, v)
                if vw is None:
                    cw = self._container(f, TMP, v)
                    self._same(self.dict_set(w, kw, cw), w)
                    self._fill(f, cw, v, depth + 1)
                else:
                    self._same(self.dict_set(w, kw, vw), w)
        else:
            for item in x:
                iw = self._leaf(f, TMP, item)
                if iw is None:
                    cw = self._container(f, TMP, item)
                    self._same(self.array_push(w, cw), w)
                    self._fill(f, cw, item, depth + 1)
                else:
                    self._same(self.array_push(w, iw), w)

    # ---- RtValue -> Python ----
    # Strings and Bytes: with the layout checked at load (`_blob_layout`),
    # the length and data of a word that rt_kind has vouched for are read in
    # place (RtBlobObj: len at +24, data at +32); else through the library.
    def _text(self, w):
        off = self._blob_data
        if off is None:
            n = self.string_len(w)
            return _string_at(self.string_ptr(w), n).decode("utf-8") if n else ""
        base = (w & ~TAG_MASK) + off
        n = _W64[(base - 8) >> 3]
        return _MEM[base:base + n].decode("utf-8") if n else ""

    def _bytes(self, w):
        off = self._blob_data
        if off is None:
            n = self.bytes_len(w)
            return _string_at(self.bytes_ptr(w), n) if n else b""
        base = (w & ~TAG_MASK) + off
        n = _W64[(base - 8) >> 3]
        return _MEM[base:base + n] if n else b""

    def _error(self, w):
        code = self.error_code(w)
        name = (self.error_name(code) or b"Unknown").decode()
        mw = self.error_message(w)
        msg = self._text(mw) if self.kind(mw) == K_STRING else ""
        dw = self.error_details(w)
        details = self.from_value(dw) if dw != NIL else None
        return RtError(code, name, msg, details)

    def from_value(self, w, depth=0):
        """The Python object for word `w`, which must be reachable from a root
        (a frame slot or a pin). Errors become RtError objects (not raised)."""
        tag = w & TAG_MASK
        if tag == TAG_INT:
            return (w - (1 << 64) if w >> 63 else w) >> 3
        if tag == TAG_FLOAT:
            return struct.unpack("<d", struct.pack("<Q", w & ~TAG_MASK & MASK64))[0]
        if w == NIL:
            return None
        if w == TRUE:
            return True
        if w == FALSE:
            return False
        if depth > 1000:
            raise RecursionError("simple_rt: value nested deeper than 1000 levels")
        return self._heap_value(w, self.kind(w), depth)

    def _heap_value(self, w, k, depth=0):
        """from_value for a non-immediate word whose rt_kind is `k`."""
        if k == K_STRING:
            return self._text(w)
        if k == K_BYTES:
            return self._bytes(w)
        if k == K_INT:
            return self.int_get(w)
        if k == K_FLOAT:
            return self.float_get(w)
        if k == K_ARRAY:
            return [self.from_value(self.array_get(w, i), depth + 1) for i in range(self.array_len(w))]
        if k == K_DICT:
            out = {}
            for i in range(self.dict_len(w)):
                key = self.from_value(self.dict_key_at(w, i), depth + 1)
                if isinstance(key, list):
                    key = tuple(key)
                elif isinstance(key, dict):
                    key = tuple(key.items())
                out[key] = self.from_value(self.dict_value_at(w, i), depth + 1)
            return out
        if k == K_ERROR:
            return self._error(w)
        if k == K_HANDLE:
            return Handle(w)
        raise ValueError("simple_rt: invalid value word %#x" % w)

    # ---- calls ----
    def call(self, name, *args):
        """Calls the domain function `name` with Python arguments (missing trailing ones are nil)."""
        try:
            fn = self._calls[name]
        except KeyError:
            fn = self.fn(name)
        return fn(*args)

    def fn(self, name, domain=False):
        """The Python function that calls domain function `name` (see
        `_fast_call`): positional parameters a0..a<arity-1>, each defaulting to
        None (nil); cached. (`domain`: as for `lookup`.)"""
        fn = self._calls.get(name)
        if fn is None:
            addr, n, cif, cfunc = self.lookup(name, domain)
            if self.ffi is None:
                def fn(*args):
                    return self._call_generic(name, addr, n, cif, cfunc, args)
                fn.__name__ = fn.__qualname__ = name
            else:
                fn = _fast_call(self, name, addr, n, cif)
            self._calls[name] = fn
        return fn

    def bind(self, template):
        """A fast function with the signature, defaults and doc of `template`
        (a generated `_api` function `def rt_x(a, b=None): return _call("rt_x", a, b)`),
        or `template` itself when there is no fast path (ctypes mode, a
        function the loaded libraries lack, a signature that differs from the
        registry's arity)."""
        name = template.__name__
        co = template.__code__
        if (self.ffi is None or co.co_kwonlyargcount or co.co_posonlyargcount
                or co.co_flags & 0x0C):  # CO_VARARGS | CO_VARKEYWORDS
            return template
        try:
            fn = self.fn(name, domain=True)
        except (AttributeError, TypeError):
            return template
        fco = fn.__code__
        if fco.co_argcount != co.co_argcount:
            return template
        names = co.co_varnames[:co.co_argcount]
        if set(names) & set(fco.co_varnames[len(names):]):
            return template
        out = types.FunctionType(fco.replace(co_varnames=names + fco.co_varnames[len(names):]),
                                 fn.__globals__, name, template.__defaults__)
        out.__qualname__ = template.__qualname__
        out.__module__ = template.__module__
        out.__doc__ = template.__doc__
        return out

    def _call_generic(self, name, addr, n, cif, cfunc, args):
        if len(args) > n:
            raise TypeError("%s takes at most %d argument%s (%d given)"
                            % (name, n, "" if n == 1 else "s", len(args)))
        with self.attached():
            f = self._frame()
            try:
                for i, a in enumerate(args):
                    self.build(f, i, a)
                for i in range(len(args), n):
                    f.view[i] = NIL
                if self.ffi is not None:
                    self.ffi.call(cif, addr, f.items + 8 * RES, ctypes.addressof(f.argv))
                    w = f.view[RES]
                else:
                    w = cfunc(*f.view[:n])
                    f.view[RES] = w
                if w & TAG_MASK == TAG_HEAP and self.kind(w) == K_ERROR:
                    raise self._error(w)
                return self.from_value(w)
            finally:
                self._release(f)

    def with_value(self, x, fn):
        """Builds `x` and returns fn(word) while the word is rooted (tests, debugging)."""
        with self.attached():
            f = self._frame()
            try:
                return fn(self.build(f, 0, x))
            finally:
                self._release(f)

    def roundtrip(self, x):
        """Python -> value -> Python without a call."""
        return self.with_value(x, self.from_value)


_CALL_SRC = """
def fn(%(params)s):
    if open_[0] and tls.depth:
        _d = True
    else:
        _d = False
        attach()
    try:
        try:
            _f = pool.pop()
        except IndexError:
            _f = new_frame()
        _heap = False
        try:
            _s = _f.sview
%(encode)s
            ffi_call(cif, addr, _f.res, _f.argp)
            _w = _s[8]
            _t = _w & 7
            if _t == 0:
                return _w >> 3
            if _w == 0x0B:
                return True
            if _w == 0x13:
                return False
            if _w == 0x03:
                return None
            if _t == 2:
                _s[8] = _w ^ 2
                return _f.fview[8]
            _heap = True
            return result(_w & 0xFFFFFFFFFFFFFFFF)
        except BaseException:
            _heap = True  # an argument may have been half built
            raise
        finally:
            if _heap:
%(clear)s
            pool.append(_f)
    finally:
        if not _d:
            detach()
"""

# One argument: immediates inline (a float through the slot's double view:
# inline when its low 3 bits are 0), the rest through `arg`.
_ARG_SRC = """\
            if type(a%(i)d) is int and -0x1000000000000000 <= a%(i)d <= 0xFFFFFFFFFFFFFFF:
                _s[%(i)d] = a%(i)d << 3
            elif a%(i)d is None:
                _s[%(i)d] = 0x03
            elif type(a%(i)d) is float:
                _f.fview[%(i)d] = a%(i)d
                if _s[%(i)d] & 7:
                    _heap = True
                    arg(_f, %(i)d, a%(i)d)
                else:
                    _s[%(i)d] |= 2
            elif a%(i)d is True:
                _s[%(i)d] = 0x0B
            elif a%(i)d is False:
                _s[%(i)d] = 0x13
            elif arg(_f, %(i)d, a%(i)d):
                _heap = True
"""


def _fast_call(rt, name, addr, n, cif):
    """The call path of one domain function (libffi mode), resolved once.

    The same protocol as `_call_generic`, with fewer Python steps (the code
    is generated once per arity, like namedtuple's, so that every argument
    is a local): rt_thread_attach / rt_thread_detach around the call unless
    this thread is inside `attached()` (`_OPEN`, then the thread-local
    depth); a pooled frame holds the arguments (slots 0-7) and receives the
    result (slot RES) from `ffi_call`, so a heap result is never held only by
    a Python int. Immediate arguments are encoded into their slots without a
    foreign call; str and bytes are made into their slot by rt_string_new /
    rt_bytes_new (as `Runtime._blob`), anything else goes through
    `Runtime.build`. Missing trailing arguments are nil (the parameters
    default to None). Immediate results are decoded here; any other result is
    read by `result` while it is still in its slot. The slots are cleared on
    release only when one held a heap word (immediates keep nothing alive)."""
    code = _CALL_CODE.get(n)
    if code is None:
        src = _CALL_SRC % {
            "n": n,
            "params": ", ".join("a%d=None" % i for i in range(n)),
            "encode": "".join(_ARG_SRC % {"i": i} for i in range(n)),
            # The slots a call can fill: arguments, RES, TMP (nested items).
            "clear": "".join("                _s[%d] = 0\n" % i for i in list(range(n)) + [RES, TMP]),
        }
        filename = "<simple_rt call/%d>" % n
        code = _CALL_CODE[n] = compile(src, filename, "exec")
        linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)  # for tracebacks
    build = rt.build
    kind = rt.kind
    error = rt._error
    ffi_call = rt.ffi.call
    op_string = rt.op_string
    op_bytes = rt.op_bytes

    layout = rt._blob_data is not None
    hk_string = HK_STRING_BYTES_MAGIC | HK_STRING
    hk_bytes = HK_STRING_BYTES_MAGIC | HK_BYTES
    w64 = _W64

    def arg(f, i, a):
        """Encodes argument `a` into slot `i`; True when it made a heap word."""
        t = type(a)
        if t is str or t is bytes:
            # As Runtime._blob: rt_string_new / rt_bytes_new store into the slot.
            if t is str:
                a = a.encode("utf-8")
                op, hk = op_string, hk_string
            else:
                op, hk = op_bytes, hk_bytes
            bl = f.blob
            bl.p = a  # keeps `a` alive until the next blob
            bl.n = len(a)
            ffi_call(op.cif, op.addr, f.argv[i], f.cargp)
            w = f.view[i]
            # The new object's header says String / Bytes (layout checked at
            # load), or else it may be an Error (too large, out of memory).
            if not (layout and w & TAG_MASK == TAG_HEAP and w64[w >> 3] & 0xFFFFFFFF == hk):
                if w & TAG_MASK == TAG_HEAP and kind(w) == K_ERROR:
                    raise error(w)
            return True
        build(f, i, a)  # boxed floats, big ints, containers, handles, subclasses...
        return True

    heap_value = rt._heap_value
    from_value = rt.from_value
    mem = _MEM
    off = rt._blob_data

    def result(w):
        """The Python object for a result word that is no common immediate
        (it sits in slot RES meanwhile); raises RtError for an Error."""
        if w & TAG_MASK != TAG_HEAP:
            return from_value(w)
        k = kind(w)
        if k == K_STRING and layout:
            p = (w ^ TAG_HEAP) + off
            n = w64[(p - 8) >> 3]
            return mem[p:p + n].decode("utf-8") if n else ""
        if k == K_ERROR:
            raise error(w)
        return heap_value(w, k)

    ns = {
        "tls": _tls, "open_": _OPEN, "attach": rt.attach, "detach": rt.detach, "pool": rt._pool,
        "new_frame": rt._frame, "ffi_call": ffi_call, "result": result, "arg": arg,
        "cif": cif, "addr": addr,
    }
    exec(code, ns)
    fn = ns["fn"]
    fn.__name__ = fn.__qualname__ = name
    return fn


_CALL_CODE = {}


def _fbits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def _is_immediate(x):
    if x is None or type(x) is bool:
        return True
    if type(x) is int:
        return INLINE_INT_MIN <= x <= INLINE_INT_MAX
    if type(x) is float:
        return struct.unpack("<Q", struct.pack("<d", x))[0] & TAG_MASK == 0
    return False


class _Attached:
    """`rt_thread_attach` / `rt_thread_detach` around a block; nests cheaply per thread."""

    __slots__ = ("rt",)

    def __init__(self, rt):
        self.rt = rt

    def __enter__(self):
        d = _tls.depth
        if d == 0:
            self.rt.attach()
            with _OPEN_LOCK:
                _OPEN[0] += 1
        _tls.depth = d + 1
        return self.rt

    def __exit__(self, *exc):
        d = _tls.depth - 1
        _tls.depth = d
        if d == 0:
            with _OPEN_LOCK:
                _OPEN[0] -= 1
            self.rt.detach()
        return False


#: How many threads are inside an `attached()` block: while none is, a call
#: need not read the thread-local depth. Only a shortcut: the library counts
#: attach/detach per thread itself, so a call that attaches and detaches
#: while its thread is attached already is merely slower, never unsafe.
_OPEN = [0]
_OPEN_LOCK = threading.RLock()  # re-entrant: a __del__ may open a bracket anywhere


_RUNTIME = None
_LOAD_LOCK = threading.Lock()


def load(directory=None):
    """Loads the libraries once (from `directory`, or `lib_dir()`); returns the Runtime."""
    global _RUNTIME
    if _RUNTIME is not None:
        return _RUNTIME
    with _LOAD_LOCK:
        if _RUNTIME is None:
            _RUNTIME = Runtime(directory)
    return _RUNTIME


def runtime():
    return _RUNTIME if _RUNTIME is not None else load()


def call(name, *args):
    """Calls the domain function `name` with Python arguments (missing trailing ones are nil)."""
    rt = _RUNTIME
    if rt is None:
        rt = load()
    try:
        fn = rt._calls[name]
    except KeyError:
        fn = rt.fn(name)
    return fn(*args)


def host(name):
    """A host-surface function (C types) as a ctypes function."""
    return runtime().host(name)


def registry():
    """Every loaded function's registry entry."""
    return runtime().registry()


def restrict(policy):
    """Narrows the process capability policy: a dict, or the text form
    (`fs.read=/srv,/tmp;sys.info=false;*=false`). Never widens it."""
    if isinstance(policy, str):
        policy = call("rt_cap_parse", policy)
    if not isinstance(policy, dict):
        raise TypeError("simple_rt.restrict: policy must be a dict or text, got %s" % type(policy).__name__)
    return call("rt_cap_restrict", policy)


def current_policy():
    """The policy in force: {capability: True | False | [scopes]}."""
    return call("rt_cap_current")


def loaded_libraries():
    """Names of the loaded libraries ("core", "system", ...)."""
    return sorted(runtime().libs)
