//! Range accuracy of the bird's-eye view against KITTI's LiDAR-labelled objects
//! (`../shared/eval/kitti_object`: 3 frames of the object benchmark; docs/RANGE.md has the table
//! and the reasoning behind every choice below).
//!
//! Per frame: the calib file's `P2` (rectified left colour camera) and a road plane give an
//! image → ground homography ([`Homography`], the daemon's type); every labelled road user's 2D
//! box goes through the daemon's own `perception::project_detections_in_image` (the call
//! `service.rs` makes), and the ground point is compared with the label.
//!
//! Frames: KITTI's rectified camera coordinates (x right, y *down*, z forward, metres). Ground
//! points are reported as (forward, left) = (z, −x) of the point on the plane, origin on the road
//! below the rectified reference camera (camera 0; camera 2, whose image is used, sits 6 cm to
//! its left — `P2`'s fourth column holds that offset, so nothing is lost).
//!
//! Run with `--nocapture` for the tables; the pictures and `table.md` are written to
//! `$CARGO_TARGET_TMPDIR/kitti_range/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ab_glyph::{FontRef, PxScale};
use adas_calibration::report::FONT_BYTES;
use adas_calibration::Homography;
use adas_core::perception::project_detections_in_image;
use adas_plugins::manifest::RoadUser;
use adas_plugins::BBox;
use adas_system_tests::{repo_root, shared_data_present};
use adas_types::ImageDetection;
use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_circle_mut, draw_filled_rect_mut, draw_hollow_circle_mut, draw_hollow_rect_mut,
    draw_line_segment_mut, draw_text_mut,
};
use imageproc::rect::Rect;

const TEST: &str = "kitti_range";
const FRAMES: [&str; 3] = ["000000", "000001", "000002"];
/// KITTI's camera height above the road as built (Geiger et al., IJRR 2013: cameras 1.65 m,
/// Velodyne 1.73 m above the ground).
const NOMINAL_HEIGHT_M: f64 = 1.65;
const VELODYNE_HEIGHT_M: f64 = 1.73;

type Mat3 = [[f64; 3]; 3];
type Mat34 = [[f64; 4]; 3];

// ---------------------------------------------------------------------------------------------
// KITTI files

struct Calib {
    /// Rectified camera coordinates → image_2 pixels (KITTI convention: integer = pixel centre).
    p2: Mat34,
    /// Unrectified camera 0 → rectified camera 0.
    r0: Mat3,
    /// Velodyne → unrectified camera 0.
    velo_to_cam: Mat34,
}

fn numbers(text: &str, key: &str, n: usize, path: &Path) -> Vec<f64> {
    let rest = text
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .unwrap_or_else(|| panic!("{}: no `{key}:` line", path.display()));
    let v: Vec<f64> = rest
        .split_whitespace()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|e| panic!("{}: {key}: {s:?}: {e}", path.display()))
        })
        .collect();
    assert_eq!(v.len(), n, "{}: {key} needs {n} numbers", path.display());
    v
}

fn read_calib(path: &Path) -> Calib {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m34 =
        |v: Vec<f64>| -> Mat34 { std::array::from_fn(|r| std::array::from_fn(|c| v[4 * r + c])) };
    let r0 = numbers(&text, "R0_rect", 9, path);
    Calib {
        p2: m34(numbers(&text, "P2", 12, path)),
        r0: std::array::from_fn(|r| std::array::from_fn(|c| r0[3 * r + c])),
        velo_to_cam: m34(numbers(&text, "Tr_velo_to_cam", 12, path)),
    }
}

/// One line of a KITTI label file.
#[derive(Debug, Clone)]
struct Label {
    frame: usize,
    kind: String,
    truncated: f64,
    /// 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown.
    occluded: i64,
    /// 2D box `[x1, y1, x2, y2]`, KITTI pixels (integer = pixel centre).
    bbox: [f64; 4],
    /// Height, width, length of the 3D box (m).
    hwl: [f64; 3],
    /// Bottom centre of the 3D box, rectified camera coordinates (x right, y down, z forward).
    loc: [f64; 3],
    /// Yaw about the camera's y axis (0: the box's length along +x).
    ry: f64,
}

fn read_labels(path: &Path, frame: usize) -> Vec<Label> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert!(f.len() >= 15, "{}: short line {line:?}", path.display());
            let n = |i: usize| -> f64 {
                f[i].parse()
                    .unwrap_or_else(|e| panic!("{}: {line:?} field {i}: {e}", path.display()))
            };
            Label {
                frame,
                kind: f[0].to_string(),
                truncated: n(1),
                occluded: n(2) as i64,
                bbox: [n(4), n(5), n(6), n(7)],
                hwl: [n(8), n(9), n(10)],
                loc: [n(11), n(12), n(13)],
                ry: n(14),
            }
        })
        .collect()
}

