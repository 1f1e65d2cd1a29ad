//! The daemon's main job: source → detect → BEV → decision → CAN, frame after frame.
//!
//! [`Pipeline::process`] turns one frame into everything decided about it; [`run`] is the shell
//! around it (files, logs, pictures). A bad frame is skipped, counted and reported on CAN as a
//! fault; the loop never stops on one.

use crate::config::{CanMode, Config};
use adas_calibration::{CalibrationFile, Homography};
use adas_core::aeb::decider::{Decision, Stage};
use adas_core::aeb::{EgoState, InhibitReason};
use adas_core::can::messages::{fault, status_message, warning_message, Encoder, Status};
use adas_core::can::supervision::EgoInput;
use adas_core::perception::{BevProjection, Track};
use adas_core::{Core, Outcome};
use adas_detect::{Detector, ImageDetection, StageTimes};
use adas_io::can::candump::CandumpWriter;
use adas_io::can::replay::CandumpReplay;
use adas_io::source::{self, Frame, FrameError, Timing};
use adas_plugins::manifest::{Manifest, RoadUser};
use adas_record::{FrameRecord, RecordMode, Recorder};
use adas_render::{FrameView, Renderer};
use adas_types::CanFrame;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything decided about one frame.
pub struct FrameOutcome {
    /// Size of the image the detections are in, px.
    pub image_size: (u32, u32),
    pub detections: Vec<ImageDetection>,
    pub bev: BevProjection,
    /// Every live track after this frame (tentative and confirmed).
    pub tracks: Vec<Track>,
    pub decision: Decision,
    pub times: StageTimes,
}

/// Why a frame produced no decision.
#[derive(Debug, thiserror::Error)]
pub enum FrameFault {
    #[error("{0}")]
    Lost(FrameError),
    #[error(
        "frame {seq}: image is {got_w}×{got_h} but the calibration was made for {want_w}×{want_h}"
    )]
    SizeMismatch {
        seq: u64,
        got_w: u32,
        got_h: u32,
        want_w: u32,
        want_h: u32,
    },
    #[error("frame {seq}: detector failed: {message}")]
    Detector { seq: u64, message: String },
}

impl FrameFault {
    fn bits(&self) -> u8 {
        match self {
            FrameFault::Lost(_) => fault::FRAME_LOST,
            FrameFault::SizeMismatch { .. } => fault::CALIBRATION,
            FrameFault::Detector { .. } => fault::DETECTOR,
        }
    }
}

/// The per-frame processing, free of files and clocks (stage timings aside).
/// Consecutive detector failures after which the detector is rebuilt.
const RELOAD_DETECTOR_AFTER: u32 = 3;

/// Image pixels per detector-input pixel along the coarser axis (the tracker's noise is
/// isotropic; letterboxing scales both axes alike).
fn image_px_per_input_px(image: (u32, u32), input: (usize, usize)) -> f64 {
    let axis = |i: u32, n: usize| f64::from(i) / n.max(1) as f64;
    axis(image.0, input.0).max(axis(image.1, input.1))
}

pub struct Pipeline {
    /// `None` in object-list replays, which take the detections from a recording.
    detector: Option<Detector>,
    detector_failures: u32,
    core: Core,
    config: Config,
}

impl Pipeline {
    pub fn new(config: Config) -> anyhow::Result<Pipeline> {
        let detector = Detector::load_with(
            &config.detector.model,
            config.detector.backend,
            config.detector.score_threshold,
            &config.detector.backend_options(),
        )?;
        Self::with_detector(config, Some(detector))
    }

    /// BEV, tracker and decider only, for object-list replays: the detections come from a
    /// recording ([`Pipeline::process_detected`]), so no model is loaded.
    pub fn object_list(config: Config) -> anyhow::Result<Pipeline> {
        Self::with_detector(config, None)
    }

    fn with_detector(config: Config, detector: Option<Detector>) -> anyhow::Result<Pipeline> {
        let calibration = CalibrationFile::load(&config.calibration.file)?;
        if let Some(rms) = calibration.reprojection_rms_px {
            if rms > config.calibration.max_reprojection_rms_px {
                tracing::warn!(
                    file = %config.calibration.file.display(),
                    rms_px = rms,
                    bound_px = config.calibration.max_reprojection_rms_px,
                    "calibration reprojection RMS is above the configured bound; distances may be off — recalibrate"
                );
            }
        }
        let image_size = (calibration.image_width, calibration.image_height);
        let tracker = config.tracker.clone();
        let tracker = if tracker.pixel_sigma_px.is_some() {
            tracker
        } else {
            let input = match &detector {
                Some(d) => d.manifest().input.size(),
                None => Manifest::load(&config.detector.model)
                    .map_err(|e| anyhow::anyhow!("{e} (the tracker's pixel noise follows the detector's input size; or set [tracker] pixel_sigma_px)"))?
                    .input
                    .size(),
            };
            tracker.for_detector_scale(image_px_per_input_px(image_size, input))
        };
        let core = Core::new(
            calibration.homography()?,
            image_size,
            tracker,
            config.aeb.clone(),
        );
        Ok(Pipeline {
            detector,
            detector_failures: 0,
            core,
            config,
        })
    }

