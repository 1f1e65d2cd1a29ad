//! Pictures for people: detections, the corridor and a bird's-eye-view inset drawn on a frame;
//! [`timeline`]: time-series plots.

pub mod timeline;

use ab_glyph::{FontRef, PxScale};
use adas_calibration::Homography;
use adas_core::aeb::Decision;
use adas_core::perception::{BevProjection, Track};
use adas_plugins::manifest::RoadUser;
use adas_types::ImageDetection;
use image::{Rgb, RgbImage};
use imageproc::drawing::{
    draw_filled_circle_mut, draw_filled_rect_mut, draw_hollow_rect_mut, draw_line_segment_mut,
    draw_text_mut,
};
use imageproc::rect::Rect;

use adas_calibration::report::FONT_BYTES;

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const BLACK: Rgb<u8> = Rgb([0, 0, 0]);
const RED: Rgb<u8> = Rgb([230, 30, 30]);
const AMBER: Rgb<u8> = Rgb([255, 190, 0]);
const GRID: Rgb<u8> = Rgb([70, 70, 70]);

fn class_colour(class: RoadUser) -> Rgb<u8> {
    match class {
        RoadUser::Pedestrian => Rgb([0, 200, 255]),
        RoadUser::Cyclist => Rgb([120, 255, 120]),
        RoadUser::Car => Rgb([255, 120, 220]),
        RoadUser::TruckBus => Rgb([200, 120, 255]),
        RoadUser::Motorcycle => Rgb([255, 255, 120]),
        RoadUser::Other => Rgb([200, 200, 200]),
        RoadUser::Ignored => Rgb([120, 120, 120]),
    }
}

/// Draws on frames. Text is skipped (boxes still drawn) if the embedded font cannot be parsed.
pub struct Renderer {
    font: Option<FontRef<'static>>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self {
            font: FontRef::try_from_slice(FONT_BYTES).ok(),
        }
    }
}

/// Everything the pipeline knows about one frame, for drawing.
pub struct FrameView<'a> {
    pub detections: &'a [ImageDetection],
    pub bev: &'a BevProjection,
    pub decision: &'a Decision,
    pub homography: &'a Homography,
    /// Tracks after this frame: confirmed ones get their id drawn at their box and BEV dot.
    pub tracks: &'a [Track],
    /// Top banner, e.g. frame number, time and ego speed.
    pub caption: String,
}

impl Renderer {
    fn text(&self, img: &mut RgbImage, colour: Rgb<u8>, x: i32, y: i32, size: f32, text: &str) {
        if let Some(font) = &self.font {
            draw_text_mut(img, colour, x, y, PxScale::from(size), font, text);
        }
    }

    /// Text on a dark plate so it stays readable on any background.
    fn label(&self, img: &mut RgbImage, colour: Rgb<u8>, x: i32, y: i32, size: f32, text: &str) {
        let w = (text.chars().count() as f32 * size * 0.6).ceil() as u32 + 4;
        let h = size.ceil() as u32 + 2;
        let y = y.max(0);
        draw_filled_rect_mut(img, Rect::at(x, y).of_size(w, h), BLACK);
        self.text(img, colour, x + 2, y, size, text);
    }

    /// Boxes with label, score and (when known) ground distance.
    pub fn draw_detections(
        &self,
        img: &mut RgbImage,
        detections: &[ImageDetection],
        distances: &[Option<f64>],
    ) {
        for (i, d) in detections.iter().enumerate() {
            let colour = class_colour(d.class);
            let b = d.bbox;
            let (x, y) = (b.x1.round() as i32, b.y1.round() as i32);
            let (w, h) = (
                b.width().round().max(1.0) as u32,
                b.height().round().max(1.0) as u32,
            );
            draw_hollow_rect_mut(img, Rect::at(x, y).of_size(w, h), colour);
            draw_hollow_rect_mut(img, Rect::at(x - 1, y - 1).of_size(w + 2, h + 2), colour);
            let mut text = format!("{} {:.2}", d.label, d.score);
            if let Some(Some(dist)) = distances.get(i) {
                text.push_str(&format!(" {dist:.1}m"));
            }
            self.label(img, colour, x, y - 16, 14.0, &text);
        }
    }

    /// The full view: corridor on the road, boxes, a BEV inset and the banner.
    pub fn draw_frame(&self, img: &mut RgbImage, view: &FrameView) {
        let alarm = if view.decision.warning() { RED } else { AMBER };
        self.draw_corridor(img, view.homography, view.decision, alarm);
        let mut distances = vec![None; view.detections.len()];
        for o in &view.bev.objects {
            if let Some(slot) = distances.get_mut(o.detection) {
                *slot = Some(o.x_m);
            }
        }
        // Labels the decision ignores (benches, birds, …) would only clutter the view.
        let (shown, shown_distances): (Vec<ImageDetection>, Vec<Option<f64>>) = view
            .detections
            .iter()
            .zip(distances)
            .filter(|(d, _)| d.class != RoadUser::Ignored)
            .map(|(d, dist)| (d.clone(), dist))
            .unzip();
        self.draw_detections(img, &shown, &shown_distances);
        self.draw_track_ids(img, view);
        self.draw_bev_inset(img, view);
        let d = view.decision;
        let status = match (d.inhibit, d.threat) {
            (Some(reason), _) => format!("AEB INHIBITED: {}", reason.as_str()),
            (None, Some(t)) if d.warning() => format!(
                "{} {} at {:.1} m ({:+.1} m), TTC {:.1} s",
                d.stage.as_str().to_uppercase(),
                t.class,
                t.distance_m,
                t.lateral_m,
                t.ttc_s
            ),
            (None, Some(t)) => format!("in path: {} at {:.1} m", t.class, t.distance_m),
            (None, None) => "clear".to_string(),
        };
        self.label(img, WHITE, 4, 4, 16.0, &view.caption);
        let colour = if view.decision.warning() { RED } else { WHITE };
        self.label(img, colour, 4, 24, 18.0, &status);
    }

