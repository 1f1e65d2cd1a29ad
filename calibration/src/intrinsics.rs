//! Camera intrinsics from chessboard images, via OpenCV (feature `opencv`).
//!
//! The procedure is OpenCV's `samples/cpp/calibration.cpp`: `findChessboardCorners` (adaptive
//! threshold, normalised image, fast check), `cornerSubPix` (11×11 window, 30 iterations /
//! 1e-4 px), `calibrateCamera` with the 5-coefficient model `[k1, k2, p1, p2, k3]`, optionally
//! with a fixed aspect ratio `fx = fy`. The reprojection errors are recomputed with
//! `projectPoints`: per image the RMS over its corners, overall the RMS over all corners (the
//! `avg_reprojection_error` of OpenCV's sample).

use std::path::{Path, PathBuf};

use opencv::core::{
    no_array, Mat, Point2f, Point3f, Size, TermCriteria, TermCriteria_Type, Vector,
};
use opencv::prelude::*;
use opencv::{calib3d, imgcodecs, imgproc};
use thiserror::Error;

use crate::homography::Pixel;

/// Errors of the intrinsics step. Each names the input.
#[derive(Debug, Error)]
pub enum IntrinsicsError {
    /// The image could not be read or decoded.
    #[error("{0}: cannot read image (missing, unreadable or not an image)")]
    Unreadable(PathBuf),
    /// Images of different sizes.
    #[error("{file}: image is {got_w}×{got_h}, the first image was {w}×{h}; use one camera mode")]
    SizeMismatch {
        /// The image.
        file: PathBuf,
        /// Its width.
        got_w: i32,
        /// Its height.
        got_h: i32,
        /// Expected width.
        w: i32,
        /// Expected height.
        h: i32,
    },
    /// Too few usable images.
    #[error(
        "the board was found in only {found} of {total} images, need at least {need}{}",
        if rejected.is_empty() { String::new() } else { format!(" (not found in: {})", rejected.join(", ")) }
    )]
    TooFewViews {
        /// Images with the board.
        found: usize,
        /// Images given.
        total: usize,
        /// Minimum.
        need: usize,
        /// Images without the board.
        rejected: Vec<String>,
    },
    /// Bad board description.
    #[error("invalid board: {0}")]
    Board(String),
    /// OpenCV failed.
    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),
}

/// A chessboard: inner corners per row × per column, square size (metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Board {
    /// Inner corners per row.
    pub cols: i32,
    /// Inner corners per column.
    pub rows: i32,
    /// Square size (metres).
    pub square_m: f64,
}

impl Board {
    /// Parses `"9x6"` plus a square size.
    pub fn parse(spec: &str, square_m: f64) -> Result<Self, IntrinsicsError> {
        let (c, r) = spec.split_once(['x', 'X', '×']).ok_or_else(|| {
            IntrinsicsError::Board(format!("`{spec}` is not COLSxROWS, e.g. 9x6"))
        })?;
        let parse = |s: &str| {
            s.trim()
                .parse::<i32>()
                .ok()
                .filter(|v| *v >= 2)
                .ok_or_else(|| {
                    IntrinsicsError::Board(format!(
                        "`{spec}`: inner corner counts must be integers ≥ 2"
                    ))
                })
        };
        if !(square_m.is_finite() && square_m > 0.0) {
            return Err(IntrinsicsError::Board(format!(
                "square size {square_m} must be > 0 (metres)"
            )));
        }
        Ok(Self {
            cols: parse(c)?,
            rows: parse(r)?,
            square_m,
        })
    }

    fn object_points(&self) -> Vector<Point3f> {
        let mut v = Vector::new();
        for j in 0..self.rows {
            for i in 0..self.cols {
                v.push(Point3f::new(
                    (f64::from(i) * self.square_m) as f32,
                    (f64::from(j) * self.square_m) as f32,
                    0.0,
                ));
            }
        }
        v
    }
}

/// Detected corners of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Image width, height.
    pub size: (i32, i32),
    /// Sub-pixel corners (OpenCV's order), `None` if the board was not found.
    pub corners: Option<Vec<Pixel>>,
}

fn read_gray(path: &Path) -> Result<Mat, IntrinsicsError> {
    let name = path.to_string_lossy();
    let img = imgcodecs::imread(&name, imgcodecs::IMREAD_GRAYSCALE)
        .map_err(|_| IntrinsicsError::Unreadable(path.to_path_buf()))?;
    if img.empty() {
        return Err(IntrinsicsError::Unreadable(path.to_path_buf()));
    }
    Ok(img)
}

fn detect_mat(gray: &Mat, board: &Board) -> Result<Option<Vector<Point2f>>, IntrinsicsError> {
    let mut corners = Vector::<Point2f>::new();
    let pattern = Size::new(board.cols, board.rows);
    let found = calib3d::find_chessboard_corners(
        gray,
        pattern,
        &mut corners,
        calib3d::CALIB_CB_ADAPTIVE_THRESH
            | calib3d::CALIB_CB_NORMALIZE_IMAGE
            | calib3d::CALIB_CB_FAST_CHECK,
    )?;
    if !found {
        return Ok(None);
    }
    let criteria = TermCriteria::new(
        TermCriteria_Type::COUNT as i32 | TermCriteria_Type::EPS as i32,
        30,
        1e-4,
    )?;
    imgproc::corner_sub_pix(
        gray,
        &mut corners,
        Size::new(11, 11),
        Size::new(-1, -1),
        criteria,
    )?;
    Ok(Some(corners))
}

/// OpenCV pixel centres are at integers; this crate's continuous coordinates put them at +0.5.
fn to_pixel(p: Point2f) -> Pixel {
    Pixel::new(f64::from(p.x) + 0.5, f64::from(p.y) + 0.5)
}

