//! The lowered network on the GPU: device buffers, weights (FP32 or FP16), one cuDNN
//! convolution per Conv step with its measured algorithm, and `enqueue`, which puts every step on
//! the stream — eagerly, or while a CUDA graph is being captured.

use super::device::{gpu_error, Arg, DevPtr, Gpu};
use super::int8::{launch_quantize, launch_requantize, DeviceQConv};
use crate::engine::branches::{self, Schedule};
use crate::engine::expand_dw;
use crate::engine::plan::{ConvStep, Coord, Plan, Step};
use crate::GpuError;
use cudarc::cudnn::{result as dnn, sys};
use cudarc::driver::{CudaEvent, CudaSlice, CudaStream, DeviceRepr};
use std::sync::Arc;

/// Algorithm and workspace of one convolution, as measured by cuDNN (kept in the plan cache).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvChoice {
    pub algo: u32,
    pub workspace: usize,
    pub time_ms: f32,
}

/// How a step with fused convolutions ([`crate::engine::expand_dw`]) runs, as
/// measured (kept in the plan cache): on one fused kernel, or apart.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FusionChoice {
    pub fused: bool,
    /// None where the GPU cannot launch the fused kernel.
    pub fused_ms: Option<f32>,
    pub apart_ms: f32,
}

/// What the engine build measured: the plan cache's content.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Choices {
    /// Per measured convolution, in step order: every one with groups = 1, including the
    /// expansions and projections fused into depthwise steps (see `measured`).
    pub convs: Vec<ConvChoice>,
    /// Per step with a fused expansion, in step order: one `conv_expand_dw_s*` launch, or the
    /// expansion on its measured algorithm, then `dwconv_nhwc`.
    #[serde(default)]
    pub expand_dw: Vec<FusionChoice>,
    /// Per step with a fused projection, in step order: one `conv_inverted_residual_*` launch,
    /// or the expansion and depthwise convolution as `expand_dw` says, then the projection on
    /// its measured algorithm.
    #[serde(default)]
    pub inverted: Vec<FusionChoice>,
}

/// Up to 6 axes for the permute kernel (`Dims6` in kernels.cu).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Dims6([i64; 6]);
// SAFETY: plain old data with the kernel's layout.
unsafe impl DeviceRepr for Dims6 {}

struct Descriptors {
    x: sys::cudnnTensorDescriptor_t,
    w: sys::cudnnFilterDescriptor_t,
    conv: sys::cudnnConvolutionDescriptor_t,
    y: sys::cudnnTensorDescriptor_t,
}

impl Drop for Descriptors {
    fn drop(&mut self) {
        // SAFETY: created by `conv_descriptors` and destroyed once, here.
        unsafe {
            let _ = dnn::destroy_tensor_descriptor(self.x);
            let _ = dnn::destroy_filter_descriptor(self.w);
            let _ = dnn::destroy_convolution_descriptor(self.conv);
            let _ = dnn::destroy_tensor_descriptor(self.y);
        }
    }
}

struct Handle(sys::cudnnHandle_t);
impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: created by `Handle::on`, destroyed once.
        unsafe {
            let _ = dnn::destroy_handle(self.0);
        }
    }
}

impl Handle {
    /// A cuDNN handle whose work goes to `stream`.
    fn on(stream: &CudaStream) -> Result<Handle, GpuError> {
        let handle = Handle(dnn::create_handle().map_err(|e| dnn_error("handle", e))?);
        // SAFETY: the handle is valid; its owner keeps the stream alive longer (`Lane`'s field
        // order; the search handle of `Network::build` becomes lane 0's).
        unsafe { dnn::set_stream(handle.0, stream.cu_stream() as *mut _) }
            .map_err(|e| dnn_error("set stream", e))?;
        Ok(handle)
    }
}

/// A stream the network's steps run on, with what its convolutions use privately: cuDNN handle,
/// cuDNN workspace, split-K partial sums. Lane 0 is the frame's stream.
struct Lane {
    handle: Handle,
    workspace: (CudaSlice<u8>, DevPtr, usize),
    partials: (CudaSlice<u8>, DevPtr),
    stream: Arc<CudaStream>,
}

impl Lane {
    fn new(
        gpu: &Gpu,
        stream: Arc<CudaStream>,
        handle: Handle,
        workspace: usize,
        partials: usize,
    ) -> Result<Lane, GpuError> {
        let (slice, ptr) = gpu.alloc(workspace)?;
        Ok(Lane {
            handle,
            workspace: (slice, ptr, workspace),
            partials: gpu.alloc(partials)?,
            stream,
        })
    }
}

pub struct Network {
    pub plan: Plan,
    half: bool,
    buffers: Vec<(CudaSlice<u8>, DevPtr)>,
    weights: Vec<(CudaSlice<u8>, DevPtr)>,
    /// Per step: the cuDNN descriptors of its measured convolutions (`measured`; None where
    /// not dense).
    convs: Vec<Vec<Option<Descriptors>>>,
    /// Per step: the index of its first measured convolution in `choices.convs` (the others
    /// follow it).
    choice_of: Vec<Option<usize>>,
    /// Per step: its index in `choices.expand_dw` (steps with a fused expansion).
    expand_of: Vec<Option<usize>>,
    /// Per step: its index in `choices.inverted` (steps with a fused projection).
    inverted_of: Vec<Option<usize>>,
    pub choices: Choices,
    /// Enqueue order, lanes and waits of the steps (`engine::branches`).
    schedule: Schedule,
    lanes: Vec<Lane>,
    /// Per step: the INT8 convolution's constants on the GPU ([`Step::QConv`]).
    qconvs: Vec<Option<DeviceQConv>>,
}

// SAFETY: the cuDNN handle and descriptors are only used from the thread that currently owns
// the Network (it is moved between threads, never shared).
unsafe impl Send for Network {}

fn dnn_error(what: &str, e: impl std::fmt::Debug) -> GpuError {
    GpuError::Backend(format!("cuda: cuDNN {what}: {e:?}"))
}

/// One of the engine's own convolution kernels (kernels.cu), all with `conv_args`' parameters.
pub struct OwnConv {
    /// `ConvChoice::algo` in the plan cache (cuDNN's algorithms are 0…7).
    pub algo: u32,
    pub kernel: &'static str,
    /// Output pixels × output channels per block.
    tile: (usize, usize),
    threads: u32,
    /// Width of a tensor-core kernel's reduction slices (`KC` in kernels.cu; these kernels need
    /// FP16 and `mma.sync`, compute capability 8.0 or newer); 0 for the FP32 kernels.
    slice: usize,
    /// Blocks the reduction is split between (split-K; > 1 adds a `conv_split_sum` launch,
    /// unless `cluster`).
    pub splits: usize,
    /// The `splits` blocks of a tile are one thread-block cluster and add their partial sums
    /// in distributed shared memory (compute capability 9.0 or newer: Hopper, Thor).
    pub cluster: bool,
}

const fn own(
    algo: u32,
    kernel: &'static str,
    tile: usize,
    threads: u32,
    slice: usize,
    splits: usize,
) -> OwnConv {
    OwnConv {
        algo,
        kernel,
        tile: (tile, tile),
        threads,
        slice,
        splits,
        cluster: false,
    }
}

/// `o` with its split-K blocks forming a cluster of `splits`.
const fn clustered(o: OwnConv) -> OwnConv {
    OwnConv { cluster: true, ..o }
}

