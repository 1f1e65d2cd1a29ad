//! Head decoders: raw model outputs → candidate detections in normalised model-input coordinates
//! (`[0, 1]` of the input width/height, boxes clipped to that range), before NMS.
//!
//! A [`Decoder`] is built once per model from its [`Manifest`] (anchors are precomputed) and then
//! decodes every frame without per-anchor allocation: [`Decoder::decode_into`] reuses the
//! caller's vector. Scores are compared with `score ≥ threshold`; a candidate is emitted for
//! **every class** at or above the threshold (TF OD API, torchvision and NanoDet all do
//! multi-class NMS over such candidates), except for SSD heads of manifests with
//! `nms = "best-class"` (TensorFlow Lite's fast NMS): there only each anchor's best class.

mod decoded;
mod gfl;
mod ssd;

pub use decoded::DecodedDecoder;
pub use gfl::GflDecoder;
pub use ssd::SsdDecoder;

use crate::detection::{BBox, Detection};
use crate::manifest::{Activation, HeadSpec, Manifest, NmsMode};
use crate::tensor::{Tensor, TensorView};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    #[error("expected {expected} model outputs ({names}), got {got}")]
    OutputCount {
        expected: usize,
        got: usize,
        names: String,
    },
    #[error("model output #{index} `{name}`: expected shape {expected}, got {got:?}")]
    Shape {
        index: usize,
        name: String,
        expected: String,
        got: Vec<usize>,
    },
    #[error("cannot build the decoder for model `{model}`: {message}")]
    Config { model: String, message: String },
}

/// A decoder for one model's head, built from its manifest.
#[derive(Debug, Clone)]
pub enum Decoder {
    Ssd(SsdDecoder),
    Gfl(GflDecoder),
    Decoded(DecodedDecoder),
}

impl Decoder {
    /// Builds the decoder for `manifest.head` (precomputes SSD anchors).
    pub fn new(manifest: &Manifest) -> Result<Self, DecodeError> {
        let names: Vec<String> = manifest
            .output_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let (w, h) = manifest.input.size();
        let labels = manifest.labels.len();
        let config = |message: String| DecodeError::Config {
            model: manifest.name.clone(),
            message,
        };
        if labels == 0 {
            return Err(config("the manifest lists no labels".into()));
        }
        Ok(match &manifest.head {
            HeadSpec::Ssd(head) => {
                let best_class = manifest.nms == NmsMode::BestClass;
                Decoder::Ssd(
                    SsdDecoder::new(head, names, w, h, labels, best_class).map_err(config)?,
                )
            }
            HeadSpec::Gfl(head) => {
                Decoder::Gfl(GflDecoder::new(head, names, w, h, labels).map_err(config)?)
            }
            HeadSpec::Decoded(head) => {
                Decoder::Decoded(DecodedDecoder::new(head, names, w, h, labels))
            }
        })
    }

    /// Output names in the order [`Decoder::decode`] expects the tensors
    /// (= [`Manifest::output_names`]).
    pub fn output_names(&self) -> &[String] {
        match self {
            Decoder::Ssd(d) => d.output_names(),
            Decoder::Gfl(d) => d.output_names(),
            Decoder::Decoded(d) => d.output_names(),
        }
    }

    /// Decodes one image's outputs (in [`Decoder::output_names`] order) into candidates with
    /// `score ≥ score_threshold`, boxes in normalised model-input coordinates.
    pub fn decode(
        &self,
        outputs: &[Tensor],
        score_threshold: f32,
    ) -> Result<Vec<Detection>, DecodeError> {
        let mut out = Vec::new();
        self.decode_into(outputs, score_threshold, &mut out)?;
        Ok(out)
    }

