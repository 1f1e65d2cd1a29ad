//! Round trips through synthetic cameras (issue 6, item 5): known intrinsics, height, pitch, yaw
//! and roll → exact point pairs → the solver (DLT + Levenberg–Marquardt, optionally RANSAC)
//! recovers the homography.
//!
//! # The noise bound
//! With pixel noise σ on n ≥ 4 points, the least-squares fit predicts the image of a calibration
//! point with an error whose standard deviation is σ·√hᵢᵢ, where hᵢᵢ ≤ 1 is the point's leverage
//! (on average 8/n for the 8 degrees of freedom of a homography). That pixel error maps to the
//! ground through the local Jacobian `J = ∂(x, y)/∂(u, v)` (metres per pixel, see
//! `Homography::ground_sensitivity`), so the ground error at a calibration point is at most about
//! `3 σ ‖J‖` (3 standard deviations, leverage ≤ 1, ‖J‖₂ ≤ ‖J‖_F). The test asserts
//! `err ≤ 3 · σ · ‖J‖_F` at every calibration point and inside their hull, for σ = 0.5 px.
//! The same per-point bound holds whether the point is at 3 m (a few mm) or 35 m (decimetres):
//! the error budget is dominated by the sensitivity, which grows with the square of the distance.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use adas_calibration::{
    solve_homography_ransac, solve_homography_refined, GroundPoint, Homography, Intrinsics,
    Mounting, PinholeCamera, PointPair, RansacOptions,
};

/// Deterministic standard normal numbers (SplitMix64 + Box–Muller).
struct Gauss(u64);

