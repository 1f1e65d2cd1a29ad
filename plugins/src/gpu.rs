//! GPU twins of the CPU plugins: the CUDA C sources of preprocessing and decode + NMS (compiled
//! at run time by NVRTC in the daemon's `cuda` backend) and their launch parameters, derived from
//! the same manifest as the CPU code. This crate stays free of CUDA: it describes what to launch;
//! `firmware-service/gpu/src/cuda` launches it.
//!
//! Every kernel has a CPU twin ([`crate::preprocess`], [`crate::decode`], [`crate::nms`]) and a
//! parity test on the GPU test machine (`tests/gpu/run.sh`).

use crate::anchors;
use crate::manifest::{
    Activation, BoxEncoding, ColourOrder, HeadSpec, InputSpec, Manifest, NmsMode, Sampling,
};
use crate::preprocess::{InputTransform, PreprocessError};

/// Prelude of every source: activation type `T` (FP32 or FP16 by `ADAS_HALF`), loads/stores,
/// activation codes.
pub const COMMON: &str = include_str!("../cuda/common.cuh");
/// `preprocess`: RGB8 frames → normalised NHWC model input.
pub const PREPROCESS: &str = include_str!("../cuda/preprocess.cu");
/// `clear_counts`, `ssd_decode`, `gfl_decode`, `nms`.
pub const POSTPROCESS: &str = include_str!("../cuda/postprocess.cu");

/// Candidates kept per image between decode and NMS (32 bytes each). More candidates than this
/// are counted as overflow and reported; the shipped models at their default thresholds produce
/// a few hundred at most.
pub const CANDIDATE_CAPACITY: usize = 16384;
/// Size of one candidate record (`struct Cand` in postprocess.cu).
pub const CANDIDATE_BYTES: usize = 32;

/// Element-wise activation codes (`ACT_*` in common.cuh).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Act {
    None,
    Relu,
    /// `min(max(x, lo), hi)` (ONNX Clip, e.g. ReLU6).
    Clip(f32, f32),
    /// `x < 0 ? alpha·x : x`.
    Leaky(f32),
    Sigmoid,
}

impl Act {
    /// (code, a, b) as the kernels take them.
    pub fn code(self) -> (i32, f32, f32) {
        match self {
            Act::None => (0, 0.0, 0.0),
            Act::Relu => (1, 0.0, 0.0),
            Act::Clip(lo, hi) => (2, lo, hi),
            Act::Leaky(alpha) => (3, alpha, 0.0),
            Act::Sigmoid => (4, 0.0, 0.0),
        }
    }

    /// The activation of `x`: the CPU twin of the kernels' `activate` (common.cuh).
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Clip(lo, hi) => x.max(lo).min(hi),
            Act::Leaky(alpha) => {
                if x >= 0.0 {
                    x
                } else {
                    x * alpha
                }
            }
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }
}

/// Score activation code (`SCORE_*` in postprocess.cu).
pub fn score_code(a: Activation) -> i32 {
    match a {
        Activation::None => 0,
        Activation::Sigmoid => 1,
        Activation::Softmax => 2,
    }
}

/// Arguments of the `preprocess` kernel for one frame size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreprocessParams {
    pub width: i32,
    pub height: i32,
    pub model_width: i32,
    pub model_height: i32,
    /// Size and offset of the resized image inside the model input (letterbox).
    pub resized_width: i32,
    pub resized_height: i32,
    pub offset_x: i32,
    pub offset_y: i32,
    /// Source pixels per destination pixel.
    pub scale_x: f32,
    pub scale_y: f32,
    pub asymmetric: i32,
    pub swap_rb: i32,
    /// value · mul + add per model channel; `pad` is the normalised padding value.
    pub mul: [f32; 3],
    pub add: [f32; 3],
    pub pad: [f32; 3],
}

