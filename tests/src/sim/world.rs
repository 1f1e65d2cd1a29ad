//! The simulated world: ego and target kinematics, the camera that turns each target's 3-D
//! cuboid into the image box a detector would report (with noise, dropouts, false positives and
//! latency), the brake actuator, and the daemon's own core in the loop: `adas_core::Core::step`
//! (BEV with the camera's homography → tracker → decider), the function the daemon runs per frame.
//!
//! # Brake model
//! The decider's request (0 / `partial_brake_mps2` / `full_brake_mps2`) reaches the wheels after
//! `actuation_delay_s` (pump + valve latency); the deceleration then builds up at most at
//! `rise_jerk_mps3` and falls at most at `release_jerk_mps3`, and never exceeds
//! `max_decel_mps2` (tyre–road friction, dry asphalt). The ego never reverses. The simulated driver
//! neither brakes nor steers (the worst case for AEB), and does not accelerate again after an
//! intervention.
//!
//! Not modelled: vehicle pitch while braking (it moves the horizon and so the BEV distances),
//! occlusion between targets, road curvature, lens distortion, calibration error.

use super::rng::Rng;
use super::scenario::{default_dims, Scenario, Target};
use adas_calibration::{Homography, Intrinsics, Mounting, PinholeCamera};
use adas_core::aeb::decider::{AebParams, Stage};
use adas_core::aeb::episodes::{judge_episodes, EpisodeFrame, JudgedEpisode};
use adas_core::aeb::EgoState;
use adas_core::perception::TrackerParams;
use adas_core::Core;
use adas_plugins::manifest::RoadUser;
use adas_plugins::BBox;
use adas_types::ImageDetection;
use std::collections::VecDeque;

/// Ego half width and length (the footprint behind the front bumper), m.
pub const EGO_HALF_WIDTH_M: f64 = 0.9;
pub const EGO_LENGTH_M: f64 = 4.5;

/// The brake actuator (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BrakeModel {
    pub actuation_delay_s: f64,
    pub rise_jerk_mps3: f64,
    pub release_jerk_mps3: f64,
    pub max_decel_mps2: f64,
}

impl Default for BrakeModel {
    fn default() -> Self {
        // Typical of an ESC hydraulic unit: ~150 ms until pressure rises, full deceleration
        // (9 m/s²) reached ~0.3 s later, friction limit 0.97 g.
        Self {
            actuation_delay_s: 0.15,
            rise_jerk_mps3: 30.0,
            release_jerk_mps3: 40.0,
            max_decel_mps2: 9.5,
        }
    }
}

/// Camera, calibration and the daemon's parameters.
#[derive(Debug, Clone)]
pub struct SimSetup {
    pub camera: PinholeCamera,
    pub homography: Homography,
    pub image_width: u32,
    pub image_height: u32,
    pub tracker: TrackerParams,
    pub aeb: AebParams,
    pub brake: BrakeModel,
}

impl SimSetup {
    /// A forward camera: 1280×720, f = 1000 px, behind the windscreen 1.5 m behind the bumper,
    /// 1.3 m high, pitched 0.06 rad (3.4°) down; the daemon's default tracker and AEB parameters.
    pub fn standard() -> Result<SimSetup, String> {
        let intrinsics = Intrinsics {
            fx: 1000.0,
            fy: 1000.0,
            cx: 640.0,
            cy: 360.0,
        };
        let mounting = Mounting {
            x: -1.5,
            y: 0.0,
            height: 1.3,
            pitch: 0.06,
            yaw: 0.0,
            roll: 0.0,
        };
        let camera = PinholeCamera::new(intrinsics, mounting).map_err(|e| e.to_string())?;
        let homography = camera.ground_homography().map_err(|e| e.to_string())?;
        Ok(SimSetup {
            camera,
            homography,
            image_width: 1280,
            image_height: 720,
            // The simulated detector's box jitter is given in image pixels (`jitter_px`).
            tracker: TrackerParams {
                pixel_sigma_px: Some(1.5),
                ..TrackerParams::default()
            },
            aeb: AebParams::default(),
            brake: BrakeModel::default(),
        })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Avoided,
    /// Contact, relative speed along the road, km/h.
    Impact {
        kph: f64,
    },
}

/// One row of the time series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub t_s: f64,
    pub ego_speed_mps: f64,
    pub ego_decel_mps2: f64,
    /// Truth: gap to the nearest target in the ego's path (NaN if none), m.
    pub gap_m: f64,
    pub stage: Stage,
    pub brake_request_mps2: f64,
    /// Decider's view of its threat (NaN if none).
    pub ttc_s: f64,
    pub required_decel_mps2: f64,
    pub threat_distance_m: f64,
    pub tracks: usize,
    pub detections: usize,
}

