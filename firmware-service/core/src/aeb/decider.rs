//! The AEB decider: confirmed tracks + ego state → staged warning / braking request.
//!
//! # Threat assessment (per confirmed track, pure)
//! - **Corridor**: the ego path, straight or curved with κ = ω/v (lateral offset of the path at
//!   distance x: κx²/2), `vehicle_width_m/2 + corridor_margin_m` either side, plus a per-class
//!   share of the target's width, out to `max_range_m`. A track is *in the path* if it is inside
//!   now, or — when it moves sideways faster than `lateral_min_speed_mps` and than
//!   `lateral_speed_min_sigma` standard deviations of its lateral-speed estimate — where it will
//!   be when the ego arrives (at min(TTC, `lateral_horizon_s`)): that is what catches a crossing
//!   pedestrian in time, without carrying a noisy parked car into the path.
//! - **TTC** with relative acceleration: smallest t > 0 with `x + vx·t + ½(a_target − a_ego)·t² = 0`
//!   (a braking target counts, an accelerating one is not credited).
//! - **Required deceleration** `a_req`: the constant ego deceleration, starting after
//!   `system_delay_s`, that stops the ego `stop_margin_m` behind the target, with the target
//!   braking at its estimated deceleration until it stops (closed-form, two cases: contact while
//!   both move / after the target has stopped).
//!
//! # Stages (demand from the most critical track)
//! - **full braking** when `a_req ≥ full_decel_mps2` or `TTC ≤ full_ttc_s`;
//! - **partial braking** when `a_req ≥ partial_decel_mps2` or `TTC ≤ partial_ttc_s`;
//! - **FCW** when the partial-braking condition will hold within `fcw_lead_s` if nothing changes
//!   (the same test on the situation extrapolated by `fcw_lead_s`), so the warning comes at least
//!   `fcw_lead_s` (default 1.2 s ≥ the 0.8 s of UN R152) before any braking whenever the threat
//!   develops gradually.
//!
//! # State machine
//! - Escalation to a stage needs the demand to reach it on `fcw_persistence_frames` /
//!   `brake_persistence_frames` consecutive frames; a stage may be skipped (a suddenly appearing
//!   obstacle brakes at once, with the warning).
//! - UN R152 5.2.1.1 ordering: braking — partial or full, both are emergency braking (≥ 4 m/s²)
//!   — starts only once the warning has been on without a break for `min_warning_s` (0.8 s);
//!   until then a braking demand keeps the warning on (it is never suppressed by the cooldown).
//!   The exception is R152's "cannot be anticipated in time", made computable: braking starts at
//!   once when waiting out the rest of the warning time would need at least
//!   `unanticipated_decel_mps2` — `a_req` on the situation extrapolated by the remaining time,
//!   the ego at its speed, the target braking on at its estimated deceleration. Such an episode
//!   is marked `Decision::unanticipated` on all its frames (what `episodes` excuses). Once
//!   braking, full braking follows the demand: the warning rule is about the start of braking.
//! - While braking and still closing in on the threat, the stage does not drop below partial
//!   braking: the ego brakes to the target's speed or to a stop instead of coasting into it.
//! - Release (hysteresis): the stage drops to the demand computed with relaxed thresholds
//!   (decelerations × `release_ratio`, TTCs + `release_ttc_margin_s`) after that relaxed demand has
//!   been lower for `release_frames` consecutive frames — the same when no confirmed track is in
//!   the path any more (relaxed demand none): a threat lost for a frame or two (a track coasting
//!   through a dropout, a crossing pedestrian's predicted path jittering out of the corridor for
//!   a frame) does not end the warning. Braking, though, needs a threat on every frame: without
//!   one it drops to the warning at once.
//! - At standstill (speed < `standstill_speed_mps`) braking is held for `standstill_hold_s`, then
//!   released to the driver.
//! - FCW cooldown: a new warning-only episode (demand FCW, not braking) is not started within
//!   `fcw_cooldown_s` after the last warning-only one ended; a braking demand always gets its
//!   warning (and its braking waits for it as above).
//! - Driver: brake pedal pressed → FCW and partial braking are suppressed (the driver reacts),
//!   full braking stays available (it brakes harder than most drivers); steering away /
//!   kick-down → everything released at once and suppressed.
//! - Inhibit: no ego sample, ego sample invalid, stale (`ego_timeout_ms`), out of range, or frame
//!   time going backwards → stage none, reported with its reason.

use crate::perception::Track;
use adas_plugins::manifest::RoadUser;
use adas_plugins::range::{self, Bound, Numbers, Range, Refused};
use adas_types::{EgoState, InhibitReason};
use serde::Deserialize;

const HALF_WIDTH: Range = Range::new(0.0, 2.0, "m");
const HALF_WIDTH_WHY: &str = "half of the widest road user (a 2.55 m truck) plus mirrors";

/// Share of a target's width counted towards lateral overlap, per class, m.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassHalfWidths {
    pub pedestrian: f64,
    pub cyclist: f64,
    pub car: f64,
    pub truck_bus: f64,
    pub motorcycle: f64,
    pub other: f64,
}

impl Default for ClassHalfWidths {
    fn default() -> Self {
        // The BEV point is the bottom centre of the box, which for a target beside the path is
        // already pulled towards it (the box spans the target's near side), so only part of the
        // physical half width is added: enough for a 50 % overlap car, not so much that a car
        // parked at the kerb or in the next lane enters the path.
        Self {
            pedestrian: 0.3,
            cyclist: 0.3,
            car: 0.5,
            truck_bus: 0.6,
            motorcycle: 0.3,
            other: 0.3,
        }
    }
}

impl ClassHalfWidths {
    pub const RANGES: &'static [Bound<ClassHalfWidths>] = &[
        Bound::new(
            "pedestrian",
            HALF_WIDTH,
            |w| w.pedestrian.numbers(),
            HALF_WIDTH_WHY,
        ),
        Bound::new(
            "cyclist",
            HALF_WIDTH,
            |w| w.cyclist.numbers(),
            HALF_WIDTH_WHY,
        ),
        Bound::new("car", HALF_WIDTH, |w| w.car.numbers(), HALF_WIDTH_WHY),
        Bound::new(
            "truck_bus",
            HALF_WIDTH,
            |w| w.truck_bus.numbers(),
            HALF_WIDTH_WHY,
        ),
        Bound::new(
            "motorcycle",
            HALF_WIDTH,
            |w| w.motorcycle.numbers(),
            HALF_WIDTH_WHY,
        ),
        Bound::new("other", HALF_WIDTH, |w| w.other.numbers(), HALF_WIDTH_WHY),
    ];

    pub fn get(&self, class: RoadUser) -> f64 {
        match class {
            RoadUser::Pedestrian => self.pedestrian,
            RoadUser::Cyclist => self.cyclist,
            RoadUser::Car => self.car,
            RoadUser::TruckBus => self.truck_bus,
            RoadUser::Motorcycle => self.motorcycle,
            RoadUser::Other | RoadUser::Ignored => self.other,
        }
    }
}

