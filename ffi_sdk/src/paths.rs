//! Path arguments: validation and the canonical resolution used by
//! capability checks (also for paths that do not exist yet).

use crate::error::{Error, RtResult};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Rejects the empty path and paths with NUL bytes (InvalidArgument).
pub fn validate<'a>(func: &str, p: &'a str) -> RtResult<&'a Path> {
    if p.is_empty() {
        return Err(Error::invalid(func, "path is empty", "\"\""));
    }
    if p.as_bytes().contains(&0) {
        return Err(Error::invalid(func, "path contains a NUL byte", crate::error::quote(p)));
    }
    Ok(Path::new(p))
}

/// The canonical absolute form of `p`: every existing component resolved
/// through symlinks (dangling ones too: their target is followed), `..`
/// applied after resolution, and the components that do not exist yet
/// appended literally. So `allowed/link/../x`, a symlinked parent and a
/// dangling link all land where the operating system would put them.
pub fn resolve(p: &Path) -> io::Result<PathBuf> {
    let abs = if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) };
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_components(&abs, &mut pending, false);
    let mut out = PathBuf::from("/");
    let mut missing = false;
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        let cand = out.join(&c);
        if missing {
            out = cand;
            continue;
        }
        match std::fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = std::fs::read_link(&cand)?;
                if target.is_absolute() {
                    out = PathBuf::from("/");
                }
                push_components(&target, &mut pending, true);
            }
            Ok(_) => out = cand,
            Err(_) => {
                missing = true;
                out = cand;
            }
        }
    }
    Ok(out)
}

fn push_components(p: &Path, q: &mut VecDeque<OsString>, front: bool) {
    let comps: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    if front {
        for c in comps.into_iter().rev() {
            q.push_front(c);
        }
    } else {
        q.extend(comps);
    }
}
