//! Model manifest: everything needed to run one ONNX detector, in one TOML file next to it.
//!
//! The manifest is the single description of a model that every backend and decoder reads:
//! input tensor and preprocessing, output names, head type and parameters, labels, and how labels
//! map to the road-user classes the rest of the pipeline reasons about.

pub use crate::anchors::{AnchorSpec, FileAnchors, TfAnchors, TorchvisionAnchors};
use serde::Deserialize;
use std::collections::BTreeMap;
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
    #[error("model manifest {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GflLevel {
    pub stride: usize,
    /// Output `[1, N, C]` with class scores.
    pub scores: String,
    /// Output `[1, N, 4·(reg_max+1)]` with box-side distributions (left, top, right, bottom).
    pub boxes: String,
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
        if let HeadSpec::Ssd(SsdHead {
            anchors: AnchorSpec::File(table),
            ..
        }) = &mut manifest.head
        {
            if table.path.is_relative() {
                table.path = base.join(&table.path);
            }
            table.anchors = crate::anchors::read_table(&table.path, table.sha256.as_deref())
                .map_err(|e| ManifestError::Invalid {
                    path: path.to_path_buf(),
                    key: "head.anchors.path".into(),
                    message: e.to_string(),
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
        manifest.validate(path)?;
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

    fn validate(&self, path: &Path) -> Result<(), ManifestError> {
        let invalid = |key: &str, message: String| {
            Err(ManifestError::Invalid {
                path: path.to_path_buf(),
                key: key.to_string(),
                message,
            })
        };
        let input = &self.input;
        if input.shape.contains(&0) {
            return invalid(
                "input.shape",
                format!("{:?} has a zero dimension", input.shape),
            );
        }
        if input.shape[0] != 1 {
            return invalid(
                "input.shape",
                format!("batch must be 1 in the manifest, got {}", input.shape[0]),
            );
        }
        if input.channels() != 3 {
            return invalid(
                "input.shape",
                format!(
                    "{:?} has {} channels for layout {:?}; expected 3",
                    input.shape,
                    input.channels(),
                    input.layout
                ),
            );
        }
        if input.mean.iter().any(|m| !m.is_finite()) {
            return invalid("input.mean", "must be finite".into());
        }
        if input.std.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return invalid("input.std", "must be finite and > 0".into());
        }
        if self.labels.is_empty() {
            return invalid("labels", "must list at least one label".into());
        }
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return invalid(
                "score_threshold",
                format!("{} is outside [0, 1]", self.score_threshold),
            );
        }
        if !(self.nms_iou > 0.0 && self.nms_iou <= 1.0) {
            return invalid("nms_iou", format!("{} is outside (0, 1]", self.nms_iou));
        }
        if self.max_detections == 0 {
            return invalid("max_detections", "must be at least 1".into());
        }
        if let Some(unknown) = self.classes.keys().find(|k| !self.labels.contains(k)) {
            return invalid("classes", format!("`{unknown}` is not one of the labels"));
        }
        if let Some(sha) = &self.sha256 {
            if !is_sha256(sha) {
                return invalid("sha256", "must be 64 hex digits".into());
            }
        }
        if self.nms == NmsMode::BestClass && !matches!(self.head, HeadSpec::Ssd(_)) {
            return invalid(
                "nms",
                "\"best-class\" is only defined for `ssd` heads; use \"per-class\"".into(),
            );
        }
        match &self.head {
            HeadSpec::Ssd(h) => {
                if h.box_coder_scales
                    .iter()
                    .any(|s| !s.is_finite() || *s <= 0.0)
                {
                    return invalid("head.box_coder_scales", "must be finite and > 0".into());
                }
                let maps: &[usize] = match &h.anchors {
                    AnchorSpec::Tf(a) => {
                        if !(a.min_scale > 0.0 && a.min_scale <= a.max_scale) {
                            return invalid(
                                "head.anchors",
                                "need 0 < min_scale ≤ max_scale".into(),
                            );
                        }
                        if a.aspect_ratios.iter().any(|r| !r.is_finite() || *r <= 0.0) {
                            return invalid("head.anchors.aspect_ratios", "must be > 0".into());
                        }
                        &a.feature_maps
                    }
                    AnchorSpec::Torchvision(a) => {
                        if a.aspect_ratios.len() != a.feature_maps.len() {
                            return invalid(
                                "head.anchors.aspect_ratios",
                                "needs one list per feature map".into(),
                            );
                        }
                        &a.feature_maps
                    }
                    AnchorSpec::File(a) => {
                        if a.sha256.as_deref().is_some_and(|sha| !is_sha256(sha)) {
                            return invalid("head.anchors.sha256", "must be 64 hex digits".into());
                        }
                        &[]
                    }
                };
                if !matches!(h.anchors, AnchorSpec::File(_))
                    && (maps.is_empty() || maps.contains(&0))
                {
                    return invalid(
                        "head.anchors.feature_maps",
                        "must be non-empty sizes > 0".into(),
                    );
                }
            }
            HeadSpec::Gfl(h) => {
                if h.levels.is_empty() {
                    return invalid("head.levels", "must list at least one level".into());
                }
                if h.levels.iter().any(|l| l.stride == 0) {
                    return invalid("head.levels.stride", "must be > 0".into());
                }
            }
            HeadSpec::Decoded(_) => {}
        }
        Ok(())
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
