//! Estimating the image→ground homography from point correspondences: normalised DLT
//! (Hartley) and a deterministic RANSAC around it.

use nalgebra::{DMatrix, Matrix3, Vector3};
use thiserror::Error;

use crate::homography::{not_greater, GroundPoint, Homography, HomographyError, Pixel};

/// One correspondence: a pixel and the ground point (vehicle frame, metres) it sees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointPair {
    /// Image position (continuous pixel coordinates).
    pub pixel: Pixel,
    /// Ground position (metres, vehicle frame).
    pub ground: GroundPoint,
}

impl PointPair {
    /// Builds a pair from `(u, v)` and `(x, y)`.
    pub const fn new(u: f64, v: f64, x: f64, y: f64) -> Self {
        Self {
            pixel: Pixel::new(u, v),
            ground: GroundPoint::new(x, y),
        }
    }
}

/// Residuals of one correspondence under a fitted homography.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointResidual {
    /// Distance (pixels) between the measured pixel and the image of the ground point
    /// (`H⁻¹ · ground`). `f64::INFINITY` if the ground point has no image.
    pub reprojection_px: f64,
    /// Distance (metres) between the measured ground point and `H · pixel`.
    /// `f64::INFINITY` if the pixel does not see the ground under the fit.
    pub ground_m: f64,
}

/// A fitted homography with its residuals.
#[derive(Debug, Clone, PartialEq)]
pub struct HomographyFit {
    /// The homography, unit Frobenius norm, `w > 0` on the input pixels.
    pub homography: Homography,
    /// Per-point residuals, in the order of the input pairs.
    pub residuals: Vec<PointResidual>,
    /// Root mean square of the reprojection errors (pixels).
    pub reprojection_rms_px: f64,
    /// Root mean square of the ground errors (metres).
    pub ground_rms_m: f64,
    /// Largest reprojection error (pixels).
    pub max_reprojection_px: f64,
    /// Largest ground error (metres).
    pub max_ground_m: f64,
}

impl HomographyFit {
    /// Evaluates an existing homography on a set of correspondences.
    pub fn evaluate(homography: Homography, pairs: &[PointPair]) -> Self {
        let residuals: Vec<PointResidual> =
            pairs.iter().map(|p| residual(&homography, p)).collect();
        let rms = |f: fn(&PointResidual) -> f64| {
            if residuals.is_empty() {
                0.0
            } else {
                (residuals.iter().map(|r| f(r).powi(2)).sum::<f64>() / residuals.len() as f64)
                    .sqrt()
            }
        };
        let max = |f: fn(&PointResidual) -> f64| residuals.iter().map(f).fold(0.0, f64::max);
        Self {
            homography,
            reprojection_rms_px: rms(|r| r.reprojection_px),
            ground_rms_m: rms(|r| r.ground_m),
            max_reprojection_px: max(|r| r.reprojection_px),
            max_ground_m: max(|r| r.ground_m),
            residuals,
        }
    }
}

fn residual(h: &Homography, p: &PointPair) -> PointResidual {
    PointResidual {
        reprojection_px: h
            .to_image(p.ground.x, p.ground.y)
            .map_or(f64::INFINITY, |q| q.distance_to(&p.pixel)),
        ground_m: h
            .project(p.pixel.u, p.pixel.v)
            .map_or(f64::INFINITY, |g| g.distance_to(&p.ground)),
    }
}

/// Which side of the correspondence a degeneracy was found on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The pixels.
    Image,
    /// The ground points.
    Ground,
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Side::Image => "image",
            Side::Ground => "ground",
        })
    }
}

