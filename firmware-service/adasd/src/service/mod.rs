//! The daemon's main job: source → detect → BEV → decision → CAN, frame after frame.
//!
//! [`run_with`] is the loop: read a frame and the vehicle's inputs ([`inputs`]), decide
//! ([`pipeline`]), map the decision to the CAN status, hand everything to the outputs
//! ([`sinks`]) and tell the terminal or the journal ([`console`]). A bad frame is skipped, counted and reported on CAN as a fault; the loop never
//! stops on one.

mod console;
mod events;
mod inputs;
mod pipeline;
mod sinks;

pub use console::{Lines, PROGRESS_EVERY_NS};
pub use events::{box_json, round};
pub use inputs::Inputs;
pub use pipeline::{FrameFault, FrameOutcome, Pipeline};

use crate::config::Config;
use crate::metrics::{Decided, Endpoint, FrameObservation, SkipReason};
use adas_core::aeb::decider::Decision;
use adas_core::aeb::InhibitReason;
use adas_core::can::messages::{fault, Encoder, Status};
use adas_io::source::Frame;
use adas_plugins::manifest::RoadUser;
use adas_types::CanFrame;
use anyhow::Context;
use console::Console;
use events::EgoUsed;
use sinks::{FrameReport, Outputs};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Frames each output could not write (outputs that failed at least once).
    pub output_failures: Vec<(&'static str, u64)>,
    /// The parts of the source recording that were damaged and skipped (replays).
    pub source_damage: Vec<adas_record::reader::Damage>,
    /// The last processed frame warned (for the rising edges).
    was_warning: bool,
}

impl Summary {
    /// Frames seen so far, processed and skipped.
    fn seen(&self) -> u64 {
        self.frames + self.skipped
    }

    /// Frame rate from the previous frame's time to `t_ns`, Hz (0 for the first frame).
    fn rate_to(&self, t_ns: u64) -> f64 {
        self.last_t_ns
            .filter(|&last| t_ns > last)
            .map_or(0.0, |last| 1e9 / (t_ns - last) as f64)
    }

    /// Counts one frame captured at `t_ns` that took `busy` to decide.
    fn count(
        &mut self,
        t_ns: u64,
        result: &Result<(Frame, FrameOutcome), FrameFault>,
        busy: Duration,
    ) {
        self.first_t_ns.get_or_insert(t_ns);
        self.last_t_ns = Some(t_ns);
        let Ok((_, outcome)) = result else {
            self.skipped += 1;
            return;
        };
        self.frames += 1;
        self.busy += busy;
        self.above_horizon += outcome.bev.above_horizon as u64;
        for d in &outcome.detections {
            *self.per_class.entry(d.class).or_default() += 1;
        }
        let d = &outcome.decision;
        let warning = d.warning();
        self.warning_frames += u64::from(warning);
        self.warnings += u64::from(warning && !self.was_warning);
        self.braking_frames += u64::from(d.stage.is_braking());
        self.inhibited_frames += u64::from(d.inhibit.is_some());
        self.was_warning = warning;
    }

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
    /// What to print on stdout while running.
    pub lines: Lines,
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
    /// Serve `[metrics]` when the config asks for it (off in replays).
    pub serve_metrics: bool,
}

impl RunOptions {
    /// Live defaults: no pacing, wall-clock telemetry, `[record]` and `[metrics]` from the
    /// config.
    pub fn new(out_dir: PathBuf) -> Self {
        Self {
            out_dir,
            max_frames: None,
            lines: Lines::Nothing,
            config_path: None,
            record_to: None,
            identity: None,
            record_metadata: BTreeMap::new(),
            speed: None,
            wall_clock_telemetry: true,
            annotate: None,
            progress: false,
            record_images: true,
            serve_metrics: true,
        }
    }
}

/// Runs the configured pipeline over its source until the source ends or SIGTERM/SIGINT.
pub fn run(config: Config, options: &RunOptions) -> anyhow::Result<Summary> {
    let pipeline = Pipeline::new(config)?;
    let inputs = Inputs::from_config(pipeline.config(), pipeline.image_size())?;
    run_with(pipeline, inputs, options)
}