pub const OWN_CONVS: [OwnConv; 21] = [
    own(1000, "conv_igemm", 64, 256, 0, 1),
    own(1001, "conv_igemm16", 16, 256, 0, 1),
    own(1002, "conv_mma_split", 32, 128, 64, 1),
    own(1003, "conv_mma_wide", 64, 128, 64, 1),
    own(1004, "conv_mma_split", 32, 128, 64, 4),
    own(1005, "conv_mma_split", 32, 128, 64, 16),
    own(1006, "conv_mma_wide", 64, 128, 64, 4),
    own(1007, "conv_mma_wide", 64, 128, 64, 16),
    own(1008, "conv_mma_wide32", 64, 128, 32, 1),
    own(1009, "conv_mma_split8", 32, 256, 128, 1),
    own(1010, "conv_mma_split8", 32, 256, 128, 4),
    own(1011, "conv_mma_split16", 32, 512, 256, 1),
    own(1012, "conv_mma_split16", 32, 512, 256, 4),
    clustered(own(1013, "conv_mma_split_c4", 32, 128, 64, 4)),
    clustered(own(1014, "conv_mma_split_c8", 32, 128, 64, 8)),
    clustered(own(1015, "conv_mma_split8_c4", 32, 256, 128, 4)),
    clustered(own(1016, "conv_mma_split8_c8", 32, 256, 128, 8)),
    clustered(own(1017, "conv_mma_split16_c4", 32, 512, 256, 4)),
    clustered(own(1018, "conv_mma_split16_c8", 32, 512, 256, 8)),
    clustered(own(1019, "conv_mma_wide_c4", 64, 128, 64, 4)),
    clustered(own(1020, "conv_mma_wide_c8", 64, 128, 64, 8)),
];

impl OwnConv {
    fn tensor_cores(&self) -> bool {
        self.slice > 0
    }

    /// Blocks per thread-block cluster (1: not a cluster kernel).
    fn cluster_size(&self) -> u32 {
        if self.cluster {
            self.splits as u32
        } else {
            1
        }
    }

    /// Whether the split-K partial sums go through global memory to a `conv_split_sum` launch
    /// (a cluster kernel adds them in distributed shared memory instead).
    fn sums_in_memory(&self) -> bool {
        self.splits > 1 && !self.cluster
    }

    /// Dynamic shared memory of a tensor-core kernel, bytes: `MmaShape::BYTES` in kernels.cu
    /// (which traps when launched with less) — two FP16 slices of A and B, or the warps' FP32
    /// partial sums, whichever is larger.
    pub fn shared_bytes(&self) -> u32 {
        if !self.tensor_cores() {
            return 0;
        }
        let (bm, bn) = self.tile;
        let warps = self.threads as usize / 32;
        let split = warps / ((bm / 32) * (bn / 32));
        let tiles = 2 * (bm + bn) * (self.slice + 8) * 2;
        let sums = split * bm * (bn + 1) * 4;
        tiles.max(sums) as u32
    }
}

/// Split-K partial sums are FP32 per split, pixel and channel; beyond this a layer is large
/// enough to fill the GPU without splitting, and split-K is not tried.
const MAX_PARTIALS_BYTES: usize = 16 << 20;

fn partials_bytes(own: &OwnConv, c: &ConvStep) -> usize {
    if own.sums_in_memory() {
        own.splits * c.n * c.oh * c.ow * c.k * 4
    } else {
        0
    }
}

/// The tensor-core kernels' names, loaded only for FP16 (they do not exist in the FP32 build);
/// the cluster ones only with `clusters` (compiled for compute capability 9.0 or newer only).
pub fn tensor_core_kernels(clusters: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = OWN_CONVS
        .iter()
        .filter(|o| o.tensor_cores() && (clusters || !o.cluster))
        .map(|o| o.kernel)
        .collect();
    names.sort_unstable();
    names.dedup();
    names.extend(["conv_split_sum", "conv_expand_dw_s1", "conv_expand_dw_s2"]);
    if clusters {
        names.extend(INVERTED_KERNELS.iter().flatten());
    }
    names
}

/// The convolutions of a Conv step whose algorithms are measured, in the order they run: the
/// step itself (groups = 1) or the expansion fused into it, then a fused projection. A
/// depthwise convolution always runs on `dwconv_nhwc` (or inside a fused kernel).
fn measured(c: &ConvStep) -> Vec<&ConvStep> {
    c.chain().filter(|m| !m.is_depthwise()).collect()
}

/// The fused expansion + depthwise kernels (kernels.cu, `ExpandShape`): 256 threads make a
/// 4 × TW tile of output pixels for 48 expanded channels.
const EXPAND_CHANNELS: usize = 48;
const EXPAND_THREADS: u32 = 256;

/// Kernel name and output tile (rows, columns) of the fused kernel for a depthwise stride.
fn expand_dw_kernel(stride: usize) -> (&'static str, usize, usize) {
    if stride == 1 {
        ("conv_expand_dw_s1", 4, 8)
    } else {
        ("conv_expand_dw_s2", 4, 4)
    }
}

/// Dynamic shared memory of the fused kernel, bytes (`ExpandShape::bytes`, which traps when
/// launched with less): the staged halo pixels and the expansion weights (pitch: `c` rounded up
/// to 16, + 8), the expanded tile, the depthwise weights as floats.
fn expand_dw_bytes(stride: usize, c: usize) -> u32 {
    let (_, th, tw) = expand_dw_kernel(stride);
    let halo = ((th - 1) * stride + 3) * ((tw - 1) * stride + 3);
    let rows = halo.div_ceil(16) * 16;
    let pitch = c.div_ceil(16) * 16 + 8;
    ((rows + EXPAND_CHANNELS) * pitch * 2
        + rows * (EXPAND_CHANNELS + 8) * 2
        + EXPAND_CHANNELS * 9 * 4) as u32
}

/// The whole inverted residual kernels (kernels.cu, `InvertedShape`): `[stride 1, stride 2]` ×
/// clusters of 2, 4 and 8 blocks.
const INVERTED_KERNELS: [[&str; 3]; 2] = [
    [
        "conv_inverted_residual_s1_c2",
        "conv_inverted_residual_s1_c4",
        "conv_inverted_residual_s1_c8",
    ],
    [
        "conv_inverted_residual_s2_c2",
        "conv_inverted_residual_s2_c4",
        "conv_inverted_residual_s2_c8",
    ],
];

/// Kernel and cluster size of the whole inverted residual for a depthwise stride and expanded
/// width `e`: the smallest cluster that takes all its 48-channel chunks at once (each block one),
/// else 8 (each block every 8th chunk).
fn inverted_kernel(stride: usize, e: usize) -> (&'static str, u32) {
    let chunks = e.div_ceil(EXPAND_CHANNELS);
    let (index, cluster) = match chunks {
        0..=2 => (0, 2),
        3..=4 => (1, 4),
        _ => (2, 8),
    };
    (INVERTED_KERNELS[usize::from(stride != 1)][index], cluster)
}

/// Dynamic shared memory of the whole inverted residual kernel, bytes (`InvertedShape::bytes`,
/// which traps when launched with less): the fused expansion + depthwise kernel's, then the
/// tile's depthwise output and the chunk's projection weights (FP16, 48 + 8 per row), and the
/// block's projection sums (FP32, output channels rounded up to 8).
fn inverted_residual_bytes(stride: usize, c: usize, k: usize) -> u32 {
    let (_, th, tw) = expand_dw_kernel(stride);
    let (pixels, channels, pitch) = (th * tw, k.div_ceil(8) * 8, EXPAND_CHANNELS + 8);
    expand_dw_bytes(stride, c) + ((pixels + channels) * pitch * 2 + pixels * channels * 4) as u32
}

fn own_conv(algo: u32) -> Option<&'static OwnConv> {
    OWN_CONVS.iter().find(|o| o.algo == algo)
}

fn algo_from(v: u32) -> Option<sys::cudnnConvolutionFwdAlgo_t> {
    use sys::cudnnConvolutionFwdAlgo_t::*;
    [
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
        CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,
        CUDNN_CONVOLUTION_FWD_ALGO_FFT,
        CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,
        CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
        CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
    ]
    .get(v as usize)
    .copied()
}

