//! A synthetic pinhole camera (no distortion) mounted on the vehicle: forward projection of 3-D
//! points and the analytic image→ground homography.
//!
//! # Frames
//! - Vehicle frame `V`: `x` forward, `y` left, `z` up, metres, origin on the ground under the
//!   centre of the front bumper.
//! - Camera frame `C` (OpenCV convention): `x_c` right, `y_c` down, `z_c` along the optical axis.
//!
//! # Orientation
//! With all angles zero the camera looks straight forward with a level horizon, i.e. its axes in
//! the vehicle frame are `x_c = −y`, `y_c = −z`, `z_c = x`; call that rotation `R₀`. The mounting
//! angles are then applied about the *vehicle* axes in the order roll, pitch, yaw:
//!
//! `R_vc = Rz(yaw) · Ry(pitch) · Rx(roll) · R₀`
//!
//! - `pitch` > 0 tilts the optical axis **down** (right-handed rotation about `+y`, which takes
//!   `+x` towards `−z`).
//! - `yaw` > 0 turns the optical axis **left** (right-handed about `+z`).
//! - `roll` is a right-handed rotation about the optical axis (applied while it is still along
//!   `+x`): a roll of `φ` makes a camera-frame direction `(a, b)` (normalised image coordinates)
//!   look where the unrolled camera's `(a cos φ − b sin φ, a sin φ + b cos φ)` looks.
//!
//! # Homography derivation
//! The camera centre is `C = (x_cam, y_cam, h)`. A vehicle point `P` has camera coordinates
//! `P_c = R (P − C)` with `R = R_vcᵀ`; write `t = −R C`, so `P_c = R P + t`, and its pixel is
//! `s (u, v, 1)ᵀ = K P_c` with depth `s = z_c` and `K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`.
//! For a ground point `P = (X, Y, 0)` the `z` column of `R` drops out:
//!
//! `s (u, v, 1)ᵀ = K [r₁ r₂ t] (X, Y, 1)ᵀ = G (X, Y, 1)ᵀ`
//!
//! where `r₁, r₂` are the first two columns of `R`. `G` is the ground→image homography and
//! `H = G⁻¹` the image→ground one: `H (u, v, 1)ᵀ = (X, Y, 1)ᵀ / s`, so the homogeneous coordinate
//! `W = 1/s` is positive exactly for ground points in front of the camera — the sign convention
//! of [`Homography`]. `G` is singular iff the camera centre is on the ground (`h = 0`).

use nalgebra::{Matrix3, Rotation3, Vector3};
use thiserror::Error;

use crate::homography::{not_greater, Homography, HomographyError, Pixel};

/// Pinhole intrinsics (pixels, continuous corner-origin coordinates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Intrinsics {
    /// Focal length in pixels, horizontal.
    pub fx: f64,
    /// Focal length in pixels, vertical.
    pub fy: f64,
    /// Principal point column.
    pub cx: f64,
    /// Principal point row.
    pub cy: f64,
}

impl Intrinsics {
    /// Intrinsics from a horizontal field of view (radians) for an image of `width × height`
    /// with square pixels and the principal point at the image centre.
    pub fn from_hfov(width: f64, height: f64, hfov: f64) -> Self {
        let f = 0.5 * width / (0.5 * hfov).tan();
        Self {
            fx: f,
            fy: f,
            cx: 0.5 * width,
            cy: 0.5 * height,
        }
    }

    /// The camera matrix `K`.
    pub fn matrix(&self) -> Matrix3<f64> {
        Matrix3::new(self.fx, 0.0, self.cx, 0.0, self.fy, self.cy, 0.0, 0.0, 1.0)
    }

    /// Pitch and yaw (radians, [`Mounting`] conventions) of a camera with these intrinsics and the
    /// given `roll` whose image of the vehicle's forward direction — the vanishing point of lines
    /// parallel to the vehicle's `x` axis, e.g. the lane markings of a straight road — is `vp`.
    ///
    /// The forward direction in camera coordinates is `R·x̂`; with the rotation order of
    /// [`Mounting`] its normalised image `(a, b)` is that of the unrolled camera,
    /// `(tan yaw / cos pitch, −tan pitch)`, rotated by the roll. Undoing the roll gives
    /// `pitch = −atan b₀` and `yaw = atan(a₀ cos pitch)`.
    pub fn pitch_yaw_from_vanishing_point(&self, vp: Pixel, roll: f64) -> (f64, f64) {
        let (a, b) = ((vp.u - self.cx) / self.fx, (vp.v - self.cy) / self.fy);
        let (s, c) = roll.sin_cos();
        let (a0, b0) = (c * a - s * b, s * a + c * b);
        let pitch = (-b0).atan();
        (pitch, (a0 * pitch.cos()).atan())
    }
}

