//! The image→ground homography and what can be asked of it.
//!
//! Conventions used throughout the crate:
//! - **Pixel coordinates** `(u, v)` are continuous: `(0, 0)` is the top-left *corner* of the image,
//!   `(width, height)` its bottom-right corner, `u` grows to the right and `v` downwards. Detector
//!   box edges use the same convention, so the ground contact point of a box `[u0, v0, u1, v1]`
//!   is `((u0 + u1) / 2, v1)`.
//! - **Ground coordinates** `(x, y)` are metres in the vehicle frame on the road plane `z = 0`:
//!   `x` forward, `y` left, origin at the centre of the front bumper.
//! - **Sign convention of `H`**: `H · (u, v, 1)ᵀ = (X, Y, W)ᵀ` with `W > 0` for pixels that see
//!   the ground in front of the camera (below the horizon). `W` is `1 / depth` up to a positive
//!   factor; `W ≤ 0` means the pixel ray never meets the ground (at/above the horizon). Both
//!   [`crate::PinholeCamera::ground_homography`] and [`crate::solve_homography`] produce
//!   matrices with this sign; a file whose matrix has the opposite sign fails the sanity checks in
//!   [`crate::CalibrationFile`].

use nalgebra::{Matrix3, Vector3};
use thiserror::Error;

/// `true` unless `a > b` (so also for NaN): the safe form of `!(a > b)`.
pub(crate) fn not_greater(a: f64, b: f64) -> bool {
    !matches!(a.partial_cmp(&b), Some(std::cmp::Ordering::Greater))
}

/// Relative tolerance on the homogeneous coordinate: `w` must exceed this fraction of the
/// magnitude of the terms it is summed from, otherwise the pixel is treated as on the horizon.
pub const HORIZON_EPS: f64 = 1e-9;

/// A point on the road plane, vehicle frame, metres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundPoint {
    /// Forward of the front bumper (metres).
    pub x: f64,
    /// Left of the vehicle centre line (metres).
    pub y: f64,
}

impl GroundPoint {
    /// Creates a ground point.
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// Euclidean distance to another ground point (metres).
    pub fn distance_to(&self, other: &GroundPoint) -> f64 {
        (self.x - other.x).hypot(self.y - other.y)
    }
}

/// A point in the image, continuous pixel coordinates (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pixel {
    /// Column, growing to the right.
    pub u: f64,
    /// Row, growing downwards.
    pub v: f64,
}

impl Pixel {
    /// Creates a pixel.
    pub const fn new(u: f64, v: f64) -> Self {
        Self { u, v }
    }

    /// Euclidean distance to another pixel.
    pub fn distance_to(&self, other: &Pixel) -> f64 {
        (self.u - other.u).hypot(self.v - other.v)
    }
}

/// Why a point could not be mapped between image and ground.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum ProjectionError {
    /// An input coordinate was NaN or infinite.
    #[error("non-finite input coordinate ({0}, {1})")]
    NonFiniteInput(f64, f64),
    /// The pixel ray does not meet the ground in front of the camera: it is on or above the
    /// horizon (`w` is the homogeneous coordinate, `w ≤ 0` above the horizon).
    #[error("pixel ({u:.2}, {v:.2}) is at or above the horizon (w = {w:.3e}); it does not see the ground")]
    AboveHorizon {
        /// Pixel column.
        u: f64,
        /// Pixel row.
        v: f64,
        /// Homogeneous coordinate of `H·(u, v, 1)`.
        w: f64,
    },
    /// The ground point is behind the camera (or on the plane through the camera centre
    /// parallel to the image plane) and has no image.
    #[error("ground point ({x:.2} m, {y:.2} m) is behind the camera; it has no image")]
    BehindCamera {
        /// Forward coordinate (metres).
        x: f64,
        /// Left coordinate (metres).
        y: f64,
    },
    /// The result overflowed or became NaN.
    #[error("projection result is not finite")]
    NonFiniteResult,
}

/// Why a matrix cannot be used as a homography.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum HomographyError {
    /// An entry is NaN or infinite.
    #[error("homography entry [{row}][{col}] is not finite ({value})")]
    NonFinite {
        /// Row index (0-based).
        row: usize,
        /// Column index (0-based).
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// The matrix is (numerically) singular and maps the image onto a line or a point.
    #[error("homography is singular (relative determinant {rel_det:.3e})")]
    Singular {
        /// `|det H| / ‖H‖_F³`, scale-free.
        rel_det: f64,
    },
    /// The inverse (ground → image) could not be computed or is not finite.
    #[error("homography inverse (ground → image) is singular or not finite")]
    SingularInverse,
}