/// [`run`] with a given pipeline and inputs (a live source, or a recording for replays: an
/// object-list replay gives [`Pipeline::object_list`] and the recording's detections).
pub fn run_with(
    mut pipeline: Pipeline,
    inputs: Inputs,
    options: &RunOptions,
) -> anyhow::Result<Summary> {
    let stop = stop_on_signals()?;
    let Inputs {
        mut source,
        mut link,
        recorded_detections,
    } = inputs;
    let mut can_tx = CanTx::new(pipeline.config().can.status_period_ms);
    let mut outputs = Outputs::open(pipeline.config(), pipeline.homography(), options);
    let mut telemetry = Telemetry::start(&pipeline.detections_from(), options, source.len_hint());
    let mut console = Console::new(options.lines);
    console.start(|| startup_line(&pipeline, &link, options));
    let mut pacer = Pacer::new(options.speed);
    let mut summary = Summary::default();
    let mut endpoint = if options.serve_metrics {
        let config = pipeline.config();
        Endpoint::start(
            &config.metrics,
            pipeline.detections_from(),
            Duration::from_millis(config.can.stale_after_ms),
        )?
    } else {
        None
    };

    while let Some(item) = source.next_frame() {
        if stop.load(Ordering::SeqCst) {
            tracing::info!("shutdown requested");
            break;
        }
        if options.max_frames.is_some_and(|m| summary.seen() >= m) {
            break;
        }
        let t_ns = item
            .as_ref()
            .map_or_else(|e| e.t_capture_ns, |f| f.t_capture_ns);
        pacer.wait(t_ns);
        let started = Instant::now();
        // A camera's frame was captured before it arrived; other sources' frames, on arrival.
        let captured = source
            .capture_age(t_ns)
            .and_then(|age| started.checked_sub(age))
            .unwrap_or(started);
        // Inputs: the vehicle's (CAN) and, in object-list replays, the recorded detections.
        let mut can_rx = Vec::new();
        let (ego, can_inhibit) = link.ego(t_ns, source.take_recorded_can_rx(), &mut can_rx);
        let recorded = recorded_detections.then(|| source.take_recorded_detections());
        let ego_used = EgoUsed::new(ego, pipeline.ego_speed_mps());
        // The decision.
        let result = item
            .map_err(FrameFault::Lost)
            .and_then(|frame| pipeline.decide(frame, ego, can_inhibit, recorded));
        let elapsed = started.elapsed();
        // Outputs: CAN status and warning, logs, pictures, recording.
        let latency_ms = telemetry_latency_ms(options, elapsed);
        let status = status_of(
            &result,
            summary.rate_to(t_ns),
            latency_ms,
            source.disconnected(),
            outputs.failing(),
        );
        summary.count(t_ns, &result, elapsed);
        let decision = result.as_ref().ok().map(|(_, o)| &o.decision);
        let inhibit = inhibit_reason(decision, can_inhibit);
        link.publish(&status, inhibit.map_or(0, |r| r.code()), decision);
        let capture_to_can = captured.elapsed();
        let sent = can_tx.frames(t_ns, decision, &status);
        let report = FrameReport {
            t_ns,
            index: summary.seen(),
            result: &result,
            ego: &ego_used,
            jpeg: source.last_jpeg(),
            can_rx: &can_rx,
            can_tx: &sent,
            elapsed,
        };
        outputs.frame(&report);
        console.frame(&report, &summary);
        if let Some(e) = endpoint.as_mut() {
            e.publisher.frame(&FrameObservation {
                decided: decided(&result, recorded_detections),
                pipeline: elapsed,
                capture_to_can,
                status,
                inhibit,
                can_rx: can_rx.len() as u64,
                can_logged: sent.len() as u64,
                link: link.counters(),
                recording: outputs.recording_counters(),
                outputs: outputs.health(),
            });
        }
        telemetry.frame(&summary);
    }

    telemetry.finish();
    link.shutdown();
    if let Some(e) = endpoint.as_mut() {
        e.publisher.off();
    }
    let written = outputs.finish(summary.last_t_ns, &[can_tx.off()]);
    summary.can_frames = written.can_frames;
    summary.recording = written.recording;
    summary.output_failures = written.failures;
    summary.source_damage = source.damage().to_vec();
    // The counts of this run's repeated warnings, before the caller's summary.
    adas_cli::flush();
    if let Some(e) = source.take_error() {
        return Err(e.context(format!(
            "the run stopped after {} frames ({} skipped); what was written so far is complete",
            summary.frames, summary.skipped
        )));
    }
    Ok(summary)
}

