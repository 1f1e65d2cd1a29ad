//! The camera model fitted to the marks, its start and its checks (the [module docs](super)
//! describe the model and what the marks determine).

use nalgebra::{DVector, Matrix2, Vector2, Vector3};
use thiserror::Error;

use super::{Dash, LaneLine, MarkingStandard};
use crate::camera::{CameraError, Intrinsics, Mounting, PinholeCamera};
use crate::homography::{not_greater, Homography, Pixel};
use crate::lm::{conditioning, levenberg_marquardt, LmFit};
use crate::refine::LmOptions;
use crate::solve::{HomographyFit, PointPair};

/// What the fit needs besides the marks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LaneFitOptions {
    /// Marking dimensions.
    pub standard: MarkingStandard,
    /// Forward distance (m) from the front bumper to the near end of the first listed dash of the
    /// first dashed line in the file.
    pub first_dash_m: f64,
    /// The camera's lateral position in the vehicle frame (m, left positive; 0 = on the centre
    /// line).
    pub camera_y_m: f64,
    /// Known intrinsics (the pixels must then be undistorted ones); `None`: `fx = fy` is fitted
    /// and the principal point is the image centre.
    pub intrinsics: Option<Intrinsics>,
    /// Image size (pixels).
    pub image_size: (u32, u32),
}

/// Why the camera could not be fitted.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LaneFitError {
    /// An option is out of range.
    #[error("{name} = {value}: {reason}")]
    InvalidOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: f64,
        /// What is required.
        reason: &'static str,
    },
    /// Not enough marks to determine the camera (found before fitting).
    #[error("under-determined: {problem}. {add}")]
    UnderDetermined {
        /// What is missing.
        problem: String,
        /// What to add.
        add: String,
    },
    /// The marks leave a combination of parameters free (found at the solution).
    #[error(
        "degenerate configuration: the marks do not determine {weak} (relative singular value \
         {rel_singular:.1e}). {add}"
    )]
    Degenerate {
        /// The parameters involved.
        weak: String,
        /// Smallest relative singular value of the Jacobian.
        rel_singular: f64,
        /// What to add.
        add: String,
    },
    /// No starting point led to a valid camera, or the result is implausible.
    #[error("no camera fits the marks: {0}")]
    NoFit(String),
    /// The fitted camera is invalid.
    #[error(transparent)]
    Camera(#[from] CameraError),
}

/// Below this smallest/largest singular value of the column-normalised Jacobian a parameter
/// combination counts as undetermined. A true degeneracy gives ~1e-10 (the accuracy of the
/// numerical Jacobian); well-posed fits give 1e-2 and more (the Udacity frames: 0.06–0.09).
pub const DEGENERATE_REL_SINGULAR: f64 = 1e-7;

/// One parameter of the fitted camera, in display units.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedParameter {
    /// Name.
    pub name: String,
    /// Value (degrees for angles, metres, pixels).
    pub value: f64,
    /// One-sigma standard error from the residuals, if fitted and redundant data exist.
    pub sigma: Option<f64>,
    /// Unit.
    pub unit: &'static str,
    /// Whether it was fitted (else given).
    pub fitted: bool,
}

/// Per-line residuals and what the fitted homography measures on the line.
#[derive(Debug, Clone, PartialEq)]
pub struct LineCheck {
    /// The line's name.
    pub name: String,
    /// Its lateral position (lane widths).
    pub lateral: f64,
    /// RMS residual of its marks (pixels; dash ends as 2-D distances, points perpendicular).
    pub rms_px: f64,
    /// Its `y` as given by the model (m).
    pub model_y_m: f64,
    /// Mean `y` of its pixels projected through the homography (m).
    pub measured_y_m: f64,
    /// Mean length of its dashes with both ends given, measured through the homography (m).
    pub measured_dash_m: Option<f64>,
    /// Mean dash-to-dash period measured through the homography (m).
    pub measured_period_m: Option<f64>,
}

