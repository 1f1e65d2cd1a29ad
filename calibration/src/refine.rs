//! Levenberg–Marquardt refinement of the homography: minimises the reprojection error
//! `Σ ‖pixelᵢ − π(G · groundᵢ)‖²` over the ground→image matrix `G = H⁻¹` (the "gold standard"
//! cost when the ground points are surveyed and the pixels carry the noise).
//!
//! The DLT minimises an algebraic error; with noisy points LM lowers the RMS reprojection error
//! slightly and, more importantly, gives the maximum-likelihood estimate under isotropic pixel
//! noise. Both point sets are Hartley-normalised (a similarity transform on each side, so the
//! minimiser is unchanged) and all nine entries of `G` are parameters; the scale direction has a
//! zero gradient and is held by the damping, and `G` is renormalised after every step.

use nalgebra::{DMatrix, DVector, Matrix3, SMatrix, SVector, Vector3};

use crate::homography::{not_greater, Homography};
use crate::solve::{dlt, normalising_transform, HomographyFit, PointPair, Side, SolveError};

/// Options of [`refine_homography`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LmOptions {
    /// Maximum number of LM iterations.
    pub max_iterations: usize,
    /// Stop when the relative decrease of the cost is below this.
    pub rel_tolerance: f64,
}

impl Default for LmOptions {
    fn default() -> Self {
        Self {
            max_iterations: 200,
            rel_tolerance: 1e-15,
        }
    }
}

/// Result of [`refine_homography`].
#[derive(Debug, Clone, PartialEq)]
pub struct Refinement {
    /// The refined homography and its residuals (input order).
    pub fit: HomographyFit,
    /// RMS reprojection error (px) of the starting homography.
    pub initial_rms_px: f64,
    /// Iterations run (accepted or rejected steps).
    pub iterations: usize,
}

/// Checks that every pixel sees the ground and every ground point is in front of the camera
/// under `h`.
pub(crate) fn check_sides(h: &Homography, pairs: &[PointPair]) -> Result<(), SolveError> {
    for (index, p) in pairs.iter().enumerate() {
        if h.project(p.pixel.u, p.pixel.v).is_err() {
            return Err(SolveError::WrongSide {
                index,
                side: Side::Image,
                what: "at or above the horizon",
            });
        }
        if h.to_image(p.ground.x, p.ground.y).is_err() {
            return Err(SolveError::WrongSide {
                index,
                side: Side::Ground,
                what: "behind the camera",
            });
        }
    }
    Ok(())
}

fn project(g: &Matrix3<f64>, x: &Vector3<f64>) -> Option<(f64, f64, Vector3<f64>)> {
    let p = g * x;
    (p.z > 0.0 && p.z.is_finite()).then(|| (p.x / p.z, p.y / p.z, p))
}

/// Residual vector (measured − predicted), or `None` if a point left the camera's front.
fn residuals(g: &Matrix3<f64>, px: &[(f64, f64)], gr: &[Vector3<f64>]) -> Option<DVector<f64>> {
    let mut r = DVector::zeros(2 * px.len());
    for (i, (q, x)) in px.iter().zip(gr.iter()).enumerate() {
        let (u, v, _) = project(g, x)?;
        r[2 * i] = q.0 - u;
        r[2 * i + 1] = q.1 - v;
    }
    Some(r)
}

