//! include/simple_rt.h: C99 and C++ clean (-Wall -Wextra -Werror -pedantic).

use crate::gen::MARK;
use crate::layout::{self, Layout};
use crate::model::{c_decl, c_ident, Abi, Entry, Registry};
use std::fmt::Write;

/// Text safe inside a C block comment (no `*/`, `/*` or trigraph `??`).
pub fn comment_safe(s: &str) -> String {
    s.replace("*/", "*\\/").replace("/*", "/\\*").replace("??", "?\\?")
}

/// `InvalidArgument` -> `INVALID_ARGUMENT`, `fs.read` -> `FS_READ`.
pub fn upper_snake(s: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in s.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    out
}

/// Data symbols `libffi_core.so` exports for the other libraries of the
/// runtime only (through ffi_sdk), internal like every `rt__*` function: the
/// header names them in its "Internal exports" note and declares none of them
/// (docs/CONTRACT.md §3). tests/tests/internal_exports.rs checks this list
/// against what the library exports.
pub const INTERNAL_DATA: [&str; 3] = ["RT_CAP_SLOW", "RT_DEADLINE_ANY", "RT_REGISTRY_GEN"];

/// Prefix of the functions `libffi_core.so` exports for the other libraries only.
pub const INTERNAL_PREFIX: &str = "rt__";

