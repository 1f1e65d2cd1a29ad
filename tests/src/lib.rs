//! Shared helpers of the system tests (`tests/tests/`).

pub mod sim;

use std::path::{Path, PathBuf};

/// The repository root (the tests read shipped models, samples and reference fixtures).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Whether the project's shared test data (`../shared` beside the repository: real footage,
/// labelled images and models that may not be redistributed with the product, described by its
/// DATA.md) is there. Where it is not, a test that needs it prints what is missing and returns
/// early — except under CI (`CI` set), which must run every test and fails instead.
pub fn shared_data_present(test: &str) -> bool {
    let dir = repo_root().join("../shared");
    if dir.join("DATA.md").is_file() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI: {test} needs the shared test data at {}",
        dir.display()
    );
    eprintln!(
        "SKIPPED {test}: needs the project's shared test data at {} (see its DATA.md)",
        dir.display()
    );
    false
}

/// A reference detection from a fixture file (`tests/fixtures/reference/*.json`).
#[derive(Debug, Clone)]
pub struct Reference {
    pub label: String,
    pub score: f64,
    pub bbox: [f64; 4],
}

/// Reads a reference fixture: image path (relative to the repo root) → its reference detections.
pub fn read_references(fixture: &Path) -> Result<Vec<(String, Vec<Reference>)>, String> {
    let text =
        std::fs::read_to_string(fixture).map_err(|e| format!("{}: {e}", fixture.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", fixture.display()))?;
    let images = json["images"]
        .as_object()
        .ok_or_else(|| format!("{}: no `images` object", fixture.display()))?;
    let mut out = Vec::new();
    for (image, entry) in images {
        let list = entry["detections"].as_array().cloned().unwrap_or_default();
        let refs = list
            .iter()
            .map(|d| {
                let b = d["box"].as_array().cloned().unwrap_or_default();
                let coord = |i: usize| b.get(i).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
                Reference {
                    label: d["label"].as_str().unwrap_or("?").to_string(),
                    score: d["score"].as_f64().unwrap_or(f64::NAN),
                    bbox: [coord(0), coord(1), coord(2), coord(3)],
                }
            })
            .collect();
        out.push((image.clone(), refs));
    }
    Ok(out)
}

/// Our detector's detections on a packed RGB image, in the fixtures' form.
pub fn detect(
    detector: &mut adas_detect::Detector,
    img: &image::RgbImage,
) -> Result<Vec<Reference>, String> {
    let (w, h) = img.dimensions();
    let (found, _) = detector
        .detect(img.as_raw(), w as usize, h as usize)
        .map_err(|e| e.to_string())?;
    Ok(found
        .iter()
        .map(|d| Reference {
            label: d.label.clone(),
            score: f64::from(d.score),
            bbox: [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2].map(f64::from),
        })
        .collect())
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// Whether ONNX Runtime's library can be loaded (`ORT_DYLIB_PATH`, docs/ORT.md). Tests that need
/// it skip without it, saying so; under CI (`CI` set) its absence is a failure instead.
#[cfg(feature = "ort")]
pub fn ort_library_present(test: &str) -> bool {
    match adas_detect::load_ort_library(None) {
        Ok(_) => true,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI is set but ONNX Runtime cannot be loaded: {e}"
            );
            eprintln!("SKIPPED: {test} needs libonnxruntime.so (ORT_DYLIB_PATH, docs/ORT.md): {e}");
            false
        }
    }
}