    /// `#id` under the box of every confirmed track updated this frame.
    fn draw_track_ids(&self, img: &mut RgbImage, view: &FrameView) {
        for t in view.tracks.iter().filter(|t| t.confirmed) {
            let Some(det) = t
                .detection
                .and_then(|k| view.bev.objects.get(k))
                .and_then(|o| view.detections.get(o.detection))
            else {
                continue;
            };
            let b = det.bbox;
            self.label(
                img,
                class_colour(det.class),
                b.x1.round() as i32,
                b.y2.round() as i32 + 2,
                13.0,
                &format!("#{} {:+.1} m/s", t.id, t.vx_mps),
            );
        }
    }

    /// Corridor edges projected from the ground into the image.
    fn draw_corridor(
        &self,
        img: &mut RgbImage,
        h: &Homography,
        decision: &Decision,
        colour: Rgb<u8>,
    ) {
        let c = decision.corridor;
        let steps = 20;
        let at = |x: f64, y: f64| h.to_image(x, y).ok().map(|p| (p.u as f32, p.v as f32));
        for side in [-c.half_width_m, c.half_width_m] {
            for i in 0..steps {
                let x0 = c.length_m * f64::from(i) / f64::from(steps);
                let x1 = c.length_m * f64::from(i + 1) / f64::from(steps);
                if let (Some(a), Some(b)) = (at(x0, side), at(x1, side)) {
                    draw_line_segment_mut(img, a, b, colour);
                }
            }
        }
        for x in [0.0, c.length_m] {
            if let (Some(a), Some(b)) = (at(x, -c.half_width_m), at(x, c.half_width_m)) {
                draw_line_segment_mut(img, a, b, colour);
            }
        }
    }

    /// Top-right inset: ground plane seen from above, x forward (up), y left (left). It shows
    /// 40 m ahead (5 m grid), or 80 m (10 m grid) when the corridor reaches further (higher ego
    /// speeds), so what the decider looks at is in the picture.
    fn draw_bev_inset(&self, img: &mut RgbImage, view: &FrameView) {
        const W: u32 = 180;
        const H: u32 = 240;
        const RANGE_Y: f64 = 15.0; // m shown each side
        if img.width() < W + 8 || img.height() < H + 8 {
            return;
        }
        let far = view.decision.corridor.length_m > 40.0;
        let (range_x, grid) = if far { (80.0, 10) } else { (40.0, 5) };
        let range_x_m = range_x as i32;
        let x0 = (img.width() - W - 4) as i32;
        let y0 = 4i32;
        draw_filled_rect_mut(img, Rect::at(x0, y0).of_size(W, H), Rgb([20, 20, 20]));
        let px = |x: f64, y: f64| {
            let u = f64::from(x0) + f64::from(W) / 2.0 - y / RANGE_Y * f64::from(W) / 2.0;
            let v = f64::from(y0) + f64::from(H) - 10.0 - x / range_x * (f64::from(H) - 20.0);
            (u as f32, v as f32)
        };
        for m in (0..=range_x_m).step_by(grid) {
            let x = f64::from(m);
            draw_line_segment_mut(img, px(x, RANGE_Y), px(x, -RANGE_Y), GRID);
        }
        for m in (-15..=15).step_by(5) {
            let y = f64::from(m);
            draw_line_segment_mut(img, px(0.0, y), px(range_x, y), GRID);
        }
        let c = view.decision.corridor;
        let colour = if view.decision.warning() { RED } else { AMBER };
        let len = c.length_m.min(range_x);
        let corners = [
            (0.0, c.half_width_m),
            (len, c.half_width_m),
            (len, -c.half_width_m),
            (0.0, -c.half_width_m),
        ];
        for i in 0..4 {
            let (a, b) = (corners[i], corners[(i + 1) % 4]);
            draw_line_segment_mut(img, px(a.0, a.1), px(b.0, b.1), colour);
        }
        // The ego vehicle: a small block behind the bumper line.
        let (eu, ev) = px(0.0, 0.0);
        draw_filled_rect_mut(
            img,
            Rect::at(eu as i32 - 6, ev as i32).of_size(12, 8),
            WHITE,
        );
        let threat = view.decision.threat.and_then(|t| t.detection);
        for (i, o) in view.bev.objects.iter().enumerate() {
            if o.x_m > range_x || o.y_m.abs() > RANGE_Y || o.x_m < 0.0 {
                continue;
            }
            let (u, v) = px(o.x_m, o.y_m);
            let r = if threat == Some(i) { 6 } else { 4 };
            draw_filled_circle_mut(img, (u as i32, v as i32), r, class_colour(o.class));
            if threat == Some(i) {
                draw_filled_circle_mut(img, (u as i32, v as i32), 2, RED);
            }
            if let Some(t) = view
                .tracks
                .iter()
                .find(|t| t.confirmed && t.detection == Some(i))
            {
                self.text(
                    img,
                    WHITE,
                    u as i32 + 6,
                    v as i32 - 6,
                    11.0,
                    &format!("#{}", t.id),
                );
            }
        }
        let title = format!("BEV {range_x_m} m, grid {grid} m");
        self.text(img, WHITE, x0 + 4, y0 + 2, 12.0, &title);
    }
}