/// Everything measured in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    pub seed: u64,
    pub outcome: Outcome,
    pub first_fcw_s: Option<f64>,
    pub first_brake_s: Option<f64>,
    pub first_full_s: Option<f64>,
    /// Every braking episode with its continuous warning lead, judged by the daemon's rule
    /// (`adas_core::aeb::episodes`; times are simulation times of the decisions, s = ns · 1e-9).
    pub episodes: Vec<JudgedEpisode>,
    /// Smallest truth gap to a target in the path, m (∞ if none was ever in the path).
    pub min_gap_m: f64,
    /// Frames with a warning or braking.
    pub active_frames: u32,
    pub inhibited_frames: u32,
    pub samples: Vec<Sample>,
    /// What the pipeline decided per frame (capture time, outcome), when recording: written as
    /// an MCAP recording by `scenario run --record DIR`.
    pub outcomes: Vec<(u64, adas_record::Outcome)>,
}

impl RunResult {
    /// Smallest continuous warning lead over all braking episodes, s.
    pub fn min_warning_lead_s(&self) -> Option<f64> {
        self.episodes
            .iter()
            .map(JudgedEpisode::lead_s)
            .reduce(f64::min)
    }

    /// Episodes whose braking followed a withdrawn warning (warn → clear → brake).
    pub fn interrupted_episodes(&self) -> usize {
        self.episodes
            .iter()
            .filter(|e| e.episode.interrupted_warning)
            .count()
    }

    /// Episodes with a short lead that the rule excuses (marked unanticipated by the decider).
    pub fn excused_episodes(&self) -> usize {
        self.episodes.iter().filter(|e| e.excuse.is_some()).count()
    }

    pub fn impact_kph(&self) -> Option<f64> {
        match self.outcome {
            Outcome::Avoided => None,
            Outcome::Impact { kph } => Some(kph),
        }
    }
}

#[derive(Debug, Clone)]
struct TargetState {
    spec: Target,
    x: f64,
    y: f64,
    v: f64,
}

impl TargetState {
    fn corners(&self) -> [[f64; 2]; 4] {
        let (s, c) = self.spec.heading_rad.sin_cos();
        let (hl, hw) = (0.5 * self.spec.length_m, 0.5 * self.spec.width_m);
        let mut out = [[0.0; 2]; 4];
        for (i, (dl, dw)) in [(hl, hw), (hl, -hw), (-hl, -hw), (-hl, hw)]
            .iter()
            .enumerate()
        {
            out[i] = [self.x + dl * c - dw * s, self.y + dl * s + dw * c];
        }
        out
    }

    fn step(&mut self, t: f64, dt: f64) {
        let a = if t >= self.spec.accel_from_s {
            self.spec.accel_mps2
        } else {
            0.0
        };
        let v_new = (self.v + a * dt).clamp(0.0, self.spec.max_speed_mps.max(self.spec.speed_mps));
        let v_mid = 0.5 * (self.v + v_new);
        let (s, c) = self.spec.heading_rad.sin_cos();
        self.x += v_mid * c * dt;
        self.y += v_mid * s * dt;
        self.v = v_new;
    }
}

/// Separating-axis test for two convex quadrilaterals.
fn overlap(a: &[[f64; 2]; 4], b: &[[f64; 2]; 4]) -> bool {
    for poly in [a, b] {
        for i in 0..4 {
            let p = poly[i];
            let q = poly[(i + 1) % 4];
            let axis = [q[1] - p[1], p[0] - q[0]];
            let proj = |r: &[[f64; 2]; 4]| {
                r.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        let d = v[0] * axis[0] + v[1] * axis[1];
                        (lo.min(d), hi.max(d))
                    })
            };
            let (a0, a1) = proj(a);
            let (b0, b1) = proj(b);
            if a1 < b0 || b1 < a0 {
                return false;
            }
        }
    }
    true
}

