//! Lowering: the ONNX graph → a flat list of GPU steps over device buffers.
//!
//! Layout. Convolutions, pooling and resizing run on NHWC buffers (tensor cores want channels
//! last). Every value keeps its *logical* ONNX shape plus a permutation saying which logical axis
//! each physical axis holds, so Transpose never copies and Reshape copies only when the merge it
//! asks for is not contiguous in memory. A Permute step materialises a layout only where an op
//! needs one it does not have (graph outputs are always plain row-major).
//!
//! Fusion. Into each convolution's epilogue (one kernel after cuDNN): bias, a following
//! BatchNormalization (folded into the weights), a residual Add whose other operand is already
//! computed, and the activation after them (Relu, Clip/ReLU6, LeakyRelu, Sigmoid). A Pad feeding a
//! Conv (zeros) or a MaxPool (−∞) becomes that op's own padding (any sides for depthwise
//! convolutions, symmetric ones elsewhere).
//!
//! The plan is pure data (weights aside): it is fingerprinted for the plan cache and unit-tested
//! without a GPU.

use super::int8::{QConv, QWeights};
use super::onnx::{attr_float, attr_int, attr_ints, attr_str, Const, OnnxGraph};
use super::qdq::Affine;
use adas_plugins::gpu::Act;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use tract_onnx::pb::NodeProto;

pub type BufId = usize;
pub type WeightId = usize;

/// ONNX ops the engine runs (everything else is refused with the node's name).
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "BatchNormalization",
    "Clip",
    "Concat",
    "Conv",
    "DequantizeLinear",
    "Dropout",
    "Identity",
    "LeakyRelu",
    "MaxPool",
    "Pad",
    "QuantizeLinear",
    "Relu",
    "Reshape",
    "Resize",
    "Sigmoid",
    "Split",
    "Transpose",
];

/// A 2-D convolution on NHWC buffers (cuDNN), followed by the fused epilogue
/// `y = act(conv(x) + bias + residual)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvStep {
    pub node: String,
    pub x: BufId,
    pub y: BufId,
    /// Weights in KRSC order (cuDNN's NHWC filter layout).
    pub weight: WeightId,
    pub bias: Option<WeightId>,
    pub residual: Option<BufId>,
    pub act: Act,
    /// Input N, H, W, C; output channels K; kernel R×S.
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub r: usize,
    pub s: usize,
    /// Top and left padding; bottom and right follow from `oh`, `ow` (they may differ from top
    /// and left only for depthwise steps).
    pub pad: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
    pub x_at: Strided,
    pub y_at: Strided,
    /// A 1×1 convolution fused in front of this depthwise one ([`super::expand_dw`]): it reads
    /// the step's real input and writes `x`, which nothing else reads.
    pub expand: Option<Box<ConvStep>>,
    /// A 1×1 convolution fused behind this depthwise one, which has its expansion fused too
    /// (the whole inverted residual, [`super::expand_dw`]): it reads `y`, which nothing else
    /// reads, and writes the step's real output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Box<ConvStep>>,
}

/// Where a convolution's pixels are in its buffer: element offset of the first, and the distance
/// between consecutive ones (the channel count when dense; more when the buffer is a Concat
/// written in place — see `in_place`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Strided {
    pub offset: usize,
    pub pitch: usize,
}

impl Strided {
    pub fn dense(channels: usize) -> Strided {
        Strided {
            offset: 0,
            pitch: channels,
        }
    }
}

impl ConvStep {
    /// Input and output are whole buffers (cuDNN's descriptors can say nothing else).
    pub fn is_dense(&self) -> bool {
        self.x_at == Strided::dense(self.c) && self.y_at == Strided::dense(self.k)
    }

    /// One filter per channel (MobileNet's depthwise layers): run by the engine's own kernel.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.c && self.k == self.c
    }

    /// The convolution whose output the step writes: the fused projection, else the step.
    pub fn output(&self) -> &ConvStep {
        self.project.as_deref().unwrap_or(self)
    }

    /// The step's convolutions in the order they run: expansion, the step, projection.
    pub fn chain(&self) -> impl Iterator<Item = &ConvStep> {
        self.expand
            .as_deref()
            .into_iter()
            .chain([self])
            .chain(self.project.as_deref())
    }
}

/// Where Resize samples the source (ONNX `coordinate_transformation_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Coord {
    HalfPixel,
    Asymmetric,
    AlignCorners,
    PytorchHalfPixel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    Conv(ConvStep),
    /// Constant padding of an NHWC buffer.
    Pad {
        x: BufId,
        y: BufId,
        nhwc: [usize; 4],
        top: usize,
        left: usize,
        oh: usize,
        ow: usize,
        value: f32,
    },
    MaxPool {
        x: BufId,
        y: BufId,
        nhwc: [usize; 4],
        kernel: [usize; 2],
        stride: [usize; 2],
        pad: [usize; 2],
        oh: usize,
        ow: usize,
    },
    Resize {
        x: BufId,
        y: BufId,
        nhwc: [usize; 4],
        oh: usize,
        ow: usize,
        /// Output/input size ratio per axis (ONNX `scales`).
        scale: [f32; 2],
        linear: bool,
        coord: Coord,
        /// Nearest only: round half down (ONNX round_prefer_floor) instead of floor.
        round: bool,
        /// `y = resize(x) + residual`: an Add fused in (`resize_add`); may be `y` itself.
        residual: Option<BufId>,
    },
    /// `y = act(a + b)` (b optional), element-wise over `len` values.
    Eltwise {
        a: BufId,
        b: Option<BufId>,
        y: BufId,
        len: usize,
        act: Act,
    },
    /// `y = x · scale[c] + shift[c]` with the channel innermost (a BatchNormalization that could
    /// not be folded).
    Affine {
        x: BufId,
        y: BufId,
        len: usize,
        channels: usize,
        scale: WeightId,
        shift: WeightId,
    },
    /// `y[o·y_stride + y_offset + i] = x[o·x_stride + x_offset + i]` for o < outer, i < len: one
    /// input of a Concat or one output of a Split.
    Copy {
        x: BufId,
        y: BufId,
        outer: usize,
        len: usize,
        x_stride: usize,
        y_stride: usize,
        x_offset: usize,
        y_offset: usize,
    },
    /// Row-major `y` with output axis i = input axis `axes[i]` of the row-major `x` of `dims`.
    Permute {
        x: BufId,
        y: BufId,
        dims: Vec<usize>,
        axes: Vec<usize>,
    },
    /// A QDQ model's QuantizeLinear (uint8, per tensor), in the int8 domain (uint8 − 128):
    /// `q = clamp(round_half_even(x / scale) + zero, −128, 127)` over `len` values. `y` holds q
    /// as int8 where `int8`, else its value `(q − zero) · scale` in the activation type (the
    /// DequantizeLinear that follows is then a no-op).
    Quantize {
        x: BufId,
        y: BufId,
        len: usize,
        scale: f32,
        zero: i8,
        int8: bool,
    },
    /// An INT8 convolution of a quantized plan ([`super::quantized`]).
    QConv(QConvStep),
    /// A QDQ model's element-wise op between quantized values ([`super::quantized`]):
    /// `y = quantize(act(dequantize(x) + dequantize(b)))` over `len` values (`b` optional).
    /// Each input holds values on its grid, as int8 or dequantized in the activation type (their
    /// integers recovered exactly); the rest is FP32 ([`super::int8::requantize`]), so the
    /// activation type's rounding never moves a result to the next step. `y` holds q as int8
    /// where `int8`, else its value.
    Requantize {
        x: Operand,
        b: Option<Operand>,
        act: Act,
        y: BufId,
        len: usize,
        grid: Affine,
        int8: bool,
        /// Where in `y` the values go (a Concat's slice); None: `y`'s first `len`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<Slice>,
    },
}

