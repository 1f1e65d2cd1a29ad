//! Multi-object tracking in the bird's-eye view.
//!
//! One Kalman filter per road user, in the vehicle frame (x forward from the front bumper, y left):
//! state `[x, y, vx, vy, ax]` — position and velocity **relative to the ego vehicle**, and the
//! target's own longitudinal acceleration `ax` (over ground, what a braking lead car does). The
//! lateral motion is constant-velocity; the longitudinal motion is constant-acceleration with the
//! ego's measured acceleration as a known control input, so a stationary target stays stationary
//! while the ego brakes:
//!
//! ```text
//! x'  = x + vx·dt + ½(ax − a_ego)·dt²      y'  = y + vy·dt
//! vx' = vx + (ax − a_ego)·dt               vy' = vy
//! ax' = ax·exp(−dt/τ)                      (a lead does not brake for ever)
//! ```
//!
//! Before the prediction the state is rotated by `−ω·dt` (ego yaw rate ω), compensating the
//! ego's own turning to first order.
//!
//! - **Process noise** per class: white lateral acceleration, white longitudinal acceleration and
//!   white longitudinal jerk (a pedestrian turns quickly but never brakes at 6 m/s²; a car the
//!   other way round).
//! - **Measurement** `[x, y]` from the BEV projection with its covariance `J Σ_px Jᵀ` from the
//!   homography's sensitivity at the box's bottom centre — it grows with the square of the
//!   distance for a monocular camera.
//! - **Association**: chi² gate on the Mahalanobis distance of the innovation (2 dof) between
//!   [`compatible`] classes only (a detector calls the same vehicle `car` in one frame and `truck`
//!   in the next), then greedy assignment by increasing distance (optimal enough at these
//!   densities and bounded time: O(T·M log(T·M))).
//! - **Class**: the majority of the labels a track was updated with ([`ClassVotes`]: bounded
//!   counts that forget by halving), so the class and everything that depends on it — process
//!   noise here, the corridor share and the CAN class code in the decider — do not follow a
//!   single frame's label.
//! - **Life cycle**: a tentative track is confirmed after `confirm_hits` hits; it dies after
//!   `tentative_max_misses` consecutive misses while tentative, `delete_misses` once confirmed,
//!   or at once if its position standard deviation exceeds `max_position_std_m`, its state
//!   stops being finite, or it leaves the tracking area.
//! - Only finite tracks are ever published ([`Tracker::tracks`]), so NaN/inf cannot reach the
//!   decider.

// Small fixed-size matrix algebra reads best with index loops.
#![allow(clippy::needless_range_loop)]

use super::BevObject;
use adas_plugins::manifest::RoadUser;
use adas_plugins::range::{self, Bound, Numbers, Range, Refused};
use adas_types::EgoState;
use serde::Deserialize;

const N: usize = 5;
type Vec5 = [f64; N];
type Mat5 = [[f64; N]; N];
type Mat2 = [[f64; 2]; 2];

/// Process noise and prior of one road-user class.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassNoise {
    /// Standard deviation of the white lateral acceleration noise, m/s².
    pub lateral_accel_mps2: f64,
    /// Standard deviation of the white longitudinal acceleration noise, m/s².
    pub longitudinal_accel_mps2: f64,
    /// Standard deviation of the white longitudinal jerk noise (drives `ax`), m/s³.
    pub jerk_mps3: f64,
    /// Prior standard deviation of a new track's over-ground speed (about the class's top speed
    /// in traffic), m/s.
    pub init_speed_std_mps: f64,
}

impl ClassNoise {
    pub const RANGES: &'static [Bound<ClassNoise>] = &[
        Bound::new(
            "lateral_accel_mps2",
            Range::new(0.01, 20.0, "m/s²"),
            |n| n.lateral_accel_mps2.numbers(),
            "road users accelerate at most about 1 g; 0 freezes the track",
        ),
        Bound::new(
            "longitudinal_accel_mps2",
            Range::new(0.01, 20.0, "m/s²"),
            |n| n.longitudinal_accel_mps2.numbers(),
            "as lateral_accel_mps2",
        ),
        Bound::new(
            "jerk_mps3",
            Range::new(0.01, 100.0, "m/s³"),
            |n| n.jerk_mps3.numbers(),
            "emergency braking builds up at about 30 m/s³",
        ),
        Bound::new(
            "init_speed_std_mps",
            Range::new(0.1, 100.0, "m/s"),
            |n| n.init_speed_std_mps.numbers(),
            "about the class's top speed; 100 m/s is 360 km/h",
        ),
    ];

    const fn new(lat: f64, lon: f64, jerk: f64, speed: f64) -> Self {
        ClassNoise {
            lateral_accel_mps2: lat,
            longitudinal_accel_mps2: lon,
            jerk_mps3: jerk,
            init_speed_std_mps: speed,
        }
    }
}

/// Process noise per class (`[tracker.process_noise.<class>]`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassNoiseTable {
    pub pedestrian: ClassNoise,
    pub cyclist: ClassNoise,
    pub car: ClassNoise,
    pub truck_bus: ClassNoise,
    pub motorcycle: ClassNoise,
    pub other: ClassNoise,
}

impl Default for ClassNoiseTable {
    fn default() -> Self {
        // Pedestrians: agile sideways (start/stop within a step), slow, never brake hard.
        // Cars/trucks: lateral motion is slow (lane changes ≈ 1 m/s²); the jerk noise lets the
        // acceleration estimate follow a lead that brakes at 6 m/s² within about half a second
        // without making the velocity estimate of a steady car too jumpy at 50–80 m, where one
        // pixel row is several metres.
        Self {
            pedestrian: ClassNoise::new(1.5, 1.5, 2.0, 3.0),
            cyclist: ClassNoise::new(1.5, 2.0, 4.0, 8.0),
            car: ClassNoise::new(1.0, 1.0, 3.0, 15.0),
            truck_bus: ClassNoise::new(0.7, 0.8, 2.5, 15.0),
            motorcycle: ClassNoise::new(1.5, 1.5, 3.0, 15.0),
            other: ClassNoise::new(1.5, 1.5, 2.0, 10.0),
        }
    }
}