/// The result of [`fit_lanes`].
#[derive(Debug, Clone, PartialEq)]
pub struct LaneFit {
    /// The fitted camera.
    pub camera: PinholeCamera,
    /// Its image→ground homography (undistorted pixels if the intrinsics have distortion).
    pub homography: Homography,
    /// Whether the focal length was fitted.
    pub focal_fitted: bool,
    /// `y` (m, vehicle frame) of the ego-lane centre.
    pub lane_centre_y_m: f64,
    /// All parameters, fitted and given, in display units.
    pub parameters: Vec<FittedParameter>,
    /// The dash ends with their ground points (named), the correspondences stored in the file.
    pub pairs: Vec<(String, PointPair)>,
    /// The homography evaluated on `pairs` (reprojection and ground errors).
    pub dash_fit: HomographyFit,
    /// Per line.
    pub lines: Vec<LineCheck>,
    /// RMS over all residuals (pixels per coordinate).
    pub rms_px: f64,
    /// RMS perpendicular distance of the solid-line points to their lines (pixels), if any.
    pub line_points_rms_px: Option<f64>,
    /// LM iterations of the best start.
    pub iterations: usize,
    /// Smallest/largest singular value of the column-normalised Jacobian.
    pub rel_singular: f64,
}

/// Parameter slots of the model vector.
const H: usize = 0;
const PITCH: usize = 1;
const YAW: usize = 2;
const ROLL: usize = 3;
const CAM_X: usize = 4;
const LANE_Y: usize = 5;
const FIXED_SLOTS: usize = 6;

struct Model<'a> {
    lines: &'a [LaneLine],
    opts: &'a LaneFitOptions,
    /// Per line: the parameter slot of its phase (dashed lines after the first), else `None`.
    phase_slot: Vec<Option<usize>>,
    /// Index of the first dashed line.
    first_dashed: usize,
    /// Slot of the focal length, if fitted.
    focal_slot: Option<usize>,
    n: usize,
}

impl<'a> Model<'a> {
    fn new(lines: &'a [LaneLine], opts: &'a LaneFitOptions, first_dashed: usize) -> Self {
        let mut n = FIXED_SLOTS;
        let phase_slot = lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (l.is_dashed() && i != first_dashed).then(|| {
                    n += 1;
                    n - 1
                })
            })
            .collect();
        let focal_slot = opts.intrinsics.is_none().then(|| {
            n += 1;
            n - 1
        });
        Self {
            lines,
            opts,
            phase_slot,
            first_dashed,
            focal_slot,
            n,
        }
    }

    fn intrinsics(&self, x: &DVector<f64>) -> Intrinsics {
        match (self.opts.intrinsics, self.focal_slot) {
            (Some(k), _) => k,
            (None, slot) => {
                let f = slot.map_or(1.0, |s| x[s]);
                let (w, h) = self.opts.image_size;
                Intrinsics {
                    fx: f,
                    fy: f,
                    cx: 0.5 * f64::from(w),
                    cy: 0.5 * f64::from(h),
                }
            }
        }
    }

    fn camera(&self, x: &DVector<f64>) -> Option<PinholeCamera> {
        let mounting = Mounting {
            x: x[CAM_X],
            y: self.opts.camera_y_m,
            height: x[H],
            pitch: x[PITCH],
            yaw: x[YAW],
            roll: x[ROLL],
        };
        PinholeCamera::new(self.intrinsics(x), mounting).ok()
    }

    fn line_y(&self, x: &DVector<f64>, line: &LaneLine) -> f64 {
        x[LANE_Y] + line.lateral * self.opts.standard.lane_width_m
    }

    /// `x` of the near end of dash 0 of line `i`.
    fn phase(&self, x: &DVector<f64>, i: usize) -> f64 {
        self.phase_slot[i].map_or(self.opts.first_dash_m, |s| x[s])
    }

    /// Ground `x` of a dash's near and far ends.
    fn dash_x(&self, x: &DVector<f64>, i: usize, d: &Dash) -> (f64, f64) {
        let s = &self.opts.standard;
        let near = self.phase(x, i) + f64::from(d.index) * s.period_m();
        (near, near + s.dash_m)
    }

    fn residuals(&self, x: &DVector<f64>) -> Option<DVector<f64>> {
        let cam = self.camera(x)?;
        let h = cam.ground_to_image_matrix().try_inverse()?;
        let mut r = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let y = self.line_y(x, line);
            for d in &line.dashes {
                let (xn, xf) = self.dash_x(x, i, d);
                for (px, gx) in [(d.near, xn), (d.far, xf)] {
                    if let Some(px) = px {
                        let q = cam.project_point([gx, y, 0.0]).ok()?;
                        r.push(px.u - q.u);
                        r.push(px.v - q.v);
                    }
                }
            }
            let l = h.transpose() * Vector3::new(0.0, 1.0, -y);
            let norm = l.x.hypot(l.y);
            if not_greater(norm, 0.0) {
                return None;
            }
            for p in &line.points {
                r.push((l.x * p.u + l.y * p.v + l.z) / norm);
            }
        }
        Some(DVector::from_vec(r))
    }

    fn typical(&self) -> DVector<f64> {
        let mut t = DVector::from_element(self.n, 1.0);
        for a in [PITCH, YAW, ROLL] {
            t[a] = 0.1;
        }
        if let Some(s) = self.focal_slot {
            t[s] = 1000.0;
        }
        t
    }

    fn param_name(&self, slot: usize) -> String {
        match slot {
            H => "camera height".into(),
            PITCH => "pitch".into(),
            YAW => "yaw".into(),
            ROLL => "roll".into(),
            CAM_X => "camera x".into(),
            LANE_Y => "lateral offset in the lane".into(),
            s if Some(s) == self.focal_slot => "focal length".into(),
            s => self
                .phase_slot
                .iter()
                .position(|p| *p == Some(s))
                .map_or_else(
                    || format!("parameter {s}"),
                    |i| format!("dash phase of `{}`", self.lines[i].name),
                ),
        }
    }
}

