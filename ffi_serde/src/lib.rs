//! ffi_serde: JSON, TOML, YAML and bincode to and from values (plan §4.2).
//!
//! | export | input | result |
//! |---|---|---|
//! | `rt_json_parse(text, opts)` | JSON text or UTF-8 bytes; opts.bigint | value |
//! | `rt_json_stringify(value, opts)` | opts.pretty, opts.sort_keys | text |
//! | `rt_toml_parse(text)` | TOML 1.0/1.1 document | dict |
//! | `rt_toml_stringify(dict, opts)` | opts.pretty, opts.sort_keys, opts.datetimes | text |
//! | `rt_yaml_parse(text, opts)` / `rt_yaml_parse_all(text, opts)` | opts.bigint, opts.tags | value / array of documents |
//! | `rt_yaml_stringify(value, opts)` | opts.sort_keys | text |
//! | `rt_bincode_encode(value)` / `rt_bincode_decode(bytes)` | any value tree | bytes / value |
//!
//! # The value mapping (one implementation, `convert.rs`, for every format)
//!
//! Reading:
//! - objects, tables, mappings -> insertion-ordered dicts (document order);
//!   arrays, sequences -> arrays; strings -> text; true/false -> bool;
//!   null / `~` / empty node -> nil.
//! - integers -> int (all of i64, inline or boxed, lossless). Integers outside
//!   the 64-bit range: JSON and YAML follow `opts.bigint`: `"float"` (default,
//!   the nearest double, like JavaScript), `"text"` (the digits as text) or
//!   `"error"` (Error OutOfRange); TOML forbids them (Error Parse), as its
//!   specification does. JSON numbers with a fraction or exponent -> float
//!   (1e400 -> infinity, as Python reads it); `-0` -> int 0.
//! - floats -> float, bit exact (YAML/TOML `.nan`/`nan`/`inf` included).
//! - TOML datetimes -> text in RFC 3339 spelling: offset datetime
//!   `1979-05-27T07:32:00-08:00`, local datetime `1979-05-27T07:32:00.999`,
//!   local date `1979-05-27`, local time `07:32:00` (seconds omitted in TOML
//!   1.1 input are written out). `rt_toml_stringify` with `opts.datetimes`
//!   writes texts that are valid TOML datetimes back as datetimes.
//! - YAML: the 1.2 core schema (`yes`, `on`, `0b11` are text; `0o17` is 15,
//!   `0x1F` 31, `007` 7; `!!str`/`!!int`/`!!float`/`!!bool`/`!!null` force
//!   their type; `!` and quoted scalars are text); anchors and aliases are
//!   expanded, each alias a fresh copy (alias expansion is bounded against
//!   "billion laughs": Error LimitExceeded); merge keys `<<: *a` /
//!   `<<: [*a, *b]` (a plain `<<`) are applied (merged keys first, earlier
//!   sources win, the mapping's own keys override); duplicate keys are Error
//!   Parse; custom tags (`!point [1, 2]`) are dropped, or with `opts.tags` kept
//!   as `{"tag": "!point", "value": [1, 2]}` (global tags by their URI);
//!   `!!binary` stays its base64 text; non-string keys keep their kind (int,
//!   bool, nil, float, and arrays/dicts as identity keys). Several documents:
//!   `rt_yaml_parse_all`; `rt_yaml_parse` refuses a second document.
//! - JSON duplicate keys: the last value wins, in the first one's place (Python's rule).
//!
//! Writing (stringify / encode):
//! - dicts keep their order (`opts.sort_keys` sorts by key text); JSON and TOML
//!   keys must be text; int, float, bool and nil keys are written as their JSON
//!   spelling (`1`, `2.5`, `true`, `null`, like Python's json), other key kinds
//!   are Error Unsupported. YAML writes every key kind. TOML writes a table's
//!   plain keys before its sub-tables (TOML syntax), so their relative order
//!   can change.
//! - Values with no representation are an Error naming the path to them,
//!   `$.a[3].b` / `$["odd key"][0]` (details.path): NaN/Infinity in JSON
//!   (Unsupported), bytes in JSON/TOML/YAML (Unsupported: encode them first),
//!   nil in TOML (Unsupported), handles and errors everywhere (Unsupported), a
//!   value that contains itself (InvalidArgument, "cycle"). A value shared twice
//!   without a cycle is written twice.
//! - bincode is the exception: every value tree except handles and errors,
//!   bytes and NaN payloads included, comes back exactly (see `bincode.rs` for
//!   the schema).
//!
//! Limits: nesting deeper than 127 arrays/dicts is Error LimitExceeded in every
//! format, reading and writing (the same count in the JSON and YAML readers,
//! checked as each container opens, a YAML alias counted with the depth of what
//! it names; the TOML parser stops at its own, lower limit of about 80; TOML
//! text is also scanned before parsing so 100 000 `[` never reach the parser). Parse errors are Error Parse with details line, column (1-based,
//! JSON: column in bytes) and position (byte offset). Parsing is linear in the input.
//!
//! JSON has its own reader and writer, in the crate `ffi_serde_core`
//! (`ffi_serde/core`): generic over what they build (a `Sink`) and what they
//! read (a `Tree`), so the Python extension parses straight into Python objects
//! and writes straight from them with the same code (same grammar, limits,
//! output and messages); here `json_read.rs` / `json_write.rs` use them with
//! runtime values: values are built directly in collector memory as the text
//! is read (no intermediate tree; each array and dict made once at its final
//! size; repeated object keys and short string values shared as one string
//! value per parse), and written into one buffer. Their output and messages
//! are those of serde_json, which they replaced for speed
//! (`docs/bench/serde.md`); `tests/serde.rs` checks both against serde_json on
//! mutated documents. YAML is read the same way
//! (`yaml_read.rs`) from saphyr-parser's events, pulled one at a time, so the
//! limits stop a hostile input where it crosses them; YAML is written with
//! serde_norway. TOML first goes through toml's table tree, then straight into
//! values (`convert.rs`).

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bincode;
pub mod convert;
pub mod json;
pub mod json_read;
pub mod json_write;
pub mod toml;
pub mod yaml;
pub mod yaml_read;