/// The daemon's class for a KITTI type; `None` for types the evaluation leaves out (`DontCare`
/// has no 3D box; `Misc` and `Tram` are no road-user class of the daemon).
fn road_user(kind: &str) -> Option<RoadUser> {
    match kind {
        "Car" | "Van" => Some(RoadUser::Car),
        "Truck" => Some(RoadUser::TruckBus),
        "Pedestrian" | "Person_sitting" => Some(RoadUser::Pedestrian),
        "Cyclist" => Some(RoadUser::Cyclist),
        _ => None,
    }
}

impl Label {
    fn short_name(&self) -> String {
        format!("f{} {}", self.frame, self.kind)
    }

    /// The 8 corners of the 3D box (bottom 4 first), rectified camera coordinates. KITTI's box:
    /// length along the object's x, width along its z, rotated by `R_y(ry)`, y up is −y.
    fn corners(&self) -> [[f64; 3]; 8] {
        let [h, w, l] = self.hwl;
        let (s, c) = self.ry.sin_cos();
        std::array::from_fn(|i| {
            let dx = if matches!(i % 4, 0 | 1) {
                l / 2.0
            } else {
                -l / 2.0
            };
            let dz = if matches!(i % 4, 0 | 3) {
                w / 2.0
            } else {
                -w / 2.0
            };
            let dy = if i < 4 { 0.0 } else { -h };
            [
                self.loc[0] + c * dx + s * dz,
                self.loc[1] + dy,
                self.loc[2] - s * dx + c * dz,
            ]
        })
    }
}

/// `P·(X, 1)` → (u, v) in KITTI pixels.
fn project(p: &Mat34, x: [f64; 3]) -> (f64, f64) {
    let row = |r: usize| p[r][0] * x[0] + p[r][1] * x[1] + p[r][2] * x[2] + p[r][3];
    let w = row(2);
    (row(0) / w, row(1) / w)
}

// ---------------------------------------------------------------------------------------------
// Ground truth: the label point and the point a box bottom physically corresponds to

struct Truth {
    /// Label location (bottom centre of the 3D box): forward z, left −x.
    label: (f64, f64),
    /// The point the bottom centre of a 2D box sees: forward = depth of the bottom corner whose
    /// image is lowest (the box's bottom edge touches it; on a road below the camera that is the
    /// nearest corner), left = where the ray through the centre column of the projected 3D box
    /// is at that depth and at the box's bottom height.
    contact: (f64, f64),
    /// Label 2D box bottom minus the bottom of the projected 3D box (px): annotation vs LiDAR box.
    dv_px: f64,
    /// Label 2D box centre column minus that of the projected 3D box (px).
    du_px: f64,
}

fn truth(l: &Label, p2: &Mat34) -> Truth {
    let corners = l.corners();
    let px: Vec<(f64, f64)> = corners.iter().map(|c| project(p2, *c)).collect();
    let lowest = (0..4).max_by(|&a, &b| px[a].1.total_cmp(&px[b].1)).unwrap();
    let depth = corners[lowest][2];
    let u_min = px.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let u_max = px.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    let v_max = px.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let u_c = (u_min + u_max) / 2.0;
    // Solve u·(P₂₀x + P₂₁y + P₂₂z + P₂₃) = P₀₀x + P₀₁y + P₀₂z + P₀₃ for x at (y, z) = (bottom, depth).
    let (y, z) = (l.loc[1], depth);
    let x = (u_c * (p2[2][1] * y + p2[2][2] * z + p2[2][3])
        - (p2[0][1] * y + p2[0][2] * z + p2[0][3]))
        / (p2[0][0] - u_c * p2[2][0]);
    Truth {
        label: (l.loc[2], -l.loc[0]),
        contact: (depth, -x),
        dv_px: l.bbox[3] - v_max,
        du_px: (l.bbox[0] + l.bbox[2]) / 2.0 - u_c,
    }
}

// ---------------------------------------------------------------------------------------------
// Road planes and the homography

/// The road `y = a·x + b·z + c` in rectified camera coordinates (y down: `c` is the height of the
/// camera above the plane's extension below it, `b` the slope along the range — positive when
/// the road falls away —, `a` across).
#[derive(Debug, Clone, Copy)]
struct Plane {
    a: f64,
    b: f64,
    c: f64,
}

impl Plane {
    fn level(h: f64) -> Self {
        Self {
            a: 0.0,
            b: 0.0,
            c: h,
        }
    }

    fn y_at(&self, x: f64, z: f64) -> f64 {
        self.a * x + self.b * z + self.c
    }

    /// The plane in words. Signs: y is down, so `b > 0` means the road falls away ahead and
    /// `a < 0` that it falls to the left (x is right).
    fn describe(&self) -> String {
        format!(
            "y = {:+.4}·x {:+.4}·z {:+.3}: {:.3} m below the camera at x = z = 0, falls {:+.2}° ahead, {:+.2}° to the left",
            self.a,
            self.b,
            self.c,
            self.c,
            self.b.atan().to_degrees(),
            // `+ 0.0` turns −0 into 0 for print.
            (-self.a).atan().to_degrees() + 0.0,
        )
    }
}

