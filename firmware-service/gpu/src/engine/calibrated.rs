//! INT8 for float models: the calibration table `adasd calibrate-int8` writes, and the QDQ model
//! it makes of a float model, which the INT8 plan is then compiled from exactly like a quantized
//! model's own ([`super::qdq`], [`super::quantized`]).
//!
//! The rewrite quantizes what the INT8 convolutions read and write, as TensorRT's explicit
//! quantization and ONNX Runtime's `quantize_static` (QDQ format) place them:
//! - every INT8 convolution's input, taken before the zero Pads that feed it (the plan folds them
//!   into the convolution's padding), and its output — after the Relu or Clip that follows it
//!   alone (the INT8 epilogue clamps), before any other activation (LeakyRelu, Sigmoid stay
//!   float) — get a QuantizeLinear → DequantizeLinear pair: uint8, per tensor, from the
//!   calibrated range; but an output from which no INT8 convolution is reached (a detection
//!   head's box and score logits, the input of a layer kept float) stays float: the INT8 kernel
//!   writes it in FP16 from its INT32 sums, activation applied, instead of through an 8-bit grid
//!   that would cost the scores whole steps;
//! - weights become int8 with one symmetric scale per output channel (largest |w| → 127), the
//!   bias INT32 at the input scale × the channel's weight scale.
//!
//! The convolutions the table keeps float (`float_convolutions`, chosen by
//! [`super::sensitivity`]) keep their float weights and run in FP16, as everything else does
//! between the quantized values.

use super::onnx::{self, attr_str, OnnxError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tract_onnx::pb::{self, attribute_proto::AttributeType, ModelProto, NodeProto, TensorProto};

/// The table's format tag; a table of another format is refused.
pub const FORMAT: &str = "adas-int8-calibration/1";

/// A float model's calibration: the range of every float tensor over the calibration images.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// [`FORMAT`].
    pub format: String,
    /// The manifest's model name, and the SHA-256 of the ONNX file the ranges were taken on.
    pub model: String,
    pub model_sha256: String,
    /// How each range was taken from the activations (`max`, `percentile 99.99`, `entropy`).
    pub method: String,
    /// Images the ranges were taken over.
    pub images: usize,
    /// Tensor name → `[low, high]`: the range its values are quantized to (`low` ≤ 0 ≤ `high`).
    pub ranges: BTreeMap<String, [f32; 2]>,
    /// The convolutions that stay float (FP16), named by their output tensor: the layers whose
    /// quantization costs the outputs most (`adasd calibrate-int8 --float-layers`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub float_convolutions: BTreeSet<String>,
}

/// Why an INT8 plan cannot be made; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(
        "precision \"int8\" needs the INT8 calibration of float model `{model}`, and none is set: \
         run `adasd calibrate-int8 --model <its manifest> --images <a folder of 200 or more \
         frames from the camera> --out <table>` and name the table in the manifest \
         (`int8_calibration`) or in `[detector.cuda] int8_calibration`"
    )]
    Missing { model: String },
    #[error("INT8 calibration table {path}: {message}")]
    Unreadable { path: PathBuf, message: String },
    #[error(
        "INT8 calibration table {path} is stale: it was made for model `{made_for}` \
         (ONNX SHA-256 {made_sha}), not for `{model}` ({model_sha}); run `adasd calibrate-int8 \
         --model <its manifest> --images <200 or more frames> --out {path}` again"
    )]
    Stale {
        path: PathBuf,
        made_for: String,
        made_sha: String,
        model: String,
        model_sha: String,
    },
    #[error(
        "model `{model}` is already quantized (a QDQ model): it takes its own quantization; \
         remove the INT8 calibration table {path} from its settings"
    )]
    AlreadyQuantized { model: String, path: PathBuf },
    #[error("INT8 calibration of `{model}`: {source}")]
    Quantize {
        model: String,
        #[source]
        source: OnnxError,
    },
}

