//! `satellite backup` and `satellite restore`: one zip with a consistent database copy and
//! every key and certificate of the data dir. Restore never writes outside an empty data dir.

use crate::storage::{migrate, DB_FILE};
use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Name of the manifest inside the archive.
pub const MANIFEST: &str = "backup.json";
pub const FORMAT: &str = "satellite-backup";
pub const FORMAT_VERSION: u32 = 1;
/// Name the restore stages files under before moving them into place.
const STAGING: &str = ".restore.tmp";
const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
const MAX_FILES: usize = 10_000;
/// How long a backup waits for a writer holding the database before giving up.
const BUSY_RETRIES: u32 = 600;

/// `backup.json`: what the archive holds and how to check it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub created_at: String,
    pub satellite_version: String,
    /// `PRAGMA user_version` of the database copy.
    pub schema_version: i64,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Relative to the data dir, `/`-separated.
    pub path: String,
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// Unix permission bits the file had.
    pub mode: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no database at {}: nothing to back up", .0.display())]
    NoDatabase(PathBuf),
    #[error("{}: not a readable satellite backup: {detail}", path.display())]
    Unreadable { path: PathBuf, detail: String },
    #[error("data dir {} is not empty; restore only into an empty or new directory", .0.display())]
    NotEmpty(PathBuf),
    #[error("backup refused: {0}")]
    Refused(String),
    #[error(
        "the backup's database schema version {found} is newer than this satellite supports ({supported}); restore it with a newer satellite binary"
    )]
    NewerSchema { found: i64, supported: i64 },
    #[error("the restored database fails its integrity check: {0}")]
    Integrity(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn sql_err(path: &Path) -> impl FnOnce(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// What `backup` wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub out: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub schema_version: i64,
    /// Entries of the data dir left out because they are neither files nor directories.
    pub skipped: Vec<String>,
}

/// What `restore` put in place.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub files: usize,
    pub schema_version: i64,
    pub created_at: String,
}

/// Counts SHA-256 and length of everything written through it.
struct Hashing<W> {
    inner: W,
    digest: ring::digest::Context,
    len: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            len: 0,
        }
    }
    fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.digest.finish()), self.len)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digest.update(buf.get(..n).unwrap_or(buf));
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Removes a directory tree when dropped, unless disarmed.
struct Cleanup {
    path: Option<PathBuf>,
}

impl Cleanup {
    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = fs::remove_dir_all(p);
        }
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn private_dir(path: &Path) -> Result<(), BackupError> {
    DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
}

/// True for what the data dir holds that is not a key or certificate: the live database
/// files (copied through SQLite instead) and logs.
fn excluded(rel: &str) -> bool {
    let top_level_db = [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        format!("{DB_FILE}-journal"),
    ];
    top_level_db.iter().any(|n| n == rel)
        || rel == "logs"
        || rel.starts_with("logs/")
        || rel.ends_with(".log")
        || rel == STAGING
}

