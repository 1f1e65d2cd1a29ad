//! The validation report: the camera image with a metric ground grid, the calibration points and
//! their reprojections, a warped bird's-eye view with the corridor, and the uncertainty table.

use ab_glyph::{FontRef, PxScale};
use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_rect_mut, draw_hollow_circle_mut, draw_line_segment_mut, draw_text_mut,
};
use imageproc::rect::Rect;

use crate::bev::BevRaster;
use crate::homography::{GroundPoint, Homography, Pixel};
use crate::solve::PointPair;

/// DejaVu Sans Mono (licence: `calibration/assets/DejaVu-LICENSE.txt`), the one font every picture
/// of the project is drawn with.
pub static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

/// One row of the uncertainty table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UncertaintyRow {
    /// Distance ahead on the centre line (metres).
    pub distance_m: f64,
    /// Image row of that ground point; `None` if it is not in front of the camera.
    pub row_px: Option<f64>,
    /// Whether that pixel lies inside the image.
    pub in_image: bool,
    /// Ground displacement (metres) for a 1 px shift of the box bottom edge (vertical).
    pub metres_per_px_v: Option<f64>,
    /// Ground displacement (metres) for a 1 px horizontal shift.
    pub metres_per_px_u: Option<f64>,
}

/// How far ±1 px in the box bottom edge moves the ground point at each distance (centre line).
pub fn uncertainty_table(
    h: &Homography,
    width: u32,
    height: u32,
    distances: &[f64],
) -> Vec<UncertaintyRow> {
    distances
        .iter()
        .map(|&d| {
            let px = h.to_image(d, 0.0).ok();
            let s = h.ground_sensitivity_at_ground(d, 0.0).ok();
            UncertaintyRow {
                distance_m: d,
                row_px: px.map(|p| p.v),
                in_image: px.is_some_and(|p| {
                    (0.0..=f64::from(width)).contains(&p.u)
                        && (0.0..=f64::from(height)).contains(&p.v)
                }),
                metres_per_px_v: s.map(|s| s.metres_per_px_v()),
                metres_per_px_u: s.map(|s| s.metres_per_px_u()),
            }
        })
        .collect()
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    /// The calibrated camera image (same size as the calibration).
    pub image: &'a RgbImage,
    /// The homography.
    pub homography: &'a Homography,
    /// Calibration points (pixels as measured, i.e. in the image as given).
    pub points: &'a [PointPair],
    /// Bird's-eye raster.
    pub bev: BevRaster,
    /// Corridor half width (metres), drawn from x = 0 to the far end of the raster.
    pub corridor_half_width_m: f64,
    /// Text lines for the panel under the pictures.
    pub text: Vec<String>,
}

const GRID_1M: Rgb<u8> = Rgb([150, 150, 150]);
const GRID_5M: Rgb<u8> = Rgb([255, 255, 255]);
const MEASURED: Rgb<u8> = Rgb([40, 220, 40]);
const REPROJ: Rgb<u8> = Rgb([255, 40, 40]);
const CORRIDOR: Rgb<u8> = Rgb([255, 200, 0]);
const HORIZON: Rgb<u8> = Rgb([80, 160, 255]);

fn blend(p: &mut Rgb<u8>, c: Rgb<u8>, a: f32) {
    for k in 0..3 {
        p.0[k] = (f32::from(p.0[k]) * (1.0 - a) + f32::from(c.0[k]) * a).round() as u8;
    }
}

fn thick_line(img: &mut RgbImage, a: (f32, f32), b: (f32, f32), c: Rgb<u8>, thick: bool) {
    draw_line_segment_mut(img, a, b, c);
    if thick {
        draw_line_segment_mut(img, (a.0 + 1.0, a.1), (b.0 + 1.0, b.1), c);
        draw_line_segment_mut(img, (a.0, a.1 + 1.0), (b.0, b.1 + 1.0), c);
    }
}

/// Draws a ground polyline into the camera image, skipping parts behind the camera or beyond
/// the horizon, with `offset` added to the image coordinates.
fn ground_polyline(
    img: &mut RgbImage,
    h: &Homography,
    pts: &[GroundPoint],
    offset: (f32, f32),
    c: Rgb<u8>,
    thick: bool,
    clip: (f64, f64),
) {
    let mut prev: Option<Pixel> = None;
    for g in pts {
        let cur = h
            .to_image(g.x, g.y)
            .ok()
            .filter(|p| p.u > -clip.0 && p.u < 2.0 * clip.0 && p.v > -clip.1 && p.v < 2.0 * clip.1);
        if let (Some(a), Some(b)) = (prev, cur) {
            thick_line(
                img,
                (a.u as f32 + offset.0, a.v as f32 + offset.1),
                (b.u as f32 + offset.0, b.v as f32 + offset.1),
                c,
                thick,
            );
        }
        prev = cur;
    }
}

