//! The SSD decoder + NMS against TensorFlow's own postprocessing of the same raw head outputs
//! (fixture made by `tests/fixtures/make_ssd_reference.py` with ONNX Runtime).
#![allow(clippy::unwrap_used)]

use adas_plugins::{nms, Decoder, Manifest, Tensor};
use std::path::Path;

/// The shipped manifest of the model the fixture was made with.
const MANIFEST: &str = include_str!("../../models/ssdlite_mobilenet_v2_pedestrian_300.toml");

fn section(text: &str, name: &str) -> Vec<Vec<f32>> {
    text.lines()
        .skip_while(|l| *l != name)
        .skip(1)
        .take_while(|l| l.starts_with(|c: char| c == '-' || c.is_ascii_digit()))
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect()
}

#[test]
fn ssd_decode_and_nms_match_tensorflow_postprocessing() {
    let text = include_str!("fixtures/ssd_reference.txt");
    let boxes: Vec<f32> = section(text, "boxes").concat();
    let scores: Vec<f32> = section(text, "scores").concat();
    let reference = section(text, "detections");
    assert!(!reference.is_empty());

    let m = Manifest::parse(MANIFEST, Path::new("t.toml")).unwrap();
    let d = Decoder::new(&m).unwrap();
    let outputs = [
        Tensor::new(vec![1, 1917, 1, 4], boxes).unwrap(),
        Tensor::new(vec![1, 1917, 2], scores).unwrap(),
    ];
    let candidates = d.decode(&outputs, 1e-8).unwrap();
    let kept = nms(candidates, m.nms_iou, 100, m.nms);
    let mut max_dev = 0f32;
    for (i, r) in reference.iter().enumerate() {
        let k = kept[i];
        max_dev = [
            (k.score - r[0]).abs(),
            (k.bbox.y1 - r[1]).abs(),
            (k.bbox.x1 - r[2]).abs(),
            (k.bbox.y2 - r[3]).abs(),
            (k.bbox.x2 - r[4]).abs(),
        ]
        .into_iter()
        .fold(max_dev, f32::max);
        let (score, y1, x1, y2, x2) = (r[0], r[1], r[2], r[3], r[4]);
        assert!((k.score - score).abs() < 1e-4, "#{i}: {k:?} vs {r:?}");
        for (g, e) in [
            (k.bbox.x1, x1),
            (k.bbox.y1, y1),
            (k.bbox.x2, x2),
            (k.bbox.y2, y2),
        ] {
            assert!((g - e).abs() < 1e-4, "#{i}: {k:?} vs {r:?}");
        }
        assert_eq!(k.label, 0);
    }
    println!(
        "{} TF detections matched, max deviation {max_dev:.2e}",
        reference.len()
    );
}