/// Refines `initial` by Levenberg–Marquardt on the reprojection error of `pairs`. Fails if fewer
/// than four pairs, a coordinate is not finite, or a point is on the wrong side of the camera
/// (pixel above the horizon / ground point behind the camera) before or after refinement.
pub fn refine_homography(
    initial: &Homography,
    pairs: &[PointPair],
    options: &LmOptions,
) -> Result<Refinement, SolveError> {
    if pairs.len() < 4 {
        return Err(SolveError::TooFewPoints {
            got: pairs.len(),
            need: 4,
        });
    }
    if let Some(index) = pairs.iter().position(|p| {
        ![p.pixel.u, p.pixel.v, p.ground.x, p.ground.y]
            .iter()
            .all(|c| c.is_finite())
    }) {
        return Err(SolveError::NonFinite { index });
    }
    check_sides(initial, pairs)?;
    let initial_rms_px = HomographyFit::evaluate(*initial, pairs).reprojection_rms_px;

    let pxs: Vec<(f64, f64)> = pairs.iter().map(|p| (p.pixel.u, p.pixel.v)).collect();
    let grs: Vec<(f64, f64)> = pairs.iter().map(|p| (p.ground.x, p.ground.y)).collect();
    let tp = normalising_transform(&pxs);
    let tg = normalising_transform(&grs);
    let tp_inv = tp.try_inverse().ok_or(SolveError::Degenerate)?;
    let tg_inv = tg.try_inverse().ok_or(SolveError::Degenerate)?;
    let qn: Vec<(f64, f64)> = pxs
        .iter()
        .map(|&(u, v)| {
            let q = tp * Vector3::new(u, v, 1.0);
            (q.x / q.z, q.y / q.z)
        })
        .collect();
    let xn: Vec<Vector3<f64>> = grs
        .iter()
        .map(|&(x, y)| tg * Vector3::new(x, y, 1.0))
        .collect();

    let mut g = tp * initial.inverse_matrix() * tg_inv;
    g /= g.norm();
    let mut r = residuals(&g, &qn, &xn).ok_or(SolveError::Degenerate)?;
    let mut cost = r.norm_squared();
    let mut lambda = 1e-3;
    let mut iterations = 0;
    while iterations < options.max_iterations && cost > 0.0 {
        iterations += 1;
        // Jacobian of the predicted pixel w.r.t. the 9 entries of G (row-major).
        let n = qn.len();
        let mut jac = DMatrix::<f64>::zeros(2 * n, 9);
        for (i, x) in xn.iter().enumerate() {
            let Some((u, v, p)) = project(&g, x) else {
                return Err(SolveError::Degenerate);
            };
            for k in 0..3 {
                jac[(2 * i, k)] = x[k] / p.z;
                jac[(2 * i, 6 + k)] = -u * x[k] / p.z;
                jac[(2 * i + 1, 3 + k)] = x[k] / p.z;
                jac[(2 * i + 1, 6 + k)] = -v * x[k] / p.z;
            }
        }
        let jt = jac.transpose();
        let jtj: SMatrix<f64, 9, 9> = (&jt * &jac).fixed_view::<9, 9>(0, 0).into_owned();
        let jtr: SVector<f64, 9> = (&jt * &r).fixed_rows::<9>(0).into_owned();
        if jtr.norm() < 1e-16 {
            break;
        }
        let mut improved = false;
        while lambda < 1e12 {
            let mut a = jtj;
            for d in 0..9 {
                a[(d, d)] += lambda * (jtj[(d, d)] + 1e-9);
            }
            let Some(chol) = a.cholesky() else {
                lambda *= 10.0;
                continue;
            };
            let delta = chol.solve(&jtr);
            let mut cand = g;
            for (k, d) in delta.iter().enumerate() {
                cand[(k / 3, k % 3)] += d;
            }
            let norm = cand.norm();
            if not_greater(norm, 0.0) {
                lambda *= 10.0;
                continue;
            }
            cand /= norm;
            match residuals(&cand, &qn, &xn) {
                Some(rc) if rc.norm_squared() < cost => {
                    let new_cost = rc.norm_squared();
                    let rel = (cost - new_cost) / cost;
                    g = cand;
                    r = rc;
                    cost = new_cost;
                    lambda = (lambda * 0.1).max(1e-12);
                    improved = rel > options.rel_tolerance;
                    break;
                }
                _ => lambda *= 10.0,
            }
        }
        if !improved {
            break;
        }
    }

    let g_pix = tp_inv * g * tg;
    let mut h = g_pix.try_inverse().ok_or(SolveError::Degenerate)?;
    let positive = pxs
        .iter()
        .filter(|&&(u, v)| h[(2, 0)] * u + h[(2, 1)] * v + h[(2, 2)] > 0.0)
        .count();
    if 2 * positive < pxs.len() {
        h = -h;
    }
    let norm = h.norm();
    if not_greater(norm, 0.0) {
        return Err(SolveError::Degenerate);
    }
    let hom = Homography::new(h / norm)?;
    check_sides(&hom, pairs)?;
    Ok(Refinement {
        fit: HomographyFit::evaluate(hom, pairs),
        initial_rms_px,
        iterations,
    })
}

