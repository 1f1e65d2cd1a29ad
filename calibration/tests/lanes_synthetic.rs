//! `fit_lanes` on synthetic marks: a known [`PinholeCamera`] images the lane markings of a
//! straight road; the fit must give the same camera back (exact marks: to numerical precision;
//! noisy marks: within a tolerance from the noise), with and without known intrinsics, and must
//! refuse configurations that do not determine the camera.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use adas_calibration::lanes::Dash;
use adas_calibration::{
    fit_lanes, Intrinsics, LaneFitError, LaneFitOptions, LaneLine, MarkingStandard, Mounting,
    PinholeCamera, Pixel,
};

const W: u32 = 1280;
const HGT: u32 = 720;
const STD: MarkingStandard = MarkingStandard::MUTCD;
/// x of the near end of dash 0 of the first dashed line.
const D: f64 = 6.0;

fn k(f: f64) -> Intrinsics {
    Intrinsics {
        fx: f,
        fy: f,
        cx: 0.5 * f64::from(W),
        cy: 0.5 * f64::from(HGT),
    }
}

fn truth() -> PinholeCamera {
    PinholeCamera::new(
        k(1150.0),
        Mounting {
            x: -1.8,
            y: 0.0,
            height: 1.35,
            pitch: 2.5f64.to_radians(),
            yaw: -1.2f64.to_radians(),
            roll: 0.8f64.to_radians(),
        },
    )
    .unwrap()
}

/// Lane centre 0.25 m left of the camera.
const LANE_Y: f64 = 0.25;

/// Deterministic noise, roughly N(0, sigma²) (sum of uniforms).
struct Noise {
    state: u64,
    sigma: f64,
}

impl Noise {
    fn next(&mut self) -> f64 {
        let mut s = 0.0;
        for _ in 0..12 {
            self.state = self
                .state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            s += (self.state >> 11) as f64 / (1u64 << 53) as f64;
        }
        (s - 6.0) * self.sigma
    }

    fn px(&mut self, p: Pixel) -> Pixel {
        Pixel::new(p.u + self.next(), p.v + self.next())
    }
}

fn visible(p: &Pixel) -> bool {
    p.u >= 0.0 && p.u <= f64::from(W) && p.v >= 0.0 && p.v <= f64::from(HGT) - 40.0
}

/// A line as the camera sees it: `dashed` with its dash 0 at `phase` (dashes up to `max_x`), or
/// solid (points every 4 m from 5 m to `max_x`).
fn line(
    cam: &PinholeCamera,
    lateral: f64,
    dashed: Option<f64>,
    max_x: f64,
    noise: &mut Noise,
) -> LaneLine {
    let y = LANE_Y + lateral * STD.lane_width_m;
    let see = |x: f64, noise: &mut Noise| {
        cam.project_point([x, y, 0.0])
            .ok()
            .filter(visible)
            .map(|p| noise.px(p))
    };
    let mut dashes = Vec::new();
    let mut points = Vec::new();
    match dashed {
        Some(phase) => {
            let mut index = 0u32;
            loop {
                let near = phase + f64::from(index) * STD.period_m();
                if near > max_x {
                    break;
                }
                let (n, f) = (see(near, noise), see(near + STD.dash_m, noise));
                if n.is_some() || f.is_some() {
                    dashes.push(Dash {
                        index,
                        near: n,
                        far: f,
                    });
                }
                index += 1;
            }
            // Indices count from the first listed dash.
            let first = dashes.first().map_or(0, |d| d.index);
            for d in &mut dashes {
                d.index -= first;
            }
        }
        None => {
            let mut x = 5.0;
            while x <= max_x {
                points.extend(see(x, noise));
                x += 4.0;
            }
        }
    }
    LaneLine {
        name: format!("lateral {lateral:+}"),
        lateral,
        dashes,
        points,
        line: 0,
    }
}

fn options(intrinsics: Option<Intrinsics>) -> LaneFitOptions {
    LaneFitOptions {
        standard: STD,
        first_dash_m: D,
        camera_y_m: 0.0,
        intrinsics,
        image_size: (W, HGT),
    }
}