/// Decider parameters (config table `[aeb]`). Units in the names; defaults and their reasons in
/// `Default` and `docs/AEB.md`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AebParams {
    /// Ego vehicle width, m.
    pub vehicle_width_m: f64,
    /// Extra lateral margin of the corridor on each side, m.
    pub corridor_margin_m: f64,
    /// Share of each class's width counted towards overlap, m.
    pub target_half_width_m: ClassHalfWidths,
    /// Tracks farther ahead are not acted on, m.
    pub max_range_m: f64,
    /// Lateral prediction horizon, s.
    pub lateral_horizon_s: f64,
    /// Lateral prediction only for targets moving sideways at least this fast, m/s …
    pub lateral_min_speed_mps: f64,
    /// … and faster than this many standard deviations of the lateral-speed estimate.
    pub lateral_speed_min_sigma: f64,
    /// Tracks whose relative-speed standard deviation exceeds this are not acted on, m/s.
    pub max_speed_std_mps: f64,
    /// No new activation below this ego speed, km/h.
    pub min_speed_kph: f64,
    /// Ego samples older than this at the frame's capture time inhibit the decider, ms.
    pub ego_timeout_ms: f64,
    /// Perception latency + actuation delay + brake build-up assumed in `a_req`, s.
    pub system_delay_s: f64,
    /// Distance to keep to the target when stopping, m.
    pub stop_margin_m: f64,
    /// Below this closing speed the TTC is infinite, m/s.
    pub min_closing_speed_mps: f64,
    /// FCW: the partial-braking condition extrapolated this far ahead, s.
    pub fcw_lead_s: f64,
    /// Partial braking when the required deceleration reaches this, m/s².
    pub partial_decel_mps2: f64,
    /// Partial braking when the TTC falls to this, s.
    pub partial_ttc_s: f64,
    /// Full braking when the required deceleration reaches this, m/s².
    pub full_decel_mps2: f64,
    /// Full braking when the TTC falls to this, s.
    pub full_ttc_s: f64,
    /// Deceleration requested in the partial-braking stage, m/s².
    pub partial_brake_mps2: f64,
    /// Deceleration requested in the full-braking stage, m/s².
    pub full_brake_mps2: f64,
    /// Consecutive frames with FCW demand before the warning, frames.
    pub fcw_persistence_frames: u32,
    /// Consecutive frames with braking demand before braking, frames.
    pub brake_persistence_frames: u32,
    /// Consecutive frames below the (relaxed) hold level before a stage is released, frames.
    pub release_frames: u32,
    /// Release thresholds on decelerations are the escalation ones × this, dimensionless (0–1].
    pub release_ratio: f64,
    /// Release thresholds on TTC are the escalation ones + this, s.
    pub release_ttc_margin_s: f64,
    /// No new warning-only episode within this time after the last one ended, s.
    pub fcw_cooldown_s: f64,
    /// Below this speed the ego is at standstill, m/s.
    pub standstill_speed_mps: f64,
    /// Braking is held this long at standstill before it is released to the driver, s.
    pub standstill_hold_s: f64,
    /// Braking (partial or full) starts no earlier than this after the warning began (UN R152
    /// 5.2.1.1) …, s.
    pub min_warning_s: f64,
    /// … unless the collision could not be anticipated in time: waiting out the rest of the
    /// warning time would need at least this deceleration (`a_req` on the situation
    /// extrapolated by the remaining time), m/s².
    pub unanticipated_decel_mps2: f64,
}

impl Default for AebParams {
    fn default() -> Self {
        Self {
            vehicle_width_m: 1.8,
            corridor_margin_m: 0.3,
            target_half_width_m: ClassHalfWidths::default(),
            // A monocular ground projection at 80 m is ±3 m per pixel row; beyond it the velocity
            // estimate is not good enough to act on.
            max_range_m: 80.0,
            lateral_horizon_s: 2.0,
            lateral_min_speed_mps: 0.5,
            lateral_speed_min_sigma: 1.5,
            max_speed_std_mps: 3.0,
            // Euro NCAP car-to-car tests start at 10 km/h; below 5 km/h nothing new is started.
            min_speed_kph: 5.0,
            ego_timeout_ms: 150.0,
            // 100 ms detection latency + 150 ms actuation delay + ~150 ms build-up (half the ramp).
            system_delay_s: 0.4,
            stop_margin_m: 1.5,
            min_closing_speed_mps: 0.5,
            // ≥ 0.8 s (UN R152) plus margin for persistence and estimation noise.
            fcw_lead_s: 1.2,
            // Partial braking at 3.5 m/s² (≈ 0.36 g, a firm driver brake; below ISO 15623's
            // 0.68 g ceiling for a warning criterion) or TTC 1.4 s (low speeds, where a_req
            // says little).
            partial_decel_mps2: 3.5,
            partial_ttc_s: 1.4,
            // Full braking when even a hard driver brake (5.5 m/s² ≈ 0.56 g) would be needed, or
            // TTC 0.9 s (the last moment a full stop from 10–20 km/h still works with the delay).
            full_decel_mps2: 5.5,
            full_ttc_s: 0.9,
            partial_brake_mps2: 4.0,
            // About 0.92 g, what a passenger car's brakes deliver on dry asphalt.
            full_brake_mps2: 9.0,
            // 2 frames at 20 Hz = 50 ms: one noisy frame cannot trigger anything.
            fcw_persistence_frames: 2,
            brake_persistence_frames: 2,
            release_frames: 4,
            release_ratio: 0.7,
            release_ttc_margin_s: 0.3,
            fcw_cooldown_s: 3.0,
            standstill_speed_mps: 0.3,
            standstill_hold_s: 1.0,
            // UN R152 5.2.1.1: the collision warning at least 0.8 s before emergency braking.
            min_warning_s: 0.8,
            // `full_brake_mps2` less 2 m/s² for the lag of a braking lead's estimated
            // deceleration (CCRb 12 m −6 m/s²: about half the true value when the braking is
            // decided). With 9 m/s², 31 of 2000 CCRb 12 m −6 runs hit above 20 km/h (up to
            // 25 km/h) while the warning ran; with 7, none above 18.5 km/h (docs/AEB.md).
            unanticipated_decel_mps2: 7.0,
        }
    }
}

impl AebParams {
    /// Every number's physical range, declared once (docs/RELIABILITY.md lists them).
    pub const RANGES: &'static [Bound<AebParams>] = &[
        Bound::new(
            "vehicle_width_m",
            Range::new(1.0, 3.0, "m"),
            |p| p.vehicle_width_m.numbers(),
            "small cars are 1.5 m wide, trucks at most 2.55 m (EU)",
        ),
        Bound::new(
            "corridor_margin_m",
            Range::new(0.0, 2.0, "m"),
            |p| p.corridor_margin_m.numbers(),
            "beyond 2 m a side the corridor covers the next lane",
        ),
        Bound::new(
            "max_range_m",
            Range::new(5.0, 250.0, "m"),
            |p| p.max_range_m.numbers(),
            "a monocular projection is ±3 m per pixel row at 80 m; 250 m is stopping distance \
             at 200 km/h",
        ),
        Bound::new(
            "lateral_horizon_s",
            Range::new(0.0, 5.0, "s"),
            |p| p.lateral_horizon_s.numbers(),
            "lateral motion is not predictable for longer",
        ),
        Bound::new(
            "lateral_min_speed_mps",
            Range::new(0.0, 5.0, "m/s"),
            |p| p.lateral_min_speed_mps.numbers(),
            "a running pedestrian crosses at about 5 m/s",
        ),
        Bound::new(
            "lateral_speed_min_sigma",
            Range::new(0.0, 10.0, "σ"),
            |p| p.lateral_speed_min_sigma.numbers(),
            "beyond 10 σ nothing ever counts as moving sideways",
        ),
        Bound::new(
            "max_speed_std_mps",
            Range::new(0.1, 20.0, "m/s"),
            |p| p.max_speed_std_mps.numbers(),
            "an uncertainty of 20 m/s (72 km/h) says nothing about the speed",
        ),
        Bound::new(
            "min_speed_kph",
            Range::new(0.0, 100.0, "km/h"),
            |p| p.min_speed_kph.numbers(),
            "AEB tests run from 10 km/h; above 100 km/h AEB would be off in town",
        ),
        Bound::new(
            "ego_timeout_ms",
            Range::new(10.0, 1000.0, "ms"),
            |p| p.ego_timeout_ms.numbers(),
            "ego samples come every 20 ms; at 100 km/h 1 s is 28 m driven on an old speed",
        ),
        Bound::new(
            "system_delay_s",
            Range::new(0.0, 2.0, "s"),
            |p| p.system_delay_s.numbers(),
            "detection + actuation + brake build-up is about 0.4 s",
        ),
        Bound::new(
            "stop_margin_m",
            Range::new(0.0, 10.0, "m"),
            |p| p.stop_margin_m.numbers(),
            "a gap to keep when stopping; more brakes for nothing",
        ),
        Bound::new(
            "min_closing_speed_mps",
            Range::new(0.01, 5.0, "m/s"),
            |p| p.min_closing_speed_mps.numbers(),
            "0 divides by zero in the TTC; above 5 m/s real threats get no TTC",
        ),
        Bound::new(
            "fcw_lead_s",
            Range::new(0.0, 5.0, "s"),
            |p| p.fcw_lead_s.numbers(),
            "a driver reacts within about 1.5 s; earlier warnings are false ones",
        ),
        Bound::new(
            "partial_decel_mps2",
            Range::new(0.5, 12.0, "m/s²"),
            |p| p.partial_decel_mps2.numbers(),
            "tyres on dry asphalt give at most about 1.2 g",
        ),
        Bound::new(
            "partial_ttc_s",
            Range::new(0.0, 10.0, "s"),
            |p| p.partial_ttc_s.numbers(),
            "braking 10 s ahead of a collision is a false activation",
        ),
        Bound::new(
            "full_decel_mps2",
            Range::new(0.5, 12.0, "m/s²"),
            |p| p.full_decel_mps2.numbers(),
            "tyre grip; also ≥ partial_decel_mps2",
        ),
        Bound::new(
            "full_ttc_s",
            Range::new(0.0, 10.0, "s"),
            |p| p.full_ttc_s.numbers(),
            "as partial_ttc_s; also ≤ partial_ttc_s",
        ),
        Bound::new(
            "partial_brake_mps2",
            Range::new(0.5, 12.0, "m/s²"),
            |p| p.partial_brake_mps2.numbers(),
            "tyre grip",
        ),
        Bound::new(
            "full_brake_mps2",
            Range::new(0.5, 12.0, "m/s²"),
            |p| p.full_brake_mps2.numbers(),
            "tyre grip; also ≥ partial_brake_mps2",
        ),
        Bound::new(
            "fcw_persistence_frames",
            Range::new(1.0, 50.0, "frames"),
            |p| p.fcw_persistence_frames.numbers(),
            "at 20 Hz 50 frames is 2.5 s: a warning that late is none",
        ),
        Bound::new(
            "brake_persistence_frames",
            Range::new(1.0, 50.0, "frames"),
            |p| p.brake_persistence_frames.numbers(),
            "as fcw_persistence_frames",
        ),
        Bound::new(
            "release_frames",
            Range::new(1.0, 100.0, "frames"),
            |p| p.release_frames.numbers(),
            "at 20 Hz 100 frames is 5 s of holding a stage without a threat",
        ),
        Bound::new(
            "release_ratio",
            Range::new(0.1, 1.0, ""),
            |p| p.release_ratio.numbers(),
            "a share of the escalation thresholds; above 1 there is no hysteresis",
        ),
        Bound::new(
            "release_ttc_margin_s",
            Range::new(0.0, 5.0, "s"),
            |p| p.release_ttc_margin_s.numbers(),
            "as lateral_horizon_s",
        ),
        Bound::new(
            "fcw_cooldown_s",
            Range::new(0.0, 60.0, "s"),
            |p| p.fcw_cooldown_s.numbers(),
            "a minute without a new warning is a blind minute",
        ),
        Bound::new(
            "standstill_speed_mps",
            Range::new(0.0, 2.0, "m/s"),
            |p| p.standstill_speed_mps.numbers(),
            "2 m/s (7 km/h) is walking pace, not standing",
        ),
        Bound::new(
            "standstill_hold_s",
            Range::new(0.0, 60.0, "s"),
            |p| p.standstill_hold_s.numbers(),
            "the driver takes over within seconds",
        ),
        Bound::new(
            "min_warning_s",
            Range::new(0.0, 5.0, "s"),
            |p| p.min_warning_s.numbers(),
            "UN R152 asks for 0.8 s; 5 s would never brake in time",
        ),
        Bound::new(
            "unanticipated_decel_mps2",
            Range::new(0.5, 12.0, "m/s²"),
            |p| p.unanticipated_decel_mps2.numbers(),
            "tyre grip; also between full_decel_mps2 and full_brake_mps2",
        ),
    ];

    /// Checks every value against its range and the rules between them; the refusal names the
    /// key relative to `[aeb]`.
    pub fn validate(&self) -> Result<(), Refused> {
        range::check(self, Self::RANGES)?;
        range::check(&self.target_half_width_m, ClassHalfWidths::RANGES)
            .map_err(|r| r.within("target_half_width_m"))?;
        let rules = [
            (
                "full_decel_mps2",
                self.full_decel_mps2 >= self.partial_decel_mps2,
                "must be ≥ partial_decel_mps2",
            ),
            (
                "full_ttc_s",
                self.full_ttc_s <= self.partial_ttc_s,
                "must be ≤ partial_ttc_s",
            ),
            (
                "full_brake_mps2",
                self.full_brake_mps2 >= self.partial_brake_mps2,
                "must be ≥ partial_brake_mps2",
            ),
            (
                "unanticipated_decel_mps2",
                self.unanticipated_decel_mps2 >= self.full_decel_mps2
                    && self.unanticipated_decel_mps2 <= self.full_brake_mps2,
                "must be ≥ full_decel_mps2 and ≤ full_brake_mps2",
            ),
        ];
        match rules.into_iter().find(|(_, ok, _)| !ok) {
            Some((key, _, rule)) => Err(Refused::new(key, rule)),
            None => Ok(()),
        }
    }

    fn corridor_half_width(&self) -> f64 {
        self.vehicle_width_m / 2.0 + self.corridor_margin_m
    }
}