    /// A GPU whose context broke (driver reset, device lost, sticky kernel error) fails every
    /// frame until the engine is rebuilt: after a few consecutive failures, try to load the
    /// detector again; until that works, frames keep failing and CAN says so.
    fn reload_detector(&mut self) {
        let d = &self.config.detector;
        match Detector::load_with(&d.model, d.backend, d.score_threshold, &d.backend_options()) {
            Ok(detector) => {
                tracing::warn!(
                    failures = self.detector_failures,
                    "detector reloaded after consecutive failures"
                );
                self.detector = Some(detector);
            }
            Err(e) => tracing::error!(
                failures = self.detector_failures,
                "detector reload failed: {e}"
            ),
        }
    }

    /// What makes the detections, for logs: "MODEL on BACKEND", or "recorded detections".
    pub fn detections_from(&self) -> String {
        self.detector.as_ref().map_or_else(
            || "recorded detections".to_string(),
            |d| format!("{} on {}", d.manifest().name, d.backend_name()),
        )
    }

    pub fn homography(&self) -> &Homography {
        self.core.homography()
    }

    /// The image size the calibration was made for (cameras are asked for it).
    pub fn image_size(&self) -> (u32, u32) {
        self.core.image_size()
    }

    pub fn ego_speed_mps(&self) -> f64 {
        self.config.ego.speed_kph / 3.6
    }

    pub fn process(&mut self, frame: &Frame) -> Result<FrameOutcome, FrameFault> {
        // Without a CAN input the ego sample is the configured speed, stamped with the frame's
        // capture time (so it is never stale).
        let ego = EgoState::with_speed(frame.t_capture_ns, self.ego_speed_mps());
        self.process_with_ego(frame, Some(ego))
    }

    /// [`Pipeline::process`] with the ego sample from the CAN input (`None`: none yet, the
    /// decider is inhibited).
    pub fn process_with_ego(
        &mut self,
        frame: &Frame,
        ego: Option<EgoState>,
    ) -> Result<FrameOutcome, FrameFault> {
        let (w, h) = frame.image.dimensions();
        self.check_size(frame.seq, (w, h))?;
        let Some(detector) = self.detector.as_mut() else {
            return Err(FrameFault::Detector {
                seq: frame.seq,
                message:
                    "no detector loaded (object-list replay: detections come from the recording)"
                        .into(),
            });
        };
        let (detections, times) =
            match detector.detect(frame.image.as_raw(), w as usize, h as usize) {
                Ok(r) => {
                    self.detector_failures = 0;
                    r
                }
                Err(e) => {
                    self.detector_failures += 1;
                    if self.detector_failures.is_multiple_of(RELOAD_DETECTOR_AFTER) {
                        self.reload_detector();
                    }
                    return Err(FrameFault::Detector {
                        seq: frame.seq,
                        message: e.to_string(),
                    });
                }
            };
        self.process_detected(
            frame.seq,
            frame.t_capture_ns,
            (w, h),
            detections,
            times,
            ego,
        )
    }

    fn check_size(&self, seq: u64, (w, h): (u32, u32)) -> Result<(), FrameFault> {
        let (want_w, want_h) = self.core.image_size();
        if (w, h) != (want_w, want_h) {
            return Err(FrameFault::SizeMismatch {
                seq,
                got_w: w,
                got_h: h,
                want_w,
                want_h,
            });
        }
        Ok(())
    }

    /// Everything after the detector: BEV, tracking, decision. Object-list replays start here
    /// with the detections of a recording.
    pub fn process_detected(
        &mut self,
        seq: u64,
        t_ns: u64,
        (w, h): (u32, u32),
        detections: Vec<ImageDetection>,
        times: StageTimes,
        ego: Option<EgoState>,
    ) -> Result<FrameOutcome, FrameFault> {
        self.check_size(seq, (w, h))?;
        let Outcome {
            bev,
            tracks,
            decision,
        } = self.core.step(t_ns, &detections, ego.as_ref());
        Ok(FrameOutcome {
            image_size: (w, h),
            detections,
            bev,
            tracks,
            decision,
            times,
        })
    }
}

