//! Project files on disk: confining paths to the project root and scanning
//! the root into file entries (`.gitignore`-aware, hashed, only what
//! changed). Blocking I/O: callers run it off the actix threads.

pub mod write;

pub use write::{copy_file, read_text, remove_file, write_file, WriteError, Written};

use crate::store::patterns::hedmatch;
use crate::store::{Constraint, FileStamp, ScannedFile, Skip};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Files larger than this are recorded without content.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PathError {
    #[error("path {0:?} escapes the project root")]
    Escapes(String),
    #[error("path is empty")]
    Empty,
}

/// Turns a client- or model-given path into one relative to the root:
/// absolute paths inside the root are made relative; `..` that would leave
/// the root, and absolute paths elsewhere, are refused.
pub fn confine(root: &Path, path: &str) -> Result<String, PathError> {
    let trimmed = path.trim();
    if trimmed.is_empty() {
        return Err(PathError::Empty);
    }
    let candidate = Path::new(trimmed);
    let relative: &Path = if candidate.is_absolute() {
        candidate
            .strip_prefix(root)
            .map_err(|_| PathError::Escapes(path.to_string()))?
    } else {
        candidate
    };
    let mut parts: Vec<String> = Vec::new();
    for c in relative.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(PathError::Escapes(path.to_string()));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(PathError::Escapes(path.to_string()))
            }
        }
    }
    if parts.is_empty() {
        return Err(PathError::Empty);
    }
    Ok(parts.join("/"))
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// New or changed files (content read and hashed).
    pub changed: Vec<ScannedFile>,
    /// Files whose size and mtime match the store's stamp: not read.
    pub unchanged: usize,
    /// Paths the store has that are gone from disk (or now ignored).
    pub removed: Vec<String>,
    /// Constraint visibility for each changed path that has one.
    pub constraints: HashMap<String, String>,
}

fn constraint_for<'a>(path: &str, constraints: &'a [Constraint]) -> Option<&'a str> {
    // Later (more specific) rules are not ranked upstream; the first match
    // in pattern order wins, with `ignore` taking precedence.
    let matching: Vec<&Constraint> = constraints
        .iter()
        .filter(|c| c.pattern == path || hedmatch(&c.pattern, path))
        .collect();
    matching
        .iter()
        .find(|c| c.visibility == "ignore")
        .or_else(|| matching.first())
        .map(|c| c.visibility.as_str())
}

fn read_file(path: &Path, size: u64) -> std::io::Result<(String, String, Option<Skip>)> {
    if size > MAX_FILE_BYTES {
        let hash = format!("size:{size}");
        return Ok((String::new(), hash, Some(Skip::Oversize)));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    std::fs::File::open(path)?.read_to_end(&mut bytes)?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let probe = &bytes[..bytes.len().min(8000)];
    if probe.contains(&0) {
        return Ok((String::new(), hash, Some(Skip::Binary)));
    }
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, hash, None)),
        Err(_) => Ok((String::new(), hash, Some(Skip::Binary))),
    }
}

