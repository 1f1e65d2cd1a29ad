//! Derives the ground positions of the picked points in `samples/vtest_points.toml` (the
//! illustrative calibration of the fixed elevated camera in `vtest.avi`, 768×576) from a pinhole
//! model of the view, as described in `samples/CALIBRATION.md`. Prints `[[points]]` tables; the
//! calibration itself is then made with `adas-calibrate homography`.
//!
//! `cargo run -p adas-calibration --example vtest_calibration`
//!
//! 1. A pinhole model of the view was fitted (offline, by grid search) to 12 walking people of
//!    assumed height (1.75 m men, 1.65 m women): foot pixel → ground point → head pixel, with the
//!    principal point at the image centre, no roll and no distortion. The people alone do not fix
//!    the focal length (the fit is equally good from 500 to 2000 px); near-vertical building edges
//!    and the lamp post (they hardly converge) favour a long lens, so f = 1200 px was chosen, which
//!    gives pitch 17.9° and height 7.48 m (head residual RMS 3.2 px).
//! 2. The virtual vehicle's bumper is put on the ground point seen by the bottom-centre pixel,
//!    looking up the image (x forward = the camera's viewing direction on the ground).
//! 3. Ten ground features were picked by eye in the frames (lamp-post base, tripod feet, traffic
//!    cones, a rock, litter, people's feet); their ground positions come from the model (rounded to
//!    1 cm).

use adas_calibration::{Intrinsics, Mounting, PinholeCamera};

/// Picked features: (pixel u, pixel v, what).
const FEATURES: [(f64, f64, &str); 10] = [
    (433.0, 392.0, "lamp-post base"),
    (460.0, 468.0, "tripod, left foot"),
    (523.0, 480.0, "tripod, right foot"),
    (177.0, 273.0, "rock at the road edge, bottom"),
    (42.0, 190.0, "traffic cone, far left"),
    (170.0, 204.0, "traffic cone"),
    (299.0, 208.0, "traffic cone"),
    (446.0, 199.0, "traffic cone, right of the lamp post"),
    (338.0, 460.0, "litter on the grass"),
    (113.0, 512.0, "yellow cloth on the grass, centre"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (width, height) = (768.0, 576.0);
    let k = Intrinsics {
        fx: 1200.0,
        fy: 1200.0,
        cx: width / 2.0,
        cy: height / 2.0,
    };
    let mut mount = Mounting {
        x: 0.0,
        y: 0.0,
        height: 7.48,
        pitch: 17.9f64.to_radians(),
        yaw: 0.0,
        roll: 0.0,
    };
    // Put the bumper (x = 0) where the bottom-centre pixel meets the ground.
    let probe = PinholeCamera::new(k, mount)?.ground_homography()?;
    mount.x = -probe.project(width / 2.0, height)?.x;
    let camera = PinholeCamera::new(k, mount)?;
    let model = camera.ground_homography()?;

    let round = |v: f64| (v * 100.0).round() / 100.0;
    println!("# ground positions from the model (see samples/vtest_points.toml)");
    for (u, v, what) in FEATURES {
        let g = model.project(u, v)?;
        println!(
            "\n[[points]]\nname = {what:?}\npixel = [{u:.1}, {v:.1}]\nground = [{:.2}, {:.2}]",
            round(g.x),
            round(g.y)
        );
    }
    eprintln!(
        "virtual bumper {:.1} m in front of the camera; now run `adas-calibrate homography` \
         as in samples/CALIBRATION.md",
        -mount.x
    );
    Ok(())
}
