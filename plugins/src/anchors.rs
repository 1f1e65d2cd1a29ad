//! SSD anchor (default box) generators: TF Object Detection API `ssd_anchor_generator` and
//! torchvision `DefaultBoxGenerator`. Anchors are `(cy, cx, h, w)`, normalised to the model input.

use crate::range::{Bound, Numbers, Range};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Most anchors a model may have: 16 B each, so a table is at most 16 MB, and an anchor file at
/// most [`MAX_TABLE_BYTES`]. SSD300 has 1917, SSD512 24 564; a million is far beyond any SSD.
pub const MAX_ANCHORS: usize = 1_000_000;

/// Largest anchor file read: 64 bytes a line for [`MAX_ANCHORS`] lines, checked before reading.
pub const MAX_TABLE_BYTES: u64 = 64 * MAX_ANCHORS as u64;

/// The feature-map rows shared by both generators: square grids, finest first.
const FEATURE_MAP_COUNT: Range = Range::new(1.0, 16.0, "maps");
const FEATURE_MAP_SIZE: Range = Range::new(1.0, 1024.0, "cells each");
const FEATURE_MAPS_WHY: &str = "SSDs use 6 maps of 1–64 cells; together with the anchors \
     per cell they make at most 1 000 000 anchors";
const ASPECT_RATIO: Range = Range::new(0.05, 20.0, "each");
const ASPECT_RATIO_WHY: &str = "box width ÷ height; SSDs use 1/3–3";

/// How SSD anchors are generated.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "style", rename_all = "lowercase")]
pub enum AnchorSpec {
    /// TF Object Detection API `ssd_anchor_generator` (multiple_grid_anchor_generator).
    Tf(TfAnchors),
    /// torchvision `DefaultBoxGenerator` (SSD300 / SSDLite320).
    Torchvision(TorchvisionAnchors),
    /// A table of anchors shipped beside the model (e.g. the constant tensor a TensorFlow Lite
    /// file stores, already quantized): generated anchors would differ from it by up to half a
    /// quantization step.
    File(FileAnchors),
}

/// Anchors read from a text file: one `cy cx h w` line per anchor (normalised to the model input,
/// in output order); blank lines and lines starting with `#` are skipped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAnchors {
    /// Resolved against the manifest's folder by [`crate::Manifest::load`].
    pub path: PathBuf,
    /// Expected sha256 of the file (lower-case hex).
    pub sha256: Option<String>,
    /// The table, filled by [`crate::Manifest::load`]; empty after [`crate::Manifest::parse`] alone.
    #[serde(skip)]
    pub anchors: Vec<Anchor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TfAnchors {
    /// Square feature-map sizes, finest first (e.g. `[19, 10, 5, 3, 2, 1]`).
    pub feature_maps: Vec<usize>,
    pub min_scale: f32,
    pub max_scale: f32,
    pub aspect_ratios: Vec<f32>,
    /// Aspect ratio of the extra box at scale sqrt(s_i · s_{i+1}); 0 leaves it out.
    #[serde(default = "one")]
    pub interpolated_scale_aspect_ratio: f32,
    /// The finest layer has only (0.1, 1.0), (s0, 2.0), (s0, 0.5).
    #[serde(default)]
    pub reduce_boxes_in_lowest_layer: bool,
}