/// Detects the board in one image (corners in this crate's pixel convention: the centre of the
/// top-left pixel is `(0.5, 0.5)`).
pub fn detect(path: &Path, board: &Board) -> Result<Detection, IntrinsicsError> {
    let gray = read_gray(path)?;
    let size = gray.size()?;
    Ok(Detection {
        size: (size.width, size.height),
        corners: detect_mat(&gray, board)?.map(|c| c.iter().map(to_pixel).collect()),
    })
}

/// Result of [`calibrate`].
#[derive(Debug, Clone, PartialEq)]
pub struct IntrinsicsResult {
    /// Image size.
    pub image_size: (u32, u32),
    /// Focal length (px), horizontal.
    pub fx: f64,
    /// Focal length (px), vertical.
    pub fy: f64,
    /// Principal point column, OpenCV convention (centre of the top-left pixel is 0).
    pub cx: f64,
    /// Principal point row, OpenCV convention.
    pub cy: f64,
    /// `[k1, k2, p1, p2, k3]`.
    pub distortion: Vec<f64>,
    /// Images used and their RMS reprojection error (px).
    pub per_image: Vec<(PathBuf, f64)>,
    /// Images where the board was not found.
    pub rejected: Vec<PathBuf>,
    /// RMS reprojection error over all corners (px).
    pub avg_error_px: f64,
    /// RMS returned by `calibrateCamera`.
    pub opencv_rms_px: f64,
}

/// Options of [`calibrate`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CalibrateOptions {
    /// Fix `fx = fy` (`CALIB_FIX_ASPECT_RATIO` with ratio 1).
    pub fix_aspect: bool,
}

/// Minimum number of views with the board.
pub const MIN_VIEWS: usize = 3;

/// Detects the board in every image and calibrates. Unreadable images and size mismatches are
/// errors; images without the board are listed in `rejected`.
pub fn calibrate(
    images: &[PathBuf],
    board: &Board,
    options: CalibrateOptions,
) -> Result<IntrinsicsResult, IntrinsicsError> {
    let mut obj = Vector::<Vector<Point3f>>::new();
    let mut img_pts = Vector::<Vector<Point2f>>::new();
    let mut used = Vec::new();
    let mut rejected = Vec::new();
    let mut size: Option<Size> = None;
    for path in images {
        let gray = read_gray(path)?;
        let s = gray.size()?;
        match size {
            None => size = Some(s),
            Some(first) if first != s => {
                return Err(IntrinsicsError::SizeMismatch {
                    file: path.clone(),
                    got_w: s.width,
                    got_h: s.height,
                    w: first.width,
                    h: first.height,
                })
            }
            Some(_) => {}
        }
        match detect_mat(&gray, board)? {
            Some(c) => {
                obj.push(board.object_points());
                img_pts.push(c);
                used.push(path.clone());
            }
            None => rejected.push(path.clone()),
        }
    }
    let size = size.unwrap_or_default();
    if used.len() < MIN_VIEWS {
        return Err(IntrinsicsError::TooFewViews {
            found: used.len(),
            total: images.len(),
            need: MIN_VIEWS,
            rejected: rejected.iter().map(|p| p.display().to_string()).collect(),
        });
    }
    let mut k = Mat::eye(3, 3, opencv::core::CV_64F)?.to_mat()?;
    let mut flags = 0;
    if options.fix_aspect {
        flags |= calib3d::CALIB_FIX_ASPECT_RATIO;
    }
    let mut dist = Mat::default();
    let mut rvecs = Vector::<Mat>::new();
    let mut tvecs = Vector::<Mat>::new();
    let criteria = TermCriteria::new(
        TermCriteria_Type::COUNT as i32 | TermCriteria_Type::EPS as i32,
        30,
        f64::EPSILON,
    )?;
    let rms = calib3d::calibrate_camera(
        &obj, &img_pts, size, &mut k, &mut dist, &mut rvecs, &mut tvecs, flags, criteria,
    )?;
    let mut per_image = Vec::new();
    let (mut total_sq, mut total_n) = (0.0, 0usize);
    for (i, path) in used.iter().enumerate() {
        let mut proj = Vector::<Point2f>::new();
        calib3d::project_points(
            &obj.get(i)?,
            &rvecs.get(i)?,
            &tvecs.get(i)?,
            &k,
            &dist,
            &mut proj,
            &mut no_array(),
            0.0,
        )?;
        let measured = img_pts.get(i)?;
        let sq: f64 = measured
            .iter()
            .zip(proj.iter())
            .map(|(a, b)| {
                let (dx, dy) = (f64::from(a.x - b.x), f64::from(a.y - b.y));
                dx * dx + dy * dy
            })
            .sum();
        let n = measured.len();
        total_sq += sq;
        total_n += n;
        per_image.push((path.clone(), (sq / n.max(1) as f64).sqrt()));
    }
    let distortion: Vec<f64> = (0..dist.total())
        .map(|i| dist.at::<f64>(i as i32).copied())
        .collect::<Result<_, _>>()?;
    Ok(IntrinsicsResult {
        image_size: (size.width.max(0) as u32, size.height.max(0) as u32),
        fx: *k.at_2d::<f64>(0, 0)?,
        fy: *k.at_2d::<f64>(1, 1)?,
        cx: *k.at_2d::<f64>(0, 2)?,
        cy: *k.at_2d::<f64>(1, 2)?,
        distortion,
        per_image,
        rejected,
        avg_error_px: (total_sq / total_n.max(1) as f64).sqrt(),
        opencv_rms_px: rms,
    })
}
