//! The quantization of a QDQ ONNX model — QuantizeLinear/DequantizeLinear around every layer, as
//! tf2onnx writes a uint8 TensorFlow Lite model — as the INT8 kernels take it: per convolution
//! the input's and output's scale and zero point, int8 weights with one scale per output channel,
//! the INT32 bias and the requantization ([`ConvQuant`]).
//!
//! uint8 activations become int8 by subtracting 128 from values and zero points: `v − zero` is
//! unchanged, so the arithmetic is TensorFlow Lite's exactly. Weights too, per output channel:
//! where a channel's `w − zero` fits [−128, 127] (the COCO SSD: 21 815 of 21 919 channels) it
//! becomes the channel's symmetric int8 weights; elsewhere the channel keeps a zero point, both
//! shifted into int8 (`w − 128`, `zero − 128`), and the kernels add the cross term
//! `−w_zero · Σ x` per output pixel. Nothing is rounded: every layer computes TensorFlow Lite's
//! integers. (Requantizing those channels to symmetric int8 instead was measured: up to 34 output
//! steps off on a late layer.)

use super::calibrated::{before_zero_pads, is_clamp};
use super::int8::{QWeights, Requant};
use super::onnx::{self, Const, OnnxError};
use std::collections::HashMap;
use tract_onnx::pb::{ModelProto, NodeProto};

/// A tensor's quantization in the int8 domain: real = (q − zero) · scale.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Affine {
    pub scale: f32,
    pub zero: i8,
}

/// One convolution of a QDQ model, quantized for the INT8 kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvQuant {
    /// The ONNX Conv node.
    pub node: String,
    pub x: Affine,
    /// The output's quantization; None where the model leaves the convolution's own output
    /// unquantized (nothing reads it but float ops): the kernels then write it as
    /// [`super::int8::Output::Float`].
    pub y: Option<Affine>,
    /// KRSC int8 weights and zero points, INT32 bias (scale `x.scale · w_scales[k]`),
    /// requantization per channel.
    pub weights: QWeights,
    pub w_scales: Vec<f32>,
    /// Output channels that keep a weight zero point (their `w − zero` does not fit int8).
    pub with_zero_point: usize,
}

fn node_error(node: &NodeProto, message: impl Into<String>) -> OnnxError {
    OnnxError::Node {
        node: node.name.clone(),
        op: node.op_type.clone(),
        message: message.into(),
    }
}

/// The graph's constants and who produces and consumes each value.
struct Graph {
    consts: HashMap<String, Const>,
    producer: HashMap<String, NodeProto>,
    consumers: HashMap<String, Vec<NodeProto>>,
    nodes: Vec<NodeProto>,
}