/// Normalised DLT followed by Levenberg–Marquardt refinement (all degeneracy checks of
/// [`crate::solve_homography`] apply, plus the wrong-side check of [`refine_homography`]).
pub fn solve_homography_refined(pairs: &[PointPair]) -> Result<Refinement, SolveError> {
    let h0 = dlt(pairs)?;
    refine_homography(&h0, pairs, &LmOptions::default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::camera::{Intrinsics, Mounting, PinholeCamera};
    use crate::solve::solve_homography;

    fn camera() -> PinholeCamera {
        PinholeCamera::new(
            Intrinsics::from_hfov(1280.0, 720.0, 70f64.to_radians()),
            Mounting {
                x: -1.8,
                y: 0.1,
                height: 1.4,
                pitch: 2f64.to_radians(),
                yaw: -1f64.to_radians(),
                roll: 0.3f64.to_radians(),
            },
        )
        .unwrap()
    }

    fn pairs(noise: f64) -> Vec<PointPair> {
        let cam = camera();
        let mut out = Vec::new();
        let mut k = 0.0f64;
        for &x in &[4.0, 8.0, 15.0, 30.0] {
            for &y in &[-4.0, -1.0, 2.0, 5.0] {
                let p = cam.project_point([x, y, 0.0]).unwrap();
                k += 1.0;
                out.push(PointPair::new(
                    p.u + noise * (k * 1.3).sin(),
                    p.v + noise * (k * 0.7).cos(),
                    x,
                    y,
                ));
            }
        }
        out
    }

    #[test]
    fn lm_does_not_increase_the_reprojection_error() {
        for noise in [0.0, 0.5, 2.0] {
            let p = pairs(noise);
            let dlt_fit = solve_homography(&p).unwrap();
            let lm = solve_homography_refined(&p).unwrap();
            assert!(
                lm.fit.reprojection_rms_px <= dlt_fit.reprojection_rms_px + 1e-9,
                "noise {noise}: {} > {}",
                lm.fit.reprojection_rms_px,
                dlt_fit.reprojection_rms_px
            );
            assert!((lm.initial_rms_px - dlt_fit.reprojection_rms_px).abs() < 1e-9);
        }
        let exact = solve_homography_refined(&pairs(0.0)).unwrap();
        assert!(exact.fit.reprojection_rms_px < 1e-8);
    }

    #[test]
    fn lm_recovers_from_a_perturbed_start() {
        let p = pairs(0.0);
        let truth = camera().ground_homography().unwrap();
        let mut m = *truth.normalized().matrix();
        m[(0, 0)] *= 1.02;
        m[(1, 2)] += 0.01 * m[(1, 2)].abs();
        m[(2, 1)] *= 0.99;
        let start = Homography::new(m).unwrap();
        let r = refine_homography(&start, &p, &LmOptions::default()).unwrap();
        assert!(r.initial_rms_px > 1.0, "{}", r.initial_rms_px);
        assert!(
            r.fit.reprojection_rms_px < 1e-6,
            "{}",
            r.fit.reprojection_rms_px
        );
        assert!(r.fit.ground_rms_m < 1e-6);
    }

    #[test]
    fn a_point_above_the_horizon_is_refused() {
        let mut p = pairs(0.0);
        // A far ground point whose pixel was typed into the sky.
        p.push(PointPair::new(640.0, 5.0, 6.0, 0.0));
        p.push(PointPair::new(600.0, 4.0, 7.0, 0.5));
        let e = solve_homography_refined(&p);
        assert!(
            matches!(
                e,
                Err(SolveError::WrongSide { .. }) | Err(SolveError::Degenerate)
            ),
            "{e:?}"
        );
    }
}
