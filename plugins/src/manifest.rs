//! Model manifest: everything needed to run one ONNX detector, in one TOML file next to it.
//!
//! The manifest is the single description of a model that every backend and decoder reads:
//! input tensor and preprocessing, output names, head type and parameters, labels, and how labels
//! map to the road-user classes the rest of the pipeline reasons about.

pub use crate::anchors::{AnchorSpec, FileAnchors, TfAnchors, TorchvisionAnchors};
use crate::range::{self, Bound, Numbers, Range, Refused, Row};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read model manifest {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model manifest {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("model manifest {path}{line}: key `{key}`: {message}", line = line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        key: String,
        line: Option<usize>,
        message: String,
    },
}

impl ManifestError {
    /// A refused value of the manifest `text` read from `path`, with the line it is on.
    fn refused(refused: Refused, text: &str, path: &Path) -> ManifestError {
        ManifestError::Invalid {
            path: path.to_path_buf(),
            line: refused.line(text),
            key: refused.key,
            message: refused.message,
        }
    }
}

/// Longest side of a model input, px. With batch 1 and 3 channels the f32 input tensor is at
/// most 3 × 4096 × 4096 × 4 B = 192 MiB: a manifest cannot make the daemon allocate more for it
/// (nor for its preprocessing buffers, which are the same size).
pub const MAX_INPUT_SIDE: usize = 4096;

/// Shortest side of a model input, px: below this no road user is more than a few pixels.
pub const MIN_INPUT_SIDE: usize = 16;

/// A detector model: an ONNX file plus how to feed it and read it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name used in logs and reports.
    pub name: String,
    /// Path of the ONNX file; relative paths are resolved against the manifest's folder by
    /// [`Manifest::load`].
    pub onnx: PathBuf,
    /// Expected sha256 of the ONNX file (lower-case hex). Backends refuse a file that differs.
    pub sha256: Option<String>,
    pub input: InputSpec,
    pub head: HeadSpec,
    /// Label names, indexed by the decoder's class index (background excluded).
    pub labels: Vec<String>,
    /// Label name → road-user class. Labels not listed are [`RoadUser::Ignored`].
    #[serde(default)]
    pub classes: BTreeMap<String, RoadUser>,
    /// Default minimum score for a detection to be reported, in `[0, 1]`.
    pub score_threshold: f32,
    /// IoU above which a lower-scored box of the same class is suppressed, in `(0, 1]`.
    pub nms_iou: f32,
    /// At most this many detections per image, after NMS.
    #[serde(default = "default_max_detections")]
    pub max_detections: usize,
    /// Which candidates NMS compares (SSD heads may use [`NmsMode::BestClass`]).
    #[serde(default)]
    pub nms: NmsMode,
    /// The INT8 calibration table of a float model (`adasd calibrate-int8`), for the GPU engine's
    /// precision "int8"; relative paths are resolved like `onnx`.
    #[serde(default)]
    pub int8_calibration: Option<PathBuf>,
}

/// How candidates are formed and suppressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NmsMode {
    /// Every class at or above the threshold is a candidate; a box only suppresses boxes of its
    /// own class (TF OD API multiclass NMS, torchvision, NanoDet).
    #[default]
    PerClass,
    /// Each anchor contributes one candidate, its best class; a box suppresses boxes of any
    /// class (TensorFlow Lite `TFLite_Detection_PostProcess` with `use_regular_nms = false`).
    BestClass,
}

fn default_max_detections() -> usize {
    100
}