impl TfAnchors {
    pub const RANGES: &'static [Bound<TfAnchors>] = &[
        Bound::new(
            "feature_maps",
            FEATURE_MAP_COUNT,
            |a| a.feature_maps.len().numbers(),
            FEATURE_MAPS_WHY,
        ),
        Bound::new(
            "feature_maps",
            FEATURE_MAP_SIZE,
            |a| a.feature_maps.numbers(),
            FEATURE_MAPS_WHY,
        ),
        Bound::new(
            "min_scale",
            Range::new(0.01, 1.0, "of the input"),
            |a| a.min_scale.numbers(),
            "a box side as a share of the input; also min_scale ≤ max_scale",
        ),
        Bound::new(
            "max_scale",
            Range::new(0.01, 1.0, "of the input"),
            |a| a.max_scale.numbers(),
            "a box side as a share of the input",
        ),
        Bound::new(
            "aspect_ratios",
            Range::new(1.0, 16.0, "ratios"),
            |a| a.aspect_ratios.len().numbers(),
            "anchors per cell",
        ),
        Bound::new(
            "aspect_ratios",
            ASPECT_RATIO,
            |a| a.aspect_ratios.numbers(),
            ASPECT_RATIO_WHY,
        ),
        Bound::new(
            "interpolated_scale_aspect_ratio",
            Range::new(0.0, 20.0, ""),
            |a| a.interpolated_scale_aspect_ratio.numbers(),
            "an aspect ratio; 0 leaves the extra box out",
        ),
    ];
}

impl TorchvisionAnchors {
    pub const RANGES: &'static [Bound<TorchvisionAnchors>] = &[
        Bound::new(
            "feature_maps",
            FEATURE_MAP_COUNT,
            |a| a.feature_maps.len().numbers(),
            FEATURE_MAPS_WHY,
        ),
        Bound::new(
            "feature_maps",
            FEATURE_MAP_SIZE,
            |a| a.feature_maps.numbers(),
            FEATURE_MAPS_WHY,
        ),
        Bound::new(
            "aspect_ratios",
            Range::new(0.0, 16.0, "ratios per map"),
            |a| {
                a.aspect_ratios
                    .iter()
                    .map(Vec::len)
                    .collect::<Vec<_>>()
                    .numbers()
            },
            "each ratio adds two anchors per cell; also one list per feature map",
        ),
        Bound::new(
            "aspect_ratios",
            ASPECT_RATIO,
            |a| a.aspect_ratios.numbers(),
            ASPECT_RATIO_WHY,
        ),
        Bound::new(
            "min_ratio",
            Range::new(0.01, 1.0, "of the input"),
            |a| a.min_ratio.numbers(),
            "a box side as a share of the input; also min_ratio ≤ max_ratio",
        ),
        Bound::new(
            "max_ratio",
            Range::new(0.01, 1.0, "of the input"),
            |a| a.max_ratio.numbers(),
            "a box side as a share of the input",
        ),
        Bound::new(
            "scales",
            Range::new(0.01, 2.0, "of the input each"),
            |a| a.scales.numbers(),
            "box sides as shares of the input; SSD300's last is 1.05",
        ),
        Bound::new(
            "steps",
            Range::new(1.0, 1024.0, "px each"),
            |a| a.steps.numbers(),
            "input pixels per cell",
        ),
    ];
}

