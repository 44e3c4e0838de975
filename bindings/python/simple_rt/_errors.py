"""`RtError` and one subclass per error code, each also inheriting the
matching Python builtin, so `except FileNotFoundError` catches NotFound:

| code | class | also a |
|---|---|---|
| 1 InvalidArgument | `InvalidArgumentError` | ValueError |
| 2 TypeMismatch | `TypeMismatchError` | TypeError |
| 3 NotFound | `NotFoundError` | FileNotFoundError |
| 4 AlreadyExists | `AlreadyExistsError` | FileExistsError |
| 5 PermissionDenied | `PermissionDeniedError` | PermissionError |
| 6 CapabilityDenied | `CapabilityDeniedError` | PermissionError |
| 7 Timeout | `TimeoutError_` | TimeoutError |
| 8 Io | `IoError` | OSError |
| 9 Parse | `ParseError` | ValueError |
| 10 Unsupported | `UnsupportedError` | NotImplementedError |
| 11 Closed | `ClosedError` | ValueError (as I/O on a closed file) |
| 12 Panic, 13 Internal | `PanicError`, `InternalError` | RuntimeError |
| 14 OutOfRange | `OutOfRangeError` | ValueError |
| 15 LimitExceeded | `LimitExceededError` | (RtError only) |
| 16 Busy | `BusyError` | BlockingIOError |
| 17 Interrupted | `InterruptedError_` | InterruptedError (not KeyboardInterrupt: the runtime was interrupted, not the user) |
| 18 Cancelled | `CancelledError` | (RtError only) |

Every instance has `code` (int, stable), `name` ("NotFound"), `message`
(`rt_fn: what (input)`) and `details` (dict or None). `RtError(code, name,
message, details)` builds the subclass of `code`.
"""

#: Error code numbers (stable, SPEC section 3; ffi_sdk/src/error.rs).
CODES = {
    "InvalidArgument": 1, "TypeMismatch": 2, "NotFound": 3, "AlreadyExists": 4,
    "PermissionDenied": 5, "CapabilityDenied": 6, "Timeout": 7, "Io": 8, "Parse": 9,
    "Unsupported": 10, "Closed": 11, "Panic": 12, "Internal": 13, "OutOfRange": 14,
    "LimitExceeded": 15, "Busy": 16, "Interrupted": 17, "Cancelled": 18,
}
NAMES = {c: n for n, c in CODES.items()}

#: code -> the subclass (filled below).
BY_CODE: dict = {}


class RtError(Exception):
    """An Error value returned by a runtime function.

    `code` (int, stable), `name` ("CapabilityDenied"), `message`
    ("rt_hostname needs sys.info"), `details` (dict or None).
    Constructing `RtError(code, ...)` gives the subclass for `code`.
    """

    def __new__(cls, code=0, name=None, message="", details=None, *rest):
        if cls is RtError:
            cls = BY_CODE.get(code, RtError)
        for base in cls.__mro__[1:]:
            if base is not RtError and not issubclass(base, RtError):
                # the first builtin base: OSError's own __new__ would read
                # (errno, strerror) from the arguments and pick a subclass
                return (OSError if issubclass(base, OSError) else base).__new__(cls)
        return Exception.__new__(cls)

    def __init__(self, code=0, name=None, message="", details=None, *rest):
        Exception.__init__(self, code, name, message, details)
        self.code = code
        self.name = name or NAMES.get(code, "Unknown")
        self.message = message
        self.details = details

    def __str__(self):
        return "%s: %s" % (self.name, self.message)

    def __repr__(self):
        return "RtError(%d, %r, %r, %r)" % (self.code, self.name, self.message, self.details)

    def __reduce__(self):
        return (RtError, (self.code, self.name, self.message, self.details))


def _make_class(code, cls_name, builtin):
    bases = (RtError,) if builtin is None else (RtError, builtin)
    doc = "Error code %d (%s)%s." % (code, NAMES[code], "" if builtin is None else ", also a " + builtin.__name__)
    ns = {"__doc__": doc, "__module__": "simple_rt"}
    cls = type(cls_name, bases, ns)
    BY_CODE[code] = cls
    return cls


InvalidArgumentError = _make_class(1, "InvalidArgumentError", ValueError)
TypeMismatchError = _make_class(2, "TypeMismatchError", TypeError)
NotFoundError = _make_class(3, "NotFoundError", FileNotFoundError)
AlreadyExistsError = _make_class(4, "AlreadyExistsError", FileExistsError)
PermissionDeniedError = _make_class(5, "PermissionDeniedError", PermissionError)
CapabilityDeniedError = _make_class(6, "CapabilityDeniedError", PermissionError)
TimeoutError_ = _make_class(7, "TimeoutError", TimeoutError)
IoError = _make_class(8, "IoError", OSError)
ParseError = _make_class(9, "ParseError", ValueError)
UnsupportedError = _make_class(10, "UnsupportedError", NotImplementedError)
ClosedError = _make_class(11, "ClosedError", ValueError)
PanicError = _make_class(12, "PanicError", RuntimeError)
InternalError = _make_class(13, "InternalError", RuntimeError)
OutOfRangeError = _make_class(14, "OutOfRangeError", ValueError)
LimitExceededError = _make_class(15, "LimitExceededError", None)
BusyError = _make_class(16, "BusyError", BlockingIOError)
InterruptedError_ = _make_class(17, "InterruptedError", InterruptedError)
CancelledError = _make_class(18, "CancelledError", None)

#: The subclasses by error name ("NotFound" -> NotFoundError).
BY_NAME = {NAMES[c]: cls for c, cls in BY_CODE.items()}


def make(code, message, details=None):
    """The exception object for an Error value (not raised)."""
    return BY_CODE.get(code, RtError)(code, NAMES.get(code, "Unknown"), message, details)


__all__ = ["RtError", "CODES", "BY_CODE", "BY_NAME", "make"] + [
    n for n, c in list(globals().items()) if isinstance(c, type) and issubclass(c, RtError) and c is not RtError]