impl ClassNoiseTable {
    pub fn get(&self, class: RoadUser) -> &ClassNoise {
        match class {
            RoadUser::Pedestrian => &self.pedestrian,
            RoadUser::Cyclist => &self.cyclist,
            RoadUser::Car => &self.car,
            RoadUser::TruckBus => &self.truck_bus,
            RoadUser::Motorcycle => &self.motorcycle,
            RoadUser::Other | RoadUser::Ignored => &self.other,
        }
    }

    pub fn iter(&self) -> [(&'static str, &ClassNoise); 6] {
        [
            ("pedestrian", &self.pedestrian),
            ("cyclist", &self.cyclist),
            ("car", &self.car),
            ("truck_bus", &self.truck_bus),
            ("motorcycle", &self.motorcycle),
            ("other", &self.other),
        ]
    }
}

/// Whether a detection of class `detection` may update a track of class `track` (then the
/// Mahalanobis gate decides). Symmetric, deliberately not transitive:
///
/// - **Vehicles** — car, truck/bus, motorcycle — are one family: COCO detectors swap `car` and
///   `truck` on the same SUV, van or pickup from frame to frame, and a track that restarts on
///   every swap loses its speed estimate exactly when it is needed. A motorcycle in traffic moves
///   like them, so a swap with it is class noise too.
/// - **Two-wheelers** — cyclist and motorcycle — are compatible too: `bicycle` ↔ `motorcycle` is
///   the same kind of confusion (a rider on two wheels), and a restarting cyclist track would
///   delay the warning for a vulnerable road user. A cyclist is *not* compatible with a car or a
///   truck: a cyclist passing a parked car is close enough to fall into the car's gate.
/// - **Pedestrians** and **other** (animals, unknown obstacles) only with their own kind: a
///   pedestrian stepping out beside a parked car is the case where the two gates overlap, and
///   the class is what keeps the pedestrian's track from taking the car's detection.
/// - `Ignored` is never tracked.
pub fn compatible(track: RoadUser, detection: RoadUser) -> bool {
    use RoadUser::{Car, Cyclist, Ignored, Motorcycle, TruckBus};
    match (track, detection) {
        (Ignored, _) | (_, Ignored) => false,
        (a, b) if a == b => true,
        (Car | TruckBus | Motorcycle, Car | TruckBus | Motorcycle) => true,
        (Cyclist, Motorcycle) | (Motorcycle, Cyclist) => true,
        _ => false,
    }
}

/// The labels a track was updated with, as bounded per-class counts (no allocation, 6 bytes).
///
/// A count that would exceed [`ClassVotes::CAP`] halves all counts first, so older labels fade
/// out (a far "car" that turns out to be a truck as it nears is re-labelled after about `CAP`
/// consistent detections) while a label in a minority of frames never wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassVotes {
    counts: [u8; 6],
}

impl ClassVotes {
    /// Most votes one class holds: about 0.8 s of detections at 20 Hz.
    pub const CAP: u8 = 16;

    /// One vote for `class` (none for `Ignored`).
    pub fn new(class: RoadUser) -> ClassVotes {
        let mut v = ClassVotes::default();
        v.add(class);
        v
    }

    /// Adds a vote for `class` (`Ignored` is not counted).
    pub fn add(&mut self, class: RoadUser) {
        let Some(i) = vote_index(class) else {
            return;
        };
        if self.counts[i] >= Self::CAP {
            for c in &mut self.counts {
                *c /= 2;
            }
        }
        self.counts[i] = self.counts[i].saturating_add(1);
    }

    /// The class with the most votes; on a tie `current` keeps it if it is among the leaders.
    pub fn majority(&self, current: RoadUser) -> RoadUser {
        let best = self.counts.iter().copied().max().unwrap_or(0);
        if vote_index(current).is_some_and(|i| self.counts[i] == best) {
            return current;
        }
        VOTE_CLASSES
            .iter()
            .zip(self.counts)
            .find(|(_, n)| *n == best)
            .map_or(current, |(c, _)| *c)
    }
}

const VOTE_CLASSES: [RoadUser; 6] = [
    RoadUser::Pedestrian,
    RoadUser::Cyclist,
    RoadUser::Car,
    RoadUser::TruckBus,
    RoadUser::Motorcycle,
    RoadUser::Other,
];

fn vote_index(class: RoadUser) -> Option<usize> {
    VOTE_CLASSES.iter().position(|c| *c == class)
}