/// How many anchors `spec` generates (saturating, so an absurd spec counts as too many
/// instead of overflowing); `None` for a table, whose size is known once it is read.
pub fn count(spec: &AnchorSpec) -> Option<usize> {
    let cells = |maps: &[usize], per_map: &dyn Fn(usize) -> usize| {
        maps.iter().enumerate().fold(0usize, |sum, (k, &fm)| {
            sum.saturating_add(fm.saturating_mul(fm).saturating_mul(per_map(k)))
        })
    };
    match spec {
        AnchorSpec::Tf(a) => {
            let extra = usize::from(a.interpolated_scale_aspect_ratio > 0.0);
            let per_cell = a.aspect_ratios.len() + extra;
            Some(cells(&a.feature_maps, &|k| {
                if k == 0 && a.reduce_boxes_in_lowest_layer {
                    3
                } else {
                    per_cell
                }
            }))
        }
        AnchorSpec::Torchvision(a) => Some(cells(&a.feature_maps, &|k| {
            2 + 2 * a.aspect_ratios.get(k).map_or(0, Vec::len)
        })),
        AnchorSpec::File(_) => None,
    }
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TorchvisionAnchors {
    /// Square feature-map sizes, finest first.
    pub feature_maps: Vec<usize>,
    /// Extra aspect ratios per feature map (each r adds r and 1/r).
    pub aspect_ratios: Vec<Vec<f32>>,
    #[serde(default = "tv_min_ratio")]
    pub min_ratio: f32,
    #[serde(default = "tv_max_ratio")]
    pub max_ratio: f32,
    /// Explicit scales (one per feature map plus one); overrides min/max ratio.
    pub scales: Option<Vec<f32>>,
    /// Explicit steps in input pixels per feature map; default input size / feature-map size.
    pub steps: Option<Vec<usize>>,
    #[serde(default = "yes")]
    pub clip: bool,
}

fn tv_min_ratio() -> f32 {
    0.15
}
fn tv_max_ratio() -> f32 {
    0.9
}
fn yes() -> bool {
    true
}

/// One anchor: centre and size, normalised to the model input (`[0, 1]` of its height/width).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Anchor {
    pub cy: f32,
    pub cx: f32,
    pub h: f32,
    pub w: f32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnchorError {
    #[error("anchors: {0}")]
    Invalid(String),
}

/// Reads an anchor table (see [`crate::manifest::FileAnchors`]), checking its sha256 when given.
pub fn read_table(path: &Path, sha256: Option<&str>) -> Result<Vec<Anchor>, AnchorError> {
    let cannot_read =
        |e: std::io::Error| AnchorError::Invalid(format!("cannot read {}: {e}", path.display()));
    // Sized before it is read: a wrong path (a video, a disk image) must not fill the memory.
    let len = std::fs::metadata(path).map_err(cannot_read)?.len();
    if len > MAX_TABLE_BYTES {
        return Err(AnchorError::Invalid(format!(
            "{}: {len} bytes is more than an anchor table of at most {MAX_ANCHORS} anchors \
             ({MAX_TABLE_BYTES} bytes)",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(cannot_read)?;
    if let Some(expected) = sha256 {
        let actual = crate::sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(AnchorError::Invalid(format!(
                "{}: sha256 is {actual}, the manifest expects {expected}",
                path.display()
            )));
        }
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| AnchorError::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    parse_table(&text).map_err(|e| AnchorError::Invalid(format!("{}: {e}", path.display())))
}

/// Parses `cy cx h w` lines; every value finite, sizes > 0.
pub fn parse_table(text: &str) -> Result<Vec<Anchor>, String> {
    let mut anchors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let values: Vec<f32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("line {}: {e}", i + 1))?;
        match values[..] {
            [cy, cx, h, w]
                if [cy, cx, h, w].iter().all(|v| v.is_finite()) && h > 0.0 && w > 0.0 =>
            {
                if anchors.len() == MAX_ANCHORS {
                    return Err(format!("line {}: more than {MAX_ANCHORS} anchors", i + 1));
                }
                anchors.push(Anchor { cy, cx, h, w });
            }
            _ => {
                return Err(format!(
                    "line {}: expected four finite numbers `cy cx h w` with h, w > 0, got `{line}`",
                    i + 1
                ))
            }
        }
    }
    if anchors.is_empty() {
        return Err("no anchors".into());
    }
    Ok(anchors)
}

/// Anchors for a model input of `input_width` × `input_height` pixels, in the order the model's
/// box/score outputs use.
pub fn generate(
    spec: &AnchorSpec,
    input_width: usize,
    input_height: usize,
) -> Result<Vec<Anchor>, AnchorError> {
    match spec {
        AnchorSpec::Tf(a) => tf_ssd_anchors(a, input_width, input_height),
        AnchorSpec::Torchvision(a) => torchvision_default_boxes(a, input_width, input_height),
        AnchorSpec::File(a) if a.anchors.is_empty() => Err(AnchorError::Invalid(format!(
            "the table {} was not read (load the manifest with Manifest::load)",
            a.path.display()
        ))),
        AnchorSpec::File(a) => Ok(a.anchors.clone()),
    }
}

/// TF OD API `anchor_generators/multiple_grid_anchor_generator.py::create_ssd_anchors` followed by
/// `MultipleGridAnchorGenerator.generate` with default strides/offsets and base anchor size 1×1:
///
/// - scales `s_i = min + (max − min)·i/(n − 1)` for the `n` layers, plus `1.0` appended;
/// - layer `i` boxes: `(s_i, a)` for every aspect ratio `a`, then, if
///   `interpolated_scale_aspect_ratio > 0`, `(sqrt(s_i·s_{i+1}), interpolated_scale_aspect_ratio)`;
///   with `reduce_boxes_in_lowest_layer` layer 0 is `(0.1, 1), (s_0, 2), (s_0, 0.5)` instead;
/// - box `h = s/√a · bh`, `w = s·√a · bw` where the base size `(bh, bw)` corrects for non-square
///   inputs (`min(H, W)/H`, `min(H, W)/W`; both 1 for square inputs);
/// - centres `((y + 0.5)/fm, (x + 0.5)/fm)`; order y-major, then x, then box.
pub fn tf_ssd_anchors(
    spec: &TfAnchors,
    input_width: usize,
    input_height: usize,
) -> Result<Vec<Anchor>, AnchorError> {
    let n = spec.feature_maps.len();
    if n == 0 || spec.feature_maps.contains(&0) {
        return Err(AnchorError::Invalid(
            "feature_maps must be non-empty sizes > 0".into(),
        ));
    }
    if input_width == 0 || input_height == 0 {
        return Err(AnchorError::Invalid("input size is zero".into()));
    }
    let (min, max) = (f64::from(spec.min_scale), f64::from(spec.max_scale));
    let mut scales: Vec<f64> = if n == 1 {
        vec![min]
    } else {
        (0..n)
            .map(|i| min + (max - min) * i as f64 / (n - 1) as f64)
            .collect()
    };
    scales.push(1.0);

    let min_side = input_width.min(input_height) as f64;
    let base_h = min_side / input_height as f64;
    let base_w = min_side / input_width as f64;

    let mut anchors = Vec::new();
    let mut boxes: Vec<(f64, f64)> = Vec::new();
    for (i, &fm) in spec.feature_maps.iter().enumerate() {
        boxes.clear();
        let (s, s_next) = (scales[i], scales[i + 1]);
        if i == 0 && spec.reduce_boxes_in_lowest_layer {
            boxes.extend([(0.1, 1.0), (s, 2.0), (s, 0.5)]);
        } else {
            boxes.extend(spec.aspect_ratios.iter().map(|&a| (s, f64::from(a))));
            let interp = f64::from(spec.interpolated_scale_aspect_ratio);
            if interp > 0.0 {
                boxes.push(((s * s_next).sqrt(), interp));
            }
        }
        let stride = 1.0 / fm as f64;
        for y in 0..fm {
            for x in 0..fm {
                let cy = (y as f64 + 0.5) * stride;
                let cx = (x as f64 + 0.5) * stride;
                for &(s, a) in &boxes {
                    let r = a.sqrt();
                    anchors.push(Anchor {
                        cy: cy as f32,
                        cx: cx as f32,
                        h: (s / r * base_h) as f32,
                        w: (s * r * base_w) as f32,
                    });
                }
            }
        }
    }
    Ok(anchors)
}

/// torchvision `models/detection/anchor_utils.py::DefaultBoxGenerator`:
///
/// - scales: explicit, or `min + (max − min)·k/(n − 1)` plus `1.0` (`[min, max]` for one map);
/// - per map `k`: `(s_k, s_k)`, `(s'_k, s'_k)` with `s'_k = sqrt(s_k·s_{k+1})`, then for every
///   ratio `r`: `(s_k·√r, s_k/√r)` and its transpose, as (w, h); clamped to `[0, 1]` if `clip`;
/// - centres `((i + 0.5)/f)` with `f = input/step` when steps are given, else the map size;
/// - order: y-major, then x, then box.
pub fn torchvision_default_boxes(
    spec: &TorchvisionAnchors,
    input_width: usize,
    input_height: usize,
) -> Result<Vec<Anchor>, AnchorError> {
    let n = spec.feature_maps.len();
    if n == 0 || spec.feature_maps.contains(&0) {
        return Err(AnchorError::Invalid(
            "feature_maps must be non-empty sizes > 0".into(),
        ));
    }
    if spec.aspect_ratios.len() != n {
        return Err(AnchorError::Invalid(format!(
            "{} aspect-ratio lists for {n} feature maps",
            spec.aspect_ratios.len()
        )));
    }
    let scales: Vec<f64> = match &spec.scales {
        Some(s) => {
            if s.len() < n + 1 {
                return Err(AnchorError::Invalid(format!(
                    "{} scales for {n} feature maps; need {}",
                    s.len(),
                    n + 1
                )));
            }
            s.iter().map(|&v| f64::from(v)).collect()
        }
        None => {
            let (min, max) = (f64::from(spec.min_ratio), f64::from(spec.max_ratio));
            if n > 1 {
                let mut s: Vec<f64> = (0..n)
                    .map(|k| min + (max - min) * k as f64 / (n as f64 - 1.0))
                    .collect();
                s.push(1.0);
                s
            } else {
                vec![min, max]
            }
        }
    };
    if let Some(steps) = &spec.steps {
        if steps.len() != n || steps.contains(&0) {
            return Err(AnchorError::Invalid(format!(
                "{} steps for {n} feature maps (need one > 0 per map)",
                steps.len()
            )));
        }
    }

    let mut anchors = Vec::new();
    let mut wh: Vec<(f64, f64)> = Vec::new();
    for (k, &fm) in spec.feature_maps.iter().enumerate() {
        wh.clear();
        let s_k = scales[k];
        let s_prime = (scales[k] * scales[k + 1]).sqrt();
        wh.extend([(s_k, s_k), (s_prime, s_prime)]);
        for &ar in &spec.aspect_ratios[k] {
            let r = f64::from(ar).sqrt();
            let (w, h) = (s_k * r, s_k / r);
            wh.extend([(w, h), (h, w)]);
        }
        if spec.clip {
            for p in wh.iter_mut() {
                *p = (p.0.clamp(0.0, 1.0), p.1.clamp(0.0, 1.0));
            }
        }
        let (fx, fy) = match &spec.steps {
            Some(steps) => (
                input_width as f64 / steps[k] as f64,
                input_height as f64 / steps[k] as f64,
            ),
            None => (fm as f64, fm as f64),
        };
        for y in 0..fm {
            for x in 0..fm {
                let cy = ((y as f64 + 0.5) / fy) as f32;
                let cx = ((x as f64 + 0.5) / fx) as f32;
                for &(w, h) in &wh {
                    anchors.push(Anchor {
                        cy,
                        cx,
                        h: h as f32,
                        w: w as f32,
                    });
                }
            }
        }
    }
    Ok(anchors)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pedestrian_ssd() -> TfAnchors {
        TfAnchors {
            feature_maps: vec![19, 10, 5, 3, 2, 1],
            min_scale: 0.2,
            max_scale: 0.95,
            aspect_ratios: vec![1.0, 2.0, 0.5, 3.0, 0.3333],
            interpolated_scale_aspect_ratio: 1.0,
            reduce_boxes_in_lowest_layer: true,
        }
    }

    fn close(a: &Anchor, e: [f64; 4], tol: f32) -> bool {
        (a.cy - e[0] as f32).abs() < tol
            && (a.cx - e[1] as f32).abs() < tol
            && (a.h - e[2] as f32).abs() < tol
            && (a.w - e[3] as f32).abs() < tol
    }

    #[test]
    fn tf_rule_by_hand() {
        let a = tf_ssd_anchors(&pedestrian_ssd(), 300, 300).unwrap();
        // 19²·3 + (10² + 5² + 3² + 2² + 1²)·6 = 1083 + 834
        assert_eq!(a.len(), 1917);
        let r2 = 2f64.sqrt();
        // Layer 0, cell (0, 0): centre 0.5/19; (0.1, 1), (0.2, 2), (0.2, 0.5).
        let c = 0.5 / 19.0;
        assert!(close(&a[0], [c, c, 0.1, 0.1], 1e-6));
        assert!(close(&a[1], [c, c, 0.2 / r2, 0.2 * r2], 1e-6));
        assert!(close(&a[2], [c, c, 0.2 * r2, 0.2 / r2], 1e-6));
        // Layer 0, cell (y 0, x 1) follows: x varies before y.
        assert!(close(&a[3], [c, 1.5 / 19.0, 0.1, 0.1], 1e-6));
        // Layer 1 starts at 1083: s1 = 0.2 + 0.75/5 = 0.35, s2 = 0.5; centre 0.05.
        let s1 = 0.35f64;
        assert!(close(&a[1083], [0.05, 0.05, s1, s1], 1e-6));
        assert!(close(
            &a[1083 + 3],
            [0.05, 0.05, s1 / 3f64.sqrt(), s1 * 3f64.sqrt()],
            1e-6
        ));
        let interp = (0.35f64 * 0.5).sqrt();
        assert!(close(&a[1083 + 5], [0.05, 0.05, interp, interp], 1e-6));
        // Last anchor: 1×1 layer, s5 = 0.95, interpolated sqrt(0.95·1.0) at ratio 1.
        let last = (0.95f64).sqrt();
        assert!(close(&a[1916], [0.5, 0.5, last, last], 1e-6));
    }

    #[test]
    fn tf_non_square_input_corrects_base_size() {
        let spec = TfAnchors {
            feature_maps: vec![1],
            min_scale: 0.5,
            max_scale: 0.5,
            aspect_ratios: vec![1.0],
            interpolated_scale_aspect_ratio: 0.0,
            reduce_boxes_in_lowest_layer: false,
        };
        // 600 wide, 300 high: base (h, w) = (1, 0.5) so the box is square in pixels.
        let a = tf_ssd_anchors(&spec, 600, 300).unwrap();
        assert_eq!(
            a,
            vec![Anchor {
                cy: 0.5,
                cx: 0.5,
                h: 0.5,
                w: 0.25
            }]
        );
    }

    /// All 1917 anchors against TensorFlow's own (`Postprocessor/Tile:0` of the full-graph
    /// export, extracted by `tests/fixtures/make_tf_anchors.py`).
    #[test]
    fn tf_matches_tensorflow_anchors() {
        let text = include_str!("../tests/fixtures/tf_anchors_ssdlite300.txt");
        let tf: Vec<[f64; 4]> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let v: Vec<f64> = l.split_whitespace().map(|t| t.parse().unwrap()).collect();
                [v[0], v[1], v[2], v[3]]
            })
            .collect();
        let ours = tf_ssd_anchors(&pedestrian_ssd(), 300, 300).unwrap();
        assert_eq!(ours.len(), tf.len());
        let mut max_dev = 0f64;
        for (i, (a, e)) in ours.iter().zip(&tf).enumerate() {
            let got = [a.cy, a.cx, a.h, a.w].map(f64::from);
            for k in 0..4 {
                let d = (got[k] - e[k]).abs();
                max_dev = max_dev.max(d);
                assert!(d < 1e-4, "anchor {i} field {k}: {} vs {}", got[k], e[k]);
            }
        }
        // Printed for the record: `cargo test -- --nocapture tf_matches`.
        println!("max deviation from TensorFlow's anchors: {max_dev:.2e}");
    }

    #[test]
    fn torchvision_rule_by_hand() {
        // Two maps (2×2 then 1×1), ratios [[2], []], default scales: n = 2 →
        // s = [0.15, 0.9, 1.0]; steps None → centres (i + 0.5)/fm.
        let spec = TorchvisionAnchors {
            feature_maps: vec![2, 1],
            aspect_ratios: vec![vec![2.0], vec![]],
            min_ratio: 0.15,
            max_ratio: 0.9,
            scales: None,
            steps: None,
            clip: true,
        };
        let a = torchvision_default_boxes(&spec, 300, 300).unwrap();
        assert_eq!(a.len(), 2 * 2 * 4 + 2);
        let sp0 = (0.15f64 * 0.9).sqrt();
        let (w2, h2) = (0.15 * 2f64.sqrt(), 0.15 / 2f64.sqrt());
        // Map 0, location (y 0, x 0): (w,h) = (s,s), (s',s'), (w2,h2), (h2,w2).
        assert!(close(&a[0], [0.25, 0.25, 0.15, 0.15], 1e-6));
        assert!(close(&a[1], [0.25, 0.25, sp0, sp0], 1e-6));
        assert!(close(&a[2], [0.25, 0.25, h2, w2], 1e-6));
        assert!(close(&a[3], [0.25, 0.25, w2, h2], 1e-6));
        // Location (y 0, x 1) next, then (y 1, x 0).
        assert!(close(&a[4], [0.25, 0.75, 0.15, 0.15], 1e-6));
        assert!(close(&a[8], [0.75, 0.25, 0.15, 0.15], 1e-6));
        // Map 1: s = 0.9, s' = sqrt(0.9·1.0).
        let sp1 = 0.9f64.sqrt();
        assert!(close(&a[16], [0.5, 0.5, 0.9, 0.9], 1e-6));
        assert!(close(&a[17], [0.5, 0.5, sp1, sp1], 1e-6));
    }

    #[test]
    fn torchvision_steps_scales_and_clip() {
        // SSD300-style explicit scales/steps: 300/step = 37.5 → centre of cell 0 is 0.5/37.5.
        let mut spec = TorchvisionAnchors {
            feature_maps: vec![1],
            aspect_ratios: vec![vec![3.0]],
            min_ratio: 0.15,
            max_ratio: 0.9,
            scales: Some(vec![0.8, 1.2]),
            steps: Some(vec![8]),
            clip: true,
        };
        let a = torchvision_default_boxes(&spec, 300, 300).unwrap();
        let c = 0.5 / 37.5;
        let r3 = 3f64.sqrt();
        // s' = sqrt(0.96) < 1; ratio 3: w = 0.8·√3 = 1.386 → clipped to 1, h = 0.8/√3.
        assert!(close(&a[0], [c, c, 0.8, 0.8], 1e-6));
        assert!(close(&a[1], [c, c, 0.96f64.sqrt(), 0.96f64.sqrt()], 1e-6));
        assert!(close(&a[2], [c, c, 0.8 / r3, 1.0], 1e-6));
        assert!(close(&a[3], [c, c, 1.0, 0.8 / r3], 1e-6));
        spec.clip = false;
        let a = torchvision_default_boxes(&spec, 300, 300).unwrap();
        assert!(close(&a[2], [c, c, 0.8 / r3, 0.8 * r3], 1e-6));
        spec.scales = Some(vec![0.8]);
        assert!(torchvision_default_boxes(&spec, 300, 300).is_err());
    }

    #[test]
    fn torchvision_ssdlite320_count() {
        // torchvision ssdlite320_mobilenet_v3_large: 6 maps, ratios [2,3] each, min 0.2 max 0.95.
        let spec = TorchvisionAnchors {
            feature_maps: vec![20, 10, 5, 3, 2, 1],
            aspect_ratios: vec![vec![2.0, 3.0]; 6],
            min_ratio: 0.2,
            max_ratio: 0.95,
            scales: None,
            steps: None,
            clip: true,
        };
        let a = torchvision_default_boxes(&spec, 320, 320).unwrap();
        assert_eq!(a.len(), (400 + 100 + 25 + 9 + 4 + 1) * 6);
    }
}
