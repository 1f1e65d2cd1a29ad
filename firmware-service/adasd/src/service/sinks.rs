//! Where a run's results go. Each output is a [`Sink`]; [`Outputs`] holds them and feeds every
//! frame to each in turn.

use super::events::{frame_event_json, frame_line, EgoUsed};
use super::pipeline::{FrameFault, FrameOutcome};
use crate::config::Config;
use adas_calibration::Homography;
use adas_io::can::candump::CandumpWriter;
use adas_io::source::Frame;
use adas_record::{FrameRecord, RecordMode, Recorder, RecorderStats};
use adas_render::{FrameView, Renderer};
use adas_types::CanFrame;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
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
/// error ends the run: what a sink wrote before it stays readable.
pub(crate) trait Sink {
    fn frame(&mut self, report: &FrameReport<'_>) -> anyhow::Result<()>;

    /// `t_ns`: the last frame's time (`None`: there was no frame); `can_tx`: the closing frames.
    fn finish(&mut self, _t_ns: Option<u64>, _can_tx: &[CanFrame]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// `can.log`: every CAN frame sent, in can-utils' candump format.
struct CanLog {
    writer: CandumpWriter<BufWriter<File>>,
    path: PathBuf,
}

impl Sink for CanLog {
    fn frame(&mut self, r: &FrameReport<'_>) -> anyhow::Result<()> {
        self.write(r.t_ns, r.can_tx)
    }

    fn finish(&mut self, t_ns: Option<u64>, can_tx: &[CanFrame]) -> anyhow::Result<()> {
        if let Some(t) = t_ns {
            self.write(t, can_tx)?;
        }
        self.writer
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

impl CanLog {
    fn write(&mut self, t_ns: u64, frames: &[CanFrame]) -> anyhow::Result<()> {
        for f in frames {
            self.writer
                .write(t_ns, f)
                .with_context(|| format!("cannot write {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// `frames.jsonl` (one line per processed frame) and, on request, one stdout line per frame.
struct EventLog {
    file: BufWriter<File>,
    per_frame_lines: bool,
}

impl Sink for EventLog {
    fn frame(&mut self, r: &FrameReport<'_>) -> anyhow::Result<()> {
        match r.result {
            Ok((frame, outcome)) => {
                serde_json::to_writer(&mut self.file, &frame_event_json(frame, outcome, r.ego))?;
                self.file.write_all(b"\n")?;
                if self.per_frame_lines {
                    println!("{}", frame_line(frame, outcome, r.elapsed));
                }
            }
            Err(fault) => {
                tracing::warn!("skipping {fault}");
                if self.per_frame_lines {
                    println!("skipped: {fault}");
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self, _: Option<u64>, _: &[CanFrame]) -> anyhow::Result<()> {
        Ok(self.file.flush()?)
    }
}

/// `frames/frame_NNNNN.jpg`: each processed frame with boxes, ground distances, the corridor
/// and the BEV inset. A picture that cannot be written is logged, never fatal.
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
        let path = self.dir.join(format!("frame_{:05}.jpg", frame.seq));
        if let Err(e) = img.save(&path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write annotated frame");
        }
        Ok(())
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
        );
        Ok(())
    }
}

/// Every output of a run, fed in this order: CAN log, event log, pictures, recording.
pub(crate) struct Outputs {
    can: CanLog,
    events: EventLog,
    frames: Option<AnnotatedFrames>,
    recording: Option<Recording>,
}

/// What the outputs report when the run is over.
pub(crate) struct Written {
    pub can_frames: u64,
    pub recording: Option<RecorderStats>,
}

impl Outputs {
    /// Creates `can.log`, `frames.jsonl`, `frames/` and the recording (per `[record]` or the
    /// options) under the output folder.
    pub fn open(
        config: &Config,
        homography: &Homography,
        options: &super::RunOptions,
    ) -> anyhow::Result<Outputs> {
        let out = &options.out_dir;
        let dir = out.join("frames");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create output folder {}", dir.display()))?;
        let path = out.join("can.log");
        let can = CanLog {
            writer: CandumpWriter::new(BufWriter::new(create(&path)?), &config.can.interface),
            path,
        };
        let events = EventLog {
            file: BufWriter::new(create(&out.join("frames.jsonl"))?),
            per_frame_lines: options.per_frame_lines,
        };
        let annotate = options.annotate.unwrap_or(config.output.annotated_frames);
        let frames = annotate.then(|| AnnotatedFrames {
            dir,
            renderer: Renderer::default(),
            homography: *homography,
        });
        let recording = recorder(config, options)?.map(|recorder| Recording {
            recorder,
            images: options.record_images,
        });
        Ok(Outputs {
            can,
            events,
            frames,
            recording,
        })
    }

    pub fn frame(&mut self, report: &FrameReport<'_>) -> anyhow::Result<()> {
        for sink in self.sinks() {
            sink.frame(report)?;
        }
        Ok(())
    }

    pub fn finish(mut self, t_ns: Option<u64>, can_tx: &[CanFrame]) -> anyhow::Result<Written> {
        for sink in self.sinks() {
            sink.finish(t_ns, can_tx)?;
        }
        Ok(Written {
            can_frames: self.can.writer.frames(),
            recording: self.recording.map(|r| r.recorder.finish()),
        })
    }

    fn sinks(&mut self) -> Vec<&mut dyn Sink> {
        let mut sinks: Vec<&mut dyn Sink> = vec![&mut self.can, &mut self.events];
        if let Some(f) = self.frames.as_mut() {
            sinks.push(f);
        }
        if let Some(r) = self.recording.as_mut() {
            sinks.push(r);
        }
        sinks
    }
}

/// The recorder this run writes to, if any.
fn recorder(config: &Config, options: &super::RunOptions) -> anyhow::Result<Option<Recorder>> {
    let mut metadata: BTreeMap<String, String> = match &options.identity {
        Some(identity) => identity.clone(),
        None => crate::record::identity::metadata(config, options.config_path.as_deref()),
    };
    metadata.extend(options.record_metadata.clone());
    if let Some(path) = &options.record_to {
        return Ok(Some(Recorder::to_file(path, metadata)));
    }
    if config.record.mode == RecordMode::Off {
        return Ok(None);
    }
    let dir = config
        .record
        .dir
        .clone()
        .unwrap_or_else(|| options.out_dir.join("recordings"));
    Recorder::in_dir(config.record.clone(), &dir, metadata)
        .map(Some)
        .with_context(|| format!("cannot create the recording folder {}", dir.display()))
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

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}