impl Manifest {
    /// The top-level keys' ranges.
    pub const RANGES: &'static [Bound<Manifest>] = &[
        Bound::new(
            "labels",
            Range::new(1.0, 2000.0, "labels"),
            |m| m.labels.len().numbers(),
            "the largest detection vocabularies (LVIS) have about 1200 classes",
        ),
        Bound::new(
            "score_threshold",
            Range::new(0.0, 1.0, ""),
            |m| m.score_threshold.numbers(),
            "a probability",
        ),
        Bound::new(
            "nms_iou",
            Range::new(0.01, 1.0, ""),
            |m| m.nms_iou.numbers(),
            "an overlap ratio; 0 would let one box suppress every other one",
        ),
        Bound::new(
            "max_detections",
            Range::new(1.0, 1000.0, "detections"),
            |m| m.max_detections.numbers(),
            "the tracker keeps at most 1024 tracks; more boxes per frame are noise",
        ),
    ];

    /// Every range a manifest's keys have, for the documentation (`[table]` as in the file).
    pub fn range_rows() -> Vec<Row> {
        [
            range::rows("manifest (top level)", Manifest::RANGES),
            range::rows("manifest `[input]`", InputSpec::RANGES),
            range::rows("manifest `[head]` ssd", SsdHead::RANGES),
            range::rows("manifest `[head.anchors]` tf", TfAnchors::RANGES),
            range::rows(
                "manifest `[head.anchors]` torchvision",
                TorchvisionAnchors::RANGES,
            ),
            range::rows("manifest `[head]` gfl", GflHead::RANGES),
            range::rows("manifest `[[head.levels]]` gfl", GflLevel::RANGES),
            range::rows("manifest `[head]` decoded", DecodedHead::RANGES),
        ]
        .concat()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColourOrder {
    Rgb,
    Bgr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale each axis independently to the input size (aspect ratio not kept).
    Stretch,
    /// Keep the aspect ratio, scale to fit, pad the rest (see [`PadPosition`]).
    Letterbox,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PadPosition {
    /// Image at the top-left corner, padding right and bottom.
    #[default]
    BottomRight,
    /// Image centred, padding split on both sides.
    Centre,
}

/// Bilinear resize convention: where destination pixel `d` samples the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// Half-pixel centres, `s = (d + 0.5)·scale − 0.5` (OpenCV `INTER_LINEAR`, PyTorch
    /// `align_corners=False`, TF2).
    #[default]
    HalfPixel,
    /// `s = d·scale` (TF1 `resize_bilinear` without half-pixel centres, as in TF OD API graphs).
    Asymmetric,
}

/// The model input and the preprocessing that produces it from an 8-bit RGB frame.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// ONNX input name.
    pub name: String,
    /// Full input shape including batch, in `layout` order (e.g. `[1, 3, 416, 416]` for NCHW).
    pub shape: [usize; 4],
    pub layout: Layout,
    /// Channel order the model expects.
    pub colour: ColourOrder,
    pub resize: ResizeMode,
    #[serde(default)]
    pub pad: PadPosition,
    /// Where bilinear resizing samples the source image.
    #[serde(default)]
    pub sampling: Sampling,
    /// Padding value in pixel units (0–255), before normalisation.
    #[serde(default)]
    pub pad_value: f32,
    /// Normalisation `value = (pixel − mean) / std`, pixels in 0–255, per channel in the model's
    /// channel order.
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl InputSpec {
    pub const RANGES: &'static [Bound<InputSpec>] = &[
        Bound::new(
            "shape",
            Range::new(1.0, MAX_INPUT_SIDE as f64, "each"),
            |i| i.shape.numbers(),
            "also: batch 1, 3 channels, height and width 16–4096 px, so the f32 input tensor \
             is at most 192 MiB",
        ),
        Bound::new(
            "pad_value",
            Range::new(0.0, 255.0, "pixel value"),
            |i| i.pad_value.numbers(),
            "an 8-bit pixel",
        ),
        Bound::new(
            "mean",
            Range::new(0.0, 255.0, "pixel value"),
            |i| i.mean.numbers(),
            "the mean of 8-bit pixels",
        ),
        Bound::new(
            "std",
            Range::new(0.1, 1000.0, "pixel value"),
            |i| i.std.numbers(),
            "a divisor: 1 keeps 0–255, 255 maps to 0–1; near 0 the input explodes",
        ),
    ];

    /// Model input width and height in pixels.
    pub fn size(&self) -> (usize, usize) {
        match self.layout {
            Layout::Nchw => (self.shape[3], self.shape[2]),
            Layout::Nhwc => (self.shape[2], self.shape[1]),
        }
    }

    fn channels(&self) -> usize {
        match self.layout {
            Layout::Nchw => self.shape[1],
            Layout::Nhwc => self.shape[3],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// Outputs are already probabilities.
    None,
    Sigmoid,
    /// Softmax across the class axis (including the background column, if any).
    Softmax,
}

/// The detection head, i.e. how raw outputs become boxes.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum HeadSpec {
    Ssd(SsdHead),
    Gfl(GflHead),
    Decoded(DecodedHead),
}

/// Order of the four numbers in an SSD box encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxEncoding {
    /// TF Object Detection API `FasterRcnnBoxCoder`: (ty, tx, th, tw).
    Yxhw,
    /// torchvision `BoxCoder`: (dx, dy, dw, dh).
    Xywh,
}