/// Tracker parameters (config table `[tracker]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerParams {
    /// Hits (associated measurements) before a track is confirmed and reaches the decider.
    pub confirm_hits: u32,
    /// Consecutive misses that delete a tentative track.
    pub tentative_max_misses: u32,
    /// Consecutive misses that delete a confirmed track.
    pub delete_misses: u32,
    /// Association gate on the squared Mahalanobis distance (chi², 2 dof), dimensionless.
    pub gate_chi2: f64,
    /// Noise of a box's bottom centre (1σ) in image pixels, scaled by the homography's
    /// sensitivity into the ground-plane measurement covariance. When absent it follows the
    /// detector: `input_pixel_sigma_px` × image pixels per detector-input pixel
    /// ([`TrackerParams::for_detector_scale`]).
    pub pixel_sigma_px: Option<f64>,
    /// Noise of a box edge (1σ) in the detector's input pixels: a detector that sees a 960-px
    /// frame at 300 px places edges on its own coarse grid, and its jitter grows with the scale.
    pub input_pixel_sigma_px: f64,
    /// Floor of the measurement standard deviation on the ground, m.
    pub min_position_std_m: f64,
    /// A track whose position standard deviation exceeds this is dropped, m.
    pub max_position_std_m: f64,
    /// Prior standard deviation of a new track's longitudinal acceleration, m/s².
    pub init_accel_std_mps2: f64,
    /// Time constant with which the acceleration estimate decays towards 0, s.
    pub accel_tau_s: f64,
    /// A gap between frames longer than this resets all tracks, s.
    pub max_gap_s: f64,
    /// Most tracks kept (the nearest win), count.
    pub max_tracks: usize,
    /// Tracking area: tracks beyond this distance ahead are dropped, m.
    pub max_range_m: f64,
    pub process_noise: ClassNoiseTable,
}

impl Default for TrackerParams {
    fn default() -> Self {
        Self {
            // 3 hits: a single false positive (or two) never becomes a track; at 20 Hz a real
            // object is confirmed within 0.1–0.2 s, even with 10–20 % dropouts.
            confirm_hits: 3,
            tentative_max_misses: 2,
            // 6 misses at 20 Hz = 0.3 s of coasting through dropouts.
            delete_misses: 6,
            // 99.9 % quantile of chi²(2): true measurements are almost never gated out.
            gate_chi2: 13.8,
            pixel_sigma_px: None,
            // On the Udacity drive (SSD at 300 px, frame 960 px) 1.25 input px = 4 image px is
            // the least noise at which box jitter of cars two lanes over stops passing for
            // lateral motion towards the ego lane.
            input_pixel_sigma_px: 1.25,
            min_position_std_m: 0.15,
            max_position_std_m: 10.0,
            init_accel_std_mps2: 2.0,
            accel_tau_s: 2.0,
            max_gap_s: 1.0,
            max_tracks: 64,
            max_range_m: 150.0,
            process_noise: ClassNoiseTable::default(),
        }
    }
}

impl TrackerParams {
    /// The parameters for a detector that sees the image at `image_px_per_input_px` image pixels
    /// per input pixel: an explicit `pixel_sigma_px` stays, otherwise it is derived.
    pub fn for_detector_scale(mut self, image_px_per_input_px: f64) -> TrackerParams {
        if self.pixel_sigma_px.is_none() && image_px_per_input_px.is_finite() {
            self.pixel_sigma_px = Some(self.input_pixel_sigma_px * image_px_per_input_px.max(1.0));
        }
        self
    }

    /// Bottom-centre noise in image pixels (1σ): explicit, derived, or — with no detector scale
    /// known — the input-pixel noise taken as image pixels.
    pub fn image_pixel_sigma_px(&self) -> f64 {
        self.pixel_sigma_px.unwrap_or(self.input_pixel_sigma_px)
    }

    /// Every number's physical range, declared once (docs/RELIABILITY.md lists them).
    pub const RANGES: &'static [Bound<TrackerParams>] = &[
        Bound::new(
            "confirm_hits",
            Range::new(1.0, 20.0, "hits"),
            |p| p.confirm_hits.numbers(),
            "at 20 Hz 20 hits is 1 s before anything reaches the decider",
        ),
        Bound::new(
            "tentative_max_misses",
            Range::new(0.0, 20.0, "frames"),
            |p| p.tentative_max_misses.numbers(),
            "as confirm_hits",
        ),
        Bound::new(
            "delete_misses",
            Range::new(0.0, 100.0, "frames"),
            |p| p.delete_misses.numbers(),
            "at 20 Hz 100 frames is 5 s of coasting on a prediction",
        ),
        Bound::new(
            "gate_chi2",
            Range::new(1.0, 100.0, "χ²"),
            |p| p.gate_chi2.numbers(),
            "χ²(2) is 13.8 at 99.9 %; beyond 100 every detection joins every track",
        ),
        Bound::new(
            "pixel_sigma_px",
            Range::new(0.1, 50.0, "px"),
            |p| p.pixel_sigma_px.numbers(),
            "box-edge noise of a detector; 50 px is a box that hits nothing",
        ),
        Bound::new(
            "input_pixel_sigma_px",
            Range::new(0.1, 20.0, "px"),
            |p| p.input_pixel_sigma_px.numbers(),
            "as pixel_sigma_px, in the detector's coarser input pixels",
        ),
        Bound::new(
            "min_position_std_m",
            Range::new(0.0, 5.0, "m"),
            |p| p.min_position_std_m.numbers(),
            "a floor larger than a car's length blurs every object",
        ),
        Bound::new(
            "max_position_std_m",
            Range::new(0.5, 100.0, "m"),
            |p| p.max_position_std_m.numbers(),
            "beyond 100 m the track says nothing; also > min_position_std_m",
        ),
        Bound::new(
            "init_accel_std_mps2",
            Range::new(0.1, 20.0, "m/s²"),
            |p| p.init_accel_std_mps2.numbers(),
            "road users accelerate at most about 1 g",
        ),
        Bound::new(
            "accel_tau_s",
            Range::new(0.1, 60.0, "s"),
            |p| p.accel_tau_s.numbers(),
            "manoeuvres last seconds",
        ),
        Bound::new(
            "max_gap_s",
            Range::new(0.01, 10.0, "s"),
            |p| p.max_gap_s.numbers(),
            "after 10 s without frames the scene is another one",
        ),
        Bound::new(
            "max_tracks",
            Range::new(1.0, 1024.0, "tracks"),
            |p| p.max_tracks.numbers(),
            "bounds the association's cost (tracks × detections)",
        ),
        Bound::new(
            "max_range_m",
            Range::new(5.0, 300.0, "m"),
            |p| p.max_range_m.numbers(),
            "beyond 300 m a camera sees nothing a decision needs",
        ),
    ];

    /// Checks every value against its range and the rules between them; the refusal names the
    /// key relative to `[tracker]`.
    pub fn validate(&self) -> Result<(), Refused> {
        range::check(self, Self::RANGES)?;
        if self.max_position_std_m <= self.min_position_std_m {
            return Err(Refused::new(
                "max_position_std_m",
                "must be > min_position_std_m",
            ));
        }
        self.process_noise
            .iter()
            .into_iter()
            .try_for_each(|(class, noise)| {
                range::check(noise, ClassNoise::RANGES)
                    .map_err(|r| r.within(&format!("process_noise.{class}")))
            })
    }
}