/// Where a step's `outer · len` values go in its output buffer: run `o` of `len` at
/// `offset + o · stride` (a Concat's slice, written in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub outer: usize,
    pub len: usize,
    pub stride: usize,
    pub offset: usize,
}

impl Slice {
    /// The place of value `i`.
    pub fn at(&self, i: usize) -> usize {
        i / self.len * self.stride + self.offset + i % self.len
    }
}

/// An input of a [`Step::Requantize`]: values on `grid`, held in `buf` as int8 where `int8`,
/// else dequantized in the activation type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Operand {
    pub buf: BufId,
    pub grid: Affine,
    pub int8: bool,
}

/// An INT8 convolution: int8 NHWC input `x`, int8 or (dequantized) FP16 output `y`, its
/// constants in [`Plan::qweights`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QConvStep {
    pub node: String,
    pub x: BufId,
    pub y: BufId,
    pub spec: QConv,
    /// Index into [`Plan::qweights`].
    pub weights: usize,
    /// SHA-256 of the constants (weights, zero points, bias, requantization): the plan's
    /// fingerprint, and so the plan cache's key, covers the quantization.
    pub quant_hash: String,
}

impl Step {
    /// The slice of its output buffer a Copy, or a Requantize into a Concat's slice, writes.
    pub fn slice_written(&self) -> Option<Slice> {
        match self {
            Step::Copy {
                outer,
                len,
                y_stride,
                y_offset,
                ..
            } => Some(Slice {
                outer: *outer,
                len: *len,
                stride: *y_stride,
                offset: *y_offset,
            }),
            Step::Requantize { into, .. } => *into,
            _ => None,
        }
    }

    /// The buffer the step writes.
    pub fn writes(&self) -> BufId {
        match self {
            Step::Conv(c) => c.output().y,
            Step::Pad { y, .. }
            | Step::MaxPool { y, .. }
            | Step::Resize { y, .. }
            | Step::Eltwise { y, .. }
            | Step::Affine { y, .. }
            | Step::Copy { y, .. }
            | Step::Permute { y, .. }
            | Step::Quantize { y, .. }
            | Step::Requantize { y, .. } => *y,
            Step::QConv(q) => q.y,
        }
    }

    /// The buffers the step reads.
    pub fn reads(&self) -> Vec<BufId> {
        match self {
            Step::Conv(c) => {
                let first = c.expand.as_ref().map_or(c.x, |e| e.x);
                let projected = c.project.as_ref().and_then(|p| p.residual);
                [Some(first), c.residual, projected]
                    .into_iter()
                    .flatten()
                    .collect()
            }
            Step::Eltwise { a, b, .. } => [Some(*a), *b].into_iter().flatten().collect(),
            Step::Resize { x, residual, .. } => {
                [Some(*x), *residual].into_iter().flatten().collect()
            }
            Step::Pad { x, .. }
            | Step::MaxPool { x, .. }
            | Step::Affine { x, .. }
            | Step::Copy { x, .. }
            | Step::Permute { x, .. }
            | Step::Quantize { x, .. } => vec![*x],
            Step::QConv(q) => vec![q.x],
            Step::Requantize { x, b, .. } => [Some(x.buf), b.map(|b| b.buf)]
                .into_iter()
                .flatten()
                .collect(),
        }
    }
}

/// The lowered model.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Element count of each device buffer.
    pub buffers: Vec<usize>,
    pub steps: Vec<Step>,
    /// Host weights the steps refer to (uploaded at build time, FP32 or converted to FP16).
    pub weights: Vec<Vec<f32>>,
    /// The network input: NHWC, `[batch, height, width, 3]` physically.
    pub input: BufId,
    /// The input's logical shape (as the manifest gives it, with the batch size).
    pub input_shape: Vec<usize>,
    /// The requested outputs, each row-major in its logical shape.
    pub outputs: Vec<(BufId, Vec<usize>)>,
    /// The INT8 convolutions' constants ([`Step::QConv`]; empty in a float plan).
    pub qweights: Vec<QWeights>,
}