/// Largest ground distance (m) between the two cameras' homographies over the road ahead
/// (5..50 m, ±6 m).
fn ground_difference(a: &PinholeCamera, b: &PinholeCamera) -> f64 {
    let (ha, hb) = (
        a.ground_homography().unwrap(),
        b.ground_homography().unwrap(),
    );
    let mut worst: f64 = 0.0;
    for i in 0..10 {
        for j in 0..7 {
            let (x, y) = (5.0 + 5.0 * f64::from(i), -6.0 + 2.0 * f64::from(j));
            let p = ha.to_image(x, y).unwrap();
            let g = hb.project(p.u, p.v).unwrap();
            worst = worst.max((g.x - x).hypot(g.y - y) / x);
        }
    }
    worst
}

fn assert_same_camera(fit: &PinholeCamera, truth: &PinholeCamera, tol: f64, tol_deg: f64) {
    let (m, t) = (fit.mounting(), truth.mounting());
    let close = |a: f64, b: f64, tol: f64, what: &str| {
        assert!(
            (a - b).abs() <= tol,
            "{what}: fitted {a}, true {b} (tol {tol})"
        );
    };
    close(m.height, t.height, tol, "height");
    close(m.x, t.x, 10.0 * tol, "camera x");
    for (a, b, what) in [
        (m.pitch, t.pitch, "pitch"),
        (m.yaw, t.yaw, "yaw"),
        (m.roll, t.roll, "roll"),
    ] {
        close(a.to_degrees(), b.to_degrees(), tol_deg, what);
    }
    close(
        fit.intrinsics().fx,
        truth.intrinsics().fx,
        1000.0 * tol,
        "focal length",
    );
}

fn quiet() -> Noise {
    Noise {
        state: 1,
        sigma: 0.0,
    }
}

#[test]
fn known_intrinsics_two_lines_exact() {
    let cam = truth();
    let mut n = quiet();
    // The ego lane: dashed right line, solid left line.
    let lines = vec![
        line(&cam, -0.5, Some(D), 60.0, &mut n),
        line(&cam, 0.5, None, 50.0, &mut n),
    ];
    let fit = fit_lanes(&lines, &options(Some(*cam.intrinsics()))).unwrap();
    assert!(!fit.focal_fitted);
    assert!(fit.rms_px < 1e-6, "{}", fit.rms_px);
    assert_same_camera(&fit.camera, &cam, 1e-6, 1e-5);
    assert!((fit.lane_centre_y_m - LANE_Y).abs() < 1e-6);
    assert!(ground_difference(&fit.camera, &cam) < 1e-7);
    // The file's correspondences are the dash ends, exactly reprojected.
    assert!(fit.dash_fit.reprojection_rms_px < 1e-6);
    assert_eq!(fit.pairs.len(), lines[0].dash_ends());
}

#[test]
fn unknown_focal_length_three_lines_exact() {
    let cam = truth();
    let mut n = quiet();
    // Dashes of adjacent lines are not in step: the second dashed line has its own phase.
    let lines = vec![
        line(&cam, -0.5, Some(D), 60.0, &mut n),
        line(&cam, 0.5, None, 50.0, &mut n),
        line(&cam, 1.5, Some(D + 4.1), 60.0, &mut n),
    ];
    let fit = fit_lanes(&lines, &options(None)).unwrap();
    assert!(fit.focal_fitted);
    println!("{:#?}", fit.parameters);
    assert_same_camera(&fit.camera, &cam, 1e-6, 1e-5);
    assert!(ground_difference(&fit.camera, &cam) < 1e-7);
}

#[test]
fn unknown_focal_length_two_dashed_lines_exact() {
    let cam = truth();
    let mut n = quiet();
    let lines = vec![
        line(&cam, 0.5, Some(D + 2.0), 60.0, &mut n),
        line(&cam, -0.5, Some(D), 60.0, &mut n),
    ];
    // The first dashed line in the file carries the origin.
    let opts = LaneFitOptions {
        first_dash_m: D + 2.0,
        ..options(None)
    };
    let fit = fit_lanes(&lines, &opts).unwrap();
    assert_same_camera(&fit.camera, &cam, 1e-6, 1e-5);
}

