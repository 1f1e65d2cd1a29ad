//! Recording and replaying drives (MCAP): the black box, bit-exact replay, regression.
//!
//! - [`schema`]: topics and message encodings (pure), with the views for Foxglove: the 3D scene
//!   ([`scene`], in the [`foxglove`] schemas), the camera's place ([`camera`]) and decoded CAN
//!   signals ([`can_signals`]);
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

pub mod camera;
pub mod can_signals;
pub mod compare;
pub mod event_ring;
pub mod foxglove;
pub mod reader;
pub mod scene;
pub mod schema;
pub mod writer;

pub use reader::{ReadError, RecordedFrame, Recording};
pub use schema::{FrameRecord, Outcome};

use adas_plugins::range::{self, Bound, Numbers, Range, Refused};
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

impl RecordConfig {
    /// Every number's physical range, declared once (docs/RELIABILITY.md lists them).
    pub const RANGES: &'static [Bound<RecordConfig>] = &[
        Bound::new(
            "pre_event_s",
            Range::new(0.0, 60.0, "s"),
            |c| c.pre_event_s.numbers(),
            "the black box holds every frame of this window in memory: 60 s at 30 frames/s of \
             150 kB JPEGs is 270 MB",
        ),
        Bound::new(
            "post_event_s",
            Range::new(0.0, 60.0, "s"),
            |c| c.post_event_s.numbers(),
            "an event's aftermath; longer is a continuous recording",
        ),
        Bound::new(
            "max_file_mb",
            Range::new(1.0, 65536.0, "MB"),
            |c| c.max_file_mb.numbers(),
            "a file a laptop can open; FAT32 cards end at 4 GB",
        ),
        Bound::new(
            "max_file_s",
            Range::new(1.0, 86400.0, "s"),
            |c| c.max_file_s.numbers(),
            "a day of driving",
        ),
        Bound::new(
            "max_total_mb",
            Range::new(1.0, 16_777_216.0, "MB"),
            |c| c.max_total_mb.numbers(),
            "16 TB, more than any disk in a vehicle",
        ),
        Bound::new(
            "max_age_s",
            Range::new(0.0, 31_536_000.0, "s"),
            |c| c.max_age_s.numbers(),
            "0 keeps files until the budget needs the space; at most a year",
        ),
        Bound::new(
            "sync_every_frames",
            Range::new(0.0, 10_000.0, "frames"),
            |c| c.sync_every_frames.numbers(),
            "0 never syncs; at 30 frames/s 10 000 frames is 5.5 min lost to a power cut",
        ),
        Bound::new(
            "jpeg_quality",
            Range::new(1.0, 100.0, ""),
            |c| c.jpeg_quality.numbers(),
            "the JPEG quality scale",
        ),
    ];

    /// Checks every value against its range; the refusal names the key relative to `[record]`.
    pub fn validate(&self) -> Result<(), Refused> {
        range::check(self, Self::RANGES)
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
    /// Write failures (each one costs the file in hand; the next attempt opens a new one).
    pub errors: u64,
    /// The last failure.
    pub error: Option<String>,
    /// Frames not recorded because writing had failed and was waiting to be retried.
    pub lost_frames: u64,
    /// Bytes written into recording files (messages and their record headers).
    pub bytes: u64,
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
    /// Where the camera is (from the calibration in the metadata), written with every frame.
    camera: Option<camera::CameraPose>,
    file: Option<McapFile>,
    file_no: u32,
    /// After a failure: no attempt before this data time (ns).
    retry_at_ns: Option<u64>,
    pub stats: RecorderStats,
}

/// After a write failure the recorder waits this much data time before it tries a new file: a
/// full or read-only disk is not hammered every frame, and recording resumes by itself once
/// the disk takes data again.
pub const RETRY_AFTER_NS: u64 = 1_000_000_000;