/// Where and how the camera is mounted, vehicle frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mounting {
    /// Camera centre, forward of the front bumper (metres; negative = behind the bumper, e.g.
    /// −1.5 for a windscreen camera).
    pub x: f64,
    /// Camera centre, left of the centre line (metres).
    pub y: f64,
    /// Camera centre height above the ground (metres, > 0).
    pub height: f64,
    /// Downward tilt of the optical axis (radians, down positive).
    pub pitch: f64,
    /// Leftward pan of the optical axis (radians, left positive).
    pub yaw: f64,
    /// Rotation about the optical axis (radians, right-handed about the forward axis).
    pub roll: f64,
}

/// Why a camera cannot be built or cannot image a point.
#[derive(Debug, Clone, Copy, PartialEq, Error)]
pub enum CameraError {
    /// A parameter is NaN/infinite or out of range.
    #[error("invalid camera parameter `{name}` = {value}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is required.
        reason: &'static str,
    },
    /// The 3-D point is behind (or in the plane of) the camera centre.
    #[error("point ({x:.2}, {y:.2}, {z:.2}) m is behind the camera")]
    BehindCamera {
        /// Vehicle-frame x.
        x: f64,
        /// Vehicle-frame y.
        y: f64,
        /// Vehicle-frame z.
        z: f64,
    },
    /// The ground homography is degenerate.
    #[error("camera ground homography is degenerate: {0}")]
    Homography(#[from] HomographyError),
}

/// An axis-aligned image box, continuous pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageBox {
    /// Left edge.
    pub u_min: f64,
    /// Top edge.
    pub v_min: f64,
    /// Right edge.
    pub u_max: f64,
    /// Bottom edge.
    pub v_max: f64,
}

impl ImageBox {
    /// Bottom centre of the box: the ground contact point used for BEV projection.
    pub fn bottom_centre(&self) -> Pixel {
        Pixel::new(0.5 * (self.u_min + self.u_max), self.v_max)
    }
}

/// A distortion-free pinhole camera mounted on the vehicle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PinholeCamera {
    intrinsics: Intrinsics,
    mounting: Mounting,
    /// World (vehicle) → camera rotation.
    r: Matrix3<f64>,
    /// World → camera translation, `t = −R C`.
    t: Vector3<f64>,
}

fn check(
    name: &'static str,
    value: f64,
    ok: bool,
    reason: &'static str,
) -> Result<(), CameraError> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err(CameraError::InvalidParameter {
            name,
            value,
            reason,
        })
    }
}

impl PinholeCamera {
    /// Builds a camera. Focal lengths and the mounting height must be positive; all values finite.
    pub fn new(intrinsics: Intrinsics, mounting: Mounting) -> Result<Self, CameraError> {
        let i = &intrinsics;
        check("fx", i.fx, i.fx > 0.0, "must be > 0")?;
        check("fy", i.fy, i.fy > 0.0, "must be > 0")?;
        check("cx", i.cx, true, "must be finite")?;
        check("cy", i.cy, true, "must be finite")?;
        let m = &mounting;
        check("x", m.x, true, "must be finite")?;
        check("y", m.y, true, "must be finite")?;
        check("height", m.height, m.height > 0.0, "must be > 0")?;
        check("pitch", m.pitch, true, "must be finite")?;
        check("yaw", m.yaw, true, "must be finite")?;
        check("roll", m.roll, true, "must be finite")?;

        // R₀: columns are the camera axes expressed in the vehicle frame.
        let r0 = Matrix3::new(
            0.0, 0.0, 1.0, //
            -1.0, 0.0, 0.0, //
            0.0, -1.0, 0.0,
        );
        let rz = Rotation3::from_axis_angle(&Vector3::z_axis(), m.yaw);
        let ry = Rotation3::from_axis_angle(&Vector3::y_axis(), m.pitch);
        let rx = Rotation3::from_axis_angle(&Vector3::x_axis(), m.roll);
        let r_vc = rz.matrix() * ry.matrix() * rx.matrix() * r0;
        let r = r_vc.transpose();
        let c = Vector3::new(m.x, m.y, m.height);
        let t = -(r * c);
        Ok(Self {
            intrinsics,
            mounting,
            r,
            t,
        })
    }

