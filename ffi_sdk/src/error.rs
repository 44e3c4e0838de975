//! Errors: stable codes (SPEC §3), the Rust-side `Error`, and the one message
//! format every domain uses: `rt_fn: <what> (<input>)`.

use crate::abi;
use crate::value::Value;
use std::fmt::Display;

/// Stable error codes. Numbers never change; new codes are appended.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    InvalidArgument = 1,
    TypeMismatch = 2,
    NotFound = 3,
    AlreadyExists = 4,
    PermissionDenied = 5,
    CapabilityDenied = 6,
    Timeout = 7,
    Io = 8,
    Parse = 9,
    Unsupported = 10,
    Closed = 11,
    Panic = 12,
    Internal = 13,
    OutOfRange = 14,
    LimitExceeded = 15,
    Busy = 16,
    Interrupted = 17,
    Cancelled = 18,
}

impl Code {
    pub const ALL: [Code; 18] = [
        Code::InvalidArgument,
        Code::TypeMismatch,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::CapabilityDenied,
        Code::Timeout,
        Code::Io,
        Code::Parse,
        Code::Unsupported,
        Code::Closed,
        Code::Panic,
        Code::Internal,
        Code::OutOfRange,
        Code::LimitExceeded,
        Code::Busy,
        Code::Interrupted,
        Code::Cancelled,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "InvalidArgument",
            Code::TypeMismatch => "TypeMismatch",
            Code::NotFound => "NotFound",
            Code::AlreadyExists => "AlreadyExists",
            Code::PermissionDenied => "PermissionDenied",
            Code::CapabilityDenied => "CapabilityDenied",
            Code::Timeout => "Timeout",
            Code::Io => "Io",
            Code::Parse => "Parse",
            Code::Unsupported => "Unsupported",
            Code::Closed => "Closed",
            Code::Panic => "Panic",
            Code::Internal => "Internal",
            Code::OutOfRange => "OutOfRange",
            Code::LimitExceeded => "LimitExceeded",
            Code::Busy => "Busy",
            Code::Interrupted => "Interrupted",
            Code::Cancelled => "Cancelled",
        }
    }
    /// One-line meaning, for the generated header and docs.
    pub fn doc(self) -> &'static str {
        match self {
            Code::InvalidArgument => "an argument has the right kind but a bad value",
            Code::TypeMismatch => "an argument has the wrong kind",
            Code::NotFound => "a file, program, key or symbol does not exist",
            Code::AlreadyExists => "the target exists already",
            Code::PermissionDenied => "the operating system refused",
            Code::CapabilityDenied => "the process policy refused (SPEC section 7)",
            Code::Timeout => "a deadline passed",
            Code::Io => "any other operating-system failure (details.errno)",
            Code::Parse => "malformed input (details.line/column/position)",
            Code::Unsupported => "cannot work on this machine or build",
            Code::Closed => "the handle was closed",
            Code::Panic => "a bug inside the library was caught at the boundary",
            Code::Internal => "an invariant of the runtime failed (e.g. out of memory)",
            Code::OutOfRange => "an index or number is outside its range",
            Code::LimitExceeded => "a configured limit (size, depth, count) was reached",
            Code::Busy => "the resource is held by someone else (e.g. a lock)",
            Code::Interrupted => "the user interrupted the call (Ctrl-C at a prompt)",
            Code::Cancelled => "the call was cancelled by its caller's cancel token",
        }
    }
    pub fn from_u32(c: u32) -> Option<Code> {
        Code::ALL.iter().copied().find(|k| *k as u32 == c)
    }
}

/// A detail value attached to an error.
#[derive(Clone, Debug)]
pub enum Detail {
    Text(String),
    Int(i64),
}

/// A failure on its way to becoming an Error value.
#[derive(Clone, Debug)]
pub struct Error {
    pub code: Code,
    pub message: String,
    pub details: Vec<(&'static str, Detail)>,
}

pub type RtResult<T> = Result<T, Error>;

/// Quotes and clips an input for a message (at most 80 characters shown).
pub fn quote(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{:?}", out)
}

impl Error {
    /// `func: what (input)`.
    pub fn new(code: Code, func: &str, what: impl Display, input: impl Display) -> Error {
        Error { code, message: format!("{func}: {what} ({input})"), details: Vec::new() }
    }
    /// `func: what` (no input to name).
    pub fn plain(code: Code, func: &str, what: impl Display) -> Error {
        Error { code, message: format!("{func}: {what}"), details: Vec::new() }
    }
    pub fn with(mut self, key: &'static str, value: impl Into<Detail>) -> Error {
        self.details.push((key, value.into()));
        self
    }

