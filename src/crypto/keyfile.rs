//! Atomic, permission-aware reading and writing of key and certificate files.
//! It must never leave a secret readable by others, not even for an instant, nor half-written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of files holding private keys.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of files holding public keys and certificates.
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes a private key: the file is never visible with any mode other than 0600.
pub fn write_secret(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, SECRET_MODE)
}

/// Writes a public key or certificate with mode 0644.
pub fn write_public(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, PUBLIC_MODE)
}

/// Reads a private key, refusing one that group or others could read.
pub fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    // Checking the open handle rather than the path closes the window in which
    // the file could be swapped between the check and the read.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} holds a private key but is readable by group or others (mode {:o}); \
                 run `chmod 600 {}`",
                path.display(),
                mode,
                path.display()
            ),
        ));
    }
    let mut out = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut out)?;
    Ok(out)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} does not name a file", path.display()),
        )
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = dir.join(temp_name(file_name));
    let result = write_then_rename(&tmp, path, bytes, mode);
    if result.is_err() {
        // The temporary file is useless once the write failed; a leftover would
        // only confuse an operator looking at the directory.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    sync_dir(&dir)
}

fn temp_name(file_name: &std::ffi::OsStr) -> std::ffi::OsString {
    // pid plus a counter keeps concurrent writers (threads or processes) from
    // colliding; create_new turns any remaining collision into an error, never
    // into writing through someone else's file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = std::ffi::OsString::from(".");
    name.push(file_name);
    name.push(format!(".tmp.{}.{}", std::process::id(), n));
    name
}

fn write_then_rename(tmp: &Path, path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)?;
    // The umask may have narrowed the mode; setting it explicitly makes the
    // result independent of the environment (it can only widen public files).
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)
}

/// Renames `from` to `to` and makes the new directory entry durable.
pub fn rename_synced(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // The rename is only durable once the directory entry itself is on disk.
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn secret_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_secret(&path, b"secret").unwrap();
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(read_secret(&path).unwrap(), b"secret");
    }

    #[test]
    fn overwrite_replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_secret(&path, b"one").unwrap();
        write_secret(&path, b"two").unwrap();
        assert_eq!(read_secret(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.pem")]);
    }

    #[test]
    fn public_file_has_mode_0644() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.crt");
        write_public(&path, b"cert").unwrap();
        assert_eq!(mode_of(&path), 0o644);
        assert_eq!(fs::read(&path).unwrap(), b"cert");
    }

    #[test]
    fn read_secret_refuses_group_or_world_readable_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_public(&path, b"secret").unwrap();
        let err = read_secret(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("chmod 600"), "{msg}");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(read_secret(&path).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_secret(&path).unwrap(), b"secret");
    }

    #[test]
    fn read_secret_refuses_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_secret(dir.path()).is_err());
    }

    #[test]
    fn write_into_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("k.pem");
        assert!(write_secret(&path, b"x").is_err());
    }
}