impl Plan {
    /// A stable fingerprint of the steps and buffer sizes (weights excluded): the plan cache
    /// stores measured algorithms per fingerprint.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let text = serde_json::to_string(&(&self.buffers, &self.steps)).unwrap_or_default();
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Work of one image: (multiply-add FLOPs of the convolutions, bytes moved if every buffer
    /// is written once and read once and every weight read once) — the roofline's inputs.
    pub fn cost_per_image(&self, element_bytes: usize) -> (f64, f64) {
        let batch = self.input_shape.first().copied().unwrap_or(1).max(1) as f64;
        let mut flops = 0.0;
        for s in &self.steps {
            match s {
                Step::Conv(c) => {
                    for c in c.chain() {
                        flops +=
                            2.0 * (c.n * c.oh * c.ow * c.k * c.r * c.s * (c.c / c.groups)) as f64;
                    }
                }
                Step::QConv(q) => {
                    let c = &q.spec;
                    flops += 2.0 * (c.n * c.oh * c.ow * c.k * c.r * c.s * (c.c / c.groups)) as f64;
                }
                _ => {}
            }
        }
        let activations: usize = self.buffers.iter().sum();
        let weights: usize = self.weights.iter().map(Vec::len).sum();
        let bytes =
            2.0 * (activations * element_bytes) as f64 / batch + (weights * element_bytes) as f64;
        (flops / batch, bytes)
    }

    /// Steps per kind, for logs and the README's op table.
    pub fn summary(&self) -> String {
        let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
        for s in &self.steps {
            let name = match s {
                Step::Conv(c) if c.project.is_some() => "conv 1×1 + depthwise + 1×1",
                Step::Conv(c) if c.expand.is_some() => "conv 1×1 + depthwise",
                Step::Conv(c) if c.residual.is_some() => "conv+residual",
                Step::Conv(_) => "conv",
                Step::Pad { .. } => "pad",
                Step::MaxPool { .. } => "maxpool",
                Step::Resize { residual: None, .. } => "resize",
                Step::Resize { .. } => "resize+add",
                Step::Eltwise { .. } => "eltwise",
                Step::Affine { .. } => "affine",
                Step::Copy { .. } => "copy",
                Step::Permute { .. } => "permute",
                Step::Quantize { int8: true, .. } => "quantize → int8",
                Step::Quantize { .. } => "quantize",
                Step::QConv(_) => "int8 conv",
                Step::Requantize { b: Some(_), .. } => "quantized add",
                Step::Requantize { .. } => "requantize",
            };
            *counts.entry(name).or_default() += 1;
        }
        counts
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("node `{node}` ({op}): {message}")]
    Node {
        node: String,
        op: String,
        message: String,
    },
    #[error("node `{node}`: op `{op}` is not supported by the cuda engine (supported: {})", SUPPORTED_OPS.join(", "))]
    Unsupported { node: String, op: String },
    #[error("{0}")]
    Graph(String),
}

/// Padding not yet applied: the value's buffer holds the unpadded data.
#[derive(Debug, Clone, Copy, PartialEq)]
struct PendingPad {
    /// top, left, bottom, right.
    pads: [usize; 4],
    value: f32,
}

/// A value during lowering.
#[derive(Debug, Clone)]
struct Val {
    buf: BufId,
    /// Logical ONNX shape (including any pending padding).
    shape: Vec<usize>,
    /// Physical axis i holds logical axis perm[i].
    perm: Vec<usize>,
    pad: Option<PendingPad>,
    /// The convolution step whose output buffer this value is (epilogue fusion candidate).
    conv: Option<usize>,
    /// Number of steps emitted when the value became available.
    ready: usize,
}

const NHWC: [usize; 4] = [0, 2, 3, 1];

impl Val {
    /// A step's fresh NHWC output of logical shape [n, c, h, w].
    fn nhwc(buf: BufId, [n, c, h, w]: [usize; 4], ready: usize) -> Val {
        Val {
            buf,
            shape: vec![n, c, h, w],
            perm: NHWC.to_vec(),
            pad: None,
            conv: None,
            ready,
        }
    }
}

fn identity(rank: usize) -> Vec<usize> {
    (0..rank).collect()
}

impl Val {
    fn physical_dims(&self) -> Vec<usize> {
        self.perm.iter().map(|&l| self.shape[l]).collect()
    }
    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

/// Lowers `graph` for `batch` images whose logical input shape is `input_shape` (batch first);
/// `input_nchw` says whether that shape is NCHW (the physical input buffer is NHWC either way).
pub fn lower(
    graph: &OnnxGraph,
    input_shape: &[usize],
    input_nchw: bool,
    outputs: &[&str],
) -> Result<Plan, PlanError> {
    let input_name = graph
        .inputs
        .first()
        .ok_or_else(|| PlanError::Graph("the model has no input".into()))?;
    let mut l = Lower {
        graph,
        batch: input_shape.first().copied().unwrap_or(1),
        vals: HashMap::new(),
        uses: HashMap::new(),
        plan: Plan {
            buffers: Vec::new(),
            steps: Vec::new(),
            weights: Vec::new(),
            input: 0,
            input_shape: input_shape.to_vec(),
            outputs: Vec::new(),
            qweights: Vec::new(),
        },
    };
    for node in &graph.nodes {
        for i in &node.input {
            *l.uses.entry(i.clone()).or_default() += 1;
        }
    }
    for o in outputs {
        *l.uses.entry((*o).to_string()).or_default() += 1;
    }
    let input = l.new_buf(input_shape.iter().product());
    l.plan.input = input;
    l.vals.insert(
        input_name.clone(),
        Val {
            buf: input,
            shape: input_shape.to_vec(),
            perm: if input_nchw {
                NHWC.to_vec()
            } else {
                identity(input_shape.len())
            },
            pad: None,
            conv: None,
            ready: 0,
        },
    );
    for node in &graph.nodes {
        l.node(node)?;
    }
    for o in outputs {
        let v = l
            .vals
            .get(*o)
            .cloned()
            .ok_or_else(|| PlanError::Graph(format!("the model has no output `{o}`")))?;
        let rank = v.shape.len();
        let v = l.materialize(v, &identity(rank));
        l.plan.outputs.push((v.buf, v.shape));
    }
    Ok(l.plan)
}

struct Lower<'g> {
    graph: &'g OnnxGraph,
    batch: usize,
    vals: HashMap<String, Val>,
    uses: HashMap<String, usize>,
    plan: Plan,
}

impl Lower<'_> {
    fn new_buf(&mut self, elems: usize) -> BufId {
        self.plan.buffers.push(elems);
        self.plan.buffers.len() - 1
    }

    fn push(&mut self, step: Step) -> usize {
        self.plan.steps.push(step);
        self.plan.steps.len()
    }

    fn weight(&mut self, w: Vec<f32>) -> WeightId {
        self.plan.weights.push(w);
        self.plan.weights.len() - 1
    }

    /// Applies pending padding and converts to `perm`.
    fn materialize(&mut self, mut v: Val, perm: &[usize]) -> Val {
        if let Some(p) = v.pad {
            if v.perm != NHWC {
                v = self.permute(v, &NHWC);
            }
            let [t, l, b, r] = p.pads;
            let (n, c) = (v.shape[0], v.shape[1]);
            let (oh, ow) = (v.shape[2], v.shape[3]);
            let nhwc = [n, oh - t - b, ow - l - r, c];
            let y = self.new_buf(n * oh * ow * c);
            let ready = self.push(Step::Pad {
                x: v.buf,
                y,
                nhwc,
                top: t,
                left: l,
                oh,
                ow,
                value: p.value,
            });
            v = Val {
                buf: y,
                pad: None,
                conv: None,
                ready,
                ..v
            };
        }
        if v.perm != perm {
            v = self.permute(v, perm);
        }
        v
    }

    fn permute(&mut self, v: Val, perm: &[usize]) -> Val {
        let dims = v.physical_dims();
        let axes: Vec<usize> = perm
            .iter()
            .map(|l| v.perm.iter().position(|p| p == l).unwrap_or(0))
            .collect();
        let y = self.new_buf(v.len());
        let ready = self.push(Step::Permute {
            x: v.buf,
            y,
            dims,
            axes,
        });
        Val {
            buf: y,
            perm: perm.to_vec(),
            pad: None,
            conv: None,
            ready,
            ..v
        }
    }

    fn val(&self, node: &NodeProto, i: usize) -> Result<Val, PlanError> {
        let name = node.input.get(i).map(String::as_str).unwrap_or("");
        self.vals.get(name).cloned().ok_or_else(|| self.err(
            node,
            format!("input {i} `{name}` is not computed on the GPU (a constant where a tensor is expected?)"),
        ))
    }

