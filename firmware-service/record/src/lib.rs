//! Recording and replaying drives (MCAP): the black box, bit-exact replay, regression.
//!
//! - [`schema`]: topics and message encodings (pure);
//! - [`writer`]: MCAP files, one chunk per frame, rotation and disk budget;
//! - [`event_ring`]: the black box's pre/post-event buffer (pure);
//! - [`reader`]: recordings read back as a stream (one frame in memory) or collected; damaged
//!   parts are skipped and reported, the rest read;
//! - [`compare`]: decisions and detections of two recordings, with tolerances (pure).
//!
//! A recording as a frame source (`mcap://`) is `adas-io`'s; importing and the `record` command
//! line are the daemon's.
//!
//! [`Recorder`] is what the run loop talks to: it never fails the run; a write error (full disk)
//! is logged, the file stays readable up to its last complete frame, and driving goes on.

pub mod compare;
pub mod event_ring;
pub mod reader;
pub mod schema;
pub mod writer;

pub use reader::{ReadError, RecordedFrame, Recording};
pub use schema::{FrameRecord, Outcome};

use event_ring::{EventRing, Step};
use schema::Encoded;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use writer::McapFile;

/// `[record]` in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RecordMode {
    #[default]
    Off,
    /// Everything, in files rotated by size/age within a disk budget.
    Continuous,
    /// Black box: `pre_event_s` before and `post_event_s` after every FCW or braking frame.
    Event,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    pub mode: RecordMode,
    /// Folder for the files (default: `recordings/` in the output folder).
    pub dir: Option<PathBuf>,
    /// File names start with this.
    pub prefix: String,
    pub pre_event_s: f64,
    pub post_event_s: f64,
    /// Start a new file beyond this size, MB.
    pub max_file_mb: u64,
    /// Start a new file beyond this much data time, s.
    pub max_file_s: u64,
    /// Delete the oldest files (this prefix, this folder) beyond this total, MB.
    pub max_total_mb: u64,
    /// Delete files older than this, s (0: no age limit).
    pub max_age_s: u64,
    /// fsync every this many frames (power loss loses at most that many; 0: never).
    pub sync_every_frames: u32,
    /// JPEG quality for sources that do not deliver JPEG bytes.
    pub jpeg_quality: u8,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            mode: RecordMode::Off,
            dir: None,
            prefix: "adas".into(),
            pre_event_s: 10.0,
            post_event_s: 5.0,
            max_file_mb: 256,
            max_file_s: 300,
            max_total_mb: 4096,
            max_age_s: 0,
            sync_every_frames: 10,
            jpeg_quality: 85,
        }
    }
}

/// Counters for the run's summary.
#[derive(Debug, Default, Clone)]
pub struct RecorderStats {
    pub frames: u64,
    pub files: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
    /// Time spent encoding and writing (wall clock, telemetry).
    pub busy: Duration,
    pub error: Option<String>,
}

impl RecorderStats {
    pub fn per_frame_us(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.busy.as_secs_f64() * 1e6 / self.frames as f64
        }
    }
}

enum Target {
    /// One file (replay, import).
    File(PathBuf),
    /// Rotated files in a folder.
    Dir(PathBuf),
}

/// The recorder the run loop feeds, one frame at a time.
pub struct Recorder {
    config: RecordConfig,
    target: Target,
    metadata: BTreeMap<String, String>,
    ring: Option<EventRing>,
    file: Option<McapFile>,
    file_no: u32,
    pub stats: RecorderStats,
}

impl Recorder {
    /// Rotated files in `dir` (`config.mode` continuous or event).
    pub fn in_dir(
        config: RecordConfig,
        dir: &Path,
        metadata: BTreeMap<String, String>,
    ) -> std::io::Result<Recorder> {
        std::fs::create_dir_all(dir)?;
        Ok(Self::new(config, Target::Dir(dir.to_path_buf()), metadata))
    }

    /// Everything into one file, no rotation and no fsync (replays on the desk: a crash of the
    /// process still leaves every written frame readable, only a power loss could lose some).
    pub fn to_file(path: &Path, metadata: BTreeMap<String, String>) -> Recorder {
        let config = RecordConfig {
            mode: RecordMode::Continuous,
            sync_every_frames: 0,
            max_file_mb: u64::MAX / (1 << 20),
            max_file_s: u64::MAX / 1_000_000_000,
            max_total_mb: u64::MAX / (1 << 20),
            ..Default::default()
        };
        Self::new(config, Target::File(path.to_path_buf()), metadata)
    }