/// Copies the database through SQLite's online backup: one step under one read
/// transaction, so the copy is a single consistent snapshot even while a server writes.
fn copy_database(src_path: &Path, dst_path: &Path) -> Result<i64, BackupError> {
    let src = Connection::open_with_flags(
        src_path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(src_path))?;
    src.busy_timeout(Duration::from_secs(10))
        .map_err(sql_err(src_path))?;
    let mut dst = Connection::open(dst_path).map_err(sql_err(dst_path))?;
    {
        let b = Backup::new(&src, &mut dst).map_err(sql_err(src_path))?;
        let mut waits = 0;
        loop {
            match b.step(-1).map_err(sql_err(src_path))? {
                StepResult::Done => break,
                StepResult::More => {}
                _ => {
                    waits += 1;
                    if waits > BUSY_RETRIES {
                        return Err(BackupError::Refused(format!(
                            "{} stayed locked for a minute; try again",
                            src_path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
    // The copy must stand alone in the archive: no WAL beside it.
    let _: String = dst
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(sql_err(dst_path))?;
    let version: i64 = dst
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(dst_path))?;
    dst.close().map_err(|(_, e)| sql_err(dst_path)(e))?;
    Ok(version)
}

/// Regular files under `dir` as (relative path, absolute path), sorted; other kinds of
/// entries (symbolic links, sockets) are reported in `skipped`.
fn collect_files(
    dir: &Path,
    prefix: &str,
    out: &mut Vec<(String, PathBuf)>,
    skipped: &mut Vec<String>,
) -> Result<(), BackupError> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            skipped.push(format!("{prefix}{}", e.file_name().to_string_lossy()));
            continue;
        };
        let rel = format!("{prefix}{name}");
        if excluded(&rel) {
            continue;
        }
        let path = e.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.is_dir() {
            collect_files(&path, &format!("{rel}/"), out, skipped)?;
        } else if meta.is_file() {
            out.push((rel, path));
        } else {
            skipped.push(rel);
        }
    }
    Ok(())
}

/// Writes `out` (mode 0600, replaced atomically) holding the database and the data dir's files.
pub fn backup(
    data_dir: &Path,
    out: &Path,
    now: DateTime<Utc>,
) -> Result<BackupSummary, BackupError> {
    backup_with_progress(data_dir, out, now, &mut |_, _| {})
}

/// Reads through to `inner`, telling `report` the running total of bytes read.
struct CountingReader<'a, R> {
    inner: R,
    done: u64,
    total: u64,
    report: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.report)(self.done, self.total);
        Ok(n)
    }
}

/// `backup`, calling `progress(bytes packed, bytes to pack)` as the files are read.
pub fn backup_with_progress(
    data_dir: &Path,
    out: &Path,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupSummary, BackupError> {
    let db_path = data_dir.join(DB_FILE);
    if !db_path.is_file() {
        return Err(BackupError::NoDatabase(db_path));
    }
    let file_name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| BackupError::Refused(format!("{} does not name a file", out.display())))?;
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Next to the output so the final rename stays on one file system; private
    // because the database copy holds password hashes.
    let staging = out_dir.join(format!(".{file_name}.tmp.{}", unique_suffix()));
    private_dir(&staging)?;
    let cleanup = Cleanup {
        path: Some(staging.clone()),
    };
    let db_copy = staging.join(DB_FILE);
    let schema_version = copy_database(&db_path, &db_copy)?;

    let mut files = Vec::new();
    let mut skipped = Vec::new();
    collect_files(data_dir, "", &mut files, &mut skipped)?;
    // When the output or its staging lives inside the data dir, it must not pack itself.
    let staging_canon = fs::canonicalize(&staging).map_err(io_err(&staging))?;
    let out_canon = fs::canonicalize(&out_dir)
        .map_err(io_err(&out_dir))?
        .join(file_name);
    files.retain(|(_, p)| match fs::canonicalize(p) {
        Ok(c) => c != out_canon && !c.starts_with(&staging_canon),
        Err(_) => true,
    });

    let zip_tmp = staging.join("backup.zip");
    let zip_file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&zip_tmp)
        .map_err(io_err(&zip_tmp))?;
    let mut zip = ZipWriter::new(zip_file);
    let zip_fail = |e: zip::result::ZipError| BackupError::Io {
        path: zip_tmp.clone(),
        source: io::Error::other(e.to_string()),
    };
    let mut entries = Vec::with_capacity(files.len() + 1);
    let mut sources: Vec<(String, PathBuf, u32)> = vec![(DB_FILE.to_string(), db_copy, 0o600)];
    for (rel, path) in files {
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        sources.push((rel, path, meta.permissions().mode() & 0o7777));
    }
    let stamp = zip_time(now);
    let mut bytes = 0u64;
    let total: u64 = sources
        .iter()
        .map(|(_, p, _)| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    for (rel, path, mode) in sources {
        let file = File::open(&path).map_err(io_err(&path))?;
        let mut src = CountingReader {
            inner: file,
            done: bytes,
            total,
            report: &mut *progress,
        };
        let large = src
            .inner
            .metadata()
            .map(|m| m.len() >= u32::MAX as u64)
            .unwrap_or(true);
        let opts = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(mode)
            .last_modified_time(stamp)
            .large_file(large);
        zip.start_file(rel.as_str(), opts).map_err(zip_fail)?;
        let mut h = Hashing::new(&mut zip);
        io::copy(&mut src, &mut h).map_err(io_err(&path))?;
        let (_, sha256, size) = h.finish();
        bytes += size;
        entries.push(FileEntry {
            path: rel,
            size,
            sha256,
            mode,
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        satellite_version: env!("CARGO_PKG_VERSION").into(),
        schema_version,
        files: entries,
    };
    let text = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Refused(format!("cannot encode the manifest: {e}")))?;
    zip.start_file(
        MANIFEST,
        SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .unix_permissions(0o600)
            .last_modified_time(stamp),
    )
    .map_err(zip_fail)?;
    zip.write_all(&text).map_err(io_err(&zip_tmp))?;
    let file = zip.finish().map_err(zip_fail)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(&zip_tmp))?;
    file.sync_all().map_err(io_err(&zip_tmp))?;
    drop(file);
    fs::rename(&zip_tmp, out).map_err(io_err(out))?;
    sync_dir(&out_dir)?;
    // Dropping the guard removes the staging dir and the database copy in it.
    drop(cleanup);
    Ok(BackupSummary {
        out: out.to_path_buf(),
        files: manifest.files.len(),
        bytes,
        schema_version,
        skipped,
    })
}

/// Zip stores local times from 1980 to 2107 in two-second steps; outside that the
/// format's zero date is used (the manifest keeps the exact time anyway).
fn zip_time(t: DateTime<Utc>) -> zip::DateTime {
    let parts = (
        u16::try_from(t.year()),
        u8::try_from(t.month()),
        u8::try_from(t.day()),
        u8::try_from(t.hour()),
        u8::try_from(t.minute()),
        u8::try_from(t.second()),
    );
    match parts {
        (Ok(y), Ok(mo), Ok(d), Ok(h), Ok(mi), Ok(s)) => {
            zip::DateTime::from_date_and_time(y, mo, d, h, mi, s).unwrap_or_default()
        }
        _ => zip::DateTime::default(),
    }
}

/// Accepts only plain relative names: no absolute paths, no `.` or `..`, no empty parts.
pub fn safe_relative(name: &str) -> Result<PathBuf, BackupError> {
    let refuse = |why: &str| Err(BackupError::Refused(format!("entry {name:?} {why}")));
    if name.is_empty() {
        return refuse("has an empty name");
    }
    if name.starts_with('/') {
        return refuse("is an absolute path");
    }
    if name.contains('\0') || name.contains('\\') {
        return refuse("holds a NUL or backslash");
    }
    for part in name.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return refuse("leaves the data dir or has an empty path part");
        }
    }
    let path = PathBuf::from(name);
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return refuse("leaves the data dir");
    }
    Ok(path)
}

