//! The calibration file the daemon loads (TOML).
//!
//! ```toml
//! version = 1
//! image_width = 768
//! image_height = 576
//! homography = [[h11, h12, h13], [h21, h22, h23], [h31, h32, h33]]  # pixel -> ground metres
//! reprojection_rms_px = 1.2      # optional
//! ground_rms_m = 0.08            # optional
//! created = "2026-11-21"         # ISO date (YYYY-MM-DD, optionally followed by a time)
//! tool = "adas-calibrate 0.1.0"  # or how it was made
//! notes = "..."                  # optional
//!
//! [intrinsics]                   # optional
//! fx = 800.0
//! fy = 800.0
//! cx = 384.0
//! cy = 288.0
//! distortion = [k1, k2, p1, p2, k3]   # optional; 0, 4, 5, 8, 12 or 14 OpenCV coefficients
//!
//! [[points]]                     # optional, for traceability
//! pixel = [u, v]
//! ground = [x, y]
//! ```
//!
//! Pixel coordinates are continuous with the origin at the top-left corner of the image (see
//! [`crate::homography`]); ground coordinates are the vehicle frame (x forward, y left, metres,
//! origin at the front-bumper centre on the ground). Integers are accepted where numbers are
//! expected. Unknown keys are errors.
//!
//! # Sanity checks on load
//! Besides finiteness and invertibility, the matrix must be *plausible for a forward camera*:
//! - the bottom-centre of the image `(width/2, height)` must see the ground (below the horizon);
//!   a matrix with the wrong overall sign or a transposed/inverted matrix usually fails here;
//! - that ground point must not be more than [`MAX_CAMERA_SETBACK_M`] behind the bumper. A strict
//!   `x > 0` would be wrong: a windscreen camera 1.5–2 m behind the bumper with a steep pitch or a
//!   wide lens sees the ground under the bonnet at the bottom of its image (`x < 0`; in practice
//!   occluded by the bonnet), which is geometrically fine;
//! - moving up the image from there (to `v = 0.9·height`) must move the ground point forward
//!   (larger `x`) or above the horizon — catches a flipped forward axis.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::homography::{Homography, HomographyError, ProjectionError};
use crate::solve::{HomographyFit, PointPair};

/// The file format version this crate reads and writes.
pub const FILE_VERSION: u32 = 1;

/// How far behind the front bumper (metres) the bottom-centre pixel may see the ground before
/// the file is rejected: the largest plausible camera setback plus margin.
pub const MAX_CAMERA_SETBACK_M: f64 = 3.0;

/// Largest relative difference between the horizontal and vertical scale factors that
/// [`Rescale::AllowSameAspect`] accepts (covers rounding of odd sizes).
pub const MAX_ASPECT_MISMATCH: f64 = 0.01;

/// Optional camera intrinsics, for information (the daemon uses only the homography).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileIntrinsics {
    /// Focal length (pixels), horizontal.
    pub fx: f64,
    /// Focal length (pixels), vertical.
    pub fy: f64,
    /// Principal point column.
    pub cx: f64,
    /// Principal point row.
    pub cy: f64,
    /// OpenCV distortion coefficients `[k1, k2, p1, p2, k3, …]`; empty if none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distortion: Vec<f64>,
}

/// One correspondence kept in the file for traceability.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    /// `[u, v]`, pixels.
    pub pixel: [f64; 2],
    /// `[x, y]`, metres, vehicle frame.
    pub ground: [f64; 2],
}

impl From<&PointPair> for CalibrationPoint {
    fn from(p: &PointPair) -> Self {
        Self {
            pixel: [p.pixel.u, p.pixel.v],
            ground: [p.ground.x, p.ground.y],
        }
    }
}

impl From<&CalibrationPoint> for PointPair {
    fn from(p: &CalibrationPoint) -> Self {
        PointPair::new(p.pixel[0], p.pixel[1], p.ground[0], p.ground[1])
    }
}

