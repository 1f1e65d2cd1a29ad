//! Camera calibration: image→ground homography and the calibration file.
//!
//! - [`Homography`]: image pixel → ground point (vehicle frame: x forward, y left, metres, origin
//!   at the front-bumper centre on the ground), horizon, Jacobian (pixel noise → ground noise).
//! - [`PinholeCamera`]: a synthetic camera, forward projection and the analytic homography.
//! - [`solve_homography`] / [`solve_homography_ransac`]: estimation from point pairs;
//!   [`refine_homography`] / [`solve_homography_refined`]: Levenberg–Marquardt on the
//!   reprojection error.
//! - [`LensModel`]: OpenCV's distortion model and its inversion (undistorting pixels).
//! - [`PointFile`]: the point files of the bench tool; [`FloorBoard`]: a chessboard on the floor.
//! - [`fit_lanes`]: the camera (and so the homography) from the lane markings of a straight road,
//!   read from a [`LaneFile`]; [`lm`]: the small Levenberg–Marquardt solver it uses.
//! - [`BevRaster`]: a bird's-eye raster and its metres-per-pixel factors `k_x`, `k_y`.
//! - [`report`]: the validation picture and the uncertainty table.
//! - [`CalibrationFile`]: the TOML file the daemon loads.
//! - `intrinsics` (feature `opencv`): chessboard detection and camera calibration via OpenCV.

pub mod bev;
pub mod camera;
pub mod chessboard;
pub mod distortion;
pub mod file;
pub mod homography;
#[cfg(feature = "opencv")]
pub mod intrinsics;
pub mod lanes;
pub mod lensfile;
pub mod lm;
pub mod points;
pub mod refine;
pub mod report;
pub mod solve;

pub use bev::{BevError, BevRaster};
pub use camera::{CameraError, ImageBox, Intrinsics, Mounting, PinholeCamera};
pub use chessboard::{canonical_order, FloorBoard};
pub use distortion::{DistortionError, LensModel};
pub use file::{
    CalibrationError, CalibrationFile, CalibrationPoint, FileIntrinsics, Rescale, FILE_VERSION,
};
pub use homography::{
    GroundPoint, GroundSensitivity, Homography, HomographyError, HorizonLine, Pixel,
    ProjectionError,
};
pub use lanes::{
    fit_lanes, FittedParameter, LaneFile, LaneFileError, LaneFit, LaneFitError, LaneFitOptions,
    LaneLine, LineCheck, MarkingStandard,
};
pub use lensfile::{load_intrinsics, IntrinsicsFile, IntrinsicsView, LensFileError};
pub use points::{NamedPoint, PointFile, PointsError};
pub use refine::{refine_homography, solve_homography_refined, LmOptions, Refinement};
pub use solve::{
    solve_homography, solve_homography_ransac, HomographyFit, PointPair, PointResidual, RansacFit,
    RansacOptions, Side, SolveError,
};