fn sample_bilinear(img: &RgbImage, u: f64, v: f64) -> Option<Rgb<u8>> {
    // Continuous corner-origin coordinates: pixel centres at k + 0.5.
    let (x, y) = (u - 0.5, v - 0.5);
    let (w, hh) = (f64::from(img.width()), f64::from(img.height()));
    if !(x >= 0.0 && y >= 0.0 && x <= w - 1.0 && y <= hh - 1.0) {
        return None;
    }
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = (
        (x0 + 1).min(img.width() - 1),
        (y0 + 1).min(img.height() - 1),
    );
    let p = |xx, yy| img.get_pixel(xx, yy).0;
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0u8; 3];
    for k in 0..3 {
        let top = f64::from(a[k]) * (1.0 - fx) + f64::from(b[k]) * fx;
        let bot = f64::from(c[k]) * (1.0 - fx) + f64::from(d[k]) * fx;
        out[k] = (top * (1.0 - fy) + bot * fy).round() as u8;
    }
    Some(Rgb(out))
}

/// The warped bird's-eye view: every BEV pixel centre is mapped to the ground, through `H⁻¹`
/// into the image and sampled bilinearly; pixels the camera does not see are dark grey.
pub fn warp_bev(image: &RgbImage, h: &Homography, bev: &BevRaster) -> RgbImage {
    RgbImage::from_fn(bev.width, bev.height, |c, r| {
        let g = bev.ground_of(f64::from(c) + 0.5, f64::from(r) + 0.5);
        h.to_image(g.x, g.y)
            .ok()
            .and_then(|p| sample_bilinear(image, p.u, p.v))
            .unwrap_or(Rgb([40, 40, 40]))
    })
}

fn steps(lo: f64, hi: f64, step: f64) -> impl Iterator<Item = f64> {
    let start = (lo / step).ceil() as i64;
    let end = (hi / step).floor() as i64;
    (start..=end).map(move |k| k as f64 * step)
}

fn densify(a: GroundPoint, b: GroundPoint, n: usize) -> Vec<GroundPoint> {
    (0..=n)
        .map(|k| {
            let t = k as f64 / n as f64;
            GroundPoint::new(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t)
        })
        .collect()
}