/// Matrices whose `|det| / ‖H‖_F³` is below this are rejected as singular.
pub const SINGULAR_REL_DET: f64 = 1e-12;

/// Image → ground homography (plus its cached inverse).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography {
    h: Matrix3<f64>,
    inv: Matrix3<f64>,
}

/// Jacobian of the ground point with respect to the pixel, `∂(x, y) / ∂(u, v)` in metres per
/// pixel, evaluated at one pixel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundSensitivity {
    /// The ground point the pixel maps to.
    pub ground: GroundPoint,
    /// ∂x/∂u (m/px).
    pub dx_du: f64,
    /// ∂x/∂v (m/px).
    pub dx_dv: f64,
    /// ∂y/∂u (m/px).
    pub dy_du: f64,
    /// ∂y/∂v (m/px).
    pub dy_dv: f64,
}

impl GroundSensitivity {
    /// How far the ground point moves (metres) when the pixel moves by one pixel vertically
    /// (e.g. the bottom edge of a detection box is off by one row).
    pub fn metres_per_px_v(&self) -> f64 {
        self.dx_dv.hypot(self.dy_dv)
    }

    /// How far the ground point moves (metres) when the pixel moves by one pixel horizontally.
    pub fn metres_per_px_u(&self) -> f64 {
        self.dx_du.hypot(self.dy_du)
    }

    /// Ground covariance `J Σ Jᵀ` for an isotropic pixel noise of standard deviation
    /// `sigma_px`, as `[[σxx, σxy], [σxy, σyy]]` (m²). Handy as measurement noise for a tracker.
    pub fn ground_covariance(&self, sigma_px: f64) -> [[f64; 2]; 2] {
        let s2 = sigma_px * sigma_px;
        let xx = s2 * (self.dx_du * self.dx_du + self.dx_dv * self.dx_dv);
        let yy = s2 * (self.dy_du * self.dy_du + self.dy_dv * self.dy_dv);
        let xy = s2 * (self.dx_du * self.dy_du + self.dx_dv * self.dy_dv);
        [[xx, xy], [xy, yy]]
    }
}

/// The horizon as an image line `a·u + b·v + c = 0` (the third row of `H`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HorizonLine {
    /// Coefficient of `u`.
    pub a: f64,
    /// Coefficient of `v`.
    pub b: f64,
    /// Constant term.
    pub c: f64,
}

impl HorizonLine {
    /// Row of the horizon at column `u`; `None` if the horizon is (numerically) vertical.
    pub fn v_at(&self, u: f64) -> Option<f64> {
        let scale = self.a.abs() + self.b.abs();
        if scale == 0.0 || self.b.abs() <= HORIZON_EPS * scale {
            return None;
        }
        let v = -(self.a * u + self.c) / self.b;
        v.is_finite().then_some(v)
    }
}

impl Homography {
    /// Wraps a matrix mapping homogeneous pixels to homogeneous ground points. Rejects non-finite
    /// entries, singular matrices and matrices whose inverse is not usable. The matrix is kept as
    /// given (no rescaling), so a file round-trips exactly.
    pub fn new(h: Matrix3<f64>) -> Result<Self, HomographyError> {
        for row in 0..3 {
            for col in 0..3 {
                let value = h[(row, col)];
                if !value.is_finite() {
                    return Err(HomographyError::NonFinite { row, col, value });
                }
            }
        }
        let norm = h.norm();
        let rel_det = if norm > 0.0 {
            h.determinant().abs() / (norm * norm * norm)
        } else {
            0.0
        };
        if not_greater(rel_det, SINGULAR_REL_DET) {
            return Err(HomographyError::Singular { rel_det });
        }
        let inv = h.try_inverse().ok_or(HomographyError::SingularInverse)?;
        if inv.iter().any(|x| !x.is_finite()) {
            return Err(HomographyError::SingularInverse);
        }
        Ok(Self { h, inv })
    }

    /// Builds a homography from row-major rows, as stored in the calibration file.
    pub fn from_rows(rows: [[f64; 3]; 3]) -> Result<Self, HomographyError> {
        Self::new(Matrix3::from_fn(|r, c| rows[r][c]))
    }

    /// Row-major rows, as stored in the calibration file.
    pub fn to_rows(&self) -> [[f64; 3]; 3] {
        let m = &self.h;
        [
            [m[(0, 0)], m[(0, 1)], m[(0, 2)]],
            [m[(1, 0)], m[(1, 1)], m[(1, 2)]],
            [m[(2, 0)], m[(2, 1)], m[(2, 2)]],
        ]
    }

