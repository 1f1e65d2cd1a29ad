//! Where a run's results go. Each output is a [`Sink`]; [`Outputs`] holds them and feeds every
//! frame to each in turn.

use super::events::{frame_event_json, EgoUsed};
use super::pipeline::{FrameFault, FrameOutcome};
use crate::config::Config;
use crate::metrics::{OutputHealth, RecordingCounters, MAX_OUTPUTS};
use adas_calibration::Homography;
use adas_io::can::candump;
use adas_io::line_file::{LineFile, DEFAULT_BACKLOG_BYTES};
use adas_io::source::Frame;
use adas_record::{FrameRecord, RecordMode, Recorder, RecorderStats};
use adas_render::{FrameView, Renderer};
use adas_types::CanFrame;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the outputs learn about one frame.
pub(crate) struct FrameReport<'a> {
    /// Capture time (monotonic ns): the time every output files the frame under.
    pub t_ns: u64,
    /// Frames seen so far, this one included (processed and skipped): a skipped frame's number.
    pub index: u64,
    /// The frame and what was decided about it, or why nothing was.
    pub result: &'a Result<(Frame, FrameOutcome), FrameFault>,
    /// The ego sample the decision used, and where it came from.
    pub ego: &'a EgoUsed,
    /// The frame as its source delivered it, when that was JPEG (recorded as is).
    pub jpeg: Option<&'a [u8]>,
    /// CAN frames received up to this frame, with their times.
    pub can_rx: &'a [(u64, CanFrame)],
    /// CAN frames this frame sends (warning, and status when due), E2E-protected.
    pub can_tx: &'a [CanFrame],
    /// Time from the frame's arrival to its decision.
    pub elapsed: Duration,
}

