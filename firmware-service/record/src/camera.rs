//! Where the camera sits in the vehicle frame, for Foxglove's 3D panel (`/tf`, a
//! `foxglove.FrameTransform` from `vehicle` to `camera`; pure).
//!
//! A calibration file holds the ground homography `H` (pixel → ground metres) and, when it was
//! made with a known camera (`adas-calibrate lanes`, `intrinsics`), the intrinsics `K`. Then
//! `K⁻¹ H⁻¹ ∝ [r₁ r₂ t]`, the first two columns of the rotation from the vehicle frame to the
//! camera's and the vehicle origin in camera coordinates, gives the camera's position and
//! orientation. Without intrinsics the pose is not determined and no transform is written. The
//! `camera` frame is the optical one Foxglove expects of images: x right, y down, z forward.

use crate::foxglove::{FrameTransform, Quaternion, Timestamp, Vector3};
use crate::scene::VEHICLE_FRAME;
use nalgebra::{Matrix3, Rotation3, UnitQuaternion};
use serde::Deserialize;

/// The part of a calibration file (`adas-calibration`'s format) the pose needs.
#[derive(Deserialize)]
struct CalibrationText {
    homography: [[f64; 3]; 3],
    intrinsics: Option<Intrinsics>,
}

#[derive(Deserialize)]
struct Intrinsics {
    fx: f64,
    fy: f64,
    cx: f64,
    cy: f64,
}

/// The camera's pose in the vehicle frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraPose {
    /// The optical centre, m (x forward, y left, z up from the front-bumper centre on the
    /// ground).
    pub position: [f64; 3],
    /// Camera axes in vehicle coordinates.
    pub rotation: UnitQuaternion<f64>,
}

/// The pose from a calibration file's text; `None` without intrinsics, for a homography that is
/// singular, or one that puts the vehicle origin behind the camera.
pub fn pose(calibration_toml: &str) -> Option<CameraPose> {
    let c: CalibrationText = toml::from_str(calibration_toml).ok()?;
    let i = c.intrinsics?;
    let h = Matrix3::from_fn(|r, col| c.homography[r][col]);
    let k = Matrix3::new(i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0);
    let m = k.try_inverse()? * h.try_inverse()?;
    let (m1, m2, m3) = (m.column(0), m.column(1), m.column(2));
    let norm = 0.5 * (m1.norm() + m2.norm());
    if !(norm.is_finite() && norm > 0.0) {
        return None;
    }
    // The scale's sign puts the vehicle origin in front of the camera (t_z > 0).
    let lambda = m3[2].signum() / norm;
    let r1 = m1 * lambda;
    let r2 = m2 * lambda;
    let t = m3 * lambda;
    let r3 = r1.cross(&r2);
    // Vehicle → camera, made orthonormal (a fitted homography is not exactly a rotation).
    let r = Rotation3::from_matrix(&Matrix3::from_columns(&[r1, r2, r3]));
    let position = -(r.inverse() * t);
    if !position.iter().all(|v| v.is_finite()) {
        return None;
    }
    Some(CameraPose {
        position: [position[0], position[1], position[2]],
        rotation: UnitQuaternion::from_rotation_matrix(&r.inverse()),
    })
}

/// The `vehicle` → `camera` transform at `t_ns`.
pub fn transform(t_ns: u64, pose: &CameraPose, camera_frame: &str) -> FrameTransform {
    let q = pose.rotation.quaternion();
    FrameTransform {
        timestamp: Some(Timestamp::from_ns(t_ns)),
        parent_frame_id: VEHICLE_FRAME.into(),
        child_frame_id: camera_frame.into(),
        translation: Some(Vector3 {
            x: pose.position[0],
            y: pose.position[1],
            z: pose.position[2],
        }),
        rotation: Some(Quaternion {
            x: q.i,
            y: q.j,
            z: q.k,
            w: q.w,
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nalgebra::Vector3 as V3;

    const UDACITY: &str = include_str!("../../../samples/udacity/calibration.toml");

    #[test]
    fn the_udacity_camera_sits_where_the_lane_fit_put_it() {
        // `adas-calibrate lanes` fitted: camera height 1.225 m, x -1.904 m, y 0.000 m, pitch
        // -1.875° (its pitch is positive down: this one looks slightly up), yaw 0.112°, roll
        // 0.212° (the file's notes).
        let p = pose(UDACITY).unwrap();
        let [x, y, z] = p.position;
        assert!((x + 1.904).abs() < 0.02, "x {x}");
        assert!(y.abs() < 0.02, "y {y}");
        assert!((z - 1.225).abs() < 0.02, "z {z}");
        // The optical axis (camera z) looks forward; image x points right, image y down.
        let forward = p.rotation * V3::z();
        assert!(forward.x > 0.99, "{forward}");
        let pitch_down = (-forward.z).asin().to_degrees();
        assert!((pitch_down + 1.875).abs() < 0.05, "pitch {pitch_down}");
        let right = p.rotation * V3::x();
        assert!(right.y < -0.99, "image x is the vehicle's right: {right}");
        let down = p.rotation * V3::y();
        assert!(down.z < -0.99, "image y is down: {down}");
    }

    #[test]
    fn without_intrinsics_the_pose_is_unknown() {
        let vtest = include_str!("../../../samples/vtest_calibration.toml");
        assert_eq!(pose(vtest), None);
        assert_eq!(pose("not a calibration"), None);
        let singular = UDACITY.replace(
            "homography = [[",
            "homography = [[0, 0, 0], [0, 0, 0], [0, 0, 0]] #",
        );
        assert_eq!(pose(&singular), None);
    }

    #[test]
    fn the_transform_names_the_frames_and_carries_the_pose() {
        let p = pose(UDACITY).unwrap();
        let t = transform(2_000_000_001, &p, "camera");
        assert_eq!(
            (t.parent_frame_id.as_str(), t.child_frame_id.as_str()),
            ("vehicle", "camera")
        );
        assert_eq!(t.translation.unwrap().z, p.position[2]);
        let q = t.rotation.unwrap();
        assert!(((q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w) - 1.0).abs() < 1e-12);
        assert_eq!(t.timestamp.map(|s| (s.seconds, s.nanos)), Some((2, 1)));
    }
}
