//! GPU engine tests: run on the GPU test machine (`tests/gpu/run.sh`), ignored elsewhere
//! (`cargo test -p adasd --features cuda --test gpu -- --ignored --nocapture`).
//!
//! Each GPU kernel against its CPU twin, the whole engine against tract, detections against the
//! CPU pipeline on real media, determinism, and the plan cache's rebuild on a changed key.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use adas_detect::cuda::{CudaBackend, CudaOptions, PlanSource, OWN_CONVS};
use adas_detect::{Backend, BackendKind, BackendOptions, Detector, FrameResult, Precision};
use adas_gpu::engine::reference::nhwc_input;
use adas_plugins::manifest::Layout;
use adas_plugins::{nms, preprocess, Decoder, Detection, Manifest, Tensor};
use std::path::{Path, PathBuf};

#[path = "gpu/int8.rs"]
mod int8;

/// Every head and NMS the engine has kernels for: SSD with generated TF anchors and per-class
/// NMS, SSD with the file's anchor table and TensorFlow Lite's best-class NMS, GFL.
const MODELS: [&str; 3] = [
    "ssdlite_mobilenet_v2_pedestrian_300.toml",
    "ssd_mobilenet_v2_coco_300.toml",
    "nanodet_m_coco_416.toml",
];

/// The repository (ADAS_REPO_ROOT when the test binary runs on another machine).
fn root() -> PathBuf {
    std::env::var_os("ADAS_REPO_ROOT")
        .map_or_else(|| PathBuf::from(env!("ADAS_REPO_ROOT")), PathBuf::from)
}

fn media() -> Vec<(String, image::RgbImage)> {
    let r = root();
    let mut v = vec![
        r.join("samples/images/dog.jpg"),
        r.join("samples/images/person.jpg"),
    ];
    for i in [0, 50, 99] {
        v.push(r.join(format!("samples/vtest/frames/frame_{i:04}.jpg")));
    }
    let found: Vec<_> = v.into_iter().filter(|p| p.exists()).collect();
    assert_eq!(found.len(), 5, "test media missing under {}", r.display());
    found
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                image::open(&p).unwrap().to_rgb8(),
            )
        })
        .collect()
}

fn manifest(name: &str) -> Manifest {
    Manifest::load(&root().join("models").join(name)).unwrap()
}

fn options(precision: Precision, cache: Option<&Path>) -> CudaOptions {
    CudaOptions {
        precision,
        batch: 1,
        device: 0,
        cache_dir: cache.map(Path::to_path_buf),
        ..CudaOptions::default()
    }
}

/// `img` preprocessed for the network of `m` by the CPU pipeline.
fn network_input(m: &Manifest, img: &image::RgbImage) -> adas_plugins::Tensor {
    let (w, h) = (img.width() as usize, img.height() as usize);
    preprocess(img.as_raw(), w, h, &m.input).unwrap().0
}

/// The preprocessed person photo and tract's network outputs for it: the reference.
fn tract_outputs(m: &Manifest) -> (adas_plugins::Tensor, Vec<adas_plugins::Tensor>) {
    let mut tract = adas_detect::TractBackend::load(m).unwrap();
    let input = network_input(m, &media()[1].1);
    let want = tract.infer_owned(&input).unwrap();
    (input, want)
}

/// The plan file the engine wrote into the cache directory `dir`.
fn plan_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".plan.json"))
        .unwrap()
}