impl Calibration {
    /// Reads the table at `path`; returns it and the SHA-256 of its bytes (the plan key's).
    pub fn read(path: &Path) -> Result<(Calibration, String), CalibrationError> {
        let unreadable = |message: String| CalibrationError::Unreadable {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|e| {
            unreadable(format!(
                "{e}; run `adasd calibrate-int8` to make it (docs/GPU.md)"
            ))
        })?;
        let table: Calibration = serde_json::from_slice(&bytes)
            .map_err(|e| unreadable(format!("not an INT8 calibration table: {e}")))?;
        if table.format != FORMAT {
            return Err(unreadable(format!(
                "format `{}`, this build reads `{FORMAT}`: run `adasd calibrate-int8` again",
                table.format
            )));
        }
        if let Some((name, r)) = table
            .ranges
            .iter()
            .find(|(_, [lo, hi])| !(lo.is_finite() && hi.is_finite() && *lo <= 0.0 && *hi >= 0.0))
        {
            return Err(unreadable(format!(
                "tensor `{name}`: range {r:?} is not finite around 0"
            )));
        }
        Ok((table, adas_plugins::sha256_hex(&bytes)))
    }

    /// The uint8 quantization of range `[lo, hi]`: `(scale, zero point)`.
    pub fn uint8(range: [f32; 2]) -> (f32, u8) {
        let [lo, hi] = [range[0].min(0.0), range[1].max(0.0)];
        // A tensor that never left 0 still needs a valid scale.
        let scale = ((hi - lo) / 255.0).max(f32::MIN_POSITIVE * 1e6);
        // A symmetric range is int8's: zero at 128 (the division may land a hair below 127.5).
        if lo < 0.0 && lo == -hi {
            return (scale, 128);
        }
        let zero = (-lo / scale).round_ties_even().clamp(0.0, 255.0) as u8;
        (scale, zero)
    }
}

/// The model an INT8 plan is compiled from, and the SHA-256 of the calibration table it took.
#[derive(Debug, Clone)]
pub struct Int8Model {
    pub proto: ModelProto,
    pub calibration_sha256: Option<String>,
}

/// Whether the model carries its own quantization (QuantizeLinear nodes: a QDQ model).
pub fn is_quantized(model: &ModelProto) -> bool {
    model
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .any(|n| n.op_type == "QuantizeLinear")
}

/// The INT8 form of model `name` (`proto`, whose ONNX file hashes to `model_sha256`): a QDQ
/// model as it is; a float model quantized with the calibration table at `table`, which must
/// have been made for this very file.
pub fn int8_model(
    name: &str,
    proto: ModelProto,
    model_sha256: &str,
    table: Option<&Path>,
) -> Result<Int8Model, CalibrationError> {
    if is_quantized(&proto) {
        return match table {
            None => Ok(Int8Model {
                proto,
                calibration_sha256: None,
            }),
            Some(path) => Err(CalibrationError::AlreadyQuantized {
                model: name.into(),
                path: path.to_path_buf(),
            }),
        };
    }
    let path = table.ok_or_else(|| CalibrationError::Missing { model: name.into() })?;
    let (calibration, sha) = Calibration::read(path)?;
    if !calibration.model_sha256.eq_ignore_ascii_case(model_sha256) {
        return Err(CalibrationError::Stale {
            path: path.to_path_buf(),
            made_for: calibration.model,
            made_sha: calibration.model_sha256,
            model: name.into(),
            model_sha: model_sha256.into(),
        });
    }
    let proto = quantize(proto, &calibration).map_err(|source| CalibrationError::Quantize {
        model: name.into(),
        source,
    })?;
    Ok(Int8Model {
        proto,
        calibration_sha256: Some(sha),
    })
}

fn node_error(node: &NodeProto, message: impl Into<String>) -> OnnxError {
    OnnxError::Node {
        node: node.name.clone(),
        op: node.op_type.clone(),
        message: message.into(),
    }
}

/// The value a convolution's input really is: `x` before the constant-zero Pads that produce it.
/// `producer`: the node writing each value; `konst`: a value's constant, if it is one.
pub fn before_zero_pads<'a>(
    mut x: &'a str,
    producer: &impl Fn(&str) -> Option<&'a NodeProto>,
    konst: &impl Fn(&str) -> Option<onnx::Const>,
) -> &'a str {
    while let Some(pad) = producer(x).filter(|p| is_zero_pad(p, konst)) {
        x = &pad.input[0];
    }
    x
}

/// A Pad that pads with zeros (mode `constant`, value absent or 0).
fn is_zero_pad(node: &NodeProto, konst: &impl Fn(&str) -> Option<onnx::Const>) -> bool {
    if node.op_type != "Pad" || node.input.is_empty() {
        return false;
    }
    let constant = attr_str(node, "mode").is_none_or(|m| m == "constant");
    let value = match node.input.get(2).filter(|n| !n.is_empty()) {
        Some(v) => konst(v).map(|c| c.f32s().iter().all(|&x| x == 0.0)),
        None => Some(onnx::attr_float(node, "value").unwrap_or(0.0) == 0.0),
    };
    constant && value == Some(true)
}