/// The `preprocess` kernel's arguments and the box transform for a `width`×`height` frame: the
/// same placement and normalisation as [`crate::preprocess::preprocess_into`].
pub fn preprocess_params(
    width: usize,
    height: usize,
    spec: &InputSpec,
) -> Result<(PreprocessParams, InputTransform), PreprocessError> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage { width, height });
    }
    let (mw, mh) = spec.size();
    let (rw, rh, ox, oy) = crate::preprocess::placement(width, height, spec);
    let int = |v: usize| i32::try_from(v).unwrap_or(i32::MAX);
    let params = PreprocessParams {
        width: int(width),
        height: int(height),
        model_width: int(mw),
        model_height: int(mh),
        resized_width: int(rw),
        resized_height: int(rh),
        offset_x: int(ox),
        offset_y: int(oy),
        scale_x: width as f32 / rw as f32,
        scale_y: height as f32 / rh as f32,
        asymmetric: i32::from(spec.sampling == Sampling::Asymmetric),
        swap_rb: i32::from(spec.colour == ColourOrder::Bgr),
        mul: std::array::from_fn(|c| 1.0 / spec.std[c]),
        add: std::array::from_fn(|c| -spec.mean[c] / spec.std[c]),
        pad: std::array::from_fn(|c| (spec.pad_value - spec.mean[c]) / spec.std[c]),
    };
    let transform = crate::preprocess::transform(width, height, spec);
    Ok((params, transform))
}

/// One GFL level as `gfl_decode` takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GflLevelParams {
    pub stride: f32,
    pub grid_w: usize,
    pub cells: usize,
    /// Cells of all previous levels (the CPU decoder's output order).
    pub cell_base: usize,
}

/// What the decode kernels need to know about a model's head.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuHead {
    Ssd {
        /// (cy, cx, h, w) per anchor, normalised.
        anchors: Vec<[f32; 4]>,
        columns: usize,
        first_label: usize,
        activation: Activation,
        scales: [f32; 4],
        xywh: bool,
        /// Only each anchor's best class is a candidate (`nms = "best-class"`).
        best_class: bool,
    },
    Gfl {
        levels: Vec<GflLevelParams>,
        classes: usize,
        bins: usize,
        cell_offset: f32,
        activation: Activation,
        input_width: f32,
        input_height: f32,
    },
}

impl GpuHead {
    /// The head of `manifest` for the GPU decoders; an error names heads without a GPU twin.
    pub fn new(manifest: &Manifest) -> Result<GpuHead, String> {
        let (w, h) = manifest.input.size();
        let labels = manifest.labels.len();
        match &manifest.head {
            HeadSpec::Ssd(head) => {
                let anchors = anchors::generate(&head.anchors, w, h).map_err(|e| e.to_string())?;
                let first_label = usize::from(head.background_class);
                Ok(GpuHead::Ssd {
                    anchors: anchors.iter().map(|a| [a.cy, a.cx, a.h, a.w]).collect(),
                    columns: labels + first_label,
                    first_label,
                    activation: head.score_activation,
                    scales: head.box_coder_scales,
                    xywh: head.box_encoding == BoxEncoding::Xywh,
                    best_class: manifest.nms == NmsMode::BestClass,
                })
            }
            HeadSpec::Gfl(head) => {
                let mut cell_base = 0;
                let mut levels = Vec::new();
                for l in &head.levels {
                    if l.stride == 0 {
                        return Err("GFL level stride must be > 0".into());
                    }
                    let (gw, gh) = (w.div_ceil(l.stride), h.div_ceil(l.stride));
                    levels.push(GflLevelParams {
                        stride: l.stride as f32,
                        grid_w: gw,
                        cells: gw * gh,
                        cell_base,
                    });
                    cell_base += gw * gh;
                }
                Ok(GpuHead::Gfl {
                    levels,
                    classes: labels,
                    bins: head.reg_max + 1,
                    cell_offset: head.cell_offset,
                    activation: head.score_activation,
                    input_width: w as f32,
                    input_height: h as f32,
                })
            }
            HeadSpec::Decoded(_) => Err(
                "the `decoded` head (boxes decoded inside the graph) has no GPU decoder; \
                 use the tract or ort backend for this model"
                    .into(),
            ),
        }
    }
}

/// Floats per image in the `nms` kernel's output: kept count, overflow count, then
/// `max_det` × (x1, y1, x2, y2, score, label).
pub fn nms_output_len(max_det: usize) -> usize {
    2 + 6 * max_det
}