/// The mode a restored file gets: the recorded bits without group/other write or special
/// bits, and private keys never readable by anyone but the owner.
pub fn restore_mode(path: &str, recorded: u32) -> u32 {
    let mode = (recorded & 0o755) | 0o600;
    if path.ends_with(".key") || path == DB_FILE {
        mode & 0o700
    } else {
        mode
    }
}

fn unreadable(file: &Path, detail: impl std::fmt::Display) -> BackupError {
    BackupError::Unreadable {
        path: file.to_path_buf(),
        detail: detail.to_string(),
    }
}

fn read_manifest(file: &Path, zip: &mut ZipArchive<File>) -> Result<Manifest, BackupError> {
    let entry = zip
        .by_name(MANIFEST)
        .map_err(|e| unreadable(file, format!("{MANIFEST}: {e}")))?;
    let mut text = Vec::new();
    entry
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| unreadable(file, format!("{MANIFEST}: {e}")))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(unreadable(file, format!("{MANIFEST} is too large")));
    }
    let m: Manifest =
        serde_json::from_slice(&text).map_err(|e| unreadable(file, format!("{MANIFEST}: {e}")))?;
    if m.format != FORMAT || m.format_version != FORMAT_VERSION {
        return Err(unreadable(
            file,
            format!(
                "format {:?} version {} (this satellite reads {FORMAT} version {FORMAT_VERSION})",
                m.format, m.format_version
            ),
        ));
    }
    Ok(m)
}

