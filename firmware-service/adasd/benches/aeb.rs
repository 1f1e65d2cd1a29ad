//! Tracker + decider time per frame with 64 road users in view (goal: p99 < 50 µs).
//!
//! `cargo bench -p adasd --bench aeb` prints p50 / p90 / p99 / max over 20 000 frames after a
//! warm-up. Each frame: 64 BEV measurements (noisy, about 10 % dropouts) → `Tracker::step` →
//! `AebDecider::step`. Timing lives here, never in pass/fail tests.

use adas_core::aeb::decider::{AebDecider, AebParams};
use adas_core::aeb::EgoState;
use adas_core::perception::{BevObject, Tracker, TrackerParams};
use adas_plugins::manifest::RoadUser;
use std::hint::black_box;
use std::time::Instant;

const OBJECTS: usize = 64;
const FRAMES: usize = 20_000;
const WARMUP: usize = 500;
const DT_NS: u64 = 50_000_000;

struct Lcg(u64);

impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        // Sum of 4 uniforms, variance 1/3 → scale to ≈ N(0, 1).
        (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.732
    }
}

fn main() {
    let classes = [
        RoadUser::Car,
        RoadUser::Pedestrian,
        RoadUser::Cyclist,
        RoadUser::TruckBus,
    ];
    // 64 road users on a grid ahead (5–85 m, ±12 m), each moving at its own constant velocity
    // relative to the ego; they wrap around so the scene stays full.
    let mut objs: Vec<(f64, f64, f64, f64, RoadUser)> = (0..OBJECTS)
        .map(|i| {
            let x = 5.0 + 80.0 * ((i % 8) as f64 + 0.5) / 8.0;
            let y = -12.0 + 24.0 * ((i / 8) as f64 + 0.5) / 8.0;
            let vx = -8.0 + (i % 5) as f64;
            let vy = if i % 3 == 0 { 0.8 } else { 0.0 };
            (x, y, vx, vy, classes[i % classes.len()])
        })
        .collect();
    let mut rng = Lcg(42);
    let mut tracker = Tracker::new(TrackerParams {
        max_tracks: 96,
        ..TrackerParams::default()
    });
    let mut decider = AebDecider::new(AebParams::default());
    let mut times_ns: Vec<u64> = Vec::with_capacity(FRAMES);
    let mut meas: Vec<BevObject> = Vec::with_capacity(OBJECTS);
    let mut active = 0usize;
    for k in 0..(WARMUP + FRAMES) {
        let t_ns = k as u64 * DT_NS;
        meas.clear();
        for (i, o) in objs.iter_mut().enumerate() {
            o.0 += o.2 * 0.05;
            o.1 += o.3 * 0.05;
            if o.0 < 2.0 {
                o.0 += 80.0;
            }
            if o.1 > 12.0 {
                o.1 -= 24.0;
            }
            if rng.uniform() < 0.1 {
                continue;
            }
            let sx = (o.0 * o.0 / 1300.0).max(0.02);
            let sy = (o.0 / 1000.0).max(0.005);
            meas.push(BevObject {
                x_m: o.0 + 1.5 * sx * rng.normal(),
                y_m: o.1 + 1.5 * sy * rng.normal(),
                class: o.4,
                detection: i,
                cov_1px_m2: [[sx * sx, 0.0], [0.0, sy * sy]],
            });
        }
        let ego = EgoState::with_speed(t_ns, 15.0);
        let start = Instant::now();
        tracker.step(t_ns, black_box(&meas), &ego);
        let d = decider.step(t_ns, tracker.tracks(), Some(&ego));
        let elapsed = start.elapsed();
        black_box(&d);
        if k >= WARMUP {
            times_ns.push(elapsed.as_nanos() as u64);
            active += usize::from(d.stage > adas_core::aeb::decider::Stage::None);
        }
    }
    times_ns.sort_unstable();
    let q = |p: f64| times_ns[((times_ns.len() - 1) as f64 * p).round() as usize] as f64 / 1e3;
    let confirmed = tracker.tracks().iter().filter(|t| t.confirmed).count();
    println!(
        "tracker+decider, {OBJECTS} objects ({confirmed} confirmed tracks at the end), {FRAMES} frames: \
         p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs  (frames with an active stage: {active})",
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
}