/// Counters for the final summary.
#[derive(Debug, Default)]
pub struct Summary {
    pub frames: u64,
    pub skipped: u64,
    pub per_class: BTreeMap<RoadUser, u64>,
    pub warning_frames: u64,
    /// Rising edges of the warning.
    pub warnings: u64,
    /// Frames with a braking request (partial or full).
    pub braking_frames: u64,
    /// Frames in which the decider was inhibited (stale/invalid ego input).
    pub inhibited_frames: u64,
    pub above_horizon: u64,
    pub can_frames: u64,
    pub busy: Duration,
    /// Data times of the first and last frame (processed or skipped), ns.
    pub first_t_ns: Option<u64>,
    pub last_t_ns: Option<u64>,
    /// What the recorder wrote, when recording.
    pub recording: Option<adas_record::RecorderStats>,
}

impl Summary {
    /// Frames per second of processing time (detector and everything after it).
    pub fn fps(&self) -> f64 {
        let s = self.busy.as_secs_f64();
        if s > 0.0 {
            self.frames as f64 / s
        } else {
            0.0
        }
    }
}

pub struct RunOptions {
    pub out_dir: PathBuf,
    pub max_frames: Option<u64>,
    /// Print one line per frame to stdout.
    pub per_frame_lines: bool,
    /// The config file (named in the recording's metadata).
    pub config_path: Option<PathBuf>,
    /// Record everything into this one file (replay) instead of following `[record]`.
    pub record_to: Option<PathBuf>,
    /// The recording's identity ([`crate::record::identity::metadata`]) when the caller has it already
    /// (replays: hashing the model again would only cost start-up time).
    pub identity: Option<BTreeMap<String, String>>,
    /// Extra metadata for the recording (e.g. what was replayed).
    pub record_metadata: BTreeMap<String, String>,
    /// Pace frames at this multiple of their recorded rate (`None`: as fast as possible).
    pub speed: Option<f64>,
    /// Status frames carry wall-clock fps/latency (live). Off in replays, so that replaying the
    /// same recording twice gives identical CAN output too.
    pub wall_clock_telemetry: bool,
    /// Overrides `[output] annotated_frames`.
    pub annotate: Option<bool>,
    /// Progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
    /// Record camera images (off: decisions only, e.g. for small reference files).
    pub record_images: bool,
}

impl RunOptions {
    /// Live defaults: no pacing, wall-clock telemetry, `[record]` from the config.
    pub fn new(out_dir: PathBuf) -> Self {
        Self {
            out_dir,
            max_frames: None,
            per_frame_lines: false,
            config_path: None,
            record_to: None,
            identity: None,
            record_metadata: BTreeMap::new(),
            speed: None,
            wall_clock_telemetry: true,
            annotate: None,
            progress: false,
            record_images: true,
        }
    }
}

/// Where frames, CAN input and (optionally) detections come from.
pub struct Inputs {
    source: Box<dyn source::FrameSource>,
    link: CanLink,
    /// Object-list replay: the detections come from the source (a recording).
    recorded_detections: bool,
}

impl Inputs {
    /// The config's source and CAN link.
    pub fn from_config(config: &Config) -> anyhow::Result<Inputs> {
        let timing = match (&config.source.timestamps, config.source.fps) {
            (Some(file), _) => Timing::File(file.clone()),
            (None, Some(fps)) => Timing::FixedRate(fps),
            (None, None) => Timing::FromSource { fallback_fps: 10.0 },
        };
        // A camera is asked for the calibration's image size.
        let calibration = CalibrationFile::load(&config.calibration.file)?;
        let size = (calibration.image_width, calibration.image_height);
        Ok(Inputs {
            source: source::open_with(
                &config.source.uri,
                timing,
                &config.source.camera_options(Some(size)),
            )?,
            link: CanLink::open(&config.can)?,
            recorded_detections: false,
        })
    }

    /// A recording's frames and CAN input (times as recorded), streamed from the file.
    /// `recorded_detections`: take the detections from the recording instead of running the
    /// detector (object-list replay).
    pub fn from_recording(
        reader: adas_record::reader::FrameReader<std::io::BufReader<File>>,
        window: adas_io::source::recording::Window,
        recorded_detections: bool,
        config: &Config,
    ) -> anyhow::Result<Inputs> {
        if recorded_detections {
            reader.require_outcomes()?;
        } else {
            reader.require_camera()?;
        }
        let link = if adas_record::reader::has_can_input(reader.path())? {
            CanLink::Recorded {
                input: EgoInput::new(config.can.supervision()),
            }
        } else {
            CanLink::Fixed
        };
        Ok(Inputs {
            source: Box::new(adas_io::source::recording::RecordingSource::new(
                reader,
                window,
                !recorded_detections,
            )),
            link,
            recorded_detections,
        })
    }
}

