//! A small dense Levenberg–Marquardt solver for camera-model fits (few parameters, a few hundred
//! residuals), with a numerical Jacobian, parameter standard errors and a rank check.
//!
//! [`crate::refine`] has its own LM, specialised to the nine entries of a homography with an
//! analytic Jacobian; the camera fits ([`crate::lanes`]) have parameters of mixed units (pixels,
//! metres, radians) and a residual that is awkward to differentiate by hand, so they use this
//! one. Central differences with a step of `1e-6 ×` the parameter's typical size are accurate to
//! ~1e-10 relative, far below what the rank check and the standard errors need.

use nalgebra::{DMatrix, DVector};

use crate::refine::LmOptions;

/// A converged (or stopped) fit.
#[derive(Debug, Clone, PartialEq)]
pub struct LmFit {
    /// The parameters.
    pub x: DVector<f64>,
    /// Residuals at `x`.
    pub residuals: DVector<f64>,
    /// Sum of squared residuals.
    pub cost: f64,
    /// Iterations run.
    pub iterations: usize,
    /// Jacobian of the residuals at `x`.
    pub jacobian: DMatrix<f64>,
}

/// How well the parameters are determined at a solution.
#[derive(Debug, Clone, PartialEq)]
pub struct Conditioning {
    /// Smallest / largest singular value of the Jacobian with unit-norm columns (0: some
    /// combination of parameters does not change the residuals at all).
    pub rel_singular: f64,
    /// The parameter combination of that smallest singular value (unit vector in the
    /// column-normalised space): the direction the data does not fix.
    pub weakest: DVector<f64>,
    /// One-sigma standard error of each parameter, from the residual RMS and `(JᵀJ)⁻¹`;
    /// `None` where `JᵀJ` is singular or there are no redundant residuals.
    pub sigma: Option<DVector<f64>>,
}

/// Jacobian of `f` at `x` by central differences; `typical[j]` is the size of parameter `j`
/// (the step is `1e-6 × max(|x_j|, typical_j)`). Next to the edge of the model's valid region a
/// one-sided difference is used; `None` if `f` fails at `x` or on both sides.
pub fn numerical_jacobian<F>(
    f: &F,
    x: &DVector<f64>,
    typical: &DVector<f64>,
) -> Option<DMatrix<f64>>
where
    F: Fn(&DVector<f64>) -> Option<DVector<f64>>,
{
    let r0 = f(x)?;
    let mut jac = DMatrix::zeros(r0.len(), x.len());
    for j in 0..x.len() {
        let h = 1e-6 * x[j].abs().max(typical[j]);
        let mut xp = x.clone();
        let mut xm = x.clone();
        xp[j] += h;
        xm[j] -= h;
        let col = match (f(&xp), f(&xm)) {
            (Some(rp), Some(rm)) => (rp - rm) / (2.0 * h),
            (Some(rp), None) => (rp - &r0) / h,
            (None, Some(rm)) => (&r0 - rm) / h,
            (None, None) => return None,
        };
        jac.set_column(j, &col);
    }
    Some(jac)
}

/// Minimises `‖f(x)‖²` from `x0`. `f` returns `None` where the model is invalid (e.g. a point
/// behind the camera); such steps are rejected like uphill ones. `None` if `f` fails at `x0`.
pub fn levenberg_marquardt<F>(
    f: &F,
    x0: DVector<f64>,
    typical: &DVector<f64>,
    options: &LmOptions,
) -> Option<LmFit>
where
    F: Fn(&DVector<f64>) -> Option<DVector<f64>>,
{
    let n = x0.len();
    let mut x = x0;
    let mut r = f(&x)?;
    let mut cost = r.norm_squared();
    let mut jac = numerical_jacobian(f, &x, typical)?;
    let mut lambda = 1e-3;
    let mut iterations = 0;
    while iterations < options.max_iterations && cost > 0.0 {
        iterations += 1;
        let jtj = jac.transpose() * &jac;
        let jtr = jac.transpose() * &r;
        if jtr.norm() < 1e-300 {
            break;
        }
        let mut improved = false;
        let mut converged = false;
        while lambda < 1e12 {
            // Marquardt's scaling (λ·diag(JᵀJ)) makes the step independent of the units of the
            // parameters; the small floor keeps a parameter the data does not see regular.
            let mut a = jtj.clone();
            for d in 0..n {
                a[(d, d)] += lambda * (jtj[(d, d)] + 1e-12);
            }
            let Some(chol) = a.cholesky() else {
                lambda *= 10.0;
                continue;
            };
            let cand = &x - chol.solve(&jtr);
            match f(&cand) {
                Some(rc) if rc.norm_squared() < cost => {
                    let new_cost = rc.norm_squared();
                    converged = (cost - new_cost) / cost <= options.rel_tolerance;
                    x = cand;
                    r = rc;
                    cost = new_cost;
                    lambda = (lambda * 0.1).max(1e-12);
                    improved = true;
                    break;
                }
                _ => lambda *= 10.0,
            }
        }
        if !improved {
            break;
        }
        jac = numerical_jacobian(f, &x, typical)?;
        if converged {
            break;
        }
    }
    Some(LmFit {
        x,
        residuals: r,
        cost,
        iterations,
        jacobian: jac,
    })
}