/// Checks the archive's shape against its manifest before anything is written.
fn check_entries(file: &Path, zip: &mut ZipArchive<File>, m: &Manifest) -> Result<(), BackupError> {
    if m.files.len() > MAX_FILES {
        return Err(BackupError::Refused(format!(
            "{} files listed (at most {MAX_FILES})",
            m.files.len()
        )));
    }
    let mut listed = BTreeSet::new();
    for f in &m.files {
        safe_relative(&f.path)?;
        if f.path == MANIFEST || f.path.starts_with(STAGING) {
            return Err(BackupError::Refused(format!(
                "entry {:?} is reserved",
                f.path
            )));
        }
        if !listed.insert(f.path.as_str()) {
            return Err(BackupError::Refused(format!(
                "entry {:?} listed twice",
                f.path
            )));
        }
    }
    if !listed.contains(DB_FILE) {
        return Err(BackupError::Refused(format!(
            "the backup holds no {DB_FILE}"
        )));
    }
    let mut present = BTreeSet::new();
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|e| unreadable(file, e))?;
        let name = entry.name().map_err(|e| unreadable(file, e))?.into_owned();
        if entry.is_symlink() {
            return Err(BackupError::Refused(format!(
                "entry {name:?} is a symbolic link"
            )));
        }
        if entry.encrypted() {
            return Err(BackupError::Refused(format!("entry {name:?} is encrypted")));
        }
        if name == MANIFEST {
            continue;
        }
        if entry.is_dir() {
            return Err(BackupError::Refused(format!(
                "entry {name:?} is a directory entry"
            )));
        }
        safe_relative(&name)?;
        if !listed.contains(name.as_str()) {
            return Err(BackupError::Refused(format!(
                "entry {name:?} is not listed in {MANIFEST}"
            )));
        }
        if !present.insert(name.clone()) {
            return Err(BackupError::Refused(format!(
                "entry {name:?} appears twice"
            )));
        }
    }
    if let Some(missing) = listed.iter().find(|p| !present.contains(**p)) {
        return Err(BackupError::Refused(format!(
            "{missing:?} is listed in {MANIFEST} but missing"
        )));
    }
    Ok(())
}

fn extract_one(
    zip: &mut ZipArchive<File>,
    f: &FileEntry,
    staging: &Path,
) -> Result<(), BackupError> {
    let rel = safe_relative(&f.path)?;
    let dest = staging.join(&rel);
    if let Some(parent) = dest.parent() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(io_err(parent))?;
    }
    let entry = zip
        .by_name(&f.path)
        .map_err(|e| BackupError::Refused(format!("entry {:?}: {e}", f.path)))?;
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&dest)
        .map_err(io_err(&dest))?;
    let mut h = Hashing::new(out);
    // One byte beyond the recorded size is enough to notice a lie without
    // inflating an arbitrarily large entry onto the disk.
    io::copy(&mut entry.take(f.size.saturating_add(1)), &mut h)
        .map_err(|e| BackupError::Refused(format!("entry {:?} cannot be read: {e}", f.path)))?;
    let (out, sha256, size) = h.finish();
    if size != f.size || !sha256.eq_ignore_ascii_case(&f.sha256) {
        return Err(BackupError::Refused(format!(
            "{:?} does not match its digest in {MANIFEST}: the backup is damaged or was altered",
            f.path
        )));
    }
    out.set_permissions(fs::Permissions::from_mode(restore_mode(&f.path, f.mode)))
        .map_err(io_err(&dest))?;
    out.sync_all().map_err(io_err(&dest))?;
    Ok(())
}