/// Where the ego input comes from and where CAN goes besides `can.log`.
enum CanLink {
    /// The fixed `[ego] speed_kph`.
    Fixed,
    /// A candump log replayed as input, on the camera source's clock.
    Replay { log: CandumpReplay, input: EgoInput },
    /// The CAN input a recording holds, handed over frame by frame by its source.
    Recorded { input: EgoInput },
    /// Live SocketCAN (own thread): status/warnings out, supervised ego input in.
    #[cfg(target_os = "linux")]
    Bus {
        bus: adas_io::can::socketcan::CanBus,
        input: EgoInput,
    },
}

impl CanLink {
    fn open(config: &crate::config::CanConfig) -> anyhow::Result<CanLink> {
        match config.mode {
            CanMode::CandumpFile => match &config.input_log {
                None => Ok(CanLink::Fixed),
                Some(path) => Ok(CanLink::Replay {
                    log: CandumpReplay::open(path, 0)?,
                    input: EgoInput::new(config.supervision()),
                }),
            },
            #[cfg(target_os = "linux")]
            CanMode::Socketcan => Ok(CanLink::Bus {
                bus: adas_io::can::socketcan::CanBus::start(
                    adas_io::can::socketcan::CanBusConfig {
                        interface: config.interface.clone(),
                        status_period_ms: config.status_period_ms,
                        warning_period_ms: config.warning_period_ms,
                        reconnect_ms: config.reconnect_ms,
                    },
                    Instant::now(),
                )
                .context("cannot start the SocketCAN thread")?,
                input: EgoInput::new(config.supervision()),
            }),
            #[cfg(not(target_os = "linux"))]
            CanMode::Socketcan => anyhow::bail!("[can] mode = \"socketcan\" needs Linux"),
        }
    }

    /// The ego sample for a frame captured at `t_frame_ns` (`None`: use the fixed speed) and the
    /// supervision's reason when the input cannot be used. A sample the supervision rejects is
    /// passed on marked invalid, so the decider is inhibited whatever its own timeout.
    /// `recorded`: the CAN frames the source recorded up to this frame (used by `Recorded`).
    fn ego(
        &mut self,
        t_frame_ns: u64,
        recorded: Vec<(u64, CanFrame)>,
        rx: &mut Vec<(u64, CanFrame)>,
    ) -> (Option<Option<EgoState>>, Option<InhibitReason>) {
        let (input, now_ns) = match self {
            CanLink::Fixed => return (None, None),
            CanLink::Replay { log, input } => {
                for (t, f) in log.until(t_frame_ns) {
                    input.on_frame(t, &f);
                    rx.push((t, f));
                }
                (input, t_frame_ns)
            }
            CanLink::Recorded { input } => {
                for (t, f) in recorded {
                    input.on_frame(t, &f);
                    rx.push((t, f));
                }
                (input, t_frame_ns)
            }
            #[cfg(target_os = "linux")]
            CanLink::Bus { bus, input } => {
                for (t, f) in bus.drain_received() {
                    input.on_frame(t, &f);
                    rx.push((t, f));
                }
                let now = bus.now_ns();
                (input, now)
            }
        };
        let reason = input.inhibit(now_ns);
        let ego = input.ego_state(now_ns).map(|mut e| {
            // Onto the frame's clock: same age as on the CAN clock.
            let age = now_ns.saturating_sub(e.t_ns);
            e.t_ns = t_frame_ns.saturating_sub(age);
            e.valid &= reason.is_none();
            e
        });
        (Some(ego), reason)
    }
}

/// Runs the configured pipeline over its source until the source ends or SIGTERM/SIGINT.
pub fn run(config: Config, options: &RunOptions) -> anyhow::Result<Summary> {
    let inputs = Inputs::from_config(&config)?;
    run_with(config, inputs, options)
}