    /// The image → ground matrix.
    pub fn matrix(&self) -> &Matrix3<f64> {
        &self.h
    }

    /// The ground → image matrix (inverse of [`Self::matrix`]).
    pub fn inverse_matrix(&self) -> &Matrix3<f64> {
        &self.inv
    }

    /// The same mapping scaled to unit Frobenius norm (sign kept). Useful for comparing
    /// homographies, which are only defined up to a positive scale.
    pub fn normalized(&self) -> Self {
        let n = self.h.norm();
        Self {
            h: self.h / n,
            inv: self.inv * n,
        }
    }

    /// Maps a pixel to the ground. Fails for pixels at or above the horizon and for non-finite
    /// input or output.
    pub fn project(&self, u: f64, v: f64) -> Result<GroundPoint, ProjectionError> {
        if !(u.is_finite() && v.is_finite()) {
            return Err(ProjectionError::NonFiniteInput(u, v));
        }
        let p = self.h * Vector3::new(u, v, 1.0);
        let w = p.z;
        let scale = (self.h[(2, 0)] * u).abs() + (self.h[(2, 1)] * v).abs() + self.h[(2, 2)].abs();
        if not_greater(w, HORIZON_EPS * scale) {
            return Err(ProjectionError::AboveHorizon { u, v, w });
        }
        let g = GroundPoint::new(p.x / w, p.y / w);
        if g.x.is_finite() && g.y.is_finite() {
            Ok(g)
        } else {
            Err(ProjectionError::NonFiniteResult)
        }
    }

    /// [`Self::project`] for a [`Pixel`].
    pub fn project_pixel(&self, p: Pixel) -> Result<GroundPoint, ProjectionError> {
        self.project(p.u, p.v)
    }

    /// Maps a ground point to the image (via the inverse). Fails for ground points behind the
    /// camera, which have no image.
    pub fn to_image(&self, x: f64, y: f64) -> Result<Pixel, ProjectionError> {
        if !(x.is_finite() && y.is_finite()) {
            return Err(ProjectionError::NonFiniteInput(x, y));
        }
        let p = self.inv * Vector3::new(x, y, 1.0);
        let w = p.z;
        let scale =
            (self.inv[(2, 0)] * x).abs() + (self.inv[(2, 1)] * y).abs() + self.inv[(2, 2)].abs();
        if not_greater(w, HORIZON_EPS * scale) {
            return Err(ProjectionError::BehindCamera { x, y });
        }
        let px = Pixel::new(p.x / w, p.y / w);
        if px.u.is_finite() && px.v.is_finite() {
            Ok(px)
        } else {
            Err(ProjectionError::NonFiniteResult)
        }
    }

    /// The horizon line (pixels where `w = 0`). Pixels on the side where `a·u + b·v + c > 0` see
    /// the ground.
    pub fn horizon(&self) -> HorizonLine {
        HorizonLine {
            a: self.h[(2, 0)],
            b: self.h[(2, 1)],
            c: self.h[(2, 2)],
        }
    }

    /// Row of the horizon at column `u` (`None` if the horizon is vertical in the image).
    pub fn horizon_v(&self, u: f64) -> Option<f64> {
        self.horizon().v_at(u)
    }

    /// Jacobian of the ground point with respect to the pixel at `(u, v)`.
    ///
    /// With `(X, Y, W) = H·(u, v, 1)`, `x = X/W`: `∂x/∂u = (h11·W − X·h31) / W²`, and likewise
    /// for the other three entries.
    pub fn ground_sensitivity(&self, u: f64, v: f64) -> Result<GroundSensitivity, ProjectionError> {
        let ground = self.project(u, v)?;
        let h = &self.h;
        let w = h[(2, 0)] * u + h[(2, 1)] * v + h[(2, 2)];
        // x = X/W ⇒ ∂x/∂u = (h11 − x·h31)/W, etc.
        let s = GroundSensitivity {
            ground,
            dx_du: (h[(0, 0)] - ground.x * h[(2, 0)]) / w,
            dx_dv: (h[(0, 1)] - ground.x * h[(2, 1)]) / w,
            dy_du: (h[(1, 0)] - ground.y * h[(2, 0)]) / w,
            dy_dv: (h[(1, 1)] - ground.y * h[(2, 1)]) / w,
        };
        if [s.dx_du, s.dx_dv, s.dy_du, s.dy_dv]
            .iter()
            .all(|d| d.is_finite())
        {
            Ok(s)
        } else {
            Err(ProjectionError::NonFiniteResult)
        }
    }