/// Escalation stages, ordered.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    #[default]
    None = 0,
    /// Forward collision warning (acoustic/visual), no braking.
    Fcw = 1,
    /// Partial braking (`partial_brake_mps2`), warning on.
    PartialBrake = 2,
    /// Full braking (`full_brake_mps2`), warning on.
    FullBrake = 3,
}

impl Stage {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "none",
            Stage::Fcw => "fcw",
            Stage::PartialBrake => "partial",
            Stage::FullBrake => "full",
        }
    }

    pub fn is_braking(self) -> bool {
        self >= Stage::PartialBrake
    }
}

/// Why a demand was not acted on although the inputs are good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suppression {
    /// Brake pedal: FCW and partial braking suppressed.
    DriverBraking,
    /// Steering away / kick-down: everything suppressed.
    DriverOverride,
    /// Ego below `min_speed_kph`: nothing new is started.
    BelowMinSpeed,
    /// A new warning within `fcw_cooldown_s` of the last one.
    FcwCooldown,
}

impl Suppression {
    pub fn as_str(self) -> &'static str {
        match self {
            Suppression::DriverBraking => "driver braking",
            Suppression::DriverOverride => "driver override",
            Suppression::BelowMinSpeed => "below minimum speed",
            Suppression::FcwCooldown => "fcw cooldown",
        }
    }
}

/// The corridor used for a decision.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Corridor {
    /// Half width (without the target share), m.
    pub half_width_m: f64,
    pub length_m: f64,
    /// Path curvature, 1/m, positive left.
    pub curvature_per_m: f64,
}

impl Corridor {
    /// Lateral offset of the path centre at distance `x`, m.
    pub fn centre_y(&self, x_m: f64) -> f64 {
        0.5 * self.curvature_per_m * x_m * x_m
    }

    /// Is the point inside (with `extra_m` added to the half width)?
    pub fn contains(&self, x_m: f64, y_m: f64, extra_m: f64) -> bool {
        (0.0..=self.length_m).contains(&x_m)
            && (y_m - self.centre_y(x_m)).abs() <= self.half_width_m + extra_m
    }
}

/// The most critical track in the path.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Threat {
    pub track_id: u32,
    /// BEV object (detection) the track was updated with this frame, if any.
    pub detection: Option<usize>,
    pub class: RoadUser,
    pub distance_m: f64,
    pub lateral_m: f64,
    /// Positive when closing, m/s.
    pub closing_speed_mps: f64,
    /// Time to collision, s (`f64::INFINITY` when not closing; `null` in JSON).
    #[serde(with = "adas_types::inf_as_null")]
    pub ttc_s: f64,
    /// Deceleration needed to stop `stop_margin_m` behind it, m/s² (`f64::INFINITY` once the
    /// gap is gone: no deceleration suffices; `null` in JSON, as recordings hold it).
    #[serde(with = "adas_types::inf_as_null")]
    pub required_decel_mps2: f64,
}

/// Everything decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Decision {
    pub t_ns: u64,
    pub stage: Stage,
    /// The demand of this frame (after suppression), before persistence and before braking
    /// waits for the warning (`min_warning_s`).
    pub demand: Stage,
    /// The demand with relaxed (release) thresholds.
    pub hold_demand: Stage,
    /// Requested deceleration, m/s² (0 unless braking).
    pub brake_request_mps2: f64,
    pub inhibit: Option<InhibitReason>,
    pub suppression: Option<Suppression>,
    pub corridor: Corridor,
    pub threat: Option<Threat>,
    /// The current braking episode started before the warning had run `min_warning_s`, because
    /// the collision could not be anticipated in time (UN R152 5.2.1.1's exception: waiting
    /// would have needed more than `full_brake_mps2`). Set on every frame of such an episode,
    /// false otherwise (and in recordings made before this field existed).
    #[serde(default)]
    pub unanticipated: bool,
}

/// A decision as the decider would make it for `stage` (demand and hold equal to it, 4 m/s²
/// while braking, the default 80 m corridor), for tests of what consumes decisions (feature
/// `test-support` for other crates' tests).
#[cfg(any(test, feature = "test-support"))]
impl Decision {
    pub fn for_test(t_ns: u64, stage: Stage, threat: Option<Threat>) -> Decision {
        Decision {
            t_ns,
            stage,
            demand: stage,
            hold_demand: stage,
            brake_request_mps2: if stage.is_braking() { 4.0 } else { 0.0 },
            inhibit: None,
            suppression: None,
            corridor: Corridor {
                half_width_m: 1.2,
                length_m: 80.0,
                curvature_per_m: 0.0,
            },
            threat,
            unanticipated: false,
        }
    }
}

