//! The INT8 plan: a QDQ model's lowered plan (every QuantizeLinear a [`Step::Quantize`] in the
//! activation type) with each convolution turned into an INT8 one ([`Step::QConv`]) that takes
//! the model's quantization ([`super::qdq`]).
//!
//! - A convolution absorbs the QuantizeLinear of its output (its epilogue requantizes): it
//!   writes int8 where every reader of that value is an INT8 step (a convolution or a
//!   [`Step::Requantize`]), else the dequantized value in FP16 (exactly on the grid, what the
//!   float readers — Concat copies, Reshape, Transpose, the outputs — would have read). One whose
//!   output the model leaves unquantized (a detection head's) writes FP16 straight from its
//!   INT32 sums. A zero Pad read only by INT8 convolutions is their padding.
//! - A QuantizeLinear whose readers are all INT8 steps writes int8 (the input's first
//!   QuantizeLinear turns the pixel back into its uint8 value); one with float readers too keeps
//!   its FP16 value and a [`Step::Requantize`] gives the convolutions their int8 copy.
//! - Every op between quantized values is a [`Step::Requantize`], reading each operand as its
//!   writer holds it (int8, or FP16 on its grid, whose integer it recovers exactly): a
//!   QuantizeLinear of a value already on a grid (none onto the value's own grid), an
//!   element-wise op (residual Add, LeakyRelu, Sigmoid) fused with the QuantizeLinear of its
//!   output, and a Concat's inputs requantized straight into their slices. Their arithmetic is
//!   FP32, so no storage type moves a result to the next step (rounding an FP16 sum instead did,
//!   in 0.4 % of the COCO SSD's residual adds).

use super::int8::{activation_range, Output, QConv, QWeights};
use super::plan::{BufId, ConvStep, Operand, Plan, PlanError, QConvStep, Step};
use super::qdq::{Affine, ConvQuant};
use adas_plugins::gpu::Act;
use std::collections::{HashMap, HashSet};

/// The quantization of the value `step` writes, where it is a quantizing step.
fn affine(step: &Step) -> Option<Affine> {
    match step {
        Step::QConv(q) if q.spec.output != Output::Float => Some(Affine {
            scale: q.spec.y_scale,
            zero: q.spec.y_zero,
        }),
        Step::Quantize { scale, zero, .. } => Some(Affine {
            scale: *scale,
            zero: *zero,
        }),
        Step::Requantize { grid, .. } => Some(*grid),
        _ => None,
    }
}

/// Where the plan's steps are, for [`quant_of`]: every step writing and reading each buffer,
/// and which convolutions are INT8 (the others stay float).
struct Graph<'a> {
    steps: &'a [Step],
    writers: Vec<Vec<usize>>,
    readers: Vec<Vec<usize>>,
    int8_convs: HashSet<String>,
}

impl<'a> Graph<'a> {
    fn new(steps: &'a [Step], buffers: usize, int8_convs: HashSet<String>) -> Self {
        let mut g = Graph {
            steps,
            writers: vec![Vec::new(); buffers],
            readers: vec![Vec::new(); buffers],
            int8_convs,
        };
        for (i, s) in steps.iter().enumerate() {
            g.writers[s.writes()].push(i);
            for b in s.reads() {
                g.readers[b].push(i);
            }
        }
        g
    }

    fn is_int8_conv(&self, step: usize) -> bool {
        matches!(&self.steps[step], Step::Conv(c) if self.int8_convs.contains(&c.node))
    }
}

/// The quantization of the value in buffer `b`.
fn quant_of(b: BufId, g: &Graph) -> Option<Affine> {
    let grid = |w: usize| match &g.steps[w] {
        // An INT8 convolution's output: its QuantizeLinear's.
        Step::Conv(_) if g.is_int8_conv(w) => {
            g.readers[b].first().and_then(|&r| affine(&g.steps[r]))
        }
        Step::Conv(_) => None,
        // 0 is on every grid (the zero point); moving values keeps theirs: a Concat's slices,
        // a transposition.
        Step::Pad { x, value, .. } if *value == 0.0 => quant_of(*x, g),
        Step::Copy { x, .. } | Step::Permute { x, .. } => quant_of(*x, g),
        s => affine(s),
    };
    let (first, rest) = g.writers[b].split_first()?;
    let g = grid(*first)?;
    rest.iter()
        .all(|&w| grid(w).is_some_and(|h| same(h, g)))
        .then_some(g)
}