/// Solves `A·x = b` (n ≤ 3) by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let piv = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        assert!(a[piv][col].abs() > 1e-12, "plane fit is singular");
        a.swap(col, piv);
        b.swap(col, piv);
        let pivot_row = a[col].clone();
        for r in col + 1..n {
            let f = a[r][col] / pivot_row[col];
            for (x, p) in a[r].iter_mut().zip(&pivot_row).skip(col) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x
}

/// Least-squares road plane through the bottom centres of labelled 3D boxes, with as many
/// parameters as the points support: 1 point → level (`c`), 2 → slope along the range and
/// height (`b`, `c`; the range slope is what moves distances), ≥ 3 → the full plane.
fn fit_plane(points: &[[f64; 3]]) -> Plane {
    assert!(
        !points.is_empty(),
        "no labelled object to fit a road plane to"
    );
    let columns = points.len().min(3);
    let design = |p: &[f64; 3]| -> Vec<f64> {
        match columns {
            1 => vec![1.0],
            2 => vec![p[2], 1.0],
            _ => vec![p[0], p[2], 1.0],
        }
    };
    let mut ata = vec![vec![0.0; columns]; columns];
    let mut aty = vec![0.0; columns];
    for p in points {
        let d = design(p);
        for i in 0..columns {
            for j in 0..columns {
                ata[i][j] += d[i] * d[j];
            }
            aty[i] += d[i] * p[1];
        }
    }
    let s = solve(ata, aty);
    match columns {
        1 => Plane::level(s[0]),
        2 => Plane {
            a: 0.0,
            b: s[0],
            c: s[1],
        },
        _ => Plane {
            a: s[0],
            b: s[1],
            c: s[2],
        },
    }
}

/// The road as the LiDAR's mounting defines it: the Velodyne's z axis taken as the vertical and
/// the road 1.73 m below it (KITTI's setup). `R0_rect · Tr_velo_to_cam` puts both into the
/// rectified frame.
fn lidar_plane(cal: &Calib) -> Plane {
    let r = &cal.r0;
    let t = &cal.velo_to_cam;
    // up (Velodyne +z) and the Velodyne origin, in rectified coordinates.
    let up: [f64; 3] = std::array::from_fn(|i| (0..3).map(|k| r[i][k] * t[k][2]).sum());
    let origin: [f64; 3] = std::array::from_fn(|i| (0..3).map(|k| r[i][k] * t[k][3]).sum());
    // Points p of the road: up·p = up·origin − 1.73.
    let k = (0..3).map(|i| up[i] * origin[i]).sum::<f64>() - VELODYNE_HEIGHT_M;
    Plane {
        a: -up[0] / up[1],
        b: -up[2] / up[1],
        c: k / up[1],
    }
}

fn inverse3(m: &Mat3) -> Mat3 {
    let cof = |r: usize, c: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
        m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]
    };
    let det: f64 = (0..3).map(|c| m[0][c] * cof(0, c)).sum();
    assert!(det.abs() > 1e-12, "ground → image matrix is singular");
    std::array::from_fn(|r| std::array::from_fn(|c| cof(c, r) / det))
}

/// Image (this project's pixels: centre of the top-left pixel = (0.5, 0.5)) → (forward, left)
/// on `plane`. A plane point with forward `f` and left `l` is `X = (−l, −a·l + b·f + c, f)`, so
/// `G = S · P2 · M` maps (f, l, 1) to pixels (`S` adds the half pixel between KITTI's
/// integer-centre pixels and ours), and `H = G⁻¹`. `P2`'s third row is (0, 0, 1, t) with t ≈ 5 mm,
/// so the homogeneous scale is the depth, and H's `W` is positive below the horizon as the crate
/// requires (`Homography::project` refuses anything else — a sign error cannot go unnoticed).
fn ground_homography(p2: &Mat34, plane: Plane) -> Homography {
    let m: [[f64; 3]; 4] = [
        [0.0, -1.0, 0.0],
        [plane.b, -plane.a, plane.c],
        [1.0, 0.0, 0.0],
        [0.0, 0.0, 1.0],
    ];
    let pm: Mat3 =
        std::array::from_fn(|r| std::array::from_fn(|c| (0..4).map(|k| p2[r][k] * m[k][c]).sum()));
    let g: Mat3 = [
        std::array::from_fn(|c| pm[0][c] + 0.5 * pm[2][c]),
        std::array::from_fn(|c| pm[1][c] + 0.5 * pm[2][c]),
        pm[2],
    ];
    Homography::from_rows(inverse3(&g)).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The measurement

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    /// Plane fitted per frame to that frame's labelled objects.
    PerFrame,
    /// Level road 1.65 m below the camera: KITTI as built.
    Nominal,
    /// One plane fitted to the labelled objects of all three frames: one calibration.
    Global,
    /// The Velodyne's mounting: its z axis vertical, 1.73 m above the road.
    Lidar,
}

const MODELS: [Model; 4] = [Model::PerFrame, Model::Nominal, Model::Global, Model::Lidar];