impl Decision {
    pub fn warning(&self) -> bool {
        self.stage >= Stage::Fcw
    }
}

/// Assessment of one track (pure).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Assessment {
    threat: Threat,
    /// Required deceleration with the situation extrapolated by `fcw_lead_s`.
    a_req_lead: f64,
    kin: Kinematics,
}

/// What the required deceleration is computed from: distance, ego speed, target speed over
/// ground and the target's braking (all ≥ 0).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Kinematics {
    x_m: f64,
    v_ego: f64,
    v_target: f64,
    b_target: f64,
}

impl Kinematics {
    /// `a_req` (the stop behind the target after `system_delay_s`, `stop_margin_m` short)
    /// with the situation extrapolated by `dt_s`: the ego keeps its speed, the target keeps
    /// braking at its estimated deceleration until it stops.
    fn required_decel_after(&self, dt_s: f64, p: &AebParams) -> f64 {
        let dt = dt_s.max(0.0);
        let (v_t, b_t) = (self.v_target, self.b_target);
        let (s_t, v_t_after) = if b_t > 1e-9 && v_t <= b_t * dt {
            (v_t * v_t / (2.0 * b_t), 0.0)
        } else {
            (v_t * dt - 0.5 * b_t * dt * dt, v_t - b_t * dt)
        };
        let x = self.x_m - self.v_ego * dt + s_t;
        let v_c = (self.v_ego - v_t_after).max(0.0);
        let gap = x - v_c * p.system_delay_s - p.stop_margin_m;
        required_decel(gap, self.v_ego, v_t_after, b_t)
    }
}

/// Time to collision with relative acceleration: smallest t > 0 with x + v·t + ½a·t² = 0.
pub fn ttc(distance_m: f64, rel_speed_mps: f64, rel_accel_mps2: f64, min_closing_mps: f64) -> f64 {
    let (d, v, a) = (distance_m.max(0.0), rel_speed_mps, rel_accel_mps2);
    if !(d.is_finite() && v.is_finite() && a.is_finite()) {
        return f64::INFINITY;
    }
    if a.abs() < 1e-6 {
        return if -v >= min_closing_mps {
            d / -v
        } else {
            f64::INFINITY
        };
    }
    let disc = v * v - 2.0 * a * d;
    if disc < 0.0 {
        return f64::INFINITY;
    }
    let sq = disc.sqrt();
    let roots = [(-v - sq) / a, (-v + sq) / a];
    let t = roots
        .iter()
        .copied()
        .filter(|t| *t >= 0.0 && t.is_finite())
        .fold(f64::INFINITY, f64::min);
    // A hair of closing speed (noise) does not make a TTC.
    if t.is_finite() && -v < min_closing_mps && a <= 0.0 && t > 10.0 {
        return f64::INFINITY;
    }
    t
}

/// Constant ego deceleration (m/s², ≥ 0) that avoids contact with a target `gap_m` ahead (gap
/// already reduced by the stop margin and the delay travel), ego at `v_ego`, target at `v_target`
/// (over ground, ≥ 0) braking at `b_target` ≥ 0 until it stops.
pub fn required_decel(gap_m: f64, v_ego: f64, v_target: f64, b_target: f64) -> f64 {
    let v_e = v_ego.max(0.0);
    let v_t = v_target.max(0.0);
    let b_t = b_target.max(0.0);
    if v_e <= 0.0 {
        return 0.0;
    }
    if gap_m <= 0.01 {
        return f64::INFINITY;
    }
    let v_c = v_e - v_t;
    // Case 1: contact while both move; relative motion with relative deceleration a − b_t.
    let a1 = if v_c > 0.0 {
        b_t + v_c * v_c / (2.0 * gap_m)
    } else {
        0.0
    };
    let target_moves_long_enough = if b_t <= 1e-9 {
        true
    } else {
        // Relative stop at t* = 2·gap/v_c must come before the target stops (v_t / b_t).
        v_c > 0.0 && 2.0 * gap_m / v_c <= v_t / b_t
    };
    if target_moves_long_enough {
        return a1;
    }
    // Case 2: the target stops first; the ego must stop within gap + the target's stopping distance.
    let s_t = v_t * v_t / (2.0 * b_t);
    v_e * v_e / (2.0 * (gap_m + s_t))
}

fn assess(track: &Track, ego: &EgoState, corridor: &Corridor, p: &AebParams) -> Option<Assessment> {
    if !track.confirmed || !track.is_finite() || track.class == RoadUser::Ignored {
        return None;
    }
    if track.x_m < 0.0
        || track.x_m > p.max_range_m
        || track.cov[2][2].max(0.0).sqrt() > p.max_speed_std_mps
    {
        return None;
    }
    let v_e = ego.speed_mps.max(0.0);
    let a_e = ego.accel_or_zero();
    let v_c = -track.vx_mps;
    let v_t = (v_e + track.vx_mps).max(0.0);
    // Only a braking target is taken into account (an accelerating one gets no credit).
    let a_t = track.ax_mps2.min(0.0);
    let b_t = if v_t > 0.1 { -a_t } else { 0.0 };
    let rel_a = if v_t > 0.1 { a_t - a_e } else { -a_e };
    let t = ttc(track.x_m, track.vx_mps, rel_a, p.min_closing_speed_mps);

    let extra = p.target_half_width_m.get(track.class);
    let inside_now = corridor.contains(track.x_m, track.y_m, extra);
    // Lateral prediction only for a clearly measured sideways motion (noise on a young or far
    // track must not carry a parked car into the path).
    let vy_std = track.cov[3][3].max(0.0).sqrt();
    let inside_later = if track.vy_mps.abs()
        >= p.lateral_min_speed_mps
            .max(p.lateral_speed_min_sigma * vy_std)
    {
        let h = t.min(p.lateral_horizon_s);
        let x = (track.x_m + track.vx_mps * h).max(0.0);
        corridor.contains(
            x.min(corridor.length_m),
            track.y_m + track.vy_mps * h,
            extra,
        )
    } else {
        false
    };
    if !(inside_now || inside_later) {
        return None;
    }
    let gap =
        |extra_s: f64| track.x_m - v_c.max(0.0) * (p.system_delay_s + extra_s) - p.stop_margin_m;
    let a_req = required_decel(gap(0.0), v_e, v_t, b_t);
    let kin = Kinematics {
        x_m: track.x_m,
        v_ego: v_e,
        v_target: v_t,
        b_target: b_t,
    };
    let a_req_lead = required_decel(gap(p.fcw_lead_s), v_e, v_t, b_t);
    Some(Assessment {
        kin,
        threat: Threat {
            track_id: track.id,
            detection: track.detection,
            class: track.class,
            distance_m: track.x_m,
            lateral_m: track.y_m,
            closing_speed_mps: v_c,
            ttc_s: t,
            required_decel_mps2: a_req,
        },
        a_req_lead,
    })
}

fn demand(a: &Assessment, p: &AebParams, relaxed: bool) -> Stage {
    let (r, m) = if relaxed {
        (p.release_ratio, p.release_ttc_margin_s)
    } else {
        (1.0, 0.0)
    };
    let t = a.threat.ttc_s;
    let a_req = a.threat.required_decel_mps2;
    if a_req >= p.full_decel_mps2 * r || t <= p.full_ttc_s + m {
        Stage::FullBrake
    } else if a_req >= p.partial_decel_mps2 * r || t <= p.partial_ttc_s + m {
        Stage::PartialBrake
    } else if a.a_req_lead >= p.partial_decel_mps2 * r || t - p.fcw_lead_s <= p.partial_ttc_s + m {
        Stage::Fcw
    } else {
        Stage::None
    }
}

/// The stateful decider. Pure: its only inputs are the arguments of [`AebDecider::step`].
#[derive(Debug, Clone)]
pub struct AebDecider {
    params: AebParams,
    stage: Stage,
    /// Consecutive frames with demand ≥ FCW, ≥ partial, ≥ full.
    up_counts: [u32; 3],
    down_count: u32,
    last_t_ns: Option<u64>,
    episode_warning_only: bool,
    last_episode_end_ns: Option<u64>,
    standstill_since_ns: Option<u64>,
    /// When the current warning episode started.
    warning_since_ns: Option<u64>,
    /// The current braking episode started under the "not anticipated in time" exception.
    braking_unanticipated: bool,
}

impl AebDecider {
    pub fn new(params: AebParams) -> AebDecider {
        AebDecider {
            params,
            stage: Stage::None,
            up_counts: [0; 3],
            down_count: 0,
            last_t_ns: None,
            episode_warning_only: true,
            last_episode_end_ns: None,
            standstill_since_ns: None,
            warning_since_ns: None,
            braking_unanticipated: false,
        }
    }