fn same(a: Affine, b: Affine) -> bool {
    a.zero == b.zero && (a.scale - b.scale).abs() <= b.scale * 1e-6
}

fn err(node: &str, message: String) -> PlanError {
    PlanError::Node {
        node: node.to_string(),
        op: "Conv".into(),
        message,
    }
}

/// Zero Pads read by INT8 convolutions alone become those convolutions' padding (any sides: a
/// tap outside the image reads the input's zero point, the quantized 0 on every grid).
fn fold_pads(plan: &mut Plan, int8_convs: &HashSet<String>) {
    let g = Graph::new(&plan.steps, plan.buffers.len(), int8_convs.clone());
    let mut folds = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let Step::Pad {
            x,
            y,
            nhwc,
            top,
            left,
            value,
            ..
        } = s
        else {
            continue;
        };
        let convs = &g.readers[*y];
        if *value == 0.0
            && g.writers[*y] == [i]
            && !plan.outputs.iter().any(|(o, _)| o == y)
            && !convs.is_empty()
            && convs.iter().all(|&r| g.is_int8_conv(r))
        {
            folds.push((i, *x, *nhwc, [*top, *left], convs.clone()));
        }
    }
    for (_, x, [_, h, w, _], [top, left], convs) in &folds {
        for &r in convs {
            if let Step::Conv(conv) = &mut plan.steps[r] {
                (conv.x, conv.h, conv.w) = (*x, *h, *w);
                conv.pad = [conv.pad[0] + top, conv.pad[1] + left];
            }
        }
    }
    let mut i = 0;
    plan.steps.retain(|_| {
        i += 1;
        !folds.iter().any(|f| f.0 == i - 1)
    });
}