/// The recorder this run writes to, if any.
fn recorder(config: &Config, options: &RunOptions) -> anyhow::Result<Option<Recorder>> {
    let mut metadata = match &options.identity {
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

/// [`run`] with given inputs (a live source, or a recording for replays).
pub fn run_with(config: Config, inputs: Inputs, options: &RunOptions) -> anyhow::Result<Summary> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone())
            .context("cannot install the signal handler")?;
    }
    let Inputs {
        mut source,
        mut link,
        recorded_detections,
    } = inputs;
    let can_interface = config.can.interface.clone();
    let status_period_ns = config.can.status_period_ms * 1_000_000;
    let annotate = options.annotate.unwrap_or(config.output.annotated_frames);
    let mut recorder = recorder(&config, options)?;
    let progress = progress_bar(options.progress, source.len_hint());
    let mut first_t_ns: Option<u64> = None;
    let mut pipeline = if recorded_detections {
        Pipeline::object_list(config)?
    } else {
        Pipeline::new(config)?
    };
    let pace_start = Instant::now();
    let model = pipeline.detections_from();
    tracing::info!(%model, "pipeline ready");
    let mut notifier = adas_io::notify::Notifier::from_env();
    notifier.ready(&format!("running {model}"));

    let out = &options.out_dir;
    let frames_dir = out.join("frames");
    std::fs::create_dir_all(&frames_dir)
        .with_context(|| format!("cannot create output folder {}", frames_dir.display()))?;
    let can_path = out.join("can.log");
    let mut can = CandumpWriter::new(BufWriter::new(create(&can_path)?), &can_interface);
    let mut events = BufWriter::new(create(&out.join("frames.jsonl"))?);
    let renderer = Renderer::default();
    let mut encoder = Encoder::default();
    let mut summary = Summary::default();
    let mut next_status_ns = 0u64;
    let mut last_t_ns: Option<u64> = None;
    let mut was_warning = false;

    while let Some(item) = source.next_frame() {
        if stop.load(Ordering::SeqCst) {
            tracing::info!("shutdown requested");
            break;
        }
        if options
            .max_frames
            .is_some_and(|m| summary.frames + summary.skipped >= m)
        {
            break;
        }
        let t_item_ns = match &item {
            Ok(frame) => frame.t_capture_ns,
            Err(e) => e.t_capture_ns,
        };
        if let Some(speed) = options.speed.filter(|s| *s > 0.0 && s.is_finite()) {
            let t0 = *first_t_ns.get_or_insert(t_item_ns);
            let due = Duration::from_secs_f64(t_item_ns.saturating_sub(t0) as f64 / 1e9 / speed);
            if let Some(wait) = due.checked_sub(pace_start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        let started = Instant::now();
        let mut can_rx = Vec::new();
        let (ego, can_inhibit) = link.ego(t_item_ns, source.take_recorded_can_rx(), &mut can_rx);
        let recorded = recorded_detections.then(|| source.take_recorded_detections());
        let ego_used = EgoUsed::new(ego, pipeline.ego_speed_mps());
        let ego_speed_mps = ego_used.sample.map(|e| e.speed_mps);
        let (t_ns, result) = match item {
            Ok(frame) => (
                frame.t_capture_ns,
                process_one(&mut pipeline, frame, ego, can_inhibit, recorded),
            ),
            Err(e) => (e.t_capture_ns, Err(FrameFault::Lost(e))),
        };
        summary.first_t_ns.get_or_insert(t_ns);
        summary.last_t_ns = Some(t_ns);
        let elapsed = started.elapsed();
        // Replays leave the wall clock out of everything they write.
        let latency_ms = if options.wall_clock_telemetry {
            elapsed.as_secs_f64() * 1e3
        } else {
            0.0
        };
        let fps = last_t_ns
            .filter(|&last| t_ns > last)
            .map(|last| 1e9 / (t_ns - last) as f64)
            .unwrap_or(0.0);
        last_t_ns = Some(t_ns);
        let mut frames: Vec<CanFrame> = Vec::with_capacity(2);
        let mut bus_warning = None;
        let status = match &result {
            Ok((frame, outcome)) => {
                summary.frames += 1;
                summary.busy += elapsed;
                summary.above_horizon += outcome.bev.above_horizon as u64;
                for d in &outcome.detections {
                    *summary.per_class.entry(d.class).or_default() += 1;
                }
                let warning = outcome.decision.warning();
                let braking = outcome.decision.stage.is_braking();
                let inhibited = outcome.decision.inhibit.is_some();
                summary.warning_frames += u64::from(warning);
                summary.warnings += u64::from(warning && !was_warning);
                summary.braking_frames += u64::from(braking);
                summary.inhibited_frames += u64::from(inhibited);
                was_warning = warning;
                frames.push(encoder.warning(&outcome.decision));
                bus_warning = Some((
                    warning_message(&outcome.decision).encode(),
                    outcome.decision.stage > Stage::None,
                ));
                serde_json::to_writer(&mut events, &frame_event_json(frame, outcome, &ego_used))?;
                events.write_all(b"\n")?;
                if options.per_frame_lines {
                    println!("{}", frame_line(frame, outcome, elapsed));
                }
                if annotate && frame.image.width() > 0 {
                    let mut img = frame.image.clone();
                    renderer.draw_frame(
                        &mut img,
                        &FrameView {
                            detections: &outcome.detections,
                            bev: &outcome.bev,
                            decision: &outcome.decision,
                            homography: pipeline.homography(),
                            tracks: &outcome.tracks,
                            caption: format!(
                                "frame {} t={:.2}s {}",
                                frame.seq,
                                frame.t_capture_ns as f64 / 1e9,
                                ego_used.caption()
                            ),
                        },
                    );
                    let path = frames_dir.join(format!("frame_{:05}.jpg", frame.seq));
                    if let Err(e) = img.save(&path) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot write annotated frame");
                    }
                }
                Status::of_decision(&outcome.decision, fps, latency_ms)
            }
            Err(fault) => {
                summary.skipped += 1;
                tracing::warn!("skipping {fault}");
                if options.per_frame_lines {
                    println!("skipped: {fault}");
                }
                let camera = if source.disconnected() {
                    fault::CAMERA
                } else {
                    0
                };
                Status::unavailable(fault.bits() | camera, fps, latency_ms)
            }
        };
        if t_ns >= next_status_ns {
            frames.push(encoder.status(&status));
            next_status_ns = t_ns + status_period_ns;
        }
        #[cfg(target_os = "linux")]
        if let CanLink::Bus { bus, .. } = &link {
            // The CAN thread sends these on its own schedule (status every period, warnings on
            // change and while active), with its own counters.
            let inhibit = match &result {
                Ok((_, o)) => o.decision.inhibit.map_or(0, |r| r.code()),
                Err(_) => can_inhibit.map_or(0, |r| r.code()),
            };
            bus.set_status(status_message(&status, inhibit).encode());
            if let Some((w, active)) = bus_warning {
                bus.set_warning(w, active);
            }
        }
        let _ = &bus_warning;
        notifier.progress();
        if (summary.frames + summary.skipped) % 100 == 0 {
            notifier.status(&format!(
                "{} frames, {} skipped, {:.1} fps",
                summary.frames,
                summary.skipped,
                summary.fps()
            ));
        }
        for f in &frames {
            can.write(t_ns, f)
                .with_context(|| format!("cannot write {}", can_path.display()))?;
        }
        if let Some(rec) = recorder.as_mut() {
            let can_tx: Vec<(u64, CanFrame)> = frames.iter().map(|f| (t_ns, *f)).collect();
            let (seq, outcome, event, encoded) = match &result {
                Ok((frame, o)) => (
                    frame.seq,
                    Some(recorded_outcome(frame, o, ego_speed_mps)),
                    o.decision.warning(),
                    match source.last_jpeg() {
                        Some(_) => None,
                        None if options.record_images => {
                            encode_jpeg(&frame.image, rec.jpeg_quality())
                        }
                        None => None,
                    },
                ),
                Err(_) => (summary.frames + summary.skipped, None, false, None),
            };
            rec.record(
                &FrameRecord {
                    seq,
                    t_ns,
                    jpeg: source
                        .last_jpeg()
                        .or(encoded.as_deref())
                        .filter(|_| options.record_images),
                    outcome: outcome.as_ref(),
                    can_rx: &can_rx,
                    can_tx: &can_tx,
                },
                event,
            );
        }
        if let Some(bar) = &progress {
            bar.inc(1);
        }
    }
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if let Some(t_ns) = last_t_ns {
        // Final status: the service is going off.
        let off = encoder.status(&Status::off());
        can.write(t_ns, &off)?;
    }
    notifier.stopping();
    #[cfg(target_os = "linux")]
    if let CanLink::Bus { bus, input } = link {
        let c = &input.speed.counters;
        tracing::info!(
            frames = c.frames,
            accepted = c.accepted,
            crc_errors = c.crc_errors,
            sequence_errors = c.sequence_errors,
            dlc_errors = c.dlc_errors,
            range_errors = c.range_errors,
            timeouts = c.timeouts,
            rx_overflow = bus.stats().rx_overflow.load(Ordering::Relaxed),
            "ego speed input"
        );
        bus.shutdown(status_message(&Status::off(), 0).encode());
    }
    can.flush()?;
    events.flush()?;
    summary.can_frames = can.frames();
    summary.recording = recorder.map(Recorder::finish);
    if let Some(e) = source.take_error() {
        return Err(e.context(format!(
            "the run stopped after {} frames ({} skipped); what was written so far is complete",
            summary.frames, summary.skipped
        )));
    }
    Ok(summary)
}

