//! The `adasd` command line, end to end on the shipped models and sample media.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn adasd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adasd"))
        .args(args)
        .current_dir(Path::new(env!("ADAS_REPO_ROOT")))
        .output()
        .expect("adasd runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_prints_the_crate_version() {
    let o = adasd(&["--version"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn detect_json_finds_bicycle_dog_and_truck_sorted_by_score() {
    let o = adasd(&[
        "detect",
        "--model",
        "models/nanodet_m_coco_416.toml",
        "--json",
        "samples/images/dog.jpg",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line per image: {text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["image"], "samples/images/dog.jpg");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(768), Some(576))
    );
    let dets = v["detections"].as_array().unwrap();
    let scores: Vec<f64> = dets.iter().map(|d| d["score"].as_f64().unwrap()).collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted: {scores:?}"
    );
    for (label, class) in [
        ("dog", "other"),
        ("bicycle", "cyclist"),
        ("truck", "truck_bus"),
    ] {
        let d = dets
            .iter()
            .find(|d| d["label"] == label)
            .unwrap_or_else(|| panic!("no {label} in {text}"));
        assert_eq!(d["class"], class);
        let b: Vec<f64> = d["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[0] >= 0.0 && b[3] <= 576.0,
            "{label} box {b:?}"
        );
    }
}

#[test]
fn detect_table_and_drawing() {
    let dir = tempfile::tempdir().unwrap();
    let draw = dir.path().to_str().unwrap();
    let o = adasd(&[
        "detect",
        "--model",
        "models/ssdlite_mobilenet_v2_pedestrian_300.toml",
        "--draw",
        draw,
        "samples/images/person.jpg",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("person") && text.contains("pedestrian"),
        "{text}"
    );
    let png = image::open(dir.path().join("person.png")).unwrap();
    assert_eq!((png.width(), png.height()), (640, 424));
}

#[test]
fn unreadable_inputs_are_one_line_errors_naming_the_file() {
    let o = adasd(&[
        "detect",
        "--model",
        "models/nanodet_m_coco_416.toml",
        "samples/images/missing.jpg",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("samples/images/missing.jpg"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let o = adasd(&[
        "detect",
        "--model",
        "models/nope.toml",
        "samples/images/dog.jpg",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("models/nope.toml") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn manifest_that_does_not_match_its_onnx_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("ADAS_REPO_ROOT")).join("models/nanodet_m_coco_416.toml"),
    )
    .unwrap();
    // Same manifest, pointed at the other model's weights.
    let onnx =
        Path::new(env!("ADAS_REPO_ROOT")).join("models/ssdlite_mobilenet_v2_pedestrian_300.onnx");
    let edited = text.replace(
        "onnx = \"nanodet_m_coco_416.onnx\"",
        &format!("onnx = \"{}\"", onnx.display()),
    );
    assert_ne!(edited, text, "manifest names its onnx file");
    let manifest = dir.path().join("m.toml");
    std::fs::write(&manifest, edited).unwrap();
    let o = adasd(&[
        "detect",
        "--model",
        manifest.to_str().unwrap(),
        "samples/images/dog.jpg",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("sha256") && err.contains("ssdlite"), "{err}");

    // Without the hash, the shapes still give it away.
    let unhashed: String = std::fs::read_to_string(&manifest)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("sha256"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&manifest, unhashed).unwrap();
    let o = adasd(&[
        "detect",
        "--model",
        manifest.to_str().unwrap(),
        "samples/images/dog.jpg",
    ]);
    assert!(!o.status.success());
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn config_check_accepts_the_sample_and_names_bad_keys() {
    let o = adasd(&["config", "check", "samples/vtest.toml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text =
        std::fs::read_to_string(Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest.toml"))
            .unwrap();
    std::fs::write(&bad, text.replace("speed_kph = 20.0", "speed_kph = -20.0")).unwrap();
    let o = adasd(&["config", "check", bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bad.toml") && err.contains("ego.speed_kph") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn config_check_passes_the_samples_and_says_what_aeb_acts_on() {
    // vtest_cuda.toml is the same config on the GPU engine (cargo feature `cuda`).
    for sample in ["samples/vtest.toml", "samples/udacity.toml"] {
        let o = adasd(&["config", "check", sample]);
        assert!(o.status.success(), "{sample}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("ok") && out.contains("AEB acts on: pedestrian, cyclist, car"),
            "{sample}: {out}"
        );
        assert!(!stderr(&o).contains("error"), "{sample}: {}", stderr(&o));
    }
}

/// Writes `config` into `dir` and runs `adasd config check` on it.
fn check(dir: &Path, config: &str) -> Output {
    let path = dir.join("adasd.toml");
    std::fs::write(&path, config).unwrap();
    adasd(&["config", "check", path.to_str().unwrap()])
}

/// A copy of the NanoDet manifest in `dir` (its ONNX file by absolute path), edited by `edit`.
fn nanodet_copy(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let models = common::repo().join("models");
    let text = std::fs::read_to_string(models.join("nanodet_m_coco_416.toml")).unwrap();
    let onnx = models.join("nanodet_m_coco_416.onnx");
    let text = text.replace(
        "onnx = \"nanodet_m_coco_416.onnx\"",
        &format!("onnx = {:?}", onnx.display().to_string()),
    );
    let path = dir.join("model.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// The vtest config with the model replaced by `manifest`.
fn with_model(manifest: &Path) -> String {
    let config = common::vtest_config(&format!(
        "dir://{}",
        common::repo().join("samples/vtest/frames").display()
    ));
    let root = common::repo().display().to_string();
    config.replace(
        &format!("{root}/models/nanodet_m_coco_416.toml"),
        &manifest.display().to_string(),
    )
}

#[test]
fn config_check_refuses_what_run_would_reject_frame_by_frame() {
    let dir = tempfile::tempdir().unwrap();

    // A file:// that is a folder: every frame would be lost.
    let o = check(
        dir.path(),
        &common::vtest_config(&format!("file://{}", dir.path().display())),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("is a folder") && stderr(&o).contains("dir://"),
        "{}",
        stderr(&o)
    );

    // Frames of another size than the calibration's: every frame a calibration fault.
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    image::RgbImage::new(640, 480)
        .save(frames.join("0001.png"))
        .unwrap();
    let o = check(
        dir.path(),
        &common::vtest_config(&format!("dir://{}", frames.display())),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("640×480") && err.contains("768×576") && err.contains("calibration"),
        "{err}"
    );

    // A manifest whose head does not fit the model's outputs (11 bins per side, not 8).
    let manifest = nanodet_copy(dir.path(), |t| t.replace("reg_max = 10", "reg_max = 7"));
    let o = check(dir.path(), &with_model(&manifest));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("do not fit") && err.contains("Identity_3:0") && err.contains("44]"),
        "{err}"
    );
}

#[test]
fn config_check_warns_on_a_blind_aeb_and_a_missing_can_interface() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = nanodet_copy(dir.path(), |t| {
        let start = t.find("[classes]").unwrap();
        let end = t.find("[input]").unwrap();
        format!("{}[classes]\n\n{}", &t[..start], &t[end..])
    });
    let config = with_model(&manifest).replace(
        "interface = \"can0\"",
        "mode = \"socketcan\"\ninterface = \"vcanzz9\"",
    );
    assert!(config.contains("vcanzz9"));
    let o = check(dir.path(), &config);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning")
            && err.contains("[classes] table is empty")
            && err.contains("AEB is blind"),
        "{err}"
    );
    assert!(
        err.contains("vcanzz9") && err.contains("ip link add dev vcanzz9 type vcan"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("AEB acts on: nothing; 2 warning(s)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn a_manifest_input_shape_bomb_is_refused_before_anything_is_allocated() {
    // 3 × 100 000 × 100 000 f32 = 120 GB: the process would abort if it tried.
    let dir = tempfile::tempdir().unwrap();
    let manifest = nanodet_copy(dir.path(), |t| {
        t.replace("shape = [1, 3, 416, 416]", "shape = [1, 3, 100000, 100000]")
    });
    let o = adasd(&[
        "detect",
        "--model",
        manifest.to_str().unwrap(),
        "samples/images/dog.jpg",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("model.toml line")
            && err.contains("input.shape")
            && err.contains("allowed range 1–4096")
            && !err.contains("memory allocation"),
        "{err}"
    );
}

/// A small copy of the sample with one corrupt frame and one of the wrong size.
fn sample_subset(dir: &Path, frames: usize) -> PathBuf {
    let src = Path::new(env!("ADAS_REPO_ROOT")).join("samples/vtest/frames");
    let frames_dir = dir.join("frames");
    std::fs::create_dir_all(&frames_dir).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names.iter().take(frames) {
        std::fs::copy(src.join(name), frames_dir.join(name)).unwrap();
    }
    std::fs::write(
        frames_dir.join("zz_corrupt.jpg"),
        b"\xff\xd8 not really a jpeg",
    )
    .unwrap();
    let config = common::vtest_config(&format!("dir://{}", frames_dir.display()));
    let path = dir.join("adasd.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn run_processes_frames_skips_a_bad_one_and_logs_can() {
    let dir = tempfile::tempdir().unwrap();
    let config = sample_subset(dir.path(), 3);
    let out = dir.path().join("out");
    // --verbose: a line per frame into the pipe too.
    let o = adasd(&[
        "run",
        "--verbose",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("frames: 3 processed, 1 skipped"), "{text}");
    assert!(text.contains("skipped: frame 3"), "{text}");

    let events = std::fs::read_to_string(out.join("frames.jsonl")).unwrap();
    assert_eq!(events.lines().count(), 3);
    for line in events.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(
            v["detections"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["class"] == "pedestrian"),
            "{line}"
        );
    }
    let annotated = std::fs::read_dir(out.join("frames")).unwrap().count();
    assert_eq!(annotated, 3);

    // The CAN log: one warning frame per processed frame, status at 10 Hz of data time (every
    // frame at 10 fps), the corrupt frame reported as "unavailable, frame lost", then "off".
    let log = std::fs::read_to_string(out.join("can.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let warnings: Vec<_> = lines.iter().filter(|l| l.contains(" 120#")).collect();
    let statuses: Vec<_> = lines.iter().filter(|l| l.contains(" 121#")).collect();
    assert_eq!(warnings.len(), 3, "{log}");
    assert_eq!(statuses.len(), 5, "{log}");
    assert!(
        lines[0].starts_with("(0000000000.000000) can0 120#"),
        "{log}"
    );
    let lost = statuses[3];
    assert!(
        lost.starts_with("(0000000000.300000) can0 121#0301"),
        "unavailable + FRAME_LOST: {lost}"
    );
    assert!(statuses[4].contains("121#00"), "final status off: {log}");
}

#[test]
fn run_refuses_frames_that_do_not_match_the_calibration_size() {
    let dir = tempfile::tempdir().unwrap();
    let config = sample_subset(dir.path(), 1);
    let small = image::open(
        dir.path()
            .join("frames")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap()
    .resize_exact(320, 240, image::imageops::FilterType::Triangle);
    small.save(dir.path().join("frames/small.jpg")).unwrap();
    let out = dir.path().join("out");
    let o = adasd(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("320×240") && err.contains("768×576"), "{err}");
    let log = std::fs::read_to_string(out.join("can.log")).unwrap();
    assert!(
        log.lines().any(|l| l.contains("121#0304")),
        "unavailable + CALIBRATION: {log}"
    );
}

/// A tiny COCO instances file over the two sample photos (tests/eval runs the real set).
fn coco_annotations(dir: &Path, categories: &str, dog: &str) -> PathBuf {
    let path = dir.join("instances.json");
    let text = format!(
        r#"{{"images": [{{"id": 42, "file_name": "{dog}", "width": 768, "height": 576}},
                        {{"id": 7, "file_name": "person.jpg", "width": 640, "height": 424}}],
            "annotations": [], "categories": [{categories}]}}"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn eval_writes_coco_results_and_counts_labels_without_a_category() {
    let dir = tempfile::tempdir().unwrap();
    // No `horse` (person.jpg has one) and ids that are not label index + 1: the mapping is by name.
    let ann = coco_annotations(
        dir.path(),
        r#"{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"},
           {"id": 8, "name": "truck"}, {"id": 18, "name": "dog"}"#,
        "dog.jpg",
    );
    let out = dir.path().join("detections.json");
    let o = adasd(&[
        "eval",
        "--model",
        "models/nanodet_m_coco_416.toml",
        "--annotations",
        ann.to_str().unwrap(),
        "--images",
        "samples/images",
        "--threshold",
        "0.05",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = stdout(&o);
    assert_eq!(summary.lines().count(), 1, "{summary}");
    assert!(summary.contains("2 images"), "{summary}");
    assert!(
        summary.contains("horse"),
        "horse dropped and named: {summary}"
    );
    let results: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(
        summary.contains(&format!("{} detections written", results.len())),
        "{summary}"
    );
    // What `detect` finds at the manifest's threshold (0.35), under the file's category ids.
    let has = |image: u64, category: u64| {
        results.iter().any(|r| {
            r["image_id"] == image
                && r["category_id"] == category
                && r["score"].as_f64().unwrap() >= 0.35
        })
    };
    for (image, category) in [(42, 2), (42, 8), (42, 18), (7, 1)] {
        assert!(has(image, category), "image {image} category {category}");
    }
    for r in &results {
        assert!(
            [1, 2, 8, 18].contains(&r["category_id"].as_u64().unwrap()),
            "{r}"
        );
        assert!(r["score"].as_f64().unwrap() >= 0.05, "{r}");
        let b: Vec<f64> = r["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let (w, h) = if r["image_id"] == 42 {
            (768.0, 576.0)
        } else {
            (640.0, 424.0)
        };
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] >= 0.0 && b[3] >= 0.0,
            "x, y, width, height: {r}"
        );
        assert!(b[0] + b[2] <= w + 0.01 && b[1] + b[3] <= h + 0.01, "{r}");
    }
}

#[test]
fn eval_refuses_missing_images_and_foreign_label_spaces() {
    let dir = tempfile::tempdir().unwrap();
    let run = |ann: &Path| {
        adasd(&[
            "eval",
            "--model",
            "models/nanodet_m_coco_416.toml",
            "--annotations",
            ann.to_str().unwrap(),
            "--images",
            "samples/images",
            "--out",
            dir.path().join("d.json").to_str().unwrap(),
        ])
    };
    let ann = coco_annotations(dir.path(), r#"{"id": 1, "name": "person"}"#, "nope.jpg");
    let o = run(&ann);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("samples/images/nope.jpg"),
        "{}",
        stderr(&o)
    );

    let ann = coco_annotations(dir.path(), r#"{"id": 1, "name": "pedestrian"}"#, "dog.jpg");
    let o = run(&ann);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("instances.json") && err.contains("no label"),
        "{err}"
    );
}

/// Without the NVIDIA libraries (CI, a laptop) the cuda backend fails with an error that says what
/// is missing and what to do — never a panic or an abort. With them it detects the person.
#[cfg(feature = "cuda")]
#[test]
fn cuda_backend_without_a_gpu_is_a_clear_error() {
    let o = adasd(&[
        "detect",
        "--backend",
        "cuda",
        "--model",
        "models/ssdlite_mobilenet_v2_pedestrian_300.toml",
        "samples/images/person.jpg",
    ]);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    if o.status.success() {
        assert!(stdout(&o).contains("person"), "{}", stdout(&o));
    } else {
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("cuda") && (err.contains("cannot load") || err.contains("no usable GPU")),
            "{err}"
        );
        assert!(
            err.contains("--backend tract|ort") || err.contains("no usable GPU"),
            "{err}"
        );
    }
}
