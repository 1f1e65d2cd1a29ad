//! The GPU engine's model compiler: ONNX import with constant folding ([`onnx`]) and lowering to
//! NHWC GPU steps with fusion ([`plan`], [`resize_add`]), concats written in place ([`in_place`]),
//! expansions fused into depthwise convolutions ([`expand_dw`]) and the independent branches
//! ([`branches`]); the INT8 convolutions' integer arithmetic ([`int8`]) and a QDQ model's
//! quantization for them ([`qdq`]) — a float model's made from its calibration ([`calibrated`]) — and
//! the INT8 plan built with it ([`quantized`]). [`compile`] runs lowering and the passes in their one order.
//! Pure Rust, tested without a GPU; the runtime ([`crate::cuda`]) executes the plan.

pub mod branches;
pub mod calibrated;
pub mod expand_dw;
pub mod in_place;
pub mod int8;
pub mod onnx;
pub mod plan;
pub mod qdq;
pub mod quantized;
pub mod reference;
pub mod resize_add;
pub mod sensitivity;

use onnx::OnnxGraph;
use plan::{Plan, PlanError};

/// What a plan is compiled for: which passes pay off depends on it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// FP16 on tensor cores (compute capability 8.0 or newer), where the engine's own kernels
    /// beat cuDNN.
    pub tensor_cores: bool,
}

/// ONNX graph → the plan the runtime executes: lowering, then the optimisation passes, in this
/// one order.
pub fn compile(
    graph: &OnnxGraph,
    input_shape: &[usize],
    input_nchw: bool,
    outputs: &[&str],
    target: Target,
) -> Result<Plan, PlanError> {
    let mut plan = plan::lower(graph, input_shape, input_nchw, outputs)?;
    // The pyramid's adds into the resizes that feed them: the laterals no longer wait for the
    // top-down path.
    resize_add::fuse(&mut plan);
    if target.tensor_cores {
        // Concats written in place force their producers onto the own kernels, which only beat
        // cuDNN where they run on tensor cores.
        in_place::write_concats_in_place(&mut plan);
        // MobileNetV2's expansion + depthwise as one kernel, on tensor cores too.
        expand_dw::fuse(&mut plan);
    }
    Ok(plan)
}

/// A QDQ model's ONNX graph → its INT8 plan: lowering, then every convolution onto the INT8
/// kernels with `convs`, the model's quantization ([`qdq::conv_quantization`]). The FP16 passes
/// that fuse or re-place convolutions do not run (the INT8 kernels have no fused variants yet).
pub fn compile_int8(
    graph: &OnnxGraph,
    input_shape: &[usize],
    input_nchw: bool,
    outputs: &[&str],
    convs: Vec<qdq::ConvQuant>,
) -> Result<Plan, PlanError> {
    let mut plan = plan::lower(graph, input_shape, input_nchw, outputs)?;
    resize_add::fuse(&mut plan);
    quantized::apply(&mut plan, convs)?;
    Ok(plan)
}
