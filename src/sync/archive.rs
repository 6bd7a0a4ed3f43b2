//! The sync file container: a zip of JSON members and a summary, listed with their digests in a manifest whose exact bytes the sender signs (Ed25519).
//! It must never parse or hand out a member before the signature verified against the pinned key, nor let the zip's own headers decide how much memory reading takes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::{self, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Timelike};
use ring::digest::{digest, SHA256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::crypto::ed25519::{verify_b64, SyncKeyPair};
use crate::crypto::CryptoError;

/// The `format` every manifest names.
pub const FORMAT: &str = "satellite-sync";
/// The only `format_version` this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The only signature scheme; named inside the signed manifest as well as in `manifest.sig`.
pub const SIGNATURE_SCHEME: &str = "ed25519";

pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const SUMMARY: &str = "summary.txt";
pub const SATELLITE: &str = "satellite.json";
pub const INSTANCES: &str = "instances.json";
pub const CHANGES: &str = "changes.json";
pub const POOLS: &str = "pools.json";
pub const ACK: &str = "ack.json";

/// Every name an entry may have; anything else is refused before a byte is unpacked.
const ALLOWED_NAMES: [&str; 8] = [
    MANIFEST, SIGNATURE, SUMMARY, SATELLITE, INSTANCES, CHANGES, POOLS, ACK,
];

const MIB: u64 = 1024 * 1024;

// Zip record layouts (APPNOTE 4.3.12 and 4.3.16).
const EOCD_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const EOCD_LEN: usize = 22;
const CDFH_SIGNATURE: [u8; 4] = [0x50, 0x4b, 0x01, 0x02];
const CDFH_LEN: usize = 46;
const ZIP64_MARK_16: u16 = 0xffff;
const ZIP64_MARK_32: u32 = 0xffff_ffff;
/// Sixteen entries with short names never need more; a larger directory is hostile.
const MAX_CENTRAL_DIRECTORY: usize = 64 * 1024;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Which way a file travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Satellite to authority.
    Request,
    /// Authority to satellite.
    Response,
}

impl FileKind {
    /// The JSON members a file of this kind carries, in the order they are written.
    pub fn members(self) -> &'static [&'static str] {
        match self {
            FileKind::Request => &[SATELLITE, INSTANCES, CHANGES],
            FileKind::Response => &[POOLS, ACK],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Request => "request",
            FileKind::Response => "response",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the caller decides about a file; the rest of the manifest is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: FileKind,
    pub sender: String,
    pub receiver: String,
    pub sequence: u64,
    /// RFC 3339; also stamped on every zip entry so the same content gives the same bytes.
    pub created_at: String,
}

/// One archive member as the signer saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberDigest {
    pub name: String,
    pub bytes: u64,
    /// Lowercase hex SHA-256 of the member's bytes.
    pub sha256: String,
}

/// `manifest.json`: its exact bytes are what `manifest.sig` signs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub kind: FileKind,
    pub sender: String,
    pub receiver: String,
    pub sequence: u64,
    pub created_at: String,
    /// Named inside the signed bytes so a signature cannot be replayed under another scheme.
    pub signature_scheme: String,
    /// Informational only: verification always uses the key the reader pinned.
    pub signer_public_key: String,
    pub members: Vec<MemberDigest>,
}

impl Manifest {
    /// Refuses a file of the wrong kind, from someone else, or addressed to someone else.
    pub fn expect(
        &self,
        kind: FileKind,
        sender: &str,
        receiver: &str,
    ) -> Result<(), SyncFileError> {
        if self.kind != kind {
            return Err(SyncFileError::WrongKind {
                expected: kind,
                actual: self.kind,
            });
        }
        if self.sender != sender {
            return Err(SyncFileError::WrongSender {
                expected: sender.to_string(),
                actual: self.sender.clone(),
            });
        }
        if self.receiver != receiver {
            return Err(SyncFileError::WrongReceiver {
                expected: receiver.to_string(),
                actual: self.receiver.clone(),
            });
        }
        Ok(())
    }

    /// Refuses a file whose sequence is not above the last one imported from the same sender.
    pub fn expect_newer_than(&self, last_imported: u64) -> Result<(), SyncFileError> {
        if self.sequence <= last_imported {
            return Err(SyncFileError::Stale {
                sequence: self.sequence,
                last: last_imported,
            });
        }
        Ok(())
    }
}

/// `manifest.sig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSignature {
    pub scheme: String,
    /// Standard base64 of the 64-byte Ed25519 signature over the bytes of `manifest.json`.
    pub signature: String,
}