/// Walks `root` honouring `.gitignore` (and `.ignore`), skipping hidden
/// files, symlinks that leave the root and `ignore`-constrained paths;
/// reads only files whose size or mtime differ from `known`.
pub fn scan(
    root: &Path,
    known: &HashMap<String, FileStamp>,
    constraints: &[Constraint],
) -> ScanResult {
    let mut result = ScanResult::default();
    let canonical_root: PathBuf = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut seen: HashSet<String> = HashSet::new();
    let walker = ignore::WalkBuilder::new(&canonical_root)
        .follow_links(false)
        .require_git(false)
        .build();
    for item in walker {
        let Ok(entry) = item else { continue };
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let full = entry.path();
        if kind.is_symlink() {
            // Only links that stay inside the root are followed.
            match full.canonicalize() {
                Ok(target) if target.starts_with(&canonical_root) && target.is_file() => {}
                _ => continue,
            }
        } else if !kind.is_file() {
            continue;
        }
        let Ok(rel) = full.strip_prefix(&canonical_root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let constraint = constraint_for(&rel, constraints);
        if constraint == Some("ignore") {
            continue;
        }
        let Ok(meta) = std::fs::metadata(full) else {
            continue;
        };
        let size = meta.len();
        let mtime = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        seen.insert(rel.clone());
        if let Some(stamp) = known.get(&rel) {
            if stamp.size == Some(size) && stamp.mtime == Some(mtime) {
                result.unchanged += 1;
                continue;
            }
        }
        let Ok((body, hash, skipped)) = read_file(full, size) else {
            continue;
        };
        if let Some(c) = constraint {
            result.constraints.insert(rel.clone(), c.to_string());
        }
        result.changed.push(ScannedFile {
            path: rel,
            body,
            hash,
            size,
            mtime,
            skipped,
        });
    }
    result.removed = known
        .keys()
        .filter(|p| !seen.contains(*p))
        .cloned()
        .collect();
    result.removed.sort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn confinement() {
        let root = Path::new("/proj");
        assert_eq!(confine(root, "src/a.rs").unwrap(), "src/a.rs");
        assert_eq!(confine(root, "./src/../b.rs").unwrap(), "b.rs");
        assert_eq!(confine(root, "/proj/src/a.rs").unwrap(), "src/a.rs");
        assert!(matches!(
            confine(root, "../etc/passwd"),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            confine(root, "/etc/passwd"),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            confine(root, "a/../../x"),
            Err(PathError::Escapes(_))
        ));
        assert_eq!(confine(root, " "), Err(PathError::Empty));
    }

    #[test]
    fn scan_honours_gitignore_constraints_binaries_and_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(root.join("src/a.rs"), "fn a() {}").unwrap();
        fs::write(root.join("notes.txt"), "hello").unwrap();
        fs::write(root.join(".gitignore"), "target/\n").unwrap();
        fs::create_dir_all(root.join("target")).unwrap();
        fs::write(root.join("target/out.txt"), "built").unwrap();
        fs::write(root.join("logo.png"), [0u8, 1, 2, 3]).unwrap();
        fs::write(root.join("secret.env"), "KEY=1").unwrap();
        let big = "x".repeat(MAX_FILE_BYTES as usize + 1);
        fs::write(root.join("big.txt"), big).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/hostname", root.join("escape")).unwrap();
        let constraints = vec![
            Constraint {
                pattern: "secret.env".into(),
                visibility: "ignore".into(),
            },
            Constraint {
                pattern: "src/**".into(),
                visibility: "active".into(),
            },
        ];
        let first = scan(root, &HashMap::new(), &constraints);
        let mut paths: Vec<&str> = first.changed.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, vec!["big.txt", "logo.png", "notes.txt", "src/a.rs"]);
        let by_path = |p: &str| first.changed.iter().find(|f| f.path == p).unwrap();
        assert_eq!(by_path("logo.png").skipped, Some(Skip::Binary));
        assert_eq!(by_path("big.txt").skipped, Some(Skip::Oversize));
        assert_eq!(by_path("notes.txt").body, "hello");
        assert_eq!(by_path("notes.txt").hash.len(), 64);
        assert_eq!(
            first.constraints.get("src/a.rs").map(String::as_str),
            Some("active")
        );

        // A second scan with the stamps reads nothing; a deletion shows.
        let known: HashMap<String, FileStamp> = first
            .changed
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    FileStamp {
                        hash: Some(f.hash.clone()),
                        size: Some(f.size),
                        mtime: Some(f.mtime),
                    },
                )
            })
            .collect();
        fs::remove_file(root.join("notes.txt")).unwrap();
        let second = scan(root, &known, &constraints);
        assert!(second.changed.is_empty(), "{:?}", second.changed);
        assert_eq!(second.unchanged, 3);
        assert_eq!(second.removed, vec!["notes.txt".to_string()]);
    }
}