/// One output of the run loop.
///
/// Contract: [`Sink::frame`] is called once per frame, processed or skipped, in capture order;
/// [`Sink::finish`] once after the last, with the CAN frames that end the run (status off). An
/// error is the sink's alone: [`Outputs`] logs and counts it, the status on CAN carries
/// `AEB_FaultOutput`, and the sink is called again with the next frame — it must recover by
/// itself once the disk takes data again. The decision path never waits for a sink's success.
pub(crate) trait Sink {
    fn frame(&mut self, report: &FrameReport<'_>) -> anyhow::Result<()>;

    /// `t_ns`: the last frame's time (`None`: there was no frame); `can_tx`: the closing frames.
    fn finish(&mut self, _t_ns: Option<u64>, _can_tx: &[CanFrame]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// `can.log`: every CAN frame sent, in can-utils' candump format, committed once per frame.
struct CanLog {
    file: LineFile,
    interface: String,
}

impl Sink for CanLog {
    fn frame(&mut self, r: &FrameReport<'_>) -> anyhow::Result<()> {
        self.write(r.t_ns, r.can_tx)
    }

    fn finish(&mut self, t_ns: Option<u64>, can_tx: &[CanFrame]) -> anyhow::Result<()> {
        match t_ns {
            Some(t) => self.write(t, can_tx),
            None => commit(&mut self.file),
        }
    }
}

impl CanLog {
    fn write(&mut self, t_ns: u64, frames: &[CanFrame]) -> anyhow::Result<()> {
        for f in frames {
            self.file
                .push(candump::format_line(t_ns, &self.interface, f).as_bytes());
        }
        commit(&mut self.file)
    }
}

/// `frames.jsonl`: one line per processed frame, committed once per frame (`None` with
/// `[output] logs = false`).
struct EventLog {
    file: Option<LineFile>,
}

impl Sink for EventLog {
    fn frame(&mut self, r: &FrameReport<'_>) -> anyhow::Result<()> {
        match r.result {
            Ok((frame, outcome)) => {
                if let Some(file) = self.file.as_mut() {
                    file.push(&serde_json::to_vec(&frame_event_json(
                        frame, outcome, r.ego,
                    ))?);
                }
            }
            Err(fault) => tracing::warn!("skipping {fault}"),
        }
        self.file.as_mut().map_or(Ok(()), commit)
    }

    fn finish(&mut self, _: Option<u64>, _: &[CanFrame]) -> anyhow::Result<()> {
        self.file.as_mut().map_or(Ok(()), commit)
    }
}

fn commit(file: &mut LineFile) -> anyhow::Result<()> {
    file.commit().with_context(|| {
        format!(
            "cannot write {} ({} bytes wait for the disk; is it full or read-only?)",
            file.path().display(),
            file.backlog_bytes()
        )
    })
}

/// `frames/frame_NNNNN.jpg`: each processed frame with boxes, ground distances, the corridor
/// and the BEV inset.
struct AnnotatedFrames {
    dir: PathBuf,
    renderer: Renderer,
    homography: Homography,
}

impl Sink for AnnotatedFrames {
    fn frame(&mut self, r: &FrameReport<'_>) -> anyhow::Result<()> {
        let Ok((frame, o)) = r.result else {
            return Ok(());
        };
        if frame.image.width() == 0 {
            return Ok(());
        }
        let mut img = frame.image.clone();
        self.renderer.draw_frame(
            &mut img,
            &FrameView {
                detections: &o.detections,
                bev: &o.bev,
                decision: &o.decision,
                homography: &self.homography,
                tracks: &o.tracks,
                caption: format!(
                    "frame {} t={:.2}s {}",
                    frame.seq,
                    frame.t_capture_ns as f64 / 1e9,
                    r.ego.caption()
                ),
            },
        );
        // The folder may be gone (removed, unmounted) or not creatable yet: try each frame.
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        let path = self.dir.join(format!("frame_{:05}.jpg", frame.seq));
        img.save(&path)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The MCAP recording: camera image, detections, BEV, tracks, decision and CAN per frame.
struct Recording {
    recorder: Recorder,
    /// Record camera images (off: decisions only).
    images: bool,
}

impl Sink for Recording {
    fn frame(&mut self, r: &FrameReport<'_>) -> anyhow::Result<()> {
        let can_tx: Vec<(u64, CanFrame)> = r.can_tx.iter().map(|f| (r.t_ns, *f)).collect();
        let (seq, outcome, event, encoded) = match r.result {
            Ok((frame, o)) => (
                frame.seq,
                Some(recorded_outcome(
                    frame,
                    o,
                    r.ego.sample.map(|e| e.speed_mps),
                )),
                o.decision.warning(),
                match r.jpeg {
                    None if self.images => encode_jpeg(&frame.image, self.recorder.jpeg_quality()),
                    _ => None,
                },
            ),
            Err(_) => (r.index, None, false, None),
        };
        self.recorder.record(
            &FrameRecord {
                seq,
                t_ns: r.t_ns,
                jpeg: r.jpeg.or(encoded.as_deref()).filter(|_| self.images),
                outcome: outcome.as_ref(),
                can_rx: r.can_rx,
                can_tx: &can_tx,
            },
            event,
        )?;
        match (&self.recorder.stats.error, self.recorder.failing()) {
            // Waiting to retry: still failing, with the error that started it.
            (Some(e), true) => anyhow::bail!("{e} (retrying every second of data)"),
            _ => Ok(()),
        }
    }
}

/// A sink and what the run loop knows of its health.
struct Guarded<S> {
    name: &'static str,
    sink: S,
    /// Frames whose output failed.
    failures: u64,
    /// Consecutive failed frames (0: the last frame went through).
    failing_for: u64,
}

impl<S: Sink> Guarded<S> {
    fn new(name: &'static str, sink: S) -> Guarded<S> {
        Guarded {
            name,
            sink,
            failures: 0,
            failing_for: 0,
        }
    }

    fn frame(&mut self, report: &FrameReport<'_>) {
        let result = self.sink.frame(report);
        self.note(result);
    }

    fn finish(&mut self, t_ns: Option<u64>, can_tx: &[CanFrame]) {
        let result = self.sink.finish(t_ns, can_tx);
        self.note(result);
    }

    fn failing(&self) -> bool {
        self.failing_for > 0
    }

    fn health(&self) -> OutputHealth {
        OutputHealth {
            name: self.name,
            failed_frames: self.failures,
            failing: self.failing(),
        }
    }

    /// Logs every failed frame and the recovery. A failure that lasts is one line per 10 s
    /// with the count of the frames between: the log's rate limiter (`adas_cli`) thins out
    /// repeated lines.
    fn note(&mut self, result: anyhow::Result<()>) {
        match result {
            Ok(()) if self.failing_for > 0 => {
                tracing::warn!(
                    output = self.name,
                    failed_frames = self.failing_for,
                    "writing again"
                );
                self.failing_for = 0;
            }
            Ok(()) => {}
            Err(e) => {
                self.failures += 1;
                self.failing_for += 1;
                tracing::error!(
                    output = self.name,
                    failed_frames = self.failing_for,
                    "{e:#}; the pipeline goes on"
                );
            }
        }
    }
}

/// Every output of a run, fed in this order: CAN log, event log, pictures, recording. The CAN
/// log exists only with `[output] logs`.
pub(crate) struct Outputs {
    can: Option<Guarded<CanLog>>,
    events: Guarded<EventLog>,
    frames: Option<Guarded<AnnotatedFrames>>,
    recording: Option<Guarded<Recording>>,
    /// CAN frames sent, closing frames included (whether or not `can.log` is written).
    can_frames: u64,
}

/// What the outputs report when the run is over.
pub(crate) struct Written {
    pub can_frames: u64,
    pub recording: Option<RecorderStats>,
    /// Frames each output could not write (only outputs that failed at least once).
    pub failures: Vec<(&'static str, u64)>,
}

impl Outputs {
    /// `can.log` and `frames.jsonl` (with `[output] logs`), `frames/` and the recording (per
    /// `[record]` or the options) under the output folder. Nothing is opened yet: a folder that cannot be written is a
    /// failing output, reported and retried frame by frame, never a reason not to start.
    pub fn open(config: &Config, homography: &Homography, options: &super::RunOptions) -> Outputs {
        let out = &options.out_dir;
        let sync_every = config.record.sync_every_frames;
        let log = |name: &str| LineFile::new(&out.join(name), sync_every, DEFAULT_BACKLOG_BYTES);
        let logs = config.output.logs;
        let can = logs.then(|| CanLog {
            file: log("can.log"),
            interface: config.can.interface.clone(),
        });
        let events = EventLog {
            file: logs.then(|| log("frames.jsonl")),
        };
        let annotate = options.annotate.unwrap_or(config.output.annotated_frames);
        let frames = annotate.then(|| AnnotatedFrames {
            dir: out.join("frames"),
            renderer: Renderer::default(),
            homography: *homography,
        });
        let recording = recorder(config, options).map(|recorder| Recording {
            recorder,
            images: options.record_images,
        });
        Outputs {
            can: can.map(|c| Guarded::new("can.log", c)),
            events: Guarded::new("frames.jsonl", events),
            frames: frames.map(|f| Guarded::new("annotated frames", f)),
            recording: recording.map(|r| Guarded::new("recording", r)),
            can_frames: 0,
        }
    }

    /// Hands the frame to every output; one that fails is logged and counted, and the others
    /// still get the frame.
    pub fn frame(&mut self, report: &FrameReport<'_>) {
        self.can_frames += report.can_tx.len() as u64;
        if let Some(g) = self.can.as_mut() {
            g.frame(report);
        }
        self.events.frame(report);
        if let Some(g) = self.frames.as_mut() {
            g.frame(report);
        }
        if let Some(g) = self.recording.as_mut() {
            g.frame(report);
        }
    }

    /// An output failed on the last frame (the status's `AEB_FaultOutput`).
    pub fn failing(&self) -> bool {
        self.can.as_ref().is_some_and(Guarded::failing)
            || self.events.failing()
            || self.frames.as_ref().is_some_and(Guarded::failing)
            || self.recording.as_ref().is_some_and(Guarded::failing)
    }

    /// Each output's health, for the metrics.
    pub fn health(&self) -> [Option<OutputHealth>; MAX_OUTPUTS] {
        [
            self.can.as_ref().map(Guarded::health),
            Some(self.events.health()),
            self.frames.as_ref().map(Guarded::health),
            self.recording.as_ref().map(Guarded::health),
        ]
    }

    /// What the recorder has written so far, when recording.
    pub fn recording_counters(&self) -> Option<RecordingCounters> {
        self.recording.as_ref().map(|g| {
            let s = &g.sink.recorder.stats;
            RecordingCounters {
                bytes: s.bytes,
                frames: s.frames,
                dropped_frames: s.lost_frames,
                errors: s.errors,
            }
        })
    }

    /// Writes the closing frames and closes every output; failures are logged and counted.
    pub fn finish(mut self, t_ns: Option<u64>, can_tx: &[CanFrame]) -> Written {
        if t_ns.is_some() {
            self.can_frames += can_tx.len() as u64;
        }
        let mut failures = Vec::new();
        if let Some(g) = self.can.as_mut() {
            g.finish(t_ns, can_tx);
            failures.push((g.name, g.failures));
        }
        self.events.finish(t_ns, can_tx);
        failures.push((self.events.name, self.events.failures));
        failures.extend(self.frames.as_ref().map(|g| (g.name, g.failures)));
        let recording = self.recording.map(|g| {
            failures.push((g.name, g.failures));
            let stats = g.sink.recorder.finish();
            if let Some(e) = &stats.error {
                tracing::error!(output = g.name, "{e}");
            }
            stats
        });
        failures.retain(|(_, n)| *n > 0);
        Written {
            can_frames: self.can_frames,
            recording,
            failures,
        }
    }
}

/// The recorder this run writes to, if any.
fn recorder(config: &Config, options: &super::RunOptions) -> Option<Recorder> {
    let mut metadata: BTreeMap<String, String> = match &options.identity {
        Some(identity) => identity.clone(),
        None => crate::record::identity::metadata(config, options.config_path.as_deref()),
    };
    metadata.extend(options.record_metadata.clone());
    if let Some(path) = &options.record_to {
        return Some(Recorder::to_file(path, metadata));
    }
    if config.record.mode == RecordMode::Off {
        return None;
    }
    let dir = config
        .record
        .dir
        .clone()
        .unwrap_or_else(|| options.out_dir.join("recordings"));
    Some(Recorder::in_dir(config.record.clone(), &dir, metadata))
}

/// What the recorder stores about a processed frame.
fn recorded_outcome(
    frame: &Frame,
    o: &FrameOutcome,
    ego_speed_mps: Option<f64>,
) -> adas_record::Outcome {
    use adas_record::schema::{DecisionMsg, DetectionsMsg};
    let (width, height) = o.image_size;
    adas_record::Outcome {
        detections: DetectionsMsg {
            seq: frame.seq,
            width,
            height,
            detections: o.detections.clone(),
        },
        bev: o.bev.clone(),
        tracks: o.tracks.clone(),
        decision: DecisionMsg {
            seq: frame.seq,
            ego_speed_mps,
            decision: o.decision,
        },
    }
}

/// JPEG of a frame for sources that deliver no JPEG bytes (`None` for an empty image).
fn encode_jpeg(image: &image::RgbImage, quality: u8) -> Option<Vec<u8>> {
    if image.width() == 0 || image.height() == 0 {
        return None;
    }
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    image.write_with_encoder(encoder).ok()?;
    Some(out)
}
