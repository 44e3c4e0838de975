"""pytest configuration for the binding tests.

The shared helpers (child interpreters, RtError assertions, per-library skip
marks) live in helpers.py next to this file; putting this directory on
sys.path lets every test file `from helpers import ...` whatever pytest's
import mode is.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
