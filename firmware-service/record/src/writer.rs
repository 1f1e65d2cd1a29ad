//! Writing MCAP files: one chunk per frame (a crash loses at most the frame being written), the
//! metadata first, and bounded disk use by rotation.

use super::schema::{channels, Encoded, METADATA};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("recording {path}: cannot create it: {source} (is the folder writable and its disk mounted? see [record] dir)")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("recording {path}: write failed after {bytes} bytes: {message} (disk full? the file stays readable up to its last complete frame; free space or lower [record] max_total_mb)")]
    Write {
        path: PathBuf,
        bytes: u64,
        message: String,
    },
    #[error("recording {}: cannot encode a message: {source}", .path.display())]
    Encode {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A file that fsyncs every `sync_every` flushes (one flush per frame), so that after a power
/// loss at most that many frames are lost. Also counts bytes for rotation.
struct SyncedFile {
    file: File,
    flushes: u32,
    sync_every: u32,
    position: u64,
}

impl Write for SyncedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.position += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.flushes += 1;
        if self.sync_every > 0 && self.flushes.is_multiple_of(self.sync_every) {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

impl Seek for SyncedFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let p = self.file.seek(pos)?;
        self.position = p;
        Ok(p)
    }
}

/// One open MCAP file with every channel of [`channels`] registered.
pub struct McapFile {
    writer: Option<mcap::Writer<BufWriter<SyncedFile>>>,
    channel_ids: Vec<u16>,
    path: PathBuf,
    sequence: u32,
    first_t_ns: Option<u64>,
    last_t_ns: u64,
    bytes: u64,
}