    pub fn params(&self) -> &AebParams {
        &self.params
    }

    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The corridor for an ego sample.
    pub fn corridor(&self, ego: Option<&EgoState>) -> Corridor {
        Corridor {
            half_width_m: self.params.corridor_half_width(),
            length_m: self.params.max_range_m,
            curvature_per_m: ego.map(|e| e.curvature(2.0)).unwrap_or(0.0),
        }
    }

    fn reset(&mut self, t_ns: u64) {
        if self.stage != Stage::None {
            self.last_episode_end_ns = Some(t_ns);
        }
        self.stage = Stage::None;
        self.up_counts = [0; 3];
        self.down_count = 0;
        self.standstill_since_ns = None;
        self.warning_since_ns = None;
        self.braking_unanticipated = false;
    }

    /// One frame at capture time `t_ns`: the tracker's tracks and the latest ego sample.
    pub fn step(&mut self, t_ns: u64, tracks: &[Track], ego: Option<&EgoState>) -> Decision {
        let p = self.params.clone();
        let corridor = self.corridor(ego);
        let went_back = self.last_t_ns.is_some_and(|last| t_ns < last);
        self.last_t_ns = Some(self.last_t_ns.map_or(t_ns, |l| l.max(t_ns)));
        let max_age_ns = (p.ego_timeout_ms * 1e6).max(0.0) as u64;
        let inhibit = match ego {
            None => Some(InhibitReason::NoEgo),
            Some(_) if went_back => Some(InhibitReason::TimeWentBack),
            Some(e) => e.check(t_ns, max_age_ns).err(),
        };
        let mut out = Decision {
            t_ns,
            stage: Stage::None,
            demand: Stage::None,
            hold_demand: Stage::None,
            brake_request_mps2: 0.0,
            inhibit,
            suppression: None,
            corridor,
            threat: None,
            unanticipated: false,
        };
        let Some(ego) = ego.filter(|_| inhibit.is_none()) else {
            self.reset(t_ns);
            return out;
        };

        // The most critical track in the path.
        let mut best: Option<(Stage, Assessment)> = None;
        for tr in tracks {
            let Some(a) = assess(tr, ego, &corridor, &p) else {
                continue;
            };
            let d = demand(&a, &p, false);
            let better = match &best {
                None => true,
                Some((bd, ba)) => {
                    (d, -a.threat.ttc_s.min(1e9), a.threat.required_decel_mps2)
                        > (
                            *bd,
                            -ba.threat.ttc_s.min(1e9),
                            ba.threat.required_decel_mps2,
                        )
                }
            };
            if better {
                best = Some((d, a));
            }
        }
        let (mut raw, mut hold) = match &best {
            Some((d, a)) => (*d, demand(a, &p, true)),
            None => (Stage::None, Stage::None),
        };
        if let Some((_, a)) = &best {
            // While braking and still closing in, keep at least partial braking: brake to the
            // target's speed (or to a stop), do not coast into it again.
            if self.stage.is_braking() && a.threat.closing_speed_mps > p.min_closing_speed_mps {
                hold = hold.max(Stage::PartialBrake);
            }
        }
        out.threat = best.map(|(_, a)| a.threat);

        // Driver and operating range.
        let mut suppression = None;
        if ego.steering_away {
            suppression = Some(Suppression::DriverOverride);
            raw = Stage::None;
            hold = Stage::None;
        } else if ego.brake_pedal && raw < Stage::FullBrake {
            if raw > Stage::None {
                suppression = Some(Suppression::DriverBraking);
            }
            raw = Stage::None;
            if hold < Stage::FullBrake {
                hold = Stage::None;
            }
        }
        if ego.speed_mps * 3.6 < p.min_speed_kph && raw > self.stage {
            suppression = suppression.or(Some(Suppression::BelowMinSpeed));
            raw = self.stage;
        }

        // Escalation with persistence.
        for (i, c) in self.up_counts.iter_mut().enumerate() {
            let level = i as u8 + 1;
            *c = if raw.code() >= level {
                c.saturating_add(1)
            } else {
                0
            };
        }
        let needed = |s: Stage| match s {
            Stage::Fcw => p.fcw_persistence_frames,
            _ => p.brake_persistence_frames,
        };
        let mut target = self.stage;
        for s in [Stage::FullBrake, Stage::PartialBrake, Stage::Fcw] {
            if s > self.stage && self.up_counts[s.code() as usize - 1] >= needed(s) {
                target = s;
                break;
            }
        }
        // UN R152 5.2.1.1: braking starts only once the warning has run `min_warning_s`, unless
        // the collision could not be anticipated in time for that: waiting out the rest of the
        // warning time would need at least `unanticipated_decel_mps2`. Meanwhile the warning is
        // on (a braking demand implies the warning).
        let mut onset_unanticipated = false;
        if target.is_braking() && !self.stage.is_braking() {
            let warned_s = self
                .warning_since_ns
                .map_or(0.0, |since| t_ns.saturating_sub(since) as f64 * 1e-9);
            let remaining_s = p.min_warning_s - warned_s;
            if remaining_s > 1e-9 {
                let cannot_wait = best.as_ref().is_some_and(|(_, a)| {
                    a.kin.required_decel_after(remaining_s, &p) >= p.unanticipated_decel_mps2
                });
                if cannot_wait {
                    onset_unanticipated = true;
                } else {
                    target = Stage::Fcw;
                }
            }
        }
        // The cooldown holds back only a new warning-only episode, never a warning that braking
        // will have to wait for: not with a braking demand, nor when the partial-braking
        // condition holds on the situation extrapolated by `min_warning_s` (held back any
        // longer, the warning could no longer run its time before the braking).
        let braking_bound = best.as_ref().is_some_and(|(_, a)| {
            a.kin.required_decel_after(p.min_warning_s, &p) >= p.partial_decel_mps2
                || a.threat.ttc_s - p.min_warning_s <= p.partial_ttc_s
        });
        if target == Stage::Fcw
            && self.stage == Stage::None
            && raw < Stage::PartialBrake
            && !braking_bound
        {
            let cooling = self
                .last_episode_end_ns
                .is_some_and(|end| (t_ns.saturating_sub(end) as f64) * 1e-9 < p.fcw_cooldown_s);
            if cooling && self.episode_warning_only {
                suppression = suppression.or(Some(Suppression::FcwCooldown));
                target = Stage::None;
            }
        }
        if target > self.stage {
            if self.stage == Stage::None {
                self.episode_warning_only = true;
                self.warning_since_ns = Some(t_ns);
            }
            if target.is_braking() && !self.stage.is_braking() {
                self.braking_unanticipated = onset_unanticipated;
            }
            self.stage = target;
            self.down_count = 0;
        } else if self.stage > Stage::None {
            // Release.
            if suppression == Some(Suppression::DriverOverride) {
                self.reset(t_ns);
            } else if self.stage.is_braking() && ego.speed_mps < p.standstill_speed_mps {
                let since = *self.standstill_since_ns.get_or_insert(t_ns);
                if (t_ns.saturating_sub(since) as f64) * 1e-9 >= p.standstill_hold_s {
                    self.reset(t_ns);
                }
            } else if ego.brake_pedal && self.stage < Stage::FullBrake {
                self.reset(t_ns);
            } else if hold < self.stage {
                self.down_count += 1;
                if self.down_count >= p.release_frames {
                    if hold == Stage::None {
                        // Ends the episode (and records its end for the cooldown).
                        self.reset(t_ns);
                    } else {
                        self.stage = hold;
                        self.down_count = 0;
                    }
                }
            } else {
                self.down_count = 0;
            }
            // Never braking without a threat: braking stops at once, the warning stays until
            // the hysteresis above releases it (a threat lost for a frame or two — a track
            // that coasts, or steps out of the predicted path — does not end the warning).
            if out.threat.is_none() && self.stage.is_braking() {
                self.stage = Stage::Fcw;
            }
        }
        if self.stage.is_braking() {
            self.episode_warning_only = false;
        } else {
            self.standstill_since_ns = None;
            self.braking_unanticipated = false;
        }

        out.stage = self.stage;
        out.demand = raw;
        out.hold_demand = hold;
        out.suppression = suppression;
        out.unanticipated = self.braking_unanticipated;
        out.brake_request_mps2 = match self.stage {
            Stage::PartialBrake => p.partial_brake_mps2,
            Stage::FullBrake => p.full_brake_mps2,
            _ => 0.0,
        };
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_threat_inside_the_stop_margin_reads_back_from_json() {
        // No gap left: no deceleration suffices (∞), and the target is not closing (TTC ∞).
        assert!(required_decel(0.0, 10.0, 4.0, 0.0).is_infinite());
        let t = Threat {
            track_id: 1,
            detection: None,
            class: RoadUser::Car,
            distance_m: 2.0,
            lateral_m: 0.0,
            closing_speed_mps: 0.0,
            ttc_s: f64::INFINITY,
            required_decel_mps2: f64::INFINITY,
        };
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains("\"required_decel_mps2\":null"), "{json}");
        assert_eq!(serde_json::from_str::<Threat>(&json).unwrap(), t);
    }

