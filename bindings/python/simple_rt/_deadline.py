"""Deadlines and cancellation (docs/DEADLINES.md) for Python code.

    with simple_rt.deadline(2.5):          # every blocking call in the block
        simple_rt.rt_process_run("make")   # raises TimeoutError (code 7) past it

    c = simple_rt.Cancel()
    threading.Timer(1.0, c.cancel).start()
    with c:                                # bound to this thread in the block
        simple_rt.rt_sleep_ms(60_000)      # raises CancelledError (code 18)

    with simple_rt.Cancel(sigint=True):    # Ctrl-C cancels the running call,
        simple_rt.rt_http_get(url)         # then KeyboardInterrupt is raised

The deadline and bound tokens belong to the calling thread (threads started
by the library's own rt_thread_spawn / rt_parallel_map inherit them).
Scopes nest: an inner `deadline` only shortens, and on exit the outer one
is back. Built on public functions only: the host surface
(`simple_rt.host.rt_deadline_*`, `rt_cancel_trigger_signal_safe`) and the
domain functions `rt_cancel_*`.
"""

import importlib
import os
import signal
import threading

# The host-surface module (not a function of the same name from _api).
_host = importlib.import_module(__package__ + ".host")

__all__ = ["deadline", "Cancel", "deadline_remaining"]


def _api(name):
    import simple_rt

    return getattr(simple_rt, name)


class deadline:
    """Context manager: a deadline `seconds` from now for this thread's
    blocking library calls (Error Timeout -> `TimeoutError`). Nested blocks
    only shorten; the previous deadline is restored on exit."""

    def __init__(self, seconds):
        self.micros = int(seconds * 1_000_000)
        self._prev = None

    def __enter__(self):
        self._prev = int(_host.rt_deadline_set(self.micros))
        return self

    def __exit__(self, *exc):
        _host.rt_deadline_restore(self._prev)
        return False

    @property
    def remaining(self):
        """Seconds left (0.0 when passed)."""
        return deadline_remaining()


def deadline_remaining():
    """Seconds left until this thread's deadline; None when there is none."""
    us = int(_host.rt_deadline_remaining())
    return None if us < 0 else us / 1_000_000


class Cancel:
    """A cancel token. `cancel()` from any thread makes the blocking calls of
    the threads it is bound to (`with token:`) raise CancelledError promptly,
    and later ones at once; it cannot be reset.

    `sigint=True`: while bound (main thread only), Ctrl-C triggers it, so a
    long library call stops at once instead of at its end; Python's own
    SIGINT handling then raises KeyboardInterrupt as usual. It works through
    `signal.set_wakeup_fd` (Python's C-level handler writes the signal number
    to a pipe; a helper thread reads it and triggers the token), restored on
    exit."""

    def __init__(self, sigint=False):
        self.handle = _api("rt_cancel_new")()
        self.id = int(_api("rt_cancel_id")(self.handle))
        self.sigint = sigint
        self._watch = None

    def cancel(self):
        """Triggers the token (idempotent)."""
        _api("rt_cancel_trigger")(self.handle)

    @property
    def cancelled(self):
        return bool(_api("rt_cancel_is_cancelled")(self.handle))

    def __enter__(self):
        _api("rt_cancel_bind")(self.handle)
        if self.sigint and threading.current_thread() is threading.main_thread():
            self._watch = _SigintWatch(self.id)
        return self

    def __exit__(self, *exc):
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        _api("rt_cancel_unbind")()
        return False


class _SigintWatch:
    """Routes SIGINT to a token while the main thread may sit in a library
    call with the GIL released (where Python-level handlers cannot run)."""

    def __init__(self, token_id):
        self.token_id = token_id
        self.r, self.w = os.pipe()
        os.set_blocking(self.w, False)
        self.prev_fd = signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        self.done = False
        self.thread = threading.Thread(target=self._run, name="simple_rt-sigint", daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                data = os.read(self.r, 64)
            except OSError:
                return
            if self.done or not data:
                return
            if signal.SIGINT in data:
                _host.rt_cancel_trigger_signal_safe(self.token_id)
            if self.prev_fd >= 0:
                try:
                    os.write(self.prev_fd, data)
                except OSError:
                    pass

    def stop(self):
        signal.set_wakeup_fd(self.prev_fd)
        self.done = True
        try:
            os.write(self.w, b"\0")
        except OSError:
            pass
        self.thread.join(1.0)
        os.close(self.r)
        os.close(self.w)
