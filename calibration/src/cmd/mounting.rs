//! `adas-calibrate mounting`: the ground homography from a measured camera mounting (no points):
//! intrinsics + height + pitch/yaw/roll, or a vanishing point instead of pitch and yaw.

use std::path::PathBuf;

use adas_calibration::{
    load_intrinsics, CalibrationFile, FileIntrinsics, Intrinsics, LensModel, Mounting,
    PinholeCamera, Pixel,
};
use anyhow::{bail, Result};
use clap::Args;

use crate::{finish, parse_pair, parse_size, today, OutputArgs, TOOL};

#[derive(Args)]
pub struct MountingArgs {
    /// Image size WxH.
    #[arg(long, value_parser = parse_size)]
    image_size: (u32, u32),
    /// Intrinsics (TOML from `intrinsics`, a calibration file, or OpenCV YAML).
    #[arg(long)]
    intrinsics: Option<PathBuf>,
    /// Instead of --intrinsics: horizontal field of view (degrees; square pixels, principal
    /// point at the image centre, no distortion), e.g. from the data sheet.
    #[arg(long)]
    hfov: Option<f64>,
    /// Camera height above the road (m).
    #[arg(long)]
    height: f64,
    /// Downward tilt of the optical axis (degrees, down positive).
    #[arg(long, allow_negative_numbers = true)]
    pitch: Option<f64>,
    /// Leftward pan of the optical axis (degrees, left positive).
    #[arg(long, allow_negative_numbers = true)]
    yaw: Option<f64>,
    /// Rotation about the optical axis (degrees; see docs/CALIBRATION.md for the sign).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    roll: f64,
    /// Instead of --pitch/--yaw: where the vehicle's straight-ahead direction vanishes in the
    /// image (pixels U,V, e.g. where the lines of a straight lane meet).
    #[arg(long, value_parser = parse_pair)]
    vanishing_point: Option<(f64, f64)>,
    /// Camera position forward of the front bumper (m; negative = behind it).
    #[arg(long, allow_negative_numbers = true)]
    camera_x: f64,
    /// Camera position left of the vehicle centre line (m).
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    camera_y: f64,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(a: &MountingArgs) -> Result<()> {
    let (w, h) = a.image_size;
    let (k, lens, lens_note) = intrinsics(a)?;
    let (pitch, yaw, angles_note) = angles(a, &k, lens.as_ref())?;
    let mounting = Mounting {
        x: a.camera_x,
        y: a.camera_y,
        height: a.height,
        pitch,
        yaw,
        roll: a.roll.to_radians(),
    };
    let camera = PinholeCamera::new(k, mounting)?;
    let hom = camera.ground_homography()?;
    println!(
        "camera: fx {:.2} fy {:.2} cx {:.2} cy {:.2} px; height {:.3} m, pitch {:.4} deg, yaw \
         {:.4} deg, roll {:.4} deg, at x {:.3} m, y {:.3} m",
        k.fx,
        k.fy,
        k.cx,
        k.cy,
        a.height,
        pitch.to_degrees(),
        yaw.to_degrees(),
        a.roll,
        a.camera_x,
        a.camera_y
    );
    if let Some(vp) = camera.vanishing_point() {
        println!(
            "vanishing point of straight-ahead lines: ({:.1}, {:.1}) px",
            vp.u, vp.v
        );
    }
    let mut file = CalibrationFile::from_homography(
        &hom,
        w,
        h,
        a.output.created.clone().unwrap_or_else(today),
        TOOL,
    );
    if lens.is_none() {
        file.intrinsics = Some(FileIntrinsics {
            fx: k.fx,
            fy: k.fy,
            cx: k.cx,
            cy: k.cy,
            distortion: Vec::new(),
        });
    }
    let notes = format!(
        "Made by `adas-calibrate mounting` from a measured mounting (no points: no reprojection \
         error): intrinsics {lens_note}; camera height {} m at x {} m, y {} m; {angles_note}.",
        a.height, a.camera_x, a.camera_y
    );
    finish(file, &hom, &a.output, notes, lens.as_ref())
}

type Lens = (FileIntrinsics, LensModel);

fn intrinsics(a: &MountingArgs) -> Result<(Intrinsics, Option<Lens>, String)> {
    let (w, h) = a.image_size;
    match (&a.intrinsics, a.hfov) {
        (Some(p), None) => {
            let lens = load_intrinsics(p)?;
            let k = Intrinsics {
                fx: lens.0.fx,
                fy: lens.0.fy,
                cx: lens.0.cx,
                cy: lens.0.cy,
            };
            Ok((k, Some(lens), format!("from {}", p.display())))
        }
        (None, Some(hfov)) => {
            if !(hfov.is_finite() && hfov > 0.0 && hfov < 180.0) {
                bail!("--hfov {hfov}: the horizontal field of view must be in (0, 180) degrees");
            }
            let k = Intrinsics::from_hfov(f64::from(w), f64::from(h), hfov.to_radians());
            Ok((
                k,
                None,
                format!("from a {hfov} deg horizontal field of view"),
            ))
        }
        (Some(_), Some(_)) => bail!("give --intrinsics FILE or --hfov DEG, not both"),
        (None, None) => bail!(
            "the focal length is needed: give --intrinsics FILE (from `adas-calibrate \
             intrinsics`) or --hfov DEG (horizontal field of view, e.g. from the data sheet)"
        ),
    }
}

/// Pitch and yaw (radians) from the options, and a note saying where they came from.
fn angles(a: &MountingArgs, k: &Intrinsics, lens: Option<&Lens>) -> Result<(f64, f64, String)> {
    for (name, v) in [
        ("--pitch", a.pitch),
        ("--yaw", a.yaw),
        ("--roll", Some(a.roll)),
    ] {
        if let Some(v) = v {
            if !(v.is_finite() && v.abs() < 90.0) {
                bail!("{name} {v}: an angle in degrees must be finite and within ±90");
            }
        }
    }
    match (a.pitch, a.yaw, a.vanishing_point) {
        (Some(p), Some(y), None) => Ok((
            p.to_radians(),
            y.to_radians(),
            format!(
                "pitch {p} deg, yaw {y} deg, roll {} deg as measured",
                a.roll
            ),
        )),
        (None, None, Some((u, v))) => {
            // The vanishing point is measured in the image as recorded: undistort it like any
            // other pixel before using the pinhole model.
            let vp = match lens {
                Some((_, lens)) => lens.undistort(Pixel::new(u, v))?,
                None => Pixel::new(u, v),
            };
            let (p, y) = k.pitch_yaw_from_vanishing_point(vp, a.roll.to_radians());
            Ok((
                p,
                y,
                format!(
                    "pitch {:.4} deg and yaw {:.4} deg from the vanishing point ({u}, {v}), roll \
                     {} deg",
                    p.to_degrees(),
                    y.to_degrees(),
                    a.roll
                ),
            ))
        }
        (None, None, None) => bail!(
            "the camera's orientation is needed: give --pitch DEG and --yaw DEG, or \
             --vanishing-point U,V (where straight lane lines meet in the image)"
        ),
        (_, _, Some(_)) => bail!("give --vanishing-point or --pitch/--yaw, not both"),
        _ => bail!("give both --pitch and --yaw (or --vanishing-point instead)"),
    }
}
