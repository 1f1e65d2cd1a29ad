//! The COCO SSD's anchors are the table its .tflite stores (uint8, scale 0.006453, dequantized);
//! they are TF's `ssd_anchor_generator` rounded to that grid. Our generator with the config the
//! model was trained with reproduces every anchor to within half a quantization step, so the
//! table's provenance is checked and the generator is checked against a real model's anchors.
#![allow(clippy::unwrap_used, clippy::panic)]

use adas_plugins::anchors::{self, Anchor};
use adas_plugins::manifest::{AnchorSpec, HeadSpec, TfAnchors};
use adas_plugins::Manifest;
use std::path::Path;

const STEP: f32 = 0.006_453_060_5;

#[test]
fn the_stored_anchors_are_tf_ssd_anchors_on_the_quantization_grid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let m = Manifest::load(&root.join("models/ssd_mobilenet_v2_coco_300.toml")).unwrap();
    let HeadSpec::Ssd(head) = &m.head else {
        panic!("ssd head")
    };
    let table = anchors::generate(&head.anchors, 300, 300).unwrap();
    assert!(matches!(head.anchors, AnchorSpec::File(_)));
    let generated = anchors::tf_ssd_anchors(
        &TfAnchors {
            feature_maps: vec![19, 10, 5, 3, 2, 1],
            min_scale: 0.2,
            max_scale: 0.95,
            aspect_ratios: vec![1.0, 2.0, 0.5, 3.0, 1.0 / 3.0],
            interpolated_scale_aspect_ratio: 1.0,
            reduce_boxes_in_lowest_layer: true,
        },
        300,
        300,
    )
    .unwrap();
    assert_eq!(table.len(), 1917);
    assert_eq!(generated.len(), table.len());
    let dev = |a: &Anchor, b: &Anchor| {
        [a.cy - b.cy, a.cx - b.cx, a.h - b.h, a.w - b.w]
            .iter()
            .fold(0f32, |m, d| m.max(d.abs()))
    };
    let worst = table
        .iter()
        .zip(&generated)
        .map(|(a, b)| dev(a, b))
        .fold(0f32, f32::max);
    println!(
        "max |stored − generated| = {worst:.5} (half a step = {:.5})",
        STEP / 2.0
    );
    assert!(worst <= STEP / 2.0 + 1e-6, "{worst}");
    // Every stored value is on the grid: an integer number of steps.
    for a in &table {
        for v in [a.cy, a.cx, a.h, a.w] {
            let q = v / STEP;
            assert!((q - q.round()).abs() < 1e-3, "{v} is not on the grid");
        }
    }
}

#[test]
fn a_damaged_or_foreign_table_is_refused_with_its_path() {
    let err = anchors::parse_table("0.5 0.5 0.1\n").unwrap_err();
    assert!(err.contains("line 1"), "{err}");
    let err = anchors::parse_table("# only a comment\n").unwrap_err();
    assert!(err.contains("no anchors"), "{err}");
    let err = anchors::parse_table("0.5 0.5 0 0.1\n").unwrap_err();
    assert!(err.contains("h, w > 0"), "{err}");
    let dir = std::env::temp_dir().join(format!("adas-anchors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.anchors");
    std::fs::write(&path, "0.5 0.5 0.1 0.1\n").unwrap();
    let wrong = "0".repeat(64);
    let err = anchors::read_table(&path, Some(&wrong))
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.anchors") && err.contains("sha256"), "{err}");
    assert_eq!(anchors::read_table(&path, None).unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}
