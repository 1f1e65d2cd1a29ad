//! What the endpoint exposes: the counters the run loop adds to once per frame
//! ([`State::frame`]) and their Prometheus families ([`State::encode`]), the one place where
//! metric names live (docs/METRICS.md lists them).
//!
//! Everything here is fixed-size and `Copy`, so that publishing to the server thread and its
//! snapshot are one copy each, and formatting happens outside the lock.

use super::histogram::Histogram;
use super::text::{Kind, Text};
use adas_core::aeb::decider::Stage;
use adas_core::aeb::InhibitReason;
use adas_core::can::messages::{Mode, Status};
use adas_core::can::supervision::InputCounters;
use std::time::{Duration, Instant};

/// Why a frame produced no decision (the label of `adas_frames_skipped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The source could not deliver it (lost, unreadable, camera gone).
    FrameLost,
    /// Its size is not the calibration's.
    Calibration,
    /// The detector failed on it.
    Detector,
}

const SKIP_REASONS: [SkipReason; 3] = [
    SkipReason::FrameLost,
    SkipReason::Calibration,
    SkipReason::Detector,
];

impl SkipReason {
    fn index(self) -> usize {
        match self {
            SkipReason::FrameLost => 0,
            SkipReason::Calibration => 1,
            SkipReason::Detector => 2,
        }
    }

    fn label(self) -> &'static str {
        match self {
            SkipReason::FrameLost => "frame_lost",
            SkipReason::Calibration => "calibration",
            SkipReason::Detector => "detector",
        }
    }
}

const STAGES: [Stage; 4] = [
    Stage::None,
    Stage::Fcw,
    Stage::PartialBrake,
    Stage::FullBrake,
];

fn stage_index(stage: Stage) -> usize {
    match stage {
        Stage::None => 0,
        Stage::Fcw => 1,
        Stage::PartialBrake => 2,
        Stage::FullBrake => 3,
    }
}

const MODES: [Mode; 5] = [
    Mode::Off,
    Mode::Standby,
    Mode::Warning,
    Mode::Unavailable,
    Mode::Braking,
];

pub(crate) fn mode_label(mode: Mode) -> &'static str {
    match mode {
        Mode::Off => "off",
        Mode::Standby => "standby",
        Mode::Warning => "warning",
        Mode::Unavailable => "unavailable",
        Mode::Braking => "braking",
    }
}

const INHIBIT_REASONS: [InhibitReason; 5] = [
    InhibitReason::NoEgo,
    InhibitReason::EgoInvalid,
    InhibitReason::EgoStale,
    InhibitReason::EgoOutOfRange,
    InhibitReason::TimeWentBack,
];

fn inhibit_index(reason: InhibitReason) -> usize {
    match reason {
        InhibitReason::NoEgo => 0,
        InhibitReason::EgoInvalid => 1,
        InhibitReason::EgoStale => 2,
        InhibitReason::EgoOutOfRange => 3,
        InhibitReason::TimeWentBack => 4,
    }
}

pub(crate) fn inhibit_label(reason: InhibitReason) -> &'static str {
    match reason {
        InhibitReason::NoEgo => "no_ego",
        InhibitReason::EgoInvalid => "ego_invalid",
        InhibitReason::EgoStale => "ego_stale",
        InhibitReason::EgoOutOfRange => "ego_out_of_range",
        InhibitReason::TimeWentBack => "time_went_back",
    }
}

/// What the decider made of a frame.
#[derive(Debug, Clone, Copy)]
pub struct Decided {
    pub stage: Stage,
    pub warning: bool,
    pub inhibit: Option<InhibitReason>,
    /// The detector's time (preprocess, inference, decode + NMS); `None` when no detector ran
    /// (object-list replays).
    pub detector: Option<Duration>,
}

/// Counters of the SocketCAN link (its thread's, cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusCounters {
    pub tx_frames: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
    pub bus_off: u64,
    pub error_frames: u64,
    pub rx_overflow: u64,
    pub link_up: bool,
}

/// What the CAN link knows of itself, cumulative.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Live SocketCAN only.
    pub bus: Option<BusCounters>,
    /// The supervised inputs (speed, driver, yaw rate), when there is a CAN input.
    pub inputs: Option<[InputCounters; 3]>,
    /// Lines of a candump input log skipped as bad (log replays only).
    pub bad_log_lines: Option<u64>,
}