/// Anchor-based SSD head.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsdHead {
    /// Output with box encodings, `[1, A, 4]` or `[1, A, 1, 4]`.
    pub boxes: String,
    /// Output with class scores/logits, `[1, A, C]`.
    pub scores: String,
    pub box_encoding: BoxEncoding,
    /// Box-coder scales in encoding order: TF (y, x, h, w) = (10, 10, 5, 5); torchvision
    /// weights (x, y, w, h) = (10, 10, 5, 5).
    pub box_coder_scales: [f32; 4],
    pub score_activation: Activation,
    /// Score column 0 is the background class and is not a label.
    pub background_class: bool,
    pub anchors: AnchorSpec,
}

impl SsdHead {
    pub const RANGES: &'static [Bound<SsdHead>] = &[Bound::new(
        "box_coder_scales",
        Range::new(0.1, 100.0, "each"),
        |h| h.box_coder_scales.numbers(),
        "divisors of the box encodings; TF and torchvision use 10 and 5",
    )];
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// NanoDet-style generalised focal loss head: per-level class scores and box-side distributions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GflHead {
    /// Number of bins minus one per box side (NanoDet-m: 10 → 11 bins).
    pub reg_max: usize,
    /// Offset of a cell's point in cells: 0 → (x·stride, y·stride), 0.5 → cell centre.
    #[serde(default)]
    pub cell_offset: f32,
    pub score_activation: Activation,
    pub levels: Vec<GflLevel>,
}

impl GflHead {
    pub const RANGES: &'static [Bound<GflHead>] = &[
        Bound::new(
            "reg_max",
            Range::new(1.0, 64.0, "bins − 1"),
            |h| h.reg_max.numbers(),
            "NanoDet uses 7 or 10; the distribution is read per box side",
        ),
        Bound::new(
            "cell_offset",
            Range::new(0.0, 1.0, "cells"),
            |h| h.cell_offset.numbers(),
            "a point inside its cell (0 corner, 0.5 centre)",
        ),
        Bound::new(
            "levels",
            Range::new(1.0, 8.0, "levels"),
            |h| h.levels.len().numbers(),
            "feature pyramids have 3–5 levels",
        ),
    ];
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GflLevel {
    pub stride: usize,
    /// Output `[1, N, C]` with class scores.
    pub scores: String,
    /// Output `[1, N, 4·(reg_max+1)]` with box-side distributions (left, top, right, bottom).
    pub boxes: String,
}

impl GflLevel {
    pub const RANGES: &'static [Bound<GflLevel>] = &[Bound::new(
        "stride",
        Range::new(2.0, 256.0, "px"),
        |l| l.stride.numbers(),
        "input pixels per cell; pyramids use 8–64",
    )];
}

/// Coordinates of an already decoded box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BoxFormat {
    /// (ymin, xmin, ymax, xmax) in `[0, 1]` of the model input (TF OD API).
    YxyxNormalised,
    /// (x1, y1, x2, y2) in `[0, 1]` of the model input.
    XyxyNormalised,
    /// (x1, y1, x2, y2) in model-input pixels.
    XyxyPixels,
}

/// A model whose graph already ends with decoding and NMS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodedHead {
    /// `[1, K, 4]` boxes.
    pub boxes: String,
    /// `[1, K]` scores.
    pub scores: String,
    /// `[1, K]` class ids (as floats).
    pub classes: String,
    /// Optional `[1]` number of valid rows.
    pub count: Option<String>,
    pub box_format: BoxFormat,
    /// Subtracted from the class id to get the label index (TF OD API: 1).
    #[serde(default)]
    pub class_offset: i64,
}

