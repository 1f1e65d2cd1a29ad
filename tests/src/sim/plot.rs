//! PNG plot of one run: distance, speed and AEB stage / deceleration over time.

use super::world::Sample;
use ab_glyph::{FontRef, PxScale};
use adas_calibration::report::FONT_BYTES;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_line_segment_mut, draw_text_mut};
use imageproc::rect::Rect;
use std::path::Path;

const W: u32 = 1000;
const PANEL_H: u32 = 220;
const LEFT: u32 = 70;
const RIGHT: u32 = 20;
const TOP: u32 = 40;
const GAP: u32 = 30;

const BG: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const BLUE: Rgb<u8> = Rgb([30, 90, 200]);
const ORANGE: Rgb<u8> = Rgb([230, 120, 0]);
const RED: Rgb<u8> = Rgb([200, 30, 30]);
const GREEN: Rgb<u8> = Rgb([20, 150, 60]);

struct Panel {
    y0: u32,
    y_min: f64,
    y_max: f64,
    t_max: f64,
}

impl Panel {
    fn px(&self, t: f64, y: f64) -> (f32, f32) {
        let w = f64::from(W - LEFT - RIGHT);
        let u = f64::from(LEFT) + (t / self.t_max).clamp(0.0, 1.0) * w;
        let frac = ((y - self.y_min) / (self.y_max - self.y_min)).clamp(0.0, 1.0);
        let v = f64::from(self.y0) + (1.0 - frac) * f64::from(PANEL_H);
        (u as f32, v as f32)
    }
}

fn text(
    img: &mut RgbImage,
    font: Option<&FontRef>,
    colour: Rgb<u8>,
    x: i32,
    y: i32,
    size: f32,
    s: &str,
) {
    if let Some(f) = font {
        draw_text_mut(img, colour, x, y, PxScale::from(size), f, s);
    }
}

fn series(img: &mut RgbImage, p: &Panel, pts: impl Iterator<Item = (f64, f64)>, colour: Rgb<u8>) {
    let mut last: Option<(f32, f32)> = None;
    for (t, y) in pts {
        if !y.is_finite() {
            last = None;
            continue;
        }
        let q = p.px(t, y);
        if let Some(a) = last {
            draw_line_segment_mut(img, a, q, colour);
            draw_line_segment_mut(img, (a.0, a.1 + 1.0), (q.0, q.1 + 1.0), colour);
        }
        last = Some(q);
    }
}

fn frame(img: &mut RgbImage, font: Option<&FontRef>, p: &Panel, title: &str, ticks: &[f64]) {
    let t_step = if p.t_max > 10.0 { 2.0 } else { 1.0 };
    let mut t = 0.0;
    while t <= p.t_max + 1e-9 {
        let (u, _) = p.px(t, p.y_min);
        draw_line_segment_mut(img, (u, p.y0 as f32), (u, (p.y0 + PANEL_H) as f32), GRID);
        text(
            img,
            font,
            AXIS,
            u as i32 - 8,
            (p.y0 + PANEL_H + 2) as i32,
            12.0,
            &format!("{t:.0}"),
        );
        t += t_step;
    }
    for &y in ticks {
        let (_, v) = p.px(0.0, y);
        draw_line_segment_mut(img, (LEFT as f32, v), ((W - RIGHT) as f32, v), GRID);
        text(img, font, AXIS, 4, v as i32 - 7, 12.0, &format!("{y:>6.1}"));
    }
    let (x0, y0, x1, y1) = (
        LEFT as f32,
        p.y0 as f32,
        (W - RIGHT) as f32,
        (p.y0 + PANEL_H) as f32,
    );
    for (a, b) in [
        ((x0, y0), (x1, y0)),
        ((x1, y0), (x1, y1)),
        ((x1, y1), (x0, y1)),
        ((x0, y1), (x0, y0)),
    ] {
        draw_line_segment_mut(img, a, b, AXIS);
    }
    text(
        img,
        font,
        AXIS,
        LEFT as i32 + 6,
        p.y0 as i32 + 4,
        14.0,
        title,
    );
}

fn nice_max(v: f64) -> f64 {
    let v = v.max(1.0);
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if v <= m * mag {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Draws the plot; `title` goes on top.
pub fn write_png(path: &Path, title: &str, samples: &[Sample]) -> Result<(), String> {
    let h = TOP + 3 * PANEL_H + 3 * GAP + 10;
    let mut img = RgbImage::from_pixel(W, h, BG);
    let font = FontRef::try_from_slice(FONT_BYTES).ok();
    let f = font.as_ref();
    let t_max = samples.last().map_or(1.0, |s| s.t_s).max(1.0).ceil();
    text(&mut img, f, AXIS, 10, 8, 18.0, title);

    // Distance.
    let d_max = nice_max(
        samples
            .iter()
            .flat_map(|s| [s.gap_m, s.threat_distance_m])
            .filter(|v| v.is_finite())
            .fold(10.0, f64::max)
            .min(100.0),
    );
    let p = Panel {
        y0: TOP,
        y_min: 0.0,
        y_max: d_max,
        t_max,
    };
    frame(
        &mut img,
        f,
        &p,
        "distance, m: truth gap (blue), decider's threat (orange)",
        &[0.0, d_max / 2.0, d_max],
    );
    series(&mut img, &p, samples.iter().map(|s| (s.t_s, s.gap_m)), BLUE);
    series(
        &mut img,
        &p,
        samples.iter().map(|s| (s.t_s, s.threat_distance_m)),
        ORANGE,
    );

    // Speed.
    let v_max = nice_max(
        samples
            .iter()
            .map(|s| s.ego_speed_mps * 3.6)
            .fold(10.0, f64::max),
    );
    let p = Panel {
        y0: TOP + PANEL_H + GAP,
        y_min: 0.0,
        y_max: v_max,
        t_max,
    };
    frame(
        &mut img,
        f,
        &p,
        "ego speed, km/h",
        &[0.0, v_max / 2.0, v_max],
    );
    series(
        &mut img,
        &p,
        samples.iter().map(|s| (s.t_s, s.ego_speed_mps * 3.6)),
        BLUE,
    );

    // Stage and deceleration.
    let p = Panel {
        y0: TOP + 2 * (PANEL_H + GAP),
        y_min: 0.0,
        y_max: 10.0,
        t_max,
    };
    frame(
        &mut img,
        f,
        &p,
        "stage ×3 (red: 0 none, 3 FCW, 6 partial, 9 full), requested (orange) and actual (green) decel m/s²",
        &[0.0, 3.0, 6.0, 9.0],
    );
    series(
        &mut img,
        &p,
        samples
            .iter()
            .map(|s| (s.t_s, 3.0 * f64::from(s.stage.code()))),
        RED,
    );
    series(
        &mut img,
        &p,
        samples.iter().map(|s| (s.t_s, s.brake_request_mps2)),
        ORANGE,
    );
    series(
        &mut img,
        &p,
        samples.iter().map(|s| (s.t_s, s.ego_decel_mps2)),
        GREEN,
    );
    draw_filled_rect_mut(&mut img, Rect::at(0, (h - 4) as i32).of_size(W, 4), BG);
    img.save(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