/// The activations an INT8 convolution's epilogue applies: clamps.
pub fn is_clamp(node: &NodeProto) -> bool {
    matches!(node.op_type.as_str(), "Relu" | "Clip")
}

/// The QDQ form of float model `model` with `calibration`'s ranges (module docs).
pub fn quantize(mut model: ModelProto, calibration: &Calibration) -> Result<ModelProto, OnnxError> {
    let graph = model
        .graph
        .take()
        .ok_or_else(|| OnnxError::Read("the model has no graph".into()))?;
    let mut consts: HashMap<String, TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.clone(), t.clone()))
        .collect();
    for n in graph.node.iter().filter(|n| n.op_type == "Constant") {
        if let Some(t) = n
            .attribute
            .iter()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_ref())
        {
            for o in &n.output {
                consts.insert(o.clone(), t.clone());
            }
        }
    }
    let producer: HashMap<&str, &NodeProto> = graph
        .node
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            consumers.entry(i.as_str()).or_default().push(n);
        }
    }
    let konst = |name: &str| consts.get(name).and_then(|t| onnx::tensor(t).ok());
    let producer_of = |name: &str| producer.get(name).copied();
    let float = &calibration.float_convolutions;
    if let Some(t) = float
        .iter()
        .find(|t| producer.get(t.as_str()).is_none_or(|p| p.op_type != "Conv"))
    {
        return Err(OnnxError::Read(format!(
            "the calibration table keeps `{t}` float, which no convolution writes: it was not \
             made for this model; run `adasd calibrate-int8` again"
        )));
    }
    let is_int8_conv =
        |n: &NodeProto| n.op_type == "Conv" && n.output.first().is_none_or(|y| !float.contains(y));
    let feeds_a_conv = feeds_a_convolution(&graph.node, &consumers, &is_int8_conv);

    // Each convolution's input value (by node index: names may repeat or be empty), and the
    // values to quantize.
    let mut conv_input: HashMap<usize, String> = HashMap::new();
    let mut quantized: BTreeSet<String> = BTreeSet::new();
    for (i, conv) in graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| is_int8_conv(n))
    {
        let (Some(x), Some(y)) = (conv.input.first(), conv.output.first()) else {
            return Err(node_error(conv, "a convolution without input or output"));
        };
        let x = before_zero_pads(x, &producer_of, &konst).to_string();
        // After the clamp that alone reads it (the epilogue applies it), and only where an
        // INT8 convolution reads it: a float reader takes the sums' real value. But an Add that
        // alone reads a float output would become the epilogue's residual, which the INT8
        // kernels lack: that output keeps its grid.
        let readers = |v: &str| consumers.get(v).map(Vec::as_slice);
        let y = match readers(y) {
            Some([act]) if is_clamp(act) => act.output.first().unwrap_or(y),
            _ => y,
        };
        let into_add = matches!(readers(y), Some([add]) if add.op_type == "Add");
        let y = (feeds_a_conv.contains(y.as_str()) || into_add).then_some(y);
        conv_input.insert(i, x.clone());
        quantized.insert(x);
        quantized.extend(y.cloned());
    }
    let mut params: HashMap<String, (f32, u8)> = HashMap::new();
    for t in &quantized {
        let range = calibration.ranges.get(t).ok_or_else(|| {
            OnnxError::Read(format!(
                "the calibration table has no range for tensor `{t}`: it was not made for this \
                 model; run `adasd calibrate-int8` again"
            ))
        })?;
        params.insert(t.clone(), Calibration::uint8(*range));
    }

    let dequantized = |t: &str| format!("{t}::dequantized");
    let mut initializer: Vec<TensorProto> = Vec::new();
    let mut nodes: Vec<NodeProto> = Vec::new();
    let quantize_pair = |t: &str, nodes: &mut Vec<NodeProto>, init: &mut Vec<TensorProto>| {
        let (scale, zero) = params[t];
        let (s, z, q) = (
            format!("{t}::scale"),
            format!("{t}::zero_point"),
            format!("{t}::quantized"),
        );
        init.push(f32_tensor(&s, &[], vec![scale]));
        init.push(TensorProto {
            name: z.clone(),
            data_type: UINT8,
            raw_data: vec![zero],
            ..TensorProto::default()
        });
        nodes.push(node(
            "QuantizeLinear",
            &q,
            vec![t.into(), s.clone(), z.clone()],
            &q,
            None,
        ));
        nodes.push(node(
            "DequantizeLinear",
            &dequantized(t),
            vec![q, s, z],
            &dequantized(t),
            None,
        ));
    };
    for input in &graph.input {
        if quantized.contains(&input.name) {
            quantize_pair(&input.name, &mut nodes, &mut initializer);
        }
    }
    // The INT8 plan finds each convolution's quantization by node name: every node gets one.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (index, n) in graph.node.iter().enumerate() {
        let mut n = n.clone();
        if n.name.is_empty() || !names.insert(n.name.clone()) {
            n.name = format!("{}::{}_{index}", n.name, n.op_type);
            names.insert(n.name.clone());
        }
        for i in n.input.iter_mut() {
            if quantized.contains(i.as_str()) {
                *i = dequantized(i);
            }
        }
        if let Some(x) = conv_input.get(&index) {
            let x_scale = params[x].0;
            quantize_weights(&mut n, x_scale, &consts, &mut nodes, &mut initializer)?;
        }
        let outputs = n.output.clone();
        nodes.push(n);
        for o in outputs.iter().filter(|o| quantized.contains(o.as_str())) {
            quantize_pair(o, &mut nodes, &mut initializer);
        }
    }
    // The float weights the int8 ones replaced are no longer read.
    let read: BTreeSet<&str> = nodes
        .iter()
        .flat_map(|n| n.input.iter().map(String::as_str))
        .collect();
    let mut kept: Vec<TensorProto> = graph
        .initializer
        .iter()
        .filter(|t| read.contains(t.name.as_str()))
        .cloned()
        .collect();
    kept.extend(initializer);
    // Older exporters also list initializers as graph inputs: not the ones dropped.
    let input = graph
        .input
        .iter()
        .filter(|v| read.contains(v.name.as_str()) || !consts.contains_key(&v.name))
        .cloned()
        .collect();
    model.graph = Some(pb::GraphProto {
        node: nodes,
        initializer: kept,
        input,
        ..graph
    });
    Ok(model)
}

