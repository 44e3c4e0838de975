"""The package's runtime over the native extension `simple_rt._native` (PyO3).

The extension links libffi_core.so (found beside it through its rpath
$ORIGIN), so the libraries are the ones in this package's directory: a wheel
carries them there; in the repository `./x.sh test`
links the built ones there (bindings/python/dev.sh). Domain libraries are loaded with dlopen
(RTLD_LOCAL) and every function is found through the registry.

Calls: arguments and results convert natively in one pass; an Error raises
the RtError subclass of its code (`_errors.py`); the GIL is released while
a blocking function runs (and whenever a handle or callable is passed);
the calling thread is registered with the collector only inside a call.
"""

import ctypes
import json
import os
import threading

from ._errors import CODES, RtError, make as _make_error

#: Domain libraries loaded after libffi_core.so, when present.
DOMAINS = [
    "io", "process", "time", "crypto", "archive", "codegen", "net", "concurrent",
    "data", "system", "cli", "serde", "torch", "cuda", "vulkan",
]

HERE = os.path.dirname(os.path.abspath(__file__))

K_INVALID, K_NIL, K_BOOL, K_INT, K_FLOAT, K_STRING, K_BYTES, K_ARRAY, K_DICT, K_ERROR, K_HANDLE = range(11)


class LoadError(ImportError):
    """The libraries could not be found or loaded."""


def _import_native():
    try:
        from . import _native
    except ImportError as e:
        msg = str(e)
        if "libgc" in msg:
            raise LoadError("simple_rt needs the Boehm collector, the one system dependency: "
                            "install libgc1 (Debian/Ubuntu: apt-get install libgc1; Fedora: dnf install gc) "
                            "(%s)" % msg) from e
        raise LoadError("simple_rt: the native extension cannot be loaded (%s); build it with "
                        "`pip install ./bindings/python` or `bindings/python/dev.sh`" % msg) from e
    return _native


_native = _import_native()
Handle = _native.Handle
Callback = _native.Callback
Function = _native.Function
Value = _native.Value


def lib_dir():
    """The directory the libraries are loaded from: the package's own."""
    return HERE


def _check_env_dir():
    """`SIMPLE_RT_LIB_DIR` (a ctypes-runtime setting) must name these same
    libraries: the extension links the libffi_core.so beside it, and a second
    copy would be a second runtime."""
    env = os.environ.get("SIMPLE_RT_LIB_DIR")
    if not env:
        return
    core = os.path.join(env, "libffi_core.so")
    if not os.path.isfile(core):
        raise LoadError("simple_rt: SIMPLE_RT_LIB_DIR: %s not found" % core)
    if os.path.realpath(core) != os.path.realpath(os.path.join(HERE, "libffi_core.so")):
        raise LoadError("simple_rt: SIMPLE_RT_LIB_DIR=%s is not the package's libraries (%s); the native "
                        "extension uses the ones beside it (unset SIMPLE_RT_LIB_DIR, or SIMPLE_RT_BACKEND=ctypes)"
                        % (env, HERE))


_check_env_dir()


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


def callback(fn, arity=None):
    """A reusable Callback handle for the Python callable `fn` (1 or 2 arguments)."""
    if isinstance(fn, Callback):
        return fn
    return _native.callback(fn, arity or _arity_of(fn), _takes_none(fn))


class _Attached:
    """`with runtime().attached():` keeps this thread registered with the
    collector for a block of calls (each call otherwise attaches itself)."""

    def __enter__(self):
        _native.thread_attach()
        return self

    def __exit__(self, *exc):
        _native.thread_detach()
        return False