/// The calibration file. Field order is the order written by [`CalibrationFile::save`] (plain
/// keys first, tables last, as TOML requires).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationFile {
    /// Format version, must be [`FILE_VERSION`].
    pub version: u32,
    /// Width (pixels) of the images the homography is for.
    pub image_width: u32,
    /// Height (pixels) of the images the homography is for.
    pub image_height: u32,
    /// Row-major image pixel → ground metres homography.
    pub homography: [[f64; 3]; 3],
    /// RMS reprojection error of the calibration points (pixels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprojection_rms_px: Option<f64>,
    /// RMS ground error of the calibration points (metres).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ground_rms_m: Option<f64>,
    /// ISO date (`YYYY-MM-DD`, optionally followed by `T` or a space and a time).
    pub created: String,
    /// The tool (and version) or procedure that made the file.
    pub tool: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Camera intrinsics, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intrinsics: Option<FileIntrinsics>,
    /// The correspondences the homography was solved from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<CalibrationPoint>,
}

/// Whether [`CalibrationFile::for_image`] may adapt the homography to another resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rescale {
    /// The image size must match the file exactly (the default: a different size usually means
    /// a different camera mode, crop or sensor binning, which scaling cannot fix).
    #[default]
    Exact,
    /// Accept a different size when the aspect ratio matches (within
    /// [`MAX_ASPECT_MISMATCH`]) and the frames are a pure resize of the calibrated ones:
    /// `H' = H · diag(W/w, H/h, 1)`.
    AllowSameAspect,
}

/// Errors loading, validating or saving a calibration file. Each names the file (as given, or
/// `<string>` when parsed from memory) and, where it applies, the key and line.
#[derive(Debug, Error)]
pub enum CalibrationError {
    /// The file could not be read or written.
    #[error("{file}: {action}: {source}")]
    Io {
        /// The file.
        file: PathBuf,
        /// What was attempted.
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// TOML syntax error, unknown key, missing key or wrong type.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// The parser's message (names the key).
        message: String,
    },
    /// The file has a version this crate does not read.
    #[error("{file}{}: key `version`: unsupported version {found}, this build reads version {supported}", LineSuffix(*line))]
    UnsupportedVersion {
        /// The file.
        file: PathBuf,
        /// Line of the key, if found.
        line: Option<usize>,
        /// Version in the file.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// A value is out of range or the homography fails a sanity check.
    #[error("{file}{}: key `{key}`: {reason}", LineSuffix(*line))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The key, e.g. `homography[2][0]` or `points[3].pixel`.
        key: String,
        /// Line of the key, if found.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// The calibration is for another image size.
    #[error(
        "calibration is for {expected_width}×{expected_height} images, the source delivers \
         {width}×{height}{hint}"
    )]
    ImageSizeMismatch {
        /// Width in the file.
        expected_width: u32,
        /// Height in the file.
        expected_height: u32,
        /// Width offered.
        width: u32,
        /// Height offered.
        height: u32,
        /// Why rescaling was not applied.
        hint: &'static str,
    },
    /// The file could not be serialised.
    #[error("{file}: cannot serialise calibration: {message}")]
    Serialize {
        /// The file.
        file: PathBuf,
        /// The serialiser's message.
        message: String,
    },
}

struct LineSuffix(Option<usize>);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(l) => write!(f, ":{l}"),
            None => Ok(()),
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |i| offset - i - 1) + 1;
    (line, column)
}