    fn new(config: RecordConfig, target: Target, metadata: BTreeMap<String, String>) -> Recorder {
        let ring = (config.mode == RecordMode::Event)
            .then(|| EventRing::new(config.pre_event_s, config.post_event_s));
        Recorder {
            config,
            target,
            metadata,
            ring,
            file: None,
            file_no: 0,
            stats: RecorderStats::default(),
        }
    }

    pub fn jpeg_quality(&self) -> u8 {
        self.config.jpeg_quality
    }

    fn next_path(&mut self, label: &str) -> PathBuf {
        self.file_no += 1;
        match &self.target {
            Target::File(p) => p.clone(),
            Target::Dir(dir) => {
                // Wall-clock date in the name: for people finding the file, not for decisions.
                let unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                dir.join(format!(
                    "{}-{label}{unix}-{:04}.mcap",
                    self.config.prefix, self.file_no
                ))
            }
        }
    }

    fn open(&mut self, label: &str) -> Result<(), writer::WriteError> {
        let path = self.next_path(label);
        let file = McapFile::create(&path, &self.metadata, self.config.sync_every_frames)?;
        tracing::info!(path = %path.display(), "recording to");
        self.stats.files.push(path);
        self.file = Some(file);
        Ok(())
    }

    fn close(&mut self) -> Result<(), writer::WriteError> {
        if let Some(f) = self.file.take() {
            let path = f.finish()?;
            if let Target::Dir(dir) = &self.target {
                let max_age =
                    (self.config.max_age_s > 0).then(|| Duration::from_secs(self.config.max_age_s));
                let deleted = writer::enforce_budget(
                    dir,
                    &self.config.prefix,
                    self.config.max_total_mb.saturating_mul(1 << 20),
                    max_age,
                    Some(&path),
                );
                for d in &deleted {
                    tracing::info!(path = %d.display(), "deleted old recording (disk budget)");
                }
                self.stats.deleted.extend(deleted);
            }
        }
        Ok(())
    }

    fn write(&mut self, frame: &[Encoded], label: &str) -> Result<(), writer::WriteError> {
        if self.file.is_none() {
            self.open(label)?;
        }
        if let Some(f) = self.file.as_mut() {
            f.write_frame(frame)?;
            let full = f.bytes() >= self.config.max_file_mb.saturating_mul(1 << 20)
                || f.duration_ns() >= self.config.max_file_s.saturating_mul(1_000_000_000);
            if full && matches!(self.target, Target::Dir(_)) {
                self.close()?;
            }
        }
        Ok(())
    }

    /// Records one frame; `event`: FCW or braking in it (for the black box). Errors are logged
    /// once and end the recording, never the run.
    pub fn record(&mut self, record: &FrameRecord, event: bool) {
        if self.stats.error.is_some() {
            return;
        }
        let started = Instant::now();
        let result = self.record_inner(record, event);
        self.stats.busy += started.elapsed();
        self.stats.frames += 1;
        if let Err(e) = result {
            tracing::error!("{e}; recording stopped, the pipeline goes on");
            self.stats.error = Some(e.to_string());
            self.file = None;
        }
    }

    fn record_inner(
        &mut self,
        record: &FrameRecord,
        event: bool,
    ) -> Result<(), writer::WriteError> {
        let path = || self.file.as_ref().map(|f| f.path().to_path_buf());
        let encoded =
            schema::encode_frame(record).map_err(|source| writer::WriteError::Encode {
                path: path().unwrap_or_default(),
                source,
            })?;
        match self
            .ring
            .as_mut()
            .map(|r| r.push(record.t_ns, encoded.clone(), event))
        {
            None => self.write(&encoded, ""),
            Some(Step::Idle) => Ok(()),
            Some(Step::Start { t_event_ns, frames }) => {
                let label = format!("event-t{}s-", t_event_ns / 1_000_000_000);
                self.open(&label)?;
                for f in &frames {
                    self.write(f, &label)?;
                }
                Ok(())
            }
            Some(Step::Write(f)) => self.write(&f, "event-"),
            Some(Step::Finish(f)) => {
                self.write(&f, "event-")?;
                self.close()
            }
        }
    }

    /// Closes the current file (summary + footer). Returns the counters.
    pub fn finish(mut self) -> RecorderStats {
        if let Err(e) = self.close() {
            tracing::error!("{e}");
            self.stats.error.get_or_insert(e.to_string());
        }
        self.stats
    }
}