/// The image box a detector would report for a cuboid at vehicle-frame `(x, y)`, or `None` if
/// it is not visible. Noise-free; clipped to the image.
fn image_box(
    setup: &SimSetup,
    x: f64,
    y: f64,
    heading: f64,
    dims: (f64, f64, f64),
) -> Option<[f64; 4]> {
    let corners = PinholeCamera::cuboid_corners(x, y, heading, dims.0, dims.1, dims.2);
    let b = setup.camera.project_bounding_box(&corners).ok()??;
    let (w, h) = (f64::from(setup.image_width), f64::from(setup.image_height));
    if b.u_max <= 0.0 || b.u_min >= w || b.v_max <= 0.0 || b.v_min >= h {
        return None;
    }
    Some([b.u_min, b.v_min, b.u_max, b.v_max])
}

fn noisy_detection(
    setup: &SimSetup,
    b: [f64; 4],
    sigma: f64,
    class: RoadUser,
    rng: &mut Rng,
) -> Option<ImageDetection> {
    let (w, h) = (f64::from(setup.image_width), f64::from(setup.image_height));
    let mut e = [0.0; 4];
    for (i, v) in b.iter().enumerate() {
        e[i] = v + sigma * rng.normal();
    }
    let u1 = e[0].min(e[2]).clamp(0.0, w);
    let u2 = e[0].max(e[2]).clamp(0.0, w);
    let v1 = e[1].min(e[3]).clamp(0.0, h);
    let v2 = e[1].max(e[3]).clamp(0.0, h);
    if u2 - u1 < 2.0 || v2 - v1 < 2.0 {
        return None;
    }
    Some(ImageDetection {
        bbox: BBox::new(u1 as f32, v1 as f32, u2 as f32, v2 as f32),
        score: 0.8,
        label: class.as_str().to_string(),
        class,
    })
}

fn ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9).round() as u64
}

