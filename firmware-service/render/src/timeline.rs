//! Time-series plots as PNG: stacked panels sharing one time axis, each with one or more
//! series (gaps where a value is missing). Drawn with imageproc and the shared font.

use ab_glyph::{FontRef, PxScale};
use adas_calibration::report::FONT_BYTES;
use image::{Rgb, RgbImage};
use imageproc::drawing::{draw_filled_rect_mut, draw_line_segment_mut, draw_text_mut};
use imageproc::rect::Rect;

const W: u32 = 1000;
const PANEL_H: u32 = 150;
const LEFT: u32 = 70;
const RIGHT: u32 = 20;
const TOP: u32 = 40;
const GAP: u32 = 34;

const BG: Rgb<u8> = Rgb([255, 255, 255]);
const AXIS: Rgb<u8> = Rgb([0, 0, 0]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
pub const BLUE: Rgb<u8> = Rgb([30, 90, 200]);
pub const ORANGE: Rgb<u8> = Rgb([230, 120, 0]);
pub const RED: Rgb<u8> = Rgb([200, 30, 30]);
pub const GREEN: Rgb<u8> = Rgb([20, 150, 60]);

/// One line: `(t_s, value)`, `None` for a gap.
pub struct Series {
    pub name: String,
    pub colour: Rgb<u8>,
    pub points: Vec<(f64, Option<f64>)>,
    /// Draw as steps (held until the next point), for stages.
    pub steps: bool,
}

pub struct Panel {
    pub title: String,
    pub y_min: f64,
    pub y_max: f64,
    /// Labels for some y values (e.g. stage names); empty: numbers at 5 even ticks.
    pub y_labels: Vec<(f64, String)>,
    pub series: Vec<Series>,
}

struct Frame {
    y0: u32,
    y_min: f64,
    y_max: f64,
    t_min: f64,
    t_max: f64,
}

impl Frame {
    fn px(&self, t: f64, y: f64) -> (f32, f32) {
        let w = f64::from(W - LEFT - RIGHT);
        let span = (self.t_max - self.t_min).max(1e-9);
        let u = f64::from(LEFT) + ((t - self.t_min) / span).clamp(0.0, 1.0) * w;
        let frac = ((y - self.y_min) / (self.y_max - self.y_min).max(1e-9)).clamp(0.0, 1.0);
        let v = f64::from(self.y0) + (1.0 - frac) * f64::from(PANEL_H);
        (u as f32, v as f32)
    }
}

/// Draws the panels over `[t_min, t_max]` seconds with a title on top.
pub fn draw(title: &str, t_min: f64, t_max: f64, panels: &[Panel]) -> RgbImage {
    let n = panels.len().max(1) as u32;
    let h = TOP + n * (PANEL_H + GAP) + 10;
    let mut img = RgbImage::from_pixel(W, h, BG);
    let font = FontRef::try_from_slice(FONT_BYTES).ok();
    let text = |img: &mut RgbImage, c: Rgb<u8>, x: i32, y: i32, size: f32, s: &str| {
        if let Some(f) = &font {
            draw_text_mut(img, c, x, y, PxScale::from(size), f, s);
        }
    };
    text(&mut img, AXIS, 10, 8, 20.0, title);
    let t_max = if t_max > t_min { t_max } else { t_min + 1.0 };
    for (k, p) in panels.iter().enumerate() {
        let f = Frame {
            y0: TOP + k as u32 * (PANEL_H + GAP) + 20,
            y_min: p.y_min,
            y_max: p.y_max,
            t_min,
            t_max,
        };
        text(
            &mut img,
            AXIS,
            LEFT as i32,
            f.y0 as i32 - 20,
            15.0,
            &p.title,
        );
        // Time grid: about 10 lines at a round step.
        let span = t_max - t_min;
        let step = [
            0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
        ]
        .into_iter()
        .find(|s| span / s <= 12.0)
        .unwrap_or(600.0);
        let mut t = (t_min / step).ceil() * step;
        while t <= t_max + 1e-9 {
            let (u, _) = f.px(t, p.y_min);
            draw_line_segment_mut(
                &mut img,
                (u, f.y0 as f32),
                (u, (f.y0 + PANEL_H) as f32),
                GRID,
            );
            if k + 1 == panels.len() {
                text(
                    &mut img,
                    AXIS,
                    u as i32 - 10,
                    (f.y0 + PANEL_H + 4) as i32,
                    12.0,
                    &format!("{t:.1}"),
                );
            }
            t += step;
        }
        let labels: Vec<(f64, String)> = if p.y_labels.is_empty() {
            (0..=4)
                .map(|i| {
                    let y = p.y_min + (p.y_max - p.y_min) * f64::from(i) / 4.0;
                    (y, format!("{y:.0}"))
                })
                .collect()
        } else {
            p.y_labels.clone()
        };
        for (y, label) in &labels {
            let (_, v) = f.px(t_min, *y);
            draw_line_segment_mut(&mut img, (LEFT as f32, v), ((W - RIGHT) as f32, v), GRID);
            text(&mut img, AXIS, 4, v as i32 - 7, 12.0, label);
        }
        draw_line_segment_mut(
            &mut img,
            (LEFT as f32, f.y0 as f32),
            (LEFT as f32, (f.y0 + PANEL_H) as f32),
            AXIS,
        );
        draw_line_segment_mut(
            &mut img,
            (LEFT as f32, (f.y0 + PANEL_H) as f32),
            ((W - RIGHT) as f32, (f.y0 + PANEL_H) as f32),
            AXIS,
        );
        let mut legend_x = (W - RIGHT) as i32 - 10;
        for s in p.series.iter().rev() {
            let w = (s.name.chars().count() as i32) * 8 + 24;
            legend_x -= w;
            draw_filled_rect_mut(
                &mut img,
                Rect::at(legend_x, f.y0 as i32 - 14).of_size(12, 4),
                s.colour,
            );
            text(
                &mut img,
                AXIS,
                legend_x + 16,
                f.y0 as i32 - 20,
                13.0,
                &s.name,
            );
        }
        for s in &p.series {
            let mut last: Option<(f32, f32)> = None;
            for &(t, y) in &s.points {
                let Some(y) = y.filter(|y| y.is_finite()) else {
                    last = None;
                    continue;
                };
                let q = f.px(t, y);
                if let Some(a) = last {
                    let mid = if s.steps { (q.0, a.1) } else { a };
                    if s.steps {
                        draw_line_segment_mut(&mut img, a, mid, s.colour);
                        draw_line_segment_mut(
                            &mut img,
                            (a.0, a.1 + 1.0),
                            (mid.0, mid.1 + 1.0),
                            s.colour,
                        );
                    }
                    draw_line_segment_mut(&mut img, mid, q, s.colour);
                    draw_line_segment_mut(
                        &mut img,
                        (mid.0, mid.1 + 1.0),
                        (q.0, q.1 + 1.0),
                        s.colour,
                    );
                }
                last = Some(q);
            }
        }
    }
    img
}