/// How far the network's outputs may be from tract's: FP32 math, or FP16 within 5 % of the
/// output's largest value.
fn tolerance(precision: Precision, scale: f32) -> f32 {
    if precision == Precision::Fp32 {
        2e-3
    } else {
        0.05 * scale.max(1.0)
    }
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn preprocess_kernel_matches_cpu_twin() {
    for name in MODELS {
        let m = manifest(name);
        let mut gpu =
            CudaBackend::load(&m, m.score_threshold, &options(Precision::Fp32, None)).unwrap();
        for (file, img) in media() {
            let (w, h) = (img.width() as usize, img.height() as usize);
            let ours = gpu.preprocess_only(img.as_raw(), w, h).unwrap();
            let cpu = network_input(&m, &img);
            let cpu_nhwc = nhwc_input(&cpu, m.input.layout == Layout::Nchw);
            let d = max_abs(&ours, &cpu_nhwc);
            println!("preprocess {name} {file}: max |gpu − cpu| = {d:e}");
            assert!(d < 1e-3, "{d}");
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn decode_and_nms_kernels_match_cpu_twins() {
    for name in MODELS {
        let m = manifest(name);
        let mut tract = adas_detect::TractBackend::load(&m).unwrap();
        let mut gpu =
            CudaBackend::load(&m, m.score_threshold, &options(Precision::Fp32, None)).unwrap();
        let decoder = Decoder::new(&m).unwrap();
        for (file, img) in media() {
            let input = network_input(&m, &img);
            let outputs = tract.infer_owned(&input).unwrap();
            let cpu: Vec<Detection> = nms(
                decoder.decode(&outputs, m.score_threshold).unwrap(),
                m.nms_iou,
                m.max_detections,
                m.nms,
            );
            let FrameResult::Kept(ours) = gpu.postprocess_only(&outputs).unwrap() else {
                panic!("{name} {file}: candidate overflow at the manifest's threshold");
            };
            println!(
                "decode+nms {name} {file}: cpu {} gpu {} detections",
                cpu.len(),
                ours.len()
            );
            assert_eq!(ours.len(), cpu.len());
            for (a, b) in ours.iter().zip(&cpu) {
                assert_eq!(a.label, b.label);
                assert!((a.score - b.score).abs() < 1e-5, "{a:?} {b:?}");
                assert!(a.bbox.iou(&b.bbox) > 0.9999, "{a:?} {b:?}");
            }
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn network_matches_tract() {
    for name in MODELS {
        let m = manifest(name);
        let (input, want) = tract_outputs(&m);
        for precision in [Precision::Fp32, Precision::Fp16] {
            let mut gpu =
                CudaBackend::load(&m, m.score_threshold, &options(precision, None)).unwrap();
            let got = gpu.infer_owned(&input).unwrap();
            for ((g, t), out) in got.iter().zip(&want).zip(m.output_names()) {
                assert_eq!(g.shape, t.shape, "{out}");
                let d = max_abs(&g.data, &t.data);
                let scale = t.data.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                println!("network {name} {precision:?} {out}: max |gpu − tract| = {d:e} (max |value| {scale:.2})");
                assert!(d < tolerance(precision, scale), "{out}: {d}");
            }
        }
    }
}

/// A batch: three different images through one batch-3 engine (FP32, and FP16 with every fusable
/// expansion on the fused kernel and, where the GPU has clusters, every fusable projection on the
/// whole inverted residual kernel) give each image tract's outputs for it alone. The other tests
/// run batch 1, where no kernel's image index is ever above 0.
#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn a_batch_matches_tract_image_by_image() {
    const BATCH: usize = 3;
    for name in MODELS {
        let m = manifest(name);
        let mut tract = adas_detect::TractBackend::load(&m).unwrap();
        let inputs: Vec<Tensor> = media()
            .iter()
            .take(BATCH)
            .map(|(_, img)| network_input(&m, img))
            .collect();
        assert_eq!(inputs.len(), BATCH, "sample images missing");
        let want: Vec<Vec<Tensor>> = inputs
            .iter()
            .map(|i| tract.infer_owned(i).unwrap())
            .collect();
        let mut shape = inputs[0].shape.clone();
        shape[0] = BATCH;
        let batch = Tensor {
            shape,
            data: inputs.iter().flat_map(|t| t.data.iter().copied()).collect(),
        };
        for precision in [Precision::Fp32, Precision::Fp16] {
            let dir = tempfile::tempdir().unwrap();
            let o = CudaOptions {
                batch: BATCH,
                ..options(precision, Some(dir.path()))
            };
            let mut gpu = CudaBackend::load(&m, m.score_threshold, &o).unwrap();
            if precision == Precision::Fp16 {
                let plan = plan_file(dir.path());
                let mut file: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
                let clusters = gpu.compute_capability() >= (9, 0);
                set_fused(&mut file, true, clusters);
                std::fs::write(&plan, file.to_string()).unwrap();
                gpu = CudaBackend::load(&m, m.score_threshold, &o).unwrap();
                assert!(matches!(gpu.plan_source, PlanSource::Cached(_)));
            }
            let got = gpu.infer_owned(&batch).unwrap();
            for (k, (g, out)) in got.iter().zip(m.output_names()).enumerate() {
                let per = g.data.len() / BATCH;
                for (image, w) in want.iter().enumerate() {
                    let t = &w[k].data;
                    let d = max_abs(&g.data[image * per..(image + 1) * per], t);
                    let scale = t.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                    println!("batch {BATCH} {name} {precision:?} {out} image {image}: max |gpu − tract| = {d:e}");
                    assert!(
                        d < tolerance(precision, scale),
                        "{name} {precision:?} {out} image {image}: {d}"
                    );
                }
            }
        }
    }
}

/// Every own convolution kernel on every layer: the plan cache is rewritten so that all dense
/// convolutions use one kernel (and, once each, every fusable inverted residual the whole-block
/// kernel and every fusable expansion + depthwise pair the fused kernel), and the network must
/// still match tract within the FP16 tolerance. Measured plans keep only the fastest kernel per
/// layer, so without this a kernel could be wrong unnoticed until the GPU where it wins.
#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn every_own_convolution_kernel_matches_tract() {
    for name in MODELS {
        let m = manifest(name);
        let (input, want) = tract_outputs(&m);
        let dir = tempfile::tempdir().unwrap();
        let o = options(Precision::Fp16, Some(dir.path()));
        let capability = CudaBackend::load(&m, m.score_threshold, &o)
            .unwrap()
            .compute_capability();
        let plan = plan_file(dir.path());
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
        // Every whole inverted residual on its kernel, then every fused expansion + depthwise
        // step on the fused kernel and the projections apart (the other layers as measured),
        // then every step apart with the expansions and projections on each own kernel in turn.
        let fused = file["expand_dw"].as_array().map_or(0, Vec::len);
        let inverted = file["inverted"].as_array().map_or(0, Vec::len);
        if name.starts_with("ssdlite") {
            assert_eq!(
                (fused, inverted),
                (17, 17),
                "SSDLite's fusable expansions and projections (engine::expand_dw)"
            );
        }
        if capability >= (9, 0) {
            set_fused(&mut file, true, true);
            std::fs::write(&plan, file.to_string()).unwrap();
            let label = format!("conv_inverted_residual on its {inverted} fusable steps");
            check_own(name, &m, &o, &input, &want, &label);
        }
        set_fused(&mut file, true, false);
        std::fs::write(&plan, file.to_string()).unwrap();
        let label = format!("conv_expand_dw on its {fused} fusable steps");
        check_own(name, &m, &o, &input, &want, &label);
        set_fused(&mut file, false, false);
        for own in &OWN_CONVS {
            if own.cluster && capability < (9, 0) {
                println!(
                    "{name}: {} skipped: clusters need compute capability 9.0",
                    own.kernel
                );
                continue;
            }
            for conv in file["convs"].as_array_mut().unwrap() {
                conv["algo"] = own.algo.into();
                conv["workspace"] = 0.into();
            }
            std::fs::write(&plan, file.to_string()).unwrap();
            let label = format!("{} (split-K {})", own.kernel, own.splits);
            check_own(name, &m, &o, &input, &want, &label);
        }
    }
}

/// Every fused expansion + depthwise step on `conv_expand_dw_*` (or apart), and every fused
/// projection on `conv_inverted_residual_*` (or apart).
fn set_fused(file: &mut serde_json::Value, expand_dw: bool, inverted: bool) {
    for (list, fused) in [("expand_dw", expand_dw), ("inverted", inverted)] {
        for e in file[list].as_array_mut().into_iter().flatten() {
            e["fused"] = fused.into();
        }
    }
}

/// The network built from the (rewritten) cached plan matches tract within the FP16 tolerance.
fn check_own(
    name: &str,
    m: &Manifest,
    o: &CudaOptions,
    input: &adas_plugins::Tensor,
    want: &[adas_plugins::Tensor],
    label: &str,
) {
    let mut gpu = CudaBackend::load(m, m.score_threshold, o).unwrap();
    assert!(
        matches!(gpu.plan_source, PlanSource::Cached(_)),
        "{label} was not used: {:?}",
        gpu.plan_source
    );
    let got = gpu.infer_owned(input).unwrap();
    let mut worst = 0.0f32;
    for ((g, t), out) in got.iter().zip(want).zip(m.output_names()) {
        let d = max_abs(&g.data, &t.data);
        let scale = t.data.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        assert!(
            d < tolerance(Precision::Fp16, scale),
            "{name}: every layer on {label}: {out} differs by {d}"
        );
        worst = worst.max(d / scale.max(1.0));
    }
    println!("{name}: every layer on {label}: worst |gpu − tract| / scale = {worst:.2e}");
}

fn detector(
    name: &str,
    kind: BackendKind,
    precision: Precision,
    threshold: Option<f32>,
) -> Detector {
    let options = BackendOptions {
        cuda: options(precision, None),
        ..Default::default()
    };
    Detector::load_with(&root().join("models").join(name), kind, threshold, &options).unwrap()
}

/// GPU detections vs the CPU pipeline: every CPU detection has a GPU twin of the same label with
/// IoU ≥ `min_iou` and score within `max_dscore`, and vice versa (ignoring detections within
/// `max_dscore` of the threshold, which may legitimately fall on either side).
/// `threshold`: the manifest's when `None`.
fn compare(
    name: &str,
    precision: Precision,
    threshold: Option<f32>,
    min_iou: f32,
    max_dscore: f32,
) {
    let mut cpu = detector(name, BackendKind::Tract, precision, threshold);
    let mut gpu = detector(name, BackendKind::Cuda, precision, threshold);
    let thr = cpu.score_threshold();
    let (mut worst_iou, mut worst_ds, mut n) = (1.0f32, 0.0f32, 0);
    for (file, img) in media() {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (a, _) = cpu.detect(img.as_raw(), w, h).unwrap();
        let (b, _) = gpu.detect(img.as_raw(), w, h).unwrap();
        for (x, ys) in [(&a, &b), (&b, &a)] {
            for d in x.iter() {
                let best = ys
                    .iter()
                    .filter(|e| e.label == d.label)
                    .map(|e| (e.bbox.iou(&d.bbox), (e.score - d.score).abs()))
                    .max_by(|p, q| p.0.total_cmp(&q.0));
                match best {
                    Some((iou, ds)) if iou >= min_iou && ds <= max_dscore => {
                        worst_iou = worst_iou.min(iou);
                        worst_ds = worst_ds.max(ds);
                        n += 1;
                    }
                    _ if d.score < thr + max_dscore => {}
                    other => panic!(
                        "{name} {precision:?} {file}: {} {:.3} {:?} has no twin ({other:?})",
                        d.label, d.score, d.bbox
                    ),
                }
            }
        }
    }
    println!("detections {name} {precision:?}: {n} matched, worst IoU {worst_iou:.4}, worst Δscore {worst_ds:.4}");
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn fp32_detections_match_the_cpu_pipeline() {
    for name in MODELS {
        compare(name, Precision::Fp32, None, 0.95, 0.01);
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn fp16_detections_stay_within_the_stated_tolerance() {
    // docs/GPU.md states the FP16 tolerance: IoU ≥ 0.90, score within 0.03.
    for name in MODELS {
        compare(name, Precision::Fp16, None, 0.90, 0.03);
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn frames_past_the_candidate_capacity_match_the_cpu_pipeline() {
    // At the evaluation threshold NanoDet has ~250 000 candidates per image, far more than the
    // device keeps: such frames must still give the CPU pipeline's detections.
    let m = manifest(MODELS[2]);
    let mut gpu = CudaBackend::load(&m, 0.001, &options(Precision::Fp32, None)).unwrap();
    let img = &media()[0].1;
    let fd = gpu.frame_detector().unwrap();
    let (frames, _) = fd
        .detect_frames(&[img.as_raw()], img.width() as usize, img.height() as usize)
        .unwrap();
    assert!(
        matches!(frames[0], FrameResult::Overflowed { candidates } if candidates > adas_plugins::gpu::CANDIDATE_CAPACITY),
        "{:?}",
        frames[0]
    );
    compare(MODELS[2], Precision::Fp32, Some(0.001), 0.95, 0.01);
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn graph_replays_are_bit_identical() {
    let m = manifest(MODELS[2]);
    let mut gpu = CudaBackend::load(&m, 0.05, &options(Precision::Fp16, None)).unwrap();
    let img = &media()[1].1;
    let fd = gpu.frame_detector().unwrap();
    let (first, _) = fd
        .detect_frames(&[img.as_raw()], img.width() as usize, img.height() as usize)
        .unwrap();
    assert!(matches!(&first[0], FrameResult::Kept(d) if !d.is_empty()));
    for _ in 0..20 {
        let (again, _) = fd
            .detect_frames(&[img.as_raw()], img.width() as usize, img.height() as usize)
            .unwrap();
        assert_eq!(again, first);
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn plan_cache_is_used_and_rebuilt_when_its_key_changes() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(MODELS[0]);
    let o = options(Precision::Fp16, Some(dir.path()));
    let first = CudaBackend::load(&m, 0.3, &o).unwrap();
    assert!(
        matches!(first.plan_source, PlanSource::Built { .. }),
        "{:?}",
        first.plan_source
    );
    drop(first);
    let second = CudaBackend::load(&m, 0.3, &o).unwrap();
    assert!(
        matches!(second.plan_source, PlanSource::Cached(_)),
        "{:?}",
        second.plan_source
    );
    drop(second);
    // Pretend the plan was made under another driver.
    let plan = plan_file(dir.path());
    let text = std::fs::read_to_string(&plan).unwrap();
    let tampered = text.replacen("\"driver\": ", "\"driver\": 1", 1);
    assert_ne!(text, tampered);
    std::fs::write(&plan, tampered).unwrap();
    let third = CudaBackend::load(&m, 0.3, &o).unwrap();
    match &third.plan_source {
        PlanSource::Built { reason } => {
            println!("plan cache rebuild reason: {reason}");
            assert!(
                reason.contains("stale") && reason.contains("driver"),
                "{reason}"
            );
        }
        other => panic!("stale plan reused: {other:?}"),
    }
}
