//! What the run loop writes about a frame in words: the `frames.jsonl` line (typed, straight
//! to JSON), the per-frame stdout line, and the ego sample as the caption shows it.

use super::pipeline::FrameOutcome;
use adas_core::aeb::decider::Stage;
use adas_core::aeb::EgoState;
use adas_io::source::Frame;
use adas_plugins::manifest::RoadUser;
use std::collections::BTreeMap;
use std::time::Duration;

/// The per-frame stdout line (`--per-frame`).
pub(crate) fn frame_line(frame: &Frame, o: &FrameOutcome, elapsed: Duration) -> String {
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
pub(crate) struct FrameEvent<'a> {
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
pub(crate) struct EgoUsed {
    from_can: bool,
    /// `None`: the CAN input has delivered no sample yet (the decider is inhibited).
    pub(crate) sample: Option<EgoState>,
}

impl EgoUsed {
    /// `ego` as [`super::inputs::CanLink::ego`] returns it (`None`: no CAN input, the fixed `[ego] speed_kph`).
    pub(crate) fn new(ego: Option<Option<EgoState>>, fixed_speed_mps: f64) -> EgoUsed {
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

    pub(crate) fn caption(&self) -> String {
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

/// The `frames.jsonl` line of a processed frame.
pub(crate) fn frame_event_json<'a>(
    frame: &'a Frame,
    o: &'a FrameOutcome,
    ego: &EgoUsed,
) -> FrameEvent<'a> {
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