/// The conditioning of a fit: rank (via the SVD of the column-normalised Jacobian) and standard
/// errors.
pub fn conditioning(fit: &LmFit) -> Conditioning {
    let (m, n) = fit.jacobian.shape();
    let mut jn = fit.jacobian.clone();
    let mut norms = DVector::zeros(n);
    for j in 0..n {
        let c = jn.column(j).norm();
        norms[j] = c;
        if c > 0.0 {
            jn.column_mut(j).unscale_mut(c);
        }
    }
    let svd = jn.svd(false, true);
    let (mut lo, mut hi, mut k) = (f64::INFINITY, 0.0f64, 0);
    for (i, s) in svd.singular_values.iter().enumerate() {
        hi = hi.max(*s);
        if *s < lo {
            lo = *s;
            k = i;
        }
    }
    let weakest = svd
        .v_t
        .as_ref()
        .map_or_else(|| DVector::zeros(n), |vt| vt.row(k).transpose());
    let rel_singular = if hi > 0.0 && norms.iter().all(|c| *c > 0.0) {
        lo / hi
    } else {
        0.0
    };
    let sigma = (m > n)
        .then(|| (fit.jacobian.transpose() * &fit.jacobian).try_inverse())
        .flatten()
        .map(|cov| {
            let s2 = fit.cost / (m - n) as f64;
            DVector::from_iterator(n, (0..n).map(|j| (s2 * cov[(j, j)]).max(0.0).sqrt()))
        });
    Conditioning {
        rel_singular,
        weakest,
        sigma,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn opts() -> LmOptions {
        LmOptions {
            max_iterations: 200,
            rel_tolerance: 1e-15,
        }
    }

    #[test]
    fn fits_an_exponential_and_reports_errors() {
        // y = a·exp(b·t) + small deterministic "noise".
        let ts: Vec<f64> = (0..30).map(|i| f64::from(i) * 0.1).collect();
        let ys: Vec<f64> = ts
            .iter()
            .enumerate()
            .map(|(i, t)| 2.0 * (-1.3 * t).exp() + 1e-3 * ((i * 7 % 5) as f64 - 2.0))
            .collect();
        let f = |x: &DVector<f64>| {
            Some(DVector::from_iterator(
                ts.len(),
                ts.iter().zip(&ys).map(|(t, y)| y - x[0] * (x[1] * t).exp()),
            ))
        };
        let fit = levenberg_marquardt(
            &f,
            DVector::from_vec(vec![1.0, -0.5]),
            &DVector::from_vec(vec![1.0, 1.0]),
            &opts(),
        )
        .unwrap();
        assert!(
            (fit.x[0] - 2.0).abs() < 5e-3 && (fit.x[1] + 1.3).abs() < 5e-3,
            "{}",
            fit.x
        );
        let c = conditioning(&fit);
        assert!(c.rel_singular > 1e-3, "{}", c.rel_singular);
        let s = c.sigma.unwrap();
        assert!(
            s[0] > 0.0 && s[0] < 5e-3 && s[1] > 0.0 && s[1] < 5e-3,
            "{s}"
        );
    }

    #[test]
    fn detects_a_parameter_combination_the_data_does_not_fix() {
        // Only a + b is observable.
        let f = |x: &DVector<f64>| {
            Some(DVector::from_iterator(
                5,
                (0..5).map(|i| (x[0] + x[1]) * f64::from(i) - 3.0 * f64::from(i)),
            ))
        };
        let fit = levenberg_marquardt(
            &f,
            DVector::from_vec(vec![0.0, 0.0]),
            &DVector::from_vec(vec![1.0, 1.0]),
            &opts(),
        )
        .unwrap();
        assert!((fit.x[0] + fit.x[1] - 3.0).abs() < 1e-9);
        let c = conditioning(&fit);
        assert!(c.rel_singular < 1e-8, "{}", c.rel_singular);
        // The weak direction is a − b.
        assert!((c.weakest[0] + c.weakest[1]).abs() < 1e-6, "{}", c.weakest);
    }

    #[test]
    fn invalid_region_is_avoided() {
        // Minimum of (x − 3)² but the model is undefined for x > 2: stops at the boundary side.
        let f = |x: &DVector<f64>| (x[0] <= 2.0).then(|| DVector::from_vec(vec![x[0] - 3.0]));
        let fit = levenberg_marquardt(
            &f,
            DVector::from_vec(vec![0.0]),
            &DVector::from_vec(vec![1.0]),
            &opts(),
        )
        .unwrap();
        assert!(fit.x[0] <= 2.0 && fit.x[0] > 1.9, "{}", fit.x);
        assert!(levenberg_marquardt(
            &f,
            DVector::from_vec(vec![5.0]),
            &DVector::from_vec(vec![1.0]),
            &opts()
        )
        .is_none());
    }
}
