//! Arenas: region allocation for compilers (typed-arena).
//!
//! Design. A compiler allocates many small, same-lifetime buffers (symbol
//! tables, token runs, IR nodes, constant pools) and drops them all at once
//! when a phase ends. An `Arena` handle owns one `typed_arena::Arena` of
//! 16-byte blocks:
//! - `rt_arena_new(opts)` makes one (opts.limit: most bytes it may hand out,
//!   default 1 GiB, at most 1 TiB; past it `rt_arena_alloc` is Error LimitExceeded).
//! - `rt_arena_alloc(arena, size)` carves a ZEROED buffer of `size` bytes and
//!   returns its id: an int, 0, 1, 2... in allocation order. Ids are plain
//!   ints, so a host can store them anywhere (in other buffers, in values)
//!   without pinning anything.
//! - Buffers are never freed one by one: `rt_handle_close(arena)` (or the
//!   collector finding the handle unreachable) frees every buffer together.
//! - Checked access by id: `rt_arena_write(arena, id, offset, data)`,
//!   `rt_arena_read(arena, id, offset, len)` -> bytes, `rt_arena_size(arena, id)`;
//!   a bad id or range is Error OutOfRange, any use after close is Error Closed.
//! - C hosts that want raw memory: `rt_arena_ptr(arena, id)` returns the
//!   buffer's address as an int. Buffers are 16-byte aligned and never move;
//!   the address is valid until the arena is released (close, or collection of
//!   the last reference), exactly like memory from a C region allocator, and
//!   dereferencing it afterwards is the host's bug (tier experimental).
//!
//! All operations on one arena are serialized by a lock, so the handle may be
//! shared between threads.

use ffi_sdk::prelude::*;
use parking_lot::Mutex;
use typed_arena::Arena as TypedArena;

const DEFAULT_LIMIT: i64 = 1 << 30;
const MAX_LIMIT: i64 = 1 << 40;

#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Block([u8; 16]);

struct Inner {
    arena: TypedArena<Block>,
    /// (address, length in bytes) of each buffer, by id.
    bufs: Vec<(usize, usize)>,
    used: usize,
    limit: usize,
}