fn progress_bar(wanted: bool, len: Option<usize>) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let (bar, template) = match len {
        Some(n) => (
            indicatif::ProgressBar::new(n as u64),
            "{elapsed_precise} [{bar:40}] {pos}/{len} frames ({per_sec}, eta {eta})",
        ),
        None => (
            indicatif::ProgressBar::no_length(),
            "{elapsed_precise} {pos} frames ({per_sec})",
        ),
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    Some(bar)
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

fn process_one(
    pipeline: &mut Pipeline,
    frame: Frame,
    ego: Option<Option<EgoState>>,
    can_inhibit: Option<InhibitReason>,
    recorded: Option<Option<adas_record::schema::DetectionsMsg>>,
) -> Result<(Frame, FrameOutcome), FrameFault> {
    let ego = ego.unwrap_or_else(|| {
        // Without a CAN input: the configured speed, stamped with the frame's time.
        Some(EgoState::with_speed(
            frame.t_capture_ns,
            pipeline.ego_speed_mps(),
        ))
    });
    let mut outcome = match recorded {
        None => pipeline.process_with_ego(&frame, ego)?,
        Some(recorded) => {
            let m = recorded.ok_or_else(|| FrameFault::Detector {
                seq: frame.seq,
                message: "no detections recorded for this frame".into(),
            })?;
            pipeline.process_detected(
                frame.seq,
                frame.t_capture_ns,
                (m.width, m.height),
                m.detections,
                StageTimes::default(),
                ego,
            )?
        }
    };
    // The supervision knows better why the ego input is unusable (stale vs invalid).
    if let (Some(reason), Some(_)) = (can_inhibit, outcome.decision.inhibit) {
        outcome.decision.inhibit = Some(reason);
    }
    Ok((frame, outcome))
}

fn create(path: &Path) -> anyhow::Result<File> {
    File::create(path).with_context(|| format!("cannot create {}", path.display()))
}

fn frame_line(frame: &Frame, o: &FrameOutcome, elapsed: Duration) -> String {
    let mut counts: BTreeMap<RoadUser, usize> = BTreeMap::new();
    for d in &o.detections {
        *counts.entry(d.class).or_default() += 1;
    }
    let classes: Vec<String> = counts.iter().map(|(c, n)| format!("{c} {n}")).collect();
    let d = &o.decision;
    let verdict = match (d.inhibit, d.threat) {
        (Some(reason), _) => format!("INHIBITED ({})", reason.as_str()),
        (None, Some(t)) if d.stage > Stage::None => format!(
            "{} {} {:.1} m ttc {:.1} s a_req {:.1} m/s²",
            d.stage.as_str().to_uppercase(),
            t.class,
            t.distance_m,
            t.ttc_s,
            t.required_decel_mps2
        ),
        (None, Some(t)) => format!(
            "watch {} {:.1} m ttc {:.1} s",
            t.class, t.distance_m, t.ttc_s
        ),
        (None, None) => "clear".into(),
    };
    let confirmed = o.tracks.iter().filter(|t| t.confirmed).count();
    format!(
        "frame {:05} t={:7.3}s  {:2} det [{}]  {:2} tracks  {}  ({:.0} ms)",
        frame.seq,
        frame.t_capture_ns as f64 / 1e9,
        o.detections.len(),
        classes.join(", "),
        confirmed,
        verdict,
        elapsed.as_secs_f64() * 1e3
    )
}

/// One line of `frames.jsonl` (typed: serialised straight to JSON, no intermediate maps).
#[derive(serde::Serialize)]
struct FrameEvent<'a> {
    seq: u64,
    t_ns: u64,
    image: &'a str,
    ego: EgoEvent,
    detections: Vec<DetectionEvent<'a>>,
    corridor_length_m: f64,
    corridor_curvature_per_m: f64,
    tracks: Vec<TrackEvent>,
    stage: &'static str,
    warning: bool,
    brake_request_mps2: f64,
    inhibit: Option<&'static str>,
    suppression: Option<&'static str>,
    threat: Option<ThreatEvent>,
}

