//! `adasd calibrate-int8` end to end: a table ONNX Runtime's TensorRT provider can read and the GPU
//! engine's, covering the graph's tensors, with a warning when fewer images than --count exist and an error when too
//! few are readable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn writes_a_readable_table_and_warns_about_too_few_images() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let frames = Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames");
    let mut names: Vec<_> = std::fs::read_dir(&frames)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for n in names.iter().take(10) {
        std::fs::copy(frames.join(n), images.join(n)).unwrap();
    }
    let out = tmp.path().join("ssd.flatbuffers");
    let o = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .current_dir(Path::new(env!("ADAS_REPO_ROOT")))
        .args([
            "calibrate-int8",
            "--model",
            "models/ssdlite_mobilenet_v2_pedestrian_300.toml",
        ])
        .arg("--images")
        .arg(&images)
        .args(["--count", "200", "--method", "max", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("fewer than --count 200; calibrating with all 10"),
        "{stderr}"
    );
    let table = adas_detect::int8::from_flatbuffers(&std::fs::read(&out).unwrap()).unwrap();
    assert!(table.len() > 50, "only {} tensors", table.len());
    assert!(table.values().all(|r| r.is_finite() && *r >= 0.0));
    assert!(table.values().any(|r| *r > 0.0));
    assert!(out.with_extension("cache").is_file() && out.with_extension("json").is_file());
    // The GPU engine's table: made for this very file, the input and every tensor around 0.
    let engine: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.with_extension("engine.json")).unwrap()).unwrap();
    assert_eq!(engine["format"], "adas-int8-calibration/1");
    assert_eq!(
        engine["model_sha256"],
        "0b6cf574084b56e1564dddcda7bb64dd7feabc1ab4d93e3dbe0c20cf424cfc70"
    );
    assert_eq!(
        (engine["method"].as_str(), engine["images"].as_u64()),
        (Some("max"), Some(10))
    );
    let ranges = engine["ranges"].as_object().unwrap();
    assert!(
        ranges.contains_key("Preprocessor/sub:0"),
        "no range for the input"
    );
    // Every conv output, also those tract folds a no-op Reshape into.
    assert!(ranges.contains_key("BoxPredictor_5/BoxEncodingPredictor_depthwise/depthwise:0"));
    for (name, r) in ranges {
        let (lo, hi) = (r[0].as_f64().unwrap(), r[1].as_f64().unwrap());
        assert!(lo <= 0.0 && hi >= 0.0, "{name}: {lo}..{hi}");
    }

    // 3 images: too few.
    for n in names.iter().skip(3) {
        std::fs::remove_file(images.join(n)).ok();
    }
    let o = Command::new(env!("CARGO_BIN_EXE_adasd"))
        .current_dir(Path::new(env!("ADAS_REPO_ROOT")))
        .args([
            "calibrate-int8",
            "--model",
            "models/ssdlite_mobilenet_v2_pedestrian_300.toml",
        ])
        .arg("--images")
        .arg(&images)
        .arg("--out")
        .arg(tmp.path().join("x.flatbuffers"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("at least 10 readable images, got 3"),
        "{stderr}"
    );
}
