//! `adas-calibrate`: the bench calibration tool. See `docs/CALIBRATION.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use adas_calibration::report::{render_report, uncertainty_table, ReportInput};
use adas_calibration::{
    canonical_order, load_intrinsics, solve_homography_ransac, solve_homography_refined, BevRaster,
    CalibrationFile, CalibrationPoint, FileIntrinsics, FloorBoard, GroundPoint, Homography,
    LensModel, PointFile, PointPair, RansacOptions, Rescale,
};
use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};

/// The subcommands that fit or build a camera model (the others are in this file).
mod cmd {
    pub mod lanes;
    pub mod mounting;
}

const TOOL: &str = concat!("adas-calibrate ", env!("CARGO_PKG_VERSION"));

#[derive(Parser)]
#[command(
    name = "adas-calibrate",
    version,
    about = "Bench calibration: intrinsics, ground homography (points, chessboards, lane \
             markings, measured mounting), validation report",
    after_help = "Exit status: 0 success (the calibration file was written), 1 failure (the \
                  message says what and where; nothing was written), 2 usage error. \
                  docs/CLI.md and docs/CALIBRATION.md have the details.",
    help_expected = true
)]
struct Cli {
    #[command(flatten)]
    verbosity: adas_cli::Verbosity,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Camera matrix + distortion from chessboard images (needs the `opencv` feature).
    Intrinsics(IntrinsicsArgs),
    /// Ground homography from a point file (pixel u,v <-> ground x,y metres).
    Homography(HomographyArgs),
    /// Ground homography from chessboard(s) lying on the floor at measured poses.
    Chessboard(ChessboardArgs),
    /// Ground homography from lane markings on a straight, flat road (camera pose fitted).
    Lanes(cmd::lanes::LanesArgs),
    /// Ground homography from a measured camera mounting (height, angles or vanishing point).
    Mounting(cmd::mounting::MountingArgs),
    /// Validation picture (ground grid, points, bird's-eye view) and uncertainty table.
    Report(ReportArgs),
}

#[derive(Args)]
struct IntrinsicsArgs {
    /// Inner corners per row x per column, e.g. 9x6.
    #[arg(long)]
    board: String,
    /// Square size in metres.
    #[arg(long)]
    square: f64,
    /// Fix the aspect ratio fx = fy (OpenCV CALIB_FIX_ASPECT_RATIO).
    #[arg(long)]
    fix_aspect: bool,
    /// Output intrinsics file (TOML).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Creation date written to the file (default: today, UTC).
    #[arg(long)]
    created: Option<String>,
    /// Chessboard images.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

#[derive(Args, Clone)]
struct SolveArgs {
    /// Image size the points were picked in, WxH.
    #[arg(long, value_parser = parse_size)]
    image_size: (u32, u32),
    /// Intrinsics (TOML from `intrinsics`, a calibration file, or OpenCV YAML): pixels are
    /// undistorted before solving.
    #[arg(long)]
    intrinsics: Option<PathBuf>,
    /// Robust fit: RANSAC with this inlier threshold (pixels).
    #[arg(long)]
    ransac: Option<f64>,
    /// Flag points whose reprojection error exceeds this (pixels; default 3, or the RANSAC
    /// threshold).
    #[arg(long)]
    outlier_px: Option<f64>,
    #[command(flatten)]
    output: OutputArgs,
}

/// What every subcommand that makes a calibration file takes.
#[derive(Args, Clone)]
struct OutputArgs {
    /// BEV raster size WxH for the k_x/k_y factors.
    #[arg(long, value_parser = parse_size, default_value = "400x800")]
    bev_raster: (u32, u32),
    /// BEV range XMIN..XMAX,YMIN..YMAX (metres).
    #[arg(long, value_parser = parse_range, default_value = "0..40,-10..10")]
    bev_range: Range2,
    /// Output calibration file (written only if the solve succeeds).
    #[arg(long)]
    out: PathBuf,
    /// Creation date (default: today, UTC).
    #[arg(long)]
    created: Option<String>,
    /// Free-text notes stored in the file.
    #[arg(long)]
    notes: Option<String>,
}

#[derive(Args)]
struct HomographyArgs {
    /// Point file: TOML ([[points]] pixel/ground) or CSV (u,v,x,y).
    #[arg(long)]
    points: PathBuf,
    #[command(flatten)]
    solve: SolveArgs,
}

#[derive(Args)]
struct ChessboardArgs {
    /// Inner corners per row x per column, e.g. 9x6.
    #[arg(long)]
    board: String,
    /// Square size in metres.
    #[arg(long)]
    square: f64,
    /// Ground position X,Y (metres) of corner 0 of each board (repeat per board).
    #[arg(long, value_parser = parse_pair, required = true)]
    origin: Vec<(f64, f64)>,
    /// Direction of each board's rows, degrees from +x towards +y (repeat per board).
    #[arg(long, required = true, allow_negative_numbers = true)]
    yaw: Vec<f64>,
    /// Detected corners per board: CSV/TOML point file with columns u,v (row by row, corner 0
    /// first; see docs). Repeat per board.
    #[arg(long)]
    corners: Vec<PathBuf>,
    /// Detect the corners in this image instead (needs the `opencv` feature). Repeat per board.
    #[arg(long)]
    image: Vec<PathBuf>,
    #[command(flatten)]
    solve: SolveArgs,
}

#[derive(Args)]
struct ReportArgs {
    /// Calibration file.
    calibration: PathBuf,
    /// Camera image of the calibrated size.
    image: PathBuf,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// BEV raster size WxH (default: as tall as the image, square metric pixels).
    #[arg(long, value_parser = parse_size)]
    bev_raster: Option<(u32, u32)>,
    /// BEV range XMIN..XMAX,YMIN..YMAX (metres); default from the calibration points.
    #[arg(long, value_parser = parse_range)]
    bev_range: Option<Range2>,
    /// Corridor half width (metres): vehicle half width + margin.
    #[arg(long, default_value_t = 1.25)]
    corridor_half_width: f64,
}

fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("`{s}` is not WxH"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| format!("`{s}`: sizes must be positive integers"))
    };
    Ok((p(w)?, p(h)?))
}