impl Recorder {
    /// Rotated files in `dir` (`config.mode` continuous or event). The folder is created with
    /// the first file, so that a folder that cannot be created yet is a recording failure
    /// (reported and retried), not a reason for the daemon not to start.
    pub fn in_dir(
        config: RecordConfig,
        dir: &Path,
        metadata: BTreeMap<String, String>,
    ) -> Recorder {
        Self::new(config, Target::Dir(dir.to_path_buf()), metadata)
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
        let camera = metadata
            .get(schema::CALIBRATION_KEY)
            .and_then(|text| camera::pose(text));
        Recorder {
            config,
            target,
            metadata,
            ring,
            camera,
            file: None,
            file_no: 0,
            retry_at_ns: None,
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
        if let Target::Dir(dir) = &self.target {
            std::fs::create_dir_all(dir).map_err(|source| writer::WriteError::Create {
                path: dir.clone(),
                source,
            })?;
        }
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
            let before = f.bytes();
            let written = f.write_frame(frame);
            self.stats.bytes += f.bytes() - before;
            written?;
            let full = f.bytes() >= self.config.max_file_mb.saturating_mul(1 << 20)
                || f.duration_ns() >= self.config.max_file_s.saturating_mul(1_000_000_000);
            if full && matches!(self.target, Target::Dir(_)) {
                self.close()?;
            }
        }
        Ok(())
    }

    /// Records one frame; `event`: FCW or braking in it (for the black box). A failure costs
    /// the file in hand (what it holds so far stays readable) and the frames of the next
    /// [`RETRY_AFTER_NS`]; then a new file is tried. Never ends the run: the caller reports
    /// [`Recorder::failing`].
    pub fn record(&mut self, record: &FrameRecord, event: bool) -> Result<(), writer::WriteError> {
        if self.retry_at_ns.is_some_and(|t| record.t_ns < t) {
            self.stats.lost_frames += 1;
            return Ok(());
        }
        let started = Instant::now();
        let result = self.record_inner(record, event);
        self.stats.busy += started.elapsed();
        match &result {
            Ok(()) => {
                self.stats.frames += 1;
                self.retry_at_ns = None;
            }
            Err(e) => {
                self.stats.lost_frames += 1;
                self.stats.errors += 1;
                self.stats.error = Some(e.to_string());
                self.file = None;
                self.retry_at_ns = Some(record.t_ns.saturating_add(RETRY_AFTER_NS));
            }
        }
        result
    }

    /// The last attempt failed and the recorder is waiting to try again.
    pub fn failing(&self) -> bool {
        self.retry_at_ns.is_some()
    }

    fn record_inner(
        &mut self,
        record: &FrameRecord,
        event: bool,
    ) -> Result<(), writer::WriteError> {
        let path = || self.file.as_ref().map(|f| f.path().to_path_buf());
        let mut encoded =
            schema::encode_frame(record).map_err(|source| writer::WriteError::Encode {
                path: path().unwrap_or_default(),
                source,
            })?;
        if let Some(pose) = &self.camera {
            encoded.push(schema::camera_transform(record.t_ns, pose));
        }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> FrameRecord<'static> {
        FrameRecord {
            seq,
            t_ns: seq * 100_000_000,
            jpeg: Some(&[0xFF, 0xD8, 0xFF, 0xD9]),
            outcome: None,
            can_rx: &[],
            can_tx: &[],
        }
    }

    #[test]
    fn a_folder_that_cannot_be_written_is_retried_after_a_second_of_data() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where the folder should be, until frame 5.
        let dir = tmp.path().join("recordings");
        std::fs::write(&dir, b"").unwrap();
        let config = RecordConfig {
            mode: RecordMode::Continuous,
            ..Default::default()
        };
        let mut recorder = Recorder::in_dir(config, &dir, BTreeMap::new());
        let err = recorder.record(&frame(0), false).unwrap_err();
        assert!(err.to_string().contains("cannot create"), "{err}");
        assert!(recorder.failing());
        std::fs::remove_file(&dir).unwrap();
        // 0.1 s apart: frames 1..=9 fall into the second of waiting, frame 10 tries again.
        for seq in 1..10 {
            recorder.record(&frame(seq), false).unwrap();
            assert!(recorder.failing(), "frame {seq}");
        }
        recorder.record(&frame(10), false).unwrap();
        assert!(!recorder.failing());
        recorder.record(&frame(11), false).unwrap();
        let stats = recorder.finish();
        assert_eq!((stats.frames, stats.lost_frames, stats.errors), (2, 10, 1));
        // The two frames' messages: something, and less than the file with its header,
        // schemas and summary.
        let file_bytes = std::fs::metadata(&stats.files[0]).unwrap().len();
        assert!(
            stats.bytes > 0 && stats.bytes < file_bytes,
            "{} bytes counted, file {file_bytes}",
            stats.bytes
        );
        let written = reader::Recording::open(&stats.files[0]).unwrap();
        let times: Vec<u64> = written.frames.iter().map(|f| f.t_ns).collect();
        assert_eq!(times, [1_000_000_000, 1_100_000_000]);
    }
}
