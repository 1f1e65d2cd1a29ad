//! The INT8 kernels against the integer reference (`adas_gpu::engine::int8`), bit for bit, on
//! every convolution shape of the COCO SSD: dense ones on tensor cores, depthwise ones on CUDA
//! cores, each way of splitting a convolution among threads (`Split`: both dense tiles, one or
//! several depthwise output pixels a thread), each copy width of the dense kernel (16-, 4- and
//! 1-byte chunks), with and without weight
//! zero points, int8 outputs, FP16 ones (dequantized from the grid, or straight from the sums),
//! the clamps of no activation, ReLU and ReLU6, batches and pitched (concat-slice) buffers.

use super::{manifest, root, MODELS};
use adas_gpu::cuda::{Int8Convolver, Split};
use adas_gpu::engine::int8::{self, activation_range, Output, QConv, QOutput, QWeights, Requant};
use adas_gpu::engine::plan::{ConvStep, Step};
use adas_gpu::engine::{compile, onnx, qdq, Target};
use adas_plugins::gpu::Act;

/// The COCO SSD's convolutions as the engine lowers its float form (unfused), in plan order.
fn coco_ssd_convolutions() -> Vec<ConvStep> {
    let m = manifest(MODELS[1]);
    let graph = onnx::load(&m.onnx).unwrap();
    let target = Target {
        tensor_cores: false,
    };
    let plan = compile(&graph, &m.input.shape, false, &m.output_names(), target).unwrap();
    plan.steps
        .into_iter()
        .filter_map(|s| match s {
            Step::Conv(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// One convolution per distinct shape.
fn distinct_shapes(convs: Vec<ConvStep>) -> Vec<ConvStep> {
    let mut seen = Vec::new();
    let mut shapes = Vec::new();
    for c in convs {
        let key = (
            c.h, c.w, c.c, c.k, c.r, c.s, c.pad, c.stride, c.groups, c.oh, c.ow,
        );
        if !seen.contains(&key) {
            seen.push(key);
            shapes.push(c);
        }
    }
    shapes
}

/// `c`'s shape at batch 1, dense buffers, int8 out, no activation, zero points 0.
fn shape(c: &ConvStep) -> QConv {
    QConv::of(c, 1)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn i8(&mut self) -> i8 {
        self.next() as i8
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A quantized version of `c` (batch `n`, input and output pitches padded by `pad_x`, `pad_y`),
/// with random data and quantization whose outputs mostly fall inside the int8 range.
fn case(
    c: &ConvStep,
    variant: usize,
    n: usize,
    pad_x: usize,
    pad_y: usize,
    rng: &mut Rng,
) -> (QConv, QWeights, Vec<i8>) {
    let act = [Act::Clip(0.0, 6.0), Act::Relu, Act::None][variant % 3];
    // Each output kind with and without weight zero points (the variant's parity).
    let output = match variant / 2 % 4 {
        2 => Output::Fp16,
        3 => Output::Float,
        _ => Output::Int8,
    };
    // Near the middle, so that ReLU and ReLU6 leave values on both sides of their clamps.
    let y_zero = (rng.next() % 81) as i8 - 40;
    let y_scale = 0.01 + 0.05 * rng.unit() as f32;
    let spec = QConv {
        n,
        x_pitch: c.c + pad_x,
        y_pitch: c.k + pad_y,
        x_zero: rng.i8(),
        y_zero,
        y_scale,
        clamp: activation_range(act, y_scale, y_zero).unwrap(),
        output,
        // A float output's activation runs on its FP32 value: LeakyRelu (NanoDet's) in place
        // of the clamp ReLU6.
        act: match (output, act) {
            (Output::Float, Act::Clip(..)) => Act::Leaky(0.1),
            (Output::Float, act) => act,
            _ => Act::None,
        },
        ..shape(c)
    };
    let len = spec.q_len();
    // |Σ x·w| is about 74² · √len for uniform int8 values: aim at ±25 steps, one multiplier
    // per channel between half and twice that.
    let base = 25.0 / (74.0 * 74.0 * (len as f64).sqrt());
    // Every other case with weight zero points (small: the sums stay mostly inside the clamp).
    let zero_points = variant % 2 == 1;
    let q = QWeights {
        weights: (0..spec.k * len).map(|_| rng.i8()).collect(),
        w_zero: (0..spec.k)
            .map(|_| {
                if zero_points {
                    (rng.next() % 17) as i8 - 8
                } else {
                    0
                }
            })
            .collect(),
        bias: (0..spec.k).map(|_| (rng.next() as i32) >> 16).collect(),
        requant: (0..spec.k)
            .map(|_| Requant::new(base * (0.5 + 1.5 * rng.unit())))
            .collect(),
        // Real values of a few hundred at most: inside FP16's range.
        scale: (0..spec.k)
            .map(|_| 1e-3 * (0.5 + rng.unit() as f32))
            .collect(),
    };
    let x = (0..spec.x_len()).map(|_| rng.i8()).collect();
    (spec, q, x)
}

/// Values that differ between the two outputs (the whole buffers, so a write between pitched
/// pixels counts too; FP16 compared by bits), and how many output values of the reference lie
/// strictly inside the clamp (a float output's: how many are not 0).
fn compare(spec: &QConv, gpu: &QOutput, cpu: &QOutput) -> (usize, usize) {
    let positions = (0..spec.n * spec.oh * spec.ow)
        .flat_map(|p| (0..spec.k).map(move |k| p * spec.y_pitch + k))
        .collect::<Vec<_>>();
    let inside = |q: i32| q > i32::from(spec.clamp.0) && q < i32::from(spec.clamp.1);
    match (gpu, cpu) {
        (QOutput::Int8(g), QOutput::Int8(c)) => (
            g.iter().zip(c).filter(|(a, b)| a != b).count(),
            positions
                .iter()
                .filter(|&&i| inside(i32::from(c[i])))
                .count(),
        ),
        (QOutput::Fp16(g), QOutput::Fp16(c)) => (
            g.iter()
                .zip(c)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count(),
            positions
                .iter()
                .filter(|&&i| match spec.output {
                    Output::Float => c[i] != 0.0,
                    _ => inside((c[i] / spec.y_scale).round() as i32 + i32::from(spec.y_zero)),
                })
                .count(),
        ),
        _ => (usize::MAX, 0),
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn int8_convolutions_match_the_integer_reference_bit_for_bit() {
    let gpu = Int8Convolver::new(0).unwrap();
    let shapes = distinct_shapes(coco_ssd_convolutions());
    // MobileNetV2 + the SSD's extra layers and box predictors: dense and depthwise.
    assert!(shapes.len() > 30, "{} shapes", shapes.len());
    assert!(shapes.iter().any(|c| c.groups > 1) && shapes.iter().any(|c| c.c == 3));
    let mut rng = Rng(0x5eed_1a8e);
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut splits_run = Vec::new();
    for (i, c) in shapes.iter().enumerate() {
        // Every shape at batch 1, dense; every third also at batch 2 with concat-slice pitches
        // (+16: 16-byte copies stay possible; +4: the 4-byte path); every fifth with odd
        // pitches (+1, +3: the byte-wise paths, one channel a thread in the depthwise kernel).
        let mut runs = vec![(1, 0, 0)];
        if i % 3 == 0 {
            runs.push((2, if i % 2 == 0 { 16 } else { 4 }, 8));
        }
        if i % 5 == 1 {
            runs.push((1, 1, 3));
        }
        for (n, pad_x, pad_y) in runs {
            let (spec, q, x) = case(c, i + n, n, pad_x, pad_y, &mut rng);
            let want = int8::conv(&spec, &q, &x);
            // Every way the kernels split this convolution among threads, whichever the
            // engine would pick on this GPU.
            for split in Split::candidates(&spec) {
                let got = gpu.conv(&spec, &q, &x, Some(split)).unwrap();
                let (wrong, inside) = compare(&spec, &got, &want);
                let total = spec.n * spec.oh * spec.ow * spec.k;
                println!(
                "int8 {} {split:?} n{} {}×{}×{} → {}×{}×{} {}×{}/{} groups {} pitch {}/{} {:?} \
                 clamp {:?} w_zero {}: {wrong} of {total} differ, {inside} inside the clamp",
                c.node,
                spec.n,
                spec.h,
                spec.w,
                spec.c,
                spec.oh,
                spec.ow,
                spec.k,
                spec.r,
                spec.s,
                spec.stride[0],
                spec.groups,
                spec.x_pitch,
                spec.y_pitch,
                spec.output,
                spec.clamp,
                q.has_zero_point()
            );
                // Not a comparison of clamped constants: most values carry the arithmetic.
                assert!(inside * 2 > total / 3, "{}: {inside} of {total}", c.node);
                if wrong != 0 {
                    failures.push(format!(
                        "{} {split:?} (batch {n}): {wrong} of {total}",
                        c.node
                    ));
                }
                checked += 1;
                if !splits_run.contains(&split) {
                    splits_run.push(split);
                }
            }
        }
    }
    println!(
        "int8: {checked} convolutions on {}, {} shapes",
        gpu.device(),
        shapes.len()
    );
    assert!(failures.is_empty(), "INT8 kernels differ: {failures:#?}");
    for split in [Split::Square, Split::Tall, Split::Pixel, Split::Pixels] {
        assert!(splits_run.contains(&split), "{split:?} never ran");
    }
}

/// The COCO SSD's own INT8 layers — its weights, zero points, scales and ReLU6 clamps, imported
/// from the QDQ model — on the kernels and the reference, bit for bit; the box predictors write
/// FP16 as they do where the consumer is float.
#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn int8_kernels_run_the_coco_ssds_own_layers_bit_for_bit() {
    let gpu = Int8Convolver::new(0).unwrap();
    let model = onnx::read(&root().join("models/ssd_mobilenet_v2_coco_300_int8.onnx")).unwrap();
    let quant = qdq::conv_quantization(&model).unwrap();
    let convs = coco_ssd_convolutions();
    let mut rng = Rng(0x0c0c_05d0);
    let mut failures = Vec::new();
    for q in &quant {
        let c = convs.iter().find(|c| c.node == q.node).unwrap();
        let float_consumer = q.node.contains("Predictor");
        // The COCO SSD quantizes every convolution's output.
        let y = q.y.unwrap();
        let spec = QConv {
            x_zero: q.x.zero,
            y_zero: y.zero,
            y_scale: y.scale,
            clamp: activation_range(c.act, y.scale, y.zero).unwrap(),
            output: if float_consumer {
                Output::Fp16
            } else {
                Output::Int8
            },
            ..shape(c)
        };
        let x: Vec<i8> = (0..spec.x_len()).map(|_| rng.i8()).collect();
        let want = int8::conv(&spec, &q.weights, &x);
        let got = gpu.conv(&spec, &q.weights, &x, None).unwrap();
        let (wrong, inside) = compare(&spec, &got, &want);
        let total = spec.oh * spec.ow * spec.k;
        println!(
            "int8 model layer {}: {wrong} of {total} differ, {inside} inside the clamp {:?}, \
             {} channels with a weight zero point",
            q.node, spec.clamp, q.with_zero_point
        );
        if wrong != 0 {
            failures.push(format!("{}: {wrong} of {total}", q.node));
        }
    }
    assert_eq!(quant.len(), 72);
    assert!(failures.is_empty(), "INT8 kernels differ: {failures:#?}");
}

/// The pixels TensorFlow Lite was given for the fixture: tests/reference/reference_decode.py's
/// `resize_bilinear` (asymmetric sampling, the COCO SSD's manifest; coordinates in f64, the
/// blend in f32 in numpy's order), rounded half to even to uint8.
fn fixture_pixels(img: &image::RgbImage, size: usize) -> image::RgbImage {
    let coords = |n_in: usize| -> Vec<(usize, usize, f32)> {
        let scale = n_in as f64 / size as f64;
        (0..size)
            .map(|i| {
                let c = (i as f64 * scale).clamp(0.0, (n_in - 1) as f64);
                let i0 = c.floor() as usize;
                (i0, (i0 + 1).min(n_in - 1), (c - i0 as f64) as f32)
            })
            .collect()
    };
    let (ys, xs) = (coords(img.height() as usize), coords(img.width() as usize));
    let px = |x: usize, y: usize, ch: usize| f32::from(img.get_pixel(x as u32, y as u32)[ch]);
    image::RgbImage::from_fn(size as u32, size as u32, |ox, oy| {
        let ((y0, y1, fy), (x0, x1, fx)) = (ys[oy as usize], xs[ox as usize]);
        image::Rgb(std::array::from_fn(|ch| {
            let top = px(x0, y0, ch) * (1.0 - fx) + px(x1, y0, ch) * fx;
            let bottom = px(x0, y1, ch) * (1.0 - fx) + px(x1, y1, ch) * fx;
            (top * (1.0 - fy) + bottom * fy)
                .round_ties_even()
                .clamp(0.0, 255.0) as u8
        }))
    })
}

/// How a run's detections compare with the fixture's (reference detections ≥ 0.45).
#[derive(Default)]
struct Tally {
    compared: usize,
    /// IoU ≥ 0.9 and |Δscore| ≤ 0.05: the bar.
    within: usize,
    identical_score: usize,
    worst_iou: f64,
    worst_score: f64,
    misses: Vec<String>,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "{} reference detections ≥ 0.45: {} within IoU ≥ 0.9 and |Δscore| ≤ 0.05, {} with the \
             identical score; worst IoU {:.3}, worst |Δscore| {:.3}",
            self.compared, self.within, self.identical_score, self.worst_iou, self.worst_score
        )
    }
}

/// Scores `ours` (boxes in `scale`d pixels of the original image) against the fixture entry.
fn tally(
    t: &mut Tally,
    path: &str,
    entry: &serde_json::Value,
    ours: &[adas_detect::ImageDetection],
    scale: (f64, f64),
) {
    let iou = |a: &[f64; 4], b: &[f64; 4]| {
        let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
        let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
        let area = |r: &[f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
        w * h / (area(a) + area(b) - w * h)
    };
    for r in entry["detections"].as_array().unwrap() {
        let score = r["score"].as_f64().unwrap();
        if score < 0.45 {
            continue;
        }
        let label = r["label"].as_str().unwrap();
        let rb: Vec<f64> = r["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let rb = [rb[0], rb[1], rb[2], rb[3]];
        let best = ours
            .iter()
            .filter(|d| d.label == label)
            .map(|d| {
                let (sx, sy) = scale;
                let b = [
                    f64::from(d.bbox.x1) * sx,
                    f64::from(d.bbox.y1) * sy,
                    f64::from(d.bbox.x2) * sx,
                    f64::from(d.bbox.y2) * sy,
                ];
                (iou(&b, &rb), (f64::from(d.score) - score).abs())
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .unwrap_or((0.0, 1.0));
        t.compared += 1;
        t.worst_iou = if t.compared == 1 {
            best.0
        } else {
            t.worst_iou.min(best.0)
        };
        t.worst_score = t.worst_score.max(best.1);
        // Scores are on TensorFlow Lite's 1/256 grid: identical, or a step apart.
        t.identical_score += usize::from(best.1 < 1e-4);
        if best.0 >= 0.9 && best.1 <= 0.05 {
            t.within += 1;
        } else {
            t.misses.push(format!(
                "{path}: {label} {score:.3} {rb:?} → IoU {:.3}, Δscore {:.3}",
                best.0, best.1
            ));
        }
    }
}

/// TensorFlow Lite's detections of the .tflite COCO SSD on the fixture's images, and their paths.
fn tflite_fixture() -> serde_json::Value {
    let path = root().join("tests/fixtures/reference/ssd_coco_tflite.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The fixture's images present on this machine: path, TensorFlow Lite's entry, pixels.
fn present_images(
    fixture: &serde_json::Value,
) -> Vec<(String, serde_json::Value, image::RgbImage)> {
    let images = fixture["images"].as_object().unwrap();
    images
        .iter()
        .filter(|(path, _)| root().join(path).exists())
        .map(|(path, entry)| {
            let img = image::open(root().join(path)).unwrap().to_rgb8();
            (path.clone(), entry.clone(), img)
        })
        .collect()
}

/// The whole quantized COCO SSD on the engine's INT8 plan (`precision = "int8"`: the model's own
/// quantization, TensorFlow Lite's integer convolutions, Add/Concat/Sigmoid requantized from the
/// exact integers) against TensorFlow Lite running the original .tflite
/// (tests/fixtures/reference/ssd_coco_tflite.json), over the fixture's images present here, given
/// the pixels TensorFlow Lite was given ([`fixture_pixels`]): every reference detection ≥ 0.45
/// (clear of the daemon's 0.4) has a same-label detection with IoU ≥ 0.9 and |Δscore| ≤ 0.05
/// (the bar). Also printed: the same from the original images through the GPU's own
/// resize, whose float arithmetic rounds a pixel to the other grey level here and there.
#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn int8_coco_ssd_matches_tensorflow_lite() {
    use adas_detect::{BackendKind, BackendOptions, Detector, Precision};
    let fixture = tflite_fixture();
    let options = BackendOptions {
        cuda: super::options(Precision::Int8, None),
        ..Default::default()
    };
    let model = root().join("models/ssd_mobilenet_v2_coco_300_int8.toml");
    let mut gpu = Detector::load_with(&model, BackendKind::Cuda, Some(0.25), &options).unwrap();
    let (mut images, mut same_input, mut own_resize) = (0, Tally::default(), Tally::default());
    for (path, entry, img) in present_images(&fixture) {
        let (path, entry) = (path.as_str(), &entry);
        images += 1;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let input = fixture_pixels(&img, 300);
        let (ours, _) = gpu.detect(input.as_raw(), 300, 300).unwrap();
        tally(
            &mut same_input,
            path,
            entry,
            &ours,
            (w as f64 / 300.0, h as f64 / 300.0),
        );
        let (ours, _) = gpu.detect(img.as_raw(), w, h).unwrap();
        tally(&mut own_resize, path, entry, &ours, (1.0, 1.0));
    }
    println!(
        "INT8 COCO SSD vs TensorFlow Lite, {images} images, TensorFlow Lite's input pixels: {}",
        same_input.summary()
    );
    for m in &same_input.misses {
        println!("  {m}");
    }
    println!(
        "the same through the GPU's own resize: {}",
        own_resize.summary()
    );
    assert!(
        images >= 5 && same_input.compared >= 10,
        "{images} images, {} detections",
        same_input.compared
    );
    assert!(
        same_input.misses.is_empty(),
        "{} of {} outside the bar",
        same_input.misses.len(),
        same_input.compared
    );
}

/// The float models INT8 with their shipped calibration tables (`precision = "int8"`, the
/// manifest's `int8_calibration`) against the FP32 engine, their reference: over the fixture's
/// images present here, the FP32 detections ≥ 0.45 that have a same-label INT8 detection with
/// IoU ≥ 0.9 and |Δscore| ≤ 0.05. Calibration rounds every activation, so a few may move more;
/// most must not.
#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn calibrated_int8_keeps_the_fp32_engines_detections() {
    use adas_detect::{BackendKind, BackendOptions, Detector, Precision};
    let fixture = tflite_fixture();
    let load = |name: &str, precision| {
        let options = BackendOptions {
            cuda: super::options(precision, None),
            ..Default::default()
        };
        let model = root().join("models").join(name);
        Detector::load_with(&model, BackendKind::Cuda, Some(0.3), &options).unwrap()
    };
    for name in [
        "nanodet_m_coco_416.toml",
        "ssdlite_mobilenet_v2_pedestrian_300.toml",
    ] {
        let (mut fp32, mut int8) = (load(name, Precision::Fp32), load(name, Precision::Int8));
        let (mut images, mut t) = (0, Tally::default());
        for (path, _, img) in present_images(&fixture) {
            let path = path.as_str();
            images += 1;
            let (w, h) = (img.width() as usize, img.height() as usize);
            let (want, _) = fp32.detect(img.as_raw(), w, h).unwrap();
            let (got, _) = int8.detect(img.as_raw(), w, h).unwrap();
            let reference = serde_json::json!({
                "detections": want.iter().map(|d| serde_json::json!({
                    "label": d.label,
                    "score": d.score,
                    "box": [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2],
                })).collect::<Vec<_>>()
            });
            tally(&mut t, path, &reference, &got, (1.0, 1.0));
        }
        println!(
            "{name} INT8 (calibrated) vs FP32 engine, {images} images: {}",
            t.summary()
        );
        for m in &t.misses {
            println!("  {m}");
        }
        assert!(
            images >= 5 && t.compared >= 5,
            "{images} images, {} detections",
            t.compared
        );
        assert!(
            3 * t.within >= 2 * t.compared,
            "{name}: only {} of {} FP32 detections kept within the bar",
            t.within,
            t.compared
        );
    }
}

/// The whole INT8 network on the GPU against its plan run by the CPU reference
/// (`adas_gpu::engine::reference`, the kernels' executable specification), on real images: the
/// COCO SSD's own quantization and the float models with their calibration tables. The
/// convolutions are bit-exact (the tests above); between them the GPU keeps float values in FP16
/// where the reference keeps f32, so a value next to a rounding boundary may land one step
/// over, and the quantized network turns such a step into output steps: each output's mean
/// |Δ| must stay under 2 % of its largest value (a wrong index or scale moves far more).
#[test]
#[ignore = "needs an NVIDIA GPU: tests/gpu/run.sh"]
fn int8_networks_compute_their_cpu_reference() {
    use adas_detect::cuda::CudaBackend;
    use adas_detect::{Backend, Precision};
    use adas_gpu::engine::{calibrated, compile_int8, reference};
    let mut failures = Vec::new();
    for name in [
        "ssd_mobilenet_v2_coco_300_int8.toml",
        "nanodet_m_coco_416.toml",
        "ssdlite_mobilenet_v2_pedestrian_300.toml",
    ] {
        let m = manifest(name);
        let proto = onnx::read(&m.onnx).unwrap();
        let sha = m.sha256.clone().unwrap_or_default();
        let int8 =
            calibrated::int8_model(&m.name, proto, &sha, m.int8_calibration.as_deref()).unwrap();
        let convs = qdq::conv_quantization(&int8.proto).unwrap();
        let graph = onnx::from_model(int8.proto).unwrap();
        let nchw = m.input.layout == adas_plugins::manifest::Layout::Nchw;
        let plan = compile_int8(&graph, &m.input.shape, nchw, &m.output_names(), convs).unwrap();
        let options = super::options(Precision::Int8, None);
        let mut gpu = CudaBackend::load(&m, m.score_threshold, &options).unwrap();
        for (file, img) in super::media() {
            let input = super::network_input(&m, &img);
            // The engine holds its input in FP16.
            let nhwc: Vec<f32> = reference::nhwc_input(&input, nchw)
                .iter()
                .map(|&v| half::f16::from_f32(v).to_f32())
                .collect();
            let want = reference::run(&plan, &nhwc);
            let got = gpu.infer_owned(&input).unwrap();
            for ((g, r), out) in got.iter().zip(&want).zip(m.output_names()) {
                assert_eq!(g.data.len(), r.len(), "{name} {out}");
                // FP16 storage alone moves a value by up to 2⁻¹¹ of its magnitude.
                let tol = |v: f32| v.abs() * 1e-3 + 1e-6;
                let off: Vec<f32> = g.data.iter().zip(r).map(|(a, b)| (a - b).abs()).collect();
                let moved = g
                    .data
                    .iter()
                    .zip(r)
                    .filter(|(a, b)| (*a - *b).abs() > tol(**b))
                    .count();
                let worst = off.iter().fold(0.0f32, |a, v| a.max(*v));
                let mean = off.iter().sum::<f32>() / off.len() as f32;
                println!(
                    "{name} {file} {out}: {moved} of {} values moved, mean |Δ| {mean:.2e}, \
                     worst {worst:.3e}",
                    r.len()
                );
                let scale = r.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                if mean > 0.02 * scale {
                    failures.push(format!("{name} {file} {out}: {moved} moved, worst {worst}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
