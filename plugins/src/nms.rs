//! Greedy non-maximum suppression, per class or across classes.

use crate::detection::Detection;
use crate::manifest::NmsMode;

/// Greedy NMS: candidates are taken in descending score order (a stable sort, so ties keep
/// their input order, NaN scores last); a candidate is dropped when its IoU with an already
/// kept box exceeds `iou_threshold` — a box **of the same label** for [`NmsMode::PerClass`], of
/// any label for [`NmsMode::BestClass`]. Stops after `max_detections` kept boxes. The result is
/// sorted by score, descending.
///
/// Takes the candidates by value and reuses their allocation for the result.
pub fn nms(
    mut candidates: Vec<Detection>,
    iou_threshold: f32,
    max_detections: usize,
    mode: NmsMode,
) -> Vec<Detection> {
    let across = mode == NmsMode::BestClass;
    candidates.sort_by(|a, b| score_key(b).total_cmp(&score_key(a)));
    let mut kept = 0;
    for i in 0..candidates.len() {
        if kept >= max_detections {
            break;
        }
        let c = candidates[i];
        let suppressed = candidates[..kept]
            .iter()
            .any(|k| (across || k.label == c.label) && k.bbox.iou(&c.bbox) > iou_threshold);
        if !suppressed {
            candidates[kept] = c;
            kept += 1;
        }
    }
    candidates.truncate(kept);
    candidates
}

/// NaN sorts below every real score.
#[inline]
fn score_key(d: &Detection) -> f32 {
    if d.score.is_nan() {
        f32::NEG_INFINITY
    } else {
        d.score
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::detection::BBox;
    use proptest::prelude::*;

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, label: usize) -> Detection {
        Detection {
            bbox: BBox::new(x1, y1, x2, y2),
            score,
            label,
        }
    }

    #[test]
    fn hand_computed_suppression() {
        let input = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.8, 0),    // A
            det(1.0, 0.0, 11.0, 10.0, 0.9, 0),    // B: IoU(A,B) = 90/110 = 0.818 → A suppressed
            det(5.0, 0.0, 15.0, 10.0, 0.7, 0),    // C: IoU(B,C) = 60/140 = 0.43 → kept at 0.5
            det(0.0, 0.0, 10.0, 10.0, 0.6, 1),    // D: other label, kept despite overlapping A/B
            det(50.0, 50.0, 60.0, 60.0, 0.95, 0), // E: disjoint, kept first
        ];
        let out = nms(input.clone(), 0.5, 100, NmsMode::PerClass);
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.95, 0.9, 0.7, 0.6]);
        // With a lower threshold C goes too (0.43 > 0.4).
        let out = nms(input.clone(), 0.4, 100, NmsMode::PerClass);
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.95, 0.9, 0.6]);
        // Cap.
        assert_eq!(nms(input.clone(), 0.5, 2, NmsMode::PerClass).len(), 2);
        // IoU equal to the threshold is not suppressed (strictly greater): identical boxes, thr 1.
        let same = vec![
            det(0.0, 0.0, 1.0, 1.0, 0.5, 0),
            det(0.0, 0.0, 1.0, 1.0, 0.5, 0),
        ];
        assert_eq!(nms(same.clone(), 1.0, 10, NmsMode::PerClass).len(), 2);
        assert_eq!(nms(same, 0.99, 10, NmsMode::PerClass).len(), 1);
        // Across classes D is suppressed by B (IoU(B,D) = 0.818) and A by B as before.
        let out = nms(input, 0.5, 100, NmsMode::BestClass);
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.95, 0.9, 0.7]);
    }

    #[test]
    fn ties_keep_input_order_and_nan_goes_last() {
        let a = det(0.0, 0.0, 1.0, 1.0, 0.5, 0);
        let b = det(0.0, 0.0, 1.0, 1.0, 0.5, 1);
        let n = det(5.0, 5.0, 6.0, 6.0, f32::NAN, 0);
        let out = nms(vec![n, b, a], 0.5, 10, NmsMode::PerClass);
        assert_eq!(out[0], b);
        assert_eq!(out[1], a);
        assert!(out[2].score.is_nan());
    }

    fn arb_det() -> impl Strategy<Value = Detection> {
        (
            0f32..100.0,
            0f32..100.0,
            1f32..40.0,
            1f32..40.0,
            0f32..1.0,
            0usize..3,
        )
            .prop_map(|(x, y, w, h, score, label)| det(x, y, x + w, y + h, score, label))
    }

    proptest! {
        #[test]
        fn nms_properties(
            input in prop::collection::vec(arb_det(), 0..60),
            iou in 0.05f32..1.0,
            max in 1usize..30,
            across in any::<bool>(),
        ) {
            let mode = if across { NmsMode::BestClass } else { NmsMode::PerClass };
            let out = nms(input.clone(), iou, max, mode);
            prop_assert!(out.len() <= max);
            // Subset of the input (as a multiset).
            let mut pool = input.clone();
            for d in &out {
                let pos = pool.iter().position(|p| p == d);
                prop_assert!(pos.is_some(), "{d:?} not in input");
                pool.swap_remove(pos.unwrap());
            }
            // Sorted by score, descending.
            prop_assert!(out.windows(2).all(|w| w[0].score >= w[1].score));
            // No two kept boxes of one label (of any label across classes) overlap above the
            // threshold.
            let rivals = |a: &Detection, b: &Detection| across || a.label == b.label;
            for (i, a) in out.iter().enumerate() {
                for b in &out[i + 1..] {
                    prop_assert!(!rivals(a, b) || a.bbox.iou(&b.bbox) <= iou);
                }
            }
            // Every dropped box (when not capped) is covered by a kept, higher-scored box.
            if out.len() < max {
                for d in &pool {
                    prop_assert!(out.iter().any(|k| rivals(k, d)
                        && k.score >= d.score
                        && k.bbox.iou(&d.bbox) > iou));
                }
            }
        }
    }
}