/// Turns each convolution of `plan` that `convs` quantizes (matched by ONNX node name) into an
/// INT8 one; the others stay float (FP16). Every INT8 convolution must read and write
/// quantized values.
pub fn apply(plan: &mut Plan, convs: Vec<ConvQuant>) -> Result<(), PlanError> {
    let mut by_node: HashMap<String, ConvQuant> =
        convs.into_iter().map(|c| (c.node.clone(), c)).collect();
    fold_pads(plan, &by_node.keys().cloned().collect());
    let n = plan.buffers.len();
    let g = Graph::new(&plan.steps, n, by_node.keys().cloned().collect());
    let (writers, readers) = (&g.writers, &g.readers);
    let quant_of = |b: BufId| quant_of(b, &g);
    let is_output = |b: BufId| plan.outputs.iter().any(|(o, _)| *o == b) || b == plan.input;
    let operand = |buf: BufId, grid: Affine| Operand {
        buf,
        grid,
        int8: false,
    };
    // Quantize steps absorbed by the convolution that writes their input, or by an element-wise
    // step between quantized values (`fused`: that step's index → the Requantize doing both).
    let mut absorbed = vec![false; plan.steps.len()];
    let mut fused: HashMap<usize, Step> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        match s {
            Step::Quantize { x, .. } => {
                absorbed[i] |= writers[*x].iter().any(|&w| g.is_int8_conv(w));
            }
            Step::Eltwise { a, b, y, act, .. } => {
                let Some(x_grid) = quant_of(*a) else { continue };
                let b = match b {
                    Some(b) => match quant_of(*b) {
                        Some(g) => Some(operand(*b, g)),
                        None => continue,
                    },
                    None => None,
                };
                if let ([r], false) = (&readers[*y][..], is_output(*y)) {
                    if let Step::Quantize {
                        y,
                        len,
                        scale,
                        zero,
                        ..
                    } = plan.steps[*r]
                    {
                        absorbed[*r] = true;
                        fused.insert(
                            i,
                            Step::Requantize {
                                x: operand(*a, x_grid),
                                b,
                                act: *act,
                                y,
                                len,
                                grid: Affine { scale, zero },
                                int8: false,
                                into: None,
                            },
                        );
                    }
                }
            }
            _ => {}
        }
    }
    // A Concat whose one reader is a QuantizeLinear, of values on grids (or of a unary op of
    // one, the LeakyRelu between a convolution and a Concat): each Copy becomes a Requantize
    // onto the QuantizeLinear's grid straight into its slice, through that op (`dissolved`:
    // those ops); the QuantizeLinear goes. ONNX's DequantizeLinear → op → Concat →
    // QuantizeLinear, in FP32 as every Requantize.
    let mut dissolved: HashSet<usize> = HashSet::new();
    for (qi, s) in plan.steps.iter().enumerate() {
        let Step::Quantize {
            x: cat,
            y,
            scale,
            zero,
            ..
        } = s
        else {
            continue;
        };
        if absorbed[qi] || is_output(*cat) || readers[*cat] != [qi] || writers[*cat].is_empty() {
            continue;
        }
        let slice_of = |w: usize| {
            let into = plan.steps[w].slice_written()?;
            let Step::Copy {
                x,
                x_stride,
                x_offset,
                ..
            } = &plan.steps[w]
            else {
                return None;
            };
            if *x_stride != into.len || *x_offset != 0 {
                return None;
            }
            if let Some(grid) = quant_of(*x) {
                return Some((w, operand(*x, grid), Act::None, None, into));
            }
            let ([e], [_]) = (&writers[*x][..], &readers[*x][..]) else {
                return None;
            };
            match &plan.steps[*e] {
                Step::Eltwise {
                    a, b: None, act, ..
                } if !fused.contains_key(e) => {
                    quant_of(*a).map(|grid| (w, operand(*a, grid), *act, Some(*e), into))
                }
                _ => None,
            }
        };
        let Some(slices) = writers[*cat]
            .iter()
            .map(|&w| slice_of(w))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        absorbed[qi] = true;
        let grid = Affine {
            scale: *scale,
            zero: *zero,
        };
        for (w, x, act, e, into) in slices {
            dissolved.extend(e);
            let len = into.outer * into.len;
            fused.insert(
                w,
                Step::Requantize {
                    x,
                    b: None,
                    act,
                    y: *y,
                    len,
                    grid,
                    int8: false,
                    into: Some(into),
                },
            );
        }
    }
    // The steps that read int8: INT8 convolutions and the Requantize steps (of values already
    // on a grid, the fused element-wise ops and Concat slices).
    let reads_int8: Vec<bool> = (0..plan.steps.len())
        .map(|r| match &plan.steps[r] {
            Step::Conv(_) => g.is_int8_conv(r),
            Step::Quantize { x, .. } => !absorbed[r] && quant_of(*x).is_some(),
            _ => fused.contains_key(&r) || dissolved.contains(&r),
        })
        .collect();
    // int8 is written where only such steps read.
    let int8_readers_only = |b: BufId| {
        !is_output(b) && !readers[b].is_empty() && readers[b].iter().all(|&r| reads_int8[r])
    };
    let mut steps = Vec::with_capacity(plan.steps.len());
    // Buffers holding int8; the int8 copies made for convolutions of FP16 values; and the
    // buffers a requantization onto the same grid would only copy, read in their source's place.
    let mut int8 = vec![false; n];
    let mut copies: HashMap<BufId, BufId> = HashMap::new();
    let mut alias: HashMap<BufId, BufId> = HashMap::new();
    let source = |alias: &HashMap<BufId, BufId>, b: BufId| alias.get(&b).copied().unwrap_or(b);
    let held = |int8: &[bool], o: Operand| Operand {
        int8: int8[o.buf],
        ..o
    };
    for (i, step) in plan.steps.iter().enumerate() {
        match step {
            Step::Quantize {
                x,
                y,
                len,
                scale,
                zero,
                ..
            } if !absorbed[i] => {
                let grid = Affine {
                    scale: *scale,
                    zero: *zero,
                };
                let x = source(&alias, *x);
                int8[*y] = int8_readers_only(*y);
                // A value already on a grid is requantized from its integer, or read in place
                // where that grid is its own.
                steps.push(match quant_of(x) {
                    Some(x_grid) if same(x_grid, grid) && int8[x] && int8[*y] => {
                        alias.insert(*y, x);
                        continue;
                    }
                    Some(x_grid) => Step::Requantize {
                        x: held(&int8, operand(x, x_grid)),
                        b: None,
                        act: Act::None,
                        y: *y,
                        len: *len,
                        grid,
                        int8: int8[*y],
                        into: None,
                    },
                    None => Step::Quantize {
                        x,
                        y: *y,
                        len: *len,
                        scale: *scale,
                        zero: *zero,
                        int8: int8[*y],
                    },
                });
            }
            Step::Quantize { .. } => {}
            _ if fused.contains_key(&i) => {
                if let Some(Step::Requantize {
                    x,
                    b,
                    act,
                    y,
                    len,
                    grid,
                    into,
                    ..
                }) = fused.remove(&i)
                {
                    let resolve = |o: Operand| {
                        held(
                            &int8,
                            Operand {
                                buf: source(&alias, o.buf),
                                ..o
                            },
                        )
                    };
                    let (x, b) = (resolve(x), b.map(resolve));
                    int8[y] = int8_readers_only(y);
                    steps.push(Step::Requantize {
                        x,
                        b,
                        act,
                        y,
                        len,
                        grid,
                        int8: int8[y],
                        into,
                    });
                }
            }
            _ if dissolved.contains(&i) => {}
            Step::Conv(c) if by_node.contains_key(&c.node) => {
                let Some(q) = by_node.remove(&c.node) else {
                    continue;
                };
                // The value read: a Quantize step's, or an INT8 convolution's output, maybe
                // padded with zeros (0 is on every grid: the zero point).
                let x_quant = quant_of(c.x).ok_or_else(|| {
                    err(
                        &c.node,
                        "its input is not quantized (no QuantizeLinear)".into(),
                    )
                })?;
                if !same(x_quant, q.x) {
                    return Err(err(
                        &c.node,
                        format!(
                            "input quantized as {x_quant:?}, but the convolution reads {:?}",
                            q.x
                        ),
                    ));
                }
                let x = source(&alias, c.x);
                let x = if int8[x] {
                    x
                } else {
                    match copies.get(&x) {
                        Some(&copy) => copy,
                        None => {
                            let copy = plan.buffers.len();
                            plan.buffers.push(plan.buffers[x]);
                            int8.push(true);
                            steps.push(Step::Requantize {
                                x: operand(x, x_quant),
                                b: None,
                                act: Act::None,
                                y: copy,
                                len: plan.buffers[x],
                                grid: q.x,
                                int8: true,
                                into: None,
                            });
                            copies.insert(x, copy);
                            copy
                        }
                    }
                };
                // The output's QuantizeLinear, absorbed; none where the model leaves it float.
                let quantized = match readers[c.y][..] {
                    [r] => match &plan.steps[r] {
                        Step::Quantize { y, .. } => Some(*y),
                        _ => None,
                    },
                    _ => None,
                };
                let (out, output) = match (quantized, q.y) {
                    (Some(out), Some(_)) => {
                        int8[out] = int8_readers_only(out);
                        let output = if int8[out] {
                            Output::Int8
                        } else {
                            Output::Fp16
                        };
                        (out, output)
                    }
                    (None, None) => (c.y, Output::Float),
                    _ => {
                        return Err(err(
                            &c.node,
                            "its output is not quantized by one QuantizeLinear".into(),
                        ))
                    }
                };
                let spec = spec(c, &q, output)?;
                plan.weights[c.weight] = Vec::new();
                if let Some(b) = c.bias {
                    plan.weights[b] = Vec::new();
                }
                steps.push(Step::QConv(QConvStep {
                    node: c.node.clone(),
                    x,
                    y: out,
                    spec,
                    weights: plan.qweights.len(),
                    quant_hash: hash(&q.weights),
                }));
                plan.qweights.push(q.weights);
            }
            other => steps.push(other.clone()),
        }
    }
    plan.steps = steps;
    Ok(())
}