impl Model {
    fn name(self) -> &'static str {
        match self {
            Model::PerFrame => "per-frame plane from the labels",
            Model::Nominal => "level, 1.65 m (KITTI as built)",
            Model::Global => "one plane fitted over all 3 frames",
            Model::Lidar => "LiDAR mounting (Velodyne z up, 1.73 m)",
        }
    }
}

struct Frame {
    calib: Calib,
    labels: Vec<Label>,
    size: (u32, u32),
    image: PathBuf,
}

/// One evaluated object under one model.
struct Row {
    label: Label,
    truth: Truth,
    /// (forward, left) per model, in `MODELS` order.
    ours: Vec<(f64, f64)>,
    /// Road height below the camera under the object, per model (`plane.y_at(x, z)`).
    plane_y: Vec<f64>,
}

fn pct(ours: f64, truth: f64) -> f64 {
    100.0 * (ours - truth) / truth
}

/// Runs every evaluated label of `frame` through the daemon's BEV projection.
fn measure(frame: &Frame, h: &Homography) -> Vec<(usize, (f64, f64))> {
    let mut index = Vec::new();
    let detections: Vec<ImageDetection> = frame
        .labels
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let class = road_user(&l.kind)?;
            index.push(i);
            // KITTI pixel (integer = centre) + 0.5 = this project's pixel (corner origin).
            let b = l.bbox.map(|v| (v + 0.5) as f32);
            Some(ImageDetection {
                bbox: BBox::new(b[0], b[1], b[2], b[3]),
                score: 1.0,
                label: l.kind.clone(),
                class,
            })
        })
        .collect();
    let bev = project_detections_in_image(h, &detections, frame.size);
    // Every evaluated box is inside the image and below the horizon: one the daemon dropped
    // would otherwise silently vanish from the table.
    assert_eq!(
        (bev.truncated, bev.above_horizon, bev.objects.len()),
        (0, 0, detections.len()),
        "{}: the daemon dropped boxes",
        frame.image.display()
    );
    bev.objects
        .iter()
        .map(|o| (index[o.detection], (o.x_m, o.y_m)))
        .collect()
}

