//! Calibration from the lane markings of a straight, flat road (`adas-calibrate lanes`).
//!
//! # The lane-marking file (TOML)
//!
//! ```toml
//! image_width = 1280       # optional; checked against the image size given to the tool
//! image_height = 720
//!
//! [[lines]]
//! name = "ego left, solid yellow"   # optional, used in messages and the report
//! lateral = 0.5                     # lane widths left of the ego-lane centre (right: negative)
//! points = [[286.3, 664.5], [304.4, 652.5], [514.9, 508.5]]   # any pixels on the line
//!
//! [[lines]]
//! name = "ego right, dashed white"
//! lateral = -0.5
//! dashes = [                       # near to far, one entry per dash, consecutive dashes
//!     { far = [997.8, 650.8] },    # near end hidden (by the bonnet): give what is visible
//!     { near = [775.2, 508.7], far = [746.4, 489.3] },
//!     { index = 3, near = [712.2, 467.3] },   # dash 2 hidden by a car: say which dash it is
//! ]
//! ```
//!
//! Pixels are continuous coordinates with `(0, 0)` at the top-left corner of the image. A line may
//! have both `dashes` and `points` (e.g. the middle of a worn dash). Dash `index` counts from the
//! first listed dash of that line (0) and defaults to the previous one + 1.
//!
//! # The model
//!
//! The road is the plane `z = 0`, the lines are parallel to the vehicle's `x` axis at
//! `y = y_lane + lateral · lane_width`. The dashes of a line repeat every `dash + gap`; the near
//! end of the first listed dash of the *first* dashed line in the file is at `x = first_dash_m`
//! (a measured distance: it fixes the origin), the other dashed lines have their own unknown
//! phase (dashes of adjacent lines are not in step on real roads). The camera is a
//! [`PinholeCamera`](crate::PinholeCamera) at `(x_cam, camera_y, h)` with pitch, yaw, roll; its
//! focal length (`fx = fy`, principal point at the image centre) is a parameter too unless the
//! intrinsics are given.
//!
//! Residuals (pixels): every dash end against the projection of its ground point; every line
//! point's perpendicular distance to the image of its ground line (`l = Hᵀ (0, 1, −y)` with
//! `H = G⁻¹` the image→ground homography). They are minimised by Levenberg–Marquardt
//! ([`crate::lm`]) from a closed-form start: the vanishing point of the lines gives pitch and
//! yaw for a trial focal length (roll 0), the back-projected planes of the image lines give the
//! height and the lateral offset, the first dash gives the camera's `x`. Without intrinsics the
//! start is tried for several fields of view and the best fit is kept.
//!
//! # What the marks determine
//!
//! Two image lines through their vanishing point fix pitch and yaw (given `f`), and — with the
//! lane width — height and lateral offset for any roll: two lines alone cannot tell roll. The
//! spacing of the dashes along a line (a 1-D projective scale, ∝ `f ·` the line's distance from
//! the camera) fixes roll when `f` is known. With `f` unknown one more independent number is
//! needed: a third line (its image direction), or the dashes of a second line (a second scale).
//! [`fit_lanes`] refuses fewer marks, and any configuration whose Jacobian is rank-deficient at the
//! solution, saying what to add.
//!
//! The vehicle is assumed to drive straight along the lane: its heading relative to the lane ends
//! up in the camera's yaw, its offset in the lane in `y_lane`.

mod file;
mod fit;

pub use file::{LaneFile, LaneFileError, MAX_LATERAL};
pub use fit::{
    fit_lanes, FittedParameter, LaneFit, LaneFitError, LaneFitOptions, LineCheck,
    DEGENERATE_REL_SINGULAR,
};

use crate::homography::Pixel;

/// Lane-marking dimensions (metres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MarkingStandard {
    /// Lane width, centre to centre of the lines.
    pub lane_width_m: f64,
    /// Length of one dash of a broken line.
    pub dash_m: f64,
    /// Gap between two dashes.
    pub gap_m: f64,
}

impl MarkingStandard {
    /// US federal standard (MUTCD): 12 ft lanes, 10 ft dashes, 30 ft gaps.
    pub const MUTCD: Self = Self {
        lane_width_m: 3.66,
        dash_m: 3.05,
        gap_m: 9.14,
    };

    /// Dash + gap: the distance from one dash's near end to the next one's.
    pub fn period_m(&self) -> f64 {
        self.dash_m + self.gap_m
    }
}

impl Default for MarkingStandard {
    fn default() -> Self {
        Self::MUTCD
    }
}

/// One dash of a broken line; at least one end is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dash {
    /// Dash number along the line, 0 = the first listed.
    pub index: u32,
    /// Image of the dash's near end (nearer the vehicle).
    pub near: Option<Pixel>,
    /// Image of its far end.
    pub far: Option<Pixel>,
}

/// One marking line.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneLine {
    /// Name, `line k` if none.
    pub name: String,
    /// Lateral position in lane widths, left of the ego-lane centre positive.
    pub lateral: f64,
    /// Dashes (broken line), near to far.
    pub dashes: Vec<Dash>,
    /// Other pixels on the line.
    pub points: Vec<Pixel>,
    /// 1-based line of its `[[lines]]` table in the file (0 if unknown).
    pub line: usize,
}

impl LaneLine {
    /// Whether the line has dashes.
    pub fn is_dashed(&self) -> bool {
        !self.dashes.is_empty()
    }

    /// Number of dash ends given.
    pub fn dash_ends(&self) -> usize {
        self.dashes
            .iter()
            .map(|d| usize::from(d.near.is_some()) + usize::from(d.far.is_some()))
            .sum()
    }

    /// Every pixel of the line: dash ends, then points.
    pub fn pixels(&self) -> Vec<Pixel> {
        let ends = self.dashes.iter().flat_map(|d| [d.near, d.far]).flatten();
        ends.chain(self.points.iter().copied()).collect()
    }

    /// The same line with every pixel mapped by `f` (e.g. undistorted).
    pub fn map_pixels<E>(&self, mut f: impl FnMut(Pixel) -> Result<Pixel, E>) -> Result<Self, E> {
        let mut dashes = Vec::with_capacity(self.dashes.len());
        for d in &self.dashes {
            dashes.push(Dash {
                index: d.index,
                near: d.near.map(&mut f).transpose()?,
                far: d.far.map(&mut f).transpose()?,
            });
        }
        let points = self
            .points
            .iter()
            .map(|p| f(*p))
            .collect::<Result<_, E>>()?;
        Ok(Self {
            dashes,
            points,
            ..self.clone()
        })
    }
}