fn check_database(path: &Path, manifest_version: i64) -> Result<(), BackupError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql_err(path))?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_err(path))?;
    let supported = migrate::latest_version();
    if version > supported {
        return Err(BackupError::NewerSchema {
            found: version,
            supported,
        });
    }
    if version != manifest_version {
        return Err(BackupError::Refused(format!(
            "{MANIFEST} says schema version {manifest_version} but the database has {version}"
        )));
    }
    let problems = integrity_problems(&conn).map_err(sql_err(path))?;
    if !problems.is_empty() {
        return Err(BackupError::Integrity(problems.join("; ")));
    }
    Ok(())
}

/// Runs `PRAGMA integrity_check`; empty when the database is sound.
pub fn integrity_problems(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA integrity_check(20)")?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<_, _>>()?;
    Ok(rows.into_iter().filter(|r| r != "ok").collect())
}

/// Restores `file` into `data_dir`, which must be empty or absent. Everything is checked
/// and staged first; a refused restore leaves the directory as it found it.
pub fn restore(file: &Path, data_dir: &Path) -> Result<RestoreSummary, BackupError> {
    // Following a symbolic link here is deliberate: a data dir is often a link to a volume.
    let created = match fs::metadata(data_dir) {
        Ok(meta) if meta.is_dir() => {
            let mut entries = fs::read_dir(data_dir).map_err(io_err(data_dir))?;
            if entries.next().is_some() {
                return Err(BackupError::NotEmpty(data_dir.to_path_buf()));
            }
            false
        }
        Ok(_) => return Err(BackupError::NotEmpty(data_dir.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => return Err(io_err(data_dir)(e)),
    };
    let archive = File::open(file).map_err(io_err(file))?;
    let mut zip = ZipArchive::new(archive).map_err(|e| unreadable(file, e))?;
    let manifest = read_manifest(file, &mut zip)?;
    let supported = migrate::latest_version();
    if manifest.schema_version > supported {
        return Err(BackupError::NewerSchema {
            found: manifest.schema_version,
            supported,
        });
    }
    check_entries(file, &mut zip, &manifest)?;

    if created {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(io_err(data_dir))?;
    }
    // A failure from here on removes what was created: the whole dir if it was new,
    // only the staging area otherwise.
    let staging = data_dir.join(STAGING);
    let mut cleanup = Cleanup {
        path: Some(if created {
            data_dir.to_path_buf()
        } else {
            staging.clone()
        }),
    };
    private_dir(&staging)?;
    for f in &manifest.files {
        extract_one(&mut zip, f, &staging)?;
    }
    check_database(&staging.join(DB_FILE), manifest.schema_version)?;
    let mut tops: Vec<PathBuf> = fs::read_dir(&staging)
        .map_err(io_err(&staging))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_err(&staging))?;
    tops.sort();
    for src in tops {
        if let Some(name) = src.file_name() {
            let dst = data_dir.join(name);
            fs::rename(&src, &dst).map_err(io_err(&dst))?;
        }
    }
    fs::remove_dir(&staging).map_err(io_err(&staging))?;
    sync_dir(data_dir)?;
    cleanup.disarm();
    Ok(RestoreSummary {
        files: manifest.files.len(),
        schema_version: manifest.schema_version,
        created_at: manifest.created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(dir: &Path) {
        let store = crate::storage::Store::open(dir).unwrap();
        store
            .write_blocking(|c| {
                c.execute("CREATE TABLE IF NOT EXISTS probe (v TEXT)", [])?;
                c.execute("INSERT INTO probe VALUES ('kept')", [])?;
                Ok::<_, crate::storage::StorageError>(())
            })
            .unwrap();
        store.close();
        fs::create_dir_all(dir.join("tls")).unwrap();
        crate::crypto::keyfile::write_secret(&dir.join("tls/console.key"), b"KEY").unwrap();
        crate::crypto::keyfile::write_public(&dir.join("tls/console.crt"), b"CERT").unwrap();
        fs::write(dir.join("serve-1.log"), b"log").unwrap();
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn round_trip_keeps_files_modes_and_rows() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        seed(&data);
        let out = t.path().join("b.zip");
        let s = backup(&data, &out, Utc::now()).unwrap();
        assert_eq!(s.files, 3, "db, key and cert; the log stays out");
        assert_eq!(mode(&out), 0o600);
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no staging left: {names:?}");

        let restored = t.path().join("restored");
        let r = restore(&out, &restored).unwrap();
        assert_eq!(r.files, 3);
        assert_eq!(fs::read(restored.join("tls/console.key")).unwrap(), b"KEY");
        assert_eq!(mode(&restored.join("tls/console.key")), 0o600);
        assert_eq!(mode(&restored.join("tls/console.crt")), 0o644);
        assert!(!restored.join("serve-1.log").exists());
        assert!(!restored.join(STAGING).exists());
        let c = Connection::open(restored.join(DB_FILE)).unwrap();
        let v: String = c
            .query_row("SELECT v FROM probe", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, "kept");
    }

    #[test]
    fn restore_refuses_a_non_empty_dir_and_touches_nothing() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        seed(&data);
        let out = t.path().join("b.zip");
        backup(&data, &out, Utc::now()).unwrap();
        let e = restore(&out, &data).unwrap_err();
        assert!(matches!(e, BackupError::NotEmpty(_)), "{e}");
    }

    fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&str, Vec<u8>) -> Option<(String, Vec<u8>)>) {
        let mut zin = ZipArchive::new(File::open(src).unwrap()).unwrap();
        let mut zout = ZipWriter::new(File::create(dst).unwrap());
        for i in 0..zin.len() {
            let mut e = zin.by_index(i).unwrap();
            let name = e.name().unwrap().into_owned();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            if let Some((n, b)) = edit(&name, body) {
                zout.start_file(n, SimpleFileOptions::default()).unwrap();
                zout.write_all(&b).unwrap();
            }
        }
        zout.finish().unwrap();
    }

    #[test]
    fn restore_refuses_tampering_traversal_and_newer_schema() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("data");
        seed(&data);
        let good = t.path().join("b.zip");
        backup(&data, &good, Utc::now()).unwrap();

        let bad = t.path().join("tampered.zip");
        rewrite(&good, &bad, |n, b| {
            Some((
                n.to_string(),
                if n == "tls/console.crt" {
                    b"EVIL".to_vec()
                } else {
                    b
                },
            ))
        });
        let target = t.path().join("t1");
        let e = restore(&bad, &target).unwrap_err();
        assert!(e.to_string().contains("digest"), "{e}");
        assert!(!target.exists(), "a refused restore leaves no new dir");

        let trav = t.path().join("trav.zip");
        rewrite(&good, &trav, |n, b| {
            if n == MANIFEST {
                let mut m: Manifest = serde_json::from_slice(&b).unwrap();
                m.files[1].path = "../escape".into();
                Some((n.to_string(), serde_json::to_vec(&m).unwrap()))
            } else {
                Some((n.to_string(), b))
            }
        });
        let e = restore(&trav, &t.path().join("t2")).unwrap_err();
        assert!(e.to_string().contains("leaves the data dir"), "{e}");

        let newer = t.path().join("newer.zip");
        rewrite(&good, &newer, |n, b| {
            if n == MANIFEST {
                let mut m: Manifest = serde_json::from_slice(&b).unwrap();
                m.schema_version = 999;
                Some((n.to_string(), serde_json::to_vec(&m).unwrap()))
            } else {
                Some((n.to_string(), b))
            }
        });
        let e = restore(&newer, &t.path().join("t3")).unwrap_err();
        assert!(
            matches!(e, BackupError::NewerSchema { found: 999, .. }),
            "{e}"
        );
    }

    #[test]
    fn names_must_stay_inside() {
        for bad in ["", "/etc/passwd", "a/../../b", "..", "a//b", "./a", "a\\b"] {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
        assert!(safe_relative("device-ca/device-ca.key").is_ok());
        assert_eq!(restore_mode("x.key", 0o644), 0o600);
        assert_eq!(restore_mode("x.crt", 0o666), 0o644);
        assert_eq!(restore_mode("x.crt", 0o4755), 0o755);
    }
}
