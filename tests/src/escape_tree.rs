//! The file-system fixture of the escape tests, written once: the scope D
//! with its links to the outside tree O and file F, snapshots of a tree to
//! compare before/after a call, and removal that never follows a link.
//! Used by tests/tests/scope_sweep.rs (`rt_tests::escape_tree`) and
//! ffi_io/tests/escape.rs (through `#[path]`: that crate's tests call the
//! library as an rlib and do not link rt_tests). Standard library only.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

/// A path as text (the tests pass paths as runtime text values).
pub fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// Removes a file, link or whole directory without following links.
pub fn remove_any(p: &Path) {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p).unwrap(), // std: never follows symlinks
        Ok(_) => fs::remove_file(p).unwrap(),
        Err(_) => {}
    }
}

/// Plants in `dir` the links every escape test tries: to the directory `o`
/// (`link_dir`), the file `f` (`link_file`), a missing name in `o`
/// (`link_dangling`), `o` by the relative way `rel` (`link_rel`) and through
/// a second link (`link_chain` -> `link_chain2` -> `o`).
pub fn plant_links(dir: &Path, o: &Path, f: &Path, rel: &str) {
    symlink(o, dir.join("link_dir")).unwrap();
    symlink(f, dir.join("link_file")).unwrap();
    symlink(o.join("o_missing"), dir.join("link_dangling")).unwrap();
    symlink(rel, dir.join("link_rel")).unwrap();
    symlink("link_chain2", dir.join("link_chain")).unwrap();
    symlink(o, dir.join("link_chain2")).unwrap();
}

/// Every entry below `dir` but `skip`, sorted, one line each: the name
/// relative to `base`, kind, mode, size, mtime, inode, links, and a file's
/// content or a link's target, so that a write, a removal, a new entry, or
/// a temporary made and removed (a directory's mtime) all show.
pub fn snap(base: &Path, dir: &Path, skip: &Path, out: &mut Vec<String>) {
    let mut names: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(r) => r.map(|e| e.unwrap().path()).collect(),
        Err(e) => {
            out.push(format!("{} unreadable: {e}", dir.display()));
            return;
        }
    };
    names.sort();
    for p in names {
        if p == skip {
            continue;
        }
        let rel = p.strip_prefix(base).unwrap().display().to_string();
        let m = fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let common = format!("mode {:o} size {} mtime {}.{} ino {} nlink {}", m.mode(), m.size(), m.mtime(), m.mtime_nsec(), m.ino(), m.nlink());
        if ft.is_symlink() {
            out.push(format!("{rel} link -> {}", fs::read_link(&p).unwrap().display()));
        } else if ft.is_dir() {
            out.push(format!("{rel} dir {common}"));
            snap(base, &p, skip, out);
        } else if ft.is_file() {
            let c = fs::read(&p).unwrap();
            out.push(format!("{rel} file {common} content {:?}", String::from_utf8_lossy(&c)));
        } else {
            out.push(format!("{rel} other {common}"));
        }
    }
}

/// What changed between two snapshots, for messages.
pub fn diff(before: &[String], after: &[String]) -> String {
    let gone: Vec<&String> = before.iter().filter(|l| !after.contains(l)).collect();
    let new: Vec<&String> = after.iter().filter(|l| !before.contains(l)).collect();
    format!("before only: {gone:?}; after only: {new:?}")
}

/// Swaps the real directory `at` for a symlink to `o` and back in a loop on
/// another thread (rename `at` away, symlink `o` in its place, remove the
/// link, rename the directory back; random pauses of up to `spin` spins in
/// between so the swaps fall at varied points of the calls), never writing
/// through a link. Stopped by [`Swapper::finish`] or on drop.
pub struct Swapper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    swaps: std::sync::Arc<std::sync::atomic::AtomicU64>,
    h: Option<std::thread::JoinHandle<()>>,
}

impl Swapper {
    pub fn start(at: PathBuf, o: PathBuf, spin: u64) -> Swapper {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let (stop, swaps) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (st, sw) = (stop.clone(), swaps.clone());
        let mut parked = at.clone().into_os_string();
        parked.push(".parked");
        let parked = PathBuf::from(parked);
        let h = std::thread::spawn(move || {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            let mut pause = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                for _ in 0..(seed % spin.max(1)) {
                    std::hint::spin_loop();
                }
            };
            while !st.load(Ordering::Relaxed) {
                if fs::rename(&at, &parked).is_err() {
                    std::thread::yield_now();
                    continue;
                }
                if symlink(&o, &at).is_ok() {
                    sw.fetch_add(1, Ordering::Relaxed);
                    pause();
                    // Only this thread makes or removes the link.
                    let _ = fs::remove_file(&at);
                }
                if fs::rename(&parked, &at).is_err() {
                    // A call created `at` meanwhile (a missing parent): keep that one.
                    let _ = fs::remove_dir_all(&parked);
                }
                pause();
            }
        });
        Swapper { stop, swaps, h: Some(h) }
    }

    /// Stops the thread; returns how many times the link was in place.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.h.take() {
            h.join().expect("swapper");
        }
        self.swaps.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(h) = self.h.take() {
            let _ = h.join();
        }
    }
}

/// Fills the (empty) scope `d`: `a.txt`, `sub/b.txt`, and the links of
/// [`plant_links`] in `d` and in `d/sub` (their relative links reaching `o`
/// as `../O` and `../../O`: `d` and `o` are siblings).
pub fn fill_scope(d: &Path, o: &Path, f: &Path) {
    fs::write(d.join("a.txt"), "inside a").unwrap();
    fs::create_dir(d.join("sub")).unwrap();
    fs::write(d.join("sub/b.txt"), "inside b").unwrap();
    for (dir, rel) in [(d.to_path_buf(), "../O"), (d.join("sub"), "../../O")] {
        plant_links(&dir, o, f, rel);
    }
}

/// The snapshot of everything below `dir` ([`snap`]).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    snap(dir, dir, Path::new("/nonexistent"), &mut out);
    out
}

/// The snapshot of everything below `root` but the scope `d`, with `root`'s own mtime.
pub fn outside(root: &Path, d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let m = fs::symlink_metadata(root).unwrap();
    out.push(format!(". dir mtime {}.{}", m.mtime(), m.mtime_nsec()));
    snap(root, root, d, &mut out);
    out
}
