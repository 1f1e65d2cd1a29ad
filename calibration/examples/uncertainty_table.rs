//! Prints how far ±1 px of the box bottom moves the ground point at several distances, for a
//! typical windscreen camera (or a calibration file given as the first argument).
//!
//! `cargo run -p adas-calibration --example uncertainty_table [calibration.toml]`

use adas_calibration::{CalibrationFile, Homography, Intrinsics, Mounting, PinholeCamera};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hom: Homography = match std::env::args().nth(1) {
        Some(path) => CalibrationFile::load(path)?.homography()?,
        None => PinholeCamera::new(
            Intrinsics::from_hfov(768.0, 576.0, 60f64.to_radians()),
            Mounting {
                x: -1.5,
                y: 0.0,
                height: 1.3,
                pitch: 3f64.to_radians(),
                yaw: 0.0,
                roll: 0.0,
            },
        )?
        .ground_homography()?,
    };
    println!("distance  row v    m/px (v)  m/px (u)");
    for d in [5.0, 10.0, 20.0, 40.0] {
        match hom.ground_sensitivity_at_ground(d, 0.0) {
            Ok(s) => {
                let v = hom.to_image(d, 0.0)?.v;
                println!(
                    "{d:6.1} m  {v:7.1}  {:8.3}  {:8.4}",
                    s.metres_per_px_v(),
                    s.metres_per_px_u()
                );
            }
            Err(e) => println!("{d:6.1} m  not visible: {e}"),
        }
    }
    Ok(())
}