fn parse_pair(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}` is not X,Y"))?;
    let p = |v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("`{s}`: not a finite number"))
    };
    Ok((p(a)?, p(b)?))
}

/// `((x_min, x_max), (y_min, y_max))`, metres.
type Range2 = ((f64, f64), (f64, f64));

fn parse_range(s: &str) -> Result<Range2, String> {
    let (xr, yr) = s
        .split_once(',')
        .ok_or_else(|| format!("`{s}` is not XMIN..XMAX,YMIN..YMAX"))?;
    let r = |v: &str| -> Result<(f64, f64), String> {
        let (a, b) = v
            .split_once("..")
            .ok_or_else(|| format!("`{v}` is not MIN..MAX"))?;
        let n = |t: &str| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{t}` is not a finite number"))
        };
        let (a, b) = (n(a)?, n(b)?);
        if a >= b {
            return Err(format!("`{v}`: MIN must be below MAX"));
        }
        Ok((a, b))
    };
    Ok((r(xr)?, r(yr)?))
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock (civil-from-days).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

struct Named {
    name: String,
    pair: PointPair,
}

/// The shared solve: undistort, (RANSAC), DLT + LM, report, write.
fn solve_and_write(points: &[Named], args: &SolveArgs, source: &str) -> Result<()> {
    let (w, h) = args.image_size;
    let lens: Option<(FileIntrinsics, LensModel)> = match &args.intrinsics {
        Some(p) => Some(load_intrinsics(p)?),
        None => None,
    };
    let mut pairs = Vec::with_capacity(points.len());
    for p in points {
        let mut pair = p.pair;
        if let Some((_, lens)) = &lens {
            pair.pixel = lens
                .undistort(pair.pixel)
                .with_context(|| format!("point `{}`", p.name))?;
        }
        pairs.push(pair);
    }
    if let Some(thr) = args.ransac {
        if !(thr.is_finite() && thr > 0.0) {
            bail!("--ransac {thr}: the inlier threshold must be > 0 pixels");
        }
    }
    let (inliers, ransac_note): (Vec<usize>, String) = match args.ransac {
        Some(thr) => {
            let r = solve_homography_ransac(
                &pairs,
                &RansacOptions {
                    inlier_threshold_px: thr,
                    ..RansacOptions::default()
                },
            )
            .map_err(|e| anyhow!("{source}: RANSAC: {e}"))?;
            let note = format!(
                "RANSAC ({thr} px): {} of {} points are inliers ({} samples)",
                r.inliers.len(),
                pairs.len(),
                r.samples_tried
            );
            (r.inliers, note)
        }
        None => ((0..pairs.len()).collect(), String::new()),
    };
    let used: Vec<PointPair> = inliers.iter().map(|&i| pairs[i]).collect();
    let refined =
        solve_homography_refined(&used).map_err(|e| anyhow!("{source}: cannot solve: {e}"))?;
    let hom = refined.fit.homography;
    let outlier_px = args.outlier_px.or(args.ransac).unwrap_or(3.0);

    let nw = points
        .iter()
        .map(|p| p.name.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    println!(
        "{:<nw$} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}",
        "point", "u", "v", "x (m)", "y (m)", "reproj px", "ground m"
    );
    let mut flagged = 0;
    for (i, (p, pair)) in points.iter().zip(pairs.iter()).enumerate() {
        let reproj = hom
            .to_image(pair.ground.x, pair.ground.y)
            .map_or(f64::INFINITY, |q| q.distance_to(&pair.pixel));
        let ground = hom
            .project(pair.pixel.u, pair.pixel.v)
            .map_or(f64::INFINITY, |g| g.distance_to(&pair.ground));
        let flag = if !inliers.contains(&i) {
            flagged += 1;
            "  OUTLIER (rejected by RANSAC)"
        } else if reproj > outlier_px {
            flagged += 1;
            "  OUTLIER?"
        } else {
            ""
        };
        println!(
            "{:<nw$} {:>8.2} {:>8.2} {:>8.3} {:>8.3} {:>9.3} {:>9.4}{flag}",
            p.name, p.pair.pixel.u, p.pair.pixel.v, pair.ground.x, pair.ground.y, reproj, ground
        );
    }
    println!(
        "DLT reprojection RMS {:.4} px -> Levenberg-Marquardt {:.4} px (max {:.4} px, {} iterations); \
         ground RMS {:.4} m (max {:.4} m); {} point(s) used",
        refined.initial_rms_px,
        refined.fit.reprojection_rms_px,
        refined.fit.max_reprojection_px,
        refined.iterations,
        refined.fit.ground_rms_m,
        refined.fit.max_ground_m,
        used.len()
    );
    if !ransac_note.is_empty() {
        println!("{ransac_note}");
    }
    if flagged > 0 {
        println!("warning: {flagged} point(s) flagged as outliers (> {outlier_px} px)");
    }
    let mut file = CalibrationFile::from_fit(
        &refined.fit,
        w,
        h,
        args.output.created.clone().unwrap_or_else(today),
        TOOL,
    );
    let notes = format!(
        "Solved by `adas-calibrate` from {source}: normalised DLT + Levenberg-Marquardt on the \
         reprojection error{}.",
        if args.ransac.is_some() {
            " after RANSAC"
        } else {
            ""
        }
    );
    file.points = inliers
        .iter()
        .map(|&i| CalibrationPoint::from(&points[i].pair))
        .collect();
    finish(file, &hom, &args.output, notes, lens.as_ref())
}

/// The common end of every subcommand that makes a calibration: the BEV factors and the
/// uncertainty table of `hom`, the notes (the user's first), the intrinsics, then the file —
/// written atomically, only if it validates, and read back with the daemon's loader.
fn finish(
    mut file: CalibrationFile,
    hom: &Homography,
    out: &OutputArgs,
    method: String,
    lens: Option<&(FileIntrinsics, LensModel)>,
) -> Result<()> {
    let (w, h) = (file.image_width, file.image_height);
    print_bev_factors(hom, out)?;
    print_uncertainty(hom, w, h);
    let mut notes = match &out.notes {
        Some(n) => format!("{n} {method}"),
        None => method,
    };
    if let Some((k, lens)) = lens {
        file.intrinsics = Some(k.clone());
        if !lens.is_pinhole() {
            notes.push_str(
                " The homography maps UNDISTORTED pixels (intrinsics below): undistort detector \
                 pixels before projecting.",
            );
            eprintln!(
                "warning: the homography maps undistorted pixels; a consumer must undistort \
                 with [intrinsics] first"
            );
        }
    }
    file.notes = Some(notes);
    file.save(&out.out)?;
    // Read back what was written: the daemon's loader must accept it.
    CalibrationFile::load(&out.out)?.for_image(w, h, Rescale::Exact)?;
    println!("wrote {}", out.out.display());
    Ok(())
}

fn print_bev_factors(hom: &Homography, args: &OutputArgs) -> Result<()> {
    let ((x0, x1), (y0, y1)) = args.bev_range;
    let bev = BevRaster::new(args.bev_raster.0, args.bev_raster.1, (x0, x1), (y0, y1))?;
    println!(
        "BEV raster {}x{} over x {x0}..{x1} m, y {y0}..{y1} m: k_x = {:.5} m/px (forward, per row), \
         k_y = {:.5} m/px (lateral, per column)",
        bev.width,
        bev.height,
        bev.k_x(),
        bev.k_y()
    );
    let m = bev.image_to_bev(hom)?;
    println!("image -> BEV matrix (for cv::warpPerspective):");
    for r in 0..3 {
        println!(
            "  [{:14.6e}, {:14.6e}, {:14.6e}]",
            m[(r, 0)],
            m[(r, 1)],
            m[(r, 2)]
        );
    }
    Ok(())
}

fn print_uncertainty(hom: &Homography, w: u32, h: u32) -> Vec<String> {
    let mut lines = vec![
        "±1 px in the box bottom edge (centre line):".to_string(),
        format!(
            "  {:>8} {:>8} {:>12} {:>12}",
            "distance", "row v", "Δ ground/px", "lateral/px"
        ),
    ];
    for r in uncertainty_table(hom, w, h, &[5.0, 10.0, 20.0, 40.0]) {
        lines.push(match (r.row_px, r.metres_per_px_v, r.metres_per_px_u) {
            (Some(v), Some(sv), Some(su)) => format!(
                "  {:>6.0} m {:>8.1} {:>10.3} m {:>10.4} m{}",
                r.distance_m,
                v,
                sv,
                su,
                if r.in_image {
                    format!("  ({:.1} %)", 100.0 * sv / r.distance_m)
                } else {
                    "  (outside the image)".into()
                }
            ),
            _ => format!("  {:>6.0} m  not visible (behind the camera)", r.distance_m),
        });
    }
    for l in &lines {
        println!("{l}");
    }
    lines
}

fn cmd_homography(a: &HomographyArgs) -> Result<()> {
    let pf = PointFile::load(&a.points)?;
    pf.check_image_size(a.solve.image_size.0, a.solve.image_size.1)?;
    let points: Vec<Named> = pf
        .points
        .iter()
        .map(|p| Named {
            name: p.name.clone(),
            pair: p.pair,
        })
        .collect();
    solve_and_write(&points, &a.solve, &a.points.display().to_string())
}

fn parse_board(spec: &str, square: f64) -> Result<(usize, usize)> {
    let (c, r) = spec
        .split_once(['x', 'X'])
        .ok_or_else(|| anyhow!("--board `{spec}` is not COLSxROWS, e.g. 9x6"))?;
    let p = |s: &str| {
        s.trim()
            .parse::<usize>()
            .ok()
            .filter(|v| *v >= 2)
            .ok_or_else(|| anyhow!("--board `{spec}`: inner corner counts must be integers >= 2"))
    };
    if !(square.is_finite() && square > 0.0) {
        bail!("--square {square}: the square size must be > 0 metres");
    }
    Ok((p(c)?, p(r)?))
}

#[cfg(feature = "opencv")]
fn detect_corners(
    image: &Path,
    cols: usize,
    rows: usize,
    square: f64,
) -> Result<Vec<adas_calibration::Pixel>> {
    use adas_calibration::intrinsics::{detect, Board};
    let board = Board {
        cols: cols as i32,
        rows: rows as i32,
        square_m: square,
    };
    detect(image, &board)?
        .corners
        .ok_or_else(|| anyhow!("{}: chessboard {cols}x{rows} not found", image.display()))
}

#[cfg(not(feature = "opencv"))]
fn detect_corners(
    image: &Path,
    _cols: usize,
    _rows: usize,
    _square: f64,
) -> Result<Vec<adas_calibration::Pixel>> {
    bail!(
        "{}: corner detection needs OpenCV: rebuild with `--features opencv`, or give the corners \
         with --corners FILE",
        image.display()
    )
}

fn cmd_chessboard(a: &ChessboardArgs) -> Result<()> {
    let (cols, rows) = parse_board(&a.board, a.square)?;
    let n = a.origin.len();
    if a.yaw.len() != n {
        bail!("give one --yaw per --origin ({} vs {n})", a.yaw.len());
    }
    if a.corners.len() + a.image.len() != n || (!a.corners.is_empty() && !a.image.is_empty()) {
        bail!(
            "give one --corners FILE (or one --image) per board: {n} board pose(s), {} corner \
             file(s), {} image(s)",
            a.corners.len(),
            a.image.len()
        );
    }
    let mut points = Vec::new();
    for k in 0..n {
        let (detected, what) = if let Some(f) = a.corners.get(k) {
            (PointFile::load_pixels(f)?, f.display().to_string())
        } else {
            let img = &a.image[k];
            let raw = detect_corners(img, cols, rows, a.square)?;
            let ordered = canonical_order(&raw, cols, rows)
                .ok_or_else(|| anyhow!("{}: degenerate corner grid", img.display()))?;
            (ordered, img.display().to_string())
        };
        if detected.len() != cols * rows {
            bail!(
                "{what}: {} corners, expected {cols}x{rows} = {}",
                detected.len(),
                cols * rows
            );
        }
        let board = FloorBoard {
            cols,
            rows,
            square_m: a.square,
            origin: GroundPoint::new(a.origin[k].0, a.origin[k].1),
            yaw: a.yaw[k].to_radians(),
        };
        for (i, (px, g)) in detected.iter().zip(board.ground_corners()).enumerate() {
            let (w, h) = a.solve.image_size;
            if !(0.0..=f64::from(w)).contains(&px.u) || !(0.0..=f64::from(h)).contains(&px.v) {
                bail!(
                    "{what}: corner {i} ({}, {}) is outside the {w}x{h} image",
                    px.u,
                    px.v
                );
            }
            points.push(Named {
                name: format!("board {k} corner ({},{})", i % cols, i / cols),
                pair: PointPair::new(px.u, px.v, g.x, g.y),
            });
        }
    }
    solve_and_write(&points, &a.solve, &format!("{n} chessboard(s) {}", a.board))
}

fn cmd_report(a: &ReportArgs) -> Result<()> {
    let cal = CalibrationFile::load(&a.calibration)?;
    let img = image::open(&a.image)
        .with_context(|| format!("{}: cannot read image", a.image.display()))?
        .to_rgb8();
    let hom = cal.for_image(img.width(), img.height(), Rescale::Exact)?;
    let pts = cal.point_pairs();
    let ((x0, x1), (y0, y1)) = match a.bev_range {
        Some(r) => r,
        None => {
            let xm = pts.iter().map(|p| p.ground.x).fold(10.0, f64::max);
            let ym = pts.iter().map(|p| p.ground.y.abs()).fold(5.0, f64::max);
            let x_hi = (xm * 1.25 / 5.0).ceil() * 5.0;
            let y_hi = (ym * 1.2).ceil();
            ((0.0, x_hi), (-y_hi, y_hi))
        }
    };
    let (bw, bh) = a.bev_raster.unwrap_or_else(|| {
        let bh = cal.image_height;
        let k = (x1 - x0) / f64::from(bh);
        (((y1 - y0) / k).round().max(1.0) as u32, bh)
    });
    let bev = BevRaster::new(bw, bh, (x0, x1), (y0, y1))?;
    if cal
        .intrinsics
        .as_ref()
        .is_some_and(|k| k.distortion.iter().any(|d| *d != 0.0))
    {
        eprintln!(
            "warning: the calibration has lens distortion; the report draws on the image as \
             given (undistort it first for an exact overlay)"
        );
    }
    println!(
        "{}: {}x{}, reprojection RMS {} px, ground RMS {} m, {} points",
        a.calibration.display(),
        cal.image_width,
        cal.image_height,
        cal.reprojection_rms_px
            .map_or("?".into(), |v| format!("{v:.3}")),
        cal.ground_rms_m.map_or("?".into(), |v| format!("{v:.4}")),
        pts.len()
    );
    let mut text = vec![format!(
        "{}  |  {}x{}  |  reprojection RMS {} px, ground RMS {} m  |  {}  |  k_x {:.4} k_y {:.4} m/BEV px",
        a.calibration
            .file_name()
            .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
        cal.image_width,
        cal.image_height,
        cal.reprojection_rms_px
            .map_or("?".into(), |v| format!("{v:.3}")),
        cal.ground_rms_m.map_or("?".into(), |v| format!("{v:.4}")),
        cal.tool,
        bev.k_x(),
        bev.k_y()
    )];
    text.extend(print_uncertainty(&hom, cal.image_width, cal.image_height));
    let out = render_report(&ReportInput {
        image: &img,
        homography: &hom,
        points: &pts,
        bev,
        corridor_half_width_m: a.corridor_half_width,
        text,
    });
    out.save(&a.out)
        .with_context(|| format!("{}: cannot write PNG", a.out.display()))?;
    println!("wrote {}", a.out.display());
    Ok(())
}

#[cfg(feature = "opencv")]
fn cmd_intrinsics(a: &IntrinsicsArgs) -> Result<()> {
    use adas_calibration::intrinsics::{calibrate, Board, CalibrateOptions};
    use adas_calibration::{IntrinsicsFile, IntrinsicsView};
    let board = Board::parse(&a.board, a.square)?;
    let r = calibrate(
        &a.images,
        &board,
        CalibrateOptions {
            fix_aspect: a.fix_aspect,
        },
    )?;
    for p in &r.rejected {
        eprintln!("rejected {}: chessboard {} not found", p.display(), a.board);
    }
    println!("{:<40} {:>10}", "image", "error px");
    for (p, e) in &r.per_image {
        println!("{:<40} {:>10.4}", p.display(), e);
    }
    println!(
        "{} of {} images used; average reprojection error {:.4} px (calibrateCamera RMS {:.4})",
        r.per_image.len(),
        a.images.len(),
        r.avg_error_px,
        r.opencv_rms_px
    );
    println!(
        "fx {:.3}  fy {:.3}  cx {:.3}  cy {:.3} (OpenCV convention)  distortion {:?}",
        r.fx, r.fy, r.cx, r.cy, r.distortion
    );
    if let Some(out) = &a.out {
        let f = IntrinsicsFile {
            image_width: r.image_size.0,
            image_height: r.image_size.1,
            board: a.board.clone(),
            square_m: a.square,
            avg_reprojection_error_px: r.avg_error_px,
            rejected: r.rejected.iter().map(|p| p.display().to_string()).collect(),
            created: a.created.clone().unwrap_or_else(today),
            tool: TOOL.into(),
            intrinsics: FileIntrinsics {
                fx: r.fx,
                fy: r.fy,
                cx: r.cx + 0.5,
                cy: r.cy + 0.5,
                distortion: r.distortion.clone(),
            },
            views: r
                .per_image
                .iter()
                .map(|(p, e)| IntrinsicsView {
                    file: p.display().to_string(),
                    error_px: *e,
                })
                .collect(),
        };
        let text = format!(
            "# adas-calibrate intrinsics. cx, cy: centre of the top-left pixel = (0.5, 0.5)\n\
             # (OpenCV's values + 0.5).\n{}",
            toml::to_string(&f)?
        );
        std::fs::write(out, text).with_context(|| format!("{}: cannot write", out.display()))?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

#[cfg(not(feature = "opencv"))]
fn cmd_intrinsics(_a: &IntrinsicsArgs) -> Result<()> {
    bail!(
        "this adas-calibrate was built without OpenCV: rebuild with \
         `cargo build -p adas-calibration --features opencv` (needs libopencv-dev, libclang-dev)"
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _logging = adas_cli::init(&cli.verbosity);
    let r = match &cli.command {
        Command::Intrinsics(a) => cmd_intrinsics(a),
        Command::Homography(a) => cmd_homography(a),
        Command::Chessboard(a) => cmd_chessboard(a),
        Command::Lanes(a) => cmd::lanes::run(a),
        Command::Mounting(a) => cmd::mounting::run(a),
        Command::Report(a) => cmd_report(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_argument_has_help_and_the_parser_is_consistent() {
        // `help_expected`: clap's debug assertions refuse an argument without help text.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