fn i(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Workspace offered to the algorithm search (bigger only helps FFT-style algorithms).
const SEARCH_WORKSPACE: usize = 256 << 20;

impl Network {
    /// Uploads the plan; `cached` algorithm choices are used as they are, otherwise every
    /// convolution's algorithm is measured (cudnnFind) and only deterministic ones are taken —
    /// replays must be bit-exact. `tensor_cores`: the FP16 mma kernels may be used. Independent
    /// branches run on up to `streams` streams (1: every step in order on the frame's stream).
    pub fn build(
        gpu: &Gpu,
        plan: Plan,
        half: bool,
        tensor_cores: bool,
        cached: Option<&Choices>,
        streams: usize,
    ) -> Result<Network, GpuError> {
        // Which own kernels this GPU and precision can launch: asked once, not per layer.
        let launchable: Vec<u32> = OWN_CONVS
            .iter()
            .filter(|o| {
                (tensor_cores || !o.tensor_cores())
                    && gpu.fits(o.kernel, o.threads, o.shared_bytes(), o.cluster_size())
            })
            .map(|o| o.algo)
            .collect();
        let usable = |algo: u32| match own_conv(algo) {
            Some(o) => launchable.contains(&o.algo),
            None => algo_from(algo).is_some(),
        };
        // The fused kernels, with room for the longest expansion the plan fuses.
        let expand_launchable = tensor_cores
            && [1, 2].iter().all(|&stride| {
                let bytes = expand_dw_bytes(stride, expand_dw::MAX_EXPAND_INPUT);
                gpu.fits(expand_dw_kernel(stride).0, EXPAND_THREADS, bytes, 1)
            });
        let elem: usize = if half { 2 } else { 4 };
        let buffers = plan
            .buffers
            .iter()
            .map(|&n| gpu.alloc(n * elem))
            .collect::<Result<Vec<_>, _>>()?;
        // Conv weights in the activation type; biases and affine parameters stay FP32.
        let mut conv_weight = vec![false; plan.weights.len()];
        for s in &plan.steps {
            if let Step::Conv(c) = s {
                for c in c.chain() {
                    conv_weight[c.weight] = true;
                }
            }
        }
        let mut weights = Vec::with_capacity(plan.weights.len());
        for (w, &is_conv) in plan.weights.iter().zip(&conv_weight) {
            if is_conv && half {
                let bits: Vec<u16> = w
                    .iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect();
                let b = gpu.alloc(bits.len() * 2)?;
                gpu.upload(b.1, &bits)?;
                weights.push(b);
            } else {
                let b = gpu.alloc(w.len() * 4)?;
                gpu.upload(b.1, w)?;
                weights.push(b);
            }
        }
        let handle = Handle::on(&gpu.stream)?;
        // The engine's kernels index with 32 bits.
        if let Some(&largest) = plan.buffers.iter().max() {
            if largest > i32::MAX as usize {
                return Err(GpuError::Backend(format!(
                    "cuda: a tensor of {largest} values at batch {} is beyond the engine's 32-bit indexing: use a smaller batch",
                    plan.input_shape.first().copied().unwrap_or(1)
                )));
            }
        }
        let mut convs = Vec::with_capacity(plan.steps.len());
        for s in &plan.steps {
            let mut descriptors = Vec::new();
            if let Step::Conv(c) = s {
                for m in measured(c) {
                    descriptors.push(match m.is_dense() {
                        true => Some(conv_descriptors(m, half)?),
                        false => None,
                    });
                }
            }
            convs.push(descriptors);
        }
        // Per step: its index among the measured convolutions (of its first), the fused
        // expansions and the fused projections.
        let count = |size: &dyn Fn(&ConvStep) -> usize| {
            let mut n = 0;
            let of: Vec<Option<usize>> = plan
                .steps
                .iter()
                .map(|s| match s {
                    Step::Conv(c) if size(c) > 0 => {
                        n += size(c);
                        Some(n - size(c))
                    }
                    _ => None,
                })
                .collect();
            (of, n)
        };
        let (choice_of, n_convs) = count(&|c| measured(c).len());
        let (expand_of, n_expand) = count(&|c| usize::from(c.expand.is_some()));
        let (inverted_of, n_inverted) = count(&|c| usize::from(c.project.is_some()));
        // Per fused projection: whether this GPU can launch its whole-block kernel (clusters,
        // and the shared memory its widths need).
        let inverted_launchable: Vec<bool> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::Conv(c) => c.expand.as_ref().zip(c.project.as_ref()).map(|(e, p)| {
                    let (kernel, cluster) = inverted_kernel(c.stride[0], c.c);
                    let bytes = inverted_residual_bytes(c.stride[0], e.c, p.k);
                    tensor_cores && gpu.fits(kernel, EXPAND_THREADS, bytes, cluster)
                }),
                _ => None,
            })
            .collect();
        let cache_fits = |c: &Choices| {
            c.convs.len() == n_convs
                && c.convs.iter().all(|c| usable(c.algo))
                && c.expand_dw.len() == n_expand
                && (expand_launchable || c.expand_dw.iter().all(|e| !e.fused))
                && c.inverted.len() == n_inverted
                && c.inverted
                    .iter()
                    .zip(&inverted_launchable)
                    .all(|(f, &ok)| ok || !f.fused)
        };
        let choices = match cached {
            Some(c) if cache_fits(c) => c.clone(),
            _ => {
                gpu.sync()?;
                let search = gpu.alloc(SEARCH_WORKSPACE)?;
                let search_partials = gpu.alloc(MAX_PARTIALS_BYTES)?;
                let io_of = |c: &ConvStep| conv_io(c, elem, &|b| buffers[b].1, &|w| weights[w].1);
                let on = ConvLane {
                    gpu,
                    stream: &gpu.stream,
                    handle: handle.0,
                };
                let mut out = Choices::default();
                for (step, descriptors) in plan.steps.iter().zip(&convs) {
                    let Step::Conv(step) = step else { continue };
                    let measured = measured(step);
                    let mut chosen = Vec::with_capacity(measured.len());
                    for (c, d) in measured.iter().zip(descriptors) {
                        let io = io_of(c);
                        let run = |algo: u32, workspace: usize| {
                            let scratch = Scratch {
                                workspace: (search.1, workspace),
                                partials: search_partials.1,
                            };
                            launch_conv(on, d.as_ref(), algo, scratch, c, io)
                        };
                        // cuDNN's best (dense layers only) against our own kernels, each timed
                        // the same way with its epilogue (cuDNN's own figure leaves the epilogue
                        // out); keep the fastest.
                        let mut choice = ConvChoice {
                            algo: u32::MAX,
                            workspace: 0,
                            time_ms: f32::INFINITY,
                        };
                        if let Some(d) = d {
                            let best = find(handle.0, d, io.0, io.2, io.1, search.1, &c.node)?;
                            choice = ConvChoice {
                                time_ms: time_layer(gpu, || run(best.algo, best.workspace))?,
                                ..best
                            };
                        }
                        let candidates = OWN_CONVS.iter().filter(|o| {
                            usable(o.algo) && partials_bytes(o, c) <= MAX_PARTIALS_BYTES
                        });
                        for own in candidates {
                            let t = time_layer(gpu, || run(own.algo, 0))?;
                            if t < choice.time_ms {
                                choice = ConvChoice {
                                    algo: own.algo,
                                    workspace: 0,
                                    time_ms: t,
                                };
                            }
                        }
                        out.convs.push(choice);
                        chosen.push(choice);
                    }
                    let Some(e) = &step.expand else { continue };
                    // Each measured convolution of the step on its chosen algorithm.
                    let conv = |k: usize, c: &ConvStep| {
                        let (Some(choice), Some(d)) = (chosen.get(k), descriptors.get(k)) else {
                            return Err(GpuError::Backend(format!(
                                "cuda: {} has no measured algorithm",
                                c.node
                            )));
                        };
                        let scratch = Scratch {
                            workspace: (search.1, choice.workspace),
                            partials: search_partials.1,
                        };
                        launch_conv(on, d.as_ref(), choice.algo, scratch, c, io_of(c))
                    };
                    let as_chosen = |fused: (bool, bool)| {
                        launch_conv_step(gpu, &gpu.stream, step, fused, &io_of, &conv)
                    };
                    // The expansion and depthwise pair apart (the depthwise kernel waits for
                    // the expansion) against the fused kernel; with a fused projection, that
                    // pair as chosen followed by the projection against the whole-block kernel.
                    let apart = time_layer(gpu, || {
                        conv(0, e)?;
                        launch_depthwise(gpu, &gpu.stream, step, &io_of(step))
                    })?;
                    let fused = if expand_launchable {
                        Some(time_layer(gpu, || {
                            launch_expand_dw(gpu, &gpu.stream, step, e, io_of(e), io_of(step))
                        })?)
                    } else {
                        None
                    };
                    let expand_dw = FusionChoice {
                        fused: fused.is_some_and(|f| f < apart),
                        fused_ms: fused,
                        apart_ms: apart,
                    };
                    out.expand_dw.push(expand_dw);
                    if step.project.is_none() {
                        continue;
                    }
                    let apart = time_layer(gpu, || as_chosen((expand_dw.fused, false)))?;
                    let fused = if inverted_launchable.get(out.inverted.len()) == Some(&true) {
                        Some(time_layer(gpu, || as_chosen((true, true)))?)
                    } else {
                        None
                    };
                    out.inverted.push(FusionChoice {
                        fused: fused.is_some_and(|f| f < apart),
                        fused_ms: fused,
                        apart_ms: apart,
                    });
                }
                out
            }
        };
        let on_own = |o: &OwnConv| choices.convs.iter().filter(|c| c.algo == o.algo).count();
        let own_counts: Vec<String> = OWN_CONVS
            .iter()
            .filter(|o| on_own(o) > 0)
            .map(|o| format!("{} {} (split-K {})", on_own(o), o.kernel, o.splits))
            .collect();
        // Measured time of every convolution step (a fused step's as it runs, depthwise part
        // included; plain depthwise steps are not measured).
        let best = |f: &FusionChoice| f.fused_ms.map_or(f.apart_ms, |t| t.min(f.apart_ms));
        let measured_ms: f32 = (0..plan.steps.len())
            .map(|i| {
                let fusion = |of: &[Option<usize>], list: &[FusionChoice]| {
                    of[i].and_then(|k| list.get(k)).map(best)
                };
                fusion(&inverted_of, &choices.inverted)
                    .or_else(|| fusion(&expand_of, &choices.expand_dw))
                    .or_else(|| {
                        choice_of[i]
                            .and_then(|k| choices.convs.get(k))
                            .map(|c| c.time_ms)
                    })
                    .unwrap_or(0.0)
            })
            .sum();
        tracing::info!(
            "cuda engine: {} convolutions on cuDNN, own kernels: {}; {} depthwise, {} of them with their expansion fused ({} on the fused kernel), {} with their projection too ({} on the whole-block kernel); sum of measured times {:.3} ms",
            choices.convs.len() - OWN_CONVS.iter().map(on_own).sum::<usize>(),
            own_counts.join(", "),
            plan.steps.iter().filter(|s| matches!(s, Step::Conv(c) if c.is_depthwise())).count(),
            n_expand,
            choices.expand_dw.iter().filter(|e| e.fused).count(),
            n_inverted,
            choices.inverted.iter().filter(|e| e.fused).count(),
            measured_ms
        );
        let schedule = branches::schedule(&plan.steps, streams);
        // Scratch per lane, sized for the convolutions on it; lane 0's for all of them
        // (`profile_steps` runs every step there).
        let scratch = |lane: Option<usize>| {
            let mut need = (0, 0);
            for (i, (s, first)) in plan.steps.iter().zip(&choice_of).enumerate() {
                let (Step::Conv(c), Some(first)) = (s, first) else {
                    continue;
                };
                if lane.is_some_and(|l| schedule.lane[i] != l) {
                    continue;
                }
                for (k, c) in measured(c).into_iter().enumerate() {
                    let Some(&choice) = choices.convs.get(first + k) else {
                        continue;
                    };
                    need.0 = need.0.max(choice.workspace);
                    need.1 = need
                        .1
                        .max(own_conv(choice.algo).map_or(0, |o| partials_bytes(o, c)));
                }
            }
            need
        };
        let (workspace, partials) = scratch(None);
        let mut lanes = vec![Lane::new(
            gpu,
            gpu.stream.clone(),
            handle,
            workspace,
            partials,
        )?];
        for l in 1..schedule.lanes {
            let stream = gpu
                .ctx
                .new_stream()
                .map_err(|e| gpu_error("creating a stream", e))?;
            let (workspace, partials) = scratch(Some(l));
            let handle = Handle::on(&stream)?;
            lanes.push(Lane::new(gpu, stream, handle, workspace, partials)?);
        }
        // A quantized plan keeps its dequantized values in FP16 (the INT8 kernels read and
        // write FP16 beside int8): checked once here, not per launch.
        let quantized = plan.steps.iter().any(|s| {
            matches!(
                s,
                Step::Quantize { .. } | Step::Requantize { .. } | Step::QConv(_)
            )
        });
        if quantized && !half {
            return Err(GpuError::Backend(
                "cuda: a quantized plan needs FP16 activations".into(),
            ));
        }
        // INT8 convolutions (a quantized plan; the caller loaded the INT8 kernels).
        let qconvs = plan
            .steps
            .iter()
            .map(|s| match s {
                Step::QConv(q) => {
                    let weights = plan.qweights.get(q.weights).ok_or_else(|| {
                        GpuError::Backend(format!("cuda: {}: no INT8 constants", q.node))
                    })?;
                    DeviceQConv::upload(gpu, &q.spec, weights).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Network {
            qconvs,
            plan,
            half,
            buffers,
            weights,
            convs,
            choice_of,
            expand_of,
            inverted_of,
            choices,
            schedule,
            lanes,
        })
    }

    pub fn buffer(&self, id: usize) -> DevPtr {
        self.buffers.get(id).map_or(0, |b| b.1)
    }

    fn conv_io(&self, c: &ConvStep) -> ConvIo {
        let elem = if self.half { 2 } else { 4 };
        conv_io(c, elem, &|b| self.buffer(b), &|w| {
            self.weights.get(w).map_or(0, |w| w.1)
        })
    }

    pub fn input(&self) -> DevPtr {
        self.buffer(self.plan.input)
    }

    /// Puts every step on its lane. The other lanes fork from the frame's stream (they see the preprocessed input), wait for
    /// each other where the schedule says, and join it again at the end (the decoder sees every
    /// output). Under graph capture the events become the graph's edges.
    pub fn enqueue(&self, gpu: &Gpu) -> Result<(), GpuError> {
        let event_error = |e| gpu_error("stream event", e);
        let main = &self.lanes[0].stream;
        if self.lanes.len() > 1 {
            let fork = main.record_event(None).map_err(event_error)?;
            for lane in &self.lanes[1..] {
                lane.stream.wait(&fork).map_err(event_error)?;
            }
        }
        let s = &self.schedule;
        let mut done: Vec<Option<CudaEvent>> = (0..s.lane.len()).map(|_| None).collect();
        for &i in &s.order {
            let lane = &self.lanes[s.lane[i]];
            for &j in &s.waits[i] {
                let event = done[j].as_ref().ok_or_else(|| {
                    GpuError::Backend(format!(
                        "cuda: step {i} waits for step {j}, not yet enqueued"
                    ))
                })?;
                lane.stream.wait(event).map_err(event_error)?;
            }
            self.enqueue_step(gpu, lane, i)?;
            if s.signals[i] {
                done[i] = Some(lane.stream.record_event(None).map_err(event_error)?);
            }
        }
        for lane in &self.lanes[1..] {
            main.join(&lane.stream).map_err(event_error)?;
        }
        Ok(())
    }

    /// Device time of every step (CUDA events around each), slowest first: where the time goes.
    pub fn profile_steps(&self, gpu: &Gpu) -> Result<Vec<(String, f64)>, GpuError> {
        use cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT;
        let event = || {
            gpu.stream
                .record_event(Some(CU_EVENT_DEFAULT))
                .map_err(|e| gpu_error("event", e))
        };
        hold_gpu(gpu)?;
        let mut marks = vec![event()?];
        for i in 0..self.plan.steps.len() {
            self.enqueue_step(gpu, &self.lanes[0], i)?;
            marks.push(event()?);
        }
        gpu.sync()?;
        let mut out = Vec::new();
        for (step, pair) in self.plan.steps.iter().zip(marks.windows(2)) {
            let ms = pair[0]
                .elapsed_ms(&pair[1])
                .map_err(|e| gpu_error("event timing", e))?;
            out.push((describe(step), f64::from(ms)));
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(out)
    }

    /// Step `index`'s `k`-th measured convolution `c` (`measured`) on its chosen algorithm.
    fn launch_measured(
        &self,
        gpu: &Gpu,
        lane: &Lane,
        index: usize,
        k: usize,
        c: &ConvStep,
    ) -> Result<(), GpuError> {
        let choice = self.choice_of[index]
            .and_then(|first| self.choices.convs.get(first + k))
            .ok_or_else(|| GpuError::Backend("cuda: conv without a plan".into()))?;
        let scratch = Scratch {
            workspace: (lane.workspace.1, lane.workspace.2),
            partials: lane.partials.1,
        };
        let on = ConvLane {
            gpu,
            stream: &lane.stream,
            handle: lane.handle.0,
        };
        let d = self.convs[index].get(k).and_then(Option::as_ref);
        launch_conv(on, d, choice.algo, scratch, c, self.conv_io(c))
    }

    /// Puts step `index` on `lane`.
    fn enqueue_step(&self, gpu: &Gpu, lane: &Lane, index: usize) -> Result<(), GpuError> {
        let step = &self.plan.steps[index];
        let stream = &lane.stream;
        let buf = |id: usize| self.buffer(id);
        let wt = |id: usize| self.weights.get(id).map_or(0, |w| w.1);
        {
            match step {
                Step::Conv(c) => {
                    let fused = |of: &[Option<usize>], list: &[FusionChoice]| {
                        of[index].and_then(|k| list.get(k)).is_some_and(|f| f.fused)
                    };
                    let fused = (
                        fused(&self.expand_of, &self.choices.expand_dw),
                        fused(&self.inverted_of, &self.choices.inverted),
                    );
                    let conv =
                        |k: usize, m: &ConvStep| self.launch_measured(gpu, lane, index, k, m);
                    launch_conv_step(gpu, stream, c, fused, &|m| self.conv_io(m), &conv)?;
                }
                Step::Pad {
                    x,
                    y,
                    nhwc: [n, h, w, c],
                    top,
                    left,
                    oh,
                    ow,
                    value,
                } => {
                    let args: [&dyn Arg; 11] = [
                        &buf(*y),
                        &buf(*x),
                        &i(*n),
                        &i(*h),
                        &i(*w),
                        &i(*c),
                        &i(*top),
                        &i(*left),
                        &i(*oh),
                        &i(*ow),
                        value,
                    ];
                    gpu.launch_on(stream, "pad_nhwc", n * oh * ow * c, 1, 0, &args)?;
                }
                Step::MaxPool {
                    x,
                    y,
                    nhwc: [n, h, w, c],
                    kernel,
                    stride,
                    pad,
                    oh,
                    ow,
                } => {
                    let args: [&dyn Arg; 14] = [
                        &buf(*y),
                        &buf(*x),
                        &i(*n),
                        &i(*h),
                        &i(*w),
                        &i(*c),
                        &i(kernel[0]),
                        &i(kernel[1]),
                        &i(stride[0]),
                        &i(stride[1]),
                        &i(pad[0]),
                        &i(pad[1]),
                        &i(*oh),
                        &i(*ow),
                    ];
                    gpu.launch_on(stream, "maxpool_nhwc", n * oh * ow * c, 1, 0, &args)?;
                }
                Step::Resize {
                    x,
                    y,
                    nhwc: [n, h, w, c],
                    oh,
                    ow,
                    scale,
                    linear,
                    coord,
                    round,
                    residual,
                } => {
                    let coord = match coord {
                        Coord::HalfPixel => 0i32,
                        Coord::Asymmetric => 1,
                        Coord::AlignCorners => 2,
                        Coord::PytorchHalfPixel => 3,
                    };
                    let residual = residual.map_or(0, buf);
                    let args: [&dyn Arg; 14] = [
                        &buf(*y),
                        &buf(*x),
                        &residual,
                        &i(*n),
                        &i(*h),
                        &i(*w),
                        &i(*c),
                        &i(*oh),
                        &i(*ow),
                        &scale[0],
                        &scale[1],
                        &i32::from(*linear),
                        &coord,
                        &i32::from(*round),
                    ];
                    gpu.launch_on(stream, "resize_nhwc", n * oh * ow * c, 1, 0, &args)?;
                }
                Step::Eltwise { a, b, y, len, act } => {
                    let (code, p, q) = act.code();
                    let args: [&dyn Arg; 7] = [
                        &buf(*y),
                        &buf(*a),
                        &b.map_or(0, buf),
                        &(*len as i64),
                        &code,
                        &p,
                        &q,
                    ];
                    gpu.launch_on(stream, "eltwise", *len, 1, 0, &args)?;
                }
                Step::Affine {
                    x,
                    y,
                    len,
                    channels,
                    scale,
                    shift,
                } => {
                    let args: [&dyn Arg; 6] = [
                        &buf(*y),
                        &buf(*x),
                        &wt(*scale),
                        &wt(*shift),
                        &(*len as i64),
                        &i(*channels),
                    ];
                    gpu.launch_on(stream, "affine", *len, 1, 0, &args)?;
                }
                Step::Copy {
                    x,
                    y,
                    outer,
                    len,
                    x_stride,
                    y_stride,
                    x_offset,
                    y_offset,
                } => {
                    let args: [&dyn Arg; 8] = [
                        &buf(*y),
                        &buf(*x),
                        &(*outer as i64),
                        &(*len as i64),
                        &(*x_stride as i64),
                        &(*y_stride as i64),
                        &(*x_offset as i64),
                        &(*y_offset as i64),
                    ];
                    gpu.launch_on(stream, "copy_slab", outer * len, 1, 0, &args)?;
                }
                Step::Permute { x, y, dims, axes } => {
                    launch_permute(gpu, stream, buf(*y), buf(*x), dims, axes)?
                }
                Step::Quantize {
                    x,
                    y,
                    len,
                    scale,
                    zero,
                    int8,
                } => launch_quantize(gpu, stream, buf(*y), buf(*x), *len, *scale, *zero, *int8)?,
                Step::Requantize {
                    x,
                    b,
                    act,
                    y,
                    len,
                    grid,
                    int8,
                    into,
                } => {
                    let b = b.map(|b| (buf(b.buf), b));
                    let x = (buf(x.buf), *x);
                    let (y, act) = (buf(*y), *act);
                    launch_requantize(gpu, stream, y, x, b, act, *len, *grid, *int8, *into)?
                }
                Step::QConv(q) => {
                    let conv = self.qconvs[index].as_ref().ok_or_else(|| {
                        GpuError::Backend(format!("cuda: {}: INT8 convolution not built", q.node))
                    })?;
                    conv.launch_on(gpu, stream, buf(q.y), buf(q.x))?
                }
            }
        }
        Ok(())
    }
}

/// Conv step `c` with its fused convolutions: on the whole inverted residual kernel where
/// `fused.1`, else the expansion and depthwise convolution on the fused kernel where `fused.0`,
/// else apart, then the projection; `conv(k, m)` launches the step's `k`-th measured
/// convolution `m` on its chosen algorithm.
fn launch_conv_step(
    gpu: &Gpu,
    stream: &CudaStream,
    c: &ConvStep,
    fused: (bool, bool),
    io: &dyn Fn(&ConvStep) -> ConvIo,
    conv: &dyn Fn(usize, &ConvStep) -> Result<(), GpuError>,
) -> Result<(), GpuError> {
    let Some(e) = &c.expand else {
        return match c.is_depthwise() {
            true => launch_depthwise(gpu, stream, c, &io(c)),
            false => conv(0, c),
        };
    };
    if let (Some(p), true) = (&c.project, fused.1) {
        return launch_inverted(gpu, stream, c, e, p, [io(e), io(c), io(p)]);
    }
    if fused.0 {
        launch_expand_dw(gpu, stream, c, e, io(e), io(c))?;
    } else {
        conv(0, e)?;
        launch_depthwise(gpu, stream, c, &io(c))?;
    }
    match &c.project {
        Some(p) => conv(1, p),
        None => Ok(()),
    }
}

/// Where a convolution runs: the device, one of its streams and that stream's cuDNN handle.
#[derive(Clone, Copy)]
struct ConvLane<'a> {
    gpu: &'a Gpu,
    stream: &'a CudaStream,
    handle: sys::cudnnHandle_t,
}

/// A convolution's scratch memory: cuDNN's workspace (pointer, bytes) and our kernels' split-K
/// partial sums.
#[derive(Clone, Copy)]
struct Scratch {
    workspace: (DevPtr, usize),
    partials: DevPtr,
}

/// Convolution `c` on `algo`: one of the engine's own kernels (split-K partial sums in
/// `scratch.partials`), or cuDNN's algorithm with the descriptors `d` and the workspace.
fn launch_conv(
    on: ConvLane<'_>,
    d: Option<&Descriptors>,
    algo: u32,
    scratch: Scratch,
    c: &ConvStep,
    io: ConvIo,
) -> Result<(), GpuError> {
    match (own_conv(algo), d) {
        (Some(own), _) => launch_own(on.gpu, on.stream, own, c, io, scratch.partials),
        (None, Some(d)) => launch_cudnn(on, d, algo, scratch.workspace, c, io),
        (None, None) => Err(GpuError::Backend(format!(
            "cuda: convolution {} has cuDNN algorithm {algo} but no descriptors",
            c.node
        ))),
    }
}

/// A cuDNN convolution followed by the epilogue kernel (bias, residual, activation).
fn launch_cudnn(
    on: ConvLane<'_>,
    d: &Descriptors,
    algo: u32,
    (ws, ws_size): (DevPtr, usize),
    c: &ConvStep,
    io: ConvIo,
) -> Result<(), GpuError> {
    let ConvLane {
        gpu,
        stream,
        handle,
    } = on;
    let (x, y, w, bias, residual) = io;
    let algo = algo_from(algo).ok_or_else(|| GpuError::Backend("cuda: bad algorithm".into()))?;
    let (alpha, beta) = (1.0f32, 0.0f32);
    // SAFETY: descriptors match the buffers' sizes (from the plan); the workspace holds ws_size
    // bytes.
    unsafe {
        dnn::convolution_forward(
            handle,
            (&alpha as *const f32).cast(),
            d.x,
            x as *const _,
            d.w,
            w as *const _,
            d.conv,
            algo,
            ws as *mut _,
            ws_size,
            (&beta as *const f32).cast(),
            d.y,
            y as *mut _,
        )
    }
    .map_err(|e| dnn_error(&format!("convolution {}", c.node), e))?;
    let n = c.n * c.oh * c.ow * c.k;
    let (code, a, b) = c.act.code();
    if bias != 0 || residual != 0 || code != 0 {
        let args: [&dyn Arg; 8] = [&y, &bias, &residual, &(n as i64), &i(c.k), &code, &a, &b];
        gpu.launch_on(stream, "epilogue", n, 1, 0, &args)?;
    }
    Ok(())
}

/// Back-to-back launches per timing, and timings per layer (the best is kept).
const TIMED_LAUNCHES: usize = 10;
const TIMINGS: usize = 3;
/// How long the GPU is kept busy before timed work: longer than the host takes to queue it (one
/// layer's launches; every step of a network).
const HOLD_LAYER_NS: i64 = 2_000_000;
const HOLD_NETWORK_NS: i64 = 50_000_000;

/// Puts `spin` on the stream for `ns`: the work queued after it starts only when all of it is
/// queued, so CUDA events around it measure the GPU, not the host's launch rate (which, for
/// layers of a few microseconds, is the larger figure).
fn spin(gpu: &Gpu, ns: i64) -> Result<(), GpuError> {
    gpu.launch_grid("spin", (1, 1, 1), 1, 0, &[&ns])
}

/// `spin` long enough for a whole frame's work to be queued behind it.
pub fn hold_gpu(gpu: &Gpu) -> Result<(), GpuError> {
    spin(gpu, HOLD_NETWORK_NS)
}

/// Device time of one `launch`, ms: the mean of TIMED_LAUNCHES back-to-back launches queued
/// behind `hold_gpu`, best of TIMINGS. Timing runs only write the layer's own output buffer,
/// which every frame rewrites.
fn time_layer(gpu: &Gpu, launch: impl Fn() -> Result<(), GpuError>) -> Result<f32, GpuError> {
    use cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT;
    let event = || {
        gpu.stream
            .record_event(Some(CU_EVENT_DEFAULT))
            .map_err(|e| gpu_error("event", e))
    };
    launch()?;
    let mut best = f32::INFINITY;
    for _ in 0..TIMINGS {
        spin(gpu, HOLD_LAYER_NS)?;
        let start = event()?;
        for _ in 0..TIMED_LAUNCHES {
            launch()?;
        }
        let end = event()?;
        end.synchronize().map_err(|e| gpu_error("event", e))?;
        let ms = start
            .elapsed_ms(&end)
            .map_err(|e| gpu_error("event timing", e))?;
        best = best.min(ms / TIMED_LAUNCHES as f32);
    }
    Ok(best)
}

/// A convolution's device pointers: input and output (at their `Strided` offsets), weights,
/// bias, residual (0 = none).
type ConvIo = (DevPtr, DevPtr, DevPtr, DevPtr, DevPtr);

fn conv_io(
    c: &ConvStep,
    elem: usize,
    buffer: &dyn Fn(usize) -> DevPtr,
    weight: &dyn Fn(usize) -> DevPtr,
) -> ConvIo {
    let at = |b: usize, offset: usize| buffer(b) + (offset * elem) as DevPtr;
    (
        at(c.x, c.x_at.offset),
        at(c.y, c.y_at.offset),
        weight(c.weight),
        c.bias.map_or(0, weight),
        c.residual.map_or(0, buffer),
    )
}

/// The parameter list shared by the own convolution kernels (`dwconv_nhwc`, `conv_igemm*`,
/// `conv_mma_*`): output, input, weights, bias, residual, geometry, activation, input and output
/// pixel pitch.
fn conv_args(
    c: &ConvStep,
    &(x, y, w, bias, residual): &(DevPtr, DevPtr, DevPtr, DevPtr, DevPtr),
) -> Vec<Box<dyn Arg>> {
    let (code, a, b) = c.act.code();
    let mut args: Vec<Box<dyn Arg>> = vec![
        Box::new(y),
        Box::new(x),
        Box::new(w),
        Box::new(bias),
        Box::new(residual),
    ];
    let geometry = [
        c.n,
        c.h,
        c.w,
        c.c,
        c.k,
        c.r,
        c.s,
        c.pad[0],
        c.pad[1],
        c.stride[0],
        c.stride[1],
        c.dilation[0],
        c.dilation[1],
        c.oh,
        c.ow,
    ];
    args.extend(geometry.iter().map(|&v| Box::new(i(v)) as Box<dyn Arg>));
    args.push(Box::new(code));
    args.push(Box::new(a));
    args.push(Box::new(b));
    args.push(Box::new(i(c.x_at.pitch)));
    args.push(Box::new(i(c.y_at.pitch)));
    args
}

/// A depthwise convolution (`dwconv_nhwc`, one thread per channel pair of an output pixel).
fn launch_depthwise(
    gpu: &Gpu,
    stream: &CudaStream,
    c: &ConvStep,
    io: &ConvIo,
) -> Result<(), GpuError> {
    let args = conv_args(c, io);
    let refs: Vec<&dyn Arg> = args.iter().map(|a| a.as_ref()).collect();
    let threads = c.n * c.oh * c.ow * c.k.div_ceil(2);
    gpu.launch_on(stream, "dwconv_nhwc", threads, 1, 0, &refs)
}

/// The parameters of `conv_expand_dw_s*` (and the first ones of `conv_inverted_residual_*`):
/// output `y` with pixel pitch `yp`, the expansion `e` (input, weights, bias, activation), the
/// depthwise step `d` (weights, bias, activation) and the geometry.
fn expand_dw_args(
    d: &ConvStep,
    e: &ConvStep,
    (x, _, w1, b1, _): ConvIo,
    (_, _, w2, b2, _): ConvIo,
    (y, yp): (DevPtr, usize),
) -> Vec<Box<dyn Arg>> {
    let (act1, a1, c1) = e.act.code();
    let (act2, a2, c2) = d.act.code();
    let mut args: Vec<Box<dyn Arg>> = vec![
        Box::new(y),
        Box::new(x),
        Box::new(w1),
        Box::new(b1),
        Box::new(act1),
        Box::new(a1),
        Box::new(c1),
        Box::new(w2),
        Box::new(b2),
        Box::new(act2),
        Box::new(a2),
        Box::new(c2),
    ];
    let geometry = [
        d.n,
        d.h,
        d.w,
        e.c,
        d.c,
        d.oh,
        d.ow,
        d.pad[0],
        d.pad[1],
        e.x_at.pitch,
        yp,
    ];
    args.extend(geometry.iter().map(|&v| Box::new(i(v)) as Box<dyn Arg>));
    args
}

/// Output tiles of a fused kernel over depthwise step `d`.
fn expand_dw_tiles(d: &ConvStep) -> u32 {
    let (_, th, tw) = expand_dw_kernel(d.stride[0]);
    (d.n * d.oh.div_ceil(th) * d.ow.div_ceil(tw)) as u32
}

/// Depthwise step `d` and its expansion `e` in one `conv_expand_dw_s*` launch: one block per
/// output tile and 48 expanded channels.
fn launch_expand_dw(
    gpu: &Gpu,
    stream: &CudaStream,
    d: &ConvStep,
    e: &ConvStep,
    e_io: ConvIo,
    d_io: ConvIo,
) -> Result<(), GpuError> {
    let args = expand_dw_args(d, e, e_io, d_io, (d_io.1, d.y_at.pitch));
    let args: Vec<&dyn Arg> = args.iter().map(|a| a.as_ref()).collect();
    let grid = (expand_dw_tiles(d), d.c.div_ceil(EXPAND_CHANNELS) as u32, 1);
    let bytes = expand_dw_bytes(d.stride[0], e.c);
    let kernel = expand_dw_kernel(d.stride[0]).0;
    gpu.launch_grid_on(stream, kernel, grid, EXPAND_THREADS, bytes, &args)
}

/// Depthwise step `d` with its expansion `e` and projection `p` in one
/// `conv_inverted_residual_*` launch: per output tile a cluster of blocks, each taking every
/// cluster-th 48 expanded channels.
fn launch_inverted(
    gpu: &Gpu,
    stream: &CudaStream,
    d: &ConvStep,
    e: &ConvStep,
    p: &ConvStep,
    [e_io, d_io, (_, y, w3, b3, residual)]: [ConvIo; 3],
) -> Result<(), GpuError> {
    let (act3, a3, c3) = p.act.code();
    let mut args = expand_dw_args(d, e, e_io, d_io, (y, p.y_at.pitch));
    args.push(Box::new(w3));
    args.push(Box::new(b3));
    args.push(Box::new(residual));
    args.push(Box::new(act3));
    args.push(Box::new(a3));
    args.push(Box::new(c3));
    args.push(Box::new(i(p.k)));
    let args: Vec<&dyn Arg> = args.iter().map(|a| a.as_ref()).collect();
    let (kernel, cluster) = inverted_kernel(d.stride[0], d.c);
    let bytes = inverted_residual_bytes(d.stride[0], e.c, p.k);
    let grid = (expand_dw_tiles(d), 1, cluster);
    gpu.launch_grid_on(stream, kernel, grid, EXPAND_THREADS, bytes, &args)
}

/// One of the engine's own convolution kernels with its fused epilogue (after the split-K sum
/// where the reduction is split).
fn launch_own(
    gpu: &Gpu,
    stream: &CudaStream,
    own: &OwnConv,
    c: &ConvStep,
    io: ConvIo,
    partials: DevPtr,
) -> Result<(), GpuError> {
    let mut args = conv_args(c, &io);
    if own.tensor_cores() {
        args.push(Box::new(partials));
    }
    let args: Vec<&dyn Arg> = args.iter().map(|a| a.as_ref()).collect();
    let pixels = c.n * c.oh * c.ow;
    let grid = (
        pixels.div_ceil(own.tile.0) as u32,
        c.k.div_ceil(own.tile.1) as u32,
        own.splits as u32,
    );
    gpu.launch_grid_on(
        stream,
        own.kernel,
        grid,
        own.threads,
        own.shared_bytes(),
        &args,
    )?;
    if own.sums_in_memory() {
        let (_, y, _, bias, residual) = io;
        let (code, a, b) = c.act.code();
        let sum_args: [&dyn Arg; 11] = [
            &y,
            &partials,
            &i(own.splits),
            &i(pixels),
            &i(c.k),
            &bias,
            &residual,
            &code,
            &a,
            &b,
            &i(c.y_at.pitch),
        ];
        gpu.launch_on(stream, "conv_split_sum", pixels * c.k, 1, 0, &sum_args)?;
    }
    Ok(())
}

/// A step in a few words, for profiles.
fn describe(step: &Step) -> String {
    match step {
        Step::Conv(c) => format!(
            "conv{}{} {}x{} s{} {}→{} @{}x{}{} {}",
            c.expand
                .as_ref()
                .map_or(String::new(), |e| format!(" 1x1 {}→{} +", e.c, e.k)),
            if c.is_depthwise() { " dw" } else { "" },
            c.r,
            c.s,
            c.stride[0],
            c.c,
            c.k,
            c.oh,
            c.ow,
            c.project
                .as_ref()
                .map_or(String::new(), |p| format!(" + 1x1 {}→{}", p.c, p.k)),
            c.node
        ),
        Step::Pad { nhwc, .. } => format!("pad {nhwc:?}"),
        Step::MaxPool { nhwc, .. } => format!("maxpool {nhwc:?}"),
        Step::Resize {
            nhwc, residual: r, ..
        } => format!("resize{} {nhwc:?}", if r.is_some() { "+add" } else { "" }),
        Step::Eltwise { len, .. } => format!("eltwise {len}"),
        Step::Quantize { len, int8, .. } => {
            format!("quantize {len} → {}", if *int8 { "int8" } else { "fp16" })
        }
        Step::Requantize { len, b, int8, .. } => format!(
            "{} {len} → {}",
            if b.is_some() {
                "quantized add"
            } else {
                "requantize"
            },
            if *int8 { "int8" } else { "fp16" }
        ),
        Step::QConv(q) => {
            let c = &q.spec;
            format!(
                "int8 conv{} {}x{} s{} {}→{} @{}x{} {}",
                if c.groups > 1 { " dw" } else { "" },
                c.r,
                c.s,
                c.stride[0],
                c.c,
                c.k,
                c.oh,
                c.ow,
                q.node
            )
        }
        Step::Affine { len, .. } => format!("affine {len}"),
        Step::Copy { outer, len, .. } => format!("copy {outer}×{len}"),
        Step::Permute { dims, .. } => format!("permute {dims:?}"),
    }
}

/// Launches the permute kernel: row-major `y` with axis i = axis `axes[i]` of row-major `x`.
pub fn launch_permute(
    gpu: &Gpu,
    stream: &CudaStream,
    y: DevPtr,
    x: DevPtr,
    dims: &[usize],
    axes: &[usize],
) -> Result<(), GpuError> {
    let (out_dims, strides) = permute_args(dims, axes)?;
    let total: usize = dims.iter().product();
    let args: [&dyn Arg; 6] = [&y, &x, &i(dims.len()), &(total as i64), &out_dims, &strides];
    gpu.launch_on(stream, "permute", total, 1, 0, &args)
}

/// Kernel arguments of a permute: output dims and the input stride of each output axis.
fn permute_args(dims: &[usize], axes: &[usize]) -> Result<(Dims6, Dims6), GpuError> {
    if dims.len() > 6 || axes.len() != dims.len() {
        return Err(GpuError::Backend(
            "cuda: permute of more than 6 axes".into(),
        ));
    }
    let mut strides = vec![1usize; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * dims[d + 1];
    }
    let (mut out, mut st) = ([1i64; 6], [0i64; 6]);
    for (k, &a) in axes.iter().enumerate() {
        out[k] = dims[a] as i64;
        st[k] = strides[a] as i64;
    }
    Ok((Dims6(out), Dims6(st)))
}

fn conv_descriptors(
    c: &crate::engine::plan::ConvStep,
    half: bool,
) -> Result<Descriptors, GpuError> {
    let dtype = if half {
        sys::cudnnDataType_t::CUDNN_DATA_HALF
    } else {
        sys::cudnnDataType_t::CUDNN_DATA_FLOAT
    };
    let nhwc = sys::cudnnTensorFormat_t::CUDNN_TENSOR_NHWC;
    let e = |what: &str| {
        let what = format!("{what} of {}", c.node);
        move |err| dnn_error(&what, err)
    };
    let d = Descriptors {
        x: dnn::create_tensor_descriptor().map_err(e("x descriptor"))?,
        w: dnn::create_filter_descriptor().map_err(e("w descriptor"))?,
        conv: dnn::create_convolution_descriptor().map_err(e("conv descriptor"))?,
        y: dnn::create_tensor_descriptor().map_err(e("y descriptor"))?,
    };
    // SAFETY: freshly created descriptors, set once.
    unsafe {
        dnn::set_tensor4d_descriptor(d.x, nhwc, dtype, [i(c.n), i(c.c), i(c.h), i(c.w)])
            .map_err(e("x shape"))?;
        dnn::set_filter4d_descriptor(
            d.w,
            dtype,
            nhwc,
            [i(c.k), i(c.c / c.groups), i(c.r), i(c.s)],
        )
        .map_err(e("w shape"))?;
        dnn::set_convolution2d_descriptor(
            d.conv,
            i(c.pad[0]),
            i(c.pad[1]),
            i(c.stride[0]),
            i(c.stride[1]),
            i(c.dilation[0]),
            i(c.dilation[1]),
            sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            sys::cudnnDataType_t::CUDNN_DATA_FLOAT,
        )
        .map_err(e("conv geometry"))?;
        dnn::set_convolution_group_count(d.conv, i(c.groups)).map_err(e("groups"))?;
        // FP16: tensor cores. FP32: plain FMA (no TF32), so FP32 means FP32.
        let math = if half {
            sys::cudnnMathType_t::CUDNN_TENSOR_OP_MATH
        } else {
            sys::cudnnMathType_t::CUDNN_FMA_MATH
        };
        dnn::set_convolution_math_type(d.conv, math).map_err(e("math type"))?;
        dnn::set_tensor4d_descriptor(d.y, nhwc, dtype, [i(c.n), i(c.k), i(c.oh), i(c.ow)])
            .map_err(e("y shape"))?;
    }
    Ok(d)
}

/// Measures the algorithms cuDNN offers and picks the fastest deterministic one.
fn find(
    handle: sys::cudnnHandle_t,
    d: &Descriptors,
    x: DevPtr,
    w: DevPtr,
    y: DevPtr,
    ws: DevPtr,
    node: &str,
) -> Result<ConvChoice, GpuError> {
    const N: usize = 8;
    // SAFETY: zeroed plain-old-data structs, filled by cuDNN.
    let mut perf: [sys::cudnnConvolutionFwdAlgoPerf_t; N] = unsafe { std::mem::zeroed() };
    let mut returned = 0i32;
    // SAFETY: descriptors and buffers are valid and sized by the plan; the workspace holds
    // SEARCH_WORKSPACE bytes.
    unsafe {
        sys::cudnnFindConvolutionForwardAlgorithmEx(
            handle,
            d.x,
            x as *const _,
            d.w,
            w as *const _,
            d.conv,
            d.y,
            y as *mut _,
            N as i32,
            &mut returned,
            perf.as_mut_ptr(),
            ws as *mut _,
            SEARCH_WORKSPACE,
        )
    }
    .result()
    .map_err(|e| dnn_error(&format!("algorithm search for {node}"), e))?;
    perf.iter()
        .take(returned.max(0) as usize)
        .filter(|p| {
            p.status == sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS
                && p.determinism == sys::cudnnDeterminism_t::CUDNN_DETERMINISTIC
                && p.memory <= SEARCH_WORKSPACE
        })
        .min_by(|a, b| a.time.total_cmp(&b.time))
        .map(|p| ConvChoice {
            algo: p.algo as u32,
            workspace: p.memory,
            time_ms: p.time,
        })
        .ok_or_else(|| {
            gpu_error(
                &format!("convolution {node}"),
                "cuDNN offers no deterministic algorithm",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table must agree with what kernels.cu assumes of each kernel (its static_asserts and
    /// the cluster reduction's row split), which no compiler checks across the language border.
    #[test]
    fn own_kernel_table_matches_the_kernels_assumptions() {
        let mut algos: Vec<u32> = OWN_CONVS.iter().map(|o| o.algo).collect();
        algos.sort_unstable();
        algos.dedup();
        assert_eq!(algos.len(), OWN_CONVS.len(), "algo numbers are unique");
        for o in OWN_CONVS.iter().filter(|o| o.tensor_cores()) {
            let warps = o.threads as usize / 32;
            let parts = (o.tile.0 / 32) * (o.tile.1 / 32);
            assert_eq!(
                warps % parts,
                0,
                "{}: whole warps per 32 × 32 part",
                o.kernel
            );
            let split = warps / parts;
            assert_eq!(
                o.slice % (16 * split),
                0,
                "{}: whole 16-wide steps",
                o.kernel
            );
            if o.cluster {
                assert!(
                    (2..=8).contains(&o.splits),
                    "{}: portable cluster",
                    o.kernel
                );
                assert_eq!(
                    o.tile.0 % o.splits,
                    0,
                    "{}: rows per cluster block",
                    o.kernel
                );
                assert!(
                    o.kernel.ends_with(&format!("_c{}", o.splits)),
                    "{}",
                    o.kernel
                );
            }
        }
        // conv_mma_split16: two 256-wide slices of A and B, or 16 warps' 32 × 33 FP32 sums.
        let split16 = OWN_CONVS
            .iter()
            .find(|o| o.algo == 1011)
            .map(OwnConv::shared_bytes);
        assert_eq!(split16, Some(2 * 64 * 264 * 2));
        // The fused expansion + depthwise kernel's largest block fits every GPU with tensor-core
        // kernels (sm_86 / sm_89 allow 99 KB a block; Orin and A100 163, Hopper 227).
        assert_eq!(expand_dw_bytes(2, expand_dw::MAX_EXPAND_INPUT), 88_512);
        assert!(expand_dw_bytes(2, expand_dw::MAX_EXPAND_INPUT) <= 99 << 10);
        assert_eq!(expand_dw_bytes(1, 16), 14_272);
        assert!(!tensor_core_kernels(false).iter().any(|k| k.contains("_c")));
        assert!(tensor_core_kernels(true).contains(&"conv_mma_wide_c8"));
    }
}