const INPUT_NAMES: [&str; 3] = ["speed", "driver", "yaw_rate"];

/// What the recorder has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingCounters {
    pub bytes: u64,
    pub frames: u64,
    pub dropped_frames: u64,
    pub errors: u64,
}

/// One output's health (`can.log`, `frames.jsonl`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputHealth {
    pub name: &'static str,
    pub failed_frames: u64,
    pub failing: bool,
}

/// The outputs a run can have (log, events, pictures, recording).
pub const MAX_OUTPUTS: usize = 4;

/// Everything the run loop knows about one frame once its outputs have it.
#[derive(Debug, Clone, Copy)]
pub struct FrameObservation {
    /// The decision, or why there was none.
    pub decided: Result<Decided, SkipReason>,
    /// From the frame in hand to its decision.
    pub pipeline: Duration,
    /// From the frame's capture to its status and warning handed to CAN.
    pub capture_to_can: Duration,
    /// The status handed to CAN, and the inhibit reason it carries.
    pub status: Status,
    pub inhibit: Option<InhibitReason>,
    /// CAN frames received up to this frame (vehicle input) and written to `can.log` for it.
    pub can_rx: u64,
    pub can_logged: u64,
    pub link: LinkCounters,
    pub recording: Option<RecordingCounters>,
    pub outputs: [Option<OutputHealth>; MAX_OUTPUTS],
}

/// The last status handed to CAN and when (for `/healthz`).
#[derive(Debug, Clone, Copy)]
pub struct LastStatus {
    pub status: Status,
    pub inhibit: Option<InhibitReason>,
    pub at: Instant,
}

/// The counters, as of the last frame.
#[derive(Debug, Clone, Copy, Default)]
pub struct State {
    frames_processed: u64,
    frames_skipped: [u64; SKIP_REASONS.len()],
    detector: Histogram,
    pipeline: Histogram,
    capture_to_can: Histogram,
    stage_frames: [u64; STAGES.len()],
    stage: Option<Stage>,
    warnings: u64,
    was_warning: bool,
    inhibited: [u64; INHIBIT_REASONS.len()],
    can_rx: u64,
    can_logged: u64,
    link: LinkCounters,
    recording: Option<RecordingCounters>,
    outputs: [Option<OutputHealth>; MAX_OUTPUTS],
    pub(crate) last: Option<LastStatus>,
}

impl State {
    /// Adds one frame; `now` is when its status went to CAN.
    pub fn frame(&mut self, o: &FrameObservation, now: Instant) {
        match o.decided {
            Ok(d) => {
                self.frames_processed += 1;
                self.pipeline.observe(o.pipeline.as_secs_f64());
                if let Some(t) = d.detector {
                    self.detector.observe(t.as_secs_f64());
                }
                self.stage_frames[stage_index(d.stage)] += 1;
                self.stage = Some(d.stage);
                self.warnings += u64::from(d.warning && !self.was_warning);
                self.was_warning = d.warning;
                if let Some(r) = d.inhibit {
                    self.inhibited[inhibit_index(r)] += 1;
                }
            }
            Err(reason) => self.frames_skipped[reason.index()] += 1,
        }
        self.capture_to_can.observe(o.capture_to_can.as_secs_f64());
        self.can_rx += o.can_rx;
        self.can_logged += o.can_logged;
        self.link = o.link;
        self.recording = o.recording;
        self.outputs = o.outputs;
        self.last = Some(LastStatus {
            status: o.status,
            inhibit: o.inhibit,
            at: now,
        });
    }

    /// The run is over: the bus heard status Off.
    pub fn off(&mut self, now: Instant) {
        self.last = Some(LastStatus {
            status: Status::off(),
            inhibit: None,
            at: now,
        });
    }