/// What runs, from where to where: the first line a run prints.
fn startup_line(pipeline: &Pipeline, link: &inputs::CanLink, options: &RunOptions) -> String {
    let config = pipeline.config();
    let recording = match (&options.record_to, config.record.mode) {
        (Some(path), _) => format!("; recording into {}", path.display()),
        (None, adas_record::RecordMode::Off) => String::new(),
        (None, mode) => format!("; recording: {}", format!("{mode:?}").to_lowercase()),
    };
    format!(
        "adasd {}: {} → {} → {}; output {}{recording}",
        env!("CARGO_PKG_VERSION"),
        config.source.uri,
        pipeline.detections_from(),
        link.describe(config),
        options.out_dir.display(),
    )
}

/// SIGTERM, SIGINT and SIGHUP set the returned flag; the loop ends after the frame in hand and
/// the bus hears status Off. (SIGHUP: a lost terminal or a stray `kill -HUP` ends the run
/// cleanly instead of by the default action, which would skip the Off status.)
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(signal, stop.clone())
            .context("cannot install the signal handler")?;
    }
    Ok(stop)
}

/// The CAN status of a frame (pure): the decision's, or unavailable with the fault's bits. A
/// failing output (log, recording) adds its fault bit but never changes the mode: only the
/// decision path can make AEB unavailable.
fn status_of(
    result: &Result<(Frame, FrameOutcome), FrameFault>,
    fps: f64,
    latency_ms: f64,
    camera_gone: bool,
    output_failing: bool,
) -> Status {
    let mut status = match result {
        Ok((_, o)) => Status::of_decision(&o.decision, fps, latency_ms),
        Err(f) => {
            let camera = if camera_gone { fault::CAMERA } else { 0 };
            Status::unavailable(f.bits() | camera, fps, latency_ms)
        }
    };
    if output_failing {
        status.faults |= fault::OUTPUT;
    }
    status
}

/// The inhibit reason the status message carries: the decider's, or the CAN supervision's
/// when the frame produced no decision.
fn inhibit_reason(
    decision: Option<&Decision>,
    can_inhibit: Option<InhibitReason>,
) -> Option<InhibitReason> {
    match decision {
        Some(d) => d.inhibit,
        None => can_inhibit,
    }
}

/// What the metrics count of a frame's result.
fn decided(
    result: &Result<(Frame, FrameOutcome), FrameFault>,
    recorded_detections: bool,
) -> Result<Decided, SkipReason> {
    match result {
        Ok((_, o)) => Ok(Decided {
            stage: o.decision.stage,
            warning: o.decision.warning(),
            inhibit: o.decision.inhibit,
            detector: (!recorded_detections).then(|| o.times.total()),
        }),
        Err(FrameFault::Lost(_)) => Err(SkipReason::FrameLost),
        Err(FrameFault::SizeMismatch { .. }) => Err(SkipReason::Calibration),
        Err(FrameFault::Detector { .. }) => Err(SkipReason::Detector),
    }
}

/// Replays leave the wall clock out of everything they write.
fn telemetry_latency_ms(options: &RunOptions, elapsed: Duration) -> f64 {
    if options.wall_clock_telemetry {
        elapsed.as_secs_f64() * 1e3
    } else {
        0.0
    }
}

/// The CAN frames the run loop sends for `can.log` and the recording: the warning every frame,
/// the status every `status_period_ms` of data time, each with its E2E counter and CRC.
struct CanTx {
    encoder: Encoder,
    period_ns: u64,
    next_status_ns: u64,
}