    fn track(id: u32, x: f64, y: f64, vx: f64, vy: f64) -> Track {
        let mut cov = [[0.0; 5]; 5];
        for (i, row) in cov.iter_mut().enumerate() {
            row[i] = 0.1;
        }
        Track {
            id,
            class: RoadUser::Car,
            x_m: x,
            y_m: y,
            vx_mps: vx,
            vy_mps: vy,
            ax_mps2: 0.0,
            cov,
            age: 10,
            hits: 10,
            misses: 0,
            confirmed: true,
            detection: None,
        }
    }

    #[test]
    fn ttc_table() {
        let cases = [
            // d, v_rel, a_rel, expected
            (20.0, -10.0, 0.0, 2.0),
            (20.0, 10.0, 0.0, f64::INFINITY),
            (20.0, -0.2, 0.0, f64::INFINITY),
            // closing at 10 m/s, the relative motion decelerates at 2 m/s²: 20 = 10t − t² → t = 2.76
            (20.0, -10.0, 2.0, 2.763_932),
            // relative motion stops before contact: 100 m at 10 m/s with +2 m/s² → never
            (100.0, -10.0, 2.0, f64::INFINITY),
            // same speed, target braking: 10 = ½·6·t² → t = 1.826
            (10.0, 0.0, -6.0, 1.825_742),
        ];
        for (d, v, a, want) in cases {
            let got = ttc(d, v, a, 0.5);
            if want.is_finite() {
                assert!(
                    (got - want).abs() < 1e-5,
                    "ttc({d},{v},{a}) = {got}, want {want}"
                );
            } else {
                assert!(got.is_infinite(), "ttc({d},{v},{a}) = {got}");
            }
        }
    }

    #[test]
    fn required_decel_table() {
        let cases = [
            // gap, v_ego, v_target, b_target, expected
            (25.0, 10.0, 0.0, 0.0, 2.0),  // stationary: v²/2d
            (10.0, 20.0, 10.0, 0.0, 5.0), // moving: v_c²/2d
            (10.0, 10.0, 10.0, 0.0, 0.0), // same speed, not braking
            // same speed 14 m/s, target brakes at 6 and stops in 16.33 m: 196/(2·(10+16.33)) = 3.72
            (10.0, 14.0, 14.0, 6.0, 3.721_519),
            // closing 5 m/s, target braking 2, long stop: b + v_c²/2d = 2 + 25/40 = 2.625
            (20.0, 25.0, 20.0, 2.0, 2.625),
            (0.0, 10.0, 0.0, 0.0, f64::INFINITY),
            (10.0, 0.0, 0.0, 0.0, 0.0),
        ];
        for (g, ve, vt, bt, want) in cases {
            let got = required_decel(g, ve, vt, bt);
            if want.is_finite() {
                assert!(
                    (got - want).abs() < 1e-5,
                    "a_req({g},{ve},{vt},{bt}) = {got}, want {want}"
                );
            } else {
                assert!(got.is_infinite());
            }
        }
    }

    fn run(decider: &mut AebDecider, frames: &[(Vec<Track>, EgoState)]) -> Vec<Decision> {
        frames
            .iter()
            .enumerate()
            .map(|(k, (tracks, ego))| decider.step(k as u64 * 50 * MS, tracks, Some(ego)))
            .collect()
    }

    fn ego_at(k: u64, v: f64) -> EgoState {
        EgoState::with_speed(k * 50 * MS, v)
    }

    #[test]
    fn stationary_target_escalates_through_the_stages_in_order() {
        let p = AebParams::default();
        let mut d = AebDecider::new(p.clone());
        let v = 13.9; // 50 km/h, no braking feedback here
        let mut stages = Vec::new();
        let mut first = [None; 4];
        for k in 0..80u64 {
            let x = 70.0 - v * 0.05 * k as f64;
            if x < 1.0 {
                break;
            }
            let dec = d.step(
                k * 50 * MS,
                &[track(1, x, 0.2, -v, 0.0)],
                Some(&ego_at(k, v)),
            );
            let s = dec.stage;
            if first[s.code() as usize].is_none() {
                first[s.code() as usize] = Some(k as f64 * 0.05);
            }
            stages.push(s);
        }
        assert!(
            stages.windows(2).all(|w| w[1] >= w[0]),
            "monotonic while closing: {stages:?}"
        );
        let (fcw, partial, full) = (first[1].unwrap(), first[2].unwrap(), first[3].unwrap());
        assert!(partial - fcw >= 0.8, "fcw {fcw} partial {partial}");
        assert!(full > partial, "partial {partial} full {full}");
    }

    #[test]
    fn no_activation_for_targets_outside_the_path_or_opening() {
        let mut d = AebDecider::new(AebParams::default());
        for k in 0..100u64 {
            let x = 40.0 - 0.5 * k as f64;
            let tracks = [
                track(1, x.max(2.0), 3.5, -10.0, 0.0),  // adjacent lane
                track(2, 10.0, 0.0, 2.0, 0.0),          // lead pulling away
                track(3, x.max(2.0), -2.6, -10.0, 0.2), // parked car at the kerb
            ];
            let dec = d.step(k * 50 * MS, &tracks, Some(&ego_at(k, 10.0)));
            assert_eq!(dec.stage, Stage::None, "frame {k}: {dec:?}");
        }
    }

    #[test]
    fn unconfirmed_tracks_are_ignored() {
        let mut d = AebDecider::new(AebParams::default());
        let mut t = track(1, 3.0, 0.0, -10.0, 0.0);
        t.confirmed = false;
        for k in 0..10 {
            assert_eq!(
                d.step(k * 50 * MS, &[t], Some(&ego_at(k, 10.0))).stage,
                Stage::None
            );
        }
    }

    #[test]
    fn crossing_pedestrian_is_a_threat_before_it_enters_the_corridor() {
        let mut d = AebDecider::new(AebParams::default());
        let mut ped = track(1, 12.0, -2.5, -11.0, 1.4);
        ped.class = RoadUser::Pedestrian;
        let dec = (0..3)
            .map(|k| d.step(k * 50 * MS, &[ped], Some(&ego_at(k, 11.0))))
            .last()
            .unwrap();
        assert!(dec.threat.is_some());
        assert!(dec.stage.is_braking(), "{dec:?}");
        // Walking along the sidewalk: no threat.
        let mut d = AebDecider::new(AebParams::default());
        let mut ped = track(1, 12.0, -3.0, -11.0, 0.0);
        ped.class = RoadUser::Pedestrian;
        let dec = (0..3)
            .map(|k| d.step(k * 50 * MS, &[ped], Some(&ego_at(k, 11.0))))
            .last()
            .unwrap();
        assert!(dec.threat.is_none() && dec.stage == Stage::None);
    }

    #[test]
    fn curved_corridor_follows_the_yaw_rate() {
        let d = AebDecider::new(AebParams::default());
        // 10 m/s, 0.2 rad/s: κ = 0.02, path at 20 m is 4 m to the left.
        let ego = EgoState {
            yaw_rate_rps: Some(0.2),
            ..EgoState::with_speed(0, 10.0)
        };
        let c = d.corridor(Some(&ego));
        assert!((c.centre_y(20.0) - 4.0).abs() < 1e-9);
        assert!(c.contains(20.0, 4.0, 0.0) && !c.contains(20.0, 0.0, 0.0));
    }

    #[test]
    fn inhibit_on_missing_stale_invalid_ego_and_time_going_back() {
        let mut d = AebDecider::new(AebParams::default());
        let t = [track(1, 5.0, 0.0, -10.0, 0.0)];
        let dec = d.step(0, &t, None);
        assert_eq!(
            (dec.stage, dec.inhibit),
            (Stage::None, Some(InhibitReason::NoEgo))
        );
        // Brake first, then the ego goes stale: inhibit, no braking.
        for k in 0..3 {
            d.step(k * 50 * MS, &t, Some(&ego_at(k, 10.0)));
        }
        assert!(d.stage().is_braking());
        let stale = ego_at(0, 10.0);
        let dec = d.step(500 * MS, &t, Some(&stale));
        assert_eq!(dec.inhibit, Some(InhibitReason::EgoStale));
        assert_eq!((dec.stage, dec.brake_request_mps2), (Stage::None, 0.0));
        let invalid = EgoState {
            valid: false,
            ..ego_at(11, 10.0)
        };
        assert_eq!(
            d.step(550 * MS, &t, Some(&invalid)).inhibit,
            Some(InhibitReason::EgoInvalid)
        );
        assert_eq!(
            d.step(540 * MS, &t, Some(&ego_at(11, 10.0))).inhibit,
            Some(InhibitReason::TimeWentBack)
        );
        // Recovers by itself.
        let dec = d.step(600 * MS, &t, Some(&ego_at(12, 10.0)));
        assert_eq!(dec.inhibit, None);
    }