impl DecodedHead {
    pub const RANGES: &'static [Bound<DecodedHead>] = &[Bound::new(
        "class_offset",
        Range::new(0.0, 100.0, ""),
        |h| h.class_offset.numbers(),
        "TF OD API ids start at 1 (background 0); a larger shift means another label list",
    )];
}

/// What the rest of the pipeline cares about. Everything a decision could react to is one of
/// the first five; `Other` is a road obstacle of unknown kind; `Ignored` never reaches BEV.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RoadUser {
    Pedestrian,
    Cyclist,
    Car,
    TruckBus,
    Motorcycle,
    Other,
    Ignored,
}

impl RoadUser {
    pub const ALL: [RoadUser; 7] = [
        RoadUser::Pedestrian,
        RoadUser::Cyclist,
        RoadUser::Car,
        RoadUser::TruckBus,
        RoadUser::Motorcycle,
        RoadUser::Other,
        RoadUser::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoadUser::Pedestrian => "pedestrian",
            RoadUser::Cyclist => "cyclist",
            RoadUser::Car => "car",
            RoadUser::TruckBus => "truck_bus",
            RoadUser::Motorcycle => "motorcycle",
            RoadUser::Other => "other",
            RoadUser::Ignored => "ignored",
        }
    }
}

impl std::fmt::Display for RoadUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Manifest {
    /// Reads and validates a manifest; the ONNX path is resolved against the manifest's folder.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut manifest = Self::parse(&text, path)?;
        let base = path.parent().unwrap_or(Path::new("."));
        if manifest.onnx.is_relative() {
            manifest.onnx = base.join(&manifest.onnx);
        }
        if let Some(table) = manifest
            .int8_calibration
            .as_mut()
            .filter(|t| t.is_relative())
        {
            *table = base.join(&*table);
        }
        if let HeadSpec::Ssd(SsdHead {
            anchors: AnchorSpec::File(table),
            ..
        }) = &mut manifest.head
        {
            if table.path.is_relative() {
                table.path = base.join(&table.path);
            }
            table.anchors = crate::anchors::read_table(&table.path, table.sha256.as_deref())
                .map_err(|e| {
                    let refused = Refused::new("head.anchors.path", e.to_string());
                    ManifestError::refused(refused, &text, path)
                })?;
        }
        Ok(manifest)
    }

    /// Parses and validates manifest text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| ManifestError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        manifest
            .check()
            .map_err(|r| ManifestError::refused(r, text, path))?;
        Ok(manifest)
    }

    /// Road-user class of a label index.
    pub fn class_of(&self, label: usize) -> RoadUser {
        self.labels
            .get(label)
            .and_then(|name| self.classes.get(name))
            .copied()
            .unwrap_or(RoadUser::Ignored)
    }

    /// Label name of a label index (`"?"` for an index outside the list).
    pub fn label_name(&self, label: usize) -> &str {
        self.labels.get(label).map(String::as_str).unwrap_or("?")
    }

    /// Names of all outputs the head reads, in a fixed order (the order backends return them).
    pub fn output_names(&self) -> Vec<&str> {
        match &self.head {
            HeadSpec::Ssd(h) => vec![h.boxes.as_str(), h.scores.as_str()],
            HeadSpec::Gfl(h) => h
                .levels
                .iter()
                .flat_map(|l| [l.scores.as_str(), l.boxes.as_str()])
                .collect(),
            HeadSpec::Decoded(h) => {
                let mut names = vec![h.boxes.as_str(), h.scores.as_str(), h.classes.as_str()];
                names.extend(h.count.as_deref());
                names
            }
        }
    }

    /// The road users a decision can react to: the classes the labels map to, less `ignored`.
    /// Empty means the detector reports nothing AEB acts on.
    pub fn road_users(&self) -> BTreeSet<RoadUser> {
        self.labels
            .iter()
            .filter_map(|label| self.classes.get(label))
            .copied()
            .filter(|c| *c != RoadUser::Ignored)
            .collect()
    }

    /// The first value the manifest may not have: ranges first, then the rules between keys.
    fn check(&self) -> Result<(), Refused> {
        range::check(self, Manifest::RANGES)?;
        let input = &self.input;
        range::check(input, InputSpec::RANGES).map_err(|r| r.within("input"))?;
        let shape = |message: String| Err(Refused::new("input.shape", message));
        if input.shape[0] != 1 {
            return shape(format!(
                "batch must be 1 in the manifest, got {}",
                input.shape[0]
            ));
        }
        if input.channels() != 3 {
            return shape(format!(
                "{:?} has {} channels for layout {:?}; expected 3",
                input.shape,
                input.channels(),
                input.layout
            ));
        }
        let (w, h) = input.size();
        if w.min(h) < MIN_INPUT_SIDE {
            return shape(format!(
                "{w}×{h} px: height and width must lie in {MIN_INPUT_SIDE}–{MAX_INPUT_SIDE} px"
            ));
        }
        if let Some(unknown) = self.classes.keys().find(|k| !self.labels.contains(k)) {
            return Err(Refused::new(
                "classes",
                format!("`{unknown}` is not one of the labels"),
            ));
        }
        if self.sha256.as_deref().is_some_and(|sha| !is_sha256(sha)) {
            return Err(Refused::new("sha256", "must be 64 hex digits"));
        }
        if self.nms == NmsMode::BestClass && !matches!(self.head, HeadSpec::Ssd(_)) {
            return Err(Refused::new(
                "nms",
                "\"best-class\" is only defined for `ssd` heads; use \"per-class\"",
            ));
        }
        match &self.head {
            HeadSpec::Ssd(h) => {
                range::check(h, SsdHead::RANGES).map_err(|r| r.within("head"))?;
                check_anchors(&h.anchors).map_err(|r| r.within("head.anchors"))
            }
            HeadSpec::Gfl(h) => {
                range::check(h, GflHead::RANGES).map_err(|r| r.within("head"))?;
                h.levels.iter().enumerate().try_for_each(|(i, level)| {
                    range::check(level, GflLevel::RANGES)
                        .map_err(|r| r.within(&format!("head.levels[{i}]")))
                })
            }
            HeadSpec::Decoded(h) => {
                range::check(h, DecodedHead::RANGES).map_err(|r| r.within("head"))
            }
        }
    }
}