/// The INT8 kernels' description of convolution `c`.
fn spec(c: &ConvStep, q: &ConvQuant, output: Output) -> Result<QConv, PlanError> {
    if c.expand.is_some() || c.project.is_some() || c.residual.is_some() || !c.is_dense() {
        return Err(err(
            &c.node,
            "a fused or in-place convolution: the INT8 plan runs the lowering alone".into(),
        ));
    }
    let neutral = QConv::of(c, c.n);
    let (y_zero, y_scale, clamp) = match q.y {
        Some(y) => (
            y.zero,
            y.scale,
            activation_range(c.act, y.scale, y.zero).ok_or_else(|| {
                err(
                    &c.node,
                    format!("activation {:?} is not a clamp: INT8 cannot fuse it", c.act),
                )
            })?,
        ),
        // No grid: the activation runs on the float value.
        None => (neutral.y_zero, neutral.y_scale, neutral.clamp),
    };
    let spec = QConv {
        x_zero: q.x.zero,
        y_zero,
        y_scale,
        clamp,
        output,
        act: if output == Output::Float {
            c.act
        } else {
            Act::None
        },
        ..neutral
    };
    if let Some(why) = spec.unsupported() {
        return Err(err(&c.node, why));
    }
    if q.weights.weights.len() != spec.k * spec.q_len() || q.weights.bias.len() != spec.k {
        return Err(err(
            &c.node,
            format!(
                "{} quantized weights and {} biases for {} channels of {} taps",
                q.weights.weights.len(),
                q.weights.bias.len(),
                spec.k,
                spec.q_len()
            ),
        ));
    }
    Ok(spec)
}