    #[test]
    fn driver_inputs_suppress() {
        let t = [track(1, 25.0, 0.0, -10.0, 0.0)]; // partial-braking situation
        let mut d = AebDecider::new(AebParams::default());
        let braking = |k: u64| EgoState {
            brake_pedal: true,
            ..ego_at(k, 10.0)
        };
        for k in 0..5 {
            let dec = d.step(k * 50 * MS, &t, Some(&braking(k)));
            assert_eq!(dec.stage, Stage::None);
            assert_eq!(dec.suppression, Some(Suppression::DriverBraking));
        }
        // Full braking still comes with the pedal pressed.
        let close = [track(1, 4.0, 0.0, -10.0, 0.0)];
        let dec = (5..8)
            .map(|k| d.step(k * 50 * MS, &close, Some(&braking(k))))
            .last()
            .unwrap();
        assert_eq!(dec.stage, Stage::FullBrake);
        // Steering away releases at once.
        let steer = EgoState {
            steering_away: true,
            ..ego_at(8, 10.0)
        };
        let dec = d.step(8 * 50 * MS, &close, Some(&steer));
        assert_eq!(dec.stage, Stage::None);
        assert_eq!(dec.suppression, Some(Suppression::DriverOverride));
    }

    #[test]
    fn standstill_hold_then_release() {
        let p = AebParams::default();
        let mut d = AebDecider::new(p.clone());
        let t = [track(1, 4.0, 0.0, -10.0, 0.0)];
        for k in 0..3 {
            d.step(k * 50 * MS, &t, Some(&ego_at(k, 10.0)));
        }
        assert!(d.stage().is_braking());
        let stopped = [track(1, 2.0, 0.0, 0.0, 0.0)];
        let mut released_at = None;
        for k in 3..60u64 {
            let dec = d.step(k * 50 * MS, &stopped, Some(&ego_at(k, 0.0)));
            if dec.stage == Stage::None && released_at.is_none() {
                released_at = Some(k);
            }
        }
        let k = released_at.unwrap();
        assert!(
            (k - 3) as f64 * 0.05 >= p.standstill_hold_s - 1e-9
                || k - 3 >= u64::from(p.release_frames)
        );
    }

    #[test]
    fn fcw_cooldown_blocks_a_second_warning_only_episode() {
        let p = AebParams::default();
        let mut d = AebDecider::new(p.clone());
        let warn = [track(1, 30.0, 0.0, -10.0, 0.0)]; // FCW only, braking > 0.8 s away
                                                      // The threat is gone for 6 frames: the warning is released after `release_frames`.
        let frames: Vec<(Vec<Track>, EgoState)> = (0..40u64)
            .map(|k| {
                let on = !(10..16).contains(&k);
                (if on { warn.to_vec() } else { vec![] }, ego_at(k, 10.0))
            })
            .collect();
        let decs = run(&mut d, &frames);
        assert_eq!(decs[5].stage, Stage::Fcw, "{:?}", decs[5]);
        let released = 10 + p.release_frames as usize - 1;
        assert_eq!(decs[released - 1].stage, Stage::Fcw);
        assert_eq!(decs[released].stage, Stage::None);
        assert_eq!(decs[20].stage, Stage::None);
        assert_eq!(decs[20].suppression, Some(Suppression::FcwCooldown));
    }

    /// 50 km/h towards a stationary car 33 m ahead: partial braking is demanded at once
    /// (`a_req` 3.7 m/s²), but waiting out the warning would need only 6.5 m/s².
    fn approach(k: u64) -> (Vec<Track>, EgoState) {
        let v = 13.9;
        (
            vec![track(1, 33.0 - v * 0.05 * k as f64, 0.0, -v, 0.0)],
            ego_at(k, v),
        )
    }

    fn first(decs: &[Decision], f: impl Fn(&Decision) -> bool) -> usize {
        decs.iter().position(f).unwrap()
    }

    #[test]
    fn braking_waits_until_the_warning_has_run_its_time() {
        let p = AebParams::default();
        let mut d = AebDecider::new(p.clone());
        let frames: Vec<_> = (0..30).map(approach).collect();
        let decs = run(&mut d, &frames);
        assert!(decs[0].demand.is_braking(), "{:?}", decs[0]);
        let warn = first(&decs, |d| d.warning());
        let brake = first(&decs, |d| d.stage.is_braking());
        assert_eq!(warn, p.brake_persistence_frames as usize - 1);
        // Demanded all along, held back to FCW (the warning on) until 0.8 s after it began.
        for dec in &decs[warn..brake] {
            assert!(
                dec.demand.is_braking() && dec.stage == Stage::Fcw,
                "{dec:?}"
            );
            assert_eq!(dec.brake_request_mps2, 0.0);
        }
        let lead_s = (brake - warn) as f64 * 0.05;
        assert!((lead_s - p.min_warning_s).abs() < 1e-9, "lead {lead_s}");
        assert!(decs[brake..].iter().all(|d| !d.unanticipated));
        // Judged the same way by the episode check: one episode, lead 0.8 s, not excused.
        let frames: Vec<_> = decs
            .iter()
            .map(|d| crate::aeb::EpisodeFrame::from_decision(d.t_ns + 1_000 * MS, d))
            .collect();
        let mut all = vec![crate::aeb::EpisodeFrame {
            t_ns: 0,
            stage: Stage::None,
            threat_track: None,
            unanticipated: false,
        }];
        all.extend(frames);
        let j = crate::aeb::judge_episodes(&all);
        assert_eq!(j.len(), 1);
        assert!(!j[0].short_lead() && j[0].excuse.is_none(), "{j:?}");
    }

    #[test]
    fn an_unanticipated_collision_brakes_at_once_and_is_marked() {
        let p = AebParams::default();
        let mut d = AebDecider::new(p.clone());
        // Lead 10 m ahead at our 50 km/h, braking at 6 m/s²: partial braking now (a_req 3.9);
        // after 0.8 s more of warning it would need 8.4 m/s².
        let mut lead = track(1, 10.0, 0.0, 0.0, 0.0);
        lead.ax_mps2 = -6.0;
        let decs: Vec<_> = (0..4)
            .map(|k| d.step(k * 50 * MS, &[lead], Some(&ego_at(k, 13.9))))
            .collect();
        let th = decs[0].threat.unwrap();
        assert!(
            th.required_decel_mps2 >= p.partial_decel_mps2
                && th.required_decel_mps2 < p.full_decel_mps2
        );
        let k = p.brake_persistence_frames as usize - 1;
        assert_eq!(decs[k].stage, Stage::PartialBrake, "{:?}", decs[k]);
        assert!(decs[k].unanticipated && decs[k].warning());
        assert!(decs[k..]
            .iter()
            .all(|d| d.unanticipated && d.stage.is_braking()));
        assert!(decs[..k].iter().all(|d| !d.unanticipated));
        // Extrapolated at a constant closing speed (as for the FCW), the lead's braking would
        // be missed: it is closing at 0 m/s now.
        let gap = 10.0 - p.stop_margin_m;
        assert!(required_decel(gap, 13.9, 13.9, 6.0) < p.unanticipated_decel_mps2);
    }