    fn konst(&self, node: &NodeProto, i: usize) -> Option<&'_ Const> {
        node.input
            .get(i)
            .filter(|n| !n.is_empty())
            .and_then(|n| self.graph.consts.get(n))
    }

    fn need_const(&self, node: &NodeProto, i: usize) -> Result<&'_ Const, PlanError> {
        self.konst(node, i)
            .ok_or_else(|| self.err(node, format!("input {i} must be a constant")))
    }

    fn err(&self, node: &NodeProto, message: impl Into<String>) -> PlanError {
        PlanError::Node {
            node: node.name.clone(),
            op: node.op_type.clone(),
            message: message.into(),
        }
    }

    fn single_use(&self, node: &NodeProto, i: usize) -> bool {
        node.input
            .get(i)
            .is_some_and(|n| self.uses.get(n).copied() == Some(1))
    }

    /// The conv step whose epilogue may still absorb an op applied to input `i`.
    fn fusable_conv(&self, node: &NodeProto, i: usize, v: &Val) -> Option<usize> {
        let si = v.conv?;
        if !self.single_use(node, i) || v.pad.is_some() {
            return None;
        }
        match self.plan.steps.get(si) {
            Some(Step::Conv(c)) if c.act == Act::None => Some(si),
            _ => None,
        }
    }

    fn define(&mut self, node: &NodeProto, v: Val) {
        if let Some(o) = node.output.first() {
            self.vals.insert(o.clone(), v);
        }
    }

    fn node(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        match node.op_type.as_str() {
            "Conv" => self.conv(node),
            "Relu" | "Clip" | "LeakyRelu" | "Sigmoid" => self.activation(node),
            "BatchNormalization" => self.batch_norm(node),
            "Add" => self.add(node),
            "Concat" => self.concat(node),
            "Split" => self.split(node),
            "Reshape" => self.reshape(node),
            "Transpose" => self.transpose(node),
            "MaxPool" => self.max_pool(node),
            "Resize" => self.resize(node),
            "Pad" => self.pad(node),
            "QuantizeLinear" => self.quantize(node),
            // Its QuantizeLinear's step already holds the dequantized value (or the int8 the
            // INT8 convolutions read).
            "Identity" | "Dropout" | "DequantizeLinear" => {
                let v = self.val(node, 0)?;
                self.define(node, v);
                Ok(())
            }
            op => Err(PlanError::Unsupported {
                node: node.name.clone(),
                op: op.to_string(),
            }),
        }
    }

    fn pair(&self, node: &NodeProto, name: &str, default: usize) -> Result<[usize; 2], PlanError> {
        match attr_ints(node, name) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(self.err(node, format!("{name} {v:?} is not two positive values"))),
        }
    }

    /// Explicit pads attribute [t, l, b, r] (defaults 0); auto_pad other than NOTSET is refused.
    fn pads_attr(&self, node: &NodeProto) -> Result<[usize; 4], PlanError> {
        if let Some(a) = attr_str(node, "auto_pad") {
            if a != "NOTSET" {
                return Err(self.err(
                    node,
                    format!("auto_pad {a} is not supported (export with explicit pads)"),
                ));
            }
        }
        match attr_ints(node, "pads") {
            None => Ok([0; 4]),
            Some(p) if p.len() == 4 && p.iter().all(|&x| x >= 0) => {
                Ok([p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize])
            }
            Some(p) => Err(self.err(node, format!("pads {p:?} are not 4 non-negative values"))),
        }
    }

    /// Input 0 as an NHWC buffer plus padding [top, left, bottom, right]: a pending pad with
    /// `fold_value` is absorbed, together with the op's own pads; anything else is materialised
    /// first. Unless the op takes `asymmetric` padding (the engine's own depthwise kernel does:
    /// TensorFlow's "SAME" stride-2 layers pad only bottom and right), unequal sides are padded
    /// explicitly, since cuDNN and the pooling kernel pad symmetrically.
    fn spatial_input(
        &mut self,
        node: &NodeProto,
        fold_value: f32,
        asymmetric: bool,
    ) -> Result<(Val, [usize; 4], [usize; 4]), PlanError> {
        let v = self.val(node, 0)?;
        if v.shape.len() != 4 {
            return Err(self.err(node, format!("expects a 4-D input, got {:?}", v.shape)));
        }
        let own = self.pads_attr(node)?;
        let mut total = own;
        let mut v = match v.pad {
            Some(p)
                if p.value == fold_value
                    || (p.value.is_infinite() && fold_value.is_infinite() && p.value < 0.0) =>
            {
                for (t, q) in total.iter_mut().zip(p.pads) {
                    *t += q;
                }
                let [t, l, b, r] = p.pads;
                let mut shape = v.shape.clone();
                shape[2] -= t + b;
                shape[3] -= l + r;
                Val {
                    shape,
                    pad: None,
                    ..v
                }
            }
            _ => v,
        };
        v = self.materialize(v, &NHWC);
        let [t, l, b, r] = total;
        if !asymmetric && (t != b || l != r) {
            let mut shape = v.shape.clone();
            shape[2] += t + b;
            shape[3] += l + r;
            let padded = Val {
                shape,
                pad: Some(PendingPad {
                    pads: total,
                    value: fold_value,
                }),
                ..v
            };
            let v = self.materialize(padded, &NHWC);
            let nhwc = [v.shape[0], v.shape[2], v.shape[3], v.shape[1]];
            return Ok((v, nhwc, [0; 4]));
        }
        let nhwc = [v.shape[0], v.shape[2], v.shape[3], v.shape[1]];
        Ok((v, nhwc, total))
    }

    fn conv(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let wc = self.need_const(node, 1)?.clone();
        let bias = self.konst(node, 2).map(Const::f32s);
        let [k, cg, r, s] = match wc.shape.as_slice() {
            &[k, cg, r, s] => [k, cg, r, s],
            other => return Err(self.err(node, format!("weights of shape {other:?} are not 4-D"))),
        };
        let groups = attr_int(node, "group").unwrap_or(1).max(1) as usize;
        // Depthwise convolutions run on the engine's own kernel, which pads any side.
        let depthwise = cg == 1 && groups > 1 && k == groups;
        let (x, [n, h, w, c], pads) = self.spatial_input(node, 0.0, depthwise)?;
        if cg * groups != c || k % groups != 0 {
            return Err(self.err(
                node,
                format!(
                    "{c} input channels do not match weights {:?} with {groups} groups",
                    wc.shape
                ),
            ));
        }
        let stride = self.pair(node, "strides", 1)?;
        let dilation = self.pair(node, "dilations", 1)?;
        let extent = |size: usize, p: usize, kk: usize, d: usize, st: usize| {
            (size + p).checked_sub(d * (kk - 1) + 1).map(|v| v / st + 1)
        };
        let (oh, ow) = match (
            extent(h, pads[0] + pads[2], r, dilation[0], stride[0]),
            extent(w, pads[1] + pads[3], s, dilation[1], stride[1]),
        ) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(self.err(node, "kernel larger than the padded input")),
        };
        // KCRS → KRSC.
        let src = wc.f32s();
        let mut krsc = vec![0.0; src.len()];
        for kk in 0..k {
            for ci in 0..cg {
                for ri in 0..r {
                    for si in 0..s {
                        krsc[((kk * r + ri) * s + si) * cg + ci] =
                            src[((kk * cg + ci) * r + ri) * s + si];
                    }
                }
            }
        }
        let weight = self.weight(krsc);
        let bias = match bias {
            Some(b) if b.len() == k => Some(self.weight(b)),
            Some(b) => {
                return Err(self.err(
                    node,
                    format!("bias has {} values for {k} channels", b.len()),
                ))
            }
            None => None,
        };
        let y = self.new_buf(n * oh * ow * k);
        let index = self.plan.steps.len();
        let ready = self.push(Step::Conv(ConvStep {
            node: node.name.clone(),
            x: x.buf,
            y,
            weight,
            bias,
            residual: None,
            act: Act::None,
            n,
            h,
            w,
            c,
            k,
            r,
            s,
            pad: [pads[0], pads[1]],
            stride,
            dilation,
            groups,
            oh,
            ow,
            x_at: Strided::dense(c),
            y_at: Strided::dense(k),
            expand: None,
            project: None,
        }));
        self.define(
            node,
            Val {
                conv: Some(index),
                ..Val::nhwc(y, [n, k, oh, ow], ready)
            },
        );
        Ok(())
    }

    fn activation(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let act = match node.op_type.as_str() {
            "Relu" => Act::Relu,
            "Sigmoid" => Act::Sigmoid,
            "LeakyRelu" => Act::Leaky(attr_float(node, "alpha").unwrap_or(0.01)),
            _ => {
                let bound = |i: usize, attr: &str, default: f32| {
                    self.konst(node, i)
                        .and_then(|c| c.f32s().first().copied())
                        .or_else(|| attr_float(node, attr))
                        .unwrap_or(default)
                };
                Act::Clip(
                    bound(1, "min", f32::NEG_INFINITY),
                    bound(2, "max", f32::INFINITY),
                )
            }
        };
        let v = self.val(node, 0)?;
        if let Some(si) = self.fusable_conv(node, 0, &v) {
            if let Some(Step::Conv(c)) = self.plan.steps.get_mut(si) {
                c.act = act;
            }
            self.define(node, v);
            return Ok(());
        }
        let v = self.materialize(v.clone(), &v.perm);
        let y = self.new_buf(v.len());
        let ready = self.push(Step::Eltwise {
            a: v.buf,
            b: None,
            y,
            len: v.len(),
            act,
        });
        self.define(
            node,
            Val {
                buf: y,
                conv: None,
                ready,
                ..v
            },
        );
        Ok(())
    }

    /// A QDQ model's QuantizeLinear of an activation: the value rounded to its uint8 grid.
    fn quantize(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let scale = self.need_const(node, 1)?.f32s();
        let zero_name = node.input.get(2).filter(|n| !n.is_empty());
        let zero = match zero_name {
            Some(_) => self.need_const(node, 2)?.i64s(),
            None => vec![0],
        };
        let signed = zero_name.is_some_and(|n| self.graph.signed.contains(n));
        let (&[scale], &[zero]) = (&scale[..], &zero[..]) else {
            return Err(self.err(
                node,
                format!(
                    "{} scales, {} zero points: activations take per-tensor quantization",
                    scale.len(),
                    zero.len()
                ),
            ));
        };
        if signed || !(0..=255).contains(&zero) || !(scale > 0.0 && scale.is_finite()) {
            return Err(self.err(
                node,
                format!(
                    "scale {scale}, {} zero point {zero}: activations take uint8 quantization \
                     (a scale > 0, a uint8 zero point), as TensorFlow Lite writes it",
                    if signed { "int8" } else { "uint8" }
                ),
            ));
        }
        let v = self.val(node, 0)?;
        let v = self.materialize(v.clone(), &v.perm);
        let y = self.new_buf(v.len());
        let ready = self.push(Step::Quantize {
            x: v.buf,
            y,
            len: v.len(),
            scale,
            zero: (zero - 128) as i8,
            int8: false,
        });
        self.define(
            node,
            Val {
                buf: y,
                conv: None,
                ready,
                ..v
            },
        );
        Ok(())
    }

    fn batch_norm(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let eps = attr_float(node, "epsilon").unwrap_or(1e-5);
        let [g, beta, mean, var] = [1, 2, 3, 4].map(|i| self.konst(node, i).map(Const::f32s));
        let (Some(g), Some(beta), Some(mean), Some(var)) = (g, beta, mean, var) else {
            return Err(self.err(node, "scale, bias, mean and variance must be constants"));
        };
        let scale: Vec<f32> = g
            .iter()
            .zip(&var)
            .map(|(g, v)| g / (v + eps).sqrt())
            .collect();
        let shift: Vec<f32> = beta
            .iter()
            .zip(&mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        let v = self.val(node, 0)?;
        let channels = v.shape.get(1).copied().unwrap_or(0);
        if scale.len() != channels {
            return Err(self.err(
                node,
                format!("{} statistics for {channels} channels", scale.len()),
            ));
        }
        if let Some(si) = self.fusable_conv(node, 0, &v) {
            let (weight, bias) = match &self.plan.steps[si] {
                Step::Conv(c) if c.residual.is_none() => (c.weight, c.bias),
                _ => (usize::MAX, None),
            };
            if weight != usize::MAX {
                let per_k = self.plan.weights[weight].len() / channels;
                for (kk, chunk) in self.plan.weights[weight].chunks_mut(per_k).enumerate() {
                    chunk.iter_mut().for_each(|w| *w *= scale[kk]);
                }
                let old = bias
                    .map(|b| self.plan.weights[b].clone())
                    .unwrap_or(vec![0.0; channels]);
                let folded: Vec<f32> = old
                    .iter()
                    .zip(&scale)
                    .zip(&shift)
                    .map(|((b, s), t)| b * s + t)
                    .collect();
                let b = self.weight(folded);
                if let Some(Step::Conv(c)) = self.plan.steps.get_mut(si) {
                    c.bias = Some(b);
                }
                self.define(node, v);
                return Ok(());
            }
        }
        // Channel innermost: NHWC for 4-D, row-major for 2-D.
        let perm = if v.shape.len() == 4 {
            NHWC.to_vec()
        } else {
            identity(v.shape.len())
        };
        if v.shape.len() != 4 && v.shape.len() != 2 {
            return Err(self.err(
                node,
                format!("input of rank {} (2 or 4 supported)", v.shape.len()),
            ));
        }
        let v = self.materialize(v, &perm);
        let (scale, shift) = (self.weight(scale), self.weight(shift));
        let y = self.new_buf(v.len());
        let ready = self.push(Step::Affine {
            x: v.buf,
            y,
            len: v.len(),
            channels,
            scale,
            shift,
        });
        self.define(
            node,
            Val {
                buf: y,
                conv: None,
                ready,
                ..v
            },
        );
        Ok(())
    }

    fn add(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let (a, b) = (self.val(node, 0)?, self.val(node, 1)?);
        if a.shape != b.shape {
            return Err(self.err(
                node,
                format!(
                    "broadcasting {:?} + {:?} is not supported",
                    a.shape, b.shape
                ),
            ));
        }
        // Residual fusion: the other operand must already exist when the conv runs.
        for (i, conv_val, other) in [(0, &a, &b), (1, &b, &a)] {
            if let Some(si) = self.fusable_conv(node, i, conv_val) {
                let ok = other.pad.is_none()
                    && other.perm == conv_val.perm
                    && other.ready <= si
                    && other.buf != conv_val.buf;
                if let (true, Some(Step::Conv(c))) = (ok, self.plan.steps.get_mut(si)) {
                    if c.residual.is_none() {
                        c.residual = Some(other.buf);
                        let v = conv_val.clone();
                        self.define(node, v);
                        return Ok(());
                    }
                }
            }
        }
        let a = self.materialize(a.clone(), &a.perm);
        let b = self.materialize(b, &a.perm);
        let y = self.new_buf(a.len());
        let ready = self.push(Step::Eltwise {
            a: a.buf,
            b: Some(b.buf),
            y,
            len: a.len(),
            act: Act::None,
        });
        self.define(
            node,
            Val {
                buf: y,
                conv: None,
                ready,
                ..a
            },
        );
        Ok(())
    }

    fn axis(&self, node: &NodeProto, rank: usize) -> Result<usize, PlanError> {
        let a = attr_int(node, "axis").unwrap_or(0);
        let a = if a < 0 { a + rank as i64 } else { a };
        usize::try_from(a)
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| self.err(node, format!("axis {a} out of range for rank {rank}")))
    }

    fn concat(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let first = self.val(node, 0)?;
        let rank = first.shape.len();
        let axis = self.axis(node, rank)?;
        let perm = first.perm.clone();
        let mut parts = Vec::new();
        for i in 0..node.input.len() {
            let v = self.val(node, i)?;
            if v.shape.len() != rank {
                return Err(self.err(node, "inputs of different rank"));
            }
            parts.push(self.materialize(v, &perm));
        }
        let mut shape = first.shape.clone();
        shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
        let pos = perm.iter().position(|&l| l == axis).unwrap_or(0);
        let out_dims: Vec<usize> = perm.iter().map(|&l| shape[l]).collect();
        let outer: usize = out_dims[..pos].iter().product();
        let y_stride: usize = out_dims[pos..].iter().product();
        let y = self.new_buf(shape.iter().product());
        let mut offset = 0;
        let mut ready = 0;
        for p in &parts {
            let len: usize = p.physical_dims()[pos..].iter().product();
            ready = self.push(Step::Copy {
                x: p.buf,
                y,
                outer,
                len,
                x_stride: len,
                y_stride,
                x_offset: 0,
                y_offset: offset,
            });
            offset += len;
        }
        self.define(
            node,
            Val {
                buf: y,
                shape,
                perm,
                pad: None,
                conv: None,
                ready,
            },
        );
        Ok(())
    }

    fn split(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let v = self.val(node, 0)?;
        let v = self.materialize(v.clone(), &v.perm);
        let axis = self.axis(node, v.shape.len())?;
        let total = v.shape[axis];
        let sizes: Vec<usize> = match self
            .konst(node, 1)
            .map(Const::i64s)
            .or_else(|| attr_ints(node, "split"))
        {
            Some(s) => s.iter().map(|&x| x.max(0) as usize).collect(),
            None => {
                let n = node.output.len().max(1);
                vec![total / n; n]
            }
        };
        if sizes.iter().sum::<usize>() != total || sizes.len() != node.output.len() {
            return Err(self.err(node, format!("split sizes {sizes:?} do not cover {total}")));
        }
        let pos = v.perm.iter().position(|&l| l == axis).unwrap_or(0);
        let dims = v.physical_dims();
        let outer: usize = dims[..pos].iter().product();
        let x_stride: usize = dims[pos..].iter().product();
        let inner: usize = dims[pos + 1..].iter().product();
        let mut offset = 0;
        for (size, name) in sizes.iter().zip(&node.output) {
            let mut shape = v.shape.clone();
            shape[axis] = *size;
            let len = size * inner;
            let y = self.new_buf(shape.iter().product());
            let ready = self.push(Step::Copy {
                x: v.buf,
                y,
                outer,
                len,
                x_stride,
                y_stride: len,
                x_offset: offset,
                y_offset: 0,
            });
            offset += len;
            self.vals.insert(
                name.clone(),
                Val {
                    buf: y,
                    shape,
                    perm: v.perm.clone(),
                    pad: None,
                    conv: None,
                    ready,
                },
            );
        }
        Ok(())
    }

    fn reshape(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let v = self.val(node, 0)?;
        let target = self.need_const(node, 1)?.i64s();
        let len = v.len();
        let mut shape: Vec<usize> = Vec::with_capacity(target.len());
        let mut infer = None;
        for (i, &d) in target.iter().enumerate() {
            match d {
                0 => shape.push(v.shape.get(i).copied().unwrap_or(1)),
                -1 => {
                    infer = Some(i);
                    shape.push(1);
                }
                d if d > 0 => shape.push(d as usize),
                d => return Err(self.err(node, format!("dimension {d}"))),
            }
        }
        // Exporters bake batch 1 into reshape targets; the engine runs other batch sizes.
        if self.batch > 1 && shape.first() == Some(&1) && v.shape.first() == Some(&self.batch) {
            shape[0] = self.batch;
        }
        if let Some(i) = infer {
            let known: usize = shape.iter().product();
            if known == 0 || len % known != 0 {
                return Err(self.err(node, format!("cannot reshape {:?} to {target:?}", v.shape)));
            }
            shape[i] = len / known;
        }
        if shape.iter().product::<usize>() != len {
            return Err(self.err(node, format!("cannot reshape {:?} to {shape:?}", v.shape)));
        }
        if shape == v.shape {
            self.define(node, v);
            return Ok(());
        }
        let v = if v.pad.is_some() {
            self.materialize(v.clone(), &v.perm)
        } else {
            v
        };
        let perm = if v.perm == identity(v.shape.len()) {
            Some(identity(shape.len()))
        } else {
            merged_perm(&v.shape, &v.perm, &shape)
        };
        let v = match perm {
            Some(p) => Val {
                shape,
                perm: p,
                conv: v.conv,
                ..v
            },
            None => {
                let rank = v.shape.len();
                let m = self.materialize(v, &identity(rank));
                let rank = shape.len();
                Val {
                    shape,
                    perm: identity(rank),
                    ..m
                }
            }
        };
        self.define(node, v);
        Ok(())
    }

    fn transpose(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let v = self.val(node, 0)?;
        let v = if v.pad.is_some() {
            self.materialize(v.clone(), &v.perm)
        } else {
            v
        };
        let rank = v.shape.len();
        let t: Vec<usize> = attr_ints(node, "perm")
            .map(|p| p.iter().map(|&x| x.max(0) as usize).collect())
            .unwrap_or_else(|| (0..rank).rev().collect());
        let mut sorted = t.clone();
        sorted.sort_unstable();
        if sorted != identity(rank) {
            return Err(self.err(
                node,
                format!("perm {t:?} is not a permutation of {rank} axes"),
            ));
        }
        let mut inverse = vec![0; rank];
        for (i, &a) in t.iter().enumerate() {
            inverse[a] = i;
        }
        let shape = t.iter().map(|&a| v.shape[a]).collect();
        let perm = v.perm.iter().map(|&l| inverse[l]).collect();
        self.define(node, Val { shape, perm, ..v });
        Ok(())
    }

    fn max_pool(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        if attr_int(node, "ceil_mode").unwrap_or(0) != 0 {
            return Err(self.err(node, "ceil_mode 1 is not supported"));
        }
        let (x, [n, h, w, c], pads) = self.spatial_input(node, f32::NEG_INFINITY, false)?;
        let pad = [pads[0], pads[1]];
        let kernel = self.pair(node, "kernel_shape", 1)?;
        let stride = self.pair(node, "strides", 1)?;
        let oh = (h + 2 * pad[0]).saturating_sub(kernel[0]) / stride[0] + 1;
        let ow = (w + 2 * pad[1]).saturating_sub(kernel[1]) / stride[1] + 1;
        let y = self.new_buf(n * oh * ow * c);
        let ready = self.push(Step::MaxPool {
            x: x.buf,
            y,
            nhwc: [n, h, w, c],
            kernel,
            stride,
            pad,
            oh,
            ow,
        });
        self.define(node, Val::nhwc(y, [n, c, oh, ow], ready));
        Ok(())
    }

    fn resize(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        let v = self.val(node, 0)?;
        if v.shape.len() != 4 {
            return Err(self.err(node, "expects a 4-D input"));
        }
        let v = self.materialize(v, &NHWC);
        let (n, c, h, w) = (v.shape[0], v.shape[1], v.shape[2], v.shape[3]);
        let scales = self
            .konst(node, 2)
            .map(Const::f32s)
            .filter(|s| !s.is_empty());
        let sizes = self
            .konst(node, 3)
            .map(Const::i64s)
            .filter(|s| !s.is_empty());
        let (oh, ow, scale) = match (scales, sizes) {
            (Some(s), _) if s.len() == 4 && s[0] == 1.0 && s[1] == 1.0 => (
                (h as f32 * s[2]).floor() as usize,
                (w as f32 * s[3]).floor() as usize,
                [s[2], s[3]],
            ),
            (None, Some(z)) if z.len() == 4 && z[0] as usize == n && z[1] as usize == c => {
                let (oh, ow) = (z[2].max(1) as usize, z[3].max(1) as usize);
                (oh, ow, [oh as f32 / h as f32, ow as f32 / w as f32])
            }
            _ => return Err(self.err(node, "only constant spatial scales or sizes are supported")),
        };
        let linear = match attr_str(node, "mode").as_deref().unwrap_or("nearest") {
            "nearest" => false,
            "linear" => true,
            m => return Err(self.err(node, format!("mode {m} is not supported"))),
        };
        let coord = match attr_str(node, "coordinate_transformation_mode")
            .as_deref()
            .unwrap_or("half_pixel")
        {
            "half_pixel" => Coord::HalfPixel,
            "asymmetric" => Coord::Asymmetric,
            "align_corners" => Coord::AlignCorners,
            "pytorch_half_pixel" => Coord::PytorchHalfPixel,
            m => {
                return Err(self.err(
                    node,
                    format!("coordinate_transformation_mode {m} is not supported"),
                ))
            }
        };
        let round = match attr_str(node, "nearest_mode")
            .as_deref()
            .unwrap_or("round_prefer_floor")
        {
            "floor" => false,
            "round_prefer_floor" => true,
            m if linear => {
                let _ = m;
                false
            }
            m => return Err(self.err(node, format!("nearest_mode {m} is not supported"))),
        };
        let y = self.new_buf(n * oh * ow * c);
        let ready = self.push(Step::Resize {
            x: v.buf,
            y,
            nhwc: [n, h, w, c],
            oh,
            ow,
            scale,
            linear,
            coord,
            round,
            residual: None,
        });
        self.define(node, Val::nhwc(y, [n, c, oh, ow], ready));
        Ok(())
    }

    fn pad(&mut self, node: &NodeProto) -> Result<(), PlanError> {
        if attr_str(node, "mode").is_some_and(|m| m != "constant") {
            return Err(self.err(node, "only constant padding is supported"));
        }
        let v = self.val(node, 0)?;
        let v = if v.pad.is_some() {
            self.materialize(v.clone(), &v.perm)
        } else {
            v
        };
        let pads = self
            .konst(node, 1)
            .map(Const::i64s)
            .or_else(|| attr_ints(node, "pads"))
            .ok_or_else(|| self.err(node, "pads must be constant"))?;
        let value = self
            .konst(node, 2)
            .and_then(|c| c.f32s().first().copied())
            .or_else(|| attr_float(node, "value"))
            .unwrap_or(0.0);
        let ok = v.shape.len() == 4
            && pads.len() == 8
            && pads.iter().all(|&p| p >= 0)
            && pads[0] == 0
            && pads[1] == 0
            && pads[4] == 0
            && pads[5] == 0;
        if !ok {
            return Err(self.err(
                node,
                format!(
                    "pads {pads:?}: only non-negative spatial padding of a 4-D tensor is supported"
                ),
            ));
        }
        let p = [pads[2], pads[3], pads[6], pads[7]].map(|x| x as usize);
        let mut shape = v.shape.clone();
        shape[2] += p[0] + p[2];
        shape[3] += p[1] + p[3];
        self.define(
            node,
            Val {
                shape,
                pad: Some(PendingPad { pads: p, value }),
                conv: None,
                ..v
            },
        );
        Ok(())
    }
}

