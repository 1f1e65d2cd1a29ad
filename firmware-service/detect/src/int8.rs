//! INT8 calibration for TensorRT (through ONNX Runtime's TensorRT execution provider).
//!
//! `adasd calibrate-int8` runs the model with tract (our CPU backend) over calibration images,
//! with every float tensor of the ONNX graph made an output, collects per-tensor activation
//! ranges and writes the table ONNX Runtime's TensorRT EP reads
//! (`trt_int8_calibration_table_name`, `trt_int8_use_native_calibration_table = 0`): the
//! FlatBuffers `TrtTable { dict: [KeyValue { key: tensor name, value: range as text }] }` that
//! `onnxruntime.quantization.quant_utils.write_calibration_table` writes as
//! `calibration.flatbuffers` (plus its `calibration.cache` text and a JSON copy).
//!
//! Ranges are symmetric (`-r..r`), as TensorRT uses them (`setDynamicRange(-r, r)`):
//! - `max`: the largest |x| seen;
//! - `percentile`: the |x| below which `percentile` % of all values lie (2048-bin histogram);
//! - `entropy`: TensorRT's legacy entropy calibrator: the clipping threshold that minimises the
//!   KL divergence between the 2048-bin |x| histogram and its 128-level quantisation.

use super::DetectError;
/// The GPU engine's calibration table, and what [`float_layers`] measures.
pub use adas_gpu::engine::{calibrated::Calibration as EngineTable, sensitivity::LayerCost};
use adas_plugins::manifest::Manifest;
use adas_plugins::{preprocess, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tract_onnx::prelude::*;

/// Histogram resolution (TensorRT's legacy calibrators use 2048 bins).
pub const NUM_BINS: usize = 2048;
/// INT8 levels on one side of zero.
pub const NUM_QUANTIZED_BINS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Method {
    /// Largest absolute value seen.
    #[default]
    Max,
    /// The given percentile of |x| (default 99.99).
    Percentile,
    /// KL-divergence minimisation (TensorRT's legacy entropy calibrator).
    Entropy,
}

/// Histogram of |x| over `[0, max]` in `bins.len()` equal bins.
#[derive(Debug, Clone, PartialEq)]
pub struct AbsHistogram {
    pub max: f32,
    pub bins: Vec<u64>,
}

impl AbsHistogram {
    pub fn new(max: f32, num_bins: usize) -> Self {
        AbsHistogram {
            max,
            bins: vec![0; num_bins.max(1)],
        }
    }

    pub fn bin_width(&self) -> f64 {
        self.max as f64 / self.bins.len() as f64
    }

    /// Adds values; |x| above `max` lands in the last bin.
    pub fn add(&mut self, values: &[f32]) {
        let n = self.bins.len();
        if self.max <= 0.0 {
            self.bins[0] += values.len() as u64;
            return;
        }
        let scale = n as f32 / self.max;
        for &v in values {
            let a = v.abs();
            if !a.is_finite() {
                continue;
            }
            let i = ((a * scale) as usize).min(n - 1);
            self.bins[i] += 1;
        }
    }

    /// Upper edge of the first bin at which the cumulative share reaches `percentile` %.
    pub fn percentile(&self, percentile: f64) -> f32 {
        let total: u64 = self.bins.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let target = percentile / 100.0 * total as f64;
        let mut cum = 0u64;
        for (i, &c) in self.bins.iter().enumerate() {
            cum += c;
            if cum as f64 >= target {
                return ((i + 1) as f64 * self.bin_width()) as f32;
            }
        }
        self.max
    }

    /// TensorRT's legacy entropy calibration: for every candidate clip bin `i` in
    /// `[quantized_bins, bins]`, P = the first `i` bins with the clipped tail added to the last,
    /// Q = P's bins merged into `quantized_bins` levels and spread back over the non-empty bins;
    /// returns the upper edge of the `i` with the smallest KL(P‖Q).
    pub fn entropy_threshold(&self, quantized_bins: usize) -> f32 {
        let n = self.bins.len();
        let total: u64 = self.bins.iter().sum();
        if total == 0 || self.max <= 0.0 {
            return self.max;
        }
        if n <= quantized_bins {
            return self.max;
        }
        let hist: Vec<f64> = self.bins.iter().map(|&c| c as f64).collect();
        let mut best = (f64::INFINITY, n);
        let mut suffix = vec![0.0; n + 1];
        for i in (0..n).rev() {
            suffix[i] = suffix[i + 1] + hist[i];
        }
        for i in quantized_bins..=n {
            let sliced = &hist[..i];
            let mut p: Vec<f64> = sliced.to_vec();
            p[i - 1] += suffix[i];
            let nonzero: Vec<bool> = p.iter().map(|&x| x != 0.0).collect();
            let merged = i / quantized_bins;
            let mut q = vec![0.0; i];
            for j in 0..quantized_bins {
                let start = j * merged;
                let stop = if j == quantized_bins - 1 {
                    i
                } else {
                    start + merged
                };
                let sum: f64 = sliced[start..stop].iter().sum();
                let norm = nonzero[start..stop].iter().filter(|&&z| z).count();
                if norm > 0 {
                    let v = sum / norm as f64;
                    for k in start..stop {
                        if nonzero[k] {
                            q[k] = v;
                        }
                    }
                }
            }
            let (Some(p), Some(q)) = (smooth(&p, 1e-4), smooth(&q, 1e-4)) else {
                continue;
            };
            let kl = kl_divergence(&p, &q);
            if kl < best.0 {
                best = (kl, i);
            }
        }
        (best.1 as f64 * self.bin_width()) as f32
    }
}

/// Replaces zeros by `eps`, taking the mass from the non-zero entries (as TensorRT / MXNet do).
/// `None` when everything is zero.
pub fn smooth(p: &[f64], eps: f64) -> Option<Vec<f64>> {
    let zeros = p.iter().filter(|&&x| x == 0.0).count();
    let nonzeros = p.len() - zeros;
    if nonzeros == 0 {
        return None;
    }
    let eps1 = eps * zeros as f64 / nonzeros as f64;
    Some(
        p.iter()
            .map(|&x| if x == 0.0 { eps } else { x - eps1 })
            .collect(),
    )
}

/// KL(P‖Q) of two non-negative vectors, each normalised to sum 1 first (as scipy's `entropy`).
pub fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    p.iter()
        .zip(q)
        .filter(|(&a, _)| a > 0.0)
        .map(|(&a, &b)| {
            let a = a / sp;
            let b = b / sq;
            if b <= 0.0 {
                f64::INFINITY
            } else {
                a * (a / b).ln()
            }
        })
        .sum()
}

