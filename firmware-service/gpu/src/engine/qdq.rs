//! The quantization of a QDQ ONNX model — QuantizeLinear/DequantizeLinear around every layer, as
//! tf2onnx writes a uint8 TensorFlow Lite model — as the INT8 kernels take it: per convolution
//! the input's and output's scale and zero point, int8 weights with one scale per output channel,
//! the INT32 bias and the requantization ([`ConvQuant`]).
//!
//! uint8 activations become int8 by subtracting 128 from values and zero points: `v − zero` is
//! unchanged, so the arithmetic is TensorFlow Lite's exactly. uint8 weights with a per-tensor zero
//! point become int8 per output channel, symmetric: `w − zero` where the channel's values fit
//! [−128, 127] (exact; the COCO SSD: 21 815 of 21 919 channels), else requantized to
//! `round((w − zero) · 127 / max|w − zero|)` with the scale grown by `max|w − zero| / 127` (at most
//! half a new step, ≈ 1.0 original step, per weight; the bias is rescaled with it). The other way,
//! keeping the zero point and adding its cross term `w_zero · Σ x` per output pixel, would be
//! exact but needs a second reduction over every input window in the kernel.

use super::int8::{QWeights, Requant};
use super::onnx::{self, Const, OnnxError};
use std::collections::HashMap;
use std::path::Path;
use tract_onnx::pb::NodeProto;
use tract_onnx::prelude::Framework;