    pub fn invalid(func: &str, what: impl Display, input: impl Display) -> Error {
        Error::new(Code::InvalidArgument, func, what, input)
    }
    pub fn not_found(func: &str, what: impl Display, input: impl Display) -> Error {
        Error::new(Code::NotFound, func, what, input)
    }
    pub fn parse(func: &str, what: impl Display, input: impl Display) -> Error {
        Error::new(Code::Parse, func, what, input)
    }
    pub fn unsupported(func: &str, why: impl Display) -> Error {
        Error::plain(Code::Unsupported, func, why)
    }
    pub fn internal(func: &str, what: impl Display) -> Error {
        Error::plain(Code::Internal, func, what)
    }

    /// An operating-system error on `subject` (a path, program, ...), code chosen from its kind.
    pub fn io(func: &str, subject: impl Display, e: &std::io::Error) -> Error {
        use std::io::ErrorKind as K;
        let code = match e.kind() {
            K::NotFound => Code::NotFound,
            K::PermissionDenied | K::ReadOnlyFilesystem => Code::PermissionDenied,
            K::AlreadyExists => Code::AlreadyExists,
            // A directory where a file is expected, or the reverse, is the caller's mistake.
            K::InvalidInput | K::InvalidFilename | K::IsADirectory | K::NotADirectory => Code::InvalidArgument,
            K::InvalidData => Code::Parse,
            K::TimedOut => Code::Timeout,
            K::WouldBlock => Code::Busy,
            K::Unsupported => Code::Unsupported,
            _ => Code::Io,
        };
        let mut err = Error::new(code, func, strip_os_suffix(e), subject);
        if let Some(n) = e.raw_os_error() {
            err = err.with("errno", n as i64);
        }
        err
    }

    /// Makes the Error value (collector heap).
    pub fn into_value(self) -> Value {
        let details = if self.details.is_empty() {
            Value::NIL
        } else {
            let d = Value::dict();
            for (k, v) in &self.details {
                let v = match v {
                    Detail::Text(s) => Value::text(s),
                    Detail::Int(i) => Value::int(*i),
                };
                d.set(k, v);
            }
            d
        };
        // SAFETY: pointer and length of the live `String` `self.message` (UTF-8, readable for its
        // length during the call; core copies the bytes); `details` is NIL or the dict just built,
        // held in a local on this stack, where the collector sees it, until the call returns.
        Value::from_raw(unsafe {
            abi::rt__error_make(self.code as u32, self.message.as_ptr(), self.message.len(), details.raw())
        })
    }

    /// Reads an Error value back (for errors returned by the core's own functions).
    pub fn from_value(v: Value) -> Error {
        // SAFETY: `Value` contract (value.rs): `v` is a live runtime word, so `heap_ptr` reads a
        // live header or gives null. Only a non-null header of kind HK_ERROR is read as an
        // `ErrorObj` (the layout core allocates for that kind); its `message` is a string word
        // the error object keeps alive while `v` is, and it is copied out before returning.
        unsafe {
            let p = abi::heap_ptr(v.raw());
            if p.is_null() || (*p).kind & 0xFFFF != abi::HK_ERROR {
                return Error::plain(Code::Internal, "rt", "not an error value");
            }
            let e = p as *const abi::ErrorObj;
            let code = Code::from_u32((*e).code).unwrap_or(Code::Internal);
            let msg = Value::from_raw((*e).message).as_text().unwrap_or("").to_string();
            Error { code, message: msg, details: Vec::new() }
        }
    }
}

fn strip_os_suffix(e: &std::io::Error) -> String {
    // "No such file or directory (os error 2)" -> "No such file or directory"; errno goes to details.
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

impl From<String> for Detail {
    fn from(s: String) -> Detail {
        Detail::Text(s)
    }
}
impl From<&str> for Detail {
    fn from(s: &str) -> Detail {
        Detail::Text(s.to_string())
    }
}
impl From<i64> for Detail {
    fn from(i: i64) -> Detail {
        Detail::Int(i)
    }
}
impl From<usize> for Detail {
    fn from(i: usize) -> Detail {
        Detail::Int(i as i64)
    }
}
impl From<u64> for Detail {
    fn from(i: u64) -> Detail {
        Detail::Int(i as i64)
    }
}
impl From<i32> for Detail {
    fn from(i: i32) -> Detail {
        Detail::Int(i as i64)
    }
}