/// How much a reader is willing to unpack. Checked against the zip's own headers first and
/// then again while unpacking, because the headers are written by whoever sent the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Size of the zip itself.
    pub max_archive_bytes: u64,
    pub max_entries: usize,
    /// Unpacked size of any one entry.
    pub max_entry_bytes: u64,
    /// Unpacked size of all entries together.
    pub max_unpacked_bytes: u64,
    /// `manifest.json` and `manifest.sig`, read before anything is trusted.
    pub max_manifest_bytes: u64,
    /// Unpacked size over packed size of one entry.
    pub max_ratio: u64,
    /// Entries this small are exempt from the ratio: tiny JSON compresses well and is harmless.
    pub ratio_exempt_below: u64,
}

impl Default for Limits {
    /// Sized for a request carrying a million product instances, with room to spare.
    fn default() -> Self {
        Limits {
            max_archive_bytes: 256 * MIB,
            max_entries: 16,
            max_entry_bytes: 512 * MIB,
            max_unpacked_bytes: 640 * MIB,
            max_manifest_bytes: MIB,
            max_ratio: 200,
            ratio_exempt_below: MIB,
        }
    }
}

/// A file whose signature verified and whose members all match the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncFile {
    pub manifest: Manifest,
    /// The JSON members by name (not `manifest.*`, not `summary.txt`).
    pub members: BTreeMap<String, Vec<u8>>,
    pub summary: String,
}

