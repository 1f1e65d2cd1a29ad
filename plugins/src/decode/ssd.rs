//! Anchor-based SSD heads (TF OD API and torchvision box coders).

use super::{clipped_box, shape_error, shapes_of, DecodeError, RowActivation, RowFilter};
use crate::anchors::{self, Anchor};
use crate::detection::Detection;
use crate::manifest::{Activation, BoxEncoding, SsdHead};
use crate::tensor::TensorView;

/// torchvision `BoxCoder.bbox_xform_clip`: log(1000/16), the largest decoded log size ratio.
const TV_XFORM_CLIP: f32 = 4.135_166_6;

/// Decodes `[1, A, 4]` (or `[1, A, 1, 4]`) box encodings and `[1, A, C]` class scores against
/// precomputed anchors.
#[derive(Debug, Clone)]
pub struct SsdDecoder {
    names: Vec<String>,
    anchors: Vec<Anchor>,
    encoding: BoxEncoding,
    scales: [f32; 4],
    activation: Activation,
    /// Index of the first label column (1 with a background column, else 0).
    first_label: usize,
    columns: usize,
    /// Only each anchor's best class is a candidate ([`crate::manifest::NmsMode::BestClass`]).
    best_class: bool,
}

impl SsdDecoder {
    pub(super) fn new(
        head: &SsdHead,
        names: Vec<String>,
        input_width: usize,
        input_height: usize,
        labels: usize,
        best_class: bool,
    ) -> Result<Self, String> {
        let anchors = anchors::generate(&head.anchors, input_width, input_height)
            .map_err(|e| e.to_string())?;
        let first_label = usize::from(head.background_class);
        Ok(Self {
            names,
            anchors,
            encoding: head.box_encoding,
            scales: head.box_coder_scales,
            activation: head.score_activation,
            first_label,
            columns: labels + first_label,
            best_class,
        })
    }

    pub fn output_names(&self) -> &[String] {
        &self.names
    }

    /// The precomputed anchors, `(cy, cx, h, w)` normalised.
    pub fn anchors(&self) -> &[Anchor] {
        &self.anchors
    }

    /// Boxes `[1, A, 4]` or `[1, A, 1, 4]` and scores `[1, A, C]` for the `A` anchors.
    pub(super) fn check_shapes(&self, shapes: &[&[usize]]) -> Result<(), DecodeError> {
        let [boxes, scores] = shapes else {
            return Ok(());
        };
        let (a, c) = (self.anchors.len(), self.columns);
        if !(*boxes == [1, a, 4] || *boxes == [1, a, 1, 4]) {
            let expected = format!("[1, {a}, 4] or [1, {a}, 1, 4]");
            return Err(shape_error(&self.names, 0, expected, boxes));
        }
        if *scores != [1, a, c] {
            return Err(shape_error(
                &self.names,
                1,
                format!("[1, {a}, {c}]"),
                scores,
            ));
        }
        Ok(())
    }

    pub(super) fn decode_into(
        &self,
        outputs: &[TensorView<'_>],
        threshold: f32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DecodeError> {
        self.check_shapes(&shapes_of(&self.names, outputs)?)?;
        let (boxes, scores) = match outputs {
            [b, s] => (b, s),
            _ => return Ok(()),
        };
        let c = self.columns;
        let filter = RowFilter::new(self.activation, threshold);
        for ((anchor, enc), row) in self
            .anchors
            .iter()
            .zip(boxes.data.chunks_exact(4))
            .zip(scores.data.chunks_exact(c))
        {
            if !filter.may_pass(&row[self.first_label..]) {
                continue;
            }
            let act = RowActivation::new(self.activation, row);
            let labels = &row[self.first_label..];
            if self.best_class {
                // Every activation is monotonic within a row, so the best raw value is the best
                // score.
                // The first of equal values wins; NaN never does (as in the GPU twin).
                let label = labels
                    .iter()
                    .enumerate()
                    .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                        if x > best.1 {
                            (i, x)
                        } else {
                            best
                        }
                    })
                    .0;
                let score = act.apply(labels[label]);
                if score >= threshold {
                    out.push(Detection {
                        bbox: self.decode_box(anchor, enc),
                        score,
                        label,
                    });
                }
                continue;
            }
            let mut bbox = None;
            for (label, &x) in labels.iter().enumerate() {
                let score = act.apply(x);
                // `!(score < t)` would let NaN through; this comparison rejects it.
                if score >= threshold {
                    let b = *bbox.get_or_insert_with(|| self.decode_box(anchor, enc));
                    out.push(Detection {
                        bbox: b,
                        score,
                        label,
                    });
                }
            }
        }
        Ok(())
    }