/// The layout of a reshape that only merges logical axes which are also adjacent and in order
/// physically (e.g. NCHW→[N, C, H·W] of an NHWC buffer is [N, H·W, C] physically); `None` when
/// the reshape needs a copy.
fn merged_perm(shape: &[usize], perm: &[usize], target: &[usize]) -> Option<Vec<usize>> {
    // Group consecutive logical axes into the target dimensions (merges only).
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut axis = 0;
    for &t in target {
        let mut group = Vec::new();
        let mut product = 1;
        while product < t || (group.is_empty() && axis < shape.len()) {
            product *= *shape.get(axis)?;
            group.push(axis);
            axis += 1;
            if product == t {
                break;
            }
        }
        if product != t {
            return None;
        }
        groups.push(group);
    }
    if axis != shape.len() {
        return None;
    }
    // Each group must be consecutive and ascending in physical order.
    let position = |l: usize| perm.iter().position(|&p| p == l);
    let mut starts = Vec::new();
    for g in &groups {
        let first = position(g[0])?;
        for (i, &l) in g.iter().enumerate() {
            if position(l)? != first + i {
                return None;
            }
        }
        starts.push(first);
    }
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&g| starts[g]);
    Some(order)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::path::Path;

    fn model(name: &str) -> OnnxGraph {
        let path = Path::new(env!("ADAS_REPO_ROOT")).join("models").join(name);
        super::super::onnx::load(&path).unwrap()
    }

    #[test]
    fn merged_perm_handles_the_nanodet_head() {
        // [1, 80, 52, 52] stored NHWC → [1, 80, 2704] is [1, 2704, 80] physically.
        assert_eq!(
            merged_perm(&[1, 80, 52, 52], &NHWC, &[1, 80, 2704]),
            Some(vec![0, 2, 1])
        );
        // Merging C with H is not contiguous in NHWC.
        assert_eq!(
            merged_perm(&[1, 80, 52, 52], &NHWC, &[1, 80 * 52, 52]),
            None
        );
    }

    #[test]
    fn nanodet_lowers_with_every_pad_folded_and_heads_without_copies() {
        let g = model("nanodet_m_coco_416.onnx");
        let outs = [
            "Identity:0",
            "Identity_1:0",
            "Identity_2:0",
            "Identity_3:0",
            "Identity_4:0",
            "Identity_5:0",
        ];
        let target = super::super::Target {
            tensor_cores: false,
        };
        let mut plan = super::super::compile(&g, &[1, 3, 416, 416], true, &outs, target).unwrap();
        let copies = |p: &Plan| {
            p.steps
                .iter()
                .filter(|s| matches!(s, Step::Copy { .. }))
                .count()
        };
        assert_eq!(copies(&plan), 30);
        super::super::in_place::write_concats_in_place(&mut plan);
        // Every backbone Concat is written in place; the six copies left split the heads.
        assert_eq!(copies(&plan), 6, "{}", plan.summary());
        let count = |f: &dyn Fn(&Step) -> bool| plan.steps.iter().filter(|s| f(s)).count();
        assert_eq!(count(&|s| matches!(s, Step::Conv(_))), 34);
        assert_eq!(
            count(&|s| matches!(s, Step::Pad { .. })),
            0,
            "{}",
            plan.summary()
        );
        assert_eq!(
            count(&|s| matches!(s, Step::Permute { .. })),
            0,
            "{}",
            plan.summary()
        );
        // The PAN's four adds are fused into its resizes (engine::resize_add): the laterals
        // carry no residual, so they do not wait for the top-down path.
        assert_eq!(
            count(&|s| matches!(
                s,
                Step::Resize {
                    residual: Some(_),
                    ..
                }
            )),
            4,
            "{}",
            plan.summary()
        );
        assert_eq!(
            count(&|s| matches!(s, Step::Conv(c) if c.residual.is_some())),
            0
        );
        assert_eq!(
            count(&|s| matches!(s, Step::Eltwise { .. })),
            3,
            "the heads' sigmoids"
        );
        // Every LeakyRelu is fused into its conv.
        assert_eq!(
            count(&|s| matches!(s, Step::Conv(c) if matches!(c.act, Act::Leaky(_)))),
            28
        );
        let shapes: Vec<&Vec<usize>> = plan.outputs.iter().map(|(_, s)| s).collect();
        assert_eq!(
            shapes,
            [
                &vec![1, 2704, 80],
                &vec![1, 676, 80],
                &vec![1, 169, 80],
                &vec![1, 2704, 44],
                &vec![1, 676, 44],
                &vec![1, 169, 44]
            ]
        );
    }

    #[test]
    fn ssd_lowers_with_batch_norm_folded_and_relu6_fused() {
        let g = model("ssdlite_mobilenet_v2_pedestrian_300.onnx");
        let plan = lower(&g, &[8, 300, 300, 3], false, &["concat:0", "concat_1:0"]).unwrap();
        let mut single = lower(&g, &[1, 300, 300, 3], false, &["concat:0", "concat_1:0"]).unwrap();
        super::super::in_place::write_concats_in_place(&mut single);
        let copies = |p: &Plan| {
            p.steps
                .iter()
                .filter(|s| matches!(s, Step::Copy { .. }))
                .count()
        };
        // At batch 1 the heads write their box and class maps into the concats in place, but for
        // the last (1×1) map, which goes through a Permute.
        assert_eq!((copies(&plan), copies(&single)), (12, 2));
        let count = |f: &dyn Fn(&Step) -> bool| plan.steps.iter().filter(|s| f(s)).count();
        assert_eq!(count(&|s| matches!(s, Step::Conv(_))), 88);
        // TensorFlow's "SAME" stride-2 layers pad bottom/right only: folded into the depthwise
        // ones; the first layer (a full convolution, cuDNN's candidate) keeps its explicit Pad.
        assert_eq!(
            count(&|s| matches!(s, Step::Pad { .. })),
            1,
            "{}",
            plan.summary()
        );
        assert_eq!(
            count(&|s| matches!(s, Step::Affine { .. })),
            0,
            "{}",
            plan.summary()
        );
        assert_eq!(
            count(&|s| matches!(s, Step::Conv(c) if c.act == Act::Clip(0.0, 6.0))),
            59
        );
        assert_eq!(
            count(&|s| matches!(s, Step::Conv(c) if c.residual.is_some())),
            10,
            "{}",
            plan.summary()
        );
        assert_eq!(plan.outputs[0].1, vec![8, 1917, 1, 4]);
        assert_eq!(plan.outputs[1].1, vec![8, 1917, 2]);
    }

    #[test]
    fn unsupported_ops_are_named() {
        let mut g = model("ssdlite_mobilenet_v2_pedestrian_300.onnx");
        g.nodes[3].op_type = "Softplus".into();
        let name = g.nodes[3].name.clone();
        let err = lower(&g, &[1, 300, 300, 3], false, &["concat:0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("Softplus") && err.contains(&name), "{err}");
    }
}