/// A tracked road user (vehicle frame, relative to the ego).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Track {
    pub id: u32,
    /// The majority of the labels the track was updated with ([`ClassVotes`]), not the last one.
    pub class: RoadUser,
    /// Longitudinal distance from the front bumper, m.
    pub x_m: f64,
    /// Lateral offset, m, positive left.
    pub y_m: f64,
    /// Relative longitudinal velocity, m/s (negative: closing).
    pub vx_mps: f64,
    /// Relative lateral velocity, m/s.
    pub vy_mps: f64,
    /// The target's own longitudinal acceleration (over ground), m/s².
    pub ax_mps2: f64,
    /// State covariance, order `[x, y, vx, vy, ax]`.
    pub cov: [[f64; 5]; 5],
    /// Frames since birth.
    pub age: u32,
    /// Frames with an associated measurement.
    pub hits: u32,
    /// Consecutive frames without one.
    pub misses: u32,
    pub confirmed: bool,
    /// Index of the BEV object associated in the last step, if any.
    pub detection: Option<usize>,
}

impl Track {
    pub fn is_finite(&self) -> bool {
        [self.x_m, self.y_m, self.vx_mps, self.vy_mps, self.ax_mps2]
            .iter()
            .all(|v| v.is_finite())
            && self.cov.iter().flatten().all(|v| v.is_finite())
    }

    /// Standard deviation of the longitudinal position, m.
    pub fn x_std_m(&self) -> f64 {
        self.cov[0][0].max(0.0).sqrt()
    }
}

#[derive(Debug, Clone)]
struct Filter {
    s: Vec5,
    p: Mat5,
    votes: ClassVotes,
    track: Track,
}

impl Filter {
    fn publish(&mut self) {
        let t = &mut self.track;
        t.x_m = self.s[0];
        t.y_m = self.s[1];
        t.vx_mps = self.s[2];
        t.vy_mps = self.s[3];
        t.ax_mps2 = self.s[4];
        t.cov = self.p;
    }
}

/// What happened in one [`Tracker::step`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepReport {
    /// The frame time went backwards: all tracks were dropped.
    pub time_went_back: bool,
    /// The gap since the last frame exceeded `max_gap_s`: all tracks were dropped.
    pub gap_reset: bool,
    /// Measurements skipped because they (or their covariance) were not finite.
    pub rejected_measurements: usize,
}

/// The tracker. Time comes only from the frames' capture times.
#[derive(Debug, Clone)]
pub struct Tracker {
    params: TrackerParams,
    filters: Vec<Filter>,
    published: Vec<Track>,
    pairs: Vec<(f64, usize, usize)>,
    track_used: Vec<bool>,
    meas_used: Vec<bool>,
    next_id: u32,
    last_t_ns: Option<u64>,
}

impl Tracker {
    pub fn new(params: TrackerParams) -> Tracker {
        let cap = params.max_tracks;
        Tracker {
            params,
            filters: Vec::with_capacity(cap),
            published: Vec::with_capacity(cap),
            pairs: Vec::with_capacity(cap * 4),
            track_used: Vec::with_capacity(cap),
            meas_used: Vec::with_capacity(cap),
            next_id: 1,
            last_t_ns: None,
        }
    }

    pub fn params(&self) -> &TrackerParams {
        &self.params
    }

    /// All live tracks (tentative and confirmed), every one finite.
    pub fn tracks(&self) -> &[Track] {
        &self.published
    }

    /// Drops every track (e.g. after a calibration change).
    pub fn reset(&mut self) {
        self.filters.clear();
        self.published.clear();
        self.last_t_ns = None;
    }