/// A region of zeroed byte buffers freed together (handle type `Arena`).
pub struct Arena {
    inner: Mutex<Inner>,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Arena {
    const NAME: &'static str = "Arena";
}

impl Inner {
    fn buf(&self, func: &'static str, id: i64) -> RtResult<(usize, usize)> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.bufs.get(i).copied())
            .ok_or_else(|| Error::new(Code::OutOfRange, func, "no buffer with this id", format!("id {id}, {} buffers", self.bufs.len())))
    }
}

fn range(func: &'static str, len: usize, offset: u64, n: usize) -> RtResult<usize> {
    let off = usize::try_from(offset).unwrap_or(usize::MAX);
    match off.checked_add(n) {
        Some(end) if end <= len => Ok(off),
        _ => Err(Error::new(Code::OutOfRange, func, "range outside the buffer", format!("offset {offset}, length {n}, buffer size {len}"))),
    }
}

/// A new arena of zeroed byte buffers freed together on close; opts.limit = most bytes it may hand out (default 1 GiB).
///
/// # Options
/// - limit (int >= 0, default 1 GiB): the most bytes the arena may hand out
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
#[rt_fn(tier = "verified", ret = "handle<Arena>")]
pub fn rt_arena_new(opts: Opts) -> RtResult<Value> {
    opts.only(&["limit"])?;
    let limit = opts.int_in("limit", 0, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    Ok(new_handle(Arena {
        inner: Mutex::new(Inner {
            arena: TypedArena::new(),
            bufs: Vec::new(),
            used: 0,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        }),
    }))
}

/// Allocates a zeroed buffer of `size` bytes (16-byte aligned, never moves) in the arena; returns its id (0, 1, 2... in order).
///
/// # Errors
/// - InvalidArgument: `size` is negative
/// - Closed: `arena` was closed
/// - LimitExceeded: arena limit reached; out of memory
#[rt_fn(tier = "verified")]
pub fn rt_arena_alloc(arena: Handle<Arena>, size: u64) -> RtResult<i64> {
    let mut a = arena.inner.lock();
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let over = a.used.checked_add(size).is_none_or(|t| t > a.limit);
    if over {
        return Err(Error::new(
            Code::LimitExceeded,
            FN,
            "arena limit reached",
            format!("{size} bytes requested, {} of {} in use", a.used, a.limit),
        ));
    }
    let blocks = size.div_ceil(16);
    // typed-arena aborts the process when the system refuses memory: ask fallibly first.
    if size > (1 << 20) && Vec::<Block>::new().try_reserve_exact(blocks).is_err() {
        return Err(Error::new(Code::LimitExceeded, FN, "out of memory", format!("{size} bytes requested")));
    }
    let addr = {
        let s = a.arena.alloc_extend(std::iter::repeat_n(Block([0; 16]), blocks));
        s.as_mut_ptr() as usize
    };
    a.used += size;
    a.bufs.push((addr, size));
    Ok((a.bufs.len() - 1) as i64)
}

/// Copies `data` into buffer `id` at byte `offset`.
///
/// # Errors
/// - InvalidArgument: `offset` is negative
/// - Closed: `arena` was closed
/// - OutOfRange: it does not fit
#[rt_fn(tier = "verified")]
pub fn rt_arena_write(arena: Handle<Arena>, id: i64, offset: u64, data: &[u8]) -> RtResult<()> {
    let a = arena.inner.lock();
    let (addr, len) = a.buf(FN, id)?;
    let off = range(FN, len, offset, data.len())?;
    // SAFETY: `(addr, len)` is a buffer `rt_arena_alloc` carved from `a.arena` (at least
    // `len` bytes, never moved or freed while the arena lives, and the arena lives as long
    // as the handle we borrow); `range` checked `off + data.len() <= len`. The arena's lock
    // is held, so no other call of this library touches the buffer meanwhile, and `data`
    // (a slice of a collector value) cannot overlap memory of the Rust allocator.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), (addr as *mut u8).add(off), data.len()) };
    Ok(())
}

/// Reads `len` bytes of buffer `id` from byte `offset`.
///
/// # Errors
/// - InvalidArgument: `offset` is negative; `len` is negative
/// - Closed: `arena` was closed
/// - OutOfRange: past its end
#[rt_fn(tier = "verified", ret = "bytes")]
pub fn rt_arena_read(arena: Handle<Arena>, id: i64, offset: u64, len: u64) -> RtResult<Value> {
    let a = arena.inner.lock();
    let (addr, size) = a.buf(FN, id)?;
    let n = usize::try_from(len).unwrap_or(usize::MAX);
    let off = range(FN, size, offset, n)?;
    // SAFETY: as in `rt_arena_write`: `off + n <= size` of a live buffer (zeroed at
    // allocation, so initialised), read under the arena's lock; the slice is copied into
    // a new bytes value before the lock is released.
    let bytes = unsafe { std::slice::from_raw_parts((addr as *const u8).add(off), n) };
    Ok(Value::bytes(bytes))
}

/// Size in bytes of buffer `id`.
///
/// # Errors
/// - Closed: `arena` was closed
/// - OutOfRange: an index or number is outside its range
#[rt_fn(tier = "verified")]
pub fn rt_arena_size(arena: Handle<Arena>, id: i64) -> RtResult<i64> {
    let a = arena.inner.lock();
    Ok(a.buf(FN, id)?.1 as i64)
}

/// Address of buffer `id` for C hosts: 16-byte aligned, stable, valid until the arena is released (then dangling: the host's responsibility).
///
/// # Errors
/// - Closed: `arena` was closed
#[rt_fn(tier = "experimental")]
pub fn rt_arena_ptr(arena: Handle<Arena>, id: i64) -> RtResult<i64> {
    let a = arena.inner.lock();
    Ok(a.buf(FN, id)?.0 as i64)
}

/// `{buffers, bytes, limit}`: buffers handed out, bytes requested in total, and the limit.
///
/// # Errors
/// - Closed: `arena` was closed
#[rt_fn(tier = "verified", ret = "dict")]
pub fn rt_arena_stats(arena: Handle<Arena>) -> RtResult<Value> {
    let a = arena.inner.lock();
    let d = Value::dict();
    d.set("buffers", Value::int(a.bufs.len() as i64));
    d.set("bytes", Value::int(a.used as i64));
    d.set("limit", Value::int(a.limit.min(i64::MAX as usize) as i64));
    Ok(d)
}