/// Best-effort line of a key like `version`, `homography[1][2]`, `intrinsics.fx` or
/// `points[3].pixel` in the source text.
fn key_line(text: &str, key: &str) -> Option<usize> {
    // Split "points[3].pixel" → table "points", index 3, leaf "pixel".
    let (table, index, leaf) = match key.split_once('.') {
        Some((t, leaf)) => match t.split_once('[') {
            Some((name, rest)) => (
                Some(name),
                rest.trim_end_matches(']').parse::<usize>().ok(),
                leaf,
            ),
            None => (Some(t), None, leaf),
        },
        None => (None, None, key.split('[').next().unwrap_or(key)),
    };
    let is_key = |line: &str| {
        line.trim_start()
            .strip_prefix(leaf)
            .is_some_and(|r| r.trim_start().starts_with('='))
    };
    let mut in_scope = table.is_none();
    let mut seen = 0usize;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            let name = t.trim_matches(|c| c == '[' || c == ']').trim();
            in_scope = match table {
                None => false,
                Some(tab) if name == tab => {
                    seen += 1;
                    index.is_none_or(|k| k + 1 == seen)
                }
                Some(_) => false,
            };
            continue;
        }
        if in_scope && is_key(line) {
            return Some(i + 1);
        }
    }
    None
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 10 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
        return false;
    }
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    let (m, d) = (num(5..7), num(8..10));
    (1..=12).contains(&m)
        && (1..=31).contains(&d)
        && (b.len() == 10 || matches!(b[10], b'T' | b' '))
}

impl CalibrationFile {
    /// A file for a freshly solved homography (no intrinsics, no notes, no points).
    pub fn from_fit(
        fit: &HomographyFit,
        image_width: u32,
        image_height: u32,
        created: impl Into<String>,
        tool: impl Into<String>,
    ) -> Self {
        Self {
            reprojection_rms_px: Some(fit.reprojection_rms_px),
            ground_rms_m: Some(fit.ground_rms_m),
            ..Self::from_homography(&fit.homography, image_width, image_height, created, tool)
        }
    }

    /// A file for a homography that was not fitted to points (e.g. made from a measured camera
    /// mounting): no error figures, no intrinsics, no notes, no points.
    pub fn from_homography(
        homography: &Homography,
        image_width: u32,
        image_height: u32,
        created: impl Into<String>,
        tool: impl Into<String>,
    ) -> Self {
        Self {
            version: FILE_VERSION,
            image_width,
            image_height,
            homography: homography.to_rows(),
            reprojection_rms_px: None,
            ground_rms_m: None,
            created: created.into(),
            tool: tool.into(),
            notes: None,
            intrinsics: None,
            points: Vec::new(),
        }
    }