/// SHA-256 of a convolution's integer constants.
fn hash(q: &QWeights) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(q.weights.iter().map(|&v| v as u8).collect::<Vec<u8>>());
    h.update(q.w_zero.iter().map(|&v| v as u8).collect::<Vec<u8>>());
    for b in &q.bias {
        h.update(b.to_le_bytes());
    }
    for r in &q.requant {
        h.update(r.multiplier.to_le_bytes());
        h.update(r.shift.to_le_bytes());
    }
    for s in &q.scale {
        h.update(s.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::{compile_int8, onnx, qdq};
    use super::*;
    use std::path::Path;

    fn int8_plan(batch: usize) -> Plan {
        let path =
            Path::new(env!("ADAS_REPO_ROOT")).join("models/ssd_mobilenet_v2_coco_300_int8.onnx");
        let graph = onnx::load(&path).unwrap();
        let convs = qdq::conv_quantization(&onnx::read(&path).unwrap()).unwrap();
        compile_int8(
            &graph,
            &[batch, 300, 300, 3],
            false,
            &["Squeeze", "convert_scores"],
            convs,
        )
        .unwrap()
    }

    #[test]
    fn the_coco_ssd_runs_every_convolution_in_int8() {
        let plan = int8_plan(2);
        let count = |f: &dyn Fn(&Step) -> bool| plan.steps.iter().filter(|s| f(s)).count();
        assert_eq!(count(&|s| matches!(s, Step::Conv(_))), 0);
        assert_eq!(count(&|s| matches!(s, Step::QConv(_))), 72);
        assert_eq!(plan.qweights.len(), 72);
        // The pixel (pixel − 128 in int8: scale 1/128, zero 0) is what the first convolution
        // reads: the input's QuantizeLinear, in int8, its zero Pad (TensorFlow's "SAME" for
        // stride 2: bottom and right) the convolution's own padding.
        let Some(Step::QConv(first)) = plan.steps.iter().find(|s| matches!(s, Step::QConv(_)))
        else {
            panic!("no INT8 convolution");
        };
        assert!(
            matches!(plan.steps[0], Step::Quantize { x, y, int8: true, scale, zero: 0, .. }
                if x == plan.input && y == first.x && scale == 1.0 / 128.0),
            "{:?}",
            plan.steps[0]
        );
        assert_eq!(
            (first.spec.h, first.spec.pad, first.spec.oh),
            (300, [0, 0], 150)
        );
        assert_eq!(count(&|s| matches!(s, Step::Pad { .. })), 0);
        let mut int8 = vec![false; plan.buffers.len()];
        for s in &plan.steps {
            match s {
                Step::Quantize { y, int8: q, .. } => int8[*y] = *q,
                Step::Requantize {
                    x, b, y, int8: q, ..
                } => {
                    // It reads values on their grids, each as its writer holds it.
                    for o in [Some(x), b.as_ref()].into_iter().flatten() {
                        assert_eq!(int8[o.buf], o.int8, "{s:?}");
                    }
                    int8[*y] = *q;
                }
                Step::QConv(q) => {
                    // Every INT8 convolution reads int8.
                    assert!(int8[q.x], "{} reads FP16", q.node);
                    int8[q.y] = q.spec.output == Output::Int8;
                    assert_eq!(q.spec.n, 2);
                    assert_eq!(q.quant_hash.len(), 64);
                }
                other => {
                    for b in other.reads() {
                        assert!(!int8[b], "a float step reads int8: {other:?}");
                    }
                }
            }
        }
        for (b, _) in &plan.outputs {
            assert!(!int8[*b], "outputs are FP16");
        }
        // Every element-wise op runs between quantized values, with its QuantizeLinear: the 10
        // residual adds, the scores' Sigmoid.
        assert_eq!(count(&|s| matches!(s, Step::Eltwise { .. })), 0);
        let adds = count(&|s| matches!(s, Step::Requantize { b: Some(_), .. }));
        let sigmoid = count(&|s| {
            matches!(
                s,
                Step::Requantize {
                    act: Act::Sigmoid,
                    ..
                }
            )
        });
        assert_eq!((adds, sigmoid), (10, 1));
        // Values between INT8 steps stay int8: the residual chain (each projection's output and
        // each sum is read by the next add and the next expansion) needs no int8 copies, so the
        // other requantizations are the Sigmoid's and those onto the Concats' grids (5 class and
        // 5 box predictors; the sixth box predictor writes on that grid itself).
        let int8_in_and_out = count(
            &|s| matches!(s, Step::Requantize { x, b: Some(b), int8: true, .. } if x.int8 && b.int8),
        );
        assert_eq!(int8_in_and_out, 10, "{}", plan.summary());
        let requantize = count(&|s| matches!(s, Step::Requantize { b: None, .. }));
        assert_eq!(requantize, 11, "{}", plan.summary());
        // Only the input is quantized from float values.
        assert_eq!(
            count(&|s| matches!(s, Step::Quantize { .. })),
            1,
            "{}",
            plan.summary()
        );
        // The float convolution weights are dropped: INT8 uploads its own.
        let float: usize = plan.weights.iter().map(Vec::len).sum();
        assert!(float < 1000, "{float} float weights left");
    }

    /// The INT8 plan on its CPU reference (the kernels' executable specification) against
    /// TensorFlow Lite's built-in integer kernels on one real image
    /// (tests/reference/make_int8_raw_reference.py): every box encoding and class score, as the
    /// uint8 TensorFlow Lite hands its post-processing, identical.
    #[test]
    fn the_int8_plan_computes_tensorflow_lites_integers() {
        let fixtures = Path::new(env!("ADAS_REPO_ROOT")).join("tests/fixtures/reference");
        let pixels = image::open(fixtures.join("ssd_coco_int8_input.png"))
            .unwrap()
            .to_rgb8();
        // The manifest's preprocessing, (pixel − 128) / 128, NHWC.
        let input: Vec<f32> = pixels
            .as_raw()
            .iter()
            .map(|&p| (f32::from(p) - 128.0) / 128.0)
            .collect();
        let want = std::fs::read(fixtures.join("ssd_coco_int8_raw.bin")).unwrap();
        let plan = int8_plan(1);
        let outputs = super::super::reference::run(&plan, &input);
        let g = Graph::new(&plan.steps, plan.buffers.len(), HashSet::new());
        // Boxes (`Squeeze`, 1917 × 4) then scores (`convert_scores`, 1917 × 91), uint8.
        let mut got = Vec::new();
        for ((b, _), values) in plan.outputs.iter().zip(&outputs) {
            let grid = quant_of(*b, &g).unwrap();
            got.extend(values.iter().map(|v| {
                ((v / grid.scale).round_ties_even() as i32 + i32::from(grid.zero) + 128) as u8
            }));
        }
        assert_eq!(got.len(), want.len());
        let differ = got.iter().zip(&want).filter(|(a, b)| a != b).count();
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap_or(0);
        assert_eq!(
            differ,
            0,
            "{differ} of {} uint8 outputs differ from TensorFlow Lite's (at most {worst} steps)",
            want.len()
        );
    }

    #[test]
    fn the_fingerprint_covers_the_quantization() {
        let a = int8_plan(1);
        let mut b = a.clone();
        let Some(Step::QConv(q)) = b.steps.iter_mut().find(|s| matches!(s, Step::QConv(_))) else {
            panic!("no INT8 convolution");
        };
        b.qweights[q.weights].bias[0] += 1;
        q.quant_hash = hash(&b.qweights[q.weights]);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint(), int8_plan(1).fingerprint());
    }

    #[test]
    fn a_float_model_is_refused_for_int8_with_what_to_do() {
        let path = Path::new(env!("ADAS_REPO_ROOT")).join("models/ssd_mobilenet_v2_coco_300.onnx");
        let e = qdq::conv_quantization(&onnx::read(&path).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a QDQ model"), "{e}");
    }
}