impl CanTx {
    fn new(status_period_ms: u64) -> CanTx {
        CanTx {
            encoder: Encoder::default(),
            period_ns: status_period_ms.saturating_mul(1_000_000),
            next_status_ns: 0,
        }
    }

    fn frames(&mut self, t_ns: u64, decision: Option<&Decision>, status: &Status) -> Vec<CanFrame> {
        let mut frames = Vec::with_capacity(2);
        if let Some(d) = decision {
            frames.push(self.encoder.warning(d));
        }
        if t_ns >= self.next_status_ns {
            frames.push(self.encoder.status(status));
            self.next_status_ns = t_ns.saturating_add(self.period_ns);
        }
        frames
    }

    /// The final status: the service is going off.
    fn off(&mut self) -> CanFrame {
        self.encoder.status(&Status::off())
    }
}

/// Paces a replay at `speed` × the recorded rate (`None`: as fast as possible).
struct Pacer {
    speed: Option<f64>,
    start: Instant,
    first_t_ns: Option<u64>,
}

impl Pacer {
    fn new(speed: Option<f64>) -> Pacer {
        Pacer {
            speed: speed.filter(|s| *s > 0.0 && s.is_finite()),
            start: Instant::now(),
            first_t_ns: None,
        }
    }

    fn wait(&mut self, t_ns: u64) {
        let Some(speed) = self.speed else {
            return;
        };
        let t0 = *self.first_t_ns.get_or_insert(t_ns);
        let due = Duration::from_secs_f64(t_ns.saturating_sub(t0) as f64 / 1e9 / speed);
        if let Some(wait) = due.checked_sub(self.start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// What the service manager and the terminal see: sd_notify readiness, watchdog, status
/// text, and the progress bar.
struct Telemetry {
    notifier: adas_io::notify::Notifier,
    progress: Option<indicatif::ProgressBar>,
}

impl Telemetry {
    fn start(model: &str, options: &RunOptions, len: Option<usize>) -> Telemetry {
        tracing::info!(%model, "pipeline ready");
        let notifier = adas_io::notify::Notifier::from_env();
        notifier.ready(&format!("running {model}"));
        Telemetry {
            notifier,
            progress: progress_bar(options.progress, len),
        }
    }

    fn frame(&mut self, summary: &Summary) {
        self.notifier.progress();
        if summary.seen().is_multiple_of(100) {
            self.notifier.status(&format!(
                "{} frames, {} skipped, {:.1} fps",
                summary.frames,
                summary.skipped,
                summary.fps()
            ));
        }
        if let Some(bar) = &self.progress {
            bar.inc(1);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &self.progress {
            bar.finish_and_clear();
        }
        self.notifier.stopping();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use adas_core::can::messages::Mode;

    fn detector_failed() -> Result<(Frame, FrameOutcome), FrameFault> {
        Err(FrameFault::Detector {
            seq: 7,
            message: "CUDA context lost".into(),
        })
    }

    #[test]
    fn a_fault_makes_aeb_unavailable_with_its_bit_and_an_output_only_adds_its_own() {
        let s = status_of(&detector_failed(), 10.0, 50.0, false, false);
        assert_eq!((s.mode, s.faults), (Mode::Unavailable, fault::DETECTOR));
        assert_eq!((s.fps, s.latency_ms), (10.0, 50.0));
        let s = status_of(&detector_failed(), 10.0, 50.0, true, true);
        assert_eq!(
            s.faults,
            fault::DETECTOR | fault::CAMERA | fault::OUTPUT,
            "camera gone and an output failing add their bits"
        );
        let lost = Err(FrameFault::SizeMismatch {
            seq: 1,
            got_w: 640,
            got_h: 480,
            want_w: 768,
            want_h: 576,
        });
        assert_eq!(
            status_of(&lost, 0.0, 0.0, false, false).faults,
            fault::CALIBRATION
        );
    }

    #[test]
    fn the_inhibit_reason_is_the_deciders_else_the_supervisions() {
        assert_eq!(
            inhibit_reason(None, Some(InhibitReason::EgoStale)),
            Some(InhibitReason::EgoStale)
        );
        assert_eq!(inhibit_reason(None, None), None);
    }
}