/// Runs one scenario variant with one noise seed. `record` keeps the time series.
pub fn run(s: &Scenario, seed: u64, setup: &SimSetup, record: bool) -> RunResult {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x5EED);
    let mut core = Core::new(
        setup.homography,
        (setup.image_width, setup.image_height),
        setup.tracker.clone(),
        setup.aeb.clone(),
    );
    let mut confirmed_tracks = 0;
    let noise = &s.noise;
    let step_ns: u64 = 5_000_000;
    let dt = step_ns as f64 * 1e-9;
    let frame_ns = ns(1.0 / noise.fps).max(step_ns);
    let latency_ns = ns(noise.latency_ms * 1e-3);
    let end_ns = ns(s.duration_s);
    let brake = setup.brake;

    let mut ego_x = 0.0f64;
    let mut ego_v = s.ego_speed_mps;
    let mut decel = 0.0f64;
    let mut targets: Vec<TargetState> = s
        .targets
        .iter()
        .map(|t| TargetState {
            spec: t.clone(),
            x: t.x_m,
            y: t.y_m,
            v: t.speed_mps,
        })
        .collect();
    let mut fps_done = vec![false; s.false_positives.len()];
    // (deliver at, capture time, detections, ego at capture)
    let mut pipeline_queue: VecDeque<(u64, u64, Vec<ImageDetection>, EgoState)> = VecDeque::new();
    // (effective at, requested deceleration)
    let mut commands: VecDeque<(u64, f64)> = VecDeque::new();
    let mut requested = 0.0f64;
    let mut next_capture = 0u64;
    let mut frame_index = 0usize;
    let mut last_decision: Option<adas_core::aeb::decider::Decision> = None;
    let mut last_detections = 0usize;
    // Per decision, at the simulation time it was made (capture + latency): the same offset for
    // every frame, so leads are as at capture, and times match `first_fcw_s` & co.
    let mut episode_frames: Vec<EpisodeFrame> = Vec::new();

    let mut result = RunResult {
        seed,
        outcome: Outcome::Avoided,
        first_fcw_s: None,
        first_brake_s: None,
        first_full_s: None,
        episodes: Vec::new(),
        min_gap_m: f64::INFINITY,
        active_frames: 0,
        inhibited_frames: 0,
        samples: Vec::new(),
        outcomes: Vec::new(),
    };

    let mut t_ns = 0u64;
    while t_ns <= end_ns {
        let t = t_ns as f64 * 1e-9;
        // 1. Camera capture.
        if t_ns >= next_capture {
            next_capture += frame_ns;
            let frame = frame_index;
            frame_index += 1;
            let mut dets = Vec::new();
            for tg in &targets {
                let (x, y) = (tg.x - ego_x, tg.y);
                let d = x.hypot(y);
                let range = match tg.spec.class {
                    RoadUser::Pedestrian | RoadUser::Cyclist => noise.vru_range_m,
                    _ => noise.car_range_m,
                };
                let dims = (tg.spec.length_m, tg.spec.width_m, tg.spec.height_m);
                let missed = rng.chance(noise.dropout);
                let Some(b) = image_box(setup, x, y, tg.spec.heading_rad, dims) else {
                    continue;
                };
                if d > range || missed || b[3] - b[1] < noise.min_box_height_px {
                    continue;
                }
                let sigma = noise.jitter_px + noise.jitter_px_per_m * d;
                let seq = &tg.spec.class_sequence;
                let label = seq.get(frame % seq.len().max(1)).copied();
                let class = label.unwrap_or(tg.spec.class);
                if let Some(det) = noisy_detection(setup, b, sigma, class, &mut rng) {
                    dets.push(det);
                }
            }
            // Random ghost.
            if rng.chance(noise.false_positive_rate) {
                let class = if rng.chance(0.5) {
                    RoadUser::Car
                } else {
                    RoadUser::Pedestrian
                };
                let (x, y) = (rng.range(5.0, 60.0), rng.range(-10.0, 10.0));
                if let Some(b) = image_box(setup, x, y, 0.0, default_dims(class)) {
                    if let Some(det) = noisy_detection(setup, b, 1.0, class, &mut rng) {
                        dets.push(det);
                    }
                }
            }
            // Scripted one-frame ghosts.
            for (i, fp) in s.false_positives.iter().enumerate() {
                if !fps_done[i] && t >= fp.t_s {
                    fps_done[i] = true;
                    if let Some(b) = image_box(setup, fp.x_m, fp.y_m, 0.0, default_dims(fp.class)) {
                        if let Some(det) = noisy_detection(setup, b, 0.5, fp.class, &mut rng) {
                            dets.push(det);
                        }
                    }
                }
            }
            let ego = EgoState {
                // What the vehicle's inertial sensor reports: no deceleration at standstill.
                accel_mps2: Some(if ego_v > 0.0 { -decel } else { 0.0 }),
                ..EgoState::with_speed(t_ns, ego_v)
            };
            pipeline_queue.push_back((t_ns + latency_ns, t_ns, dets, ego));
        }

        // 2. The daemon's pipeline, when a frame's detections become available.
        while pipeline_queue.front().is_some_and(|f| f.0 <= t_ns) {
            let Some((_, capture_ns, dets, ego)) = pipeline_queue.pop_front() else {
                break;
            };
            let step = core.step(capture_ns, &dets, Some(&ego));
            let decision = step.decision;
            confirmed_tracks = step.tracks.iter().filter(|t| t.confirmed).count();
            if record {
                use adas_record::schema::{DecisionMsg, DetectionsMsg};
                let seq = result.outcomes.len() as u64;
                result.outcomes.push((
                    capture_ns,
                    adas_record::Outcome {
                        detections: DetectionsMsg {
                            seq,
                            width: setup.image_width,
                            height: setup.image_height,
                            detections: dets.clone(),
                        },
                        bev: step.bev,
                        tracks: step.tracks,
                        decision: DecisionMsg {
                            seq,
                            ego_speed_mps: Some(ego.speed_mps),
                            decision,
                        },
                    },
                ));
            }
            if decision.stage >= Stage::Fcw {
                result.active_frames += 1;
                result.first_fcw_s.get_or_insert(t);
            }
            if decision.stage.is_braking() {
                result.first_brake_s.get_or_insert(t);
            }
            if decision.stage == Stage::FullBrake {
                result.first_full_s.get_or_insert(t);
            }
            episode_frames.push(EpisodeFrame::from_decision(t_ns, &decision));
            if decision.inhibit.is_some() {
                result.inhibited_frames += 1;
            }
            commands.push_back((
                t_ns + ns(brake.actuation_delay_s),
                decision.brake_request_mps2,
            ));
            last_decision = Some(decision);
            last_detections = dets.len();
        }

        // 3. Brake actuator.
        while commands.front().is_some_and(|c| c.0 <= t_ns) {
            if let Some((_, r)) = commands.pop_front() {
                requested = r;
            }
        }
        let goal = requested.min(brake.max_decel_mps2).max(0.0);
        if goal > decel {
            decel = (decel + brake.rise_jerk_mps3 * dt).min(goal);
        } else {
            decel = (decel - brake.release_jerk_mps3 * dt).max(goal);
        }
        if ego_v <= 0.0 {
            decel = decel.min(goal);
        }

        // 4. Kinematics.
        let v_new = (ego_v - decel * dt).max(0.0);
        ego_x += 0.5 * (ego_v + v_new) * dt;
        ego_v = v_new;
        for tg in &mut targets {
            tg.step(t, dt);
        }

        // 5. Contact and gaps.
        let ego_box = [
            [ego_x, EGO_HALF_WIDTH_M],
            [ego_x, -EGO_HALF_WIDTH_M],
            [ego_x - EGO_LENGTH_M, -EGO_HALF_WIDTH_M],
            [ego_x - EGO_LENGTH_M, EGO_HALF_WIDTH_M],
        ];
        let mut gap = f64::NAN;
        let mut impact = None;
        for tg in &targets {
            let c = tg.corners();
            if overlap(&ego_box, &c) {
                let v_rel = ego_v - tg.v * tg.spec.heading_rad.cos();
                impact = Some(v_rel.abs() * 3.6);
            }
            let (ymin, ymax) = c.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |a, p| {
                (a.0.min(p[1]), a.1.max(p[1]))
            });
            let xmin = c.iter().fold(f64::INFINITY, |a, p| a.min(p[0]));
            if ymax > -EGO_HALF_WIDTH_M && ymin < EGO_HALF_WIDTH_M && xmin > ego_x - EGO_LENGTH_M {
                let g = (xmin - ego_x).max(0.0);
                gap = if gap.is_nan() { g } else { gap.min(g) };
            }
        }
        if gap.is_finite() {
            result.min_gap_m = result.min_gap_m.min(gap);
        }
        if record && (t_ns.is_multiple_of(20_000_000) || impact.is_some()) {
            let d = last_decision.as_ref();
            let th = d.and_then(|d| d.threat);
            result.samples.push(Sample {
                t_s: t,
                ego_speed_mps: ego_v,
                ego_decel_mps2: decel,
                gap_m: gap,
                stage: d.map_or(Stage::None, |d| d.stage),
                brake_request_mps2: d.map_or(0.0, |d| d.brake_request_mps2),
                ttc_s: th.map_or(f64::NAN, |t| t.ttc_s),
                required_decel_mps2: th.map_or(f64::NAN, |t| t.required_decel_mps2),
                threat_distance_m: th.map_or(f64::NAN, |t| t.distance_m),
                tracks: confirmed_tracks,
                detections: last_detections,
            });
        }
        if let Some(kph) = impact {
            result.outcome = Outcome::Impact { kph };
            result.min_gap_m = 0.0;
            break;
        }
        t_ns += step_ns;
    }
    result.episodes = judge_episodes(&episode_frames);
    result
}

