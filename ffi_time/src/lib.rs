//! ffi_time: wall and monotonic clocks, UTC calendar fields, RFC 3339.
//!
//! One unit for instants everywhere: **unix microseconds** (an int, microseconds
//! since 1970-01-01T00:00:00Z, negative before it). `rt_time_now_unix_micros`
//! returns it, the `rt_timestamp_get_*` functions take it, and
//! `rt_time_format_iso8601` formats it. For nanosecond precision and a kept
//! UTC offset, `rt_time_parse_iso8601` returns a dict
//! `{micros, secs, nanos, offset_minutes}` that `rt_time_format_iso8601` also
//! accepts, so text → dict → text and dict → text → dict are exact.
//! `rt_time_parse_iso8601_micros` is the allocation-free variant returning
//! the int (digits past the microsecond dropped toward the past).
//!
//! Files: `time.rs` (clocks, sleep), `timestamp.rs` (calendar fields),
//! `chrono.rs` (RFC 3339 format and parse); `clock.rs` and `calendar.rs`
//! serve Simple's names (now in other units, current fields, sleep,
//! timestamp arithmetic and text). No capability is needed.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod calendar;
pub mod chrono;
pub mod clock;
pub mod time;
pub mod timestamp;
