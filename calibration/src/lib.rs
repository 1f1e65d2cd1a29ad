//! Camera calibration: image→ground homography and the calibration file.
