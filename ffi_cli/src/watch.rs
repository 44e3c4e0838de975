//! File watching (notify: inotify on Linux) as a handle polled for events.
//!
//! Events are `{kind, paths}` with kind "create", "modify", "remove" or
//! "rename" (paths [from, to] when both ends are inside the watch; a move
//! out of it is a "remove", a move in a "create"). Within one poll, events
//! arriving within opts.debounce_ms of each other are gathered and
//! coalesced: repeats of the same event are dropped, and a "modify" of a
//! path created in the same batch is folded into its "create". Under a
//! scoped `fs.read`, the watched path is checked on its canonical form,
//! symlinks inside the tree are not followed (nothing outside the scope is
//! watched through them), and an event whose path is outside the scope is
//! never returned: each is checked when it arrives and again when polled.

use ffi_sdk::prelude::*;
use notify::event::{EventKind, ModifyKind, RenameMode};
use notify::{RecursiveMode, Watcher};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Watch {
    rx: Mutex<Receiver<notify::Result<notify::Event>>>,
    watcher: Mutex<Option<notify::RecommendedWatcher>>,
    kinds: Vec<String>,
    debounce: Duration,
}

// SAFETY: NAME is unique among the process's handle types (checked over the workspace
// by tests/tests/handle_names.rs), so no other type's handle passes for this one.
unsafe impl HandleType for Watch {
    const NAME: &'static str = "Watch";
}

const KINDS: [&str; 4] = ["create", "modify", "remove", "rename"];

/// Watches a file or directory (recursively unless opts.recursive is false): a Watch handle for `rt_watch_poll`.
/// Needs `fs.read` for the path.
///
/// # Options
/// - recursive (bool, default true): true
/// - kinds: array of "create", "modify", "remove", "rename"; all
/// - debounce_ms (int 0..=60000, default 50): 50
///
/// # Errors
/// - InvalidArgument: unknown event kind (known: create, modify, remove, rename); path names '/', '.' or '..', not an entry: name the directory itself; path is empty; path contains a NUL byte
/// - NotFound: the path (or a directory on it) does not exist
/// - PermissionDenied: the operating system refused access
/// - Io: cannot start the watcher
/// - LimitExceeded: a size, depth or count limit was reached
#[rt_fn(cap = "fs.read", scoped, tier = "empirical", ret = "handle<Watch>")]
pub fn rt_watch_path(path: &str, opts: Opts) -> RtResult<Value> {
    opts.only(&["recursive", "kinds", "debounce_ms"])?;
    let recursive = opts.bool("recursive")?.unwrap_or(true);
    let kinds = opts.texts("kinds")?.unwrap_or_else(|| KINDS.iter().map(|s| s.to_string()).collect());
    for k in &kinds {
        if !KINDS.contains(&k.as_str()) {
            return Err(Error::invalid(FN, "unknown event kind (known: create, modify, remove, rename)", ffi_sdk::error::quote(k)));
        }
    }
    let debounce = Duration::from_millis(opts.int_in("debounce_ms", 0, 60_000)?.unwrap_or(50) as u64);
    let t = beneath::resolve(FN, "fs.read", path, beneath::Follow::Yes)?;
    let st = t.stat().map_err(|e| t.err(&e))?;
    let _ = st;
    let canon: PathBuf = match t.canonical() {
        Some(c) => c.to_path_buf(),
        None => std::fs::canonicalize(path).map_err(|e| t.err(&e))?,
    };
    let scoped = !beneath::unscoped("fs.read");
    let (tx, rx) = channel();
    // Under a scoped fs.read (docs/SECURITY.md, "Paths"):
    // - symlinks are not followed while the tree is walked to set up the watches,
    //   so no directory outside the scope is watched through a link inside it
    //   (notify follows them by default, and inotify would then report what
    //   happens outside);
    // - each event is checked when it arrives, while its path still leads where
    //   it led when the kernel reported it, and dropped when that is outside
    //   the scope. Checking only at poll time let an event in a directory
    //   outside, reported through a link in the tree, through once the link
    //   had been replaced by a real directory of the same name (its path then
    //   resolved inside): the names of entries created outside leaked.
    //   rt_watch_poll checks again.
    let config = notify::Config::default().with_follow_symlinks(!scoped);
    let mut w = notify::RecommendedWatcher::new(
        move |ev: notify::Result<notify::Event>| {
            if let Ok(e) = &ev {
                if !e.paths.iter().all(|p| visible(p)) {
                    return;
                }
            }
            let _ = tx.send(ev);
        },
        config,
    )
    .map_err(|e| Error::new(Code::Io, FN, format!("cannot start the watcher: {e}"), ffi_sdk::error::quote(path)))?;
    let mode = if recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
    w.watch(&canon, mode).map_err(|e| {
        let code = match &e.kind {
            notify::ErrorKind::MaxFilesWatch => Code::LimitExceeded,
            notify::ErrorKind::PathNotFound => Code::NotFound,
            _ => Code::Io,
        };
        Error::new(code, FN, format!("cannot watch: {e}"), ffi_sdk::error::quote(path))
    })?;
    Ok(new_handle(Watch {
        rx: Mutex::new(rx),
        watcher: Mutex::new(Some(w)),
        kinds,
        debounce,
    }))
}