    /// Reads and validates a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CalibrationError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| CalibrationError::Io {
            file: path.to_path_buf(),
            action: "cannot read calibration file",
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Parses and validates TOML text; `file` is only used in error messages.
    pub fn from_toml_str(text: &str, file: impl AsRef<Path>) -> Result<Self, CalibrationError> {
        let file = file.as_ref();
        let parsed: Self = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((0, 0), |s| line_col(text, s.start));
            let mut message = e.message().trim().to_string();
            // Type errors do not name the key; take it from the offending line.
            let key = text
                .lines()
                .nth(line.saturating_sub(1))
                .and_then(|l| l.split_once('='))
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !k.starts_with('['));
            if let Some(key) = key {
                if !message.contains(key) {
                    message = format!("key `{key}`: {message}");
                }
            }
            CalibrationError::Syntax {
                file: file.to_path_buf(),
                line,
                column,
                message,
            }
        })?;
        parsed.validate_inner(file, Some(text))?;
        Ok(parsed)
    }

    /// Validates the contents (everything [`Self::load`] checks after parsing).
    pub fn validate(&self) -> Result<(), CalibrationError> {
        self.validate_inner(Path::new("<memory>"), None)
    }

    fn validate_inner(&self, file: &Path, text: Option<&str>) -> Result<(), CalibrationError> {
        let line = |key: &str| text.and_then(|t| key_line(t, key));
        let invalid = |key: String, reason: String| CalibrationError::Invalid {
            file: file.to_path_buf(),
            line: line(&key),
            key,
            reason,
        };
        if self.version != FILE_VERSION {
            return Err(CalibrationError::UnsupportedVersion {
                file: file.to_path_buf(),
                line: line("version"),
                found: self.version,
                supported: FILE_VERSION,
            });
        }
        for (key, v) in [
            ("image_width", self.image_width),
            ("image_height", self.image_height),
        ] {
            if v == 0 {
                return Err(invalid(key.into(), "image size must be > 0".into()));
            }
        }
        for (r, row) in self.homography.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(invalid(
                        format!("homography[{r}][{c}]"),
                        format!("entry is not finite ({v})"),
                    ));
                }
            }
        }
        let h = Homography::from_rows(self.homography).map_err(|e| {
            let reason = match e {
                HomographyError::Singular { rel_det } => format!(
                    "matrix is singular (relative determinant {rel_det:.2e}); it does not map \
                     the image onto the ground plane"
                ),
                HomographyError::SingularInverse => {
                    "the inverse (ground → image) is singular or not finite".to_string()
                }
                other => other.to_string(),
            };
            invalid("homography".into(), reason)
        })?;
        self.check_plausible(&h)
            .map_err(|reason| invalid("homography".into(), reason))?;
        for (key, v) in [
            ("reprojection_rms_px", self.reprojection_rms_px),
            ("ground_rms_m", self.ground_rms_m),
        ] {
            if let Some(v) = v {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(invalid(
                        key.into(),
                        format!("must be a finite number ≥ 0, got {v}"),
                    ));
                }
            }
        }
        if !is_iso_date(&self.created) {
            return Err(invalid(
                "created".into(),
                format!(
                    "expected an ISO date like \"2026-11-21\", got {:?}",
                    self.created
                ),
            ));
        }
        if self.tool.trim().is_empty() {
            return Err(invalid(
                "tool".into(),
                "must say which tool or procedure made the file".into(),
            ));
        }
        if let Some(k) = &self.intrinsics {
            for (key, v, positive) in [
                ("fx", k.fx, true),
                ("fy", k.fy, true),
                ("cx", k.cx, false),
                ("cy", k.cy, false),
            ] {
                if !v.is_finite() || (positive && v <= 0.0) {
                    return Err(invalid(
                        format!("intrinsics.{key}"),
                        format!(
                            "must be a finite{} number, got {v}",
                            if positive { " positive" } else { "" }
                        ),
                    ));
                }
            }
            if !matches!(k.distortion.len(), 0 | 4 | 5 | 8 | 12 | 14) {
                return Err(invalid(
                    "intrinsics.distortion".into(),
                    format!(
                        "expected 4, 5, 8, 12 or 14 OpenCV coefficients [k1, k2, p1, p2, k3, …], got {}",
                        k.distortion.len()
                    ),
                ));
            }
            if let Some(v) = k.distortion.iter().find(|v| !v.is_finite()) {
                return Err(invalid(
                    "intrinsics.distortion".into(),
                    format!("coefficient is not finite ({v})"),
                ));
            }
        }
        for (i, p) in self.points.iter().enumerate() {
            for (name, xy) in [("pixel", p.pixel), ("ground", p.ground)] {
                if !xy.iter().all(|v| v.is_finite()) {
                    return Err(invalid(
                        format!("points[{i}].{name}"),
                        format!("coordinates must be finite, got {xy:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The forward-camera plausibility checks described in the module docs.
    fn check_plausible(&self, h: &Homography) -> Result<(), String> {
        let (w, hh) = (f64::from(self.image_width), f64::from(self.image_height));
        let (u, v) = (0.5 * w, hh);
        let bottom = h.project(u, v).map_err(|e| match e {
            ProjectionError::AboveHorizon { .. } => format!(
                "the bottom-centre pixel ({u}, {v}) does not see the ground (it is at or above \
                 the horizon of this matrix); the matrix probably has the wrong sign, is \
                 transposed, or maps ground → image instead of image → ground"
            ),
            other => format!("the bottom-centre pixel ({u}, {v}) cannot be projected: {other}"),
        })?;
        if bottom.x < -MAX_CAMERA_SETBACK_M {
            return Err(format!(
                "the bottom-centre pixel ({u}, {v}) maps to x = {:.2} m, more than \
                 {MAX_CAMERA_SETBACK_M} m behind the front bumper; a forward camera cannot see \
                 the ground there (is the x axis reversed or the origin misplaced?)",
                bottom.x
            ));
        }
        let v_up = 0.9 * hh;
        if let Ok(up) = h.project(u, v_up) {
            if up.x <= bottom.x {
                return Err(format!(
                    "moving up the image from ({u}, {v}) to ({u}, {v_up}) moves the ground point \
                     from x = {:.2} m to x = {:.2} m, i.e. not forward (is the x axis reversed?)",
                    bottom.x, up.x
                ));
            }
        }
        Ok(())
    }

    /// The validated homography for the calibrated image size.
    pub fn homography(&self) -> Result<Homography, CalibrationError> {
        self.validate()?;
        Homography::from_rows(self.homography).map_err(|e| CalibrationError::Invalid {
            file: PathBuf::from("<memory>"),
            key: "homography".into(),
            line: None,
            reason: e.to_string(),
        })
    }

    /// The homography to use for frames of `width × height`. With [`Rescale::Exact`] the size
    /// must match the file. With [`Rescale::AllowSameAspect`] a different size is accepted when
    /// the aspect ratio matches, assuming the frames are a pure resize of the calibrated ones
    /// (not a crop): `H' = H · diag(W/width, H/height, 1)`. The intrinsics in the file are not
    /// rescaled (they are informational).
    pub fn for_image(
        &self,
        width: u32,
        height: u32,
        rescale: Rescale,
    ) -> Result<Homography, CalibrationError> {
        let h = self.homography()?;
        if width == self.image_width && height == self.image_height {
            return Ok(h);
        }
        let mismatch = |hint| CalibrationError::ImageSizeMismatch {
            expected_width: self.image_width,
            expected_height: self.image_height,
            width,
            height,
            hint,
        };
        match rescale {
            Rescale::Exact => Err(mismatch(
                " (rescaling not allowed; recalibrate, or allow rescaling if the frames are a \
                 pure resize)",
            )),
            Rescale::AllowSameAspect => {
                if width == 0 || height == 0 {
                    return Err(mismatch(" (zero size)"));
                }
                let sx = f64::from(self.image_width) / f64::from(width);
                let sy = f64::from(self.image_height) / f64::from(height);
                if (sx / sy - 1.0).abs() > MAX_ASPECT_MISMATCH {
                    return Err(mismatch(
                        " (aspect ratios differ: a crop or a different sensor mode cannot be \
                         fixed by rescaling; recalibrate)",
                    ));
                }
                h.rescaled(sx, sy).map_err(|e| CalibrationError::Invalid {
                    file: PathBuf::from("<memory>"),
                    key: "homography".into(),
                    line: None,
                    reason: format!("rescaled matrix is unusable: {e}"),
                })
            }
        }
    }

    /// The calibration points as solver input.
    pub fn point_pairs(&self) -> Vec<PointPair> {
        self.points.iter().map(PointPair::from).collect()
    }

    /// Serialises to TOML (with a short header comment).
    pub fn to_toml_string(&self) -> Result<String, toml::ser::Error> {
        let body = toml::to_string(self)?;
        Ok(format!(
            "# adas camera calibration: image pixel -> ground metres (vehicle frame: x forward,\n\
             # y left, origin at the front-bumper centre on the ground).\n{body}"
        ))
    }

    /// Validates and writes the file (via a temporary file and a rename, so a reader never sees
    /// a half-written file).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), CalibrationError> {
        let path = path.as_ref();
        self.validate_inner(path, None)?;
        let text = self
            .to_toml_string()
            .map_err(|e| CalibrationError::Serialize {
                file: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |action, source| CalibrationError::Io {
            file: path.to_path_buf(),
            action,
            source,
        };
        std::fs::write(&tmp, text).map_err(|e| io("cannot write temporary file", e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("cannot rename temporary file into place", e))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::camera::{Intrinsics, Mounting, PinholeCamera};
    use crate::solve::solve_homography;

    fn camera() -> PinholeCamera {
        PinholeCamera::new(
            Intrinsics::from_hfov(768.0, 576.0, 60f64.to_radians()),
            Mounting {
                x: -1.5,
                y: 0.0,
                height: 1.3,
                pitch: 5f64.to_radians(),
                yaw: 0.0,
                roll: 0.0,
            },
        )
        .unwrap()
    }

    fn sample() -> CalibrationFile {
        let cam = camera();
        let pairs: Vec<PointPair> = [
            (4.0, -2.0),
            (4.0, 2.0),
            (15.0, -3.0),
            (15.0, 3.0),
            (30.0, 0.5),
        ]
        .iter()
        .map(|&(x, y)| {
            let p = cam.project_point([x, y, 0.0]).unwrap();
            PointPair::new(p.u, p.v, x, y)
        })
        .collect();
        let fit = solve_homography(&pairs).unwrap();
        let mut f = CalibrationFile::from_fit(&fit, 768, 576, "2026-11-21", "unit test");
        f.notes = Some("synthetic \"camera\"\nsecond line".into());
        f.intrinsics = Some(FileIntrinsics {
            fx: 665.1,
            fy: 665.1,
            cx: 384.0,
            cy: 288.0,
            distortion: vec![-0.1, 0.01, 0.0, 0.0, 0.0],
        });
        f.points = pairs.iter().map(CalibrationPoint::from).collect();
        f
    }

    fn text_with(replace: &str, with: &str) -> String {
        let t = sample().to_toml_string().unwrap();
        assert!(t.contains(replace), "{replace} not in\n{t}");
        t.replacen(replace, with, 1)
    }

    fn err(text: &str) -> CalibrationError {
        CalibrationFile::from_toml_str(text, "cal.toml").unwrap_err()
    }

    #[test]
    fn save_load_round_trip() {
        let dir = std::env::temp_dir().join(format!("adas-calib-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cal.toml");
        let f = sample();
        f.save(&path).unwrap();
        let g = CalibrationFile::load(&path).unwrap();
        assert_eq!(f, g);
        // A minimal file (no optional keys) also round-trips.
        let mut m = f.clone();
        m.intrinsics = None;
        m.points.clear();
        m.notes = None;
        m.reprojection_rms_px = None;
        m.ground_rms_m = None;
        m.save(&path).unwrap();
        assert_eq!(CalibrationFile::load(&path).unwrap(), m);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn documented_example_parses_with_integers() {
        let text = r#"
version = 1
image_width = 768
image_height = 576
homography = [[0, -0.01, 6], [-0.01, 0, 3.84], [0, 0.01, -1]]
created = "2026-11-21"
tool = "by hand"

[intrinsics]
fx = 800
fy = 800
cx = 384
cy = 288
distortion = [0, 0, 0, 0, 0]

[[points]]
pixel = [384, 576]
ground = [1.263, 0]
"#;
        let f = CalibrationFile::from_toml_str(text, "x.toml").unwrap();
        let h = f.homography().unwrap();
        // w = 0.01 v − 1: horizon at v = 100; bottom centre: x = 6 − 5.76 / 4.76 …
        let g = h.project(384.0, 576.0).unwrap();
        assert!(g.x > 0.0 && g.y.abs() < 1e-12);
    }

    #[test]
    fn syntax_errors_name_file_line_and_key() {
        let e = err(&text_with("tool = ", "tool_name = "));
        let msg = e.to_string();
        assert!(
            matches!(e, CalibrationError::Syntax { line, .. } if line > 1),
            "{msg}"
        );
        assert!(msg.starts_with("cal.toml:"), "{msg}");
        assert!(msg.contains("tool_name"), "{msg}");
        let e = err("version = 1\nimage_width = \n");
        assert!(matches!(e, CalibrationError::Syntax { line: 2, .. }), "{e}");
        let e = err(&text_with("image_width = 768", "image_width = \"768\""));
        assert!(e.to_string().contains("image_width"), "{e}");
    }

    #[test]
    fn validation_errors() {
        let e = err(&text_with("version = 1", "version = 2"));
        assert!(
            matches!(
                e,
                CalibrationError::UnsupportedVersion {
                    found: 2,
                    line: Some(_),
                    ..
                }
            ),
            "{e}"
        );
        let e = err(&text_with("image_width = 768", "image_width = 0"));
        assert!(e.to_string().contains("`image_width`"), "{e}");

        let f = sample();
        let t = f.to_toml_string().unwrap();
        let h = format!("{:?}", f.homography[1][2]);
        assert!(t.contains(&h), "{t}");
        let e = err(&t.replacen(&h, "nan", 1));
        assert!(e.to_string().contains("homography[1][2]"), "{e}");
        let e = err(&t.replacen(&h, "inf", 1));
        assert!(
            matches!(e, CalibrationError::Invalid { ref key, line: Some(_), .. } if key == "homography[1][2]"),
            "{e}"
        );

        let check = |f: &CalibrationFile, needle: &str| {
            let e = f.validate().unwrap_err();
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        };
        let mut s = f.clone();
        s.homography = [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]];
        check(&s, "singular");
        // Opposite sign: the bottom centre is "above the horizon".
        let mut s = f.clone();
        s.homography = s.homography.map(|r| r.map(|v| -v));
        check(&s, "does not see the ground");
        // The ground→image matrix instead of image→ground.
        let mut s = f.clone();
        let inv = *f.homography().unwrap().inverse_matrix();
        s.homography = Homography::new(inv).unwrap().to_rows();
        assert!(s.validate().is_err());
        // x axis reversed (x → −x): bottom centre far behind the vehicle / not forward.
        let mut s = f.clone();
        s.homography[0] = s.homography[0].map(|v| -v);
        check(&s, "homography");
        // Shifted origin: bottom centre 10 m behind the bumper.
        let mut s = f.clone();
        let r = s.homography;
        s.homography[0] = [0, 1, 2].map(|c| r[0][c] - 12.0 * r[2][c]);
        check(&s, "behind the front bumper");

        let mut s = f.clone();
        s.created = "21.11.2026".into();
        check(&s, "ISO date");
        let mut s = f.clone();
        s.created = "2026-11-21T10:00:00Z".into();
        s.validate().unwrap();
        let mut s = f.clone();
        s.ground_rms_m = Some(-1.0);
        check(&s, "ground_rms_m");
        let mut s = f.clone();
        if let Some(k) = s.intrinsics.as_mut() {
            k.distortion = vec![0.0; 3];
        }
        check(&s, "intrinsics.distortion");
        let mut s = f.clone();
        s.points[2].ground[0] = f64::NAN;
        check(&s, "points[2].ground");
        let mut s = f;
        s.tool = " ".into();
        check(&s, "tool");
    }

    #[test]
    fn point_key_lines_are_found() {
        let t = sample().to_toml_string().unwrap();
        let l = key_line(&t, "points[2].pixel").unwrap();
        let third = t.match_indices("[[points]]").nth(2).unwrap().0;
        assert_eq!(l, line_col(&t, third).0 + 1);
        assert!(key_line(&t, "intrinsics.fx").is_some());
        assert!(key_line(&t, "nothing").is_none());
    }

    #[test]
    fn image_size_policy() {
        let f = sample();
        let h = f.for_image(768, 576, Rescale::Exact).unwrap();
        let e = f.for_image(384, 288, Rescale::Exact).unwrap_err();
        assert!(e.to_string().contains("768×576"), "{e}");
        let half = f.for_image(384, 288, Rescale::AllowSameAspect).unwrap();
        let a = h.project(400.0, 500.0).unwrap();
        let b = half.project(200.0, 250.0).unwrap();
        assert!(a.distance_to(&b) < 1e-9);
        let e = f.for_image(640, 360, Rescale::AllowSameAspect).unwrap_err();
        assert!(e.to_string().contains("aspect"), "{e}");
    }

    #[test]
    fn missing_file_names_path() {
        let e = CalibrationFile::load("/nonexistent/cal.toml").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/cal.toml"), "{e}");
    }
}