/// Python's `repr(float)`: shortest round-trip digits, `1.0` not `1`, `1e-05` not `1e-5`.
pub fn python_float_repr(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "nan".into()
        } else if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let sci = format!("{v:e}");
    let exp: i32 = sci
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let (mantissa, _) = sci.rsplit_once('e').unwrap_or((&sci, "0"));
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// The calibration table: tensor name → symmetric range r (the tensor's values in `-r..r`).
pub type Ranges = BTreeMap<String, f32>;

// --- FlatBuffers ------------------------------------------------------------------------------------

/// Serialises like `write_calibration_table` (same FlatBuffers layout and value text): keys
/// sorted, the dict vector in the order the Python writer leaves it (reversed).
pub fn to_flatbuffers(ranges: &Ranges) -> Vec<u8> {
    let mut b = flatbuffers::FlatBufferBuilder::with_capacity(1024);
    let mut kvs = Vec::with_capacity(ranges.len());
    for (key, &r) in ranges {
        let k = b.create_string(key);
        let v = b.create_string(&python_float_repr(r as f64));
        let t = b.start_table();
        b.push_slot_always(4, k);
        b.push_slot_always(6, v);
        kvs.push(b.end_table(t));
    }
    // Python prepends the offsets in sorted order, so the vector holds them reversed.
    kvs.reverse();
    let dict = b.create_vector(&kvs);
    let t = b.start_table();
    b.push_slot_always(4, dict);
    let root = b.end_table(t);
    b.finish_minimal(root);
    b.finished_data().to_vec()
}