/// Why a sync file was not written or was refused. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum SyncFileError {
    #[error("not a zip archive, or cut short: {0}")]
    NotZip(String),
    #[error("the archive uses zip64 records, which a sync file never needs")]
    Zip64,
    #[error("the archive is {size} bytes; the limit is {limit}")]
    ArchiveTooLarge { size: u64, limit: u64 },
    #[error("the archive holds {count} entries; at most {limit} are allowed")]
    TooManyEntries { count: usize, limit: usize },
    #[error("the archive's central directory is {size} bytes, far more than a sync file needs")]
    CentralDirectoryTooLarge { size: usize },
    #[error("entry {0:?} has an absolute path")]
    AbsolutePath(String),
    #[error("entry {0:?} contains '..'")]
    ParentTraversal(String),
    #[error("entry {0:?} contains a backslash")]
    Backslash(String),
    #[error("entry {0:?} names a drive")]
    DriveLetter(String),
    #[error("entry {0:?} is not one of the names a sync file has at its root")]
    UnexpectedEntry(String),
    #[error("entry {0:?} is a symbolic link")]
    Symlink(String),
    #[error("entry {0:?} is not a regular file")]
    NotRegularFile(String),
    #[error("entry {0:?} is encrypted")]
    Encrypted(String),
    #[error("entry {name:?} uses compression method {method}; only stored and deflate are read")]
    UnsupportedCompression { name: String, method: u16 },
    #[error("entry {0:?} appears more than once")]
    DuplicateEntry(String),
    #[error("entry {name:?} declares {size} bytes unpacked; the limit is {limit}")]
    EntryDeclaredTooLarge { name: String, size: u64, limit: u64 },
    #[error("entry {name:?} unpacks to more than {limit} bytes")]
    EntryUnpacksTooLarge { name: String, limit: u64 },
    #[error("the entries declare {size} bytes unpacked in total; the limit is {limit}")]
    TotalTooLarge { size: u64, limit: u64 },
    #[error("entry {name:?} expands {ratio} times when unpacked; the limit is {limit}")]
    RatioTooHigh {
        name: String,
        ratio: u64,
        limit: u64,
    },
    #[error("entry {name:?} declares {declared} bytes but unpacks to {actual}")]
    EntrySizeMismatch {
        name: String,
        declared: u64,
        actual: u64,
    },
    #[error("entry {name:?} cannot be unpacked: {detail}")]
    EntryUnreadable { name: String, detail: String },
    #[error("manifest.json is missing")]
    ManifestMissing,
    #[error("manifest.sig is missing")]
    SignatureMissing,
    #[error("manifest.sig is not a signature file: {0}")]
    SignatureFileInvalid(String),
    #[error("signature scheme {0:?} is not accepted; only ed25519 is")]
    UnknownScheme(String),
    #[error("bad signature: manifest.json was altered or not signed by the pinned key")]
    BadSignature,
    #[error("the pinned public key is unusable: {0}")]
    PinnedKeyInvalid(String),
    #[error("manifest.json cannot be read: {0}")]
    ManifestUnparseable(String),
    #[error("manifest format is {0:?}, not \"satellite-sync\"")]
    WrongFormat(String),
    #[error("format version {0} is not supported; this build reads version 1")]
    UnsupportedVersion(u32),
    #[error("manifest.json is invalid: {0}")]
    ManifestInvalid(String),
    #[error("{0} is listed in the manifest but missing from the archive")]
    MemberMissing(String),
    #[error("{0} is in the archive but not listed in the manifest")]
    MemberUnlisted(String),
    #[error("{name} is {actual} bytes; the manifest says {listed}")]
    SizeMismatch {
        name: String,
        listed: u64,
        actual: u64,
    },
    #[error("{0} does not match its digest in the manifest: it was altered")]
    DigestMismatch(String),
    #[error("summary.txt is not UTF-8 text")]
    SummaryNotText,
    #[error("{name} is not valid: {detail}")]
    MemberUnparseable { name: String, detail: String },
    #[error("this is a {actual} file; a {expected} was expected")]
    WrongKind {
        expected: FileKind,
        actual: FileKind,
    },
    #[error("the file comes from {actual:?}, not from {expected:?}")]
    WrongSender { expected: String, actual: String },
    #[error("the file is addressed to {actual:?}, not to {expected:?}")]
    WrongReceiver { expected: String, actual: String },
    #[error("sequence {sequence} is not newer than {last}, which was already imported")]
    Stale { sequence: u64, last: u64 },
    #[error("cannot write a sync file: {0}")]
    Write(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

type Result<T, E = SyncFileError> = std::result::Result<T, E>;

/// Pretty JSON with a final newline: the form every member is written in.
pub fn member_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|e| SyncFileError::Write(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A member's content as handed to [`write_members`].
pub enum Body<'a> {
    /// The whole member in memory.
    Bytes(&'a [u8]),
    /// A member already written, deflated, through a [`StreamedMember`].
    Streamed(Box<StreamedMember>),
}

/// A member written piece by piece, for members too large to hold uncompressed (a
/// million-instance `instances.json`). Each piece is deflated as it arrives, with the
/// same options as every other member, and the size and SHA-256 the manifest lists are
/// taken over the very bytes written, so the finished file is byte for byte the one
/// [`write`] makes from the whole member.
pub struct StreamedMember {
    name: String,
    zip: ZipWriter<Cursor<Vec<u8>>>,
    /// Bytes not yet handed to the deflater: it gets exactly [`DEFLATE_CHUNK`] at a time.
    pending: Vec<u8>,
    digest: ring::digest::Context,
    size: u64,
    limit: u64,
}

impl StreamedMember {
    /// Starts member `name` of a file whose manifest will say `created_at`.
    pub fn new(name: &str, created_at: &str) -> Result<StreamedMember> {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file(name, member_options(zip_time(created_at)?))
            .map_err(|e| SyncFileError::Write(format!("{name}: {e}")))?;
        Ok(StreamedMember {
            name: name.to_string(),
            zip,
            pending: Vec::with_capacity(DEFLATE_CHUNK),
            digest: ring::digest::Context::new(&SHA256),
            size: 0,
            limit: Limits::default().max_entry_bytes,
        })
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Write for StreamedMember {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let after = self.size.saturating_add(buf.len() as u64);
        if after > self.limit {
            // A reader would refuse the file; better to stop before deflating any more.
            return Err(io::Error::other(format!(
                "{} would exceed {} bytes, the largest member a reader accepts",
                self.name, self.limit
            )));
        }
        let n = buf.len().min(DEFLATE_CHUNK - self.pending.len());
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == DEFLATE_CHUNK {
            self.zip.write_all(&self.pending)?;
            self.pending.clear();
        }
        self.digest.update(&buf[..n]);
        self.size = self.size.saturating_add(n as u64);
        Ok(n)
    }

    /// Nothing to do: what is pending waits for a whole chunk, or for the file's end.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// How much of a member the deflater is given at once. Deflate output depends on how its
/// input is split up, so every member, whole or streamed, is fed in the same pieces: the
/// same content then always gives the same bytes, however it was produced.
const DEFLATE_CHUNK: usize = 64 * 1024;

/// Starts `name` in `zip` and deflates `bytes` into it in [`DEFLATE_CHUNK`] pieces.
fn put_member(
    zip: &mut ZipWriter<Cursor<Vec<u8>>>,
    name: &str,
    bytes: &[u8],
    options: SimpleFileOptions,
) -> Result<()> {
    zip.start_file(name, options)
        .map_err(|e| SyncFileError::Write(format!("{name}: {e}")))?;
    for chunk in bytes.chunks(DEFLATE_CHUNK) {
        zip.write_all(chunk)
            .map_err(|e| SyncFileError::Write(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// Every member is deflated, `0644`, dated at the file's `created_at`.
fn member_options(stamp: zip::DateTime) -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(stamp)
        .unix_permissions(0o644)
}

/// Builds and signs a sync file in memory. `members` must be exactly the kind's JSON members.
pub fn write(
    header: Header,
    members: &[(&str, Vec<u8>)],
    summary: &str,
    signer: &SyncKeyPair,
) -> Result<Vec<u8>> {
    let members = members
        .iter()
        .map(|(name, bytes)| (*name, Body::Bytes(bytes)))
        .collect();
    write_members(header, members, summary, signer)
}

/// [`write`] for members of which some were streamed.
pub fn write_members(
    header: Header,
    members: Vec<(&str, Body<'_>)>,
    summary: &str,
    signer: &SyncKeyPair,
) -> Result<Vec<u8>> {
    let stamp = zip_time(&header.created_at)?;
    if header.sequence == 0 {
        return Err(SyncFileError::Write("sequence numbers start at 1".into()));
    }
    if header.sender.is_empty() || header.receiver.is_empty() {
        return Err(SyncFileError::Write(
            "sender and receiver are required".into(),
        ));
    }
    let ordered = order_members(header.kind, members)?;

    let limits = Limits::default();
    let mut total = summary.len() as u64;
    let mut digests = vec![member_digest(SUMMARY, summary.as_bytes())];
    let mut contents = Vec::new();
    for (name, body) in ordered {
        let (digest, content) = match body {
            Body::Bytes(bytes) => (member_digest(name, bytes), Content::Bytes(bytes)),
            Body::Streamed(member) => {
                let StreamedMember {
                    name: streamed_as,
                    mut zip,
                    pending,
                    digest,
                    size,
                    ..
                } = *member;
                if streamed_as != name {
                    return Err(SyncFileError::Write(format!(
                        "{name} was streamed as {streamed_as}"
                    )));
                }
                let digest = MemberDigest {
                    name: name.to_string(),
                    bytes: size,
                    sha256: hex::encode(digest.finish().as_ref()),
                };
                zip.write_all(&pending)
                    .map_err(|e| SyncFileError::Write(format!("{name}: {e}")))?;
                let packed = zip
                    .finish()
                    .map_err(|e| SyncFileError::Write(format!("{name}: {e}")))?
                    .into_inner();
                (digest, Content::Packed(packed))
            }
        };
        if digest.bytes > limits.max_entry_bytes {
            return Err(SyncFileError::EntryDeclaredTooLarge {
                name: name.to_string(),
                size: digest.bytes,
                limit: limits.max_entry_bytes,
            });
        }
        total = total.saturating_add(digest.bytes);
        digests.push(digest);
        contents.push((name, content));
    }
    if total > limits.max_unpacked_bytes {
        return Err(SyncFileError::TotalTooLarge {
            size: total,
            limit: limits.max_unpacked_bytes,
        });
    }

    let manifest = Manifest {
        format: FORMAT.to_string(),
        format_version: FORMAT_VERSION,
        kind: header.kind,
        sender: header.sender,
        receiver: header.receiver,
        sequence: header.sequence,
        created_at: header.created_at,
        signature_scheme: SIGNATURE_SCHEME.to_string(),
        signer_public_key: signer.public_key_b64(),
        members: digests,
    };
    let manifest_bytes = member_json(&manifest)?;
    let signature = ManifestSignature {
        scheme: SIGNATURE_SCHEME.to_string(),
        signature: signer.sign_b64(&manifest_bytes),
    };
    let signature_bytes = member_json(&signature)?;

    let options = member_options(stamp);
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let put = |zip: &mut ZipWriter<Cursor<Vec<u8>>>, name: &str, bytes: &[u8]| {
        put_member(zip, name, bytes, options)
    };
    put(&mut zip, MANIFEST, &manifest_bytes)?;
    put(&mut zip, SIGNATURE, &signature_bytes)?;
    put(&mut zip, SUMMARY, summary.as_bytes())?;
    for (name, content) in contents {
        match content {
            Content::Bytes(bytes) => put(&mut zip, name, bytes)?,
            Content::Packed(packed) => {
                // The deflated bytes move over as they are: the member is never inflated again.
                let fail = |e: zip::result::ZipError| SyncFileError::Write(format!("{name}: {e}"));
                let mut staged = ZipArchive::new(Cursor::new(packed)).map_err(fail)?;
                let entry = staged.by_index_raw(0).map_err(fail)?;
                zip.raw_copy_file(entry).map_err(fail)?;
            }
        }
    }
    let bytes = zip
        .finish()
        .map_err(|e| SyncFileError::Write(e.to_string()))?
        .into_inner();
    if bytes.len() as u64 > limits.max_archive_bytes {
        return Err(SyncFileError::ArchiveTooLarge {
            size: bytes.len() as u64,
            limit: limits.max_archive_bytes,
        });
    }
    // Never hand out a file that a reader with default limits would refuse (the ratio, say).
    central_directory(&bytes, &limits)?;
    Ok(bytes)
}

/// A member ready to be put in the zip: whole, or already deflated in a one-entry zip.
enum Content<'a> {
    Bytes(&'a [u8]),
    Packed(Vec<u8>),
}

/// Builds a sync file and puts it at `path` in one step: readers never see half a file.
pub fn write_to(
    path: &Path,
    header: Header,
    members: &[(&str, Vec<u8>)],
    summary: &str,
    signer: &SyncKeyPair,
) -> Result<()> {
    let bytes = write(header, members, summary, signer)?;
    save_atomically(path, &bytes)
}

/// Writes `bytes` to a temporary file beside `path`, flushes it, and renames it into place.
pub fn save_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_err = |source| SyncFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path.file_name().ok_or_else(|| {
        io_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a file path",
        ))
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);

    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        // The temporary file is ours alone; leaving it would only confuse the next attempt.
        let _ = fs::remove_file(&tmp);
        return Err(io_err(e));
    }
    // Durability of the rename itself; not every filesystem lets a directory be synced.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads a sync file: structure and limits first, then the signature against the pinned key,
/// and only then the manifest and the members it lists.
pub fn read(bytes: &[u8], limits: &Limits, pinned_public_key_b64: &str) -> Result<SyncFile> {
    let mut opened = Opened::open(bytes, limits)?;
    let manifest_bytes = opened.read_control(MANIFEST, SyncFileError::ManifestMissing)?;
    let signature_bytes = opened.read_control(SIGNATURE, SyncFileError::SignatureMissing)?;

    let signature: ManifestSignature = serde_json::from_slice(&signature_bytes)
        .map_err(|e| SyncFileError::SignatureFileInvalid(one_line(&e)))?;
    if signature.scheme != SIGNATURE_SCHEME {
        return Err(SyncFileError::UnknownScheme(signature.scheme));
    }
    verify_b64(pinned_public_key_b64, &manifest_bytes, &signature.signature).map_err(
        |e| match e {
            CryptoError::UnsupportedKey(m) => SyncFileError::PinnedKeyInvalid(m),
            _ => SyncFileError::BadSignature,
        },
    )?;

    // From here on the manifest is the sender's word, and the sender is the pinned one.
    let manifest = parse_manifest(&manifest_bytes)?;
    let listed: BTreeMap<&str, &MemberDigest> = manifest
        .members
        .iter()
        .map(|m| (m.name.as_str(), m))
        .collect();
    for name in opened.names() {
        if name != MANIFEST && name != SIGNATURE && !listed.contains_key(name.as_str()) {
            return Err(SyncFileError::MemberUnlisted(name.clone()));
        }
    }
    for member in &manifest.members {
        let Some(entry) = opened.entry(&member.name) else {
            return Err(SyncFileError::MemberMissing(member.name.clone()));
        };
        if entry.uncompressed != member.bytes {
            return Err(SyncFileError::SizeMismatch {
                name: member.name.clone(),
                listed: member.bytes,
                actual: entry.uncompressed,
            });
        }
    }

    let mut members = BTreeMap::new();
    let mut summary = None;
    for member in &manifest.members {
        let data = opened.read_member(&member.name, member.bytes)?;
        if data.len() as u64 != member.bytes {
            return Err(SyncFileError::SizeMismatch {
                name: member.name.clone(),
                listed: member.bytes,
                actual: data.len() as u64,
            });
        }
        if sha256_hex(&data) != member.sha256 {
            return Err(SyncFileError::DigestMismatch(member.name.clone()));
        }
        if member.name == SUMMARY {
            summary = Some(String::from_utf8(data).map_err(|_| SyncFileError::SummaryNotText)?);
        } else {
            members.insert(member.name.clone(), data);
        }
    }
    let summary = summary.ok_or_else(|| SyncFileError::MemberMissing(SUMMARY.to_string()))?;
    Ok(SyncFile {
        manifest,
        members,
        summary,
    })
}

/// The manifest of a file WITHOUT checking its signature: for finding out who claims to have
/// sent it (to choose the key to verify with). Nothing in it may be acted upon.
pub fn read_manifest_unverified(bytes: &[u8]) -> Result<Manifest> {
    let limits = Limits::default();
    let mut opened = Opened::open(bytes, &limits)?;
    let manifest_bytes = opened.read_control(MANIFEST, SyncFileError::ManifestMissing)?;
    parse_manifest(&manifest_bytes)
}

/// Parses one JSON member of a verified file into its model type.
pub fn parse_member<T: DeserializeOwned>(file: &SyncFile, name: &str) -> Result<T> {
    let bytes = file
        .members
        .get(name)
        .ok_or_else(|| SyncFileError::MemberMissing(name.to_string()))?;
    // serde's derived structs refuse unknown and duplicate fields; serde_json caps nesting.
    serde_json::from_slice(bytes).map_err(|e| SyncFileError::MemberUnparseable {
        name: name.to_string(),
        detail: one_line(&e),
    })
}

/// Lowercase hex SHA-256, as written in the manifest.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest(&SHA256, bytes).as_ref())
}

fn member_digest(name: &str, bytes: &[u8]) -> MemberDigest {
    MemberDigest {
        name: name.to_string(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
    }
}

fn order_members<T>(kind: FileKind, members: Vec<(&str, T)>) -> Result<Vec<(&str, T)>> {
    let expected = kind.members();
    let mut seen = BTreeSet::new();
    for (name, _) in &members {
        if !expected.contains(name) {
            return Err(SyncFileError::Write(format!(
                "a {kind} does not carry {name}; it carries {}",
                expected.join(", ")
            )));
        }
        if !seen.insert(*name) {
            return Err(SyncFileError::Write(format!("{name} given twice")));
        }
    }
    if let Some(want) = expected.iter().find(|want| !seen.contains(*want)) {
        return Err(SyncFileError::Write(format!("a {kind} needs {want}")));
    }
    let mut members = members;
    // Every name is expected and present once: sorting by place in the table orders them.
    members.sort_by_key(|(name, _)| expected.iter().position(|want| want == name));
    Ok(members)
}

fn zip_time(created_at: &str) -> Result<zip::DateTime> {
    let t = DateTime::parse_from_rfc3339(created_at)
        .map_err(|e| SyncFileError::Write(format!("created_at {created_at:?}: {e}")))?
        .naive_utc();
    let narrow = |v: u32| u8::try_from(v).unwrap_or(0);
    let year = u16::try_from(t.year()).unwrap_or(0);
    zip::DateTime::from_date_and_time(
        year,
        narrow(t.month()),
        narrow(t.day()),
        narrow(t.hour()),
        narrow(t.minute()),
        narrow(t.second()),
    )
    .map_err(|_| SyncFileError::Write(format!("created_at {created_at:?} is outside 1980-2107")))
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| SyncFileError::ManifestUnparseable(one_line(&e)))?;
    if manifest.format != FORMAT {
        return Err(SyncFileError::WrongFormat(manifest.format));
    }
    if manifest.format_version != FORMAT_VERSION {
        return Err(SyncFileError::UnsupportedVersion(manifest.format_version));
    }
    if manifest.signature_scheme != SIGNATURE_SCHEME {
        return Err(SyncFileError::UnknownScheme(manifest.signature_scheme));
    }
    if manifest.sequence == 0 {
        return Err(SyncFileError::ManifestInvalid(
            "sequence numbers start at 1".into(),
        ));
    }
    let mut names = BTreeSet::new();
    for m in &manifest.members {
        if !names.insert(m.name.as_str()) {
            return Err(SyncFileError::ManifestInvalid(format!(
                "{:?} is listed twice",
                m.name
            )));
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SyncFileError::ManifestInvalid(format!(
                "the digest of {:?} is not 64 hex digits",
                m.name
            )));
        }
    }
    let mut expected: BTreeSet<&str> = manifest.kind.members().iter().copied().collect();
    expected.insert(SUMMARY);
    if names != expected {
        return Err(SyncFileError::ManifestInvalid(format!(
            "a {} lists {}; this one lists {}",
            manifest.kind,
            expected.into_iter().collect::<Vec<_>>().join(", "),
            names
                .into_iter()
                .map(|n| n.escape_debug().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(manifest)
}

fn one_line(e: &dyn fmt::Display) -> String {
    e.to_string().replace(['\n', '\r'], " ")
}

/// What the central directory says about one entry, read by us rather than by the zip crate so
/// that names, types and sizes are judged before the crate is asked for any data.
#[derive(Clone, Debug)]
struct CentralEntry {
    name: String,
    uncompressed: u64,
}

/// An archive that passed the structural checks, with the running total of unpacked bytes.
struct Opened<'a> {
    zip: ZipArchive<Cursor<&'a [u8]>>,
    entries: Vec<CentralEntry>,
    limits: &'a Limits,
    unpacked: u64,
}

impl<'a> Opened<'a> {
    fn open(bytes: &'a [u8], limits: &'a Limits) -> Result<Self> {
        let size = bytes.len() as u64;
        if size > limits.max_archive_bytes {
            return Err(SyncFileError::ArchiveTooLarge {
                size,
                limit: limits.max_archive_bytes,
            });
        }
        let entries = central_directory(bytes, limits)?;
        let zip =
            ZipArchive::new(Cursor::new(bytes)).map_err(|e| SyncFileError::NotZip(one_line(&e)))?;
        // Our walk and the crate's must agree on what the archive holds.
        if zip.len() != entries.len() || zip.has_duplicate_names() {
            return Err(SyncFileError::NotZip(
                "the central directory is inconsistent".into(),
            ));
        }
        Ok(Opened {
            zip,
            entries,
            limits,
            unpacked: 0,
        })
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|e| &e.name)
    }

    fn entry(&self, name: &str) -> Option<&CentralEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// `manifest.json` or `manifest.sig`: read under the small limit, before any trust.
    fn read_control(&mut self, name: &str, missing: SyncFileError) -> Result<Vec<u8>> {
        if self.entry(name).is_none() {
            return Err(missing);
        }
        let limit = self.limits.max_manifest_bytes;
        self.unpack(name, limit)
    }

    /// A listed member: never more than the manifest's size, nor than the limits allow.
    fn read_member(&mut self, name: &str, listed: u64) -> Result<Vec<u8>> {
        let limit = listed.min(self.limits.max_entry_bytes);
        self.unpack(name, limit)
    }

    fn unpack(&mut self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let declared = self.entry(name).map_or(0, |e| e.uncompressed);
        if declared > limit {
            return Err(SyncFileError::EntryDeclaredTooLarge {
                name: name.to_string(),
                size: declared,
                limit,
            });
        }
        let remaining = self.limits.max_unpacked_bytes.saturating_sub(self.unpacked);
        let cap = limit.min(remaining);
        let unreadable = |e: &dyn fmt::Display| SyncFileError::EntryUnreadable {
            name: name.to_string(),
            detail: one_line(e),
        };
        let file = self.zip.by_name(name).map_err(|e| unreadable(&e))?;
        // The declared size is the sender's claim; the Take is what actually bounds memory.
        let mut data = Vec::with_capacity(usize::try_from(declared.min(cap)).unwrap_or(0));
        file.take(cap.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| unreadable(&e))?;
        let actual = data.len() as u64;
        if actual > cap {
            return Err(if cap < limit {
                SyncFileError::TotalTooLarge {
                    size: self.unpacked.saturating_add(actual),
                    limit: self.limits.max_unpacked_bytes,
                }
            } else {
                SyncFileError::EntryUnpacksTooLarge {
                    name: name.to_string(),
                    limit,
                }
            });
        }
        if actual != declared {
            return Err(SyncFileError::EntrySizeMismatch {
                name: name.to_string(),
                declared,
                actual,
            });
        }
        self.unpacked += actual;
        Ok(data)
    }
}

fn le16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Finds the end record, walks the central directory, and judges every entry by its header:
/// count, names, types, encryption, method, declared sizes and ratio.
fn central_directory(bytes: &[u8], limits: &Limits) -> Result<Vec<CentralEntry>> {
    let eocd = find_end_record(bytes)?;
    if le16(bytes, eocd + 4) != 0 || le16(bytes, eocd + 6) != 0 {
        return Err(SyncFileError::NotZip("a multi-part archive".into()));
    }
    let count = le16(bytes, eocd + 10);
    let cd_size = le32(bytes, eocd + 12);
    let cd_offset = le32(bytes, eocd + 16);
    if count == ZIP64_MARK_16 || cd_size == ZIP64_MARK_32 || cd_offset == ZIP64_MARK_32 {
        return Err(SyncFileError::Zip64);
    }
    let count = usize::from(count);
    if count > limits.max_entries {
        return Err(SyncFileError::TooManyEntries {
            count,
            limit: limits.max_entries,
        });
    }
    let (cd_size, cd_offset) = (cd_size as usize, cd_offset as usize);
    if cd_size > MAX_CENTRAL_DIRECTORY {
        return Err(SyncFileError::CentralDirectoryTooLarge { size: cd_size });
    }
    // A directory that does not end where the end record starts means bytes were cut or
    // inserted; requiring it also stops the zip crate from trying earlier end records.
    if cd_offset.checked_add(cd_size) != Some(eocd) {
        return Err(SyncFileError::NotZip(
            "the central directory does not end at the end record".into(),
        ));
    }
    let cd = &bytes[cd_offset..eocd];

    let mut entries: Vec<CentralEntry> = Vec::with_capacity(count);
    let mut at = 0usize;
    let mut total: u64 = 0;
    for _ in 0..count {
        let fixed = cd
            .get(at..at + CDFH_LEN)
            .filter(|h| h[..4] == CDFH_SIGNATURE)
            .ok_or_else(|| SyncFileError::NotZip("a damaged central directory entry".into()))?;
        let flags = le16(fixed, 8);
        let method = le16(fixed, 10);
        let compressed = le32(fixed, 20);
        let uncompressed = le32(fixed, 24);
        let name_len = usize::from(le16(fixed, 28));
        let extra_len = usize::from(le16(fixed, 30));
        let comment_len = usize::from(le16(fixed, 32));
        let external = le32(fixed, 38);
        let name_start = at + CDFH_LEN;
        let raw_name = cd
            .get(name_start..name_start + name_len)
            .ok_or_else(|| SyncFileError::NotZip("a damaged central directory entry".into()))?;
        at = name_start + name_len + extra_len + comment_len;
        if at > cd.len() {
            return Err(SyncFileError::NotZip(
                "a damaged central directory entry".into(),
            ));
        }

        let name = check_name(raw_name)?;
        if entries.iter().any(|e| e.name == name) {
            return Err(SyncFileError::DuplicateEntry(name));
        }
        let mode = external >> 16;
        match mode & S_IFMT {
            0 | S_IFREG => {}
            S_IFLNK => return Err(SyncFileError::Symlink(name)),
            _ => return Err(SyncFileError::NotRegularFile(name)),
        }
        // MS-DOS attribute bit for a directory.
        if external & 0x10 != 0 {
            return Err(SyncFileError::NotRegularFile(name));
        }
        if flags & 0x1 != 0 {
            return Err(SyncFileError::Encrypted(name));
        }
        if method != 0 && method != 8 {
            return Err(SyncFileError::UnsupportedCompression { name, method });
        }
        if compressed == ZIP64_MARK_32 || uncompressed == ZIP64_MARK_32 {
            return Err(SyncFileError::Zip64);
        }
        let (compressed, uncompressed) = (u64::from(compressed), u64::from(uncompressed));
        if uncompressed > limits.max_entry_bytes {
            return Err(SyncFileError::EntryDeclaredTooLarge {
                name,
                size: uncompressed,
                limit: limits.max_entry_bytes,
            });
        }
        if uncompressed >= limits.ratio_exempt_below {
            let ratio = uncompressed / compressed.max(1);
            if ratio > limits.max_ratio {
                return Err(SyncFileError::RatioTooHigh {
                    name,
                    ratio,
                    limit: limits.max_ratio,
                });
            }
        }
        total = total.saturating_add(uncompressed);
        entries.push(CentralEntry { name, uncompressed });
    }
    if total > limits.max_unpacked_bytes {
        return Err(SyncFileError::TotalTooLarge {
            size: total,
            limit: limits.max_unpacked_bytes,
        });
    }
    Ok(entries)
}

/// The end record must close the file exactly (its comment running to the last byte); an
/// archive cut short loses it, and one with trailing bytes is not what any writer produced.
fn find_end_record(bytes: &[u8]) -> Result<usize> {
    if bytes.len() < EOCD_LEN {
        return Err(SyncFileError::NotZip(format!("only {} bytes", bytes.len())));
    }
    let last = bytes.len() - EOCD_LEN;
    let first = last.saturating_sub(usize::from(u16::MAX));
    (first..=last)
        .rev()
        .find(|&p| {
            bytes[p..p + 4] == EOCD_SIGNATURE
                && p + EOCD_LEN + usize::from(le16(bytes, p + 20)) == bytes.len()
        })
        .ok_or_else(|| SyncFileError::NotZip("no end of central directory record".into()))
}

fn check_name(raw: &[u8]) -> Result<String> {
    let name = String::from_utf8_lossy(raw).into_owned();
    if name.starts_with('/') {
        return Err(SyncFileError::AbsolutePath(name));
    }
    if name.contains('\\') {
        return Err(SyncFileError::Backslash(name));
    }
    let b = name.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        return Err(SyncFileError::DriveLetter(name));
    }
    if name.split('/').any(|part| part == "..") {
        return Err(SyncFileError::ParentTraversal(name));
    }
    // A lossy decode may have changed the bytes; only an exact allowed name passes.
    if !ALLOWED_NAMES.iter().any(|a| a.as_bytes() == raw) {
        return Err(SyncFileError::UnexpectedEntry(name));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_judged_by_their_worst_trait() {
        assert!(matches!(
            check_name(b"/etc/x"),
            Err(SyncFileError::AbsolutePath(_))
        ));
        assert!(matches!(
            check_name(b"C:\\x"),
            Err(SyncFileError::Backslash(_))
        ));
        assert!(matches!(
            check_name(b"C:x"),
            Err(SyncFileError::DriveLetter(_))
        ));
        assert!(matches!(
            check_name(b"../ack.json"),
            Err(SyncFileError::ParentTraversal(_))
        ));
        assert!(matches!(
            check_name(b"sub/ack.json"),
            Err(SyncFileError::UnexpectedEntry(_))
        ));
        assert!(matches!(
            check_name(b"ack.json\xff"),
            Err(SyncFileError::UnexpectedEntry(_))
        ));
        assert_eq!(check_name(b"ack.json").unwrap(), "ack.json");
    }

    #[test]
    fn end_record_must_close_the_file() {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file(ACK, SimpleFileOptions::default()).unwrap();
        zip.write_all(b"{}").unwrap();
        let mut bytes = zip.finish().unwrap().into_inner();
        assert_eq!(find_end_record(&bytes).unwrap(), bytes.len() - EOCD_LEN);
        bytes.push(0);
        assert!(matches!(
            find_end_record(&bytes),
            Err(SyncFileError::NotZip(_))
        ));
        assert!(matches!(
            find_end_record(&bytes[..10]),
            Err(SyncFileError::NotZip(_))
        ));
    }

    #[test]
    fn zip_time_follows_created_at() {
        let t = zip_time("2025-03-04T05:06:08+00:00").unwrap();
        assert_eq!(
            (
                t.year(),
                t.month(),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            (2025, 3, 4, 5, 6, 8)
        );
        assert!(zip_time("yesterday").is_err());
    }
}