/// The values of `nodes` (a graph in topological order) from which some INT8 convolution is
/// reached through ops that keep values on their grids (not through a float convolution).
fn feeds_a_convolution<'a>(
    nodes: &'a [NodeProto],
    consumers: &HashMap<&str, Vec<&NodeProto>>,
    is_int8_conv: &impl Fn(&NodeProto) -> bool,
) -> BTreeSet<&'a str> {
    let mut feeding: BTreeSet<&str> = BTreeSet::new();
    // Backwards: a value's readers come after it.
    for n in nodes.iter().rev() {
        let reached: Vec<&str> = n
            .output
            .iter()
            .filter(|o| {
                consumers.get(o.as_str()).is_some_and(|readers| {
                    readers.iter().any(|r| {
                        is_int8_conv(r)
                            || (r.op_type != "Conv"
                                && r.output.iter().any(|v| feeding.contains(v.as_str())))
                    })
                })
            })
            .map(String::as_str)
            .collect();
        feeding.extend(reached);
    }
    feeding
}

/// Turns `conv`'s float weights (and bias) into int8 (INT32) constants and the DequantizeLinear
/// nodes that read them, pushed before it.
fn quantize_weights(
    conv: &mut NodeProto,
    x_scale: f32,
    consts: &HashMap<String, TensorProto>,
    nodes: &mut Vec<NodeProto>,
    initializer: &mut Vec<TensorProto>,
) -> Result<(), OnnxError> {
    let float = |i: usize, what: &str| -> Result<onnx::Const, OnnxError> {
        let name = conv.input.get(i).filter(|n| !n.is_empty());
        let t = name.and_then(|n| consts.get(n)).ok_or_else(|| {
            node_error(
                conv,
                format!("the {what} is not a constant: INT8 needs constant weights"),
            )
        })?;
        let c = onnx::tensor(t)?;
        match c.data {
            onnx::ConstData::F32(_) => Ok(c),
            onnx::ConstData::I64(_) => Err(node_error(conv, format!("the {what} is not float"))),
        }
    };
    let w = float(1, "weight")?;
    let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
        Some(_) => Some(float(2, "bias")?.f32s()),
        None => None,
    };
    let k = w.shape.first().copied().unwrap_or(0);
    let values = w.f32s();
    if k == 0 || values.len() % k != 0 {
        return Err(node_error(conv, format!("weights of shape {:?}", w.shape)));
    }
    let per = values.len() / k;
    let mut scales = Vec::with_capacity(k);
    let mut q = Vec::with_capacity(values.len());
    for channel in values.chunks(per) {
        let amax = channel.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
        scales.push(scale);
        q.extend(
            channel
                .iter()
                .map(|v| (v / scale).round_ties_even().clamp(-127.0, 127.0) as i8 as u8),
        );
    }
    let name = &conv.input[1];
    let dims: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
    let (wq, ws, wz, wd) = (
        format!("{name}::quantized"),
        format!("{name}::scale"),
        format!("{name}::zero_point"),
        format!("{name}::dequantized"),
    );
    initializer.push(TensorProto {
        name: wq.clone(),
        dims,
        data_type: INT8,
        raw_data: q,
        ..TensorProto::default()
    });
    initializer.push(f32_tensor(&ws, &[k as i64], scales.clone()));
    initializer.push(TensorProto {
        name: wz.clone(),
        dims: vec![k as i64],
        data_type: INT8,
        raw_data: vec![0; k],
        ..TensorProto::default()
    });
    nodes.push(node(
        "DequantizeLinear",
        &wd,
        vec![wq, ws, wz],
        &wd,
        Some(0),
    ));
    conv.input[1] = wd;

    if let Some(b) = bias {
        if b.len() != k {
            return Err(node_error(
                conv,
                format!("{} biases for {k} channels", b.len()),
            ));
        }
        // The scale the INT8 kernels accumulate at: input scale × the channel's weight scale.
        let b_scales: Vec<f32> = scales.iter().map(|s| x_scale * s).collect();
        let integers: Vec<i32> = b
            .iter()
            .zip(&b_scales)
            .map(|(v, s)| {
                (f64::from(*v) / f64::from(*s))
                    .round()
                    .clamp(i32::MIN as f64, i32::MAX as f64) as i32
            })
            .collect();
        let name = &conv.input[2];
        let (bq, bs, bd) = (
            format!("{name}::quantized"),
            format!("{name}::scale"),
            format!("{name}::dequantized"),
        );
        initializer.push(TensorProto {
            name: bq.clone(),
            dims: vec![k as i64],
            data_type: INT32,
            int32_data: integers,
            ..TensorProto::default()
        });
        initializer.push(f32_tensor(&bs, &[k as i64], b_scales));
        nodes.push(node("DequantizeLinear", &bd, vec![bq, bs], &bd, Some(0)));
        conv.input[2] = bd;
    }
    Ok(())
}

