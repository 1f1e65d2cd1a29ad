//! A chessboard lying flat on the floor at a measured position: the ground positions of its inner
//! corners, and a canonical order for detected corners.
//!
//! # Board pose
//! A board with `cols × rows` inner corners (OpenCV's `patternSize`, e.g. 9×6) and square size
//! `s` lies on the ground. Corner `(i, j)` (`i < cols` along a row, `j < rows`) is at
//!
//! `origin + s·i·(cos ψ, sin ψ) + s·j·(sin ψ, −cos ψ)`
//!
//! where `origin` is the ground position of corner `(0, 0)` and `ψ` (yaw) the direction of the
//! rows, measured from `+x` (forward) towards `+y` (left). The columns run at `ψ − 90°`. A board
//! squarely in front of the vehicle with its long side across the lane has `ψ = 90°`: corner 0 is
//! its **near right** inner corner, the rows run to the left and the columns away from the
//! vehicle. Corners are listed row by row (`i` fastest), as OpenCV returns them.
//!
//! # Detected corner order
//! `findChessboardCorners` may start at any of the four board corners. [`canonical_order`] turns
//! a detected grid into the order above: of the four orderings of a `cols × rows` grid it keeps
//! the two with the handedness a camera above the floor sees (`(P₁₀ − P₀₀) × (P₀₁ − P₀₀) > 0` in
//! image coordinates), and of those the one whose corner 0 is lower in the image (nearer). This
//! assumes the board is roughly square to the camera (rows within ±60° of left/right).

use crate::homography::{GroundPoint, Pixel};

/// Pose and geometry of one board on the floor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloorBoard {
    /// Inner corners per row.
    pub cols: usize,
    /// Inner corners per column.
    pub rows: usize,
    /// Square size (metres).
    pub square_m: f64,
    /// Ground position of corner 0 (metres, vehicle frame).
    pub origin: GroundPoint,
    /// Direction of the rows (radians from +x towards +y).
    pub yaw: f64,
}

impl FloorBoard {
    /// Ground positions of the inner corners, row by row.
    pub fn ground_corners(&self) -> Vec<GroundPoint> {
        let (s, c) = self.yaw.sin_cos();
        let mut out = Vec::with_capacity(self.cols * self.rows);
        for j in 0..self.rows {
            for i in 0..self.cols {
                let (fi, fj) = (i as f64 * self.square_m, j as f64 * self.square_m);
                out.push(GroundPoint::new(
                    self.origin.x + fi * c + fj * s,
                    self.origin.y + fi * s - fj * c,
                ));
            }
        }
        out
    }
}

fn cross(o: Pixel, a: Pixel, b: Pixel) -> f64 {
    (a.u - o.u) * (b.v - o.v) - (a.v - o.v) * (b.u - o.u)
}

/// Reorders detected corners (`cols × rows`, row by row) into the canonical order (module docs).
/// `None` if the count is wrong or the grid is degenerate.
pub fn canonical_order(corners: &[Pixel], cols: usize, rows: usize) -> Option<Vec<Pixel>> {
    if cols < 2 || rows < 2 || corners.len() != cols * rows {
        return None;
    }
    let at = |i: usize, j: usize| corners[j * cols + i];
    let orderings: [&dyn Fn(usize, usize) -> Pixel; 4] = [
        &|i, j| at(i, j),
        &|i, j| at(cols - 1 - i, rows - 1 - j),
        &|i, j| at(cols - 1 - i, j),
        &|i, j| at(i, rows - 1 - j),
    ];
    let mut best: Option<Vec<Pixel>> = None;
    for f in orderings {
        let grid: Vec<Pixel> = (0..rows)
            .flat_map(|j| (0..cols).map(move |i| (i, j)))
            .map(|(i, j)| f(i, j))
            .collect();
        if cross(grid[0], grid[1], grid[cols]) <= 0.0 {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => grid[0].v > b[0].v,
        };
        if better {
            best = Some(grid);
        }
    }
    best
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::camera::{Intrinsics, Mounting, PinholeCamera};

    fn board() -> FloorBoard {
        FloorBoard {
            cols: 9,
            rows: 6,
            square_m: 0.1,
            origin: GroundPoint::new(3.0, -0.4),
            yaw: 90f64.to_radians(),
        }
    }

    #[test]
    fn ground_layout() {
        let g = board().ground_corners();
        assert_eq!(g.len(), 54);
        // Rows run left (+y), columns forward (+x).
        assert!((g[1].y - (-0.3)).abs() < 1e-12 && (g[1].x - 3.0).abs() < 1e-12);
        assert!((g[9].x - 3.1).abs() < 1e-12 && (g[9].y + 0.4).abs() < 1e-12);
    }

    #[test]
    fn every_detection_order_becomes_canonical() {
        let cam = PinholeCamera::new(
            Intrinsics::from_hfov(1280.0, 720.0, 60f64.to_radians()),
            Mounting {
                x: -1.5,
                y: 0.0,
                height: 1.3,
                pitch: 8f64.to_radians(),
                yaw: 0.0,
                roll: 0.0,
            },
        )
        .unwrap();
        let b = board();
        let truth: Vec<Pixel> = b
            .ground_corners()
            .iter()
            .map(|g| cam.project_point([g.x, g.y, 0.0]).unwrap())
            .collect();
        let (c, r) = (b.cols, b.rows);
        let at = |i: usize, j: usize| truth[j * c + i];
        let perms: [Box<dyn Fn(usize, usize) -> Pixel>; 4] = [
            Box::new(at),
            Box::new(|i, j| at(c - 1 - i, r - 1 - j)),
            Box::new(|i, j| at(c - 1 - i, j)),
            Box::new(|i, j| at(i, r - 1 - j)),
        ];
        for p in perms {
            let detected: Vec<Pixel> = (0..r)
                .flat_map(|j| (0..c).map(move |i| (i, j)))
                .map(|(i, j)| p(i, j))
                .collect();
            assert_eq!(canonical_order(&detected, c, r).unwrap(), truth);
        }
        assert!(canonical_order(&truth[..10], c, r).is_none());
    }
}
