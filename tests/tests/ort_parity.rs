//! ONNX Runtime (CPU execution provider) against tract: the same detections on both shipped
//! models and the sample media (IoU ≥ 0.99, score within ±0.005; a detection may be missing on
//! one side only when its score is within 0.005 of the threshold).
//!
//! Needs libonnxruntime.so (config / ORT_DYLIB_PATH / standard places, see docs/ORT.md). Without
//! it the test is skipped with a message, except when `CI` is set: then it fails.
#![cfg(feature = "ort")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use adas_detect::{BackendKind, Detector, ImageDetection};
use std::path::{Path, PathBuf};

const IOU_MIN: f32 = 0.99;
const SCORE_TOL: f32 = 0.005;

fn iou(a: &ImageDetection, b: &ImageDetection) -> f32 {
    let (a, b) = (&a.bbox, &b.bbox);
    let ix = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let iy = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = ix * iy;
    let union = (a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter;
    if union <= 0.0 {
        1.0
    } else {
        inter / union
    }
}

/// Every detection on one side has a partner on the other (same label, IoU, score), unless it
/// sits at the threshold. Returns the number of matched pairs.
fn one_way(from: &[ImageDetection], to: &[ImageDetection], threshold: f32, what: &str) -> usize {
    let mut matched = 0;
    for d in from {
        let best = to
            .iter()
            .filter(|o| o.label == d.label && (o.score - d.score).abs() <= SCORE_TOL)
            .map(|o| iou(d, o))
            .fold(0.0f32, f32::max);
        if best >= IOU_MIN {
            matched += 1;
        } else {
            assert!(
                d.score - threshold <= SCORE_TOL,
                "{what}: {} {:.4} {:?} has no partner (best IoU {best:.4})",
                d.label,
                d.score,
                d.bbox
            );
        }
    }
    matched
}

fn images() -> Vec<PathBuf> {
    let root = Path::new(env!("ADAS_REPO_ROOT")).join("samples");
    let mut v = vec![root.join("images/person.jpg"), root.join("images/dog.jpg")];
    let mut frames: Vec<PathBuf> = std::fs::read_dir(root.join("vtest/frames"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    frames.sort();
    // Every 10th frame keeps the debug test fast; `ADAS_PARITY_ALL=1` checks all 100.
    let step = if std::env::var_os("ADAS_PARITY_ALL").is_some() {
        1
    } else {
        10
    };
    v.extend(frames.into_iter().step_by(step));
    v
}

fn parity(manifest: &str) {
    if !adas_system_tests::ort_library_present("ort parity") {
        return;
    }
    let path = Path::new(env!("ADAS_REPO_ROOT"))
        .join("models")
        .join(manifest);
    let mut tract = Detector::load(&path, BackendKind::Tract, None).unwrap();
    let mut ort = Detector::load(&path, BackendKind::Ort, None).unwrap();
    assert_eq!(ort.backend_name(), "ort-cpu");
    let threshold = tract.score_threshold();
    let mut pairs = 0;
    for image in images() {
        let img = image::open(&image).unwrap().to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (a, _) = tract.detect(img.as_raw(), w, h).unwrap();
        let (b, _) = ort.detect(img.as_raw(), w, h).unwrap();
        let what = format!("{manifest} {}", image.display());
        pairs += one_way(&a, &b, threshold, &format!("{what} tract→ort"));
        one_way(&b, &a, threshold, &format!("{what} ort→tract"));
    }
    assert!(pairs > 0, "{manifest}: no detections to compare");
    eprintln!("{manifest}: {pairs} detections equal on tract and ort");
}

#[test]
fn nanodet_ort_equals_tract() {
    parity("nanodet_m_coco_416.toml");
}

#[test]
fn ssdlite_ort_equals_tract() {
    parity("ssdlite_mobilenet_v2_pedestrian_300.toml");
}

#[test]
fn missing_library_is_a_clear_error() {
    let e = adas_detect::ort_config::find_library(
        Some(Path::new("/nonexistent/libonnxruntime.so")),
        None,
        &[],
    )
    .unwrap_err();
    assert!(e.contains("/nonexistent/libonnxruntime.so"), "{e}");
}
