"""The host surface: the runtime's C-typed functions (`rt_kind`,
`rt_value_pin`, `rt_error_name`, `rt_thread_attach` ...), as ctypes
functions on the loaded libffi_core.so, for code that works with raw value
words. Not needed for ordinary calls: the domain functions at module level
convert Python objects themselves.

    from simple_rt import host
    host.rt_error_name(3)          # b"NotFound"
    host("rt_value_pin_count")     # the same, by name
"""

import sys
import types

from . import _backend


def __getattr__(name):
    if not name.startswith("rt_"):
        raise AttributeError("module 'simple_rt.host' has no attribute %r" % name)
    return _backend.host(name)


class _HostModule(types.ModuleType):
    def __call__(self, name):
        """The host-surface function `name` (ctypes)."""
        return _backend.host(name)

    def __dir__(self):
        try:
            return sorted(e["name"] for e in _backend.registry() if e.get("host"))
        except Exception:
            return []


sys.modules[__name__].__class__ = _HostModule