/// Renders the report picture.
pub fn render_report(input: &ReportInput<'_>) -> RgbImage {
    let font = FontRef::try_from_slice(FONT_BYTES).ok();
    let img = input.image;
    let h = input.homography;
    let bev = &input.bev;
    let (iw, ih) = (img.width(), img.height());
    let gap = 12u32;
    let line_h = 18u32;
    let text_h = line_h * (input.text.len() as u32 + 1) + 8;
    let top_h = ih.max(bev.height);
    let cw = iw + gap + bev.width;
    let ch = 24 + top_h + text_h;
    let mut out = RgbImage::from_pixel(cw, ch, Rgb([20, 20, 24]));
    let title_y = 4;
    let scale = PxScale::from(15.0);
    let (ox, oy) = (0u32, 24u32);
    let (bx, by) = (iw + gap, 24u32);

    // --- Camera image with the corridor tinted, the grid, the horizon and the points.
    let mut cam = img.clone();
    let corridor = |g: &GroundPoint| {
        g.x >= 0.0 && g.x <= bev.x_max && g.y.abs() <= input.corridor_half_width_m
    };
    for (u, v, p) in cam.enumerate_pixels_mut() {
        if let Ok(g) = h.project(f64::from(u) + 0.5, f64::from(v) + 0.5) {
            if corridor(&g) {
                blend(p, CORRIDOR, 0.25);
            }
        }
    }
    let clip = (f64::from(iw), f64::from(ih));
    let (x_lo, x_hi) = (bev.x_min.max(0.0), bev.x_max);
    let (y_lo, y_hi) = (bev.y_min, bev.y_max);
    for y in steps(y_lo, y_hi, 1.0) {
        let five = (y / 5.0).round() * 5.0 == y;
        let line = densify(GroundPoint::new(x_lo, y), GroundPoint::new(x_hi, y), 200);
        let c = if five { GRID_5M } else { GRID_1M };
        ground_polyline(&mut cam, h, &line, (0.0, 0.0), c, five, clip);
    }
    for x in steps(x_lo, x_hi, 1.0) {
        let five = (x / 5.0).round() * 5.0 == x;
        let line = densify(GroundPoint::new(x, y_lo), GroundPoint::new(x, y_hi), 100);
        let c = if five { GRID_5M } else { GRID_1M };
        ground_polyline(&mut cam, h, &line, (0.0, 0.0), c, five, clip);
    }
    for side in [-1.0, 1.0] {
        let y = side * input.corridor_half_width_m;
        let line = densify(GroundPoint::new(0.0, y), GroundPoint::new(x_hi, y), 200);
        ground_polyline(&mut cam, h, &line, (0.0, 0.0), CORRIDOR, true, clip);
    }
    if let (Some(a), Some(b)) = (h.horizon_v(0.0), h.horizon_v(f64::from(iw))) {
        draw_line_segment_mut(&mut cam, (0.0, a as f32), (iw as f32, b as f32), HORIZON);
    }
    if let Some(f) = &font {
        for x in steps(x_lo, x_hi, 5.0).filter(|x| *x > 0.0) {
            if let Ok(p) = h.to_image(x, 0.0) {
                if p.u >= 0.0 && p.u < clip.0 - 40.0 && p.v >= 14.0 && p.v < clip.1 {
                    let label = format!("{x:.0} m");
                    let (lx, ly) = (p.u as i32 + 4, p.v as i32 - 16);
                    draw_text_mut(&mut cam, Rgb([0, 0, 0]), lx + 1, ly + 1, scale, f, &label);
                    draw_text_mut(&mut cam, GRID_5M, lx, ly, scale, f, &label);
                }
            }
        }
    }
    for p in input.points {
        let m = p.pixel;
        draw_hollow_circle_mut(&mut cam, (m.u as i32, m.v as i32), 6, MEASURED);
        draw_hollow_circle_mut(&mut cam, (m.u as i32, m.v as i32), 7, MEASURED);
        if let Ok(r) = h.to_image(p.ground.x, p.ground.y) {
            let (x, y) = (r.u as f32, r.v as f32);
            draw_line_segment_mut(&mut cam, (x - 5.0, y - 5.0), (x + 5.0, y + 5.0), REPROJ);
            draw_line_segment_mut(&mut cam, (x - 5.0, y + 5.0), (x + 5.0, y - 5.0), REPROJ);
            draw_line_segment_mut(&mut cam, (m.u as f32, m.v as f32), (x, y), REPROJ);
        }
    }
    image::imageops::replace(&mut out, &cam, i64::from(ox), i64::from(oy));

    // --- Bird's-eye view.
    let mut b = warp_bev(img, h, bev);
    for (c, r, p) in b.enumerate_pixels_mut() {
        let g = bev.ground_of(f64::from(c) + 0.5, f64::from(r) + 0.5);
        if corridor(&g) {
            blend(p, CORRIDOR, 0.2);
        }
    }
    let bev_line = |b: &mut RgbImage, g0: GroundPoint, g1: GroundPoint, c, thick| {
        let (c0, r0) = bev.pixel_of(g0);
        let (c1, r1) = bev.pixel_of(g1);
        thick_line(b, (c0 as f32, r0 as f32), (c1 as f32, r1 as f32), c, thick);
    };
    for x in steps(bev.x_min, bev.x_max, 1.0) {
        let five = (x / 5.0).round() * 5.0 == x;
        if five || bev.k_x() < 0.1 {
            let c = if five { GRID_5M } else { GRID_1M };
            bev_line(
                &mut b,
                GroundPoint::new(x, y_lo),
                GroundPoint::new(x, y_hi),
                c,
                five,
            );
        }
    }
    for y in steps(y_lo, y_hi, 1.0) {
        let five = (y / 5.0).round() * 5.0 == y;
        if five || bev.k_y() < 0.1 {
            let c = if five { GRID_5M } else { GRID_1M };
            bev_line(
                &mut b,
                GroundPoint::new(x_lo, y),
                GroundPoint::new(x_hi, y),
                c,
                five,
            );
        }
    }
    for side in [-1.0, 1.0] {
        let y = side * input.corridor_half_width_m;
        bev_line(
            &mut b,
            GroundPoint::new(0.0, y),
            GroundPoint::new(bev.x_max, y),
            CORRIDOR,
            true,
        );
    }
    for p in input.points {
        let (c, r) = bev.pixel_of(p.ground);
        draw_hollow_circle_mut(&mut b, (c as i32, r as i32), 5, MEASURED);
        if let Ok(g) = h.project(p.pixel.u, p.pixel.v) {
            let (c2, r2) = bev.pixel_of(g);
            let (x, y) = (c2 as f32, r2 as f32);
            draw_line_segment_mut(&mut b, (x - 4.0, y - 4.0), (x + 4.0, y + 4.0), REPROJ);
            draw_line_segment_mut(&mut b, (x - 4.0, y + 4.0), (x + 4.0, y - 4.0), REPROJ);
        }
    }
    if let Some(f) = &font {
        for x in steps(bev.x_min, bev.x_max, 5.0).filter(|x| *x > bev.x_min) {
            let (c, r) = bev.pixel_of(GroundPoint::new(x, y_hi));
            let label = format!("{x:.0} m");
            draw_text_mut(
                &mut b,
                GRID_5M,
                c as i32 + 3,
                r as i32 + 2,
                scale,
                f,
                &label,
            );
        }
    }
    image::imageops::replace(&mut out, &b, i64::from(bx), i64::from(by));

    // --- Titles and text panel.
    if let Some(f) = &font {
        let white = Rgb([235, 235, 235]);
        draw_text_mut(
            &mut out,
            white,
            6,
            title_y,
            scale,
            f,
            "camera: ground grid 1 m / 5 m, corridor (yellow), o measured point, x reprojection",
        );
        draw_text_mut(
            &mut out,
            white,
            bx as i32 + 4,
            title_y,
            scale,
            f,
            &format!(
                "bird's-eye view {:.0}..{:.0} m x {:.0}..{:.0} m",
                bev.x_min, bev.x_max, bev.y_min, bev.y_max
            ),
        );
        for (k, l) in input.text.iter().enumerate() {
            draw_text_mut(
                &mut out,
                white,
                8,
                (oy + top_h + 6 + k as u32 * line_h) as i32,
                scale,
                f,
                l,
            );
        }
    } else {
        draw_filled_rect_mut(&mut out, Rect::at(0, 0).of_size(cw, 2), Rgb([255, 0, 0]));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::camera::{Intrinsics, Mounting, PinholeCamera};

    #[test]
    fn table_and_render_on_a_synthetic_camera() {
        let cam = PinholeCamera::new(
            Intrinsics::from_hfov(320.0, 240.0, 60f64.to_radians()),
            Mounting {
                x: -1.5,
                y: 0.0,
                height: 1.3,
                pitch: 3f64.to_radians(),
                yaw: 0.0,
                roll: 0.0,
            },
        )
        .unwrap();
        let h = cam.ground_homography().unwrap();
        let t = uncertainty_table(&h, 320, 240, &[5.0, 10.0, 20.0, 40.0]);
        let s: Vec<f64> = t.iter().map(|r| r.metres_per_px_v.unwrap()).collect();
        assert!(s.windows(2).all(|w| w[1] > 2.0 * w[0]), "{s:?}");
        assert!(t.iter().all(|r| r.in_image));
        // A checkerboard ground texture warps back to a checkerboard in the BEV.
        let img = RgbImage::from_fn(320, 240, |u, v| {
            match h.project(f64::from(u) + 0.5, f64::from(v) + 0.5) {
                Ok(g) if (g.x.floor() as i64 + g.y.floor() as i64) % 2 == 0 => Rgb([255, 255, 255]),
                Ok(_) => Rgb([0, 0, 0]),
                Err(_) => Rgb([0, 0, 255]),
            }
        });
        let bev = BevRaster::new(100, 100, (5.0, 15.0), (-5.0, 5.0)).unwrap();
        let w = warp_bev(&img, &h, &bev);
        // Centre of the ground square [9, 10) × [0, 1) is black (9 + 0 odd), its left neighbour
        // white.
        let (c, r) = bev.pixel_of(GroundPoint::new(9.5, 0.5));
        assert_eq!(w.get_pixel(c as u32, r as u32).0, [0, 0, 0]);
        let (c, r) = bev.pixel_of(GroundPoint::new(9.5, 1.5));
        assert_eq!(w.get_pixel(c as u32, r as u32).0, [255, 255, 255]);
        let pts = [PointPair::new(160.0, 200.0, 7.0, 0.0)];
        let out = render_report(&ReportInput {
            image: &img,
            homography: &h,
            points: &pts,
            bev,
            corridor_half_width_m: 1.25,
            text: vec!["hello".into()],
        });
        assert!(out.width() > 320 + 100 && out.height() > 240);
    }
}