#[test]
fn noisy_marks_stay_within_their_error_budget() {
    let cam = truth();
    for seed in 1..6u64 {
        let mut n = Noise {
            state: seed,
            sigma: 0.5,
        };
        let lines = vec![
            line(&cam, -0.5, Some(D), 60.0, &mut n),
            line(&cam, 0.5, None, 50.0, &mut n),
            line(&cam, -1.5, Some(D + 7.0), 60.0, &mut n),
            line(&cam, 1.5, Some(D + 1.0), 60.0, &mut n),
        ];
        for (opts, what) in [
            (options(Some(*cam.intrinsics())), "intrinsics known"),
            (options(None), "focal length fitted"),
        ] {
            let fit = fit_lanes(&lines, &opts).unwrap();
            let g = ground_difference(&fit.camera, &cam);
            println!(
                "seed {seed} {what}: rms {:.3} px, worst relative ground error {:.2} %, f {:.1}",
                fit.rms_px,
                100.0 * g,
                fit.camera.intrinsics().fx
            );
            // Half a pixel of noise on ~40 marks: the ground within 50 m stays within 2 %.
            assert!(g < 0.02, "seed {seed} {what}: {g}");
            assert!(fit.rms_px < 1.0);
            // The reported standard errors are of the size of the actual errors.
            let h = fit
                .parameters
                .iter()
                .find(|p| p.name == "camera height")
                .unwrap();
            let err = (h.value - cam.mounting().height).abs();
            assert!(
                err < 4.0 * h.sigma.unwrap() + 1e-3,
                "{what}: {err} vs {h:?}"
            );
        }
    }
}

#[test]
fn one_dashed_and_one_solid_line_without_intrinsics_is_refused() {
    let cam = truth();
    let mut n = quiet();
    let lines = vec![
        line(&cam, -0.5, Some(D), 60.0, &mut n),
        line(&cam, 0.5, None, 50.0, &mut n),
    ];
    let e = fit_lanes(&lines, &options(None)).unwrap_err();
    assert!(matches!(e, LaneFitError::UnderDetermined { .. }), "{e}");
    let msg = e.to_string();
    for needle in ["focal length", "roll", "third line", "--intrinsics"] {
        assert!(msg.contains(needle), "`{needle}` missing in: {msg}");
    }
}

#[test]
fn other_missing_marks_are_refused_with_what_to_add() {
    let cam = truth();
    let mut n = quiet();
    let solid = |lat, n: &mut Noise| line(&cam, lat, None, 50.0, n);
    let k = Some(*cam.intrinsics());
    // No dashes: no origin, no scale along the road.
    let e = fit_lanes(&[solid(0.5, &mut n), solid(-0.5, &mut n)], &options(k))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no dashed line") && e.contains("dash ends"),
        "{e}"
    );
    // One line.
    let e = fit_lanes(&[line(&cam, -0.5, Some(D), 60.0, &mut n)], &options(k))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 line(s)") && e.contains("+0.5 and -0.5"),
        "{e}"
    );
    // A dashed line with a single dash end.
    let mut one_end = line(&cam, -0.5, Some(D), 60.0, &mut n);
    one_end.dashes.truncate(1);
    one_end.dashes[0].far = None;
    one_end.points = vec![Pixel::new(900.0, 600.0)];
    let e = fit_lanes(&[one_end, solid(0.5, &mut n)], &options(k))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 dash end") && e.contains("two dash ends"),
        "{e}"
    );
}

#[test]
fn hidden_dashes_keep_their_index() {
    let cam = truth();
    let mut n = quiet();
    let mut dashed = line(&cam, -0.5, Some(D), 60.0, &mut n);
    // Dash 2 hidden by a car; dash 0's near end by the bonnet.
    dashed.dashes.remove(2);
    dashed.dashes[0].near = None;
    let lines = vec![dashed, line(&cam, 0.5, None, 50.0, &mut n)];
    let fit = fit_lanes(&lines, &options(Some(*cam.intrinsics()))).unwrap();
    assert_same_camera(&fit.camera, &cam, 1e-6, 1e-5);
}