/// Helper names the header defines; an exported function must not take one.
fn helper_names() -> Vec<String> {
    let mut v: Vec<String> = [
        "rt_v_tag",
        "rt_v_is_heap",
        "rt_v_is_inline_int",
        "rt_v_is_inline_float",
        "rt_v_is_special",
        "rt_v_is_nil",
        "rt_v_is_bool",
        "rt_v_int_fits_inline",
        "rt_v_make_int",
        "rt_v_int_inline",
        "rt_v_float_fits_inline",
        "rt_v_make_float",
        "rt_v_float_inline",
        "rt_v_make_bool",
        "rt_v_heap_ptr",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend((0..=8).map(|n| format!("rt_as_fn{n}")));
    v.extend(["rt_callback_fn1", "rt_callback_fn2", "rt_callback_release_fn"].map(String::from));
    v
}

fn doc_block(out: &mut String, lines: &[String]) {
    out.push_str("/**\n");
    for l in lines {
        if l.is_empty() {
            out.push_str(" *\n");
        } else {
            let _ = writeln!(out, " * {}", comment_safe(l));
        }
    }
    out.push_str(" */\n");
}

fn meta_line(e: &Entry) -> String {
    format!(
        "capability: {}; {}; tier: {}",
        e.cap_text(),
        if e.blocking { "blocking" } else { "non-blocking" },
        e.tier
    )
}

const TAG_DOC: &[(&str, &str)] = &[
    ("int", "signed 61-bit int shifted left 3 (decode: arithmetic shift right 3); larger ints are boxed"),
    ("heap", "8-byte-aligned pointer to a heap object, | 1"),
    ("float", "IEEE-754 bits | 2 when the double's low 3 bits are 0; any other double is boxed"),
    ("special", "nil, true, false (RT_NIL, RT_TRUE, RT_FALSE)"),
];

pub fn header(reg: &Registry, abi: &Abi, lay: &Layout) -> Result<String, String> {
    let helpers = helper_names();
    for e in &reg.entries {
        if helpers.contains(&e.name) {
            return Err(format!("{} collides with an inline helper of the header", e.name));
        }
        if e.name.starts_with(INTERNAL_PREFIX) || INTERNAL_DATA.contains(&e.name.as_str()) {
            return Err(format!("{} is registered but has an internal name ({INTERNAL_PREFIX}*)", e.name));
        }
        if e.params.len() > 8 && !e.host {
            return Err(format!("{} takes {} arguments; the calling convention allows 8", e.name, e.params.len()));
        }
    }
    let bits = abi.tag_bits();
    let mask = (1u64 << bits) - 1;
    let tag = |n: &str| abi.tags.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    // The inline helpers below name these macros: the ABI must define them.
    for t in ["int", "heap", "float", "special"] {
        if tag(t).is_none() {
            return Err(format!("rt_abi_info_json lacks the {t} tag"));
        }
    }
    for s in ["nil", "true", "false"] {
        if abi.special(s).is_none() {
            return Err(format!("rt_abi_info_json lacks the {s} special"));
        }
    }

    let mut o = String::new();
    let _ = write!(
        o,
        "/* simple_rt.h: the C interface of simple-rt, ABI {major}.{minor}.
 *
 * {MARK}
 *
 * One value type, RtValue: a tagged 64-bit word (low {bits} bits = tag).
 * Every domain function takes only RtValue arguments (at most 8) and
 * returns one RtValue; failure is an Error value (rt_error_code != 0),
 * never nil/false/-1. So an interpreter may call any of them through
 * RtFn0..RtFn8 chosen by the arity that rt_registry_lookup reports.
 * The host surface (below) takes and returns C types to build and read
 * values.
 *
 * Memory: heap values live on one Boehm collector heap per process. The
 * collector scans stacks and registers of registered threads (a thread is
 * registered on its first call; rt_thread_attach/rt_thread_detach bracket
 * calls for hosts that prefer that). A value kept only in memory the
 * collector cannot see (malloc'd structs, host objects) must be pinned
 * with rt_value_pin and released with rt_value_unpin.
 *
 * Strings are UTF-8 with an explicit length (interior NULs allowed) and a
 * trailing NUL for convenience. Pointers from rt_string_ptr/rt_bytes_ptr
 * stay valid while the value is reachable or pinned.
 */
#ifndef SIMPLE_RT_H
#define SIMPLE_RT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern \"C\" {{
#endif

typedef uint64_t RtValue;

/* ABI version: rt_abi_version() returns major << 16 | minor. Refuse a library
 * whose major differs from RT_ABI_MAJOR. */
#define RT_ABI_MAJOR {major}u
#define RT_ABI_MINOR {minor}u
#define RT_ABI_VERSION ((RT_ABI_MAJOR << 16) | RT_ABI_MINOR)

/* ---- The word layout ---- */
#define RT_TAG_BITS {bits}u
#define RT_TAG_MASK ((RtValue)UINT64_C({mask}))
",
        major = abi.major,
        minor = abi.minor,
    );
    for (name, v) in &abi.tags {
        let doc = TAG_DOC.iter().find(|(n, _)| n == name).map_or("", |(_, d)| d);
        let _ = writeln!(o, "#define RT_TAG_{} ((RtValue)UINT64_C({v})) /* {} */", upper_snake(name), comment_safe(doc));
    }
    let _ = writeln!(o);
    for (name, v) in &abi.specials {
        let _ = writeln!(o, "#define RT_{} ((RtValue)UINT64_C(0x{v:x}))", upper_snake(name));
    }
    let _ = write!(
        o,
        "
/* Ints in [RT_INLINE_INT_MIN, RT_INLINE_INT_MAX] are stored inline; others are boxed. */
#define RT_INLINE_INT_MIN INT64_C({imin})
#define RT_INLINE_INT_MAX INT64_C({imax})

/* Inline helpers for the word layout. They never touch the heap: a boxed int
 * or float is a heap word (use rt_int_get / rt_float_get / rt_kind for any value). */
static inline RtValue rt_v_tag(RtValue v) {{ return v & RT_TAG_MASK; }}
static inline bool rt_v_is_heap(RtValue v) {{ return (v & RT_TAG_MASK) == RT_TAG_HEAP; }}
static inline bool rt_v_is_inline_int(RtValue v) {{ return (v & RT_TAG_MASK) == RT_TAG_INT; }}
static inline bool rt_v_is_inline_float(RtValue v) {{ return (v & RT_TAG_MASK) == RT_TAG_FLOAT; }}
static inline bool rt_v_is_special(RtValue v) {{ return (v & RT_TAG_MASK) == RT_TAG_SPECIAL; }}
static inline bool rt_v_is_nil(RtValue v) {{ return v == RT_NIL; }}
static inline bool rt_v_is_bool(RtValue v) {{ return v == RT_TRUE || v == RT_FALSE; }}
static inline RtValue rt_v_make_bool(bool b) {{ return b ? RT_TRUE : RT_FALSE; }}
/* Whether rt_v_make_int may encode i (else use rt_int_new, which boxes). */
static inline bool rt_v_int_fits_inline(int64_t i) {{ return i >= RT_INLINE_INT_MIN && i <= RT_INLINE_INT_MAX; }}
/* The inline int word for i; only when rt_v_int_fits_inline(i). */
static inline RtValue rt_v_make_int(int64_t i) {{ return (RtValue)((uint64_t)i << RT_TAG_BITS); }}
/* The int of an inline int word (arithmetic shift, written without
 * implementation-defined behaviour); only when rt_v_is_inline_int(v). */
static inline int64_t rt_v_int_inline(RtValue v) {{
    return (v >> 63) ? -(int64_t)(~v >> RT_TAG_BITS) - 1 : (int64_t)(v >> RT_TAG_BITS);
}}
/* Whether rt_v_make_float may encode d (its low {bits} bits are 0; else use rt_float_new). */
static inline bool rt_v_float_fits_inline(double d) {{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return (b & RT_TAG_MASK) == 0;
}}
/* The inline float word for d; only when rt_v_float_fits_inline(d). */
static inline RtValue rt_v_make_float(double d) {{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return (RtValue)(b | RT_TAG_FLOAT);
}}
/* The double of an inline float word; only when rt_v_is_inline_float(v). */
static inline double rt_v_float_inline(RtValue v) {{
    uint64_t b = v & ~RT_TAG_MASK;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}}
/* The heap object of a heap word (see the informative layout below), else NULL. */
static inline void *rt_v_heap_ptr(RtValue v) {{
    return rt_v_is_heap(v) ? (void *)(uintptr_t)(v & ~RT_TAG_MASK) : NULL;
}}

/* Domain functions by arity, for calls through rt_registry_lookup. */
",
        imin = abi.inline_int_min,
        imax = abi.inline_int_max,
    );
    for n in 0..=8 {
        let args = if n == 0 { "void".to_string() } else { vec!["RtValue"; n].join(", ") };
        let _ = writeln!(o, "typedef RtValue (*RtFn{n})({args});");
    }
    o.push_str(
        "/* The address from rt_registry_lookup as a callable pointer (ISO C has no
 * cast from void * to a function pointer; copying the bits is portable on
 * every platform with dlsym). */\n",
    );
    for n in 0..=8 {
        let _ = writeln!(
            o,
            "static inline RtFn{n} rt_as_fn{n}(void *p) {{ RtFn{n} f; memcpy(&f, &p, sizeof f); return f; }}"
        );
    }

    // Host callbacks (docs/CONCURRENCY.md).
    o.push_str(
        "
/* Host callbacks: what rt_callback_new / rt_callback_new2 wrap into a
 * callable value that library threads call (any thread, maybe several at
 * once), and the release function rt_callback_on_release sets. The
 * rt_callback_fn* helpers give the void * those functions take. */
typedef RtValue (*RtCallback1)(void *user_data, RtValue arg);
typedef RtValue (*RtCallback2)(void *user_data, RtValue a, RtValue b);
typedef void (*RtCallbackRelease)(void *user_data);
/* rt_callback_set_flags: the callback returns its result with one pin, which the library drops. */
#define RT_CALLBACK_RESULT_PINNED 1u
static inline void *rt_callback_fn1(RtCallback1 f) { void *p; memcpy(&p, &f, sizeof p); return p; }
static inline void *rt_callback_fn2(RtCallback2 f) { void *p; memcpy(&p, &f, sizeof p); return p; }
static inline void *rt_callback_release_fn(RtCallbackRelease f) { void *p; memcpy(&p, &f, sizeof p); return p; }
",
    );

    // Kinds.
    o.push_str("\n/* ---- Kinds (rt_kind) ---- */\ntypedef enum RtKind {\n");
    for (name, v) in &abi.kinds {
        let _ = writeln!(o, "    RT_KIND_{} = {v},", upper_snake(name));
    }
    o.push_str("} RtKind;\n");

    // Errors.
    o.push_str("\n/* ---- Error codes (rt_error_code; 0 = not an Error; rt_error_name gives the name) ----\n");
    o.push_str(
        " * Each function's comment lists under Errors the codes it returns besides the implicit ones:\n \
         * TypeMismatch, Panic and Internal (any function), Timeout and Cancelled (blocking ones),\n \
         * CapabilityDenied (those with a capability); docs/CONTRACT.md, \"Error codes per function\". */\n",
    );
    o.push_str("#define RT_ERR_NONE 0u /* not an Error */\n");
    for e in &abi.errors {
        let _ = writeln!(o, "#define RT_ERR_{} {}u /* {}: {} */", upper_snake(&e.name), e.code, e.name, comment_safe(&e.doc));
    }

    // Capabilities.
    o.push_str("\n/* ---- Capabilities (rt_cap_restrict / rt_cap_check), with their scope kind ---- */\n");
    for (name, scope) in &abi.capabilities {
        let _ = writeln!(o, "#define RT_CAP_{} \"{name}\" /* scope: {scope} */", upper_snake(name));
    }

    // Heap layout.
    o.push_str(
        "\n/* ---- Heap objects (INFORMATIVE) ----
 * The layout of what a heap word points at, for debuggers and for reading
 * only: build and read values with the functions below, never by writing
 * these fields (they are guarded by a lock word and the collector).
 * Every object starts with RtHeader; kind = RT_HEAP_MAGIC | RT_HK_*. */\n",
    );
    for c in &lay.consts {
        if !c.doc.is_empty() {
            let _ = writeln!(o, "/* {} */", comment_safe(&c.doc));
        }
        let _ = writeln!(o, "#define RT_{} {}u", c.name, c.value);
    }
    for s in &lay.structs {
        let cname = layout::c_struct_name(&s.name);
        o.push('\n');
        if !s.doc.is_empty() {
            let _ = writeln!(o, "/* {} */", comment_safe(&s.doc));
        }
        let _ = writeln!(o, "typedef struct {cname} {{");
        for f in &s.fields {
            let (members, note) = layout::c_members(lay, f)?;
            let text = match (f.doc.is_empty(), note) {
                (true, None) => String::new(),
                (false, None) => f.doc.clone(),
                (true, Some(n)) => format!("({n})"),
                (false, Some(n)) => format!("{} ({n})", f.doc),
            };
            let c = if text.is_empty() { String::new() } else { format!(" /* {} */", comment_safe(&text)) };
            if members.is_empty() {
                let _ = writeln!(o, "    /* {} */", comment_safe(&text));
                continue;
            }
            for (k, m) in members.iter().enumerate() {
                let _ = writeln!(o, "    {m};{}", if k == 0 { c.as_str() } else { "" });
            }
        }
        let _ = writeln!(o, "}} {cname};");
    }

    // Host surface.
    o.push_str("\n/* ==== Host surface: C types in and out, for building and reading values ==== */\n");
    for e in reg.host_fns() {
        o.push('\n');
        let mut lines: Vec<String> = crate::doc::plain_lines(&crate::doc::parse(&e.doc), false);
        lines.push(String::new());
        lines.push(format!("tier: {}{}", e.tier, if e.blocking { "; blocking" } else { "" }));
        doc_block(&mut o, &lines);
        let _ = writeln!(o, "{};", e.c_prototype());
    }

    // Internal exports: named (so a reader of `nm -D` knows them), never declared.
    let _ = write!(
        o,
        "
/* ---- Internal exports (not for hosts) ----
 * libffi_core.so also exports what the other libraries of the runtime use to
 * reach its state (through ffi_sdk): every function named {INTERNAL_PREFIX}* (two
 * underscores) and the data symbols {}.
 * This header declares none of them: they are not part of the ABI, change
 * without an ABI version change, and a host never calls or reads them
 * (docs/CONTRACT.md section 3). */
",
        INTERNAL_DATA.join(", ")
    );

    // Domain functions.
    for d in reg.domains() {
        let fns: Vec<&Entry> = reg.domain_fns(&d).collect();
        if fns.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\n/* ==== Domain {d}: {} functions (libffi_{d}.so) ==== */", fns.len());
        for e in fns {
            o.push('\n');
            let mut lines: Vec<String> = crate::doc::plain_lines(&crate::doc::parse(&e.doc), false);
            lines.push(String::new());
            lines.push(e.signature.clone());
            lines.push(meta_line(e));
            doc_block(&mut o, &lines);
            let params = if e.params.is_empty() {
                "void".to_string()
            } else {
                e.params.iter().map(|p| c_decl("RtValue", &c_ident(&p.name))).collect::<Vec<_>>().join(", ")
            };
            let _ = writeln!(o, "RtValue {}({params});", e.name);
        }
    }

    o.push_str(
        "
#ifdef __cplusplus
} /* extern \"C\" */
#endif

#endif /* SIMPLE_RT_H */
",
    );
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_comments() {
        assert_eq!(upper_snake("InvalidArgument"), "INVALID_ARGUMENT");
        assert_eq!(upper_snake("Io"), "IO");
        assert_eq!(upper_snake("fs.read"), "FS_READ");
        assert_eq!(upper_snake("codegen.jit"), "CODEGEN_JIT");
        assert_eq!(comment_safe("a */ b /* c ??/"), "a *\\/ b /\\* c ?\\?/");
    }
}