/// Whether an event path may be returned: always while fs.read is unscoped
/// (the policy is read now: it may have narrowed since the watch began);
/// else its canonical form must be readable.
fn visible(p: &std::path::Path) -> bool {
    if beneath::unscoped("fs.read") {
        return true;
    }
    match paths::resolve(p) {
        Ok(c) => cap::query("fs.read", &c.to_string_lossy()),
        Err(_) => false,
    }
}

/// Events since the last poll: an array of `{kind, paths}` (see the module notes), waiting up to opts.timeout_ms (0 = do not wait; default 0) for the first and then gathering those that follow within the watch's debounce_ms. Empty when nothing happened. Error Closed after `rt_watch_close`.
///
/// # Options
/// - timeout_ms (int >= 0, default 0): see the module notes), waiting up to opts.timeout_ms (0 = do not wait
///
/// # Errors
/// - InvalidArgument: an unknown option, or an option of the wrong kind or range
/// - Io: watcher error
/// - Closed: the watcher stopped; `watch` was closed
#[rt_fn(blocking, tier = "empirical")]
pub fn rt_watch_poll(watch: Handle<Watch>, opts: Opts) -> RtResult<Value> {
    opts.only(&["timeout_ms"])?;
    let ms = opts.int_in("timeout_ms", 0, i64::MAX / 4)?.unwrap_or(0) as u64;
    let rx = watch.rx.lock().unwrap_or_else(|e| e.into_inner());
    let mut raw: Vec<notify::Event> = Vec::new();
    let first = Instant::now() + Duration::from_millis(ms);
    let cap_total = Duration::from_millis(ms).max(watch.debounce * 20).max(Duration::from_secs(1));
    let start = Instant::now();
    // The thread's deadline / cancel token (docs/DEADLINES.md): before the first event, Error
    // Timeout / Cancelled (nothing taken from the queue); after it, the events gathered so far are
    // returned (the debounce is cut short) rather than lost. The channel has no way to wake on a
    // token, so waits are cut in deadline::slice()s while one is bound.
    let mut quiet_until: Option<Instant> = None;
    loop {
        if raw.is_empty() {
            ffi_sdk::deadline::check(FN)?;
        } else if ffi_sdk::deadline::status().is_some() {
            break;
        }
        let end = if raw.is_empty() { first } else { *quiet_until.get_or_insert_with(|| Instant::now() + watch.debounce) };
        let wait = end.saturating_duration_since(Instant::now());
        let cut = ffi_sdk::deadline::slice(Some(wait)).unwrap_or(wait);
        match rx.recv_timeout(cut) {
            Ok(Ok(ev)) => {
                raw.push(ev);
                quiet_until = None;
            }
            Err(RecvTimeoutError::Timeout) if Instant::now() < end => continue,
            Ok(Err(e)) => {
                if raw.is_empty() {
                    return Err(Error::new(Code::Io, FN, format!("watcher error: {e}"), "watch"));
                }
            }
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => {
                if raw.is_empty() {
                    return Err(Error::plain(Code::Closed, FN, "the watcher stopped"));
                }
                break;
            }
        }
        if !raw.is_empty() && start.elapsed() > cap_total {
            break;
        }
    }
    drop(rx);
    // Paths that are the two ends of a paired rename.
    let mut paired: Vec<PathBuf> = Vec::new();
    for e in &raw {
        if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = e.kind {
            paired.extend(e.paths.iter().cloned());
        }
    }
    let mut out: Vec<(&'static str, Vec<PathBuf>)> = Vec::new();
    for e in raw {
        let kind = match e.kind {
            EventKind::Create(_) => "create",
            EventKind::Remove(_) => "remove",
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => "rename",
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                if e.paths.iter().any(|p| paired.contains(p)) {
                    continue;
                }
                "remove"
            }
            EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                if e.paths.iter().any(|p| paired.contains(p)) {
                    continue;
                }
                "create"
            }
            EventKind::Modify(_) => "modify",
            _ => continue,
        };
        if !watch.kinds.iter().any(|k| k == kind) {
            continue;
        }
        if !e.paths.iter().all(|p| visible(p)) {
            continue;
        }
        if out.iter().any(|(k, p)| *k == kind && *p == e.paths) {
            continue;
        }
        if kind == "modify" && out.iter().any(|(k, p)| *k == "create" && *p == e.paths) {
            continue;
        }
        out.push((kind, e.paths));
    }
    let arr = Value::array(out.len());
    for (k, ps) in out {
        let paths = Value::text_array(ps.iter().map(|p| p.to_string_lossy().into_owned()));
        arr.push(Value::dict().set("kind", Value::text(k)).set("paths", paths));
    }
    Ok(arr)
}

/// Stops a watch and closes its handle (idempotent). Nil.
///
/// # Errors
/// - Closed: the handle was closed
#[rt_fn(tier = "empirical")]
pub fn rt_watch_close(watch: Value) -> RtResult<()> {
    match <Handle<Watch> as ffi_sdk::FromArg>::from_arg(watch.raw(), FN, 0, "watch") {
        Ok(h) => {
            h.watcher.lock().unwrap_or_else(|e| e.into_inner()).take();
            h.close();
            Ok(())
        }
        Err(e) if e.code == Code::Closed => Ok(()),
        Err(e) => Err(e),
    }
}