    #[inline]
    fn decode_box(&self, a: &Anchor, enc: &[f32]) -> crate::detection::BBox {
        let s = self.scales;
        match self.encoding {
            // TF FasterRcnnBoxCoder: (ty, tx, th, tw) / (sy, sx, sh, sw).
            BoxEncoding::Yxhw => {
                let cy = enc[0] / s[0] * a.h + a.cy;
                let cx = enc[1] / s[1] * a.w + a.cx;
                let h = (enc[2] / s[2]).exp() * a.h;
                let w = (enc[3] / s[3]).exp() * a.w;
                clipped_box(cx, cy, w, h)
            }
            // torchvision BoxCoder: (dx, dy, dw, dh) / weights, log sizes clamped.
            BoxEncoding::Xywh => {
                let cx = enc[0] / s[0] * a.w + a.cx;
                let cy = enc[1] / s[1] * a.h + a.cy;
                let w = (enc[2] / s[2]).min(TV_XFORM_CLIP).exp() * a.w;
                let h = (enc[3] / s[3]).min(TV_XFORM_CLIP).exp() * a.h;
                clipped_box(cx, cy, w, h)
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn views(ts: &[Tensor]) -> Vec<TensorView<'_>> {
        ts.iter().map(Tensor::view).collect()
    }
    use crate::manifest::{AnchorSpec, TorchvisionAnchors};

    /// One 1×1 torchvision map without ratios: anchors (s, s) and (s', s') at the centre.
    /// With scales [0.4, 0.9]: s = 0.4, s' = sqrt(0.36) = 0.6.
    fn head(encoding: BoxEncoding, activation: Activation, background: bool) -> SsdHead {
        SsdHead {
            boxes: "b".into(),
            scores: "s".into(),
            box_encoding: encoding,
            box_coder_scales: [10.0, 10.0, 5.0, 5.0],
            score_activation: activation,
            background_class: background,
            anchors: AnchorSpec::Torchvision(TorchvisionAnchors {
                feature_maps: vec![1],
                aspect_ratios: vec![vec![]],
                min_ratio: 0.15,
                max_ratio: 0.9,
                scales: Some(vec![0.4, 0.9]),
                steps: None,
                clip: true,
            }),
        }
    }

    fn t(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor::new(shape, data).unwrap()
    }

    #[test]
    fn tf_box_coder_by_hand() {
        let d = SsdDecoder::new(
            &head(BoxEncoding::Yxhw, Activation::Sigmoid, true),
            vec!["b".into(), "s".into()],
            300,
            300,
            2,
            false,
        )
        .unwrap();
        // Anchor 0: centre (0.5, 0.5), h = w = 0.4.
        // (ty, tx, th, tw) = (1, −2, 5·ln 0.5, 0):
        //   cy = 1/10·0.4 + 0.5 = 0.54, cx = −2/10·0.4 + 0.5 = 0.42,
        //   h = exp(ln 0.5)·0.4 = 0.2, w = 0.4 → x 0.22..0.62, y 0.44..0.64.
        // Anchor 1 (0.6 × 0.6), zero encoding, but no score passes.
        let boxes = t(
            vec![1, 2, 4],
            vec![1.0, -2.0, 5.0 * 0.5f32.ln(), 0.0, 0.0, 0.0, 0.0, 0.0],
        );
        // columns: background, label 0, label 1 (sigmoid logits)
        let scores = t(vec![1, 2, 3], vec![5.0, 0.0, 3.0, 9.0, -1.0, -2.0]);
        let mut out = Vec::new();
        d.decode_into(&views(&[boxes, scores]), 0.5, &mut out)
            .unwrap();
        // anchor 0: label 0 sigmoid(0) = 0.5 (≥ 0.5 kept), label 1 sigmoid(3) = 0.952574.
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].label, out[0].score), (0, 0.5));
        assert_eq!(out[1].label, 1);
        assert!((out[1].score - 0.952_574_1).abs() < 1e-6);
        let b = out[0].bbox;
        for (g, e) in [(b.x1, 0.22), (b.y1, 0.44), (b.x2, 0.62), (b.y2, 0.64)] {
            assert!((g - e).abs() < 1e-6, "{b:?}");
        }
        assert_eq!(out[0].bbox, out[1].bbox);
    }

    #[test]
    fn best_class_keeps_only_the_top_label_of_each_anchor() {
        let d = SsdDecoder::new(
            &head(BoxEncoding::Yxhw, Activation::Sigmoid, true),
            vec!["b".into(), "s".into()],
            300,
            300,
            2,
            true,
        )
        .unwrap();
        let boxes = t(vec![1, 2, 4], vec![0.0; 8]);
        // Anchor 0: label 1 (logit 3) beats label 0 (logit 0) although both pass 0.5. Anchor 1:
        // equal logits, the first label wins; then a NaN label is never chosen.
        let scores = t(vec![1, 2, 3], vec![5.0, 0.0, 3.0, 9.0, 2.0, 2.0]);
        let mut out = Vec::new();
        d.decode_into(&views(&[boxes.clone(), scores]), 0.5, &mut out)
            .unwrap();
        let got: Vec<(usize, f32)> = out.iter().map(|o| (o.label, o.score)).collect();
        assert_eq!(
            got,
            vec![
                (1, super::super::sigmoid(3.0)),
                (0, super::super::sigmoid(2.0))
            ]
        );
        let nan = t(
            vec![1, 2, 3],
            vec![0.0, f32::NAN, 1.0, 0.0, f32::NAN, f32::NAN],
        );
        out.clear();
        d.decode_into(&views(&[boxes, nan]), 0.5, &mut out).unwrap();
        let got: Vec<usize> = out.iter().map(|o| o.label).collect();
        assert_eq!(got, vec![1]);
    }

    #[test]
    fn torchvision_box_coder_and_softmax_by_hand() {
        let d = SsdDecoder::new(
            &head(BoxEncoding::Xywh, Activation::Softmax, true),
            vec!["b".into(), "s".into()],
            320,
            320,
            1,
            false,
        )
        .unwrap();
        // Anchor 1: centre (0.5, 0.5), 0.6 × 0.6.
        // (dx, dy, dw, dh) = (−1, 0.5, 5·ln(0.5), 0):
        //   cx = −1/10·0.6 + 0.5 = 0.44, cy = 0.5/10·0.6 + 0.5 = 0.53,
        //   w = 0.5·0.6 = 0.3, h = 0.6 → x 0.29..0.59, y 0.23..0.83.
        let boxes = t(
            vec![1, 2, 1, 4],
            vec![0.0, 0.0, 0.0, 0.0, -1.0, 0.5, 5.0 * 0.5f32.ln(), 0.0],
        );
        // Softmax over (background, person): anchor 0 (0, 0) → 0.5 ; anchor 1 (0, ln 3) → 0.75.
        let scores = t(vec![1, 2, 2], vec![0.0, 0.0, 0.0, 3.0f32.ln()]);
        let mut out = Vec::new();
        d.decode_into(&views(&[boxes, scores]), 0.6, &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert!((out[0].score - 0.75).abs() < 1e-6);
        let b = out[0].bbox;
        for (g, e) in [(b.x1, 0.29), (b.y1, 0.23), (b.x2, 0.59), (b.y2, 0.83)] {
            assert!((g - e).abs() < 1e-6, "{b:?}");
        }
    }

    #[test]
    fn boxes_are_clipped_and_no_background_column() {
        let d = SsdDecoder::new(
            &head(BoxEncoding::Yxhw, Activation::None, false),
            vec!["b".into(), "s".into()],
            300,
            300,
            1,
            false,
        )
        .unwrap();
        // Anchor 0 (0.4 × 0.4) doubled in size by th = tw = 5·ln 2 → 0.8 × 0.8 at (0.5, 0.5) is
        // x 0.1..0.9; shifted by tx = 10 (one anchor width, 0.4) → 0.5..1.3 → clipped to 1.
        let boxes = t(
            vec![1, 2, 4],
            vec![
                0.0,
                10.0,
                5.0 * 2f32.ln(),
                5.0 * 2f32.ln(),
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        );
        let scores = t(vec![1, 2, 1], vec![0.9, 0.1]);
        let out = {
            let mut v = Vec::new();
            d.decode_into(&views(&[boxes, scores]), 0.3, &mut v)
                .unwrap();
            v
        };
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].label, out[0].score), (0, 0.9));
        let b = out[0].bbox;
        for (g, e) in [(b.x1, 0.5), (b.y1, 0.1), (b.x2, 1.0), (b.y2, 0.9)] {
            assert!((g - e).abs() < 1e-6, "{b:?}");
        }
    }
}