/// Fits a camera to the lane markings (pixels undistorted if `opts.intrinsics` has a lens).
pub fn fit_lanes(lines: &[LaneLine], opts: &LaneFitOptions) -> Result<LaneFit, LaneFitError> {
    check_options(opts)?;
    let first_dashed = check_marks(lines, opts.intrinsics.is_some())?;
    fit_checked(lines, opts, first_dashed)
}

fn check_options(o: &LaneFitOptions) -> Result<(), LaneFitError> {
    let s = &o.standard;
    for (name, value) in [
        ("lane width (--lane-width)", s.lane_width_m),
        ("dash length (--dash)", s.dash_m),
        ("gap length (--gap)", s.gap_m),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(LaneFitError::InvalidOption {
                name,
                value,
                reason: "must be > 0 metres",
            });
        }
    }
    for (name, value) in [
        ("first dash distance (--first-dash-m)", o.first_dash_m),
        ("camera y (--camera-y)", o.camera_y_m),
    ] {
        if !value.is_finite() {
            return Err(LaneFitError::InvalidOption {
                name,
                value,
                reason: "must be finite",
            });
        }
    }
    if o.image_size.0 == 0 || o.image_size.1 == 0 {
        return Err(LaneFitError::InvalidOption {
            name: "image size (--image-size)",
            value: 0.0,
            reason: "width and height must be > 0",
        });
    }
    Ok(())
}

fn under(problem: impl Into<String>, add: impl Into<String>) -> LaneFitError {
    LaneFitError::UnderDetermined {
        problem: problem.into(),
        add: add.into(),
    }
}

/// The counting argument of the module docs; returns the index of the first dashed line.
fn check_marks(lines: &[LaneLine], focal_known: bool) -> Result<usize, LaneFitError> {
    if lines.len() < 2 {
        return Err(under(
            format!("{} line(s) given", lines.len()),
            "Give at least both lines of the ego lane (lateral +0.5 and -0.5).",
        ));
    }
    let first = lines.iter().position(LaneLine::is_dashed).ok_or_else(|| {
        under(
            "no dashed line",
            "The distance along the road and the origin (--first-dash-m) come from the dashes: \
             add the dash ends of a broken line.",
        )
    })?;
    if lines[first].dash_ends() < 2 {
        return Err(under(
            format!(
                "the first dashed line `{}` has {} dash end(s)",
                lines[first].name,
                lines[first].dash_ends()
            ),
            "Give at least two dash ends on it (e.g. both ends of one dash) for the scale along \
             the road.",
        ));
    }
    let second_dashed = lines
        .iter()
        .enumerate()
        .any(|(i, l)| i != first && l.dash_ends() >= 2);
    if !focal_known && lines.len() < 3 && !second_dashed {
        return Err(under(
            "with the focal length unknown, two lines of which one is dashed leave focal length \
             and roll undetermined (a longer focal length with a rolled camera images them the \
             same)",
            "Add a third line (the next lane line, lateral +1.5 or -1.5, or a road edge line), \
             or the dashes of the second line if it is broken, or give --intrinsics.",
        ));
    }
    Ok(first)
}