fn read_u32(buf: &[u8], at: usize) -> Result<usize, String> {
    buf.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(|a: [u8; 4]| u32::from_le_bytes(a) as usize)
        .ok_or_else(|| format!("offset {at} out of bounds"))
}

fn read_u16(buf: &[u8], at: usize) -> Result<usize, String> {
    buf.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(|a: [u8; 2]| u16::from_le_bytes(a) as usize)
        .ok_or_else(|| format!("offset {at} out of bounds"))
}

/// Position of field `slot` (0-based) of the table at `table`, if present.
fn field(buf: &[u8], table: usize, slot: usize) -> Result<Option<usize>, String> {
    let soff = read_u32(buf, table)? as u32 as i32;
    let vtable = (table as i64 - soff as i64) as usize;
    let vlen = read_u16(buf, vtable)?;
    let at = 4 + 2 * slot;
    if at + 2 > vlen {
        return Ok(None);
    }
    let off = read_u16(buf, vtable + at)?;
    Ok((off != 0).then_some(table + off))
}

fn string_at(buf: &[u8], pos: usize) -> Result<String, String> {
    let s = pos + read_u32(buf, pos)?;
    let len = read_u32(buf, s)?;
    let bytes = buf
        .get(s + 4..s + 4 + len)
        .ok_or_else(|| "string out of bounds".to_string())?;
    String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
}

/// Reads a `TrtTable` (what ONNX Runtime's TensorRT EP does with it: name → range).
pub fn from_flatbuffers(buf: &[u8]) -> Result<Ranges, String> {
    let root = read_u32(buf, 0)?;
    let mut out = Ranges::new();
    let Some(dict) = field(buf, root, 0)? else {
        return Ok(out);
    };
    let vec = dict + read_u32(buf, dict)?;
    let n = read_u32(buf, vec)?;
    for i in 0..n {
        let elem = vec + 4 + 4 * i;
        let kv = elem + read_u32(buf, elem)?;
        let key = match field(buf, kv, 0)? {
            Some(p) => string_at(buf, p)?,
            None => String::new(),
        };
        let value = match field(buf, kv, 1)? {
            Some(p) => string_at(buf, p)?,
            None => "0".into(),
        };
        let r: f32 = value
            .parse()
            .map_err(|_| format!("range of `{key}` is not a number: {value}"))?;
        out.insert(key, r);
    }
    Ok(out)
}

/// `calibration.cache`: `name range` per line, sorted.
pub fn to_cache_text(ranges: &Ranges) -> String {
    ranges
        .iter()
        .map(|(k, &r)| format!("{k} {}\n", python_float_repr(r as f64)))
        .collect()
}