impl Graph {
    fn new(model: &ModelProto) -> Result<Graph, OnnxError> {
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| OnnxError::Read("the model has no graph".into()))?;
        let mut consts = HashMap::new();
        for t in &graph.initializer {
            consts.insert(t.name.clone(), onnx::tensor(t)?);
        }
        let mut g = Graph {
            consts,
            producer: HashMap::new(),
            consumers: HashMap::new(),
            nodes: Vec::new(),
        };
        for node in graph.node.iter().cloned() {
            if node.op_type == "Constant" {
                if let Some(t) = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref())
                {
                    let c = onnx::tensor(t)?;
                    for o in &node.output {
                        g.consts.insert(o.clone(), c.clone());
                    }
                }
                continue;
            }
            for o in &node.output {
                g.producer.insert(o.clone(), node.clone());
            }
            for i in &node.input {
                g.consumers.entry(i.clone()).or_default().push(node.clone());
            }
            g.nodes.push(node);
        }
        Ok(g)
    }

    fn constant(&self, node: &NodeProto, input: usize) -> Result<&Const, OnnxError> {
        node.input
            .get(input)
            .and_then(|n| self.consts.get(n))
            .ok_or_else(|| node_error(node, format!("input {input} is not a constant")))
    }

    /// (scales, zero points) of a QuantizeLinear/DequantizeLinear node.
    fn params(&self, node: &NodeProto) -> Result<(Vec<f32>, Vec<i64>), OnnxError> {
        let scales = self.constant(node, 1)?.f32s();
        let zeros = match node.input.get(2) {
            Some(name) if !name.is_empty() => self.constant(node, 2)?.i64s(),
            _ => vec![0; scales.len()],
        };
        if scales.len() != zeros.len() || scales.is_empty() {
            return Err(node_error(
                node,
                format!("{} scales and {} zero points", scales.len(), zeros.len()),
            ));
        }
        Ok((scales, zeros))
    }

    /// The uint8 per-tensor quantization a value is read with (its DequantizeLinear), or written
    /// with (the QuantizeLinear that alone consumes it), in the int8 domain.
    fn activation(&self, conv: &NodeProto, q: &NodeProto) -> Result<Affine, OnnxError> {
        let (scales, zeros) = self.params(q)?;
        let zero = zeros[0];
        if scales.len() != 1 || !(0..=255).contains(&zero) || scales[0] <= 0.0 {
            return Err(node_error(
                conv,
                format!(
                    "activation quantization ({}): INT8 takes uint8 per-tensor quantization \
                     (one scale > 0, a zero point in 0…255), not {} scales, zero point {zero}",
                    q.name,
                    scales.len()
                ),
            ));
        }
        Ok(Affine {
            scale: scales[0],
            zero: (zero - 128) as i8,
        })
    }

    /// A convolution whose weights are a float constant, not a DequantizeLinear's output.
    fn has_float_weights(&self, conv: &NodeProto) -> bool {
        conv.input
            .get(1)
            .and_then(|w| self.producer.get(w.as_str()))
            .is_none_or(|p| p.op_type != "DequantizeLinear")
    }

    fn conv(&self, conv: &NodeProto) -> Result<ConvQuant, OnnxError> {
        let producer = |name: &str| self.producer.get(name);
        let konst = |name: &str| self.consts.get(name).cloned();
        let dequantized = |input: usize, what: &str| -> Result<&NodeProto, OnnxError> {
            conv.input
                .get(input)
                // A zero Pad before the convolution is its padding (the plan folds it).
                .map(|n| before_zero_pads(n, &producer, &konst))
                .and_then(|n| self.producer.get(n))
                .filter(|p| p.op_type == "DequantizeLinear")
                .ok_or_else(|| {
                    node_error(
                        conv,
                        format!(
                            "the {what} is not dequantized from a quantized tensor: not a QDQ \
                             model (INT8 needs the model's quantization, or a calibration)"
                        ),
                    )
                })
        };
        let x = self.activation(conv, dequantized(0, "input")?)?;
        // The output's quantization, after the clamp (Relu, Clip) that alone reads it: the
        // epilogue applies it. An output that no QuantizeLinear reads, before or after that
        // clamp, stays float (a detection head's, the input of a float layer; as TensorRT runs
        // it: INT8 in, float out).
        let readers = |o: Option<&String>| o.and_then(|o| self.consumers.get(o)).map(Vec::as_slice);
        let mut output = conv.output.first();
        let raw = readers(output).unwrap_or_default();
        if let [act] = raw {
            if is_clamp(act) {
                output = act.output.first();
            }
        }
        let after = readers(output).unwrap_or_default();
        let y = match after {
            [q] if q.op_type == "QuantizeLinear" => Some(self.activation(conv, q)?),
            _ if raw
                .iter()
                .chain(after)
                .all(|r| r.op_type != "QuantizeLinear") =>
            {
                None
            }
            _ => {
                return Err(node_error(
                    conv,
                    "the output is not quantized by one QuantizeLinear: INT8 needs every \
                     convolution's output quantization but a float one's",
                ))
            }
        };

        let dq_w = dequantized(1, "weight")?;
        let w = self.constant(dq_w, 0)?;
        let (ws, wz) = self.params(dq_w)?;
        let [k, cg, r, s] = w.shape[..] else {
            return Err(node_error(conv, format!("weights of shape {:?}", w.shape)));
        };
        if ws.len() != 1 && ws.len() != k {
            return Err(node_error(
                conv,
                format!("{} weight scales for {k} output channels", ws.len()),
            ));
        }
        let per = |v: &[f32], i: usize| if v.len() == 1 { v[0] } else { v[i] };
        let values = w.i64s();
        let len = cg * r * s;
        let mut weights = vec![0i8; k * len];
        let mut w_zero = vec![0i8; k];
        let (mut w_scales, mut requant, mut scale) = (
            Vec::with_capacity(k),
            Vec::with_capacity(k),
            Vec::with_capacity(k),
        );
        let mut with_zero_point = 0;
        for kk in 0..k {
            let zero = if wz.len() == 1 { wz[0] } else { wz[kk] };
            let step = per(&ws, kk);
            // The channel's OIHW values.
            let channel = &values[kk * len..(kk + 1) * len];
            let (lo, hi) = channel
                .iter()
                .fold((i64::MAX, i64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            // Symmetric where w − zero fits int8; else both shifted into int8 (uint8 − 128).
            let (offset, kept_zero) = if lo - zero >= -128 && hi - zero <= 127 {
                (zero, 0)
            } else {
                let offset = if hi.max(zero) > 127 { 128 } else { 0 };
                (offset, zero - offset)
            };
            if !(-128..=127).contains(&kept_zero) || lo - offset < -128 || hi - offset > 127 {
                return Err(node_error(
                    conv,
                    format!(
                        "output channel {kk}: weights {lo}…{hi} with zero point {zero} are not \
                         8-bit quantized"
                    ),
                ));
            }
            with_zero_point += usize::from(kept_zero != 0);
            w_zero[kk] = kept_zero as i8;
            // OIHW → KRSC.
            for rr in 0..r {
                for ss in 0..s {
                    for c in 0..cg {
                        let v = channel[(c * r + rr) * s + ss] - offset;
                        weights[kk * len + (rr * s + ss) * cg + c] = v as i8;
                    }
                }
            }
            w_scales.push(step);
            // TensorFlow Lite: the input × filter scale in float, the division in double.
            let sum_scale = x.scale * step;
            scale.push(sum_scale);
            requant.push(Requant::new(
                y.map_or(0.0, |y| f64::from(sum_scale) / f64::from(y.scale)),
            ));
        }

        let bias = match conv.input.get(2).filter(|n| !n.is_empty()) {
            None => vec![0; k],
            Some(_) => {
                let dq_b = dequantized(2, "bias")?;
                let b = self.constant(dq_b, 0)?.i64s();
                let (bs, _) = self.params(dq_b)?;
                if b.len() != k {
                    return Err(node_error(
                        conv,
                        format!("{} biases for {k} channels", b.len()),
                    ));
                }
                (0..k)
                    .map(|kk| {
                        let (given, want) = (per(&bs, kk), x.scale * w_scales[kk]);
                        // The model's own integers where its bias scale is the product (TFLite's
                        // rule); else rescaled to it.
                        if (given - want).abs() <= want * 1e-6 {
                            b[kk] as i32
                        } else {
                            (b[kk] as f64 * f64::from(given) / f64::from(want)).round() as i32
                        }
                    })
                    .collect()
            }
        };
        Ok(ConvQuant {
            node: conv.name.clone(),
            x,
            y,
            weights: QWeights {
                weights,
                w_zero,
                bias,
                requant,
                scale,
            },
            w_scales,
            with_zero_point,
        })
    }
}

/// Every INT8 convolution of QDQ model `model`, in graph order, quantized for the INT8 kernels:
/// each whose weights are dequantized. One with float weights stays a float convolution, as
/// TensorRT runs it (a layer kept in FP16 for accuracy); a model with no quantized convolution
/// (a float model) is an error that says what INT8 needs.
pub fn conv_quantization(model: &ModelProto) -> Result<Vec<ConvQuant>, OnnxError> {
    let g = Graph::new(model)?;
    let convs: Vec<ConvQuant> = g
        .nodes
        .iter()
        .filter(|n| n.op_type == "Conv" && !g.has_float_weights(n))
        .map(|n| g.conv(n))
        .collect::<Result<_, _>>()?;
    if convs.is_empty() {
        return Err(OnnxError::Read(
            "no convolution has quantized weights: not a QDQ model (INT8 needs the model's \
             quantization, or a calibration)"
                .into(),
        ));
    }
    Ok(convs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::plan::{Plan, Step};
    use super::super::{compile, Target};
    use super::*;
    use adas_plugins::Manifest;
    use std::path::Path;

    fn model(name: &str) -> std::path::PathBuf {
        Path::new(env!("ADAS_REPO_ROOT")).join("models").join(name)
    }

    /// The COCO SSD's float form, compiled as the FP32 engine runs it.
    fn float_plan() -> Plan {
        let m = Manifest::load(&model("ssd_mobilenet_v2_coco_300.toml")).unwrap();
        let graph = onnx::load(&m.onnx).unwrap();
        let target = Target {
            tensor_cores: false,
        };
        compile(&graph, &m.input.shape, false, &m.output_names(), target).unwrap()
    }

    /// The COCO SSD's QDQ form against its float form (whose weights are the same uint8 weights,
    /// dequantized): every convolution found, its weights in the engine's KRSC order equal to the
    /// float form's, TensorFlow Lite's zero points.
    #[test]
    fn the_coco_ssds_quantization_matches_its_float_form() {
        let convs =
            conv_quantization(&onnx::read(&model("ssd_mobilenet_v2_coco_300_int8.onnx")).unwrap())
                .unwrap();
        let plan = float_plan();
        let float: HashMap<&str, _> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Conv(c) => Some((c.node.as_str(), c)),
                _ => None,
            })
            .collect();
        assert_eq!(convs.len(), 72);
        assert_eq!(float.len(), 72);
        let (mut channels, mut with_zero_point, mut layers_with) = (0, 0, 0);
        for q in &convs {
            let f = float[q.node.as_str()];
            let w = &plan.weights[f.weight];
            assert_eq!(w.len(), q.weights.weights.len(), "{}", q.node);
            let len = w.len() / f.k;
            for (i, (&fw, &qw)) in w.iter().zip(&q.weights.weights).enumerate() {
                let (step, zero) = (q.w_scales[i / len], q.weights.w_zero[i / len]);
                // The float form folds nothing more into the weights: the same values.
                let real = (f32::from(qw) - f32::from(zero)) * step;
                assert!(
                    (fw - real).abs() <= fw.abs() * 1e-6,
                    "{} weight {i}: {fw} vs ({qw} − {zero})·{step}",
                    q.node
                );
            }
            // Real multipliers below 1: the requantization only shifts right.
            assert!(q.weights.requant.iter().all(|r| r.shift <= 0), "{}", q.node);
            channels += f.k;
            with_zero_point += q.with_zero_point;
            layers_with += usize::from(q.weights.has_zero_point());
        }
        eprintln!(
            "COCO SSD: {with_zero_point} of {channels} output channels keep a weight zero point, \
             in {layers_with} of 72 layers"
        );
        assert_eq!((with_zero_point, channels, layers_with), (104, 21_919, 68));
        // The first layer reads the image (uint8 zero point 128); the depthwise layers read
        // ReLU6 outputs (zero point 0 → −128).
        assert_eq!(convs[0].x.zero, 0);
        assert_eq!(convs[1].x.zero, -128);
    }

    /// Each of the COCO SSD's quantized layers (the import plus the integer arithmetic) computes
    /// its float layer (the float form's weights and bias, its ReLU6) to within rounding: half an
    /// output step and the second rounding of the fixed-point requantization, per output value. Random inputs on a 7×7 image (the weights do not depend on
    /// the image size).
    #[test]
    fn every_quantized_layer_computes_its_float_layer() {
        use super::super::int8::{self, activation_range, Output, QConv, QOutput};
        let convs =
            conv_quantization(&onnx::read(&model("ssd_mobilenet_v2_coco_300_int8.onnx")).unwrap())
                .unwrap();
        let plan = float_plan();
        let mut state = 0x9e37_79b9u32;
        let (mut worst, mut values) = (0.0f32, 0usize);
        for q in &convs {
            let Some(f) = plan.steps.iter().find_map(|s| match s {
                Step::Conv(c) if c.node == q.node => Some(c),
                _ => None,
            }) else {
                panic!("{}: not in the float plan", q.node);
            };
            let (h, w) = (7, 7);
            let out =
                |len: usize, k: usize, st: usize| (len + 2 * f.pad[0]).saturating_sub(k) / st + 1;
            let (oh, ow) = (out(h, f.r, f.stride[0]), out(w, f.s, f.stride[1]));
            // The COCO SSD quantizes every convolution's output.
            let yq = q.y.unwrap();
            let spec = QConv {
                n: 1,
                h,
                w,
                c: f.c,
                k: f.k,
                r: f.r,
                s: f.s,
                pad: f.pad,
                stride: f.stride,
                dilation: f.dilation,
                groups: f.groups,
                oh,
                ow,
                x_pitch: f.c,
                y_pitch: f.k,
                x_zero: q.x.zero,
                y_zero: yq.zero,
                y_scale: yq.scale,
                clamp: activation_range(f.act, yq.scale, yq.zero).unwrap(),
                output: Output::Int8,
                act: adas_plugins::gpu::Act::None,
            };
            let x: Vec<i8> = (0..spec.x_len())
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    state as i8
                })
                .collect();
            let QOutput::Int8(y) = int8::conv(&spec, &q.weights, &x) else {
                panic!("int8 output asked for");
            };
            let (fw, fb) = (&plan.weights[f.weight], f.bias.map(|b| &plan.weights[b]));
            let len = spec.q_len();
            let cg = f.c / f.groups;
            let real_x = |i: usize| (f32::from(x[i]) - f32::from(q.x.zero)) * q.x.scale;
            let lo = (f32::from(spec.clamp.0) - f32::from(yq.zero)) * yq.scale;
            let hi = (f32::from(spec.clamp.1) - f32::from(yq.zero)) * yq.scale;
            for p in 0..oh * ow {
                let (oy, ox) = (p / ow, p % ow);
                for k in 0..f.k {
                    let mut sum = fb.map_or(0.0, |b| b[k]);
                    for r in 0..f.r {
                        let iy = (oy * f.stride[0] + r) as isize - f.pad[0] as isize;
                        for t in 0..f.s {
                            let ix = (ox * f.stride[1] + t) as isize - f.pad[1] as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            for ci in 0..cg {
                                let xi = (iy as usize * w + ix as usize) * f.c
                                    + k / (f.k / f.groups) * cg
                                    + ci;
                                let wi = k * len + (r * f.s + t) * cg + ci;
                                sum += real_x(xi) * fw[wi];
                            }
                        }
                    }
                    let want = sum.clamp(lo, hi);
                    let got = (f32::from(y[p * f.k + k]) - f32::from(yq.zero)) * yq.scale;
                    // In output steps: the requantization rounds twice (to the Q31 product,
                    // then by 2^shift: ½ + ½·2^shift), 1e-3 for float rounding of the sums.
                    let err = (got - want).abs() / yq.scale;
                    let twice = 0.5 * 2f32.powi(q.weights.requant[k].shift);
                    let bound = 0.5 + twice + 1e-3;
                    assert!(
                        err <= bound,
                        "{} pixel {p} channel {k}: {err} > {bound}",
                        q.node
                    );
                    worst = worst.max(err);
                    values += 1;
                }
            }
        }
        eprintln!(
            "COCO SSD layers vs their float form: at most {worst:.3} output steps off over \
             {values} values"
        );
    }

    #[test]
    fn a_float_model_is_refused_with_what_to_do() {
        let e = conv_quantization(&onnx::read(&model("ssd_mobilenet_v2_coco_300.onnx")).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a QDQ model") && e.contains("calibration"),
            "{e}"
        );
    }
}
