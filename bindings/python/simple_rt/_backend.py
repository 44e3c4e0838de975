"""The package's runtime: the native extension (`_nrt.py` over
`simple_rt._native`). Kept as the one import point of the generated `_api.py`."""

from ._errors import RtError  # noqa: F401
from ._nrt import *  # noqa: F401,F403
from ._nrt import _native  # noqa: F401

BACKEND = "native"


def merge_options(opts, options):
    """`opts` (a dict or None) updated with the keyword options."""
    d = dict(opts) if opts else {}
    d.update(options)
    return d
