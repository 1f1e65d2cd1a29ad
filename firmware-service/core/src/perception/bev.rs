//! Bird's-eye view: each detection's ground contact point (bottom centre of its box) mapped to
//! the vehicle frame (x forward, y left, metres, origin at the front-bumper centre), with the
//! measurement covariance the tracker needs.

use adas_calibration::Homography;
use adas_plugins::manifest::RoadUser;
use adas_types::ImageDetection;

/// A road user on the ground plane.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BevObject {
    /// Longitudinal distance ahead of the bumper, m.
    pub x_m: f64,
    /// Lateral offset, m, positive to the left.
    pub y_m: f64,
    pub class: RoadUser,
    /// Index of the detection it came from.
    pub detection: usize,
    /// Ground covariance `J Jᵀ` of the point for 1 px (1σ) of isotropic pixel noise at the box's
    /// bottom centre, m² per px² (`J` = the homography's Jacobian there). It grows with the
    /// square of the distance; the tracker scales it by its `pixel_sigma_px`².
    pub cov_1px_m2: [[f64; 2]; 2],
}

/// Result of projecting one frame's detections.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BevProjection {
    pub objects: Vec<BevObject>,
    /// Detections whose ground point lies at or above the horizon (no ground intersection):
    /// usually a false positive in the sky or a calibration that does not fit the camera.
    pub above_horizon: usize,
    /// Detections cut off by the bottom, left or right image edge: their bottom centre is not
    /// their ground contact point.
    pub truncated: usize,
}

/// Projects every road-user detection (classes other than `Ignored`) to the ground.
pub fn project_detections(h: &Homography, detections: &[ImageDetection]) -> BevProjection {
    project(h, detections, None)
}

/// As [`project_detections`], and also rejects boxes cut by the bottom, left or right edge of an
/// image `width × height`: the bottom centre of a box cut at the bottom is not the ground
/// contact, and that of a box cut at the side is pulled towards the image centre (a car beside
/// the ego would appear in its lane, and its lateral position would jump as it leaves the image).
/// A box counts as cut within half a pixel of the bottom and within [`SIDE_MARGIN`] of the width
/// of a side.
pub fn project_detections_in_image(
    h: &Homography,
    detections: &[ImageDetection],
    (width, height): (u32, u32),
) -> BevProjection {
    project(h, detections, Some((f64::from(width), f64::from(height))))
}

/// Share of the image width within which a box counts as cut by a side edge. A detector's
/// regressed box of an object cut by the edge stops short of it: on the Udacity freeway drive the
/// COCO SSD's boxes of cars leaving the frame start 2–15 px (up to 1.6 % of 960 px) inside it.
/// An object that close to the side of the image is beside the vehicle, never in its path.
pub const SIDE_MARGIN: f64 = 0.02;

fn project(
    h: &Homography,
    detections: &[ImageDetection],
    image: Option<(f64, f64)>,
) -> BevProjection {
    let mut out = BevProjection::default();
    for (i, d) in detections.iter().enumerate() {
        if d.class == RoadUser::Ignored || !d.bbox.is_finite() {
            continue;
        }
        if let Some((w, hgt)) = image {
            let b = &d.bbox;
            let side = (SIDE_MARGIN * w).max(0.5);
            if f64::from(b.y2) >= hgt - 0.5
                || f64::from(b.x1) <= side
                || f64::from(b.x2) >= w - side
            {
                out.truncated += 1;
                continue;
            }
        }
        let (u, v) = d.bbox.bottom_centre();
        let (u, v) = (f64::from(u), f64::from(v));
        match h.ground_sensitivity(u, v) {
            Ok(s) => out.objects.push(BevObject {
                x_m: s.ground.x,
                y_m: s.ground.y,
                class: d.class,
                detection: i,
                cov_1px_m2: s.ground_covariance(1.0),
            }),
            Err(_) => out.above_horizon += 1,
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use adas_calibration::{Intrinsics, Mounting, PinholeCamera};
    use adas_plugins::BBox;

    fn camera_homography() -> Homography {
        let cam = PinholeCamera::new(
            Intrinsics {
                fx: 1000.0,
                fy: 1000.0,
                cx: 640.0,
                cy: 360.0,
            },
            Mounting {
                x: -1.5,
                y: 0.0,
                height: 1.3,
                pitch: 0.0,
                yaw: 0.0,
                roll: 0.0,
            },
        )
        .unwrap();
        cam.ground_homography().unwrap()
    }

    fn det(u: f32, v: f32) -> ImageDetection {
        ImageDetection {
            bbox: BBox::new(u - 10.0, v - 40.0, u + 10.0, v),
            score: 0.9,
            label: "car".into(),
            class: RoadUser::Car,
        }
    }

    #[test]
    fn covariance_grows_with_distance_and_truncated_boxes_are_rejected() {
        let h = camera_homography();
        // v = 360 + 1000·1.3/X_cam: 20 m ahead of the camera → row 425, 40 m → 392.5.
        let p = project_detections_in_image(
            &h,
            &[
                det(640.0, 425.0),
                det(640.0, 392.5),
                det(640.0, 720.0),
                det(5.0, 425.0),
                // x1 = 20 px, inside the side margin (25.6 px): a box that stops short of the edge.
                det(30.0, 425.0),
                det(1260.0, 425.0),
            ],
            (1280, 720),
        );
        assert_eq!((p.objects.len(), p.truncated), (2, 4));
        let (near, far) = (p.objects[0], p.objects[1]);
        assert!((near.x_m - 18.5).abs() < 1e-6 && (far.x_m - 38.5).abs() < 1e-6);
        // σx per px = X²/(f·h): 0.308 m at 20 m, 1.23 m at 40 m.
        assert!((near.cov_1px_m2[0][0].sqrt() - 400.0 / 1300.0).abs() < 1e-3);
        assert!((far.cov_1px_m2[0][0].sqrt() - 1600.0 / 1300.0).abs() < 1e-3);
        assert_eq!(
            project_detections(&h, &[det(640.0, 720.0)]).objects.len(),
            1
        );
    }
}