#[test]
fn bev_range_matches_kitti_lidar_labels() {
    if !shared_data_present(TEST) {
        return;
    }
    let dir = repo_root().join("../shared/eval/kitti_object");
    // An older copy of the shared data may predate the KITTI frames: the same rule as for the
    // whole folder — say what is missing and skip, except under CI.
    if !dir.join("label_2").is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: {TEST} needs {} (DATA.md, \"Range accuracy\")",
            dir.display()
        );
        eprintln!(
            "SKIPPED {TEST}: needs {} (calib/, image_2/, label_2/ of KITTI frames 000000-000002; see DATA.md)",
            dir.display()
        );
        return;
    }
    let frames: Vec<Frame> = FRAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let image = dir.join(format!("image_2/{name}.png"));
            let size = image::image_dimensions(&image)
                .unwrap_or_else(|e| panic!("{}: {e}", image.display()));
            Frame {
                calib: read_calib(&dir.join(format!("calib/{name}.txt"))),
                labels: read_labels(&dir.join(format!("label_2/{name}.txt")), i),
                size,
                image,
            }
        })
        .collect();

    // ---- the road planes. Every labelled 3D box (DontCare has none) stands on the road, so
    // its bottom centre is a road point measured by the LiDAR.
    let road_points = |f: &Frame| -> Vec<[f64; 3]> {
        f.labels
            .iter()
            .filter(|l| l.kind != "DontCare")
            .map(|l| l.loc)
            .collect()
    };
    let all_points: Vec<[f64; 3]> = frames.iter().flat_map(road_points).collect();
    let global = fit_plane(&all_points);
    let global_level = all_points.iter().map(|p| p[1]).sum::<f64>() / all_points.len() as f64;
    let spread = (all_points
        .iter()
        .map(|p| (p[1] - global_level).powi(2))
        .sum::<f64>()
        / all_points.len() as f64)
        .sqrt();
    let mut report = String::new();
    writeln!(report, "## Road planes (rectified camera, y down)\n").unwrap();
    writeln!(
        report,
        "- road points (3D box bottom centres, all frames): {}",
        all_points
            .iter()
            .map(|p| format!("({:.2}, {:.2}, {:.2})", p[0], p[1], p[2]))
            .collect::<Vec<_>>()
            .join(" ")
    )
    .unwrap();
    writeln!(
        report,
        "- level fit over all frames: y = {global_level:.3} m (rms spread {spread:.3} m) vs KITTI's {NOMINAL_HEIGHT_M} m"
    )
    .unwrap();
    writeln!(
        report,
        "- tilted fit over all frames: {}",
        global.describe()
    )
    .unwrap();
    let mut planes: Vec<[Plane; 4]> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let pts = road_points(f);
        let per_frame = fit_plane(&pts);
        let lidar = lidar_plane(&f.calib);
        writeln!(
            report,
            "- frame {i}, road points: {}; plane {}",
            pts.len(),
            per_frame.describe()
        )
        .unwrap();
        writeln!(report, "  - LiDAR mounting: {}", lidar.describe()).unwrap();
        planes.push([per_frame, Plane::level(NOMINAL_HEIGHT_M), global, lidar]);
    }

    // ---- project every evaluated object under every model
    let mut rows: Vec<Row> = Vec::new();
    for (fi, f) in frames.iter().enumerate() {
        let per_model: Vec<Vec<(usize, (f64, f64))>> = planes[fi]
            .iter()
            .map(|plane| measure(f, &ground_homography(&f.calib.p2, *plane)))
            .collect();
        for (k, &(li, _)) in per_model[0].iter().enumerate() {
            let l = &f.labels[li];
            rows.push(Row {
                label: l.clone(),
                truth: truth(l, &f.calib.p2),
                ours: per_model.iter().map(|m| m[k].1).collect(),
                plane_y: planes[fi]
                    .iter()
                    .map(|p| p.y_at(l.loc[0], l.loc[2]))
                    .collect(),
            });
        }
    }
    rows.sort_by(|a, b| a.truth.contact.0.total_cmp(&b.truth.contact.0));
    assert_eq!(rows.len(), 5, "3 frames hold 5 evaluated road users");

    // ---- tables
    writeln!(report, "\n## Labels vs the projected LiDAR boxes\n").unwrap();
    writeln!(report, "| object | trunc. | occl. | 3D box h×w×l m | ry rad | label z m | contact z m (near-edge offset) | 2D box bottom − projected 3D box bottom px | centre column Δ px |").unwrap();
    writeln!(report, "|---|---|---|---|---|---|---|---|---|").unwrap();
    for r in &rows {
        let l = &r.label;
        writeln!(
            report,
            "| {} | {:.2} | {} | {:.2}×{:.2}×{:.2} | {:+.2} | {:.2} | {:.2} ({:.2}) | {:+.2} | {:+.2} |",
            l.short_name(),
            l.truncated,
            l.occluded,
            l.hwl[0],
            l.hwl[1],
            l.hwl[2],
            l.ry,
            r.truth.label.0,
            r.truth.contact.0,
            r.truth.label.0 - r.truth.contact.0,
            r.truth.dv_px,
            r.truth.du_px
        )
        .unwrap();
    }
    for (mi, model) in MODELS.iter().enumerate() {
        writeln!(report, "\n## {}\n", model.name()).unwrap();
        writeln!(report, "| object | road below camera at object m | true contact m | ours m | error m | error % | label z m | error vs label % | left: contact / ours / label m |").unwrap();
        writeln!(report, "|---|---|---|---|---|---|---|---|---|").unwrap();
        for r in &rows {
            let (f, left) = r.ours[mi];
            let (cf, cl) = r.truth.contact;
            let (lf, ll) = r.truth.label;
            writeln!(
                report,
                "| {} | {:.2} (label {:.2}) | {:.2} | {:.2} | {:+.2} | {:+.1} | {:.2} | {:+.1} | {:.2} / {:.2} / {:.2} |",
                r.label.short_name(),
                r.plane_y[mi],
                r.label.loc[1],
                cf,
                f,
                f - cf,
                pct(f, cf),
                lf,
                pct(f, lf),
                cl,
                left,
                ll
            )
            .unwrap();
        }
    }
    println!("{report}");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("kitti_range");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("table.md"), &report).unwrap();
    draw_bev(&rows, &out.join("range_bev.png"));
    for (fi, f) in frames.iter().enumerate() {
        draw_frame(f, &rows, fi, &out.join(format!("frame_{}.png", FRAMES[fi])));
    }
    println!("pictures and table: {}", out.display());

    // ---- what must hold
    for r in &rows {
        let name = r.label.short_name();
        // The data is read as meant: the LiDAR box, projected with P2, lands on the labelled
        // 2D box (within 1 px at the bottom edge, which decides the range).
        assert!(
            r.truth.dv_px.abs() <= 1.0,
            "{name}: 2D box bottom vs projected 3D box: {:+.2} px",
            r.truth.dv_px
        );

        // Per-frame plane: fitted to the frame's own labelled objects (1, 3 and 2 road points
        // for as many plane parameters), so it passes through each object's label location —
        // the road height under the object is *given*, deliberately. What remains is what the
        // BEV projection itself gets right: P2, the pixel conventions, the homography, the
        // daemon's box-bottom rule, the 2D box annotation. Compared with the physically
        // corresponding point (the nearest bottom corner's depth) the requirement holds:
        // ≤ 5 % below 40 m, ≤ 10 % up to 70 m (worst: the truck at 63 m, +4.3 %, of which
        // +3.5 % is its 2D box bottom 0.6 px above the projected LiDAR box at 3.7 m/px; the car
        // at 32 m, −3.0 %, has a flat box bottom while the road fitted through it and the
        // trailer at 9 m falls 1.5°, so the plane lies 6 cm above its near edge).
        let pf = Model::PerFrame as usize;
        let (cf, cl) = r.truth.contact;
        let (f, left) = r.ours[pf];
        let limit = if cf < 40.0 { 5.0 } else { 10.0 };
        assert!(cf <= 70.0, "{name}: beyond the specified 70 m");
        assert!(
            pct(f, cf).abs() <= limit,
            "{name}: per-frame plane: {f:.2} m vs contact {cf:.2} m ({:+.1} %, limit {limit} %)",
            pct(f, cf)
        );
        // Lateral, against the contact point's: within 0.3 m (measured ≤ 0.10 m). Against the
        // label x the car 16 m to the left at 57 m is 0.5 m off: its 2D box also spans its
        // visible side face, so the box's centre column is not the 3D box's centre — the
        // contact point is placed on that column for this reason.
        assert!(
            (left - cl).abs() <= 0.3,
            "{name}: lateral {left:.2} m vs {cl:.2} m"
        );
        // Raw comparison with the label location (3D box centre): the box bottom is its near
        // edge, so the BEV range is short of the label z — by about l/2 for a car seen from
        // behind (2.2 m for a 4.4 m car: −6 % at 34 m). Not a fault; asserted as a sign, the
        // numbers are in the table.
        assert!(
            f < r.truth.label.0,
            "{name}: {f:.2} m is beyond the 3D box centre {:.2} m",
            r.truth.label.0
        );

        // One static calibration (what the product has: one H per camera) — the nominal 1.65 m
        // level road or one plane fitted over all three frames — does NOT meet 5 %/10 %: the
        // road under these objects is 1.32 … 2.39 m below the camera (slopes, the car's pitch),
        // and a ground-plane range scales with the assumed height (δr/r ≈ δh/h: 2.27 m vs
        // 1.65 m → −27 %). Asserted is what is achieved, ≤ 35 %, so a regression still shows.
        // And the cause is checked, not just claimed: each static error is the ratio of the
        // assumed road height under the object to the LiDAR-measured one (label y), within
        // 5 points (the rest is the 2D box: the truck's 0.6 px).
        for m in [Model::Nominal, Model::Global] {
            let (f, _) = r.ours[m as usize];
            assert!(
                pct(f, cf).abs() <= 35.0,
                "{name}: {}: {f:.2} m vs {cf:.2} m ({:+.1} %)",
                m.name(),
                pct(f, cf)
            );
            let predicted = 100.0 * (r.plane_y[m as usize] / r.label.loc[1] - 1.0);
            assert!(
                (pct(f, cf) - predicted).abs() <= 5.0,
                "{name}: {}: error {:+.1} % but the road height ratio predicts {predicted:+.1} %",
                m.name(),
                pct(f, cf)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pictures

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([215, 215, 215]);
const TRUTH: Rgb<u8> = Rgb([0, 150, 60]);
const OURS: Rgb<u8> = Rgb([220, 30, 30]);
const NOMINAL: Rgb<u8> = Rgb([240, 140, 0]);
const GLOBAL: Rgb<u8> = Rgb([40, 90, 230]);

struct Canvas {
    img: RgbImage,
    font: Option<FontRef<'static>>,
}

impl Canvas {
    fn new(img: RgbImage) -> Self {
        Self {
            img,
            font: FontRef::try_from_slice(FONT_BYTES).ok(),
        }
    }

    fn text(&mut self, colour: Rgb<u8>, x: i32, y: i32, size: f32, text: &str) {
        if let Some(font) = &self.font {
            draw_text_mut(&mut self.img, colour, x, y, PxScale::from(size), font, text);
        }
    }

    fn line(&mut self, a: (f32, f32), b: (f32, f32), colour: Rgb<u8>) {
        draw_line_segment_mut(&mut self.img, a, b, colour);
    }

    fn thick_line(&mut self, a: (f32, f32), b: (f32, f32), colour: Rgb<u8>) {
        for d in [-0.5f32, 0.5] {
            self.line((a.0 + d, a.1), (b.0 + d, b.1), colour);
            self.line((a.0, a.1 + d), (b.0, b.1 + d), colour);
        }
    }

    fn cross(&mut self, (x, y): (f32, f32), r: f32, colour: Rgb<u8>) {
        self.thick_line((x - r, y - r), (x + r, y + r), colour);
        self.thick_line((x - r, y + r), (x + r, y - r), colour);
    }

    fn square(&mut self, (x, y): (f32, f32), r: i32, colour: Rgb<u8>) {
        let (x, y) = (x.round() as i32, y.round() as i32);
        for k in 0..2 {
            let s = (2 * (r + k)) as u32;
            draw_hollow_rect_mut(
                &mut self.img,
                Rect::at(x - r - k, y - r - k).of_size(s, s),
                colour,
            );
        }
    }

    fn ring(&mut self, (x, y): (f32, f32), r: i32, colour: Rgb<u8>) {
        let c = (x.round() as i32, y.round() as i32);
        draw_hollow_circle_mut(&mut self.img, c, r, colour);
        draw_hollow_circle_mut(&mut self.img, c, r + 1, colour);
    }
}

/// Bird's-eye view of all evaluated objects (frames overlaid; camera at the bottom centre):
/// true footprints and contact points, and where the BEV puts them under three road models.
/// No KITTI pixels in it, so it may live in docs/.
fn draw_bev(rows: &[Row], path: &Path) {
    const S: f32 = 11.0; // px per metre
    const FWD: f32 = 78.0;
    const LAT: f32 = 20.0;
    let (x0, y0) = (60.0f32, 70.0f32);
    let plot_w = 2.0 * LAT * S;
    let plot_h = FWD * S;
    let panel = 700u32;
    let (w, h) = ((x0 + plot_w) as u32 + 30 + panel, (y0 + plot_h) as u32 + 50);
    let mut c = Canvas::new(RgbImage::from_pixel(w, h, WHITE));
    let to_px = |fwd: f64, left: f64| (x0 + (LAT - left as f32) * S, y0 + (FWD - fwd as f32) * S);

    for m in (0..=FWD as i32).step_by(10) {
        let (_, y) = to_px(f64::from(m), 0.0);
        c.line((x0, y), (x0 + plot_w, y), GRID);
        c.text(BLACK, 8, y as i32 - 8, 15.0, &format!("{m:>2} m"));
    }
    for m in (-(LAT as i32)..=LAT as i32).step_by(5) {
        let (x, _) = to_px(0.0, f64::from(m));
        c.line((x, y0), (x, y0 + plot_h), GRID);
        if m % 10 == 0 {
            c.text(
                BLACK,
                x as i32 - 12,
                (y0 + plot_h) as i32 + 6,
                15.0,
                &if m == 0 {
                    "0".to_string()
                } else {
                    format!("{m:+}")
                },
            );
        }
    }
    c.text(
        BLACK,
        x0 as i32,
        8,
        20.0,
        "KITTI range: BEV vs LiDAR labels (forward up, left to the left)",
    );
    c.text(
        BLACK,
        x0 as i32,
        34,
        15.0,
        "3 frames overlaid; camera at the bottom centre; grid 10 m x 5 m",
    );
    let cam = to_px(0.0, 0.0);
    c.thick_line((cam.0 - 8.0, cam.1), (cam.0, cam.1 - 14.0), BLACK);
    c.thick_line((cam.0 + 8.0, cam.1), (cam.0, cam.1 - 14.0), BLACK);

    for r in rows {
        let l = &r.label;
        let corners = l.corners();
        for i in 0..4 {
            let (a, b) = (corners[i], corners[(i + 1) % 4]);
            c.thick_line(to_px(a[2], -a[0]), to_px(b[2], -b[0]), TRUTH);
        }
        let contact = to_px(r.truth.contact.0, r.truth.contact.1);
        for (mi, colour) in [
            (Model::Nominal, NOMINAL),
            (Model::Global, GLOBAL),
            (Model::PerFrame, OURS),
        ] {
            let (f, left) = r.ours[mi as usize];
            let p = to_px(f, left);
            c.line(contact, p, colour);
            match mi {
                Model::PerFrame => {
                    draw_filled_circle_mut(&mut c.img, (p.0 as i32, p.1 as i32), 4, colour)
                }
                Model::Nominal => c.ring(p, 6, colour),
                _ => c.square(p, 5, colour),
            }
        }
        c.cross(contact, 5.0, TRUTH);
        let label = to_px(r.truth.label.0, r.truth.label.1);
        draw_filled_circle_mut(&mut c.img, (label.0 as i32, label.1 as i32), 3, TRUTH);
        let right = corners
            .iter()
            .map(|p| to_px(p[2], -p[0]).0)
            .fold(f32::MIN, f32::max);
        c.text(
            BLACK,
            right as i32 + 8,
            label.1 as i32 - 8,
            15.0,
            &l.short_name(),
        );
    }

    // Legend and numbers.
    let px0 = (x0 + plot_w) as i32 + 30;
    let mut y = 80;
    let items: [(Rgb<u8>, &str); 6] = [
        (
            TRUTH,
            "green box: LiDAR 3D box footprint, dot: label location",
        ),
        (
            TRUTH,
            "green x: contact point (nearest bottom corner depth)",
        ),
        (OURS, "red dot: BEV, per-frame plane fitted to the labels"),
        (
            NOMINAL,
            "orange ring: BEV, level road 1.65 m (KITTI as built)",
        ),
        (
            GLOBAL,
            "blue square: BEV, one plane fitted over all 3 frames",
        ),
        (BLACK, "lines: from the contact point to each BEV point"),
    ];
    for (colour, text) in items {
        c.text(colour, px0, y, 16.0, text);
        y += 24;
    }
    y += 16;
    c.text(
        BLACK,
        px0,
        y,
        16.0,
        "forward distance of the contact point, m (error %)",
    );
    y += 28;
    for r in rows {
        let cf = r.truth.contact.0;
        c.text(
            BLACK,
            px0,
            y,
            16.0,
            &format!(
                "{}: true {:.1} (label centre {:.1})",
                r.label.short_name(),
                cf,
                r.truth.label.0
            ),
        );
        y += 22;
        for (m, colour) in [
            (Model::PerFrame, OURS),
            (Model::Nominal, NOMINAL),
            (Model::Global, GLOBAL),
        ] {
            let f = r.ours[m as usize].0;
            c.text(
                colour,
                px0 + 24,
                y,
                16.0,
                &format!("{:<36} {:6.1} ({:+5.1} %)", m.name(), f, pct(f, cf)),
            );
            y += 20;
        }
        y += 10;
    }
    y += 10;
    let notes = [
        "Why the static planes miss: the road under these objects",
        "lies 1.32 ... 2.39 m below the camera (other surfaces,",
        "slopes), and a ground-plane range scales with the assumed",
        "height: dr/r = dh/h. The per-frame plane passes through the",
        "labels: it isolates the projection (P2, pixels, box-bottom",
        "rule), not the road-plane problem. docs/RANGE.md",
    ];
    for text in notes {
        c.text(BLACK, px0, y, 16.0, text);
        y += 20;
    }
    let (xc, _) = to_px(0.0, 0.0);
    c.text(
        BLACK,
        xc as i32 - 60,
        (y0 + plot_h) as i32 + 22,
        15.0,
        "left of the camera, m",
    );
    c.img.save(path).unwrap();
}

/// One KITTI frame with each evaluated object's true and measured distance. It holds KITTI
/// pixels (CC BY-NC-SA): written to the target folder only, never into the repository.
fn draw_frame(f: &Frame, rows: &[Row], fi: usize, path: &Path) {
    const SIZE: f32 = 14.0;
    let mut c = Canvas::new(image::open(&f.image).unwrap().to_rgb8());
    let (w, h) = (f.size.0 as i32, f.size.1 as i32);
    // Text blocks already placed, as (x, y, width, height): a later block must not cover one.
    let mut placed: Vec<(i32, i32, i32, i32)> = Vec::new();
    for r in rows.iter().filter(|r| r.label.frame == fi) {
        let b = r.label.bbox.map(|v| v as f32 + 0.5);
        c.thick_line((b[0], b[1]), (b[2], b[1]), TRUTH);
        c.thick_line((b[0], b[1]), (b[0], b[3]), TRUTH);
        c.thick_line((b[2], b[1]), (b[2], b[3]), TRUTH);
        // The bottom edge and its centre: the pixel the daemon projects.
        c.thick_line((b[0], b[3]), (b[2], b[3]), OURS);
        c.cross(((b[0] + b[2]) / 2.0, b[3]), 4.0, OURS);
        let cf = r.truth.contact.0;
        let (pf, nom) = (
            r.ours[Model::PerFrame as usize].0,
            r.ours[Model::Nominal as usize].0,
        );
        let lines = [
            (
                WHITE,
                format!(
                    "{} true {:.1} m (centre {:.1})",
                    r.label.kind, cf, r.truth.label.0
                ),
            ),
            (
                Rgb([255, 120, 120]),
                format!("ours {:.1} m ({:+.1}%)", pf, pct(pf, cf)),
            ),
            (
                Rgb([255, 190, 60]),
                format!("1.65 m: {:.1} m ({:+.1}%)", nom, pct(nom, cf)),
            ),
        ];
        let bw = lines
            .iter()
            .map(|(_, t)| (t.chars().count() as f32 * SIZE * 0.6).ceil() as i32 + 4)
            .max()
            .unwrap_or(0);
        let bh = 3 * (SIZE as i32 + 2);
        // Beside the box (the side away from the image centre first, where the road and the far
        // objects are), at its top or stepped up; the first spot inside the image that
        // overlaps no earlier block wins.
        let overlaps = |x: i32, y: i32| {
            placed
                .iter()
                .any(|&(px, py, pw, ph)| x < px + pw && px < x + bw && y < py + ph && py < y + bh)
        };
        let outward_first = (b[0] + b[2]) / 2.0 >= w as f32 / 2.0;
        let candidates = (0..8).flat_map(|k| {
            let y = b[1] as i32 - 10 - k * (bh + 4);
            let (right, left) = ((b[2] as i32 + 6, y), (b[0] as i32 - 6 - bw, y));
            if outward_first {
                [right, left]
            } else {
                [left, right]
            }
        });
        let (x, y) = candidates
            .filter(|&(x, y)| x >= 0 && y >= 0 && x + bw <= w && y + bh <= h)
            .find(|&(x, y)| !overlaps(x, y))
            .unwrap_or((0, 0));
        placed.push((x, y, bw, bh));
        let anchor = if x > b[2] as i32 { b[2] } else { b[0] };
        c.line(
            (anchor, b[1]),
            ((x + bw / 2) as f32, (y + bh) as f32),
            WHITE,
        );
        draw_filled_rect_mut(
            &mut c.img,
            Rect::at(x, y).of_size(bw as u32, bh as u32),
            BLACK,
        );
        for (k, (colour, text)) in lines.iter().enumerate() {
            c.text(*colour, x + 2, y + k as i32 * (SIZE as i32 + 2), SIZE, text);
        }
    }
    c.img.save(path).unwrap();
}
