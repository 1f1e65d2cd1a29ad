//! `adas-calibrate lanes`: the camera — and so the ground homography — from the lane markings of
//! a straight, flat road (docs/CALIBRATION.md, model in `adas_calibration::lanes`).

use std::path::PathBuf;

use adas_calibration::{
    fit_lanes, load_intrinsics, CalibrationFile, CalibrationPoint, FileIntrinsics, Intrinsics,
    LaneFile, LaneFit, LaneFitOptions, LaneLine, LensModel, MarkingStandard,
};
use anyhow::{anyhow, Context, Result};
use clap::Args;

use crate::{finish, parse_size, today, OutputArgs, TOOL};

#[derive(Args)]
pub struct LanesArgs {
    /// Lane-marking file (TOML, docs/CALIBRATION.md): per line its lateral position in lane
    /// widths and the dash ends (near to far) or points on it.
    #[arg(long)]
    points: PathBuf,
    /// Image size WxH the marks were picked in (default: image_width/height of the file).
    #[arg(long, value_parser = parse_size)]
    image_size: Option<(u32, u32)>,
    /// Intrinsics (as for `homography`): pixels are undistorted and the focal length is known.
    /// Without them fx = fy is fitted too (principal point at the image centre, no distortion).
    #[arg(long)]
    intrinsics: Option<PathBuf>,
    /// Lane width, centre to centre of the lines (m). Default: US MUTCD, 12 ft.
    #[arg(long, default_value_t = MarkingStandard::MUTCD.lane_width_m)]
    lane_width: f64,
    /// Length of one dash of a broken line (m). Default: US MUTCD, 10 ft.
    #[arg(long, default_value_t = MarkingStandard::MUTCD.dash_m)]
    dash: f64,
    /// Gap between dashes (m). Default: US MUTCD, 30 ft.
    #[arg(long, default_value_t = MarkingStandard::MUTCD.gap_m)]
    gap: f64,
    /// Measured forward distance (m) from the front bumper to the near end of the first listed
    /// dash of the first dashed line in the file: fixes the origin.
    #[arg(long, allow_negative_numbers = true)]
    first_dash_m: f64,
    /// Camera position left of the vehicle centre line (m); the lane offset is fitted relative
    /// to it.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    camera_y: f64,
    #[command(flatten)]
    output: OutputArgs,
}

/// Marking dimensions that differ from the standard by more than this (relative) through the
/// fitted homography are reported: usually the wrong --dash/--gap for the road.
const DASH_WARN: f64 = 0.10;

pub fn run(a: &LanesArgs) -> Result<()> {
    let marks = LaneFile::load(&a.points)?;
    let (w, h) = a.image_size.or(marks.image_size).ok_or_else(|| {
        anyhow!(
            "{}: no image size: give --image-size WxH or image_width/image_height in the file",
            a.points.display()
        )
    })?;
    marks.check_image_size(w, h)?;
    let lens = a.intrinsics.as_ref().map(load_intrinsics).transpose()?;
    let lines = undistorted(&marks, lens.as_ref())?;
    let opts = LaneFitOptions {
        standard: MarkingStandard {
            lane_width_m: a.lane_width,
            dash_m: a.dash,
            gap_m: a.gap,
        },
        first_dash_m: a.first_dash_m,
        camera_y_m: a.camera_y,
        intrinsics: lens.as_ref().map(|(k, _)| Intrinsics {
            fx: k.fx,
            fy: k.fy,
            cx: k.cx,
            cy: k.cy,
        }),
        image_size: (w, h),
    };
    let fit = fit_lanes(&lines, &opts).map_err(|e| anyhow!("{}: {e}", a.points.display()))?;
    print_lines(&fit, &opts.standard);
    print_parameters(&fit);
    print_mounting_equivalent(&fit, a, (w, h));

    let mut file = CalibrationFile::from_fit(
        &fit.dash_fit,
        w,
        h,
        a.output.created.clone().unwrap_or_else(today),
        TOOL,
    );
    file.points = fit
        .pairs
        .iter()
        .map(|(_, p)| CalibrationPoint::from(p))
        .collect();
    if lens.is_none() {
        // The fitted focal length, so that `mounting --intrinsics` can reuse this file.
        let k = fit.camera.intrinsics();
        file.intrinsics = Some(FileIntrinsics {
            fx: k.fx,
            fy: k.fy,
            cx: k.cx,
            cy: k.cy,
            distortion: Vec::new(),
        });
    }
    let notes = method_note(&fit, a);
    finish(file, &fit.homography, &a.output, notes, lens.as_ref())
}