    /// [`Self::ground_sensitivity`] at the pixel where the ground point `(x, y)` is seen — the
    /// "how far does ±1 px move a target at 5/10/20/40 m" question.
    pub fn ground_sensitivity_at_ground(
        &self,
        x: f64,
        y: f64,
    ) -> Result<GroundSensitivity, ProjectionError> {
        let p = self.to_image(x, y)?;
        self.ground_sensitivity(p.u, p.v)
    }

    /// The homography for the same camera at a different image resolution: a pixel `(u', v')` of
    /// the new image is `(u'·sx, v'·sy)` of the original, with `sx = old_width / new_width`,
    /// `sy = old_height / new_height` (continuous corner-origin pixel coordinates, so the scaling
    /// is exact). Returns `H · diag(sx, sy, 1)`.
    pub fn rescaled(&self, sx: f64, sy: f64) -> Result<Self, HomographyError> {
        let d = Matrix3::from_diagonal(&Vector3::new(sx, sy, 1.0));
        Self::new(self.h * d)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;

    /// An explicit invertible matrix with the horizon at v = 100 and w > 0 below it.
    fn simple() -> Homography {
        Homography::from_rows([[0.0, 0.02, 2.0], [-0.01, 0.0, 4.0], [0.0, 0.01, -1.0]]).unwrap()
    }

    #[test]
    fn rejects_bad_matrices() {
        assert!(matches!(
            Homography::from_rows([[f64::NAN, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
            Err(HomographyError::NonFinite { row: 0, col: 0, .. })
        ));
        assert!(matches!(
            Homography::from_rows([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]]),
            Err(HomographyError::Singular { .. })
        ));
        assert!(matches!(
            Homography::new(Matrix3::zeros()),
            Err(HomographyError::Singular { .. })
        ));
    }

    #[test]
    fn horizon_and_rejection() {
        let h = simple();
        // w = 0.01 v − 1 ⇒ horizon at v = 100.
        assert_relative_eq!(h.horizon_v(123.0).unwrap(), 100.0, epsilon = 1e-12);
        assert!(matches!(
            h.project(10.0, 100.0),
            Err(ProjectionError::AboveHorizon { .. })
        ));
        assert!(matches!(
            h.project(10.0, 50.0),
            Err(ProjectionError::AboveHorizon { .. })
        ));
        assert!(matches!(
            h.project(f64::NAN, 50.0),
            Err(ProjectionError::NonFiniteInput(..))
        ));
        let g = h.project(300.0, 200.0).unwrap();
        // X = 0.02·200 + 2 = 6, Y = −3 + 4 = 1, W = 1.
        assert_relative_eq!(g.x, 6.0, epsilon = 1e-12);
        assert_relative_eq!(g.y, 1.0, epsilon = 1e-12);
        let p = h.to_image(g.x, g.y).unwrap();
        assert_relative_eq!(p.u, 300.0, epsilon = 1e-9);
        assert_relative_eq!(p.v, 200.0, epsilon = 1e-9);
    }

    #[test]
    fn jacobian_matches_finite_differences() {
        let h = simple();
        let (u, v) = (250.0, 180.0);
        let s = h.ground_sensitivity(u, v).unwrap();
        let d = 1e-5;
        let gu = h.project(u + d, v).unwrap();
        let gu0 = h.project(u - d, v).unwrap();
        let gv = h.project(u, v + d).unwrap();
        let gv0 = h.project(u, v - d).unwrap();
        assert_relative_eq!(s.dx_du, (gu.x - gu0.x) / (2.0 * d), epsilon = 1e-6);
        assert_relative_eq!(s.dy_du, (gu.y - gu0.y) / (2.0 * d), epsilon = 1e-6);
        assert_relative_eq!(s.dx_dv, (gv.x - gv0.x) / (2.0 * d), epsilon = 1e-6);
        assert_relative_eq!(s.dy_dv, (gv.y - gv0.y) / (2.0 * d), epsilon = 1e-6);
        let cov = s.ground_covariance(1.0);
        assert_relative_eq!(cov[0][0], s.dx_du.powi(2) + s.dx_dv.powi(2));
    }

    #[test]
    fn rescale_is_exact() {
        let h = simple();
        let half = h.rescaled(2.0, 2.0).unwrap();
        let a = h.project(300.0, 200.0).unwrap();
        let b = half.project(150.0, 100.0).unwrap();
        assert_relative_eq!(a.x, b.x, epsilon = 1e-12);
        assert_relative_eq!(a.y, b.y, epsilon = 1e-12);
    }
}