/// A tensor's quantization in the int8 domain: real = (q − zero) · scale.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    pub y: Affine,
    /// KRSC int8 weights, INT32 bias (scale `x.scale · w_scales[k]`), requantization per channel.
    pub weights: QWeights,
    pub w_scales: Vec<f32>,
    /// Output channels whose weights did not fit int8 after their zero point and were requantized.
    pub requantized: usize,
    /// Largest change of a weight by that requantization, in the model's weight steps.
    pub max_weight_error: f32,
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
    fn load(path: &Path) -> Result<Graph, OnnxError> {
        let model = tract_onnx::onnx()
            .proto_model_for_path(path)
            .map_err(|e| OnnxError::Read(format!("{e:#}")))?;
        let graph = model
            .graph
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
        for node in graph.node {
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

    fn conv(&self, conv: &NodeProto) -> Result<ConvQuant, OnnxError> {
        let dequantized = |input: usize, what: &str| -> Result<&NodeProto, OnnxError> {
            conv.input
                .get(input)
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
        let quantize = match conv.output.first().and_then(|o| self.consumers.get(o)) {
            Some(c) if c.len() == 1 && c[0].op_type == "QuantizeLinear" => &c[0],
            _ => {
                return Err(node_error(
                    conv,
                    "the output is not quantized by one QuantizeLinear: INT8 needs every \
                     convolution's output quantization",
                ))
            }
        };
        let y = self.activation(conv, quantize)?;

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
        let (mut w_scales, mut requant) = (Vec::with_capacity(k), Vec::with_capacity(k));
        let (mut requantized, mut max_weight_error) = (0, 0.0f32);
        for kk in 0..k {
            let zero = if wz.len() == 1 { wz[0] } else { wz[kk] };
            let step = per(&ws, kk);
            // OIHW → KRSC, the zero point taken off.
            let centred =
                |rr: usize, ss: usize, c: usize| values[((kk * cg + c) * r + rr) * s + ss] - zero;
            let (mut lo, mut hi) = (0i64, 0i64);
            for i in 0..len {
                let v = centred(i / s % r, i % s, i / (r * s));
                (lo, hi) = (lo.min(v), hi.max(v));
            }
            let fits = lo >= -128 && hi <= 127;
            let amax = (-lo).max(hi);
            let factor = if fits { 1.0 } else { amax as f32 / 127.0 };
            let scale = step * factor;
            for rr in 0..r {
                for ss in 0..s {
                    for c in 0..cg {
                        let v = centred(rr, ss, c);
                        let q = if fits {
                            v
                        } else {
                            (v as f32 / factor).round() as i64
                        };
                        max_weight_error =
                            max_weight_error.max((q as f32 * factor - v as f32).abs());
                        weights[kk * len + (rr * s + ss) * cg + c] = q.clamp(-128, 127) as i8;
                    }
                }
            }
            requantized += usize::from(!fits);
            w_scales.push(scale);
            // TensorFlow Lite: the input × filter scale in float, the division in double.
            requant.push(Requant::new(
                f64::from(x.scale * scale) / f64::from(y.scale),
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
                bias,
                requant,
            },
            w_scales,
            requantized,
            max_weight_error,
        })
    }
}

/// Every convolution of the QDQ model at `path`, in graph order, quantized for the INT8 kernels.
/// A model without the quantization of some convolution (a float model) is an error naming it.
pub fn conv_quantization(path: &Path) -> Result<Vec<ConvQuant>, OnnxError> {
    let g = Graph::load(path)?;
    g.nodes
        .iter()
        .filter(|n| n.op_type == "Conv")
        .map(|n| g.conv(n))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::plan::Step;
    use super::super::{compile, Target};
    use super::*;
    use adas_plugins::Manifest;

    fn model(name: &str) -> std::path::PathBuf {
        Path::new(env!("ADAS_REPO_ROOT")).join("models").join(name)
    }

    /// The COCO SSD's QDQ form against its float form (whose weights are the same uint8 weights,
    /// dequantized): every convolution found, weights in the engine's KRSC order within half a
    /// step (the requantized channels: within their bound), TensorFlow Lite's zero points.
    #[test]
    fn the_coco_ssds_quantization_matches_its_float_form() {
        let convs = conv_quantization(&model("ssd_mobilenet_v2_coco_300_int8.onnx")).unwrap();
        let m = Manifest::load(&model("ssd_mobilenet_v2_coco_300.toml")).unwrap();
        let graph = onnx::load(&m.onnx).unwrap();
        let target = Target {
            tensor_cores: false,
        };
        let plan = compile(&graph, &m.input.shape, false, &m.output_names(), target).unwrap();
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
        let (mut channels, mut requantized, mut worst) = (0, 0, 0.0f32);
        for q in &convs {
            let f = float[q.node.as_str()];
            let w = &plan.weights[f.weight];
            assert_eq!(w.len(), q.weights.weights.len(), "{}", q.node);
            let len = w.len() / f.k;
            for (i, (&fw, &qw)) in w.iter().zip(&q.weights.weights).enumerate() {
                let step = q.w_scales[i / len];
                // The float form folds nothing more into the weights: the same values.
                let d = (fw - f32::from(qw) * step).abs();
                assert!(
                    d <= step * 0.5 + 1e-6,
                    "{} weight {i}: {fw} vs {qw}·{step}",
                    q.node
                );
            }
            // Real multipliers below 1: the requantization only shifts right.
            assert!(q.weights.requant.iter().all(|r| r.shift <= 0), "{}", q.node);
            channels += f.k;
            requantized += q.requantized;
            worst = worst.max(q.max_weight_error);
            assert!(
                q.max_weight_error <= 0.5 * 255.0 / 127.0 + 1e-4,
                "{}",
                q.node
            );
        }
        eprintln!(
            "COCO SSD: {requantized} of {channels} output channels requantized, largest weight \
             change {worst:.3} model steps"
        );
        assert_eq!((requantized, channels), (104, 21_919));
        // The first layer reads the image (uint8 zero point 128); the depthwise layers read
        // ReLU6 outputs (zero point 0 → −128).
        assert_eq!(convs[0].x.zero, 0);
        assert_eq!(convs[1].x.zero, -128);
    }

    /// Each of the COCO SSD's quantized layers (the import plus the integer arithmetic) computes
    /// its float layer (the float form's weights and bias, its ReLU6) to within rounding: half an
    /// output step and the second rounding of the fixed-point requantization, plus — for the
    /// requantized channels — what their weight change can move the sum, per output value. Random inputs on a 7×7 image (the weights do not depend on
    /// the image size).
    #[test]
    fn every_quantized_layer_computes_its_float_layer() {
        use super::super::int8::{self, activation_range, Output, QConv, QOutput};
        let convs = conv_quantization(&model("ssd_mobilenet_v2_coco_300_int8.onnx")).unwrap();
        let m = Manifest::load(&model("ssd_mobilenet_v2_coco_300.toml")).unwrap();
        let graph = onnx::load(&m.onnx).unwrap();
        let target = Target {
            tensor_cores: false,
        };
        let plan = compile(&graph, &m.input.shape, false, &m.output_names(), target).unwrap();
        let mut state = 0x9e37_79b9u32;
        let (mut worst_exact, mut worst_requantized) = (0.0f32, 0.0f32);
        let (mut sum_requantized, mut n_requantized) = (0.0f64, 0usize);
        let mut worst_layer = String::new();
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
                y_zero: q.y.zero,
                y_scale: q.y.scale,
                clamp: activation_range(f.act, q.y.scale, q.y.zero).unwrap(),
                output: Output::Int8,
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
            let lo = (f32::from(spec.clamp.0) - f32::from(q.y.zero)) * q.y.scale;
            let hi = (f32::from(spec.clamp.1) - f32::from(q.y.zero)) * q.y.scale;
            for p in 0..oh * ow {
                let (oy, ox) = (p / ow, p % ow);
                for k in 0..f.k {
                    let (mut sum, mut moved) = (fb.map_or(0.0, |b| b[k]), 0.0f32);
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
                                let quantized = f32::from(q.weights.weights[wi]) * q.w_scales[k];
                                sum += real_x(xi) * fw[wi];
                                moved += (real_x(xi) * (fw[wi] - quantized)).abs();
                            }
                        }
                    }
                    let want = sum.clamp(lo, hi);
                    let got = (f32::from(y[p * f.k + k]) - f32::from(q.y.zero)) * q.y.scale;
                    // In output steps: the requantization rounds twice (to the Q31 product,
                    // then by 2^shift: ½ + ½·2^shift), 1e-3 for float rounding of the sums.
                    let err = (got - want).abs() / q.y.scale;
                    let twice = 0.5 * 2f32.powi(q.weights.requant[k].shift);
                    let bound = 0.5 + twice + moved / q.y.scale + 1e-3;
                    assert!(
                        err <= bound,
                        "{} pixel {p} channel {k}: {err} > {bound}",
                        q.node
                    );
                    if moved == 0.0 {
                        worst_exact = worst_exact.max(err);
                    } else {
                        if err > worst_requantized {
                            worst_requantized = err;
                            worst_layer.clone_from(&q.node);
                        }
                        sum_requantized += f64::from(err);
                        n_requantized += 1;
                    }
                }
            }
        }
        eprintln!(
            "COCO SSD layers vs their float form, in output steps: exact channels at most \
             {worst_exact:.3}; requantized channels at most {worst_requantized:.3} ({worst_layer}), \
             mean {:.3} over {n_requantized} values",
            sum_requantized / n_requantized as f64
        );
    }

    #[test]
    fn a_float_model_is_refused_with_what_to_do() {
        let e = conv_quantization(&model("ssd_mobilenet_v2_coco_300.onnx"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not a QDQ model") && e.contains("calibration"),
            "{e}"
        );
    }
}