    /// Like [`Decoder::decode`], into `out` (cleared first; its capacity is reused).
    pub fn decode_into(
        &self,
        outputs: &[Tensor],
        score_threshold: f32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DecodeError> {
        let views: Vec<TensorView<'_>> = outputs.iter().map(Tensor::view).collect();
        self.decode_views_into(&views, score_threshold, out)
    }

    /// Checks output shapes (in [`Decoder::output_names`] order) exactly as decoding does,
    /// without any data: how `adasd config check` compares the model file's outputs with the
    /// manifest before a frame is run.
    pub fn check_shapes(&self, shapes: &[&[usize]]) -> Result<(), DecodeError> {
        check_count(self.output_names(), shapes.len())?;
        match self {
            Decoder::Ssd(d) => d.check_shapes(shapes),
            Decoder::Gfl(d) => d.check_shapes(shapes),
            Decoder::Decoded(d) => d.check_shapes(shapes),
        }
    }

    /// Like [`Decoder::decode_into`], on borrowed outputs (e.g. a runtime's own output buffers,
    /// read in place).
    pub fn decode_views_into(
        &self,
        outputs: &[TensorView<'_>],
        score_threshold: f32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DecodeError> {
        out.clear();
        check_count(self.output_names(), outputs.len())?;
        match self {
            Decoder::Ssd(d) => d.decode_into(outputs, score_threshold, out),
            Decoder::Gfl(d) => d.decode_into(outputs, score_threshold, out),
            Decoder::Decoded(d) => d.decode_into(outputs, score_threshold, out),
        }
    }
}

fn check_count(names: &[String], got: usize) -> Result<(), DecodeError> {
    if names.len() == got {
        Ok(())
    } else {
        Err(DecodeError::OutputCount {
            expected: names.len(),
            got,
            names: names.join(", "),
        })
    }
}

/// The outputs' shapes, once each view's data is known to fill its shape (the decoders index
/// the data by the shape).
fn shapes_of<'a>(
    names: &[String],
    outputs: &[TensorView<'a>],
) -> Result<Vec<&'a [usize]>, DecodeError> {
    outputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let values: usize = t.shape.iter().product();
            if values == t.data.len() {
                Ok(t.shape)
            } else {
                let expected = format!("one with {} values", t.data.len());
                Err(shape_error(names, i, expected, t.shape))
            }
        })
        .collect()
}

fn shape_error(names: &[String], index: usize, expected: String, got: &[usize]) -> DecodeError {
    DecodeError::Shape {
        index,
        name: names.get(index).cloned().unwrap_or_default(),
        expected,
        got: got.to_vec(),
    }
}

#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Per-row score activation. For softmax, `max` and `inv_sum` are the row's maximum and
/// 1/Σexp(x − max) (over all columns, background included).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowActivation {
    kind: Activation,
    max: f32,
    inv_sum: f32,
}

impl RowActivation {
    #[inline]
    pub(crate) fn new(kind: Activation, row: &[f32]) -> Self {
        let (mut max, mut inv_sum) = (0.0, 1.0);
        if kind == Activation::Softmax {
            max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
            inv_sum = 1.0 / sum;
        }
        Self { kind, max, inv_sum }
    }

    #[inline]
    pub(crate) fn apply(&self, x: f32) -> f32 {
        match self.kind {
            Activation::None => x,
            Activation::Sigmoid => sigmoid(x),
            Activation::Softmax => (x - self.max).exp() * self.inv_sum,
        }
    }
}

/// A cheap, conservative pre-test on a row's raw label values, so that rows where no label can
/// reach the threshold (nearly all of them) skip the activation (`exp` per value) and the
/// per-value branches. It is exact: a row it rejects has no value whose activated score is
/// `≥ threshold` (see `tests::row_filter_never_rejects_a_passing_score`); rows it accepts go
/// through the full per-value test as before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowFilter {
    /// Raw values below this cannot pass.
    bound: f32,
}

impl RowFilter {
    pub(crate) fn new(kind: Activation, threshold: f32) -> Self {
        let bound = match kind {
            // The score is the raw value: the same comparison.
            Activation::None => threshold,
            // sigmoid is increasing: compare logits with the inverse sigmoid of the threshold,
            // lowered by a margin far wider than f32 rounding of `sigmoid`.
            Activation::Sigmoid => {
                let p = f64::from(threshold) * (1.0 - 1e-4);
                if p <= 0.0 {
                    f32::NEG_INFINITY
                } else if p >= 1.0 {
                    f32::INFINITY
                } else {
                    ((p / (1.0 - p)).ln() - 1e-3) as f32
                }
            }
            // A softmax score depends on the whole row: no shortcut.
            Activation::Softmax => f32::NEG_INFINITY,
        };
        Self { bound }
    }

    /// `false` when no value of `values` can pass. Branch-free over the row, so it vectorises;
    /// NaN values never pass (like `score ≥ threshold` with a NaN score).
    #[inline]
    pub(crate) fn may_pass(&self, values: &[f32]) -> bool {
        values.iter().fold(false, |any, &x| any | (x >= self.bound))
    }
}

/// A box from centre and size, clipped to `[0, 1]`.
#[inline]
pub(crate) fn clipped_box(cx: f32, cy: f32, w: f32, h: f32) -> BBox {
    clip01(BBox::new(
        cx - 0.5 * w,
        cy - 0.5 * h,
        cx + 0.5 * w,
        cy + 0.5 * h,
    ))
}