    /// One frame: predict every track to `t_ns`, associate `objects`, update, manage births and
    /// deaths. `ego` supplies the acceleration and yaw rate for the prediction.
    pub fn step(&mut self, t_ns: u64, objects: &[BevObject], ego: &EgoState) -> StepReport {
        let mut report = StepReport::default();
        let dt = match self.last_t_ns {
            Some(last) if t_ns < last => {
                report.time_went_back = true;
                self.filters.clear();
                0.0
            }
            Some(last) => {
                let dt = (t_ns - last) as f64 * 1e-9;
                if dt > self.params.max_gap_s {
                    report.gap_reset = true;
                    self.filters.clear();
                    0.0
                } else {
                    dt
                }
            }
            None => 0.0,
        };
        self.last_t_ns = Some(t_ns);
        let a_ego = ego.accel_or_zero();
        let yaw = ego.yaw_rate_or_zero();
        let speed = if ego.speed_mps.is_finite() {
            ego.speed_mps.max(0.0)
        } else {
            0.0
        };

        if dt > 0.0 {
            for f in &mut self.filters {
                predict(f, dt, a_ego, yaw, &self.params);
                f.track.age = f.track.age.saturating_add(1);
            }
        }

        // Gate and associate.
        self.pairs.clear();
        self.track_used.clear();
        self.track_used.resize(self.filters.len(), false);
        self.meas_used.clear();
        self.meas_used.resize(objects.len(), false);
        for (mi, o) in objects.iter().enumerate() {
            if !measurement_ok(o) {
                report.rejected_measurements += 1;
                self.meas_used[mi] = true; // never used, never born
                continue;
            }
            let r = self.measurement_cov(o);
            for (ti, f) in self.filters.iter().enumerate() {
                if !compatible(f.track.class, o.class) {
                    continue;
                }
                if let Some(d2) = mahalanobis2(f, o, &r) {
                    if d2 <= self.params.gate_chi2 {
                        self.pairs.push((d2, ti, mi));
                    }
                }
            }
        }
        self.pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        for f in &mut self.filters {
            f.track.detection = None;
        }
        for k in 0..self.pairs.len() {
            let (_, ti, mi) = self.pairs[k];
            if self.track_used[ti] || self.meas_used[mi] {
                continue;
            }
            self.track_used[ti] = true;
            self.meas_used[mi] = true;
            let r = self.measurement_cov(&objects[mi]);
            let f = &mut self.filters[ti];
            update(f, &objects[mi], &r);
            f.votes.add(objects[mi].class);
            f.track.class = f.votes.majority(f.track.class);
            f.track.hits = f.track.hits.saturating_add(1);
            f.track.misses = 0;
            f.track.detection = Some(mi);
            if f.track.hits >= self.params.confirm_hits {
                f.track.confirmed = true;
            }
        }
        for (ti, f) in self.filters.iter_mut().enumerate() {
            if !self.track_used[ti] {
                f.track.misses = f.track.misses.saturating_add(1);
            }
        }

        // Deaths.
        let p = &self.params;
        self.filters.retain(|f| {
            let t = &f.track;
            let limit = if t.confirmed {
                p.delete_misses
            } else {
                p.tentative_max_misses
            };
            let finite =
                f.s.iter().all(|v| v.is_finite()) && f.p.iter().flatten().all(|v| v.is_finite());
            finite
                && t.misses <= limit
                && f.p[0][0].max(f.p[1][1]) <= p.max_position_std_m * p.max_position_std_m
                && f.s[0] > -10.0
                && f.s[0] < p.max_range_m
                && f.s[1].abs() < 50.0
        });

        // Births.
        for (mi, o) in objects.iter().enumerate() {
            if self.meas_used[mi] || self.filters.len() >= self.params.max_tracks {
                continue;
            }
            let r = self.measurement_cov(o);
            let noise = self.params.process_noise.get(o.class);
            let v0 = noise.init_speed_std_mps.max(0.1);
            let a0 = self.params.init_accel_std_mps2.max(0.01);
            let mut pm = [[0.0; N]; N];
            pm[0][0] = r[0][0];
            pm[0][1] = r[0][1];
            pm[1][0] = r[1][0];
            pm[1][1] = r[1][1];
            pm[2][2] = v0 * v0;
            pm[3][3] = v0 * v0;
            pm[4][4] = a0 * a0;
            // Prior: stationary over ground (most road users in front of a car are slow
            // relative to it, and the stationary obstacle is the one that must not be missed).
            let s = [o.x_m, o.y_m, -speed, 0.0, 0.0];
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1).max(1);
            let mut f = Filter {
                s,
                p: pm,
                votes: ClassVotes::new(o.class),
                track: Track {
                    id,
                    class: o.class,
                    x_m: 0.0,
                    y_m: 0.0,
                    vx_mps: 0.0,
                    vy_mps: 0.0,
                    ax_mps2: 0.0,
                    cov: pm,
                    age: 0,
                    hits: 1,
                    misses: 0,
                    confirmed: self.params.confirm_hits <= 1,
                    detection: Some(mi),
                },
            };
            f.publish();
            self.filters.push(f);
        }

        self.published.clear();
        for f in &mut self.filters {
            f.publish();
            if f.track.is_finite() {
                self.published.push(f.track);
            }
        }
        report
    }

    /// Ground measurement covariance: the BEV object's own (from the homography sensitivity),
    /// scaled from its reference 1 px to the bottom-centre noise, with a floor.
    fn measurement_cov(&self, o: &BevObject) -> [[f64; 2]; 2] {
        let sigma = self.params.image_pixel_sigma_px();
        let s2 = sigma * sigma;
        let floor = self.params.min_position_std_m * self.params.min_position_std_m;
        [
            [o.cov_1px_m2[0][0] * s2 + floor, o.cov_1px_m2[0][1] * s2],
            [o.cov_1px_m2[1][0] * s2, o.cov_1px_m2[1][1] * s2 + floor],
        ]
    }
}

fn measurement_ok(o: &BevObject) -> bool {
    o.x_m.is_finite()
        && o.y_m.is_finite()
        && o.cov_1px_m2.iter().flatten().all(|v| v.is_finite())
        && o.cov_1px_m2[0][0] >= 0.0
        && o.cov_1px_m2[1][1] >= 0.0
        && o.class != RoadUser::Ignored
}

