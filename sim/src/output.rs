//! Writing output files so that a crash, a kill or a full disk never leaves a half-written
//! file under its final name, and a set of files is never half replaced.
//!
//! Every file is first written in full under a temporary name on the same filesystem and
//! flushed to disk (`fsync`), then renamed into place; a rename within one filesystem is
//! atomic. Three shapes:
//!
//! - [`write_file`]: one file (`<name>` via `.<name>.tmp-<pid>` beside it).
//! - [`replace_folder`]: a folder that holds exactly one set of files (an `olsim run`
//!   report). The new set is written into a sibling folder `.<name>.tmp-<pid>`, which is then
//!   swapped with the old folder in one `renameat2(RENAME_EXCHANGE)` call, and the old set
//!   deleted. Any crash leaves the old complete set or the new complete set under `<name>`.
//!   Where the exchange is not supported (not Linux, or a filesystem without it), the old
//!   folder is renamed aside to `.<name>.old-<pid>` first: a crash between the two renames
//!   leaves no `<name>`, the old set in `.<name>.old-<pid>` and the new one in
//!   `.<name>.tmp-<pid>`, both complete.
//! - [`write_files`]: files placed into a folder that holds other things too (a sweep's
//!   merged table beside its shard results). All files are written and flushed under
//!   temporary names first, so an error or a crash while writing leaves every old file as it
//!   was; then each is renamed into place.
//!
//! Leftover temporary files and folders of processes that no longer run are removed by the
//! next write to the same place (on Linux, where a process's liveness is known from `/proc`).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A file or folder that could not be written, and what that means for the old contents.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct OutputError {
    /// The file or folder.
    pub path: PathBuf,
    /// What failed, and what was kept.
    pub message: String,
}

fn fail(path: &Path, message: impl std::fmt::Display) -> OutputError {
    OutputError {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Creates the folder `dir` (and its parents) and writes and removes a probe file in it, so a
/// folder that cannot be written fails before any work starts rather than after it.
///
/// Several processes may probe one folder at once with the same probe name: shards of a sweep
/// on a shared volume, each the same pid in its own container (Kubernetes pods), or on two
/// hosts. One may then remove the probe file another wrote; that is no error, as the write
/// succeeded.
pub fn probe(dir: &Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| fail(dir, format!("cannot create the output folder: {e}")))?;
    let file = dir.join(format!(".olsim-probe-{}", std::process::id()));
    std::fs::write(&file, b"probe")
        .map_err(|e| fail(dir, format!("cannot write into the output folder: {e}")))?;
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(fail(&file, format!("cannot remove the probe file: {e}")))
        }
        _ => Ok(()),
    }
}

/// Checks, before any work starts, that [`replace_folder`] can later replace `dir` with the
/// files `names`: `dir` can be created and written, holds nothing but such files, and its
/// parent can hold the temporary sibling folder.
pub fn probe_replace(dir: &Path, names: &[&str]) -> Result<(), OutputError> {
    let (parent, name) = split(dir)?;
    probe(dir)?;
    let entries = std::fs::read_dir(dir).map_err(|e| fail(dir, e))?;
    let mut foreign: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !names.contains(&n.as_str()))
        .collect();
    if !foreign.is_empty() {
        foreign.sort();
        return Err(fail(
            dir,
            format!(
                "holds files other than {} ({}); the folder is replaced as a whole, so give \
                 an empty folder or one holding only an earlier report",
                names.join(", "),
                foreign.join(", ")
            ),
        ));
    }
    let staging = parent.join(temp_name(name, "tmp"));
    probe(&staging)?;
    std::fs::remove_dir(&staging).map_err(|e| fail(&staging, e))
}

/// Writes `bytes` to `path` through a temporary file beside it: `path` holds the old contents
/// or the new ones, never a part.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let (dir, name) = split(path)?;
    remove_stale(dir, name);
    let tmp = dir.join(temp_name(name, "tmp"));
    let written = write_synced(&tmp, bytes).and_then(|()| {
        std::fs::rename(&tmp, path)
            .map_err(|e| fail(path, format!("cannot rename into place: {e}")))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// Replaces the folder `dir` with one holding exactly `files` (paths relative to `dir`,
/// contents), so that any crash leaves the old complete folder or the new one (see the
/// module docs). On an error nothing under `dir` has changed.
pub fn replace_folder(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), OutputError> {
    let (parent, name) = split(dir)?;
    remove_stale(parent, name);
    let staging = parent.join(temp_name(name, "tmp"));
    stage(&staging, files).map_err(|e| unchanged(e, dir))?;
    let swapped = if dir.exists() {
        swap(&staging, dir, parent, name)
    } else {
        std::fs::rename(&staging, dir).map_err(|e| fail(dir, e))
    };
    if let Err(e) = swapped {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(unchanged(e, dir));
    }
    sync_dir(parent);
    Ok(())
}

/// Places `files` (paths relative to `dir`, contents) into `dir`, leaving its other contents
/// alone: all are written and flushed under temporary names first, then renamed into place.
/// On an error while writing, no file under `dir` has changed.
pub fn write_files(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), OutputError> {
    remove_stale(dir, "olsim-output");
    let staging = dir.join(temp_name("olsim-output", "tmp"));
    stage(&staging, files).map_err(|e| unchanged(e, dir))?;
    let placed = files.iter().try_for_each(|(rel, _)| {
        let target = dir.join(rel);
        if let Some(sub) = target.parent() {
            std::fs::create_dir_all(sub).map_err(|e| fail(sub, e))?;
        }
        std::fs::rename(staging.join(rel), &target)
            .map_err(|e| fail(&target, format!("cannot rename into place: {e}")))
    });
    let _ = std::fs::remove_dir_all(&staging);
    placed?;
    sync_dir(dir);
    Ok(())
}

/// `dir`'s parent folder and file name; an error for paths without a name (`.`, `/`).
fn split(path: &Path) -> Result<(&Path, &str), OutputError> {
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        fail(
            path,
            "not a usable output path; give a path that ends in a (UTF-8) name, e.g. out/run",
        )
    })?;
    let parent = path.parent().unwrap_or(Path::new(""));
    Ok((
        if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        },
        name,
    ))
}