fn fit_checked(
    lines: &[LaneLine],
    opts: &LaneFitOptions,
    first_dashed: usize,
) -> Result<LaneFit, LaneFitError> {
    let model = Model::new(lines, opts, first_dashed);
    let vp = vanishing_point(lines)?;
    // Starting focal lengths: none to try when the intrinsics are given, else horizontal fields
    // of view from tele to wide angle (LM does not cross the focal length/pitch valleys of a
    // bad start reliably; six starts cost a few milliseconds).
    let focals: Vec<Option<f64>> = match opts.intrinsics {
        Some(_) => vec![None],
        None => [30.0f64, 45.0, 60.0, 75.0, 90.0, 110.0]
            .iter()
            .map(|d| Some(0.5 * f64::from(opts.image_size.0) / (0.5 * d.to_radians()).tan()))
            .collect(),
    };
    let lm = LmOptions {
        max_iterations: 500,
        rel_tolerance: 1e-14,
    };
    let typical = model.typical();
    let residual = |x: &DVector<f64>| model.residuals(x);
    let best = focals
        .iter()
        .filter_map(|f| initial_guess(&model, vp, *f))
        .filter_map(|x0| levenberg_marquardt(&residual, x0, &typical, &lm))
        .min_by(|a, b| a.cost.total_cmp(&b.cost))
        .ok_or_else(|| {
            LaneFitError::NoFit(
                "no starting camera sees the marks below the horizon: check the lateral \
                 positions (+ = left) and the near/far order of the dashes"
                    .into(),
            )
        })?;
    let cond = conditioning(&best);
    if cond.rel_singular < DEGENERATE_REL_SINGULAR {
        return Err(degenerate(&model, &cond.weakest, cond.rel_singular));
    }
    summarise(&model, &best, cond.sigma.as_ref(), cond.rel_singular)
}

fn degenerate(model: &Model<'_>, weakest: &DVector<f64>, rel_singular: f64) -> LaneFitError {
    let mut parts: Vec<(f64, String)> = weakest
        .iter()
        .enumerate()
        .filter(|(_, c)| c.abs() > 0.2)
        .map(|(s, c)| (c.abs(), model.param_name(s)))
        .collect();
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let weak = parts
        .into_iter()
        .map(|(_, n)| n)
        .collect::<Vec<_>>()
        .join(" / ");
    LaneFitError::Degenerate {
        weak: format!("the combination of {weak}"),
        rel_singular,
        add: if model.focal_slot.is_some() {
            "Add a third line or the dashes of a second line, spread the marks over more \
             distances, or give --intrinsics."
                .into()
        } else {
            "Add marks on more lines and at more distances.".into()
        },
    }
}

/// Total-least-squares image line `(a, b, c)`, `a² + b² = 1`, through `pts`.
fn fit_image_line(pts: &[Pixel]) -> Option<Vector3<f64>> {
    let n = pts.len() as f64;
    let (mu, mv) = pts
        .iter()
        .fold((0.0, 0.0), |(a, b), p| (a + p.u / n, b + p.v / n));
    let (mut suu, mut suv, mut svv) = (0.0, 0.0, 0.0);
    for p in pts {
        let (du, dv) = (p.u - mu, p.v - mv);
        suu += du * du;
        suv += du * dv;
        svv += dv * dv;
    }
    let eig = Matrix2::new(suu, suv, suv, svv).symmetric_eigen();
    // The normal is the eigenvector of the smaller eigenvalue.
    let k = usize::from(eig.eigenvalues[1] < eig.eigenvalues[0]);
    let nrm = eig.eigenvectors.column(k).into_owned();
    (nrm.norm() > 0.0 && suu + svv > 0.0)
        .then(|| Vector3::new(nrm.x, nrm.y, -(nrm.x * mu + nrm.y * mv)))
}