fn predict(f: &mut Filter, dt: f64, a_ego: f64, yaw_rate: f64, p: &TrackerParams) {
    // Rotation by −ω·dt of position and velocity.
    let th = -yaw_rate * dt;
    let (sn, cs) = th.sin_cos();
    let mut rot = identity();
    rot[0][0] = cs;
    rot[0][1] = -sn;
    rot[1][0] = sn;
    rot[1][1] = cs;
    rot[2][2] = cs;
    rot[2][3] = -sn;
    rot[3][2] = sn;
    rot[3][3] = cs;
    let decay = if p.accel_tau_s > 0.0 {
        (-dt / p.accel_tau_s).exp()
    } else {
        0.0
    };
    let mut fm = identity();
    fm[0][2] = dt;
    fm[0][4] = 0.5 * dt * dt;
    fm[1][3] = dt;
    fm[2][4] = dt;
    fm[4][4] = decay;
    let f_total = matmul(&fm, &rot);
    let s = f.s;
    let mut s_new = [0.0; N];
    for (i, out) in s_new.iter_mut().enumerate() {
        *out = (0..N).map(|k| f_total[i][k] * s[k]).sum();
    }
    // Ego acceleration is a known input: it changes the relative motion.
    s_new[0] -= 0.5 * a_ego * dt * dt;
    s_new[2] -= a_ego * dt;
    f.s = s_new;

    let fp = matmul(&f_total, &f.p);
    let mut pn = matmul_bt(&fp, &f_total);
    let noise = p.process_noise.get(f.track.class);
    let qa = noise.lateral_accel_mps2 * noise.lateral_accel_mps2;
    let ql = noise.longitudinal_accel_mps2 * noise.longitudinal_accel_mps2;
    let qj = noise.jerk_mps3 * noise.jerk_mps3;
    let (dt2, dt3, dt4, dt5) = (dt * dt, dt * dt * dt, dt.powi(4), dt.powi(5));
    // Lateral: white acceleration.
    pn[1][1] += qa * dt3 / 3.0;
    pn[1][3] += qa * dt2 / 2.0;
    pn[3][1] += qa * dt2 / 2.0;
    pn[3][3] += qa * dt;
    // Longitudinal: white acceleration on (x, vx) plus white jerk on (x, vx, ax).
    pn[0][0] += ql * dt3 / 3.0 + qj * dt5 / 20.0;
    pn[0][2] += ql * dt2 / 2.0 + qj * dt4 / 8.0;
    pn[2][0] += ql * dt2 / 2.0 + qj * dt4 / 8.0;
    pn[2][2] += ql * dt + qj * dt3 / 3.0;
    pn[0][4] += qj * dt3 / 6.0;
    pn[4][0] += qj * dt3 / 6.0;
    pn[2][4] += qj * dt2 / 2.0;
    pn[4][2] += qj * dt2 / 2.0;
    pn[4][4] += qj * dt;
    symmetrize(&mut pn);
    f.p = pn;
}

/// Innovation covariance `S = H P Hᵀ + R` and its inverse; `None` if singular.
fn innovation(f: &Filter, r: &Mat2) -> Option<(Mat2, Mat2)> {
    let s = [
        [f.p[0][0] + r[0][0], f.p[0][1] + r[0][1]],
        [f.p[1][0] + r[1][0], f.p[1][1] + r[1][1]],
    ];
    let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
    if !(det.is_finite() && det > 1e-12) {
        return None;
    }
    let inv = [
        [s[1][1] / det, -s[0][1] / det],
        [-s[1][0] / det, s[0][0] / det],
    ];
    Some((s, inv))
}

fn mahalanobis2(f: &Filter, o: &BevObject, r: &[[f64; 2]; 2]) -> Option<f64> {
    let (_, si) = innovation(f, r)?;
    let nx = o.x_m - f.s[0];
    let ny = o.y_m - f.s[1];
    let d2 = nx * (si[0][0] * nx + si[0][1] * ny) + ny * (si[1][0] * nx + si[1][1] * ny);
    d2.is_finite().then_some(d2)
}

fn update(f: &mut Filter, o: &BevObject, r: &[[f64; 2]; 2]) {
    let Some((_, si)) = innovation(f, r) else {
        return;
    };
    let nx = o.x_m - f.s[0];
    let ny = o.y_m - f.s[1];
    // K = P Hᵀ S⁻¹ (5×2); P Hᵀ = first two columns of P.
    let mut k = [[0.0; 2]; N];
    for (i, row) in k.iter_mut().enumerate() {
        let (p0, p1) = (f.p[i][0], f.p[i][1]);
        row[0] = p0 * si[0][0] + p1 * si[1][0];
        row[1] = p0 * si[0][1] + p1 * si[1][1];
    }
    for (i, row) in k.iter().enumerate() {
        f.s[i] += row[0] * nx + row[1] * ny;
    }
    // P = (I − K H) P: subtract K · (rows 0 and 1 of P).
    let (h0, h1) = (f.p[0], f.p[1]);
    for (i, row) in k.iter().enumerate() {
        for j in 0..N {
            f.p[i][j] -= row[0] * h0[j] + row[1] * h1[j];
        }
    }
    symmetrize(&mut f.p);
}

fn identity() -> Mat5 {
    let mut m = [[0.0; N]; N];
    for (i, row) in m.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    m
}

fn matmul(a: &Mat5, b: &Mat5) -> Mat5 {
    let mut m = [[0.0; N]; N];
    for i in 0..N {
        for k in 0..N {
            let aik = a[i][k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..N {
                m[i][j] += aik * b[k][j];
            }
        }
    }
    m
}

/// `a · bᵀ`.
fn matmul_bt(a: &Mat5, b: &Mat5) -> Mat5 {
    let mut m = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..N {
            m[i][j] = (0..N).map(|k| a[i][k] * b[j][k]).sum();
        }
    }
    m
}

