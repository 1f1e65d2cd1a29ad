//! A bird's-eye-view raster over the ground and the seed's "pixels per metre" view of it.
//!
//! The raster is `width × height` pixels covering `x ∈ [x_min, x_max]` (forward, rows: row 0 is
//! `x_max`, far away, at the top) and `y ∈ [y_min, y_max]` (left, columns: column 0 is `y_max`, the
//! left edge). So `k_x = (x_max − x_min) / height` and `k_y = (y_max − y_min) / width` metres per BEV
//! pixel, and the BEV pixel `(c, r)` (continuous, corner origin) is the ground point
//! `(x_max − k_x·r, y_max − k_y·c)`.

use nalgebra::Matrix3;
use thiserror::Error;

use crate::homography::{GroundPoint, Homography, HomographyError};

/// A BEV raster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BevRaster {
    /// Columns.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Nearest forward distance (bottom row), metres.
    pub x_min: f64,
    /// Farthest forward distance (top row), metres.
    pub x_max: f64,
    /// Rightmost lateral position (right column), metres (negative = right).
    pub y_min: f64,
    /// Leftmost lateral position (left column), metres.
    pub y_max: f64,
}

/// Why a raster is unusable.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum BevError {
    /// Bad size or range.
    #[error("invalid BEV raster: {0}")]
    Invalid(String),
    /// The combined matrix is unusable.
    #[error("BEV mapping: {0}")]
    Homography(#[from] HomographyError),
}

impl BevRaster {
    /// Builds and checks a raster.
    pub fn new(
        width: u32,
        height: u32,
        (x_min, x_max): (f64, f64),
        (y_min, y_max): (f64, f64),
    ) -> Result<Self, BevError> {
        if width == 0 || height == 0 {
            return Err(BevError::Invalid(format!("size {width}×{height} is empty")));
        }
        for (name, lo, hi) in [("x", x_min, x_max), ("y", y_min, y_max)] {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(BevError::Invalid(format!(
                    "{name} range {lo}..{hi} must be finite and increasing"
                )));
            }
        }
        Ok(Self {
            width,
            height,
            x_min,
            x_max,
            y_min,
            y_max,
        })
    }

    /// Metres per BEV pixel along x (forward, per row).
    pub fn k_x(&self) -> f64 {
        (self.x_max - self.x_min) / f64::from(self.height)
    }

    /// Metres per BEV pixel along y (lateral, per column).
    pub fn k_y(&self) -> f64 {
        (self.y_max - self.y_min) / f64::from(self.width)
    }

    /// BEV pixel `(c, r)` → ground, as a matrix on homogeneous coordinates.
    pub fn bev_to_ground(&self) -> Matrix3<f64> {
        Matrix3::new(
            0.0,
            -self.k_x(),
            self.x_max,
            -self.k_y(),
            0.0,
            self.y_max,
            0.0,
            0.0,
            1.0,
        )
    }

    /// Ground point of BEV pixel `(c, r)`.
    pub fn ground_of(&self, c: f64, r: f64) -> GroundPoint {
        GroundPoint::new(self.x_max - self.k_x() * r, self.y_max - self.k_y() * c)
    }

    /// BEV pixel `(c, r)` of a ground point.
    pub fn pixel_of(&self, g: GroundPoint) -> (f64, f64) {
        (
            (self.y_max - g.y) / self.k_y(),
            (self.x_max - g.x) / self.k_x(),
        )
    }

    /// The camera image → BEV image matrix (what `cv::warpPerspective` would take):
    /// `M = A⁻¹ · H` with `A` = [`Self::bev_to_ground`].
    pub fn image_to_bev(&self, h: &Homography) -> Result<Matrix3<f64>, BevError> {
        let a_inv = self
            .bev_to_ground()
            .try_inverse()
            .ok_or_else(|| BevError::Invalid("singular raster".into()))?;
        let m = a_inv * h.matrix();
        Ok(m / m[(2, 2)].abs().max(f64::MIN_POSITIVE))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn raster_scales_and_round_trips() {
        let r = BevRaster::new(400, 800, (0.0, 40.0), (-10.0, 10.0)).unwrap();
        assert_eq!(r.k_x(), 0.05);
        assert_eq!(r.k_y(), 0.05);
        let g = r.ground_of(200.0, 800.0);
        assert_eq!((g.x, g.y), (0.0, 0.0));
        let (c, row) = r.pixel_of(GroundPoint::new(20.0, 5.0));
        assert!((c - 100.0).abs() < 1e-9 && (row - 400.0).abs() < 1e-9);
        let a = r.bev_to_ground() * nalgebra::Vector3::new(100.0, 400.0, 1.0);
        assert!((a.x - 20.0).abs() < 1e-9 && (a.y - 5.0).abs() < 1e-9);
        assert!(BevRaster::new(0, 10, (0.0, 1.0), (0.0, 1.0)).is_err());
        assert!(BevRaster::new(10, 10, (5.0, 1.0), (0.0, 1.0)).is_err());
        assert!(BevRaster::new(10, 10, (0.0, 1.0), (0.0, f64::NAN)).is_err());
    }
}