#[inline]
pub(crate) fn clip01(b: BBox) -> BBox {
    BBox::new(
        b.x1.clamp(0.0, 1.0),
        b.y1.clamp(0.0, 1.0),
        b.x2.clamp(0.0, 1.0),
        b.y2.clamp(0.0, 1.0),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The shipped pedestrian SSD's manifest.
    const SSD: &str = include_str!("../../../models/ssdlite_mobilenet_v2_pedestrian_300.toml");

    #[test]
    fn builds_from_the_pedestrian_manifest_and_checks_shapes() {
        let m = Manifest::parse(SSD, Path::new("t.toml")).unwrap();
        let d = Decoder::new(&m).unwrap();
        assert_eq!(d.output_names(), ["concat:0", "concat_1:0"]);
        let boxes = Tensor::zeros(vec![1, 1917, 1, 4]);
        let mut scores = Tensor::zeros(vec![1, 1917, 2]);
        // Anchor 0 (centre 0.5/19, 0.1 × 0.1) with a person logit of 2 → sigmoid 0.8808.
        scores.data[1] = 2.0;
        let dets = d.decode(&[boxes.clone(), scores.clone()], 0.6).unwrap();
        assert_eq!(dets.len(), 1);
        let c = 0.5f32 / 19.0;
        assert_eq!(dets[0].label, 0);
        assert!((dets[0].score - 0.880_797).abs() < 1e-5);
        // x1 = c − 0.05 < 0 is clipped to 0.
        assert_eq!(dets[0].bbox.x1, 0.0);
        assert!((dets[0].bbox.y2 - (c + 0.05)).abs() < 1e-6);

        let err = d
            .decode(std::slice::from_ref(&boxes), 0.5)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected 2") && err.contains("concat_1:0"),
            "{err}"
        );
        let bad = Tensor::zeros(vec![1, 1000, 4]);
        let err = d
            .decode(&[bad, scores.clone()], 0.5)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("concat:0") && err.contains("[1, 1917, 4]"),
            "{err}"
        );
        let bad = Tensor::zeros(vec![1, 1917, 3]);
        let err = d.decode(&[boxes, bad], 0.5).unwrap_err().to_string();
        assert!(
            err.contains("#1 `concat_1:0`") && err.contains("[1, 1917, 2]"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn row_filter_never_rejects_a_passing_score(
            x in -30f32..30.0,
            threshold in 0f32..1.0001,
            kind in proptest::sample::select(vec![
                Activation::None,
                Activation::Sigmoid,
                Activation::Softmax,
            ]),
        ) {
            let row = [x, -50.0];
            let passes = RowActivation::new(kind, &row).apply(x) >= threshold;
            proptest::prop_assert!(!passes || RowFilter::new(kind, threshold).may_pass(&row));
        }
    }

    #[test]
    fn row_filter_edges() {
        // Sigmoid logits near the threshold's inverse sigmoid (0.3 ↔ −0.847298) are let through.
        let f = RowFilter::new(Activation::Sigmoid, 0.3);
        assert!(f.may_pass(&[-0.8473]) && f.may_pass(&[5.0, f32::NAN]));
        assert!(!f.may_pass(&[-0.86, -3.0]) && !f.may_pass(&[f32::NAN]) && !f.may_pass(&[]));
        assert!(RowFilter::new(Activation::Sigmoid, 0.0).may_pass(&[-1e30]));
        assert!(!RowFilter::new(Activation::Sigmoid, 2.0).may_pass(&[1e30]));
        assert!(RowFilter::new(Activation::Softmax, 0.9).may_pass(&[-1e30]));
        let f = RowFilter::new(Activation::None, 0.35);
        assert!(f.may_pass(&[0.1, 0.35]) && !f.may_pass(&[0.349_999_96]));
    }

    #[test]
    fn softmax_row_activation() {
        let row = [0.0f32, (3.0f32).ln()];
        let a = RowActivation::new(Activation::Softmax, &row);
        assert!((a.apply(row[0]) - 0.25).abs() < 1e-6);
        assert!((a.apply(row[1]) - 0.75).abs() < 1e-6);
        let a = RowActivation::new(Activation::Sigmoid, &row);
        assert!((a.apply(0.0) - 0.5).abs() < 1e-6);
        let a = RowActivation::new(Activation::None, &row);
        assert_eq!(a.apply(0.3), 0.3);
    }
}