/// Least-squares intersection of the lines' images.
fn vanishing_point(lines: &[LaneLine]) -> Result<Pixel, LaneFitError> {
    let ls: Vec<Vector3<f64>> = lines
        .iter()
        .filter_map(|l| fit_image_line(&l.pixels()))
        .collect();
    let (mut a, mut b) = (Matrix2::zeros(), Vector2::zeros());
    for l in &ls {
        let n = Vector2::new(l.x, l.y);
        a += n * n.transpose();
        b -= n * l.z;
    }
    a.try_inverse()
        .map(|ai| ai * b)
        .filter(|p| p.iter().all(|c| c.is_finite()) && a.determinant() > 1e-6 * a.trace().powi(2))
        .map(|p| Pixel::new(p.x, p.y))
        .ok_or_else(|| {
            LaneFitError::NoFit(
                "the lines are parallel in the image (no vanishing point): are the points on \
                 the right lines?"
                    .into(),
            )
        })
}

/// The closed-form start of the module docs for a trial focal length (`None`: the given
/// intrinsics).
fn initial_guess(model: &Model<'_>, vp: Pixel, focal: Option<f64>) -> Option<DVector<f64>> {
    let mut x = DVector::zeros(model.n);
    if let (Some(s), Some(f)) = (model.focal_slot, focal) {
        x[s] = f;
    }
    let k = model.intrinsics(&x);
    let (pitch, yaw) = k.pitch_yaw_from_vanishing_point(vp, 0.0);
    x[PITCH] = pitch;
    x[YAW] = yaw;
    x[H] = 1.0;
    let rot = model.camera(&x)?.rotation().transpose();
    // Each image line back-projects to a plane through the camera containing its ground line
    // (x, Y, -h) for all x (camera-centred, vehicle axes): n_y·Y = n_z·h, i.e. Y/h = n_z/n_y;
    // with Y = y_lane - camera_y + lateral·W this is linear in (y_lane - camera_y, h).
    let w = model.opts.standard.lane_width_m;
    let (mut a, mut b) = (Matrix2::zeros(), Vector2::zeros());
    for line in model.lines {
        let l = fit_image_line(&line.pixels())?;
        let n = rot * (k.matrix().transpose() * l);
        if n.y.abs() < 1e-12 {
            continue;
        }
        let row = Vector2::new(1.0, -n.z / n.y);
        a += row * row.transpose();
        b += row * (-line.lateral * w);
    }
    let sol = a.try_inverse()? * b;
    if !(sol.y.is_finite() && sol.y > 0.05 && sol.x.is_finite()) {
        return None;
    }
    x[H] = sol.y;
    x[LANE_Y] = sol.x + model.opts.camera_y_m;
    place_along_road(model, &mut x)?;
    Some(x)
}

/// Sets the camera's `x` from the first dash and each other dashed line's phase from its first
/// listed dash, by projecting those pixels through the starting camera.
fn place_along_road(model: &Model<'_>, x: &mut DVector<f64>) -> Option<()> {
    let dash_m = model.opts.standard.dash_m;
    let first_end = |line: &LaneLine| {
        let d = line.dashes.first()?;
        d.near.map(|p| (p, 0.0)).or(d.far.map(|p| (p, dash_m)))
    };
    let hom = model.camera(x)?.ground_homography().ok()?;
    let (p, off) = first_end(&model.lines[model.first_dashed])?;
    let g = hom.project_pixel(p).ok()?;
    x[CAM_X] = model.opts.first_dash_m + off - g.x;
    let hom = model.camera(x)?.ground_homography().ok()?;
    for (i, line) in model.lines.iter().enumerate() {
        if let (Some(slot), Some((p, off))) = (model.phase_slot[i], first_end(line)) {
            x[slot] = hom.project_pixel(p).ok()?.x - off;
        }
    }
    Some(())
}

fn summarise(
    model: &Model<'_>,
    fit: &LmFit,
    sigma: Option<&DVector<f64>>,
    rel_singular: f64,
) -> Result<LaneFit, LaneFitError> {
    let x = &fit.x;
    let camera = model
        .camera(x)
        .ok_or_else(|| LaneFitError::NoFit("the fitted camera is invalid".into()))?;
    let homography = camera.ground_homography()?;
    let pairs = dash_pairs(model, x);
    for line in model.lines {
        if let Some(p) = line
            .pixels()
            .iter()
            .find(|p| homography.project_pixel(**p).is_err())
        {
            return Err(LaneFitError::NoFit(format!(
                "pixel ({:.1}, {:.1}) of line `{}` is above the horizon of the best fit",
                p.u, p.v, line.name
            )));
        }
    }
    let plain: Vec<PointPair> = pairs.iter().map(|(_, p)| *p).collect();
    let dash_fit = HomographyFit::evaluate(homography, &plain);
    let m = fit.residuals.len().max(1) as f64;
    Ok(LaneFit {
        camera,
        homography,
        focal_fitted: model.focal_slot.is_some(),
        lane_centre_y_m: x[LANE_Y],
        parameters: parameters(model, x, sigma),
        lines: line_checks(model, x, &fit.residuals, &homography),
        line_points_rms_px: line_points_rms(model, &fit.residuals),
        pairs,
        dash_fit,
        rms_px: (fit.cost / m).sqrt(),
        iterations: fit.iterations,
        rel_singular,
    })
}

