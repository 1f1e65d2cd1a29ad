//! Which convolutions of a calibrated float model to keep float: the INT8 layers whose
//! quantization costs the outputs most. Each convolution is quantized alone, the rest of the
//! network float, and run on the CPU reference ([`super::reference`]) over a few calibration
//! inputs; its cost is the outputs' noise-to-signal ratio against the float network's, the
//! per-layer sensitivity analysis of NVIDIA's "Integer Quantization for Deep Learning Inference"
//! (Wu et al., 2020) and of ONNX Runtime's `qdq_loss_debug`. Keeping the costliest few in FP16
//! (`adasd calibrate-int8 --float-layers N`) is TensorRT's mixed precision: those layers run on
//! the float kernels between quantized neighbours.

use super::calibrated::{quantize, Calibration};
use super::plan::{Plan, PlanError};
use super::{compile, compile_int8, onnx, qdq, reference, Target};
use std::collections::BTreeSet;
use tract_onnx::pb::ModelProto;

/// What one convolution's quantization costs.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCost {
    /// The convolution, by its output tensor (as [`Calibration::float_convolutions`] names it).
    pub conv: String,
    /// Mean over the inputs and the model's outputs of Σ(int8 − float)² / Σ float².
    pub cost: f64,
}

/// Why the analysis cannot run.
#[derive(Debug, thiserror::Error)]
pub enum SensitivityError {
    #[error("INT8 sensitivity: {0}")]
    Model(#[from] onnx::OnnxError),
    #[error("INT8 sensitivity: {0}")]
    Plan(#[from] PlanError),
    #[error("INT8 sensitivity: a worker thread panicked")]
    Worker,
    #[error("INT8 sensitivity needs at least one input image")]
    NoInput,
    #[error("INT8 sensitivity: input {index} has {got} values, the model takes {want}")]
    Input {
        index: usize,
        got: usize,
        want: usize,
    },
}

/// The model's input and outputs, as the plans are compiled for them.
#[derive(Debug, Clone, Copy)]
pub struct Io<'a> {
    pub input_shape: &'a [usize],
    pub nchw: bool,
    pub outputs: &'a [&'a str],
}

/// Every convolution of float model `model` with its cost under `calibration`'s ranges, costliest
/// first, over `inputs` (NHWC, as [`reference::run`] takes them). `done(k, of)` is called after
/// each convolution: k of the `of` convolutions are measured. The convolutions are spread over the
/// CPU's cores.
pub fn layer_costs(
    model: &ModelProto,
    calibration: &Calibration,
    io: Io,
    inputs: &[Vec<f32>],
    done: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<LayerCost>, SensitivityError> {
    let float_plan = compile(
        &onnx::from_model(model.clone())?,
        io.input_shape,
        io.nchw,
        io.outputs,
        Target {
            tensor_cores: false,
        },
    )?;
    let want: usize = io.input_shape.iter().product();
    if inputs.is_empty() {
        return Err(SensitivityError::NoInput);
    }
    if let Some((index, x)) = inputs.iter().enumerate().find(|(_, x)| x.len() != want) {
        return Err(SensitivityError::Input {
            index,
            got: x.len(),
            want,
        });
    }
    let reference: Vec<Vec<Vec<f32>>> = inputs
        .iter()
        .map(|x| reference::run(&float_plan, x))
        .collect();
    let convs = conv_outputs(model);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(convs.len().max(1));
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let cost_of = |conv: &String| -> Result<LayerCost, SensitivityError> {
        let plan = alone_in_int8(model, calibration, &convs, conv, io)?;
        let cost = inputs
            .iter()
            .zip(&reference)
            .map(|(x, want)| noise_to_signal(&reference::run(&plan, x), want))
            .sum::<f64>()
            / inputs.len() as f64;
        done(
            finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
            convs.len(),
        );
        Ok(LayerCost {
            conv: conv.clone(),
            cost,
        })
    };
    let mut costs: Vec<LayerCost> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let cost_of = &cost_of;
                let mine: Vec<&String> = convs.iter().skip(t).step_by(threads).collect();
                scope.spawn(move || mine.into_iter().map(cost_of).collect::<Vec<_>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec![Err(SensitivityError::Worker)])
            })
            .collect::<Result<_, _>>()
    })?;
    costs.sort_by(|a, b| b.cost.total_cmp(&a.cost).then_with(|| a.conv.cmp(&b.conv)));
    Ok(costs)
}

/// The `n` costliest convolutions of `costs` (sorted costliest first), as the table names them.
pub fn costliest(costs: &[LayerCost], n: usize) -> BTreeSet<String> {
    costs.iter().take(n).map(|c| c.conv.clone()).collect()
}

/// Each convolution's output tensor, in graph order.
fn conv_outputs(model: &ModelProto) -> Vec<String> {
    model
        .graph
        .iter()
        .flat_map(|g| &g.node)
        .filter(|n| n.op_type == "Conv")
        .filter_map(|n| n.output.first().cloned())
        .collect()
}