#[derive(serde::Serialize)]
struct DetectionEvent<'a> {
    label: &'a str,
    class: &'static str,
    score: f64,
    #[serde(rename = "box")]
    bbox: [f64; 4],
    ground: Option<[f64; 2]>,
}

#[derive(serde::Serialize)]
struct TrackEvent {
    id: u64,
    class: &'static str,
    x_m: f64,
    y_m: f64,
    vx_mps: f64,
    vy_mps: f64,
    ax_mps2: f64,
    age: u64,
    hits: u64,
}

/// The ego sample the decider was given for a frame, and where it came from: what the caption
/// shows and `frames.jsonl` records, so a picture never claims a speed the decision did not use.
#[derive(Debug, Clone, Copy)]
struct EgoUsed {
    from_can: bool,
    /// `None`: the CAN input has delivered no sample yet (the decider is inhibited).
    sample: Option<EgoState>,
}

impl EgoUsed {
    /// `ego` as [`CanLink::ego`] returns it (`None`: no CAN input, the fixed `[ego] speed_kph`).
    fn new(ego: Option<Option<EgoState>>, fixed_speed_mps: f64) -> EgoUsed {
        match ego {
            None => EgoUsed {
                from_can: false,
                sample: Some(EgoState::with_speed(0, fixed_speed_mps)),
            },
            Some(sample) => EgoUsed {
                from_can: true,
                sample,
            },
        }
    }