    /// The intrinsics.
    pub fn intrinsics(&self) -> &Intrinsics {
        &self.intrinsics
    }

    /// The mounting.
    pub fn mounting(&self) -> &Mounting {
        &self.mounting
    }

    /// World (vehicle) → camera rotation `R`.
    pub fn rotation(&self) -> &Matrix3<f64> {
        &self.r
    }

    /// A vehicle-frame point in camera coordinates (`z` = depth along the optical axis).
    pub fn to_camera_frame(&self, p: [f64; 3]) -> Vector3<f64> {
        self.r * Vector3::new(p[0], p[1], p[2]) + self.t
    }

    /// Projects a vehicle-frame 3-D point to pixels. Fails for points behind the camera.
    pub fn project_point(&self, p: [f64; 3]) -> Result<Pixel, CameraError> {
        let pc = self.to_camera_frame(p);
        // Points within a micrometre of the camera plane are treated as behind it.
        if not_greater(pc.z, 1e-6) {
            return Err(CameraError::BehindCamera {
                x: p[0],
                y: p[1],
                z: p[2],
            });
        }
        let k = &self.intrinsics;
        Ok(Pixel::new(
            k.fx * pc.x / pc.z + k.cx,
            k.fy * pc.y / pc.z + k.cy,
        ))
    }

    /// Bounding box of the images of several 3-D points (e.g. the eight corners of a target's
    /// cuboid). Fails if any point is behind the camera; `None` for an empty slice.
    pub fn project_bounding_box(
        &self,
        points: &[[f64; 3]],
    ) -> Result<Option<ImageBox>, CameraError> {
        let mut bb: Option<ImageBox> = None;
        for p in points {
            let px = self.project_point(*p)?;
            bb = Some(match bb {
                None => ImageBox {
                    u_min: px.u,
                    v_min: px.v,
                    u_max: px.u,
                    v_max: px.v,
                },
                Some(b) => ImageBox {
                    u_min: b.u_min.min(px.u),
                    v_min: b.v_min.min(px.v),
                    u_max: b.u_max.max(px.u),
                    v_max: b.v_max.max(px.v),
                },
            });
        }
        Ok(bb)
    }

    /// The eight corners of an upright cuboid standing on the ground: centre of its footprint
    /// `(x, y)`, `length` along `heading` (radians from `+x`, left positive), `width`, `height`.
    pub fn cuboid_corners(
        x: f64,
        y: f64,
        heading: f64,
        length: f64,
        width: f64,
        height: f64,
    ) -> [[f64; 3]; 8] {
        let (s, c) = heading.sin_cos();
        let mut out = [[0.0; 3]; 8];
        let mut i = 0;
        for &z in &[0.0, height] {
            for &(dl, dw) in &[(0.5, 0.5), (0.5, -0.5), (-0.5, -0.5), (-0.5, 0.5)] {
                let (l, w) = (dl * length, dw * width);
                out[i] = [x + l * c - w * s, y + l * s + w * c, z];
                i += 1;
            }
        }
        out
    }

    /// The image of the vehicle's forward direction (the vanishing point of lines parallel to
    /// `x`, e.g. the lanes of a straight road); `None` if that direction is parallel to the image
    /// plane.
    pub fn vanishing_point(&self) -> Option<Pixel> {
        let d = self.intrinsics.matrix() * self.r.column(0);
        (d.z.abs() > 1e-12).then(|| Pixel::new(d.x / d.z, d.y / d.z))
    }

    /// Ground → image homography `G = K [r₁ r₂ t]` (see the module docs).
    pub fn ground_to_image_matrix(&self) -> Matrix3<f64> {
        let mut m = Matrix3::zeros();
        m.set_column(0, &self.r.column(0));
        m.set_column(1, &self.r.column(1));
        m.set_column(2, &self.t);
        self.intrinsics.matrix() * m
    }

