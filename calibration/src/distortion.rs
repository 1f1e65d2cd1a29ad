//! The OpenCV lens distortion model and its inversion (undistorting pixels), in plain Rust.
//!
//! With normalised coordinates `(x, y) = ((u − cx)/fx, (v − cy)/fy)` of the *ideal* pinhole
//! image and `r² = x² + y²`, OpenCV's model (`[k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4]`,
//! any prefix of length 4, 5, 8 or 12; missing terms are zero) gives the distorted point
//!
//! ```text
//! radial = (1 + k1 r² + k2 r⁴ + k3 r⁶) / (1 + k4 r² + k5 r⁴ + k6 r⁶)
//! x_d = x·radial + 2 p1 x y + p2 (r² + 2x²) + s1 r² + s2 r⁴
//! y_d = y·radial + p1 (r² + 2y²) + 2 p2 x y + s3 r² + s4 r⁴
//! ```
//!
//! and the observed pixel `(fx x_d + cx, fy y_d + cy)`. The inverse has no closed form;
//! [`LensModel::undistort`] uses OpenCV's fixed-point iteration followed by Newton steps and checks
//! the result by distorting it again, so it fails loudly instead of returning a wrong point (e.g.
//! far outside the image where a strong barrel model folds back on itself). The 14-coefficient
//! form (with a tilted sensor, `τx, τy`) is accepted only with zero tilt.

use thiserror::Error;

use crate::file::FileIntrinsics;
use crate::homography::{not_greater, Pixel};

/// Why a lens model cannot be built or a point not undistorted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DistortionError {
    /// Bad parameters.
    #[error("invalid lens model: {0}")]
    Invalid(String),
    /// The iterative inversion did not converge for this pixel.
    #[error(
        "cannot undistort pixel ({u:.2}, {v:.2}): the distortion model does not invert there \
         (residual {residual:.2e}); is the pixel far outside the calibrated image area?"
    )]
    NoConvergence {
        /// Pixel column.
        u: f64,
        /// Pixel row.
        v: f64,
        /// Remaining error of the inversion, normalised units.
        residual: f64,
    },
}

/// Camera matrix plus OpenCV distortion coefficients.
#[derive(Debug, Clone, PartialEq)]
pub struct LensModel {
    /// Focal length (px), horizontal.
    pub fx: f64,
    /// Focal length (px), vertical.
    pub fy: f64,
    /// Principal point column.
    pub cx: f64,
    /// Principal point row.
    pub cy: f64,
    /// `[k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4]` (zero-padded).
    coeffs: [f64; 12],
}

impl LensModel {
    /// Builds a model from OpenCV coefficients (0, 4, 5, 8, 12 or 14 of them).
    pub fn new(fx: f64, fy: f64, cx: f64, cy: f64, dist: &[f64]) -> Result<Self, DistortionError> {
        if ![fx, fy, cx, cy].iter().all(|v| v.is_finite()) || fx <= 0.0 || fy <= 0.0 {
            return Err(DistortionError::Invalid(format!(
                "camera matrix must be finite with fx, fy > 0 (fx = {fx}, fy = {fy}, cx = {cx}, \
                 cy = {cy})"
            )));
        }
        if !matches!(dist.len(), 0 | 4 | 5 | 8 | 12 | 14) {
            return Err(DistortionError::Invalid(format!(
                "expected 0, 4, 5, 8, 12 or 14 distortion coefficients, got {}",
                dist.len()
            )));
        }
        if let Some(v) = dist.iter().find(|v| !v.is_finite()) {
            return Err(DistortionError::Invalid(format!(
                "distortion coefficient is not finite ({v})"
            )));
        }
        if dist.len() == 14 && (dist[12] != 0.0 || dist[13] != 0.0) {
            return Err(DistortionError::Invalid(
                "tilted-sensor coefficients (τx, τy) are not supported".into(),
            ));
        }
        let mut coeffs = [0.0; 12];
        for (c, d) in coeffs.iter_mut().zip(dist.iter()) {
            *c = *d;
        }
        Ok(Self {
            fx,
            fy,
            cx,
            cy,
            coeffs,
        })
    }