/// Why a homography could not be estimated.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum SolveError {
    /// Fewer than four correspondences.
    #[error("need at least {need} point pairs, got {got}")]
    TooFewPoints {
        /// Number given.
        got: usize,
        /// Number required.
        need: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("point pair #{index} has a non-finite coordinate")]
    NonFinite {
        /// Index of the pair.
        index: usize,
    },
    /// Two points coincide.
    #[error("point pairs #{first} and #{second} have the same {side} position")]
    Duplicate {
        /// Where.
        side: Side,
        /// Index of the first pair.
        first: usize,
        /// Index of the second pair.
        second: usize,
    },
    /// All points lie (nearly) on one line.
    #[error(
        "all {side} points are (nearly) collinear (spread across the line is {ratio:.1e} of the \
         spread along it); spread the points over the area"
    )]
    Collinear {
        /// Where.
        side: Side,
        /// √(λmin/λmax) of the point scatter.
        ratio: f64,
    },
    /// The linear system does not have a unique solution (e.g. three of four points collinear).
    #[error(
        "point configuration is degenerate: the homography is not uniquely determined \
         (e.g. three of four points on a line); add or move points"
    )]
    Degenerate,
    /// The SVD did not converge.
    #[error("SVD did not converge")]
    NoConvergence,
    /// The solution is not a usable homography.
    #[error("solution is not a usable homography: {0}")]
    Homography(#[from] HomographyError),
    /// A ground point is behind the camera / a pixel above the horizon under the fitted
    /// homography: the points cannot all be on the ground plane in front of the camera.
    #[error(
        "point pair #{index} is inconsistent with a ground plane in front of the camera: its \
         {side} point lies {what} under the best fit (check the point, its units and sign)"
    )]
    WrongSide {
        /// Index of the pair.
        index: usize,
        /// Which coordinate was tested.
        side: Side,
        /// "behind the camera" or "above the horizon".
        what: &'static str,
    },
    /// RANSAC found no consensus set.
    #[error("RANSAC found no model with at least {needed} inliers (best had {best})")]
    NoConsensus {
        /// Required inliers.
        needed: usize,
        /// Best count found.
        best: usize,
    },
}

/// `√(λmin/λmax)` of the scatter below which points count as collinear.
pub const COLLINEAR_RATIO: f64 = 1e-3;
/// Relative distance (of the bounding-box diagonal) below which two points count as the same.
pub const DUPLICATE_REL: f64 = 1e-6;
/// Relative second-smallest singular value below which the DLT solution is not unique.
pub const NULLSPACE_REL: f64 = 1e-9;

/// Hartley normalisation: translate the centroid to the origin and scale to mean distance √2.
/// Returns `T` with `p_norm = T p`.
pub(crate) fn normalising_transform(pts: &[(f64, f64)]) -> Matrix3<f64> {
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    let mean_d = pts
        .iter()
        .map(|&(x, y)| (x - mx).hypot(y - my))
        .sum::<f64>()
        / n;
    let s = if mean_d > 0.0 {
        std::f64::consts::SQRT_2 / mean_d
    } else {
        1.0
    };
    Matrix3::new(s, 0.0, -s * mx, 0.0, s, -s * my, 0.0, 0.0, 1.0)
}

