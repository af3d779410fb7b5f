//! Changing project files on disk for accepted proposals: every path is
//! confined to the project root first, writes go to a temp file in the
//! target's directory and are renamed over it (a reader never sees half a
//! file), and an existing file keeps its permissions.

use super::{confine, PathError};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("{0} is outside the project root")]
    Escapes(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// What a file looks like after a write, for its entry and the scanner.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub hash: String,
    pub size: u64,
    pub mtime: i64,
}

fn io(path: &str) -> impl FnOnce(std::io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_string(),
        source,
    }
}

/// The absolute target of `rel` under `root`, after checking that its
/// parent (created when `create_dirs`) resolves inside the root, so a
/// symlinked directory cannot carry a write elsewhere.
fn target(root: &Path, path: &str, create_dirs: bool) -> Result<(String, PathBuf), WriteError> {
    let rel = confine(root, path)?;
    let canonical_root = root.canonicalize().map_err(io(path))?;
    let full = canonical_root.join(&rel);
    let parent = full
        .parent()
        .ok_or_else(|| WriteError::Escapes(path.to_string()))?;
    if create_dirs {
        std::fs::create_dir_all(parent).map_err(io(path))?;
    }
    match parent.canonicalize() {
        Ok(p) if p.starts_with(&canonical_root) => {}
        Ok(_) => return Err(WriteError::Escapes(path.to_string())),
        // A missing parent: nothing to remove or move there.
        Err(e) => return Err(io(path)(e)),
    }
    if let Ok(meta) = std::fs::symlink_metadata(&full) {
        if meta.file_type().is_symlink() {
            match full.canonicalize() {
                Ok(t) if t.starts_with(&canonical_root) => {}
                _ => return Err(WriteError::Escapes(path.to_string())),
            }
        }
    }
    Ok((rel, full))
}

fn stamp(rel: String, full: &Path, bytes: &[u8]) -> Result<Written, WriteError> {
    let meta = std::fs::metadata(full).map_err(io(&rel))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    Ok(Written {
        hash: hex::encode(Sha256::digest(bytes)),
        size: meta.len(),
        mtime,
        path: rel,
    })
}

/// Writes `content` as the whole file at `path` (relative to `root`),
/// atomically: parent directories are created, the bytes go to a temp
/// file beside the target, which is synced and renamed over it.
pub fn write_file(root: &Path, path: &str, content: &str) -> Result<Written, WriteError> {
    let (rel, full) = target(root, path, true)?;
    let dir = full
        .parent()
        .ok_or_else(|| WriteError::Escapes(path.to_string()))?;
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let temp = dir.join(format!(".{name}.rummy-{}-{nanos}.tmp", std::process::id()));
    let permissions = std::fs::metadata(&full).ok().map(|m| m.permissions());
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(content.as_bytes())?;
        if let Some(p) = &permissions {
            file.set_permissions(p.clone())?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, &full)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io(&rel)(e));
    }
    stamp(rel, &full, content.as_bytes())
}

/// Removes the file at `path`; a file already gone is not an error.
pub fn remove_file(root: &Path, path: &str) -> Result<(), WriteError> {
    let (rel, full) = match target(root, path, false) {
        Ok(t) => t,
        Err(WriteError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    match std::fs::remove_file(&full) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(&rel)(e)),
    }
}

/// Copies (or, with `is_move`, renames) the file at `from` to `to`, both
/// under `root`; the destination's directories are created.
pub fn copy_file(root: &Path, from: &str, to: &str, is_move: bool) -> Result<Written, WriteError> {
    let (from_rel, from_full) = target(root, from, false)?;
    let (to_rel, to_full) = target(root, to, true)?;
    if is_move {
        std::fs::rename(&from_full, &to_full).map_err(io(&from_rel))?;
    } else {
        std::fs::copy(&from_full, &to_full).map_err(io(&from_rel))?;
    }
    let bytes = std::fs::read(&to_full).map_err(io(&to_rel))?;
    stamp(to_rel, &to_full, &bytes)
}

/// The text of the file at `path` under `root`; None when there is none.
pub fn read_text(root: &Path, path: &str) -> Result<Option<String>, WriteError> {
    let (rel, full) = match target(root, path, false) {
        Ok(t) => t,
        Err(WriteError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    match std::fs::read(&full) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(&rel)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_literal_create_parents_and_keep_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let text = "a $& $$ $` $' b\n=======\nc";
        let w = write_file(root, "deep/er/new.txt", text).unwrap();
        assert_eq!(w.path, "deep/er/new.txt");
        assert_eq!(
            std::fs::read_to_string(root.join("deep/er/new.txt")).unwrap(),
            text
        );
        assert_eq!(w.size, text.len() as u64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let p = root.join("run.sh");
            std::fs::write(&p, "old").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            write_file(root, "run.sh", "new").unwrap();
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o755);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        }
        // No temp file is left beside the targets.
        let names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        std::fs::create_dir_all(&root).unwrap();
        assert!(write_file(&root, "../escape.txt", "x").is_err());
        assert!(!dir.path().join("escape.txt").exists());
        assert!(write_file(&root, "/etc/rummy-escape", "x").is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), root.join("out")).unwrap();
            assert!(matches!(
                write_file(&root, "out/escape.txt", "x"),
                Err(WriteError::Escapes(_))
            ));
            assert!(!dir.path().join("escape.txt").exists());
        }
    }

    #[test]
    fn remove_copy_and_move() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), "A").unwrap();
        copy_file(root, "a.txt", "sub/b.txt", false).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("sub/b.txt")).unwrap(),
            "A"
        );
        copy_file(root, "a.txt", "c.txt", true).unwrap();
        assert!(!root.join("a.txt").exists());
        assert_eq!(read_text(root, "c.txt").unwrap().as_deref(), Some("A"));
        remove_file(root, "c.txt").unwrap();
        assert!(!root.join("c.txt").exists());
        remove_file(root, "c.txt").unwrap();
        remove_file(root, "missing/dir/x").unwrap();
        assert_eq!(read_text(root, "nope.txt").unwrap(), None);
    }
}