/// The INT8 plan with `conv` the only quantized convolution.
fn alone_in_int8(
    model: &ModelProto,
    calibration: &Calibration,
    convs: &[String],
    conv: &str,
    io: Io,
) -> Result<Plan, SensitivityError> {
    let alone = Calibration {
        float_convolutions: convs.iter().filter(|c| *c != conv).cloned().collect(),
        ..calibration.clone()
    };
    let proto = quantize(model.clone(), &alone)?;
    let quantization = qdq::conv_quantization(&proto)?;
    let graph = onnx::from_model(proto)?;
    Ok(compile_int8(
        &graph,
        io.input_shape,
        io.nchw,
        io.outputs,
        quantization,
    )?)
}

/// Mean over the outputs of Σ(got − want)² / Σ want² (0 where `want` is all zeros and `got` too).
pub fn noise_to_signal(got: &[Vec<f32>], want: &[Vec<f32>]) -> f64 {
    let ratios: Vec<f64> = got
        .iter()
        .zip(want)
        .map(|(g, w)| {
            let (noise, signal) = g.iter().zip(w).fold((0f64, 0f64), |(n, s), (&g, &w)| {
                let d = f64::from(g) - f64::from(w);
                (n + d * d, s + f64::from(w) * f64::from(w))
            });
            if noise == 0.0 {
                0.0
            } else if signal == 0.0 {
                noise
            } else {
                noise / signal
            }
        })
        .collect();
    ratios.iter().sum::<f64>() / ratios.len().max(1) as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::int8::Output;
    use super::*;
    use adas_plugins::gpu::Act;
    use std::collections::BTreeMap;
    use tract_onnx::pb::{self, attribute_proto::AttributeType, NodeProto, TensorProto};

    fn ints(name: &str, v: &[i64]) -> pb::AttributeProto {
        pb::AttributeProto {
            name: name.into(),
            r#type: AttributeType::Ints as i32,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    fn op(op: &str, input: &[&str], output: &str, attribute: Vec<pb::AttributeProto>) -> NodeProto {
        NodeProto {
            name: output.into(),
            op_type: op.into(),
            input: input.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..Default::default()
        }
    }

    /// x (1×4×6×6) → Conv a 3×3 → Relu → Conv b 1×1 → Conv c 1×1 → y, pseudo-random weights.
    fn three_convolutions() -> ModelProto {
        let mut st = 0x5eed_u64;
        let mut weights = |name: &str, dims: &[i64]| {
            let n = dims.iter().product::<i64>() as usize;
            let values = (0..n)
                .map(|_| {
                    st = st
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((st >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.8
                })
                .collect();
            TensorProto {
                name: name.into(),
                dims: dims.to_vec(),
                data_type: 1,
                float_data: values,
                ..Default::default()
            }
        };
        let initializer = vec![
            weights("wa", &[8, 4, 3, 3]),
            weights("wb", &[8, 8, 1, 1]),
            weights("wc", &[4, 8, 1, 1]),
        ];
        let node = vec![
            op("Conv", &["x", "wa"], "a", vec![ints("pads", &[1, 1, 1, 1])]),
            op("Relu", &["a"], "a_relu", vec![]),
            op("Conv", &["a_relu", "wb"], "b", vec![]),
            op("Conv", &["b", "wc"], "y", vec![]),
        ];
        let value = |name: &str| pb::ValueInfoProto {
            name: name.into(),
            ..Default::default()
        };
        ModelProto {
            graph: Some(pb::GraphProto {
                node,
                initializer,
                input: vec![value("x")],
                output: vec![value("y")],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Ranges fitting the values, but one far too wide: b's input, on a grid 100 times coarser
    /// than its values need.
    fn table(wide: &str) -> Calibration {
        let ranges: BTreeMap<String, [f32; 2]> = ["x", "a_relu", "b", "y"]
            .iter()
            .map(|t| {
                let r = if *t == wide { 400.0 } else { 4.0 };
                (t.to_string(), [-r, r])
            })
            .collect();
        Calibration {
            format: super::super::calibrated::FORMAT.into(),
            model: "three".into(),
            model_sha256: String::new(),
            method: "max".into(),
            images: 1,
            ranges,
            float_convolutions: BTreeSet::new(),
        }
    }

    fn inputs() -> Vec<Vec<f32>> {
        (0..2)
            .map(|k| {
                (0..4 * 36)
                    .map(|i| ((i * 7 + k * 13) % 17) as f32 / 8.0 - 1.0)
                    .collect()
            })
            .collect()
    }

    const IO: Io = Io {
        input_shape: &[1, 4, 6, 6],
        nchw: true,
        outputs: &["y"],
    };

    #[test]
    fn the_layer_reading_a_coarse_grid_costs_most_and_is_kept_float() {
        let costs = layer_costs(
            &three_convolutions(),
            &table("a_relu"),
            IO,
            &inputs(),
            &|_, _| {},
        )
        .unwrap();
        let order: Vec<&str> = costs.iter().map(|c| c.conv.as_str()).collect();
        assert_eq!(order[0], "b", "{costs:?}");
        assert_eq!(order.len(), 3);
        // Each layer's own error is real but small; b's is ruinous.
        assert!(costs[1].cost > 0.0 && costs[1].cost < 0.05, "{costs:?}");
        assert!(costs[0].cost > 10.0 * costs[1].cost, "{costs:?}");
        assert_eq!(costliest(&costs, 1), BTreeSet::from(["b".to_string()]));
    }

    /// The table's float convolutions stay float in the INT8 plan, and the network with b kept
    /// float computes the float network's outputs more closely than the all-INT8 one.
    #[test]
    fn a_convolution_kept_float_runs_in_float_between_int8_ones() {
        use super::super::plan::Step;
        let model = three_convolutions();
        let plan_of = |t: &Calibration| {
            let proto = quantize(model.clone(), t).unwrap();
            let q = qdq::conv_quantization(&proto).unwrap();
            compile_int8(
                &onnx::from_model(proto).unwrap(),
                IO.input_shape,
                true,
                IO.outputs,
                q,
            )
            .unwrap()
        };
        let all = table("a_relu");
        let mixed = Calibration {
            float_convolutions: BTreeSet::from(["b".to_string()]),
            ..all.clone()
        };
        let (all_plan, mixed_plan) = (plan_of(&all), plan_of(&mixed));
        fn kinds(p: &Plan) -> Vec<&str> {
            p.steps
                .iter()
                .filter_map(|s| match s {
                    Step::Conv(c) => Some(c.node.as_str()),
                    Step::QConv(q) => Some(if q.node == "b" { "int8 b" } else { "int8" }),
                    _ => None,
                })
                .collect()
        }
        assert_eq!(kinds(&all_plan), ["int8", "int8 b", "int8"]);
        assert_eq!(kinds(&mixed_plan), ["int8", "b", "int8"]);
        // a writes b's input in FP16 from its sums, its ReLU applied there: no 8-bit grid.
        let a = mixed_plan.steps.iter().find_map(|s| match s {
            Step::QConv(q) if q.node == "a" => Some(&q.spec),
            _ => None,
        });
        let a = a.unwrap();
        assert_eq!((a.output, a.act), (Output::Float, Act::Relu));
        let float = compile(
            &onnx::from_model(model.clone()).unwrap(),
            IO.input_shape,
            true,
            IO.outputs,
            Target {
                tensor_cores: false,
            },
        )
        .unwrap();
        let error = |p: &Plan| -> f64 {
            inputs()
                .iter()
                .map(|x| noise_to_signal(&reference::run(p, x), &reference::run(&float, x)))
                .sum()
        };
        let (e_all, e_mixed) = (error(&all_plan), error(&mixed_plan));
        assert!(
            e_mixed < e_all / 10.0,
            "mixed {e_mixed} vs all-INT8 {e_all}"
        );
    }

    /// An inverted residual's projection, quantized alone, still writes its grid into the
    /// residual Add: the INT8 kernels have no residual epilogue for a float output.
    #[test]
    fn a_convolution_before_a_residual_add_is_measured_alone_too() {
        let mut model = three_convolutions();
        let graph = model.graph.as_mut().unwrap();
        graph.initializer[1].dims = vec![8, 8, 1, 1];
        graph.node[3] = op("Add", &["b", "a_relu"], "sum", vec![]);
        graph.node.push(op("Conv", &["sum", "wc"], "y", vec![]));
        let mut t = table("none");
        t.ranges.insert("sum".into(), [-4.0, 4.0]);
        let costs = layer_costs(&model, &t, IO, &inputs(), &|_, _| {}).unwrap();
        assert_eq!(costs.len(), 3, "{costs:?}");
        assert!(
            costs.iter().all(|c| c.cost > 0.0 && c.cost < 0.05),
            "{costs:?}"
        );
    }

    #[test]
    fn a_table_naming_no_convolution_is_refused_with_what_to_do() {
        let t = Calibration {
            float_convolutions: BTreeSet::from(["a_relu".to_string()]),
            ..table("x")
        };
        let e = quantize(three_convolutions(), &t).unwrap_err().to_string();
        assert!(e.contains("a_relu") && e.contains("calibrate-int8"), "{e}");
    }

    #[test]
    fn noise_to_signal_is_the_mean_of_the_outputs_ratios() {
        let want = vec![vec![3.0, 4.0], vec![1.0]];
        assert_eq!(noise_to_signal(&want, &want), 0.0);
        // (0.5² / 25 + 0.5² / 1) / 2.
        let got = vec![vec![3.0, 4.5], vec![1.5]];
        let r = noise_to_signal(&got, &want);
        assert!((r - (0.25 / 25.0 + 0.25) / 2.0).abs() < 1e-12, "{r}");
    }
}