fn dash_pairs(model: &Model<'_>, x: &DVector<f64>) -> Vec<(String, PointPair)> {
    let mut out = Vec::new();
    for (i, line) in model.lines.iter().enumerate() {
        let y = model.line_y(x, line);
        for d in &line.dashes {
            let (xn, xf) = model.dash_x(x, i, d);
            for (px, gx, end) in [(d.near, xn, "near"), (d.far, xf, "far")] {
                if let Some(p) = px {
                    out.push((
                        format!("{} dash {} {end}", line.name, d.index),
                        PointPair::new(p.u, p.v, gx, y),
                    ));
                }
            }
        }
    }
    out
}

fn parameters(
    model: &Model<'_>,
    x: &DVector<f64>,
    sigma: Option<&DVector<f64>>,
) -> Vec<FittedParameter> {
    let sig = |s: usize| sigma.map(|v| v[s]);
    let k = model.intrinsics(x);
    let fitted = |name: String, value: f64, slot: usize, unit, scale: f64| FittedParameter {
        name,
        value: value * scale,
        sigma: sig(slot).map(|s| s * scale),
        unit,
        fitted: true,
    };
    let deg = 180.0 / std::f64::consts::PI;
    let mut out = vec![match model.focal_slot {
        Some(s) => fitted("focal length".into(), x[s], s, "px", 1.0),
        None => FittedParameter {
            name: "focal length fx".into(),
            value: k.fx,
            sigma: None,
            unit: "px",
            fitted: false,
        },
    }];
    out.extend([
        fitted("camera height".into(), x[H], H, "m", 1.0),
        fitted("pitch (down +)".into(), x[PITCH], PITCH, "deg", deg),
        fitted("yaw (left +)".into(), x[YAW], YAW, "deg", deg),
        fitted("roll".into(), x[ROLL], ROLL, "deg", deg),
        fitted("camera x".into(), x[CAM_X], CAM_X, "m", 1.0),
        FittedParameter {
            name: "camera y".into(),
            value: model.opts.camera_y_m,
            sigma: None,
            unit: "m",
            fitted: false,
        },
        fitted("ego-lane centre y".into(), x[LANE_Y], LANE_Y, "m", 1.0),
    ]);
    for (line, slot) in model.lines.iter().zip(&model.phase_slot) {
        if let Some(s) = *slot {
            let name = format!("x of dash 0 of `{}`", line.name);
            out.push(fitted(name, x[s], s, "m", 1.0));
        }
    }
    out
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Sum of squares and count of the residuals of each line's dash ends and points, in the order
/// [`Model::residuals`] writes them (line by line: dash ends, two coordinates each, then points).
fn per_line_residuals(model: &Model<'_>, r: &DVector<f64>) -> Vec<[(f64, usize); 2]> {
    let mut at = 0;
    model
        .lines
        .iter()
        .map(|line| {
            let (nd, np) = (2 * line.dash_ends(), line.points.len());
            let sq = |a: usize, n: usize| r.rows(a, n).norm_squared();
            let out = [(sq(at, nd), line.dash_ends()), (sq(at + nd, np), np)];
            at += nd + np;
            out
        })
        .collect()
}

fn line_checks(
    model: &Model<'_>,
    x: &DVector<f64>,
    r: &DVector<f64>,
    hom: &Homography,
) -> Vec<LineCheck> {
    let ground = |p: Option<Pixel>| p.and_then(|p| hom.project_pixel(p).ok());
    model
        .lines
        .iter()
        .zip(per_line_residuals(model, r))
        .map(|(line, [(dsq, dn), (psq, pn)])| {
            let ys: Vec<f64> = line
                .pixels()
                .iter()
                .filter_map(|p| ground(Some(*p)).map(|g| g.y))
                .collect();
            let dashes: Vec<f64> = line
                .dashes
                .iter()
                .filter_map(|d| Some(ground(d.far)?.x - ground(d.near)?.x))
                .collect();
            let periods: Vec<f64> = line
                .dashes
                .windows(2)
                .filter_map(|w| {
                    let (a, b) = (&w[0], &w[1]);
                    let span = f64::from(b.index - a.index);
                    let near = ground(b.near).zip(ground(a.near)).map(|(q, p)| q.x - p.x);
                    let far = ground(b.far).zip(ground(a.far)).map(|(q, p)| q.x - p.x);
                    near.or(far).map(|d| d / span)
                })
                .collect();
            LineCheck {
                name: line.name.clone(),
                lateral: line.lateral,
                rms_px: ((dsq + psq) / (dn + pn).max(1) as f64).sqrt(),
                model_y_m: model.line_y(x, line),
                measured_y_m: mean(&ys).unwrap_or(f64::NAN),
                measured_dash_m: mean(&dashes),
                measured_period_m: mean(&periods),
            }
        })
        .collect()
}

fn line_points_rms(model: &Model<'_>, r: &DVector<f64>) -> Option<f64> {
    let (sq, n) = per_line_residuals(model, r)
        .iter()
        .fold((0.0, 0), |(s, n), [_, (psq, pn)]| (s + psq, n + pn));
    (n > 0).then(|| (sq / n as f64).sqrt())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The ego lane of a straight road seen by a known camera: dashed right line, solid left.
    fn ego_lane(cam: &PinholeCamera) -> Vec<LaneLine> {
        let s = MarkingStandard::MUTCD;
        let px = |x: f64, y: f64| cam.project_point([x, y, 0.0]).unwrap();
        let dashes = (0..4)
            .map(|k| {
                let near = 6.0 + f64::from(k) * s.period_m();
                Dash {
                    index: k,
                    near: Some(px(near, -s.lane_width_m / 2.0)),
                    far: Some(px(near + s.dash_m, -s.lane_width_m / 2.0)),
                }
            })
            .collect();
        let points = (0..8)
            .map(|k| px(5.0 + 5.0 * f64::from(k), s.lane_width_m / 2.0))
            .collect();
        vec![
            LaneLine {
                name: "right".into(),
                lateral: -0.5,
                dashes,
                points: Vec::new(),
                line: 0,
            },
            LaneLine {
                name: "left".into(),
                lateral: 0.5,
                dashes: Vec::new(),
                points,
                line: 0,
            },
        ]
    }

    #[test]
    fn the_rank_check_finds_the_focal_length_roll_ambiguity() {
        // Two lines with the focal length unknown: `check_marks` refuses this up front; without
        // it the fit converges (to one of many cameras) and the rank check at the solution
        // must name the combination that is free.
        let k = Intrinsics {
            fx: 1000.0,
            fy: 1000.0,
            cx: 640.0,
            cy: 360.0,
        };
        let m = Mounting {
            x: -1.5,
            y: 0.0,
            height: 1.3,
            pitch: 0.04,
            yaw: 0.01,
            roll: 0.01,
        };
        let cam = PinholeCamera::new(k, m).unwrap();
        let lines = ego_lane(&cam);
        let opts = LaneFitOptions {
            standard: MarkingStandard::MUTCD,
            first_dash_m: 6.0,
            camera_y_m: 0.0,
            intrinsics: None,
            image_size: (1280, 720),
        };
        assert!(matches!(
            fit_lanes(&lines, &opts),
            Err(LaneFitError::UnderDetermined { .. })
        ));
        let e = fit_checked(&lines, &opts, 0).unwrap_err();
        let LaneFitError::Degenerate { weak, add, .. } = &e else {
            panic!("{e}");
        };
        assert!(
            weak.contains("focal length") && weak.contains("roll"),
            "{e}"
        );
        assert!(add.contains("--intrinsics"), "{e}");
        // With the focal length known the same marks determine the camera.
        let fit = fit_lanes(
            &lines,
            &LaneFitOptions {
                intrinsics: Some(k),
                ..opts
            },
        )
        .unwrap();
        assert!(fit.rel_singular > 1e-4, "{}", fit.rel_singular);
        assert!((fit.camera.mounting().roll - m.roll).abs() < 1e-9);
    }
}