/// `.<name>.<kind>-<pid>`.
fn temp_name(name: &str, kind: &str) -> String {
    format!(".{name}.{kind}-{}", std::process::id())
}

/// Writes `files` into a fresh folder `staging`, each flushed to disk.
fn stage(staging: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), OutputError> {
    let _ = std::fs::remove_dir_all(staging);
    std::fs::create_dir_all(staging).map_err(|e| fail(staging, e))?;
    let written = files.iter().try_for_each(|(rel, bytes)| {
        let path = staging.join(rel);
        if let Some(sub) = path.parent() {
            std::fs::create_dir_all(sub).map_err(|e| fail(sub, e))?;
        }
        write_synced(&path, bytes).map_err(|e| fail(rel, e.message))
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(staging);
    }
    written
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut file = File::create(path).map_err(|e| fail(path, e))?;
    file.write_all(bytes).map_err(|e| fail(path, e))?;
    file.sync_all().map_err(|e| fail(path, e))
}

/// Flushes a folder's entries (the renames) to disk; best effort, as not every platform can
/// open a folder for this.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// An error while writing new files: says that the old ones are unchanged.
fn unchanged(e: OutputError, dir: &Path) -> OutputError {
    fail(
        &dir.join(&e.path),
        format!(
            "{}; nothing was written: {} is unchanged",
            e.message,
            dir.display()
        ),
    )
}

/// Swaps the complete `staging` folder with `dir` and removes the old contents.
fn swap(staging: &Path, dir: &Path, parent: &Path, name: &str) -> Result<(), OutputError> {
    if !exchange(staging, dir)? {
        let old = parent.join(temp_name(name, "old"));
        std::fs::rename(dir, &old).map_err(|e| fail(dir, e))?;
        if let Err(e) = std::fs::rename(staging, dir) {
            let _ = std::fs::rename(&old, dir);
            return Err(fail(dir, e));
        }
        let _ = std::fs::remove_dir_all(&old);
        return Ok(());
    }
    // `staging` now holds the old contents.
    let _ = std::fs::remove_dir_all(staging);
    Ok(())
}

/// Atomically exchanges two paths; `Ok(false)` where the platform or filesystem cannot.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn exchange(a: &Path, b: &Path) -> Result<bool, OutputError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|e| fail(p, e));
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call; renameat2
    // only reads them.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP) => Ok(false),
        _ => Err(fail(b, err)),
    }
}

/// Atomically exchanges two paths; `Ok(false)` where the platform or filesystem cannot.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn exchange(_: &Path, _: &Path) -> Result<bool, OutputError> {
    Ok(false)
}

/// Removes `.<name>.tmp-<pid>` and `.<name>.old-<pid>` in `dir` left by processes that no
/// longer run (Linux only: elsewhere a process's liveness is not known, so nothing goes).
fn remove_stale(dir: &Path, name: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.filter_map(Result::ok) {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest
            .strip_prefix("tmp-")
            .or_else(|| rest.strip_prefix("old-"))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("olsim-output-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files(text: &str) -> Vec<(PathBuf, Vec<u8>)> {
        ["a.txt", "b.txt"]
            .map(|n| (PathBuf::from(n), format!("{text} {n}").into_bytes()))
            .to_vec()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_folder_is_replaced_whole_and_refused_when_it_holds_other_files() {
        let root = scratch("replace");
        let out = root.join("report");
        probe_replace(&out, &["a.txt", "b.txt"]).unwrap();
        replace_folder(&out, &files("old")).unwrap();
        replace_folder(&out, &files("new")).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("b.txt")).unwrap(),
            "new b.txt"
        );
        assert_eq!(listing(&root), ["report"], "no temporary folder is left");
        std::fs::write(out.join("notes"), "mine").unwrap();
        let err = probe_replace(&out, &["a.txt", "b.txt"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("holds files other than") && err.contains("notes"),
            "{err}"
        );
        let err = probe_replace(Path::new("."), &["a.txt"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a usable output path"), "{err}");
    }

    #[test]
    fn files_placed_beside_others_leave_the_others_and_no_temporary() {
        let root = scratch("place");
        std::fs::write(root.join("keep"), "x").unwrap();
        let mut set = files("v1");
        set.push((PathBuf::from("sub/c.svg"), b"c".to_vec()));
        write_files(&root, &set).unwrap();
        write_file(&root.join("one.json"), b"{}").unwrap();
        assert_eq!(
            listing(&root),
            ["a.txt", "b.txt", "keep", "one.json", "sub"]
        );
        assert_eq!(
            std::fs::read_to_string(root.join("sub/c.svg")).unwrap(),
            "c"
        );
    }
}