    #[test]
    fn the_cooldown_never_holds_back_a_warning_that_braking_waits_for() {
        let p = AebParams::default();
        // A warning-only episode (FCW demand only: target at rest 50 m ahead, braking more than
        // `min_warning_s` away), released …
        let far = |k: u64| (vec![track(1, 50.0, 0.0, -13.9, 0.0)], ego_at(k, 13.9));
        let mut first_episode: Vec<(Vec<Track>, EgoState)> = (0..10).map(far).collect();
        first_episode.extend((10..16).map(|k| (vec![], ego_at(k, 13.9))));
        // … then, within the cooldown, a braking demand: the warning comes at once and the
        // braking waits for it.
        let mut d = AebDecider::new(p.clone());
        let mut frames = first_episode.clone();
        frames.extend((16..50).map(|k| (approach(k - 16).0, ego_at(k, 13.9))));
        let decs = run(&mut d, &frames);
        assert_eq!(decs[5].stage, Stage::Fcw);
        assert_eq!(decs[15].stage, Stage::None);
        let warn = first(&decs[16..], |d| d.warning()) + 16;
        assert_eq!(warn, 16 + p.brake_persistence_frames as usize - 1);
        assert!(decs[16..].iter().all(|d| d.suppression.is_none()));
        let brake = first(&decs, |d| d.stage.is_braking());
        assert!((brake - warn) as f64 * 0.05 >= p.min_warning_s - 1e-9);
        assert!(!decs[brake].unanticipated);
        // A warning-only demand in the cooldown is held back …
        let mut d = AebDecider::new(p.clone());
        let mut frames = first_episode.clone();
        frames.extend((16..20).map(far));
        let decs = run(&mut d, &frames);
        assert_eq!(decs[19].stage, Stage::None);
        assert_eq!(decs[19].suppression, Some(Suppression::FcwCooldown));
        // … unless braking would be due within `min_warning_s` (45 m: FCW demand only, but
        // partial braking 0.8 s later).
        let near = |k: u64| (vec![track(1, 45.0, 0.0, -13.9, 0.0)], ego_at(k, 13.9));
        let mut d = AebDecider::new(p.clone());
        let mut frames = first_episode;
        frames.extend((16..20).map(near));
        let decs = run(&mut d, &frames);
        assert_eq!(decs[19].demand, Stage::Fcw);
        assert_eq!(decs[19].stage, Stage::Fcw, "{:?}", decs[19]);
    }

    #[test]
    fn a_threat_lost_for_a_frame_keeps_the_warning() {
        let p = AebParams::default();
        let mut d = AebDecider::new(p.clone());
        // Braking-bound approach; the track is missing from the decider's input in frame 8
        // (warning only) and frame 24 (braking).
        let frames: Vec<(Vec<Track>, EgoState)> = (0..40)
            .map(|k| {
                let (t, e) = approach(k);
                (if k == 8 || k == 24 { vec![] } else { t }, e)
            })
            .collect();
        let decs = run(&mut d, &frames);
        assert!(decs[8].threat.is_none());
        assert_eq!(decs[8].stage, Stage::Fcw, "{:?}", decs[8]);
        // The warning never went off: braking still starts 0.8 s after it began.
        let warn = first(&decs, |d| d.warning());
        let brake = first(&decs, |d| d.stage.is_braking());
        assert!(decs[warn..].iter().all(|d| d.warning()));
        assert!(((brake - warn) as f64 * 0.05 - p.min_warning_s).abs() < 1e-9);
        // Braking needs a threat in every frame: it drops to the warning, then resumes.
        assert!(decs[23].stage.is_braking() && decs[24].stage == Stage::Fcw);
        assert_eq!(decs[24].brake_request_mps2, 0.0);
        let again = first(&decs[25..], |d| d.stage.is_braking()) + 25;
        assert_eq!(again, 24 + p.brake_persistence_frames as usize);
        assert!(!decs[again].unanticipated);
        // Lost for `release_frames` frames, the warning is released like any other.
        let mut d = AebDecider::new(p.clone());
        let frames: Vec<(Vec<Track>, EgoState)> = (0..12)
            .map(|k| {
                let (t, e) = approach(k);
                (if k >= 6 { vec![] } else { t }, e)
            })
            .collect();
        let decs = run(&mut d, &frames);
        let n = p.release_frames as usize;
        assert!(decs[6..6 + n - 1].iter().all(|d| d.stage == Stage::Fcw));
        assert_eq!(decs[6 + n - 1].stage, Stage::None);
    }

    fn arb_track() -> impl Strategy<Value = Track> {
        (
            1u32..4,
            -5.0f64..90.0,
            -6.0f64..6.0,
            -25.0f64..5.0,
            -2.0f64..2.0,
            -8.0f64..3.0,
            any::<bool>(),
            0usize..3,
        )
            .prop_map(|(id, x, y, vx, vy, ax, confirmed, c)| {
                let mut t = track(id, x, y, vx, vy);
                t.ax_mps2 = ax;
                t.confirmed = confirmed;
                t.class = [RoadUser::Car, RoadUser::Pedestrian, RoadUser::Cyclist][c];
                t
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// No braking (and no warning) without a confirmed track in the path; escalation only
        /// after the demand persisted; release only after the relaxed demand stayed lower for
        /// `release_frames` (or at once when the threat is gone / the driver overrides / at
        /// standstill); inhibit on stale input.
        #[test]
        fn decider_invariants(
            frames in proptest::collection::vec(
                (proptest::collection::vec(arb_track(), 0..4), 0.0f64..30.0, 0u64..300, any::<bool>()),
                1..60),
        ) {
            let p = AebParams::default();
            let mut d = AebDecider::new(p.clone());
            let mut history: Vec<Decision> = Vec::new();
            for (k, (tracks, speed, ego_age_ms, steer)) in frames.iter().enumerate() {
                let t_ns = k as u64 * 50 * MS + 1_000 * MS;
                let ego = EgoState {
                    steering_away: *steer && k % 7 == 0,
                    ..EgoState::with_speed(t_ns - ego_age_ms * MS, *speed)
                };
                // Track ids are unique within a frame, as the tracker's are.
                let tracks: Vec<Track> = tracks
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Track { id: i as u32 + 1, ..*t })
                    .collect();
                let dec = d.step(t_ns, &tracks, Some(&ego));
                let stale = (*ego_age_ms as f64) > p.ego_timeout_ms;
                if stale {
                    prop_assert_eq!(dec.inhibit, Some(InhibitReason::EgoStale));
                    prop_assert_eq!(dec.stage, Stage::None);
                }
                if dec.stage.is_braking() || dec.brake_request_mps2 > 0.0 {
                    let th = dec.threat.expect("braking has a threat");
                    let tr = tracks.iter().find(|t| t.id == th.track_id).expect("threat is a track");
                    prop_assert!(tr.confirmed);
                    let extra = p.target_half_width_m.get(tr.class);
                    let h = th.ttc_s.min(p.lateral_horizon_s);
                    let later = dec.corridor.contains(
                        (tr.x_m + tr.vx_mps * h).clamp(0.0, dec.corridor.length_m), tr.y_m + tr.vy_mps * h, extra);
                    prop_assert!(dec.corridor.contains(tr.x_m, tr.y_m, extra) || later);
                }
                prop_assert_eq!(dec.brake_request_mps2 > 0.0, dec.stage.is_braking());
                // A warning outlives its threat by less than `release_frames` frames.
                let no_threat_run = std::iter::once(&dec)
                    .chain(history.iter().rev())
                    .take_while(|h| h.warning() && h.threat.is_none())
                    .count();
                prop_assert!(no_threat_run < p.release_frames as usize, "warning without a threat for {} frames", no_threat_run);
                // Braking starts only after `min_warning_s` of continuous warning, or marked as
                // unanticipated; the mark stays for the episode and only there.
                prop_assert!(!dec.unanticipated || dec.stage.is_braking());
                let prev_braking = history.last().is_some_and(|h| h.stage.is_braking());
                if dec.stage.is_braking() && !prev_braking {
                    let run_start = history.iter().rev().take_while(|h| h.warning()).last().map_or(dec.t_ns, |h| h.t_ns);
                    let lead_s = (dec.t_ns - run_start) as f64 * 1e-9;
                    prop_assert_eq!(dec.unanticipated, lead_s < p.min_warning_s - 1e-9, "lead {}", lead_s);
                } else if dec.stage.is_braking() {
                    prop_assert_eq!(dec.unanticipated, history.last().is_some_and(|h| h.unanticipated));
                }
                if let Some(prev) = history.last() {
                    if dec.stage > prev.stage {
                        let need = if dec.stage == Stage::Fcw { p.fcw_persistence_frames } else { p.brake_persistence_frames } as usize;
                        prop_assert!(history.len() + 1 >= need);
                        let mut window: Vec<Stage> = history.iter().rev().take(need - 1).map(|h| h.demand).collect();
                        window.push(dec.demand);
                        prop_assert!(window.iter().all(|s| *s >= dec.stage), "escalated to {:?} without persistence: {:?}", dec.stage, window);
                    }
                    if dec.stage < prev.stage && dec.threat.is_some() && dec.inhibit.is_none()
                        && dec.suppression.is_none() && *speed >= p.standstill_speed_mps {
                        let need = p.release_frames as usize;
                        prop_assert!(history.len() + 1 >= need);
                        let mut window: Vec<Stage> = history.iter().rev().take(need - 1).map(|h| h.hold_demand).collect();
                        window.push(dec.hold_demand);
                        prop_assert!(window.iter().all(|s| *s < prev.stage), "released without hysteresis: {:?}", window);
                    }
                }
                history.push(dec);
            }
        }
    }
}
