//! The detector (tract backend, our preprocessing, decoders and NMS) against reference outputs
//! of the original frameworks, on the shipped models and real images:
//! - the SSD against TensorFlow's own postprocessing (the full TF graph run in ONNX Runtime),
//! - NanoDet against ONNX Runtime + the Python reference decoder.
//!
//! Fixtures and the script that makes them: tests/fixtures/reference/, tests/reference/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use adas_detect::{BackendKind, Detector};
use adas_system_tests::{detect, iou, read_references, repo_root};

/// Detections within this margin of the score cut may legitimately be on either side of it.
const NEAR_CUT: f64 = 0.03;

struct Tolerance {
    score: f64,
    min_iou: f64,
}

fn compare(manifest: &str, fixture: &str, threshold: f32, tol: Tolerance) {
    let root = repo_root();
    let mut detector =
        Detector::load(&root.join(manifest), BackendKind::Tract, Some(threshold)).unwrap();
    let refs = read_references(&root.join(fixture)).unwrap();
    assert!(
        refs.len() >= 5,
        "fixture covers the photos and vtest frames"
    );
    let (mut worst_score, mut worst_iou, mut matched) = (0.0f64, 1.0f64, 0);
    for (image, expected) in refs {
        let img = image::open(root.join(&image)).unwrap().to_rgb8();
        let found: Vec<(String, f64, [f64; 4])> = detect(&mut detector, &img)
            .unwrap()
            .into_iter()
            .map(|d| (d.label, d.score, d.bbox))
            .collect();
        let cut = f64::from(threshold) + NEAR_CUT;
        for r in expected.iter().filter(|r| r.score >= cut) {
            let best = found
                .iter()
                .filter(|f| f.0 == r.label)
                .max_by(|a, b| iou(&a.2, &r.bbox).total_cmp(&iou(&b.2, &r.bbox)))
                .unwrap_or_else(|| panic!("{image}: reference {r:?} not found in {found:?}"));
            let overlap = iou(&best.2, &r.bbox);
            let dscore = (best.1 - r.score).abs();
            assert!(
                overlap >= tol.min_iou && dscore <= tol.score,
                "{image}: reference {r:?} vs ours {best:?}: IoU {overlap:.3}, Δscore {dscore:.3}"
            );
            worst_iou = worst_iou.min(overlap);
            worst_score = worst_score.max(dscore);
            matched += 1;
        }
        for f in found.iter().filter(|f| f.1 >= cut) {
            assert!(
                expected
                    .iter()
                    .any(|r| r.label == f.0 && iou(&r.bbox, &f.2) >= tol.min_iou),
                "{image}: we report {f:?}, the reference does not"
            );
        }
    }
    println!(
        "{manifest}: {matched} reference detections matched; worst IoU {worst_iou:.4}, worst Δscore {worst_score:.4}"
    );
    assert!(matched >= 10, "enough detections compared ({matched})");
}

/// "Within a few hundredths" of TensorFlow's own postprocessed output of the same model.
#[test]
fn ssd_matches_tensorflow_postprocessing() {
    compare(
        "models/ssdlite_mobilenet_v2_pedestrian_300.toml",
        "tests/fixtures/reference/ssd_tf_postprocessed.json",
        0.3,
        Tolerance {
            score: 0.03,
            min_iou: 0.9,
        },
    );
}

#[test]
fn nanodet_matches_onnx_runtime_reference() {
    compare(
        "models/nanodet_m_coco_416.toml",
        "tests/fixtures/reference/nanodet_ort_reference.json",
        0.35,
        Tolerance {
            score: 0.02,
            min_iou: 0.95,
        },
    );
}

/// The people walking on the road in the sample sequence (4–9 per frame, counted by eye) are
/// found by both models at their default thresholds.
#[test]
fn people_on_the_vtest_road_are_found_by_both_models() {
    let root = repo_root();
    for model in [
        "models/ssdlite_mobilenet_v2_pedestrian_300.toml",
        "models/nanodet_m_coco_416.toml",
    ] {
        let mut detector = Detector::load(&root.join(model), BackendKind::Tract, None).unwrap();
        for frame in ["frame_0000.jpg", "frame_0050.jpg", "frame_0099.jpg"] {
            let img = image::open(root.join("samples/vtest/frames").join(frame))
                .unwrap()
                .to_rgb8();
            let (w, h) = img.dimensions();
            let (found, _) = detector
                .detect(img.as_raw(), w as usize, h as usize)
                .unwrap();
            let people = found.iter().filter(|d| d.label == "person").count();
            assert!(people >= 4, "{model} {frame}: {people} people");
        }
    }
}