fn check_side(side: Side, pts: &[(f64, f64)]) -> Result<(), SolveError> {
    let (mut lo_x, mut lo_y, mut hi_x, mut hi_y) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for &(x, y) in pts {
        lo_x = lo_x.min(x);
        lo_y = lo_y.min(y);
        hi_x = hi_x.max(x);
        hi_y = hi_y.max(y);
    }
    let diag = (hi_x - lo_x).hypot(hi_y - lo_y);
    for (i, a) in pts.iter().enumerate() {
        for (j, b) in pts.iter().enumerate().skip(i + 1) {
            if (a.0 - b.0).hypot(a.1 - b.1) <= DUPLICATE_REL * diag {
                return Err(SolveError::Duplicate {
                    side,
                    first: i,
                    second: j,
                });
            }
        }
    }
    // Scatter matrix eigenvalues (closed form for 2×2 symmetric).
    let n = pts.len() as f64;
    let (mx, my) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    for &(x, y) in pts {
        let (dx, dy) = (x - mx, y - my);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    let tr = sxx + syy;
    let disc = ((sxx - syy).powi(2) + 4.0 * sxy * sxy).sqrt();
    let (l_max, l_min) = (0.5 * (tr + disc), (0.5 * (tr - disc)).max(0.0));
    let ratio = if l_max > 0.0 {
        (l_min / l_max).sqrt()
    } else {
        0.0
    };
    if not_greater(ratio, COLLINEAR_RATIO) {
        return Err(SolveError::Collinear { side, ratio });
    }
    Ok(())
}

/// Estimates the image→ground homography from at least four correspondences with the
/// normalised direct linear transform (Hartley & Zisserman, alg. 4.2): both point sets are
/// normalised to centroid 0 / mean distance √2, the 2n×9 system `q × (H p) = 0` is solved by SVD
/// (right singular vector of the smallest singular value), and the result is de-normalised.
///
/// Checks: at least four pairs, finite coordinates, no duplicated pixel or ground point, neither
/// point set collinear, and a unique null vector. The result has unit Frobenius norm and the
/// sign that makes `w > 0` on (most of) the input pixels. Residuals are reported for every pair.
/// This minimises an algebraic error, not the reprojection error; [`crate::refine_homography`]
/// (Levenberg–Marquardt) then minimises the reprojection error itself.
pub fn solve_homography(pairs: &[PointPair]) -> Result<HomographyFit, SolveError> {
    let h = dlt(pairs)?;
    Ok(HomographyFit::evaluate(h, pairs))
}

pub(crate) fn dlt(pairs: &[PointPair]) -> Result<Homography, SolveError> {
    const NEED: usize = 4;
    if pairs.len() < NEED {
        return Err(SolveError::TooFewPoints {
            got: pairs.len(),
            need: NEED,
        });
    }
    for (index, p) in pairs.iter().enumerate() {
        if ![p.pixel.u, p.pixel.v, p.ground.x, p.ground.y]
            .iter()
            .all(|c| c.is_finite())
        {
            return Err(SolveError::NonFinite { index });
        }
    }
    let px: Vec<(f64, f64)> = pairs.iter().map(|p| (p.pixel.u, p.pixel.v)).collect();
    let gr: Vec<(f64, f64)> = pairs.iter().map(|p| (p.ground.x, p.ground.y)).collect();
    check_side(Side::Image, &px)?;
    check_side(Side::Ground, &gr)?;

    let tp = normalising_transform(&px);
    let tg = normalising_transform(&gr);
    // At least 9 rows so that the SVD yields all nine right singular vectors (a zero row does
    // not change the solution).
    let rows = (2 * pairs.len()).max(9);
    let mut a = DMatrix::<f64>::zeros(rows, 9);
    for (i, (&(u, v), &(x, y))) in px.iter().zip(gr.iter()).enumerate() {
        let p = tp * Vector3::new(u, v, 1.0);
        let q = tg * Vector3::new(x, y, 1.0);
        let (qx, qy) = (q.x / q.z, q.y / q.z);
        let p = [p.x / p.z, p.y / p.z, 1.0];
        for k in 0..3 {
            // Row 1: −h₂·p + qy h₃·p = 0; row 2: h₁·p − qx h₃·p = 0.
            a[(2 * i, 3 + k)] = -p[k];
            a[(2 * i, 6 + k)] = qy * p[k];
            a[(2 * i + 1, k)] = p[k];
            a[(2 * i + 1, 6 + k)] = -qx * p[k];
        }
    }
    let svd = a
        .try_svd(false, true, f64::EPSILON, 10_000)
        .ok_or(SolveError::NoConvergence)?;
    let v_t = svd.v_t.ok_or(SolveError::NoConvergence)?;
    let mut order: Vec<usize> = (0..svd.singular_values.len()).collect();
    order.sort_by(|&i, &j| svd.singular_values[i].total_cmp(&svd.singular_values[j]));
    let (smallest, second) = match order.as_slice() {
        [s, t, ..] => (*s, *t),
        _ => return Err(SolveError::Degenerate),
    };
    let s_max = svd.singular_values.max();
    if not_greater(svd.singular_values[second], NULLSPACE_REL * s_max) {
        return Err(SolveError::Degenerate);
    }
    let hv = v_t.row(smallest);
    let hn = Matrix3::new(
        hv[0], hv[1], hv[2], hv[3], hv[4], hv[5], hv[6], hv[7], hv[8],
    );
    let tg_inv = tg.try_inverse().ok_or(SolveError::Degenerate)?;
    let mut h = tg_inv * hn * tp;
    // Sign: w > 0 on the input pixels (majority vote, robust to a few outliers).
    let positive = px
        .iter()
        .filter(|&&(u, v)| h[(2, 0)] * u + h[(2, 1)] * v + h[(2, 2)] > 0.0)
        .count();
    if 2 * positive < px.len() {
        h = -h;
    }
    let norm = h.norm();
    if not_greater(norm, 0.0) {
        return Err(SolveError::Degenerate);
    }
    Ok(Homography::new(h / norm)?)
}

/// Options of [`solve_homography_ransac`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RansacOptions {
    /// A pair is an inlier when its reprojection error is at most this (pixels).
    pub inlier_threshold_px: f64,
    /// Maximum number of minimal samples. If all 4-subsets fit in this budget they are tried
    /// exhaustively in lexicographic order; otherwise this many subsets are drawn from a fixed
    /// pseudo-random sequence (constant seed), so results are reproducible.
    pub max_samples: usize,
    /// Minimum size of the consensus set (at least 4).
    pub min_inliers: usize,
}