fn symmetrize(p: &mut Mat5) {
    for i in 0..N {
        for j in (i + 1)..N {
            let v = 0.5 * (p[i][j] + p[j][i]);
            p[i][j] = v;
            p[j][i] = v;
        }
        if p[i][i] < 0.0 {
            p[i][i] = 0.0;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    fn obj(x: f64, y: f64, class: RoadUser) -> BevObject {
        // About what a 1000 px focal length, 1.3 m high camera gives per pixel.
        let sx = (x * x / 1300.0).max(0.01);
        let sy = (x / 1000.0).max(0.002);
        BevObject {
            x_m: x,
            y_m: y,
            class,
            detection: 0,
            cov_1px_m2: [[sx * sx, 0.0], [0.0, sy * sy]],
        }
    }

    #[test]
    fn pixel_noise_follows_the_detector_scale_unless_given() {
        // SSD at 300 px on a 960-px frame: 3.2 image px per input px.
        let derived = TrackerParams::default().for_detector_scale(3.2);
        assert!((derived.image_pixel_sigma_px() - 4.0).abs() < 1e-12);
        let given = TrackerParams {
            pixel_sigma_px: Some(1.5),
            ..TrackerParams::default()
        }
        .for_detector_scale(3.2);
        assert_eq!(given.image_pixel_sigma_px(), 1.5);
        // A detector that sees more pixels than the frame has never shrinks the noise.
        let upscaled = TrackerParams::default().for_detector_scale(0.5);
        assert_eq!(upscaled.image_pixel_sigma_px(), 1.25);
        let bad = TrackerParams {
            pixel_sigma_px: Some(0.0),
            ..TrackerParams::default()
        };
        let refused = bad.validate().unwrap_err();
        assert_eq!(refused.key, "pixel_sigma_px");
        assert!(refused.message.contains("0.1–50 px"), "{refused}");
    }

    #[test]
    fn confirms_after_n_hits_and_deletes_after_m_misses() {
        let p = TrackerParams::default();
        let mut t = Tracker::new(p.clone());
        let ego = EgoState::with_speed(0, 10.0);
        for k in 0..3u64 {
            let x = 30.0 - 0.5 * k as f64;
            t.step(k * 50 * MS, &[obj(x, 0.0, RoadUser::Car)], &ego);
            assert_eq!(t.tracks().len(), 1);
            assert_eq!(t.tracks()[0].confirmed, k + 1 >= 3, "frame {k}");
        }
        let id = t.tracks()[0].id;
        for k in 3..(3 + u64::from(p.delete_misses)) {
            t.step(k * 50 * MS, &[], &ego);
            assert_eq!(t.tracks().len(), 1, "coasting at frame {k}");
            assert_eq!(t.tracks()[0].id, id);
        }
        t.step((4 + u64::from(p.delete_misses)) * 50 * MS, &[], &ego);
        assert!(t.tracks().is_empty());
    }

    #[test]
    fn a_single_false_positive_never_confirms() {
        let mut t = Tracker::new(TrackerParams::default());
        let ego = EgoState::with_speed(0, 10.0);
        t.step(0, &[obj(12.0, 0.0, RoadUser::Pedestrian)], &ego);
        for k in 1..10 {
            t.step(k * 50 * MS, &[], &ego);
            assert!(t.tracks().iter().all(|tr| !tr.confirmed));
        }
        assert!(t.tracks().is_empty());
    }

    #[test]
    fn estimates_the_closing_speed_of_a_stationary_target_while_the_ego_brakes() {
        let mut t = Tracker::new(TrackerParams::default());
        let (mut v, mut x) = (15.0f64, 60.0f64);
        let dt = 0.05;
        for k in 0..60u64 {
            let a = if k > 20 { -6.0 } else { 0.0 };
            let ego = EgoState {
                accel_mps2: Some(a),
                ..EgoState::with_speed(k * 50 * MS, v)
            };
            t.step(k * 50 * MS, &[obj(x, 0.3, RoadUser::Car)], &ego);
            x -= v * dt + 0.5 * a * dt * dt;
            v += a * dt;
        }
        let tr = t.tracks()[0];
        let v_before = v + 6.0 * 0.05; // the last update saw the previous speed
        assert!(
            (tr.vx_mps + v_before).abs() < 0.8,
            "vx {} vs −{v_before}",
            tr.vx_mps
        );
        assert!(
            tr.ax_mps2.abs() < 1.0,
            "a stationary target does not accelerate: {}",
            tr.ax_mps2
        );
    }

    #[test]
    fn estimates_a_braking_lead() {
        let mut t = Tracker::new(TrackerParams::default());
        let ego = EgoState::with_speed(0, 14.0);
        let (mut gap, mut v_lead) = (20.0f64, 14.0f64);
        let dt = 0.05;
        for k in 0..30u64 {
            let e = EgoState {
                t_ns: k * 50 * MS,
                ..ego
            };
            t.step(k * 50 * MS, &[obj(gap, 0.0, RoadUser::Car)], &e);
            let a = if k >= 5 { -6.0 } else { 0.0 };
            gap += (v_lead - 14.0) * dt + 0.5 * a * dt * dt;
            v_lead += a * dt;
        }
        let tr = t.tracks()[0];
        assert!(tr.ax_mps2 < -3.0, "ax {}", tr.ax_mps2);
        assert!(
            (tr.vx_mps - (v_lead - 14.0)).abs() < 1.5,
            "vx {} vs {}",
            tr.vx_mps,
            v_lead - 14.0
        );
    }

    #[test]
    fn two_targets_keep_their_identities_and_classes_do_not_mix() {
        let mut t = Tracker::new(TrackerParams::default());
        let ego = EgoState::with_speed(0, 0.0);
        for k in 0..10u64 {
            let objs = [
                obj(10.0, 1.0, RoadUser::Pedestrian),
                obj(10.0, 1.2, RoadUser::Car),
                obj(25.0, -3.0, RoadUser::Car),
            ];
            t.step(k * 50 * MS, &objs, &ego);
        }
        assert_eq!(t.tracks().len(), 3);
        assert!(t.tracks().iter().all(|tr| tr.confirmed && tr.hits == 10));
    }

    #[test]
    fn vehicles_and_two_wheelers_are_compatible_pedestrians_and_other_only_with_themselves() {
        use RoadUser::*;
        let yes = [
            (Car, TruckBus),
            (Car, Motorcycle),
            (TruckBus, Motorcycle),
            (Cyclist, Motorcycle),
        ];
        for a in RoadUser::ALL {
            for b in RoadUser::ALL {
                let expected = a != Ignored
                    && b != Ignored
                    && (a == b || yes.contains(&(a, b)) || yes.contains(&(b, a)));
                assert_eq!(compatible(a, b), expected, "{a} / {b}");
            }
        }
    }

    #[test]
    fn the_class_is_the_majority_and_a_tie_keeps_the_current_one() {
        let mut v = ClassVotes::new(RoadUser::Car);
        v.add(RoadUser::TruckBus);
        assert_eq!(v.majority(RoadUser::Car), RoadUser::Car, "1:1 keeps car");
        assert_eq!(v.majority(RoadUser::TruckBus), RoadUser::TruckBus);
        v.add(RoadUser::TruckBus);
        assert_eq!(v.majority(RoadUser::Car), RoadUser::TruckBus, "2:1");
        v.add(RoadUser::Ignored);
        assert_eq!(v.majority(RoadUser::TruckBus), RoadUser::TruckBus);

        // A label in a third of the frames never wins, however long the track lives.
        let mut v = ClassVotes::new(RoadUser::Car);
        let mut class = RoadUser::Car;
        for k in 0..1000 {
            v.add(if k % 3 == 0 {
                RoadUser::TruckBus
            } else {
                RoadUser::Car
            });
            class = v.majority(class);
            assert_eq!(class, RoadUser::Car, "vote {k}");
        }
        // Counts are bounded: a consistent new label takes over after about CAP votes.
        let mut n = 0;
        while class == RoadUser::Car {
            v.add(RoadUser::TruckBus);
            class = v.majority(class);
            n += 1;
        }
        assert!(
            n <= usize::from(ClassVotes::CAP) + 1,
            "{n} votes to re-label"
        );
    }

    #[test]
    fn a_car_labelled_truck_in_some_frames_keeps_its_track_and_its_class() {
        let mut t = Tracker::new(TrackerParams::default());
        let ego = EgoState::with_speed(0, 10.0);
        // Long runs of the other label too: longer than the misses that delete a track.
        let labels = "CCCCTCTTCCCTTTTTTTTCCCCCCCCCCCCCTC";
        let mut x = 40.0;
        for (k, l) in labels.chars().enumerate() {
            let class = if l == 'T' {
                RoadUser::TruckBus
            } else {
                RoadUser::Car
            };
            t.step(k as u64 * 50 * MS, &[obj(x, 0.5, class)], &ego);
            x -= 0.5;
            assert_eq!(t.tracks().len(), 1, "frame {k}: {:?}", t.tracks());
            assert_eq!(t.tracks()[0].id, 1, "frame {k}");
            assert_eq!(t.tracks()[0].detection, Some(0), "frame {k}");
        }
        let tr = t.tracks()[0];
        assert_eq!(tr.class, RoadUser::Car);
        assert_eq!(tr.hits as usize, labels.len());
        assert!((tr.vx_mps + 10.0).abs() < 1.0, "vx {}", tr.vx_mps);
    }

    #[test]
    fn a_pedestrian_detection_never_updates_a_car_track() {
        let mut t = Tracker::new(TrackerParams::default());
        let ego = EgoState::with_speed(0, 0.0);
        for k in 0..5u64 {
            t.step(k * 50 * MS, &[obj(15.0, 0.0, RoadUser::Car)], &ego);
        }
        t.step(5 * 50 * MS, &[obj(15.0, 0.0, RoadUser::Pedestrian)], &ego);
        let car = t.tracks().iter().find(|tr| tr.id == 1).unwrap();
        assert_eq!(
            (car.class, car.misses, car.detection),
            (RoadUser::Car, 1, None)
        );
        assert!(t
            .tracks()
            .iter()
            .any(|tr| tr.id != 1 && tr.class == RoadUser::Pedestrian));
    }

    #[test]
    fn time_going_back_resets() {
        let mut t = Tracker::new(TrackerParams::default());
        let ego = EgoState::with_speed(0, 5.0);
        t.step(100 * MS, &[obj(10.0, 0.0, RoadUser::Car)], &ego);
        let r = t.step(50 * MS, &[], &ego);
        assert!(r.time_went_back);
        assert!(t.tracks().is_empty());
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            -200.0f64..200.0,
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.0),
            Just(1e300),
            Just(-1e300),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn published_tracks_are_always_finite(
            frames in proptest::collection::vec(
                proptest::collection::vec((any_f64(), any_f64(), any_f64(), 0usize..3), 0..6), 1..25),
            speed in any_f64(),
            accel in any_f64(),
            yaw in any_f64(),
            dt_ms in 1u64..200,
        ) {
            let mut t = Tracker::new(TrackerParams::default());
            let classes = [RoadUser::Car, RoadUser::Pedestrian, RoadUser::Cyclist];
            for (k, f) in frames.iter().enumerate() {
                let objs: Vec<BevObject> = f.iter().map(|&(x, y, c, cl)| BevObject {
                    x_m: x, y_m: y, class: classes[cl], detection: 0,
                    cov_1px_m2: [[c.abs(), 0.0], [0.0, c.abs()]],
                }).collect();
                let ego = EgoState {
                    speed_mps: speed, accel_mps2: Some(accel), yaw_rate_rps: Some(yaw),
                    ..EgoState::with_speed(k as u64 * dt_ms * MS, 0.0)
                };
                t.step(k as u64 * dt_ms * MS, &objs, &ego);
                for tr in t.tracks() {
                    prop_assert!(tr.is_finite(), "{tr:?}");
                }
            }
        }
    }
}