impl McapFile {
    /// Creates `path` and writes the header, schemas, channels and `metadata` (the recording's
    /// identity: config, calibration and model hashes).
    pub fn create(
        path: &Path,
        metadata: &BTreeMap<String, String>,
        sync_every: u32,
    ) -> Result<McapFile, WriteError> {
        let file = File::create(path).map_err(|source| WriteError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let sink = BufWriter::with_capacity(
            256 * 1024,
            SyncedFile {
                file,
                flushes: 0,
                sync_every,
                position: 0,
            },
        );
        let mut f = McapFile {
            writer: None,
            channel_ids: Vec::with_capacity(channels().len()),
            path: path.to_path_buf(),
            sequence: 0,
            first_t_ns: None,
            last_t_ns: 0,
            bytes: 0,
        };
        let options = mcap::WriteOptions::new()
            .compression(None)
            .profile("")
            .library(format!("adasd {}", env!("CARGO_PKG_VERSION")))
            // One chunk per frame is forced by `flush`; this is only an upper bound.
            .chunk_size(Some(4 * 1024 * 1024));
        let mut w = options.create(sink).map_err(|e| f.write_error(e))?;
        for spec in channels() {
            let schema = w
                .add_schema(&spec.schema_name, spec.schema_encoding, &spec.schema)
                .map_err(|e| f.write_error(e))?;
            let id = w
                .add_channel(schema, &spec.topic, spec.message_encoding, &BTreeMap::new())
                .map_err(|e| f.write_error(e))?;
            f.channel_ids.push(id);
        }
        w.write_metadata(&mcap::records::Metadata {
            name: METADATA.into(),
            metadata: metadata.clone(),
        })
        .map_err(|e| f.write_error(e))?;
        w.flush().map_err(|e| f.write_error(e))?;
        f.writer = Some(w);
        Ok(f)
    }

    fn write_error(&self, e: impl std::fmt::Display) -> WriteError {
        WriteError::Write {
            path: self.path.clone(),
            bytes: self.bytes,
            message: e.to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far (approximate: what went through this writer).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Data time covered, ns.
    pub fn duration_ns(&self) -> u64 {
        self.first_t_ns
            .map_or(0, |f| self.last_t_ns.saturating_sub(f))
    }

    /// Writes one frame's messages and closes the chunk, so they survive a crash.
    pub fn write_frame(&mut self, messages: &[Encoded]) -> Result<(), WriteError> {
        let Some(w) = self.writer.as_mut() else {
            return Err(WriteError::Write {
                path: self.path.clone(),
                bytes: self.bytes,
                message: "the file was closed after an earlier error".into(),
            });
        };
        let mut failed = None;
        for m in messages {
            let Some(&channel_id) = self.channel_ids.get(m.channel) else {
                continue;
            };
            self.sequence = self.sequence.wrapping_add(1);
            let header = mcap::records::MessageHeader {
                channel_id,
                sequence: self.sequence,
                log_time: m.t_ns,
                publish_time: m.t_ns,
            };
            if let Err(e) = w.write_to_known_channel(&header, &m.data) {
                failed = Some(e.to_string());
                break;
            }
            self.bytes += m.data.len() as u64 + 31;
            self.first_t_ns.get_or_insert(m.t_ns);
            self.last_t_ns = self.last_t_ns.max(m.t_ns);
        }
        if failed.is_none() {
            if let Err(e) = w.flush() {
                failed = Some(e.to_string());
            }
        }
        if let Some(message) = failed {
            // Leave the file as it is: readable up to its last complete chunk. Dropping the
            // writer would try to write the summary into a file that just failed.
            if let Some(w) = self.writer.take() {
                std::mem::forget(w);
            }
            return Err(WriteError::Write {
                path: self.path.clone(),
                bytes: self.bytes,
                message,
            });
        }
        Ok(())
    }

    /// Writes the summary and footer, and syncs the file unless it was created with
    /// `sync_every` 0 (replays, imports: no power-loss guarantee asked for).
    pub fn finish(mut self) -> Result<PathBuf, WriteError> {
        if let Some(mut w) = self.writer.take() {
            w.finish().map_err(|e| self.write_error(e))?;
            let mut sink = w.into_inner();
            sink.flush().map_err(|e| self.write_error(e))?;
            let file = sink.get_ref();
            if file.sync_every > 0 {
                file.file.sync_all().map_err(|e| self.write_error(e))?;
            }
        }
        Ok(self.path.clone())
    }
}

/// When to start a new file and how much to keep.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rotation {
    /// Start a new file beyond this size, MB.
    pub max_file_mb: u64,
    /// Start a new file beyond this much data time, s.
    pub max_file_s: u64,
    /// Delete the oldest recordings (of this recorder, in its folder) beyond this total, MB.
    pub max_total_mb: u64,
    /// Delete recordings older than this, s (0: keep).
    pub max_age_s: u64,
}

impl Default for Rotation {
    fn default() -> Self {
        Self {
            max_file_mb: 256,
            max_file_s: 300,
            max_total_mb: 4096,
            max_age_s: 0,
        }
    }
}

/// Deletes the oldest `*.mcap` files whose names start with `prefix` in `dir` until their total
/// is within `max_total_bytes`, and those older than `max_age` (file modification time; disk
/// housekeeping, not a decision). `keep` is never deleted. Returns the deleted paths.
pub fn enforce_budget(
    dir: &Path,
    prefix: &str,
    max_total_bytes: u64,
    max_age: Option<std::time::Duration>,
    keep: Option<&Path>,
) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let name = path.file_name()?.to_str()?;
            if !(name.starts_with(prefix) && name.ends_with(".mcap"))
                || Some(path.as_path()) == keep
            {
                return None;
            }
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    files.sort();
    let keep_bytes = keep
        .and_then(|k| std::fs::metadata(k).ok())
        .map_or(0, |m| m.len());
    let mut total: u64 = keep_bytes + files.iter().map(|f| f.1).sum::<u64>();
    let now = std::time::SystemTime::now();
    let mut deleted = Vec::new();
    for (modified, len, path) in files {
        let too_old = max_age.is_some_and(|a| now.duration_since(modified).is_ok_and(|d| d > a));
        if (total > max_total_bytes || too_old) && std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
            deleted.push(path);
        }
    }
    deleted
}