fn undistorted(
    marks: &LaneFile,
    lens: Option<&(FileIntrinsics, LensModel)>,
) -> Result<Vec<LaneLine>> {
    let Some((_, lens)) = lens else {
        return Ok(marks.lines.clone());
    };
    marks
        .lines
        .iter()
        .map(|l| {
            l.map_pixels(|p| lens.undistort(p))
                .with_context(|| format!("{}:{}: line `{}`", marks.path.display(), l.line, l.name))
        })
        .collect()
}

fn opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.prec$}"))
}

fn print_lines(fit: &LaneFit, standard: &MarkingStandard) {
    let nw = fit
        .lines
        .iter()
        .map(|l| l.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<nw$} {:>7} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "line", "lateral", "rms px", "y (m)", "measured y", "dash (m)", "period"
    );
    for l in &fit.lines {
        println!(
            "{:<nw$} {:>+7.2} {:>8.3} {:>8.3} {:>10.3} {:>9} {:>9}",
            l.name,
            l.lateral,
            l.rms_px,
            l.model_y_m,
            l.measured_y_m,
            opt(l.measured_dash_m, 2),
            opt(l.measured_period_m, 2)
        );
        let off = |m: Option<f64>, s: f64| m.is_some_and(|m| ((m - s) / s).abs() > DASH_WARN);
        if off(l.measured_dash_m, standard.dash_m) || off(l.measured_period_m, standard.period_m())
        {
            println!(
                "warning: through the fit the dashes of `{}` measure {} m every {} m, the \
                 marking standard says {:.2} m every {:.2} m: check --dash/--gap for this road",
                l.name,
                opt(l.measured_dash_m, 2),
                opt(l.measured_period_m, 2),
                standard.dash_m,
                standard.period_m()
            );
        }
    }
    println!(
        "dash ends: reprojection RMS {:.3} px (max {:.3} px), ground RMS {:.3} m; line points: \
         RMS {} px; all residuals {:.3} px RMS; {} Levenberg-Marquardt iterations; conditioning \
         (smallest / largest singular value) {:.1e}",
        fit.dash_fit.reprojection_rms_px,
        fit.dash_fit.max_reprojection_px,
        fit.dash_fit.ground_rms_m,
        opt(fit.line_points_rms_px, 3),
        fit.rms_px,
        fit.iterations,
        fit.rel_singular
    );
}

fn print_parameters(fit: &LaneFit) {
    println!("camera (± one standard error from the residuals):");
    for p in &fit.parameters {
        let sigma = match (p.fitted, p.sigma) {
            (true, Some(s)) => format!(" ± {s:.4}"),
            (true, None) => String::new(),
            (false, _) => " (given)".into(),
        };
        println!("  {:<32} {:>11.4}{sigma} {}", p.name, p.value, p.unit);
    }
    if let Some(vp) = fit.camera.vanishing_point() {
        println!(
            "vanishing point of the lanes: ({:.1}, {:.1}) px (undistorted pixels if intrinsics \
             with distortion were given)",
            vp.u, vp.v
        );
    }
}

/// The `mounting` command line that makes the same homography: the installer's record of the
/// pose, and a cross-check of the two paths.
fn print_mounting_equivalent(fit: &LaneFit, a: &LanesArgs, (w, h): (u32, u32)) {
    let m = fit.camera.mounting();
    let k = fit.camera.intrinsics();
    let lens = match &a.intrinsics {
        Some(p) => format!("--intrinsics {}", p.display()),
        None => format!(
            "--hfov {:.6}",
            (2.0 * (0.5 * f64::from(w) / k.fx).atan()).to_degrees()
        ),
    };
    println!(
        "same homography: adas-calibrate mounting --image-size {w}x{h} {lens} --height {:.6} \
         --pitch={:.6} --yaw={:.6} --roll={:.6} --camera-x={:.6} --camera-y={:.6} --out FILE",
        m.height,
        m.pitch.to_degrees(),
        m.yaw.to_degrees(),
        m.roll.to_degrees(),
        m.x,
        m.y
    );
}

fn method_note(fit: &LaneFit, a: &LanesArgs) -> String {
    let m = fit.camera.mounting();
    format!(
        "Fitted by `adas-calibrate lanes` from {} (lane width {} m, dash {} m, gap {} m, first \
         dash at {} m): camera height {:.3} m, pitch {:.3} deg, yaw {:.3} deg, roll {:.3} deg, \
         x {:.3} m, y {:.3} m, focal length {:.1} px ({}); ego-lane centre at y = {:.3} m.",
        a.points.display(),
        a.lane_width,
        a.dash,
        a.gap,
        a.first_dash_m,
        m.height,
        m.pitch.to_degrees(),
        m.yaw.to_degrees(),
        m.roll.to_degrees(),
        m.x,
        m.y,
        fit.camera.intrinsics().fx,
        if fit.focal_fitted {
            "fitted"
        } else {
            "from the intrinsics"
        },
        fit.lane_centre_y_m
    )
}