/// ONNX TensorProto data types.
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT8: i32 = 3;
const INT32: i32 = 6;

fn f32_tensor(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: FLOAT,
        float_data: values,
        ..TensorProto::default()
    }
}

fn node(op: &str, name: &str, input: Vec<String>, output: &str, axis: Option<i64>) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input,
        output: vec![output.into()],
        attribute: axis
            .map(|a| pb::AttributeProto {
                name: "axis".into(),
                r#type: AttributeType::Int as i32,
                i: a,
                ..pb::AttributeProto::default()
            })
            .into_iter()
            .collect(),
        ..NodeProto::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::int8::Output;
    use super::super::plan::Step;
    use super::super::{compile, compile_int8, qdq, reference, Target};
    use super::*;
    use adas_plugins::Manifest;

    fn manifest(name: &str) -> Manifest {
        Manifest::load(&Path::new(env!("ADAS_REPO_ROOT")).join("models").join(name)).unwrap()
    }

    fn quantized(m: &Manifest) -> Int8Model {
        let proto = onnx::read(&m.onnx).unwrap();
        let sha = m.sha256.clone().unwrap();
        int8_model(&m.name, proto, &sha, m.int8_calibration.as_deref()).unwrap()
    }

    #[test]
    fn a_range_becomes_uint8_with_zero_exactly_on_the_grid() {
        assert_eq!(Calibration::uint8([0.0, 6.0]), (6.0 / 255.0, 0));
        assert_eq!(Calibration::uint8([-2.0, 2.0]), (4.0 / 255.0, 128));
        let (scale, zero) = Calibration::uint8([-1.0, 3.0]);
        assert_eq!((scale, zero), (4.0 / 255.0, 64));
        // A range that misses 0 is widened to it; an empty one still has a scale.
        assert_eq!(Calibration::uint8([1.0, 2.0]).1, 0);
        let (scale, zero) = Calibration::uint8([0.0, 0.0]);
        assert!(scale > 0.0 && zero == 0);
    }

    /// The shipped tables quantize every convolution of NanoDet and SSDLite but those they keep
    /// float, and the INT8 plan runs those in float, the rest on the INT8 kernels.
    #[test]
    fn a_calibrated_float_model_runs_its_convolutions_in_int8_but_those_kept_float() {
        for (name, input, heads) in [
            ("nanodet_m_coco_416.toml", [1, 3, 416, 416], 3),
            (
                "ssdlite_mobilenet_v2_pedestrian_300.toml",
                [1, 300, 300, 3],
                12,
            ),
        ] {
            let m = manifest(name);
            let (table, _) = Calibration::read(m.int8_calibration.as_deref().unwrap()).unwrap();
            let int8 = quantized(&m);
            assert!(int8.calibration_sha256.is_some());
            let convs = qdq::conv_quantization(&int8.proto).unwrap();
            let float = onnx::read(&m.onnx).unwrap();
            let n_convs = float
                .graph
                .as_ref()
                .unwrap()
                .node
                .iter()
                .filter(|n| n.op_type == "Conv")
                .count();
            let kept = table.float_convolutions.len();
            assert_eq!(convs.len(), n_convs - kept, "{name}");
            let graph = onnx::from_model(int8.proto).unwrap();
            let nchw = m.input.layout == adas_plugins::manifest::Layout::Nchw;
            let plan = compile_int8(&graph, &input, nchw, &m.output_names(), convs).unwrap();
            let count = |f: &dyn Fn(&Step) -> bool| plan.steps.iter().filter(|s| f(s)).count();
            assert_eq!(count(&|s| matches!(s, Step::Conv(_))), kept, "{name}");
            assert_eq!(
                count(&|s| matches!(s, Step::QConv(_))),
                n_convs - kept,
                "{name}"
            );
            // Float outputs: the detection heads (NanoDet: one per level; SSDLite: boxes and
            // classes of six levels), and the inputs of the layers kept float.
            let feeds_float = |b: usize| {
                plan.steps
                    .iter()
                    .any(|s| matches!(s, Step::Conv(c) if c.x == b))
            };
            let (mut to_heads, mut to_float) = (0, 0);
            for s in &plan.steps {
                if let Step::QConv(q) = s {
                    if q.spec.output == Output::Float {
                        if feeds_float(q.y) {
                            to_float += 1;
                        } else {
                            to_heads += 1;
                        }
                    }
                }
            }
            println!("{name}: {to_heads} heads, {to_float} inputs of float layers in FP16");
            if name.starts_with("nanodet") {
                // The Concats of its CSP stages join quantized values (one through a LeakyRelu):
                // each input is requantized onto the Concat's grid into its slice, in int8, with
                // no copy and no QuantizeLinear after (the stem's Concat of float layers keeps
                // its copies, as the heads' splits).
                let slices = count(&|s| {
                    matches!(
                        s,
                        Step::Requantize {
                            into: Some(_),
                            int8: true,
                            ..
                        }
                    )
                });
                assert_eq!(slices, 20, "{}", plan.summary());
                assert_eq!(count(&|s| matches!(s, Step::Copy { .. })), 10);
            }
            assert_eq!(to_heads, heads, "{name}");
            assert!(to_float <= kept, "{name}");
        }
    }

    /// Exporters may leave node names empty; the INT8 plan still finds every convolution's.
    #[test]
    fn nameless_convolutions_keep_their_quantization() {
        let m = manifest("ssdlite_mobilenet_v2_pedestrian_300.toml");
        let mut proto = onnx::read(&m.onnx).unwrap();
        for n in &mut proto.graph.as_mut().unwrap().node {
            n.name.clear();
        }
        let sha = m.sha256.clone().unwrap();
        let int8 = int8_model(&m.name, proto, &sha, m.int8_calibration.as_deref()).unwrap();
        let convs = qdq::conv_quantization(&int8.proto).unwrap();
        let graph = onnx::from_model(int8.proto).unwrap();
        let plan = compile_int8(&graph, &m.input.shape, false, &m.output_names(), convs).unwrap();
        let qconvs = plan
            .steps
            .iter()
            .filter(|s| matches!(s, Step::QConv(_)))
            .count();
        assert_eq!(qconvs, 88);
    }

    /// INT8 beside FP32 on a real photo, both run by the CPU reference of the plan: the
    /// calibrated network's scores stay within 0.05 of the float network's where they matter.
    #[test]
    fn the_calibrated_int8_plan_keeps_the_float_models_scores() {
        let m = manifest("ssdlite_mobilenet_v2_pedestrian_300.toml");
        let img = image::open(Path::new(env!("ADAS_REPO_ROOT")).join("samples/images/person.jpg"))
            .unwrap()
            .to_rgb8();
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (input, _) =
            adas_plugins::preprocess::preprocess(img.as_raw(), w, h, &m.input).unwrap();
        let shape = m.input.shape;
        let nchw = m.input.layout == adas_plugins::manifest::Layout::Nchw;
        let float_graph = onnx::load(&m.onnx).unwrap();
        let float_plan = compile(
            &float_graph,
            &shape,
            nchw,
            &m.output_names(),
            Target {
                tensor_cores: false,
            },
        )
        .unwrap();
        let int8 = quantized(&m);
        let convs = qdq::conv_quantization(&int8.proto).unwrap();
        let graph = onnx::from_model(int8.proto).unwrap();
        let int8_plan = compile_int8(&graph, &shape, nchw, &m.output_names(), convs).unwrap();
        let want = reference::run(&float_plan, &input.data);
        let got = reference::run(&int8_plan, &input.data);
        // The class logits: the output with one value per anchor and class.
        let scores = m
            .output_names()
            .iter()
            .position(|n| n.contains("score") || n.contains("class"))
            .unwrap_or(1);
        let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
        let (mut confident, mut worst) = (0, 0f32);
        for (a, b) in want[scores].iter().zip(&got[scores]) {
            let (a, b) = (sigmoid(*a), sigmoid(*b));
            if a.max(b) >= 0.3 {
                confident += 1;
                worst = worst.max((a - b).abs());
            }
        }
        println!("SSDLite INT8 (calibrated) vs FP32, person.jpg: {confident} scores ≥ 0.3, worst |Δ| {worst:.4}");
        assert!(confident > 0, "no confident anchor on the photo");
        assert!(
            worst <= 0.02,
            "{confident} confident scores, worst |Δ| {worst}"
        );
    }

    #[test]
    fn a_missing_stale_or_foreign_table_says_what_to_run() {
        let m = manifest("ssdlite_mobilenet_v2_pedestrian_300.toml");
        let sha = m.sha256.clone().unwrap();
        let proto = || onnx::read(&m.onnx).unwrap();
        let e = int8_model(&m.name, proto(), &sha, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("adasd calibrate-int8") && e.contains("int8_calibration"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let table = m.int8_calibration.clone().unwrap();
        // The shipped table, edited, written to `name`.
        let edited = |name: &str, edit: &dyn Fn(&mut Calibration)| {
            let (mut t, _) = Calibration::read(&table).unwrap();
            edit(&mut t);
            let path = dir.path().join(name);
            std::fs::write(&path, serde_json::to_string(&t).unwrap()).unwrap();
            path
        };
        let stale = edited("stale.engine.json", &|t| t.model_sha256 = "00".repeat(32));
        let e = int8_model(&m.name, proto(), &sha, Some(&stale))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stale") && e.contains("adasd calibrate-int8"),
            "{e}"
        );

        let partial = edited("partial.engine.json", &|t| {
            t.ranges.retain(|name, _| name == &m.input.name)
        });
        let e = int8_model(&m.name, proto(), &sha, Some(&partial))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no range for tensor") && e.contains("calibrate-int8"),
            "{e}"
        );

        std::fs::write(&partial, "{}").unwrap();
        let e = int8_model(&m.name, proto(), &sha, Some(&partial))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an INT8 calibration table"), "{e}");
        let e = int8_model(&m.name, proto(), &sha, Some(&dir.path().join("none.json")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("adasd calibrate-int8"), "{e}");

        let coco = manifest("ssd_mobilenet_v2_coco_300_int8.toml");
        let coco_proto = onnx::read(&coco.onnx).unwrap();
        let e = int8_model(&coco.name, coco_proto, "", Some(&table))
            .unwrap_err()
            .to_string();
        assert!(e.contains("already quantized"), "{e}");
    }
}
