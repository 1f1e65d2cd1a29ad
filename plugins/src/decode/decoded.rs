//! Models whose graph already decodes (and usually NMS-es) its detections.

use super::{clip01, shape_error, shapes_of, DecodeError};
use crate::detection::{BBox, Detection};
use crate::manifest::{BoxFormat, DecodedHead};
use crate::tensor::TensorView;

/// Reads boxes `[1, K, 4]`, scores `[1, K]`, class ids `[1, K]` (floats; label = id −
/// `class_offset`) and an optional count (one element; only the first `count` rows are valid).
/// Rows with a class id outside the label list or a non-finite box are skipped.
#[derive(Debug, Clone)]
pub struct DecodedDecoder {
    names: Vec<String>,
    format: BoxFormat,
    class_offset: i64,
    labels: usize,
    input_width: f32,
    input_height: f32,
}

impl DecodedDecoder {
    pub(super) fn new(
        head: &DecodedHead,
        names: Vec<String>,
        input_width: usize,
        input_height: usize,
        labels: usize,
    ) -> Self {
        Self {
            names,
            format: head.box_format,
            class_offset: head.class_offset,
            labels,
            input_width: input_width as f32,
            input_height: input_height as f32,
        }
    }

    pub fn output_names(&self) -> &[String] {
        &self.names
    }

    /// Boxes `[1, K, 4]`, scores and class ids `[1, K]`, a count of one element.
    pub(super) fn check_shapes(&self, shapes: &[&[usize]]) -> Result<(), DecodeError> {
        let [boxes, scores, classes, count @ ..] = shapes else {
            return Ok(());
        };
        let k = match boxes {
            [1, k, 4] => *k,
            _ => return Err(shape_error(&self.names, 0, "[1, K, 4]".into(), boxes)),
        };
        for (i, shape) in [(1, scores), (2, classes)] {
            if **shape != [1, k] {
                return Err(shape_error(&self.names, i, format!("[1, {k}]"), shape));
            }
        }
        match count {
            [c] if c.iter().product::<usize>() != 1 => Err(shape_error(
                &self.names,
                3,
                "one element, e.g. [1]".into(),
                c,
            )),
            _ => Ok(()),
        }
    }

    pub(super) fn decode_into(
        &self,
        outputs: &[TensorView<'_>],
        threshold: f32,
        out: &mut Vec<Detection>,
    ) -> Result<(), DecodeError> {
        self.check_shapes(&shapes_of(&self.names, outputs)?)?;
        let (boxes, scores, classes) = match outputs {
            [b, s, c, ..] => (b, s, c),
            _ => return Ok(()),
        };
        let mut rows = scores.data.len();
        if let Some([n]) = outputs.get(3).map(|count| count.data) {
            rows = rows.min(if n.is_finite() && *n > 0.0 {
                *n as usize
            } else {
                0
            });
        }
        for ((b, &score), &class) in boxes
            .data
            .chunks_exact(4)
            .zip(scores.data)
            .zip(classes.data)
            .take(rows)
        {
            if score.is_nan() || score < threshold || !class.is_finite() {
                continue;
            }
            let label = class.round() as i64 - self.class_offset;
            let label = match usize::try_from(label) {
                Ok(l) if l < self.labels => l,
                _ => continue,
            };
            let bbox = match self.format {
                BoxFormat::YxyxNormalised => BBox::new(b[1], b[0], b[3], b[2]),
                BoxFormat::XyxyNormalised => BBox::new(b[0], b[1], b[2], b[3]),
                BoxFormat::XyxyPixels => BBox::new(
                    b[0] / self.input_width,
                    b[1] / self.input_height,
                    b[2] / self.input_width,
                    b[3] / self.input_height,
                ),
            };
            if !bbox.is_finite() {
                continue;
            }
            out.push(Detection {
                bbox: clip01(bbox),
                score,
                label,
            });
        }
        Ok(())
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

    fn decoder(format: BoxFormat, count: bool) -> DecodedDecoder {
        let head = DecodedHead {
            boxes: "detection_boxes:0".into(),
            scores: "detection_scores:0".into(),
            classes: "detection_classes:0".into(),
            count: count.then(|| "num_detections:0".into()),
            box_format: format,
            class_offset: 1,
        };
        let mut names: Vec<String> = vec![
            "detection_boxes:0".into(),
            "detection_scores:0".into(),
            "detection_classes:0".into(),
        ];
        if count {
            names.push("num_detections:0".into());
        }
        DecodedDecoder::new(&head, names, 200, 100, 2)
    }

    fn t(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        Tensor::new(shape, data).unwrap()
    }

    #[test]
    fn tf_style_yxyx_with_count_and_class_offset() {
        let d = decoder(BoxFormat::YxyxNormalised, true);
        let boxes = t(
            vec![1, 4, 4],
            vec![
                0.1, 0.2, 0.5, 0.6, // row 0: y 0.1..0.5, x 0.2..0.6
                0.0, 0.0, 1.2, 0.5, // row 1: clipped to y ≤ 1
                0.3, 0.3, 0.4, 0.4, // row 2: class 3 → label 2, outside 2 labels: skipped
                0.0, 0.0, 1.0, 1.0, // row 3: beyond count
            ],
        );
        let scores = t(vec![1, 4], vec![0.9, 0.6, 0.8, 0.95]);
        let classes = t(vec![1, 4], vec![1.0, 2.0, 3.0, 1.0]);
        let count = t(vec![1], vec![3.0]);
        let mut out = Vec::new();
        d.decode_into(&views(&[boxes, scores, classes, count]), 0.5, &mut out)
            .unwrap();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].bbox, BBox::new(0.2, 0.1, 0.6, 0.5));
        assert_eq!((out[0].score, out[0].label), (0.9, 0));
        assert_eq!(out[1].bbox, BBox::new(0.0, 0.0, 0.5, 1.0));
        assert_eq!(out[1].label, 1);
    }

    #[test]
    fn pixel_boxes_are_normalised_and_threshold_applies() {
        let d = decoder(BoxFormat::XyxyPixels, false);
        // Input 200×100: (20, 10, 100, 50) px → (0.1, 0.1, 0.5, 0.5).
        let boxes = t(
            vec![1, 2, 4],
            vec![20.0, 10.0, 100.0, 50.0, 0.0, 0.0, 1.0, 1.0],
        );
        let scores = t(vec![1, 2], vec![0.7, 0.2]);
        let classes = t(vec![1, 2], vec![1.0, 1.0]);
        let mut out = Vec::new();
        d.decode_into(&views(&[boxes, scores, classes]), 0.3, &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].bbox, BBox::new(0.1, 0.1, 0.5, 0.5));
    }

    #[test]
    fn shape_errors_name_the_output() {
        let d = decoder(BoxFormat::XyxyNormalised, true);
        let outs = [
            Tensor::zeros(vec![1, 3, 4]),
            Tensor::zeros(vec![1, 3]),
            Tensor::zeros(vec![3]),
            Tensor::zeros(vec![1]),
        ];
        let err = d
            .decode_into(&views(&outs), 0.5, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("#2 `detection_classes:0`") && err.contains("[1, 3]"),
            "{err}"
        );
        let outs = [
            Tensor::zeros(vec![1, 3, 4]),
            Tensor::zeros(vec![1, 3]),
            Tensor::zeros(vec![1, 3]),
            Tensor::zeros(vec![2]),
        ];
        let err = d
            .decode_into(&views(&outs), 0.5, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("num_detections:0"), "{err}");
    }
}