/// JSON copy: `{"name": {"lowest": -r, "highest": r}}`.
pub fn to_json(ranges: &Ranges) -> String {
    let map: serde_json::Map<String, serde_json::Value> = ranges
        .iter()
        .map(|(k, &r)| {
            (
                k.clone(),
                serde_json::json!({"lowest": -(r as f64), "highest": r as f64}),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

// --- collecting activations with tract ------------------------------------------------------------

/// The model with every float tensor of the ONNX graph (input and node outputs, not constants)
/// as an output, so the original tensor names (which TensorRT's table is keyed by) survive.
pub struct ActivationModel {
    plan: Arc<TypedRunnableModel>,
    pub names: Vec<String>,
    input_shape: Vec<usize>,
}

impl ActivationModel {
    pub fn load(manifest: &Manifest) -> Result<Self, DetectError> {
        let path = manifest.onnx.as_path();
        let err = |stage: &str, e: TractError| DetectError::Model {
            path: path.to_path_buf(),
            message: format!("{stage}: {e:#}"),
        };
        let onnx = tract_onnx::onnx();
        let proto = onnx
            .proto_model_for_path(path)
            .map_err(|e| err("not a readable ONNX model", e))?;
        let mut candidates: Vec<String> = Vec::new();
        if let Some(graph) = &proto.graph {
            for node in &graph.node {
                if node.op_type == "Constant" {
                    continue;
                }
                candidates.extend(node.output.iter().filter(|o| !o.is_empty()).cloned());
            }
        }
        let shape = manifest.input.shape;
        let mut model = onnx
            .model_for_path(path)
            .map_err(|e| err("not a readable ONNX model", e))?
            .with_input_names([manifest.input.name.as_str()])
            .map_err(|e| err("input name from the manifest", e))?
            .with_input_fact(0, f32::fact(shape).into())
            .map_err(|e| err("input shape from the manifest", e))?;
        // The tensors are made outputs before typing: typing folds no-op Reshapes away and the
        // value keeps only one of its names, but an output stays.
        let mut names = Vec::new();
        let mut outlets = Vec::new();
        for name in candidates {
            if let Some(outlet) = model.find_outlet_label(&name) {
                if !outlets.contains(&outlet) {
                    outlets.push(outlet);
                    names.push(name);
                }
            }
        }
        model
            .select_output_outlets(&outlets)
            .map_err(|e| err("selecting tensors", e))?;
        let mut typed = model.into_typed().map_err(|e| err("typing", e))?;
        // Only the float activations: not the integer shape arithmetic, not constants.
        let mut kept = Vec::new();
        let mut kept_names = Vec::new();
        for (outlet, name) in typed
            .output_outlets()
            .map_err(|e| err("outputs", e))?
            .iter()
            .zip(names)
        {
            let fact = typed.outlet_fact(*outlet).map_err(|e| err("typing", e))?;
            if fact.datum_type == f32::datum_type() && fact.konst.is_none() {
                kept.push(*outlet);
                kept_names.push(name);
            }
        }
        // The input is collected as it is fed (a model input is no node output to select).
        let names = std::iter::once(manifest.input.name.clone())
            .chain(kept_names)
            .collect();
        typed
            .select_output_outlets(&kept)
            .map_err(|e| err("selecting tensors", e))?;
        let plan = typed
            .into_optimized()
            .map_err(|e| err("optimising", e))?
            .into_runnable()
            .map_err(|e| err("preparing", e))?;
        Ok(ActivationModel {
            plan,
            names,
            input_shape: shape.to_vec(),
        })
    }

    /// Runs the model; calls `f(tensor index, values)` for every collected tensor (index 0: the
    /// input).
    pub fn run(&self, input: &Tensor, mut f: impl FnMut(usize, &[f32])) -> Result<(), DetectError> {
        f(0, &input.data);
        let tensor = tract_onnx::prelude::Tensor::from_shape(&self.input_shape, &input.data)
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        let outputs = self
            .plan
            .run(tvec!(tensor.into()))
            .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
        for (i, value) in (1..).zip(outputs.iter()) {
            let view = value
                .to_plain_array_view::<f32>()
                .map_err(|e| DetectError::Inference(format!("{e:#}")))?;
            match view.as_slice() {
                Some(s) => f(i, s),
                None => f(i, &view.iter().copied().collect::<Vec<f32>>()),
            }
        }
        Ok(())
    }
}

/// Options of `adasd calibrate-int8`.
#[derive(Debug, Clone)]
pub struct CalibrationRequest {
    pub images: Vec<PathBuf>,
    pub method: Method,
    /// For [`Method::Percentile`].
    pub percentile: f64,
    /// How many of the images, spread evenly over them, to keep for [`float_layers`].
    pub samples: usize,
}

/// Fewer readable calibration images than this is an error.
pub const MIN_IMAGES: usize = 10;

/// Result of a calibration run.
#[derive(Debug, Clone)]
pub struct Calibration {
    /// Symmetric ranges `-r..r` (TensorRT's).
    pub ranges: Ranges,
    /// Each tensor's lowest value seen (≤ 0).
    pub lows: Ranges,
    pub images_used: usize,
    pub skipped: Vec<(PathBuf, String)>,
    /// [`CalibrationRequest::samples`] of the preprocessed images, for [`float_layers`].
    pub samples: Vec<Tensor>,
}

impl Calibration {
    /// The GPU engine's table for the model whose ONNX file hashes to `model_sha256`: each
    /// tensor's range is `[max(lowest seen, -r), r]`, so a tensor that never goes (far) below 0
    /// — after a Relu, a LeakyRelu — keeps its 256 levels where its values are.
    pub fn engine_table(
        &self,
        model: &str,
        model_sha256: &str,
        method: &str,
    ) -> adas_gpu::engine::calibrated::Calibration {
        adas_gpu::engine::calibrated::Calibration {
            format: adas_gpu::engine::calibrated::FORMAT.into(),
            model: model.into(),
            model_sha256: model_sha256.into(),
            method: method.into(),
            images: self.images_used,
            ranges: self
                .ranges
                .iter()
                .map(|(name, &r)| {
                    let low = self.lows.get(name).copied().unwrap_or(0.0).clamp(-r, 0.0);
                    (name.clone(), [low, r])
                })
                .collect(),
            float_convolutions: Default::default(),
        }
    }
}

/// Runs the model over the images and computes the ranges. Unreadable images are skipped (and
/// reported in [`Calibration::skipped`]); fewer than [`MIN_IMAGES`] readable ones is an error.
pub fn calibrate(
    manifest: &Manifest,
    request: &CalibrationRequest,
) -> Result<Calibration, DetectError> {
    let model = ActivationModel::load(manifest)?;
    let mut input = Tensor::zeros(manifest.input.shape.to_vec());
    let mut inputs = Vec::new();
    let mut skipped = Vec::new();
    for path in &request.images {
        match image::open(path) {
            Ok(img) => {
                let rgb = img.to_rgb8();
                let (w, h) = rgb.dimensions();
                preprocess::preprocess_into(
                    rgb.as_raw(),
                    w as usize,
                    h as usize,
                    &manifest.input,
                    &mut input,
                )
                .map_err(|e| DetectError::Preprocess(e.to_string()))?;
                inputs.push(input.clone());
            }
            Err(e) => skipped.push((path.clone(), e.to_string())),
        }
    }
    if inputs.len() < MIN_IMAGES {
        return Err(DetectError::Backend(format!(
            "INT8 calibration needs at least {MIN_IMAGES} readable images, got {} ({} unreadable)",
            inputs.len(),
            skipped.len()
        )));
    }
    let n = model.names.len();
    let mut amax = vec![0f32; n];
    let mut lows = vec![0f32; n];
    for x in &inputs {
        model.run(x, |i, v| {
            for &a in v.iter().filter(|a| a.is_finite()) {
                amax[i] = amax[i].max(a.abs());
                lows[i] = lows[i].min(a);
            }
        })?;
    }
    let ranges: Vec<f32> = match request.method {
        Method::Max => amax,
        Method::Percentile | Method::Entropy => {
            let mut hists: Vec<AbsHistogram> = amax
                .iter()
                .map(|&m| AbsHistogram::new(m, NUM_BINS))
                .collect();
            for x in &inputs {
                model.run(x, |i, v| hists[i].add(v))?;
            }
            hists
                .iter()
                .map(|h| match request.method {
                    Method::Percentile => h.percentile(request.percentile),
                    _ => h.entropy_threshold(NUM_QUANTIZED_BINS),
                })
                .collect()
        }
    };
    let every = inputs.len().div_ceil(request.samples.max(1));
    Ok(Calibration {
        ranges: model.names.iter().cloned().zip(ranges).collect(),
        lows: model.names.iter().cloned().zip(lows).collect(),
        images_used: inputs.len(),
        skipped,
        samples: inputs
            .into_iter()
            .step_by(every)
            .take(request.samples)
            .collect(),
    })
}

/// Keeps the `n` convolutions of `manifest`'s model whose quantization costs its outputs most
/// float in `table` (the GPU engine's), measured over `samples` (adas-gpu's
/// `engine::sensitivity`); returns every convolution's cost, costliest first. `done(k, of)`: k
/// of the `of` convolutions are measured.
pub fn float_layers(
    manifest: &Manifest,
    table: &mut EngineTable,
    samples: &[Tensor],
    n: usize,
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<LayerCost>, DetectError> {
    use adas_gpu::engine::{onnx, reference, sensitivity};
    let model_error = |message: String| DetectError::Model {
        path: manifest.onnx.clone(),
        message,
    };
    let proto = onnx::read(&manifest.onnx).map_err(|e| model_error(e.to_string()))?;
    let nchw = manifest.input.layout == adas_plugins::manifest::Layout::Nchw;
    let inputs: Vec<Vec<f32>> = samples
        .iter()
        .map(|x| reference::nhwc_input(x, nchw))
        .collect();
    let outputs = manifest.output_names();
    let io = sensitivity::Io {
        input_shape: &manifest.input.shape,
        nchw,
        outputs: &outputs,
    };
    let costs = sensitivity::layer_costs(&proto, table, io, &inputs, done)
        .map_err(|e| model_error(e.to_string()))?;
    table.float_convolutions = sensitivity::costliest(&costs, n);
    Ok(costs)
}

/// Writes `out` (FlatBuffers) and beside it `<stem>.cache` and `<stem>.json` (TensorRT's
/// table for ONNX Runtime), and `<stem>.engine.json`, the GPU engine's `engine` table; returns
/// the paths.
pub fn write_table(
    ranges: &Ranges,
    engine: &adas_gpu::engine::calibrated::Calibration,
    out: &Path,
) -> std::io::Result<Vec<PathBuf>> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let cache = out.with_extension("cache");
    let json = out.with_extension("json");
    let engine_json = out.with_extension("engine.json");
    std::fs::write(out, to_flatbuffers(ranges))?;
    std::fs::write(&cache, to_cache_text(ranges))?;
    std::fs::write(&json, to_json(ranges))?;
    let text = serde_json::to_string_pretty(engine).map_err(std::io::Error::other)?;
    std::fs::write(&engine_json, text + "\n")?;
    Ok(vec![out.to_path_buf(), cache, json, engine_json])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn python_repr() {
        for (v, s) in [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.0, "123456.0"),
            (1e16, "1e+16"),
            (2.5e-7, "2.5e-07"),
            (3.6f32 as f64, "3.5999999046325684"),
        ] {
            assert_eq!(python_float_repr(v), s);
        }
    }

    #[test]
    fn the_engine_table_keeps_each_tensors_side_of_zero() {
        let named =
            |v: &[(&str, f32)]| -> Ranges { v.iter().map(|(k, r)| (k.to_string(), *r)).collect() };
        let c = Calibration {
            // `wide` went far below the clipping threshold, `leaky` a little, `relu` never.
            ranges: named(&[("wide", 2.0), ("leaky", 4.0), ("relu", 6.0)]),
            lows: named(&[("wide", -9.0), ("leaky", -0.5), ("relu", 0.0)]),
            images_used: 12,
            skipped: Vec::new(),
            samples: Vec::new(),
        };
        let t = c.engine_table("m", "ab12", "entropy");
        assert_eq!(t.ranges["wide"], [-2.0, 2.0]);
        assert_eq!(t.ranges["leaky"], [-0.5, 4.0]);
        assert_eq!(t.ranges["relu"], [0.0, 6.0]);
        assert_eq!(
            (t.images, t.model_sha256.as_str(), t.method.as_str()),
            (12, "ab12", "entropy")
        );
        assert_eq!(t.format, adas_gpu::engine::calibrated::FORMAT);
    }

    #[test]
    fn flatbuffers_round_trip() {
        let ranges: Ranges = [("conv1", 3.6f32), ("a/b:0", 0.25), ("input", 2.64)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let buf = to_flatbuffers(&ranges);
        assert_eq!(from_flatbuffers(&buf).unwrap(), ranges);
        assert_eq!(
            from_flatbuffers(&to_flatbuffers(&Ranges::new())).unwrap(),
            Ranges::new()
        );
        assert!(from_flatbuffers(&[1, 2]).is_err());
        assert_eq!(
            to_cache_text(&ranges),
            "a/b:0 0.25\nconv1 3.5999999046325684\ninput 2.640000104904175\n"
        );
    }

    /// Bytes written by onnxruntime 1.31.1's `write_calibration_table` (flatbuffers 25.12.19)
    /// for {"conv1": (-3.6, 3.6), "a/b:0": (-0.25, 0.25), "input": (-2.64, 2.64)} as float32,
    /// produced by `firmware-service/detect/tests/fixtures/calibration_table_reference.py`.
    #[test]
    fn flatbuffers_bytes_match_python_writer() {
        let hex = include_str!("../tests/fixtures/calibration_reference.hex");
        let expected: Vec<u8> = (0..hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex.trim()[i..i + 2], 16).unwrap())
            .collect();
        let ranges: Ranges = [("conv1", 3.6f32), ("a/b:0", 0.25), ("input", 2.64)]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        assert_eq!(to_flatbuffers(&ranges), expected);
    }

    #[test]
    fn histogram_by_hand() {
        // max 4, 4 bins of width 1: |x| = 0.5, 1.5, 1.5, 2.5, 3.5, 4 (last bin), -3.9 → 3.
        let mut h = AbsHistogram::new(4.0, 4);
        h.add(&[0.5, -1.5, 1.5, 2.5, 3.5, 4.0, -3.9]);
        assert_eq!(h.bins, vec![1, 2, 1, 3]);
        // 3/7 = 42.9 % below 2 → the 40th percentile is 2 (upper edge of bin 1).
        assert_eq!(h.percentile(40.0), 2.0);
        assert_eq!(h.percentile(43.0), 3.0);
        assert_eq!(h.percentile(100.0), 4.0);
        let mut z = AbsHistogram::new(0.0, 4);
        z.add(&[0.0, 0.0]);
        assert_eq!(z.percentile(99.0), 0.0);
        assert_eq!(z.entropy_threshold(2), 0.0);
    }

    #[test]
    fn smoothing_and_kl_by_hand() {
        let s = smooth(&[0.0, 2.0, 2.0], 0.1).unwrap();
        assert!((s[0] - 0.1).abs() < 1e-12 && (s[1] - 1.95).abs() < 1e-12);
        assert!(smooth(&[0.0, 0.0], 0.1).is_none());
        // KL([.5,.5] ‖ [.25,.75]) = .5 ln 2 + .5 ln(2/3)
        let kl = kl_divergence(&[1.0, 1.0], &[1.0, 3.0]);
        assert!((kl - (0.5 * 2f64.ln() + 0.5 * (2.0f64 / 3.0).ln())).abs() < 1e-12);
        assert_eq!(kl_divergence(&[1.0, 1.0], &[1.0, 1.0]), 0.0);
    }

    #[test]
    fn entropy_by_hand() {
        // 4 bins of width 1, 2 levels; candidates i = 2, 3, 4.
        // i=2: P = [1, 3+1], Q = [1, 3]: KL = .2 ln(.2/.25) + .8 ln(.8/.75) = 0.0070
        // i=3: P = [1, 3, 1], Q = [1, 2, 2]: KL = .6 ln 1.5 + .2 ln .5 = 0.1047
        // i=4: P = [1, 3, 1, 0], Q = [2, 2, 1, 0]: KL = .2 ln .5 + .6 ln 1.5 = 0.1047
        // → clip at i = 2: threshold 2.0.
        let h = AbsHistogram {
            max: 4.0,
            bins: vec![1, 3, 1, 0],
        };
        assert_eq!(h.entropy_threshold(2), 2.0);
        // Mass in bins 0 and 1 plus one outlier in bin 7: at i = 8 Q equals P (each merged
        // group's mass sits on its non-empty bins), KL = 0, while every clip loses something,
        // so the full range is kept.
        let o = AbsHistogram {
            max: 8.0,
            bins: vec![5, 5, 0, 0, 0, 0, 0, 1],
        };
        assert_eq!(o.entropy_threshold(2), 8.0);
        // Fewer bins than levels: nothing to search.
        assert_eq!(o.entropy_threshold(8), 8.0);
    }
}