    fn source(&self) -> &'static str {
        if self.from_can {
            "can"
        } else {
            "config"
        }
    }

    fn caption(&self) -> String {
        match self.sample {
            None => "ego ? km/h (no CAN speed yet)".into(),
            Some(e) => format!(
                "ego {:.0} km/h ({}{})",
                e.speed_mps * 3.6,
                if self.from_can { "CAN" } else { "config" },
                if e.valid { "" } else { ", invalid" }
            ),
        }
    }

    fn event(&self) -> EgoEvent {
        let sample = self.sample.as_ref();
        EgoEvent {
            source: self.source(),
            t_ns: sample.filter(|_| self.from_can).map(|e| e.t_ns),
            speed_kph: sample.map(|e| round(e.speed_mps * 3.6, 3)),
            yaw_rate_rps: sample.and_then(|e| e.yaw_rate_rps).map(|r| round(r, 5)),
            brake_pedal: sample.is_some_and(|e| e.brake_pedal),
            steering_away: sample.is_some_and(|e| e.steering_away),
            valid: sample.is_some_and(|e| e.valid),
        }
    }
}

#[derive(serde::Serialize)]
struct EgoEvent {
    /// `can` (the supervised CAN input) or `config` (the fixed `[ego] speed_kph`).
    source: &'static str,
    /// When the CAN sample was measured, on the frames' clock.
    t_ns: Option<u64>,
    speed_kph: Option<f64>,
    yaw_rate_rps: Option<f64>,
    brake_pedal: bool,
    steering_away: bool,
    valid: bool,
}

#[derive(serde::Serialize)]
struct ThreatEvent {
    track: u64,
    class: &'static str,
    distance_m: f64,
    lateral_m: f64,
    closing_speed_mps: f64,
    ttc_s: Option<f64>,
    required_decel_mps2: f64,
}

fn frame_event_json<'a>(frame: &'a Frame, o: &'a FrameOutcome, ego: &EgoUsed) -> FrameEvent<'a> {
    let detections = o
        .detections
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let ground = o.bev.objects.iter().find(|b| b.detection == i);
            DetectionEvent {
                label: &d.label,
                class: d.class.as_str(),
                score: round(f64::from(d.score), 4),
                bbox: box_json(&d.bbox),
                ground: ground.map(|g| [round(g.x_m, 3), round(g.y_m, 3)]),
            }
        })
        .collect();
    let tracks = o
        .tracks
        .iter()
        .filter(|t| t.confirmed)
        .map(|t| TrackEvent {
            id: u64::from(t.id),
            class: t.class.as_str(),
            x_m: round(t.x_m, 3),
            y_m: round(t.y_m, 3),
            vx_mps: round(t.vx_mps, 3),
            vy_mps: round(t.vy_mps, 3),
            ax_mps2: round(t.ax_mps2, 3),
            age: u64::from(t.age),
            hits: u64::from(t.hits),
        })
        .collect();
    let ttc = o
        .decision
        .threat
        .map(|t| t.ttc_s)
        .filter(|t| t.is_finite())
        .map(|t| round(t, 3));
    FrameEvent {
        seq: frame.seq,
        t_ns: frame.t_capture_ns,
        image: &frame.origin,
        ego: ego.event(),
        detections,
        corridor_length_m: round(o.decision.corridor.length_m, 3),
        corridor_curvature_per_m: o.decision.corridor.curvature_per_m,
        tracks,
        stage: o.decision.stage.as_str(),
        warning: o.decision.warning(),
        brake_request_mps2: o.decision.brake_request_mps2,
        inhibit: o.decision.inhibit.map(|r| r.as_str()),
        suppression: o.decision.suppression.map(|s| s.as_str()),
        threat: o.decision.threat.map(|t| ThreatEvent {
            track: u64::from(t.track_id),
            class: t.class.as_str(),
            distance_m: round(t.distance_m, 3),
            lateral_m: round(t.lateral_m, 3),
            closing_speed_mps: round(t.closing_speed_mps, 3),
            ttc_s: ttc,
            required_decel_mps2: round(t.required_decel_mps2, 3),
        }),
    }
}

/// A box as `[x1, y1, x2, y2]` rounded to 0.1 px, for JSON reports.
pub fn box_json(b: &adas_plugins::BBox) -> [f64; 4] {
    [b.x1, b.y1, b.x2, b.y2].map(|v| round(f64::from(v), 1))
}

/// Rounds for reports (JSON), so outputs read well and diff stably.
pub fn round(value: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (value * f).round() / f
}