    /// The model of a calibration file's `[intrinsics]` table.
    pub fn from_file_intrinsics(k: &FileIntrinsics) -> Result<Self, DistortionError> {
        Self::new(k.fx, k.fy, k.cx, k.cy, &k.distortion)
    }

    /// `true` if all distortion coefficients are zero.
    pub fn is_pinhole(&self) -> bool {
        self.coeffs.iter().all(|c| *c == 0.0)
    }

    /// Distorts normalised ideal coordinates.
    pub fn distort_normalised(&self, x: f64, y: f64) -> (f64, f64) {
        let [k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4] = self.coeffs;
        let r2 = x * x + y * y;
        let r4 = r2 * r2;
        let r6 = r4 * r2;
        let radial = (1.0 + k1 * r2 + k2 * r4 + k3 * r6) / (1.0 + k4 * r2 + k5 * r4 + k6 * r6);
        (
            x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) + s1 * r2 + s2 * r4,
            y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y + s3 * r2 + s4 * r4,
        )
    }

    /// Where an ideal (undistorted) pixel is observed.
    pub fn distort(&self, p: Pixel) -> Pixel {
        let (x, y) = ((p.u - self.cx) / self.fx, (p.v - self.cy) / self.fy);
        let (xd, yd) = self.distort_normalised(x, y);
        Pixel::new(self.fx * xd + self.cx, self.fy * yd + self.cy)
    }

    /// The ideal pinhole pixel (same camera matrix) of an observed pixel.
    pub fn undistort(&self, p: Pixel) -> Result<Pixel, DistortionError> {
        if !(p.u.is_finite() && p.v.is_finite()) {
            return Err(DistortionError::Invalid(format!(
                "pixel ({}, {}) is not finite",
                p.u, p.v
            )));
        }
        if self.is_pinhole() {
            return Ok(p);
        }
        let [k1, k2, p1, p2, k3, k4, k5, k6, s1, s2, s3, s4] = self.coeffs;
        let (xd, yd) = ((p.u - self.cx) / self.fx, (p.v - self.cy) / self.fy);
        // OpenCV's fixed-point iteration (cv::undistortPoints) …
        let (mut x, mut y) = (xd, yd);
        for _ in 0..20 {
            let r2 = x * x + y * y;
            let r4 = r2 * r2;
            let icdist =
                (1.0 + k4 * r2 + k5 * r4 + k6 * r4 * r2) / (1.0 + k1 * r2 + k2 * r4 + k3 * r4 * r2);
            if !icdist.is_finite() || icdist <= 0.0 {
                break;
            }
            let dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x) + s1 * r2 + s2 * r4;
            let dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y + s3 * r2 + s4 * r4;
            x = (xd - dx) * icdist;
            y = (yd - dy) * icdist;
        }
        if !(x.is_finite() && y.is_finite()) {
            x = xd;
            y = yd;
        }
        // … then Newton steps on distort(x, y) = (xd, yd) (numeric Jacobian) to full precision.
        let err = |x: f64, y: f64| {
            let (a, b) = self.distort_normalised(x, y);
            (a - xd, b - yd)
        };
        for _ in 0..30 {
            let (ex, ey) = err(x, y);
            if ex.hypot(ey) < 1e-14 {
                break;
            }
            let h = 1e-7;
            let (ax, ay) = err(x + h, y);
            let (bx, by) = err(x, y + h);
            let (j11, j21, j12, j22) = ((ax - ex) / h, (ay - ey) / h, (bx - ex) / h, (by - ey) / h);
            let det = j11 * j22 - j12 * j21;
            if !det.is_finite() || det.abs() < 1e-12 {
                break;
            }
            x -= (j22 * ex - j12 * ey) / det;
            y -= (-j21 * ex + j11 * ey) / det;
        }
        let (ex, ey) = err(x, y);
        let residual = ex.hypot(ey);
        // 1e-9 normalised ≈ 1e-6 px for f ≈ 1000 px.
        if !(residual < 1e-9 && x.is_finite() && y.is_finite()) {
            return Err(DistortionError::NoConvergence {
                u: p.u,
                v: p.v,
                residual,
            });
        }
        // The model must be invertible (positive Jacobian) all the way from the centre to the
        // solution, otherwise it is a point on the folded-back branch of the polynomial.
        for k in 1..=32 {
            let t = f64::from(k) / 32.0;
            let (px, py) = (x * t, y * t);
            let h = 1e-7;
            let (a0, b0) = self.distort_normalised(px, py);
            let (a1, b1) = self.distort_normalised(px + h, py);
            let (a2, b2) = self.distort_normalised(px, py + h);
            let det = ((a1 - a0) * (b2 - b0) - (a2 - a0) * (b1 - b0)) / (h * h);
            if not_greater(det, 0.0) {
                return Err(DistortionError::NoConvergence {
                    u: p.u,
                    v: p.v,
                    residual,
                });
            }
        }
        Ok(Pixel::new(self.fx * x + self.cx, self.fy * y + self.cy))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The left*.jpg reference camera (OpenCV sample data, 640×480): strong barrel distortion.
    fn left() -> LensModel {
        LensModel::new(
            535.9,
            535.9,
            342.3,
            235.6,
            &[-0.2664, -0.0386, 0.00178, -0.00028, 0.2384],
        )
        .unwrap()
    }

    #[test]
    fn undistort_inverts_distort_over_the_image() {
        let m = left();
        let mut worst: f64 = 0.0;
        for i in 0..=16 {
            for j in 0..=12 {
                let ideal = Pixel::new(f64::from(i) * 40.0, f64::from(j) * 40.0);
                let seen = m.distort(ideal);
                let back = m.undistort(seen).unwrap();
                worst = worst.max(back.distance_to(&ideal));
            }
        }
        assert!(worst < 1e-6, "{worst}");
        // The principal point is fixed; a corner moves outwards a lot (barrel).
        let c = m.undistort(Pixel::new(342.3, 235.6)).unwrap();
        assert!(c.distance_to(&Pixel::new(342.3, 235.6)) < 1e-12);
        let corner = m.undistort(Pixel::new(0.0, 0.0)).unwrap();
        assert!(corner.u < -20.0 && corner.v < -20.0, "{corner:?}");
    }

    #[test]
    fn rational_and_thin_prism_terms_invert() {
        let m = LensModel::new(
            800.0,
            790.0,
            400.0,
            300.0,
            &[
                0.1, -0.05, 0.001, 0.002, 0.01, 0.02, 0.001, 0.0, 0.001, 0.0, -0.001, 0.0,
            ],
        )
        .unwrap();
        for (u, v) in [(0.0, 0.0), (799.0, 599.0), (123.0, 456.0)] {
            let ideal = Pixel::new(u, v);
            let back = m.undistort(m.distort(ideal)).unwrap();
            assert!(back.distance_to(&ideal) < 1e-6);
        }
    }

    #[test]
    fn bad_models_and_far_points_are_refused() {
        assert!(LensModel::new(0.0, 1.0, 0.0, 0.0, &[]).is_err());
        assert!(LensModel::new(1.0, 1.0, 0.0, 0.0, &[0.1, 0.2, 0.0]).is_err());
        assert!(LensModel::new(1.0, 1.0, 0.0, 0.0, &[f64::NAN, 0.0, 0.0, 0.0]).is_err());
        let mut tilt = [0.0; 14];
        tilt[12] = 0.01;
        assert!(LensModel::new(1.0, 1.0, 0.0, 0.0, &tilt).is_err());
        // Pure pinhole: identity.
        let p = LensModel::new(500.0, 500.0, 320.0, 240.0, &[]).unwrap();
        assert_eq!(
            p.undistort(Pixel::new(1.0, 2.0)).unwrap(),
            Pixel::new(1.0, 2.0)
        );
        // A strong barrel model r(1 − 0.5 r²) folds back at r = 0.816 (r_d = 0.544): beyond
        // that a pixel has no inverse.
        let barrel = LensModel::new(500.0, 500.0, 320.0, 240.0, &[-0.5, 0.0, 0.0, 0.0]).unwrap();
        let e = barrel.undistort(Pixel::new(820.0, 240.0)).unwrap_err();
        assert!(e.to_string().contains("820"), "{e}");
        let ok = barrel.undistort(Pixel::new(320.0 + 250.0, 240.0)).unwrap();
        assert!(ok.u > 570.0);
        assert!(left().undistort(Pixel::new(f64::NAN, 0.0)).is_err());
    }
}