    /// The analytic image → ground homography `H = G⁻¹` (sign: `w > 0` below the horizon).
    pub fn ground_homography(&self) -> Result<Homography, CameraError> {
        let g = self.ground_to_image_matrix();
        let h = g
            .try_inverse()
            .ok_or(HomographyError::Singular { rel_det: 0.0 })?;
        Ok(Homography::new(h)?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::homography::ProjectionError;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    const K: Intrinsics = Intrinsics {
        fx: 800.0,
        fy: 780.0,
        cx: 384.0,
        cy: 288.0,
    };

    fn pitched(x: f64, h: f64, pitch: f64) -> PinholeCamera {
        PinholeCamera::new(
            K,
            Mounting {
                x,
                y: 0.0,
                height: h,
                pitch,
                yaw: 0.0,
                roll: 0.0,
            },
        )
        .unwrap()
    }

    #[test]
    fn pitch_only_closed_form() {
        let (cam_x, h, th) = (-1.5, 1.3, 6f64.to_radians());
        let cam = pitched(cam_x, h, th);
        let hom = cam.ground_homography().unwrap();
        // Principal point: the optical axis meets the ground h / tan(pitch) ahead of the camera.
        let g = hom.project(K.cx, K.cy).unwrap();
        assert_relative_eq!(g.x, cam_x + h / th.tan(), epsilon = 1e-9);
        assert_relative_eq!(g.y, 0.0, epsilon = 1e-12);
        // Horizon at v = cy − fy·tan(pitch), horizontal (no roll).
        let hv = K.cy - K.fy * th.tan();
        assert_relative_eq!(hom.horizon_v(0.0).unwrap(), hv, epsilon = 1e-9);
        assert_relative_eq!(hom.horizon_v(700.0).unwrap(), hv, epsilon = 1e-9);
        for v in [hv, hv - 1.0, hv - 200.0, 0.0] {
            assert!(
                matches!(
                    hom.project(100.0, v),
                    Err(ProjectionError::AboveHorizon { .. })
                ),
                "v = {v}"
            );
        }
        assert!(hom.project(100.0, hv + 1.0).is_ok());
        // Any pixel: normalised (a, b); ray (c − s b, −a, −s − c b) from the camera hits the ground
        // after t = h / (s + c b).
        for (u, v) in [
            (10.0, 570.0),
            (700.0, 300.0),
            (384.0, 500.0),
            (50.0, hv + 5.0),
        ] {
            let (a, b) = ((u - K.cx) / K.fx, (v - K.cy) / K.fy);
            let (s, c) = th.sin_cos();
            let t = h / (s + c * b);
            let g = hom.project(u, v).unwrap();
            assert_relative_eq!(g.x, cam_x + t * (c - s * b), max_relative = 1e-9);
            assert_relative_eq!(g.y, -t * a, max_relative = 1e-9, epsilon = 1e-9);
            // The forward projection agrees.
            let p = cam.project_point([g.x, g.y, 0.0]).unwrap();
            assert_relative_eq!(p.u, u, epsilon = 1e-6);
            assert_relative_eq!(p.v, v, epsilon = 1e-6);
        }
        // A ground point d ahead is atan(h/d) below horizontal, the axis is `pitch` below it:
        // v = cy + fy·tan(atan(h/d) − pitch).
        let d = 20.0;
        let p = cam.project_point([cam_x + d, 0.0, 0.0]).unwrap();
        assert_relative_eq!(
            p.v,
            K.cy + K.fy * ((h / d).atan() - th).tan(),
            epsilon = 1e-9
        );
        // Behind the camera: no image.
        assert!(matches!(
            hom.to_image(cam_x - 5.0, 0.0),
            Err(ProjectionError::BehindCamera { .. })
        ));
        assert!(matches!(
            cam.project_point([cam_x - 1.0, 0.0, 1.0]),
            Err(CameraError::BehindCamera { .. })
        ));
    }

    #[test]
    fn sensitivity_grows_with_distance_as_closed_form() {
        // "How far does ±1 px in the box bottom move the ground point at 5/10/20/40 m?"
        // Pitch only: x − x_cam = h / tan(β), β = pitch + atan((v − cy)/fy), so
        // |∂x/∂v| = h / sin²(β) · cos²(α) / fy with α = atan((v − cy)/fy).
        let (cam_x, h, th) = (-1.5, 1.3, 3f64.to_radians());
        let cam = pitched(cam_x, h, th);
        let hom = cam.ground_homography().unwrap();
        let mut last = 0.0;
        for d in [5.0, 10.0, 20.0, 40.0] {
            let s = hom.ground_sensitivity_at_ground(d, 0.0).unwrap();
            let px = hom.to_image(d, 0.0).unwrap();
            let alpha = ((px.v - K.cy) / K.fy).atan();
            let beta = th + alpha;
            let expected = h / beta.sin().powi(2) * alpha.cos().powi(2) / K.fy;
            assert_relative_eq!(s.dx_dv.abs(), expected, max_relative = 1e-9);
            assert_relative_eq!(s.metres_per_px_v(), expected, max_relative = 1e-9);
            // Lateral: y = −(u − cx)/fx · range along the axis ⇒ |∂y/∂u| = (x − x_cam)·… > 0.
            assert!(s.dy_du < 0.0);
            assert!(s.metres_per_px_v() > last);
            last = s.metres_per_px_v();
        }
        // Far range ≈ d² / (h·fy): 41.5² / (1.3·780) ≈ 1.7 m per pixel at 40 m.
        assert!(last > 1.5 && last < 2.0, "{last}");
    }

    #[test]
    fn yaw_moves_principal_ray() {
        let (h, th, psi) = (1.4, 8f64.to_radians(), 10f64.to_radians());
        let cam = PinholeCamera::new(
            K,
            Mounting {
                x: -2.0,
                y: 0.3,
                height: h,
                pitch: th,
                yaw: psi,
                roll: 0.0,
            },
        )
        .unwrap();
        let g = cam
            .ground_homography()
            .unwrap()
            .project(K.cx, K.cy)
            .unwrap();
        let d = h / th.tan();
        assert_relative_eq!(g.x, -2.0 + d * psi.cos(), epsilon = 1e-9);
        assert_relative_eq!(g.y, 0.3 + d * psi.sin(), epsilon = 1e-9);
        // Positive yaw looks left: a point straight ahead appears right of centre.
        let p = cam.project_point([30.0, 0.3, 0.0]).unwrap();
        assert!(p.u > K.cx);
    }

    #[test]
    fn roll_rotates_image_about_principal_point() {
        let k = Intrinsics {
            fx: 800.0,
            fy: 800.0,
            cx: 384.0,
            cy: 288.0,
        };
        let (th, phi) = (7f64.to_radians(), 5f64.to_radians());
        let mount = Mounting {
            x: -1.5,
            y: 0.0,
            height: 1.3,
            pitch: th,
            yaw: 0.0,
            roll: phi,
        };
        let rolled = PinholeCamera::new(k, mount)
            .unwrap()
            .ground_homography()
            .unwrap();
        let level = PinholeCamera::new(k, Mounting { roll: 0.0, ..mount })
            .unwrap()
            .ground_homography()
            .unwrap();
        // Principal point is unchanged by roll.
        let a = rolled.project(k.cx, k.cy).unwrap();
        assert_relative_eq!(a.x, -1.5 + 1.3 / th.tan(), epsilon = 1e-9);
        for (du, dv) in [(100.0, 150.0), (-200.0, 80.0), (0.0, 250.0)] {
            let g = rolled.project(k.cx + du, k.cy + dv).unwrap();
            let (s, c) = phi.sin_cos();
            let e = level
                .project(k.cx + du * c - dv * s, k.cy + du * s + dv * c)
                .unwrap();
            assert_relative_eq!(g.x, e.x, epsilon = 1e-9);
            assert_relative_eq!(g.y, e.y, epsilon = 1e-9);
        }
        // The horizon is tilted by the roll angle: slope dv/du = −tan φ.
        let hz = rolled.horizon();
        assert_relative_eq!(-hz.a / hz.b, -phi.tan(), epsilon = 1e-12);
    }

    #[test]
    fn vanishing_point_gives_pitch_and_yaw_back() {
        for (pitch, yaw, roll) in [(0.05, 0.0, 0.0), (0.1, 0.05, 0.02), (-0.02, -0.1, -0.04)] {
            let cam = PinholeCamera::new(
                K,
                Mounting {
                    x: -1.5,
                    y: 0.2,
                    height: 1.3,
                    pitch,
                    yaw,
                    roll,
                },
            )
            .unwrap();
            let vp = cam.vanishing_point().unwrap();
            // A far point straight ahead lands on it.
            let far = cam.project_point([1e7, 0.2, 0.0]).unwrap();
            assert!(far.distance_to(&vp) < 1e-3, "{far:?} {vp:?}");
            let (p, y) = K.pitch_yaw_from_vanishing_point(vp, roll);
            assert_relative_eq!(p, pitch, epsilon = 1e-12);
            assert_relative_eq!(y, yaw, epsilon = 1e-12);
        }
    }

    #[test]
    fn bounding_box_of_cuboid() {
        let cam = pitched(-1.5, 1.3, 5f64.to_radians());
        let corners = PinholeCamera::cuboid_corners(15.0, 0.0, 0.0, 4.5, 1.8, 1.5);
        let bb = cam.project_bounding_box(&corners).unwrap().unwrap();
        // The bottom of the box is the nearest bottom edge (rear face of the car at x = 12.75).
        let g = cam
            .ground_homography()
            .unwrap()
            .project_pixel(bb.bottom_centre())
            .unwrap();
        assert_relative_eq!(g.x, 12.75, epsilon = 1e-9);
        assert_relative_eq!(g.y, 0.0, epsilon = 1e-9);
        assert!(bb.v_min < bb.v_max && bb.u_min < bb.u_max);
        assert_eq!(cam.project_bounding_box(&[]).unwrap(), None);
    }

    #[test]
    fn rejects_bad_parameters() {
        let m = Mounting {
            x: 0.0,
            y: 0.0,
            height: 0.0,
            pitch: 0.1,
            yaw: 0.0,
            roll: 0.0,
        };
        assert!(matches!(
            PinholeCamera::new(K, m),
            Err(CameraError::InvalidParameter { name: "height", .. })
        ));
        let bad_k = Intrinsics { fx: f64::NAN, ..K };
        assert!(matches!(
            PinholeCamera::new(bad_k, Mounting { height: 1.0, ..m }),
            Err(CameraError::InvalidParameter { name: "fx", .. })
        ));
    }

    #[test]
    fn round_trip_error_budget() {
        // Ground → image → ground over a grid 2..80 m ahead, ±10 m lateral, for a few mountings.
        let mut worst_m: f64 = 0.0;
        let mut worst_px: f64 = 0.0;
        for (pitch, yaw, roll) in [(0.05, 0.0, 0.0), (0.1, 0.05, 0.02), (0.3, -0.1, -0.03)] {
            let cam = PinholeCamera::new(
                K,
                Mounting {
                    x: -1.5,
                    y: 0.1,
                    height: 1.3,
                    pitch,
                    yaw,
                    roll,
                },
            )
            .unwrap();
            let hom = cam.ground_homography().unwrap();
            for i in 0..40 {
                for j in 0..21 {
                    let (x, y) = (2.0 + 2.0 * f64::from(i), -10.0 + f64::from(j));
                    let Ok(px) = hom.to_image(x, y) else { continue };
                    let g = hom.project(px.u, px.v).unwrap();
                    worst_m = worst_m.max((g.x - x).hypot(g.y - y));
                    let px2 = cam.project_point([x, y, 0.0]).unwrap();
                    worst_px = worst_px.max(px.distance_to(&px2));
                }
            }
        }
        println!("round trip: worst ground error {worst_m:.2e} m, homography vs projection {worst_px:.2e} px");
        assert!(worst_m < 1e-9 && worst_px < 1e-9);
    }

    proptest! {
        #[test]
        fn ground_image_ground_round_trip(
            h in 0.5f64..3.0,
            pitch in -0.05f64..0.6,
            yaw in -0.5f64..0.5,
            roll in -0.2f64..0.2,
            cam_x in -3.0f64..1.0,
            cam_y in -1.0f64..1.0,
            fwd in 2.0f64..80.0,
            lat in -0.5f64..0.5,
        ) {
            let cam = PinholeCamera::new(K, Mounting { x: cam_x, y: cam_y, height: h, pitch, yaw, roll }).unwrap();
            let hom = cam.ground_homography().unwrap();
            // A ground point in front of the camera, within ±~27° of its heading.
            let x = cam_x + fwd * yaw.cos() - lat * fwd * yaw.sin();
            let y = cam_y + fwd * yaw.sin() + lat * fwd * yaw.cos();
            let px = hom.to_image(x, y).unwrap();
            let px2 = cam.project_point([x, y, 0.0]).unwrap();
            prop_assert!(px.distance_to(&px2) < 1e-6);
            let g = hom.project(px.u, px.v).unwrap();
            prop_assert!((g.x - x).abs() < 1e-9 && (g.y - y).abs() < 1e-9, "{:?} vs {} {}", g, x, y);
        }
    }
}
