//! Our own GPU inference engine: a model compiler ([`engine`]: ONNX import, lowering to NHWC
//! GPU steps, fusion, branch schedule; pure Rust, tested without a GPU) and its runtime on
//! NVIDIA's libraries ([`cuda`], cargo feature `cuda`: the lowered network, the GPU pre- and
//! post-processing plugins of `adas-plugins`, CUDA graphs, the plan cache). `adas-detect` wraps
//! the runtime as its `cuda` backend.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod engine;

use adas_plugins::Detection;
use std::path::PathBuf;

/// What the engine reports when a model cannot be compiled or run.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("preprocessing failed: {0}")]
    Preprocess(String),
    /// The GPU, its driver or libraries are missing or failed.
    #[error("{0}")]
    Backend(String),
}

/// One frame's result on a device's whole-frame path.
#[derive(Debug, Clone, PartialEq)]
pub enum FrameResult {
    /// Detections after NMS, normalised model-input coordinates.
    Kept(Vec<Detection>),
    /// More candidates above the score threshold than the device keeps between decode and NMS
    /// ([`adas_plugins::gpu::CANDIDATE_CAPACITY`]): which ones it kept depends on scheduling,
    /// so the frame must be decoded on the host, which keeps all of them.
    Overflowed { candidates: usize },
}

/// Device time of each stage of one frame batch (CUDA events), plus host wall time of the whole
/// stage-by-stage run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct GpuStageTimes {
    pub upload_ms: f64,
    pub preprocess_ms: f64,
    pub inference_ms: f64,
    pub decode_nms_ms: f64,
    pub download_ms: f64,
    pub eager_wall_ms: f64,
}

/// Activation precision of the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Fp32,
    /// FP16 activations and weights on tensor cores, FP32 accumulation.
    #[default]
    Fp16,
    /// INT8 convolutions on tensor cores with the model's own quantization (a QDQ model), FP16
    /// between the layers that stay float.
    Int8,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Int8 => "int8",
        }
    }

    /// Whether the float parts of the network run in FP16 (INT8 keeps its float steps in FP16).
    pub fn half(self) -> bool {
        self != Precision::Fp32
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Precision, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "fp16" => Ok(Precision::Fp16),
            "int8" => Ok(Precision::Int8),
            other => Err(format!("unknown precision `{other}`: fp32, fp16 or int8")),
        }
    }
}

/// Streams the cuda engine runs independent branches of a network on unless configured
/// (`detector.cuda.streams`): SSDLite's box predictors and NanoDet's heads need no more than four
/// to run beside the backbone.
pub const DEFAULT_CUDA_STREAMS: usize = 4;