/// Did the run meet the scenario's criterion? `Err` says why not.
pub fn judge(s: &Scenario, r: &RunResult) -> Result<(), String> {
    use super::scenario::Expect;
    // Every braking episode, not only the first: a warning that came, went and left the next
    // braking without its 0.8 s is what this is for.
    let lead_ok = |r: &RunResult| match r.episodes.iter().enumerate().find(|(_, e)| e.short_lead())
    {
        Some((k, e)) if s.fcw_lead_required => Err(format!(
            "braking episode {} of {}: {}",
            k + 1,
            r.episodes.len(),
            e.describe()
        )),
        _ => Ok(()),
    };
    match s.expect {
        Expect::NoActivation => {
            if r.active_frames > 0 {
                Err(format!(
                    "{} active frames (first at {:.2} s)",
                    r.active_frames,
                    r.first_fcw_s.unwrap_or(f64::NAN)
                ))
            } else {
                Ok(())
            }
        }
        Expect::Avoid => match r.outcome {
            Outcome::Impact { kph } => Err(format!("impact at {kph:.1} km/h")),
            Outcome::Avoided => lead_ok(r),
        },
        Expect::Mitigate | Expect::AvoidOrMitigate => match r.outcome {
            Outcome::Impact { kph } if kph > s.max_impact_kph + 1e-9 => {
                Err(format!("impact at {kph:.1} km/h > {:.1}", s.max_impact_kph))
            }
            _ => lead_ok(r),
        },
    }
}