/// Generated anchors: each key in its range, the rules between keys, and no more anchors than
/// [`crate::anchors::MAX_ANCHORS`] (checked before any is generated).
fn check_anchors(spec: &AnchorSpec) -> Result<(), Refused> {
    match spec {
        AnchorSpec::Tf(a) => {
            range::check(a, TfAnchors::RANGES)?;
            if a.min_scale > a.max_scale {
                return Err(Refused::new("min_scale", "must be ≤ max_scale"));
            }
        }
        AnchorSpec::Torchvision(a) => {
            range::check(a, TorchvisionAnchors::RANGES)?;
            if a.aspect_ratios.len() != a.feature_maps.len() {
                return Err(Refused::new(
                    "aspect_ratios",
                    "needs one list per feature map",
                ));
            }
            if a.min_ratio > a.max_ratio {
                return Err(Refused::new("min_ratio", "must be ≤ max_ratio"));
            }
        }
        AnchorSpec::File(a) => {
            if a.sha256.as_deref().is_some_and(|sha| !is_sha256(sha)) {
                return Err(Refused::new("sha256", "must be 64 hex digits"));
            }
        }
    }
    match crate::anchors::count(spec) {
        Some(n) if n > crate::anchors::MAX_ANCHORS => Err(Refused::new(
            "feature_maps",
            format!(
                "these maps make {n} anchors; at most {} are allowed",
                crate::anchors::MAX_ANCHORS
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SSD: &str = r#"
name = "t"
onnx = "t.onnx"
labels = ["person"]
score_threshold = 0.5
nms_iou = 0.6
[classes]
person = "pedestrian"
[input]
name = "in"
shape = [1, 300, 300, 3]
layout = "nhwc"
colour = "rgb"
resize = "stretch"
mean = [127.5, 127.5, 127.5]
std = [127.5, 127.5, 127.5]
[head]
type = "ssd"
boxes = "b"
scores = "s"
box_encoding = "yxhw"
box_coder_scales = [10.0, 10.0, 5.0, 5.0]
score_activation = "sigmoid"
background_class = true
[head.anchors]
style = "tf"
feature_maps = [19, 10, 5, 3, 2, 1]
min_scale = 0.2
max_scale = 0.95
aspect_ratios = [1.0, 2.0, 0.5, 3.0, 0.3333]
reduce_boxes_in_lowest_layer = true
"#;

    #[test]
    fn parses_a_complete_ssd_manifest() {
        let m = Manifest::parse(SSD, Path::new("t.toml")).unwrap();
        assert_eq!(m.input.size(), (300, 300));
        assert_eq!(m.class_of(0), RoadUser::Pedestrian);
        assert_eq!(m.class_of(7), RoadUser::Ignored);
        assert_eq!(m.output_names(), vec!["b", "s"]);
        assert_eq!(m.max_detections, 100);
    }

    #[test]
    fn rejects_unknown_keys_naming_file_and_line() {
        let text = SSD.replace("nms_iou = 0.6", "nms_iou = 0.6\nnms_iuo = 0.5");
        let err = Manifest::parse(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml"), "{err}");
        assert!(err.contains("nms_iuo"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn rejects_out_of_range_values_naming_the_key() {
        let text = SSD.replace("score_threshold = 0.5", "score_threshold = 1.5");
        let err = Manifest::parse(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("score_threshold"), "{err}");
        let text = SSD.replace("person = \"pedestrian\"", "persn = \"pedestrian\"");
        let err = Manifest::parse(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("persn"), "{err}");
    }

    /// The error for `SSD` with `from` replaced by `to`.
    fn refused(from: &str, to: &str) -> String {
        assert!(SSD.contains(from), "{from}");
        let text = SSD.replace(from, to);
        Manifest::parse(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string()
    }

    /// The 1-based line of `SSD` that starts with `prefix`.
    fn line(prefix: &str) -> usize {
        SSD.lines().position(|l| l.starts_with(prefix)).unwrap() + 1
    }

    #[test]
    fn every_range_class_names_file_key_line_and_range() {
        // Too large, negative, NaN and infinite, at the top, in a table and in an array.
        let cases = [
            (
                "max_detections = 20",
                "max_detections = 100000",
                "max_detections",
                "1–1000 detections",
            ),
            ("nms_iou = 0.6", "nms_iou = -0.5", "nms_iou", "0.01–1"),
            ("nms_iou = 0.6", "nms_iou = nan", "nms_iou", "0.01–1"),
            (
                "score_threshold = 0.5",
                "score_threshold = inf",
                "score_threshold",
                "0–1",
            ),
            (
                "std = [127.5, 127.5, 127.5]",
                "std = [127.5, -1.0, 127.5]",
                "input.std",
                "0.1–1000 pixel value",
            ),
            (
                "mean = [127.5, 127.5, 127.5]",
                "mean = [127.5, 127.5, nan]",
                "input.mean",
                "0–255 pixel value",
            ),
            (
                "box_coder_scales = [10.0, 10.0, 5.0, 5.0]",
                "box_coder_scales = [10.0, 10.0, 5.0, 1e9]",
                "head.box_coder_scales",
                "0.1–100 each",
            ),
            (
                "min_scale = 0.2",
                "min_scale = -0.2",
                "head.anchors.min_scale",
                "0.01–1 of the input",
            ),
            (
                "aspect_ratios = [1.0, 2.0, 0.5, 3.0, 0.3333]",
                "aspect_ratios = [1.0, inf]",
                "head.anchors.aspect_ratios",
                "0.05–20 each",
            ),
        ];
        let text = SSD.replace("nms_iou = 0.6", "nms_iou = 0.6\nmax_detections = 20");
        for (from, to, key, range) in cases {
            let bad = text.replace(from, to);
            assert_ne!(bad, text, "{from}");
            let err = Manifest::parse(&bad, Path::new("m.toml"))
                .unwrap_err()
                .to_string();
            let leaf = to.split(" =").next().unwrap();
            let line = bad
                .lines()
                .position(|l| l.starts_with(&format!("{leaf} =")))
                .unwrap()
                + 1;
            assert!(
                err.contains("m.toml")
                    && err.contains(&format!("line {line}:"))
                    && err.contains(&format!("key `{key}`"))
                    && err.contains(&format!("allowed range {range}")),
                "{to}: {err}"
            );
        }
    }

    #[test]
    fn an_input_shape_bomb_is_refused_before_anything_is_allocated() {
        // 3 × 100 000 × 100 000 f32 = 120 GB: refused by the parse, which allocates no tensor.
        let err = refused("shape = [1, 300, 300, 3]", "shape = [1, 100000, 100000, 3]");
        assert!(
            err.contains(&format!("line {}:", line("shape")))
                && err.contains("input.shape")
                && err.contains("element 2: 100000 is outside the allowed range 1–4096 each"),
            "{err}"
        );
        let err = refused("shape = [1, 300, 300, 3]", "shape = [1, 8, 300, 3]");
        assert!(
            err.contains("300×8 px") && err.contains("16–4096 px"),
            "{err}"
        );
        let err = refused("shape = [1, 300, 300, 3]", "shape = [2, 300, 300, 3]");
        assert!(err.contains("batch must be 1"), "{err}");
        // Anchors are counted before they are generated.
        let err = refused(
            "feature_maps = [19, 10, 5, 3, 2, 1]",
            "feature_maps = [1024, 1024, 1024, 1024]",
        );
        assert!(
            err.contains("head.anchors.feature_maps") && err.contains("at most 1000000"),
            "{err}"
        );
    }

    #[test]
    fn gfl_levels_are_named_by_their_index_and_line() {
        let start = SSD.find("[head]").unwrap();
        let text = format!(
            "{}[head]\ntype = \"gfl\"\nreg_max = 7\nscore_activation = \"sigmoid\"\n\
             [[head.levels]]\nstride = 8\nscores = \"s8\"\nboxes = \"b8\"\n\
             [[head.levels]]\nstride = 0\nscores = \"s16\"\nboxes = \"b16\"\n",
            &SSD[..start]
        );
        let err = Manifest::parse(&text, Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        let line = text.lines().position(|l| l == "stride = 0").unwrap() + 1;
        assert!(
            err.contains("head.levels[1].stride")
                && err.contains(&format!("line {line}:"))
                && err.contains("2–256 px"),
            "{err}"
        );
    }

    #[test]
    fn road_users_are_the_mapped_classes_an_empty_map_has_none() {
        let m = Manifest::parse(SSD, Path::new("t.toml")).unwrap();
        assert_eq!(m.road_users(), BTreeSet::from([RoadUser::Pedestrian]));
        let text = SSD.replace("person = \"pedestrian\"", "");
        let m = Manifest::parse(&text, Path::new("t.toml")).unwrap();
        assert!(m.classes.is_empty() && m.road_users().is_empty());
        let text = SSD.replace("person = \"pedestrian\"", "person = \"ignored\"");
        let m = Manifest::parse(&text, Path::new("t.toml")).unwrap();
        assert!(m.road_users().is_empty());
    }

    #[test]
    fn the_shipped_models_are_in_range() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
        for entry in std::fs::read_dir(&models).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Manifest::load(&path).unwrap();
            }
        }
    }

    #[test]
    fn best_class_nms_and_anchor_tables_are_ssd_options() {
        let m = Manifest::parse(SSD, Path::new("t.toml")).unwrap();
        assert_eq!(m.nms, NmsMode::PerClass);
        let text = SSD.replace("nms_iou = 0.6", "nms_iou = 0.6\nnms = \"best-class\"");
        let m = Manifest::parse(&text, Path::new("t.toml")).unwrap();
        assert_eq!(m.nms, NmsMode::BestClass);
        // A table style needs its file, read by `load` (relative to the manifest's folder).
        let start = SSD.find("[head.anchors]").unwrap();
        let text = format!(
            "{}[head.anchors]\nstyle = \"file\"\npath = \"missing.anchors\"\n",
            &SSD[..start]
        );
        let m = Manifest::parse(&text, Path::new("t.toml")).unwrap();
        let HeadSpec::Ssd(h) = &m.head else {
            unreachable!("ssd")
        };
        assert!(crate::anchors::generate(&h.anchors, 300, 300).is_err());
        let dir = std::env::temp_dir().join(format!("adas-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("m.toml"), &text).unwrap();
        let err = Manifest::load(&dir.join("m.toml")).unwrap_err().to_string();
        assert!(
            err.contains("head.anchors.path") && err.contains("missing.anchors"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