impl Default for RansacOptions {
    fn default() -> Self {
        Self {
            inlier_threshold_px: 3.0,
            max_samples: 2000,
            min_inliers: 4,
        }
    }
}

/// Result of [`solve_homography_ransac`].
#[derive(Debug, Clone, PartialEq)]
pub struct RansacFit {
    /// DLT refit on the inliers; its residuals are for the inliers, in the order of `inliers`.
    pub fit: HomographyFit,
    /// Indices of the inlier pairs, ascending.
    pub inliers: Vec<usize>,
    /// Residuals of all pairs under the final fit (input order).
    pub all_residuals: Vec<PointResidual>,
    /// Number of minimal samples evaluated.
    pub samples_tried: usize,
}

/// Fixed-constant SplitMix64: a deterministic sample order without a seed parameter.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        // n is small; modulo bias is irrelevant here.
        (self.next() % n as u64) as usize
    }
}

fn n_choose_4(n: usize) -> u128 {
    let n = n as u128;
    if n < 4 {
        0
    } else {
        n * (n - 1) * (n - 2) * (n - 3) / 24
    }
}

/// Advances a lexicographic 4-combination of `0..n`; false when exhausted.
fn next_combination(c: &mut [usize; 4], n: usize) -> bool {
    let k = c.len();
    let mut i = k;
    while i > 0 {
        i -= 1;
        if c[i] < n - k + i {
            c[i] += 1;
            for j in i + 1..k {
                c[j] = c[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

fn inliers_of(h: &Homography, pairs: &[PointPair], thr: f64) -> (Vec<usize>, f64) {
    let mut idx = Vec::new();
    let mut cost = 0.0;
    for (i, p) in pairs.iter().enumerate() {
        let e = residual(h, p).reprojection_px;
        if e <= thr {
            idx.push(i);
            cost += e * e;
        } else {
            cost += thr * thr;
        }
    }
    (idx, cost)
}

/// Robust estimation: RANSAC over minimal 4-point DLT fits (deterministic sample order, see
/// [`RansacOptions::max_samples`]), scored by inlier count then truncated squared error
/// (MSAC), followed by iterated DLT refits on the consensus set until it stops changing.
pub fn solve_homography_ransac(
    pairs: &[PointPair],
    options: &RansacOptions,
) -> Result<RansacFit, SolveError> {
    let n = pairs.len();
    if n < 4 {
        return Err(SolveError::TooFewPoints { got: n, need: 4 });
    }
    if let Some(index) = pairs.iter().position(|p| {
        ![p.pixel.u, p.pixel.v, p.ground.x, p.ground.y]
            .iter()
            .all(|c| c.is_finite())
    }) {
        return Err(SolveError::NonFinite { index });
    }
    let needed = options.min_inliers.max(4);
    let thr = options.inlier_threshold_px;
    let exhaustive = n_choose_4(n) <= options.max_samples as u128;
    let mut rng = SplitMix(0x0ADA_5CA1_1B8A_7E00);
    let mut comb = [0, 1, 2, 3];
    let mut best: Option<(Vec<usize>, f64)> = None;
    let mut tried = 0;
    loop {
        let sample: [usize; 4] = if exhaustive {
            if tried > 0 && !next_combination(&mut comb, n) {
                break;
            }
            comb
        } else {
            if tried >= options.max_samples {
                break;
            }
            let mut s = [0usize; 4];
            let mut k = 0;
            while k < 4 {
                let c = rng.below(n);
                if !s[..k].contains(&c) {
                    s[k] = c;
                    k += 1;
                }
            }
            s
        };
        tried += 1;
        let minimal: Vec<PointPair> = sample.iter().map(|&i| pairs[i]).collect();
        let Ok(h) = dlt(&minimal) else { continue };
        let (idx, cost) = inliers_of(&h, pairs, thr);
        let better = match &best {
            None => true,
            Some((b, bc)) => idx.len() > b.len() || (idx.len() == b.len() && cost < *bc),
        };
        if better {
            best = Some((idx, cost));
        }
    }
    let (mut inliers, _) = best.unwrap_or_default();
    if inliers.len() < needed {
        return Err(SolveError::NoConsensus {
            needed,
            best: inliers.len(),
        });
    }
    // Refit on the consensus set until it is stable.
    let mut h = dlt(&inliers.iter().map(|&i| pairs[i]).collect::<Vec<_>>())?;
    for _ in 0..10 {
        let (next, _) = inliers_of(&h, pairs, thr);
        if next == inliers || next.len() < needed {
            break;
        }
        inliers = next;
        h = dlt(&inliers.iter().map(|&i| pairs[i]).collect::<Vec<_>>())?;
    }
    let subset: Vec<PointPair> = inliers.iter().map(|&i| pairs[i]).collect();
    Ok(RansacFit {
        fit: HomographyFit::evaluate(h, &subset),
        all_residuals: pairs.iter().map(|p| residual(&h, p)).collect(),
        inliers,
        samples_tried: tried,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::camera::{Intrinsics, Mounting, PinholeCamera};
    use approx::assert_relative_eq;

    fn camera() -> PinholeCamera {
        PinholeCamera::new(
            Intrinsics::from_hfov(768.0, 576.0, 60f64.to_radians()),
            Mounting {
                x: -1.5,
                y: 0.2,
                height: 1.35,
                pitch: 4f64.to_radians(),
                yaw: 1f64.to_radians(),
                roll: 0.5f64.to_radians(),
            },
        )
        .unwrap()
    }

    /// Ground points on a grid 3..60 m ahead, with their exact pixels plus a deterministic
    /// noise pattern of amplitude `noise` px.
    fn synthetic(cam: &PinholeCamera, noise: f64) -> Vec<PointPair> {
        let mut out = Vec::new();
        let mut k = 0.0f64;
        for &x in &[3.0, 6.0, 10.0, 20.0, 40.0] {
            for &y in &[-3.0, -1.0, 1.5, 4.0] {
                let p = cam.project_point([x, y, 0.0]).unwrap();
                k += 1.0;
                out.push(PointPair::new(
                    p.u + noise * (k * 1.7).sin(),
                    p.v + noise * (k * 2.3).cos(),
                    x,
                    y,
                ));
            }
        }
        out
    }

    #[test]
    fn exact_points_recover_camera_homography() {
        let cam = camera();
        let truth = cam.ground_homography().unwrap();
        let pairs = synthetic(&cam, 0.0);
        let fit = solve_homography(&pairs).unwrap();
        assert!(
            fit.reprojection_rms_px < 1e-8,
            "{}",
            fit.reprojection_rms_px
        );
        assert!(fit.ground_rms_m < 1e-9, "{}", fit.ground_rms_m);
        // Same mapping away from the fit points too.
        for (u, v) in [(10.0, 570.0), (700.0, 400.0), (384.0, 300.0)] {
            let a = truth.project(u, v).unwrap();
            let b = fit.homography.project(u, v).unwrap();
            assert!(a.distance_to(&b) < 1e-9 * a.x.abs().max(1.0));
        }
        // Four points suffice.
        let four = [pairs[0], pairs[3], pairs[16], pairs[19]];
        let fit4 = solve_homography(&four).unwrap();
        assert!(fit4.reprojection_rms_px < 1e-8);
        let b = fit4.homography.project(384.0, 400.0).unwrap();
        assert!(truth.project(384.0, 400.0).unwrap().distance_to(&b) < 1e-9);
    }

    #[test]
    fn noisy_points_have_subpixel_rms() {
        let fit = solve_homography(&synthetic(&camera(), 0.5)).unwrap();
        assert!(fit.reprojection_rms_px < 0.6, "{}", fit.reprojection_rms_px);
        assert!(fit.reprojection_rms_px > 0.05);
        assert_eq!(fit.residuals.len(), 20);
        assert!(fit.max_ground_m >= fit.ground_rms_m);
    }

    #[test]
    fn degeneracies_are_reported() {
        let pairs = synthetic(&camera(), 0.0);
        assert_eq!(
            solve_homography(&pairs[..3]),
            Err(SolveError::TooFewPoints { got: 3, need: 4 })
        );
        let mut dup = pairs[..6].to_vec();
        dup[4].pixel = dup[1].pixel;
        assert!(matches!(
            solve_homography(&dup),
            Err(SolveError::Duplicate {
                side: Side::Image,
                first: 1,
                second: 4
            })
        ));
        let mut dup = pairs[..6].to_vec();
        dup[5].ground = dup[0].ground;
        assert!(matches!(
            solve_homography(&dup),
            Err(SolveError::Duplicate {
                side: Side::Ground,
                ..
            })
        ));
        // Image points on one line (ground points fine).
        let line: Vec<PointPair> = (0..6)
            .map(|i| {
                let t = f64::from(i);
                PointPair::new(100.0 + 50.0 * t, 300.0 + 20.0 * t, 5.0 + t, (t * t) % 5.0)
            })
            .collect();
        assert!(matches!(
            solve_homography(&line),
            Err(SolveError::Collinear {
                side: Side::Image,
                ..
            })
        ));
        // Ground points along one line: e.g. all on the centre line.
        let along: Vec<PointPair> = (0..6)
            .map(|i| {
                let t = f64::from(i);
                PointPair::new(100.0 + 50.0 * t, 300.0 + 7.0 * t * t, 5.0 + 3.0 * t, 0.0)
            })
            .collect();
        assert!(matches!(
            solve_homography(&along),
            Err(SolveError::Collinear {
                side: Side::Ground,
                ..
            })
        ));
        // Four points, three of them collinear (in both spaces): not unique.
        let cam = camera();
        let g = [(5.0, 0.0), (10.0, 0.0), (20.0, 0.0), (8.0, 3.0)];
        let three: Vec<PointPair> = g
            .iter()
            .map(|&(x, y)| {
                let p = cam.project_point([x, y, 0.0]).unwrap();
                PointPair::new(p.u, p.v, x, y)
            })
            .collect();
        assert_eq!(solve_homography(&three), Err(SolveError::Degenerate));
        let mut nan = pairs[..5].to_vec();
        nan[2].ground.x = f64::NAN;
        assert_eq!(
            solve_homography(&nan),
            Err(SolveError::NonFinite { index: 2 })
        );
    }

    fn with_outliers(n_out: usize) -> (Vec<PointPair>, Vec<usize>) {
        let mut pairs = synthetic(&camera(), 0.3);
        let mut bad = Vec::new();
        // Corrupt every third point, deterministically, by 15..60 px.
        for k in 0..n_out {
            let i = (3 * k + 1) % pairs.len();
            let a = 15.0 + 9.0 * k as f64;
            pairs[i].pixel.u += a * (k as f64 * 0.9).cos();
            pairs[i].pixel.v += a * (k as f64 * 0.9).sin();
            bad.push(i);
        }
        bad.sort_unstable();
        (pairs, bad)
    }

    #[test]
    fn ransac_rejects_30_percent_outliers() {
        let (pairs, bad) = with_outliers(6); // 6 of 20 = 30 %
        let fit = solve_homography_ransac(&pairs, &RansacOptions::default()).unwrap();
        let good: Vec<usize> = (0..pairs.len()).filter(|i| !bad.contains(i)).collect();
        assert_eq!(fit.inliers, good);
        assert!(fit.fit.reprojection_rms_px < 0.5);
        // C(20,4) = 4845 > 2000: the pseudo-random path, deterministic.
        assert_eq!(fit.samples_tried, 2000);
        let again = solve_homography_ransac(&pairs, &RansacOptions::default()).unwrap();
        assert_eq!(again, fit);
        // Plain DLT is visibly corrupted by the same outliers.
        assert!(solve_homography(&pairs).unwrap().reprojection_rms_px > 3.0);
        // The refit agrees with the true camera.
        let truth = camera().ground_homography().unwrap();
        let a = truth.project(384.0, 400.0).unwrap();
        let b = fit.fit.homography.project(384.0, 400.0).unwrap();
        assert!(a.distance_to(&b) < 0.05 * a.x);
    }

    #[test]
    fn ransac_exhaustive_on_small_sets() {
        let (pairs, bad) = with_outliers(3);
        let subset: Vec<PointPair> = pairs[..10].to_vec();
        let bad: Vec<usize> = bad.into_iter().filter(|&i| i < 10).collect();
        let fit = solve_homography_ransac(&subset, &RansacOptions::default()).unwrap();
        assert_eq!(fit.samples_tried, 210); // C(10,4)
        assert!(fit.inliers.iter().all(|i| !bad.contains(i)));
        assert_eq!(fit.inliers.len(), 10 - bad.len());
        assert_relative_eq!(fit.all_residuals.len() as f64, 10.0);
    }

    #[test]
    fn combinations_enumerate_all() {
        let mut c = [0, 1, 2, 3];
        let mut count = 1;
        while next_combination(&mut c, 7) {
            count += 1;
        }
        assert_eq!(count as u128, n_choose_4(7));
        assert_eq!(c, [3, 4, 5, 6]);
    }
}