class Runtime:
    """The loaded libraries (one per process)."""

    mode = "native"

    def __init__(self):
        self.dir = HERE
        self.libs = ["core"] + _native.load(HERE, DOMAINS)
        self._registry = None
        self._blocking = None
        self._fns = {}
        self._host = {}
        self.core = None

    def attached(self):
        return _Attached()

    def registry(self):
        if self._registry is None:
            self._registry = json.loads(_native.registry_json())
        return self._registry

    def entry(self, name):
        for e in self.registry():
            if e["name"] == name:
                return e
        return None

    def blocking(self):
        if self._blocking is None:
            self._blocking = {e["name"] for e in self.registry() if e.get("blocking")}
        return self._blocking

    def fn(self, name):
        """The bound `Function` for domain function `name` (cached)."""
        f = self._fns.get(name)
        if f is None:
            e = self.entry(name)
            if e is None:
                raise AttributeError("%s: not in the registry of the loaded libraries" % name)
            if e.get("host"):
                raise TypeError("%s is a host-surface function (C types): use simple_rt.host" % name)
            f = Function(name, name in self.blocking())
            self._fns[name] = f
        return f

    def call(self, name, *args):
        try:
            f = self._fns[name]
        except KeyError:
            f = self.fn(name)
        return f(*args)

    def host(self, name):
        """A host-surface function (C types) as a ctypes function on the loaded libffi_core.so."""
        f = self._host.get(name)
        if f is not None:
            return f
        e = self.entry(name)
        if e is None or not e.get("host"):
            raise AttributeError("%s: not a host-surface function of the loaded libraries" % name)
        from ._host_types import ctype
        if self.core is None:
            # The copy the extension linked (already loaded: no second runtime).
            self.core = ctypes.CDLL(os.path.join(HERE, "libffi_core.so"), mode=os.RTLD_NOLOAD | os.RTLD_NOW)
        f = getattr(self.core, name)
        f.restype = ctype(e.get("c_returns") or "RtValue")
        f.argtypes = [ctype(p.get("ctype") or "RtValue") for p in e.get("params", [])]
        self._host[name] = f
        return f

    def roundtrip(self, x):
        """`x` converted to a runtime value and back."""
        return _native.roundtrip(x)

    @property
    def abi_version(self):
        return _native.ABI_VERSION

    def kind(self, w):
        """rt_kind of word `w`."""
        return self.host("rt_kind")(w)

    def with_value(self, x, fn):
        """Builds the value for `x`, calls fn(word) while it is kept alive, returns fn's result."""
        return _native.with_value(x, fn)

    def from_value(self, w):
        """The Python object for word `w` (reachable: pinned, or held by the caller)."""
        return _native.from_word(w)

    def lookup(self, name, domain=False):
        """(address, arity, None, None) of a loaded function (AttributeError when unknown)."""
        r = _native.lookup_fn(name)
        if r is None:
            raise AttributeError("%s: not in the registry of the loaded libraries" % name)
        return r[0], r[1], None, None

    def live_callbacks(self):
        """Python callbacks the library may still call (dropped by their release)."""
        return _native.live_callbacks()

    def pin(self, w):
        self.host("rt_value_pin")(w)

    def unpin(self, w):
        self.host("rt_value_unpin")(w)


_RUNTIME = None
_LOAD_LOCK = threading.Lock()


def _to_callback(fn):
    return callback(fn)


_native.set_hooks(_make_error, _to_callback, RtError)

# The JSON fast path remembers the last str it transcoded to UTF-8 (parsing the
# same str again is then free); after each collection, it lets go of it once
# nothing else holds it.
import gc as _gc  # noqa: E402

_gc.callbacks.append(_native.gc_callback)


def load(directory=None):
    """Loads the libraries once; returns the Runtime. (`directory` must be
    None or the package's directory: the extension links the libffi_core.so
    beside it, and a second copy would be a second runtime.)"""
    global _RUNTIME
    if directory is not None and os.path.realpath(directory) != os.path.realpath(HERE):
        raise LoadError("simple_rt (native): the libraries are the ones beside the extension (%s), not %s"
                        % (HERE, directory))
    if _RUNTIME is None:
        with _LOAD_LOCK:
            if _RUNTIME is None:
                _RUNTIME = Runtime()
    return _RUNTIME


def runtime():
    return _RUNTIME if _RUNTIME is not None else load()


def call(name, *args):
    """Calls the domain function `name` with Python arguments (missing trailing ones are nil)."""
    return runtime().call(name, *args)


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