    /// The exposition of every family; `detector` names the model and backend.
    pub fn encode(&self, detector: &str) -> String {
        let mut t = Text::default();
        t.family(
            "adas_build_info",
            Kind::Gauge,
            "The daemon's version and the detector it runs (model on backend); always 1.",
        );
        t.int(
            "adas_build_info",
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("detector", detector),
            ],
            1,
        );
        self.encode_frames(&mut t);
        self.encode_aeb(&mut t);
        self.encode_can(&mut t);
        self.encode_outputs(&mut t);
        t.finish()
    }

    fn encode_frames(&self, t: &mut Text) {
        t.family(
            "adas_frames_processed_total",
            Kind::Counter,
            "Frames decided (detector, tracker and AEB decider ran).",
        );
        t.int("adas_frames_processed_total", &[], self.frames_processed);
        t.family(
            "adas_frames_skipped_total",
            Kind::Counter,
            "Frames that produced no decision, by reason; each made AEB unavailable on CAN.",
        );
        for r in SKIP_REASONS {
            let n = self.frames_skipped[r.index()];
            t.int("adas_frames_skipped_total", &[("reason", r.label())], n);
        }
        t.histogram(
            "adas_detector_latency_seconds",
            "Detector time per decided frame: preprocessing, inference, decoding and NMS.",
            &self.detector,
        );
        t.histogram(
            "adas_pipeline_latency_seconds",
            "Time per decided frame from the frame in hand to its decision (detector, BEV, \
             tracker, decider).",
            &self.pipeline,
        );
        t.histogram(
            "adas_capture_to_can_latency_seconds",
            "Time from a frame's capture (a camera's driver timestamp; for files and recordings \
             their delivery) to its status and warning handed to CAN, per frame.",
            &self.capture_to_can,
        );
    }

    fn encode_aeb(&self, t: &mut Text) {
        t.family(
            "adas_aeb_frames_total",
            Kind::Counter,
            "Decided frames by AEB stage (none, fcw, partial or full braking).",
        );
        for s in STAGES {
            let n = self.stage_frames[stage_index(s)];
            t.int("adas_aeb_frames_total", &[("stage", s.as_str())], n);
        }
        t.family(
            "adas_aeb_stage",
            Kind::Gauge,
            "The last decided frame's AEB stage: 1 for that stage, 0 for the others.",
        );
        for s in STAGES {
            let now = u64::from(self.stage == Some(s));
            t.int("adas_aeb_stage", &[("stage", s.as_str())], now);
        }
        t.family(
            "adas_aeb_warnings_total",
            Kind::Counter,
            "Warnings raised (rising edges of FCW or braking).",
        );
        t.int("adas_aeb_warnings_total", &[], self.warnings);
        t.family(
            "adas_aeb_inhibited_frames_total",
            Kind::Counter,
            "Decided frames in which the AEB decider was inhibited, by reason.",
        );
        for r in INHIBIT_REASONS {
            let n = self.inhibited[inhibit_index(r)];
            t.int(
                "adas_aeb_inhibited_frames_total",
                &[("reason", inhibit_label(r))],
                n,
            );
        }
        t.family(
            "adas_aeb_mode",
            Kind::Gauge,
            "The mode of the last AEB_Status handed to CAN: 1 for that mode, 0 for the others \
             (all 0 before the first frame).",
        );
        let mode = self.last.map(|l| l.status.mode);
        for m in MODES {
            let now = u64::from(mode == Some(m));
            t.int("adas_aeb_mode", &[("mode", mode_label(m))], now);
        }
    }

    fn encode_can(&self, t: &mut Text) {
        t.family(
            "adas_can_rx_frames_total",
            Kind::Counter,
            "CAN frames received as vehicle input (bus, candump log or recording).",
        );
        t.int("adas_can_rx_frames_total", &[], self.can_rx);
        t.family(
            "adas_can_tx_frames_total",
            Kind::Counter,
            "CAN frames sent: link=\"log\" into can.log, link=\"socketcan\" on the bus by the \
             CAN thread.",
        );
        t.int(
            "adas_can_tx_frames_total",
            &[("link", "log")],
            self.can_logged,
        );
        if let Some(bus) = &self.link.bus {
            t.int(
                "adas_can_tx_frames_total",
                &[("link", "socketcan")],
                bus.tx_frames,
            );
        }
        let mut link_errors: Vec<(&str, u64)> = Vec::new();
        if let Some(b) = &self.link.bus {
            link_errors.extend([
                ("tx_error", b.tx_errors),
                ("tx_dropped", b.tx_dropped),
                ("bus_off", b.bus_off),
                ("error_frame", b.error_frames),
                ("rx_overflow", b.rx_overflow),
            ]);
        }
        if let Some(n) = self.link.bad_log_lines {
            link_errors.push(("bad_log_line", n));
        }
        if !link_errors.is_empty() {
            t.family(
                "adas_can_link_errors_total",
                Kind::Counter,
                "Errors of the CAN link by kind: write errors, frames dropped after retries, \
                 bus-off, error frames, receive-queue overflows, bad lines of an input log.",
            );
            for (kind, n) in link_errors {
                t.int("adas_can_link_errors_total", &[("kind", kind)], n);
            }
        }
        if let Some(b) = &self.link.bus {
            t.family(
                "adas_can_link_up",
                Kind::Gauge,
                "1 while the SocketCAN socket is open and the last write went through.",
            );
            t.int("adas_can_link_up", &[], u64::from(b.link_up));
        }
        if let Some(inputs) = &self.link.inputs {
            t.family(
                "adas_can_input_errors_total",
                Kind::Counter,
                "Rejected frames and timeouts of the supervised CAN inputs, by input and kind \
                 (E2E CRC, alive counter, length, value range, timeout).",
            );
            for (name, c) in INPUT_NAMES.iter().zip(inputs) {
                for (kind, n) in [
                    ("crc", c.crc_errors),
                    ("sequence", c.sequence_errors),
                    ("dlc", c.dlc_errors),
                    ("range", c.range_errors),
                    ("timeout", c.timeouts),
                ] {
                    t.int(
                        "adas_can_input_errors_total",
                        &[("input", name), ("kind", kind)],
                        n,
                    );
                }
            }
        }
    }

    fn encode_outputs(&self, t: &mut Text) {
        if let Some(r) = &self.recording {
            for (name, help, n) in [
                (
                    "adas_recording_bytes_total",
                    "Bytes written into MCAP recordings.",
                    r.bytes,
                ),
                ("adas_recording_frames_total", "Frames recorded.", r.frames),
                (
                    "adas_recording_dropped_frames_total",
                    "Frames not recorded because writing failed (retried after a second of data).",
                    r.dropped_frames,
                ),
                (
                    "adas_recording_errors_total",
                    "Recording write failures (each one closes the file in hand).",
                    r.errors,
                ),
            ] {
                t.family(name, Kind::Counter, help);
                t.int(name, &[], n);
            }
        }
        let outputs = || self.outputs.iter().flatten();
        t.family(
            "adas_output_failed_frames_total",
            Kind::Counter,
            "Frames an output (can.log, frames.jsonl, annotated frames, recording) could not \
             write; decisions went on.",
        );
        for o in outputs() {
            t.int(
                "adas_output_failed_frames_total",
                &[("output", o.name)],
                o.failed_frames,
            );
        }
        t.family(
            "adas_output_failing",
            Kind::Gauge,
            "1 while an output fails (AEB_FaultOutput on CAN), 0 once it writes again.",
        );
        for o in outputs() {
            t.int(
                "adas_output_failing",
                &[("output", o.name)],
                u64::from(o.failing),
            );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn decided(stage: Stage, inhibit: Option<InhibitReason>) -> FrameObservation {
        FrameObservation {
            decided: Ok(Decided {
                stage,
                warning: stage > Stage::None,
                inhibit,
                detector: Some(Duration::from_millis(30)),
            }),
            pipeline: Duration::from_millis(40),
            capture_to_can: Duration::from_millis(45),
            status: Status::off(),
            inhibit,
            can_rx: 5,
            can_logged: 2,
            link: LinkCounters::default(),
            recording: None,
            outputs: [None; MAX_OUTPUTS],
        }
    }

    /// The value of the sample written exactly as `series` (name and labels).
    fn value(text: &str, series: &str) -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn frames_count_by_stage_reason_and_edge() {
        let mut s = State::default();
        let now = Instant::now();
        s.frame(&decided(Stage::None, None), now);
        s.frame(&decided(Stage::Fcw, None), now);
        s.frame(&decided(Stage::PartialBrake, None), now);
        s.frame(&decided(Stage::None, Some(InhibitReason::EgoStale)), now);
        s.frame(&decided(Stage::Fcw, None), now);
        let mut skipped = decided(Stage::None, None);
        skipped.decided = Err(SkipReason::Detector);
        s.frame(&skipped, now);
        let text = s.encode("m on tract");
        let v = |series: &str| value(&text, series).unwrap();
        assert_eq!(v("adas_frames_processed_total"), 5);
        assert_eq!(v("adas_frames_skipped_total{reason=\"detector\"}"), 1);
        assert_eq!(v("adas_frames_skipped_total{reason=\"frame_lost\"}"), 0);
        assert_eq!(v("adas_aeb_frames_total{stage=\"none\"}"), 2);
        assert_eq!(v("adas_aeb_frames_total{stage=\"fcw\"}"), 2);
        assert_eq!(v("adas_aeb_frames_total{stage=\"partial\"}"), 1);
        // FCW → partial is one warning; it ended and a second FCW started.
        assert_eq!(v("adas_aeb_warnings_total"), 2);
        assert_eq!(
            v("adas_aeb_stage{stage=\"fcw\"}"),
            1,
            "the last decided stage"
        );
        assert_eq!(v("adas_aeb_stage{stage=\"none\"}"), 0);
        assert_eq!(
            v("adas_aeb_inhibited_frames_total{reason=\"ego_stale\"}"),
            1
        );
        assert_eq!(v("adas_pipeline_latency_seconds_count"), 5);
        assert_eq!(v("adas_detector_latency_seconds_count"), 5);
        assert_eq!(v("adas_capture_to_can_latency_seconds_count"), 6);
        assert_eq!(v("adas_can_rx_frames_total"), 30);
        assert_eq!(v("adas_can_tx_frames_total{link=\"log\"}"), 12);
        assert_eq!(v("adas_aeb_mode{mode=\"off\"}"), 1);
        assert!(text.contains("adas_build_info{version=\""));
        // Without a bus, CAN input or recording, their families are left out.
        for absent in [
            "adas_can_link_up",
            "adas_can_input_errors_total",
            "adas_recording_bytes_total",
            "adas_can_tx_frames_total{link=\"socketcan\"}",
        ] {
            assert!(!text.contains(absent), "{absent}");
        }
    }

    #[test]
    fn bus_inputs_recording_and_outputs_are_exposed_as_reported() {
        let mut o = decided(Stage::None, None);
        o.link = LinkCounters {
            bus: Some(BusCounters {
                tx_frames: 40,
                bus_off: 2,
                link_up: true,
                ..BusCounters::default()
            }),
            inputs: Some([
                InputCounters {
                    crc_errors: 3,
                    ..InputCounters::default()
                },
                InputCounters::default(),
                InputCounters {
                    timeouts: 1,
                    ..InputCounters::default()
                },
            ]),
            bad_log_lines: None,
        };
        o.recording = Some(RecordingCounters {
            bytes: 123_456,
            frames: 9,
            dropped_frames: 1,
            errors: 1,
        });
        o.outputs[0] = Some(OutputHealth {
            name: "can.log",
            failed_frames: 4,
            failing: true,
        });
        let mut s = State::default();
        s.frame(&o, Instant::now());
        let text = s.encode("m on tract");
        let v = |series: &str| value(&text, series).unwrap();
        assert_eq!(v("adas_can_tx_frames_total{link=\"socketcan\"}"), 40);
        assert_eq!(v("adas_can_link_errors_total{kind=\"bus_off\"}"), 2);
        assert_eq!(v("adas_can_link_up"), 1);
        assert_eq!(
            v("adas_can_input_errors_total{input=\"speed\",kind=\"crc\"}"),
            3
        );
        assert_eq!(
            v("adas_can_input_errors_total{input=\"yaw_rate\",kind=\"timeout\"}"),
            1
        );
        assert_eq!(v("adas_recording_bytes_total"), 123_456);
        assert_eq!(v("adas_recording_dropped_frames_total"), 1);
        assert_eq!(v("adas_output_failed_frames_total{output=\"can.log\"}"), 4);
        assert_eq!(v("adas_output_failing{output=\"can.log\"}"), 1);
    }

    #[test]
    fn every_family_has_help_and_type_once() {
        let mut s = State::default();
        s.frame(&decided(Stage::None, None), Instant::now());
        let text = s.encode("m");
        let mut seen = std::collections::BTreeSet::new();
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert!(seen.insert(name.to_string()), "{name} twice");
            assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            assert!(name.starts_with("adas_"), "{name}");
            if line.ends_with(" counter") {
                assert!(name.ends_with("_total"), "{name}");
            }
        }
    }
}