impl Gauss {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

struct Case {
    name: &'static str,
    size: (f64, f64),
    camera: PinholeCamera,
}

fn cases() -> Vec<Case> {
    let mk = |k: Intrinsics, x, y, height, pitch: f64, yaw: f64, roll: f64| {
        PinholeCamera::new(
            k,
            Mounting {
                x,
                y,
                height,
                pitch: pitch.to_radians(),
                yaw: yaw.to_radians(),
                roll: roll.to_radians(),
            },
        )
        .unwrap()
    };
    vec![
        Case {
            name: "windscreen 1280x720, 60° hfov",
            size: (1280.0, 720.0),
            camera: mk(
                Intrinsics::from_hfov(1280.0, 720.0, 60f64.to_radians()),
                -1.5,
                0.0,
                1.3,
                3.0,
                1.0,
                0.5,
            ),
        },
        Case {
            name: "wide 1920x1080, 90° hfov, pitched down",
            size: (1920.0, 1080.0),
            camera: mk(
                Intrinsics::from_hfov(1920.0, 1080.0, 90f64.to_radians()),
                -1.8,
                0.3,
                1.6,
                8.0,
                -2.0,
                -1.0,
            ),
        },
        Case {
            name: "truck 640x480, non-square pixels, off-centre principal point",
            size: (640.0, 480.0),
            camera: mk(
                Intrinsics {
                    fx: 500.0,
                    fy: 520.0,
                    cx: 300.0,
                    cy: 250.0,
                },
                -0.5,
                -0.2,
                2.5,
                12.0,
                3.0,
                2.0,
            ),
        },
    ]
}

/// Ground points on a grid that are visible in the image, with their exact pixels.
fn exact_pairs(c: &Case) -> Vec<PointPair> {
    let mut out = Vec::new();
    for &x in &[3.0, 5.0, 8.0, 12.0, 18.0, 25.0, 35.0] {
        for &y in &[-4.0, -2.0, 0.0, 2.0, 4.0] {
            if let Ok(p) = c.camera.project_point([x, y, 0.0]) {
                if p.u >= 0.0 && p.u <= c.size.0 && p.v >= 0.0 && p.v <= c.size.1 {
                    out.push(PointPair::new(p.u, p.v, x, y));
                }
            }
        }
    }
    out
}

/// Largest ground error of `fit` against the true camera at the given ground points, and the
/// per-point ratio error / (3 σ ‖J‖_F).
fn ground_errors(
    truth: &PinholeCamera,
    fit: &Homography,
    pts: &[GroundPoint],
    sigma: f64,
) -> (f64, f64) {
    let h_true = truth.ground_homography().unwrap();
    let (mut worst, mut worst_ratio) = (0.0f64, 0.0f64);
    for g in pts {
        let px = truth.project_point([g.x, g.y, 0.0]).unwrap();
        let e = fit.project(px.u, px.v).unwrap().distance_to(g);
        let s = h_true.ground_sensitivity(px.u, px.v).unwrap();
        let j = (s.dx_du.powi(2) + s.dx_dv.powi(2) + s.dy_du.powi(2) + s.dy_dv.powi(2)).sqrt();
        worst = worst.max(e);
        if sigma > 0.0 {
            worst_ratio = worst_ratio.max(e / (3.0 * sigma * j));
        }
    }
    (worst, worst_ratio)
}

/// Evaluation points inside the calibrated area (between the grid lines).
fn inner_points(pairs: &[PointPair]) -> Vec<GroundPoint> {
    let x_max = pairs.iter().map(|p| p.ground.x).fold(0.0, f64::max);
    let mut out = Vec::new();
    for &x in &[4.0, 6.5, 10.0, 15.0, 21.5, 30.0] {
        for &y in &[-3.0, -1.0, 1.0, 3.0] {
            if x < x_max {
                out.push(GroundPoint::new(x, y));
            }
        }
    }
    out
}

#[test]
fn exact_points_recover_the_homography_to_a_millimetre() {
    for c in cases() {
        let pairs = exact_pairs(&c);
        assert!(pairs.len() >= 15, "{}: {} points", c.name, pairs.len());
        let r = solve_homography_refined(&pairs).unwrap();
        let mut pts: Vec<GroundPoint> = pairs.iter().map(|p| p.ground).collect();
        pts.extend(inner_points(&pairs));
        let (worst, _) = ground_errors(&c.camera, &r.fit.homography, &pts, 0.0);
        println!(
            "{}: {} points, exact: max ground error {:.2e} m, reprojection RMS {:.2e} px",
            c.name,
            pairs.len(),
            worst,
            r.fit.reprojection_rms_px
        );
        assert!(worst < 1e-3, "{}: {worst} m", c.name);
        assert!(
            worst < 1e-6,
            "{}: {worst} m (should be numerically exact)",
            c.name
        );
        // Same mapping as the analytic homography, also near the horizon (~100 m).
        let truth = c.camera.ground_homography().unwrap();
        let far = truth.to_image(100.0, 0.0).unwrap();
        let a = truth.project(far.u, far.v).unwrap();
        let b = r.fit.homography.project(far.u, far.v).unwrap();
        assert!(
            a.distance_to(&b) < 1e-3,
            "{}: at 100 m {a:?} vs {b:?}",
            c.name
        );
    }
}

#[test]
fn half_pixel_noise_stays_within_the_sensitivity_bound() {
    let sigma = 0.5;
    for (k, c) in cases().into_iter().enumerate() {
        let mut g = Gauss(0x5EED + k as u64);
        let exact = exact_pairs(&c);
        let noisy: Vec<PointPair> = exact
            .iter()
            .map(|p| {
                PointPair::new(
                    p.pixel.u + sigma * g.normal(),
                    p.pixel.v + sigma * g.normal(),
                    p.ground.x,
                    p.ground.y,
                )
            })
            .collect();
        let r = solve_homography_refined(&noisy).unwrap();
        // The RMS of the 2-D residual distances estimates σ·√2·√((2n − 8) / 2n).
        let n = noisy.len() as f64;
        let expect = sigma * (2.0 * (2.0 * n - 8.0) / (2.0 * n)).sqrt();
        assert!(
            (r.fit.reprojection_rms_px / expect - 1.0).abs() < 0.35,
            "{}: RMS {} vs expected {expect}",
            c.name,
            r.fit.reprojection_rms_px
        );
        let mut pts: Vec<GroundPoint> = exact.iter().map(|p| p.ground).collect();
        pts.extend(inner_points(&exact));
        let (worst, ratio) = ground_errors(&c.camera, &r.fit.homography, &pts, sigma);
        // Near points: a few centimetres at most.
        let (near, _) = ground_errors(
            &c.camera,
            &r.fit.homography,
            &pts.iter()
                .copied()
                .filter(|p| p.x <= 8.0)
                .collect::<Vec<_>>(),
            sigma,
        );
        println!(
            "{}: σ = {sigma} px: RMS {:.3} px, max ground error {:.3} m (≤ 8 m: {:.4} m), \
             worst error / (3σ‖J‖) = {ratio:.2}",
            c.name, r.fit.reprojection_rms_px, worst, near
        );
        assert!(
            ratio <= 1.0,
            "{}: error exceeds 3σ‖J‖ (ratio {ratio})",
            c.name
        );
        assert!(near < 0.05, "{}: {near} m within 8 m", c.name);
    }
}

#[test]
fn ransac_then_lm_rejects_30_percent_gross_outliers() {
    for (k, c) in cases().into_iter().enumerate() {
        let mut g = Gauss(0xBAD + k as u64);
        let mut pairs: Vec<PointPair> = exact_pairs(&c)
            .into_iter()
            .map(|p| {
                PointPair::new(
                    p.pixel.u + 0.3 * g.normal(),
                    p.pixel.v + 0.3 * g.normal(),
                    p.ground.x,
                    p.ground.y,
                )
            })
            .collect();
        let n_out = (pairs.len() * 3).div_ceil(10);
        let mut bad = Vec::new();
        while bad.len() < n_out {
            let i = (g.uniform() * pairs.len() as f64) as usize % pairs.len();
            if bad.contains(&i) {
                continue;
            }
            // Gross: 20..200 px in a random direction (a mis-clicked or mislabelled point).
            let (a, d) = (
                g.uniform() * std::f64::consts::TAU,
                20.0 + 180.0 * g.uniform(),
            );
            pairs[i].pixel.u += d * a.cos();
            pairs[i].pixel.v += d * a.sin();
            bad.push(i);
        }
        bad.sort_unstable();
        let opts = RansacOptions {
            inlier_threshold_px: 2.0,
            ..RansacOptions::default()
        };
        let r = solve_homography_ransac(&pairs, &opts).unwrap();
        let good: Vec<usize> = (0..pairs.len()).filter(|i| !bad.contains(i)).collect();
        assert_eq!(r.inliers, good, "{}", c.name);
        let inl: Vec<PointPair> = good.iter().map(|&i| pairs[i]).collect();
        let lm = solve_homography_refined(&inl).unwrap();
        let pts: Vec<GroundPoint> = inl.iter().map(|p| p.ground).collect();
        let (worst, ratio) = ground_errors(&c.camera, &lm.fit.homography, &pts, 0.3);
        println!(
            "{}: {n_out} of {} outliers rejected; inlier RMS {:.3} px, max ground error {worst:.3} m",
            c.name,
            pairs.len(),
            lm.fit.reprojection_rms_px
        );
        assert!(ratio <= 1.0, "{}: ratio {ratio}", c.name);
    }
}
