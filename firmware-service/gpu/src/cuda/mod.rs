//! The `cuda` backend: our own inference engine on NVIDIA's libraries (cudarc: driver, NVRTC,
//! cuDNN — all loaded at run time, so the binary runs and fails cleanly on machines without them).
//!
//! A frame goes in and final detections come out: pinned upload → GPU preprocessing plugin →
//! the lowered network (cuDNN convolutions + fused epilogues, [`network`]) → GPU decode + NMS
//! plugins → one small copy back. The whole sequence is captured once in a CUDA graph and
//! replayed per frame. The plan (measured convolution algorithms) is cached on disk
//! ([`cache`]).

// FFI to the CUDA driver, NVRTC and cuDNN: the only unsafe code of the daemon; every block states
// the invariant it relies on.
#![allow(unsafe_code)]

pub mod cache;
mod device;
pub mod int8;
mod network;

pub use cache::PlanSource;
pub use device::check_libraries;
pub use int8::{Int8Convolver, Split};
pub use network::{OwnConv, OWN_CONVS};

use crate::engine::{self, onnx};
use crate::{FrameResult, GpuError, GpuStageTimes, Precision};
use adas_plugins::gpu::{self as plugins, GpuHead};
use adas_plugins::manifest::{Layout, Manifest, NmsMode};
use adas_plugins::{BBox, Detection, InputTransform, Tensor};
use cudarc::driver::{CudaGraph, CudaSlice, PinnedHostSlice};
use device::{gpu_error, Arg, DevPtr, Gpu};
use network::Network;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::time::Instant;

/// `[detector.cuda]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct CudaOptions {
    pub precision: Precision,
    /// Images per forward pass (the daemon uses 1; `adasd bench` sweeps).
    pub batch: usize,
    pub device: usize,
    /// Plan and kernel cache; None = no cache.
    pub cache_dir: Option<PathBuf>,
    /// Streams the network's independent branches may run on (1: every step in order).
    pub streams: usize,
    /// INT8 calibration table of a float model (default: the manifest's `int8_calibration`).
    pub int8_calibration: Option<PathBuf>,
}

impl Default for CudaOptions {
    fn default() -> CudaOptions {
        CudaOptions {
            precision: Precision::default(),
            batch: 1,
            device: 0,
            cache_dir: None,
            streams: crate::DEFAULT_CUDA_STREAMS,
            int8_calibration: None,
        }
    }
}

const ENGINE_KERNELS: &str = include_str!("kernels.cu");
const ENGINE_NAMES: &[&str] = &[
    "epilogue",
    "eltwise",
    "affine",
    "pad_nhwc",
    "maxpool_nhwc",
    "resize_nhwc",
    "copy_slab",
    "permute",
    "from_f32",
    "to_f32",
    "dwconv_nhwc",
    "conv_igemm",
    "conv_igemm16",
    "spin",
];
const PLUGIN_NAMES: &[&str] = &[
    "preprocess",
    "clear_counts",
    "ssd_decode",
    "gfl_decode",
    "nms",
];
const NMS_THREADS: u32 = 512;

/// The frame path for one frame size: pinned buffers and the captured graph.
struct FramePath {
    width: usize,
    height: usize,
    params: plugins::PreprocessParams,
    transform: InputTransform,
    host_in: PinnedHostSlice<u8>,
    host_in_ptr: *mut u8,
    device_in: (CudaSlice<u8>, DevPtr),
    graph: Option<CudaGraph>,
}

pub struct CudaBackend {
    // Field order = drop order: graphs and buffers before the network and the context.
    frame: Option<FramePath>,
    /// The network's steps alone in their own graph, captured on the first
    /// [`CudaBackend::network_latency_ms`] (benchmarks only; the frame graph has its own copy).
    network_graph: Option<CudaGraph>,
    postprocess: Postprocess,
    staging: (CudaSlice<u8>, DevPtr),
    net: Network,
    gpu: Gpu,
    input_spec: adas_plugins::manifest::InputSpec,
    batch: usize,
    half: bool,
    pub plan_source: PlanSource,
}

// SAFETY: the backend owns its context, stream, pinned buffers and cuDNN handle and is used by
// one thread at a time (moved into the pipeline thread, never shared).
unsafe impl Send for CudaBackend {}

struct Postprocess {
    head: GpuHead,
    threshold: f32,
    nms_iou: f32,
    max_det: usize,
    /// Suppress across classes ([`NmsMode::BestClass`]).
    across_classes: bool,
    anchors: Option<(CudaSlice<u8>, DevPtr)>,
    cands: (CudaSlice<u8>, DevPtr),
    counts: (CudaSlice<u8>, DevPtr),
    keys: (CudaSlice<u8>, DevPtr),
    sorted: (CudaSlice<u8>, DevPtr),
    result: (CudaSlice<u8>, DevPtr),
    host_out: PinnedHostSlice<f32>,
    host_out_ptr: *mut f32,
    /// Network output buffers in manifest order.
    outputs: Vec<DevPtr>,
}

impl CudaBackend {
    /// Builds (or loads from the plan cache) the engine for `manifest` on the GPU.
    pub fn load(
        manifest: &Manifest,
        threshold: f32,
        options: &CudaOptions,
    ) -> Result<CudaBackend, GpuError> {
        // cudarc aborts on a missing symbol in a too-old library; turn that into an error.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Self::load_inner(manifest, threshold, options))) {
            Ok(r) => r,
            Err(_) => Err(GpuError::Backend(
                "cuda backend: the CUDA/cuDNN libraries found lack a required function (too old?); \
                 this build needs CUDA 13 and cuDNN 9"
                    .into(),
            )),
        }
    }

    fn load_inner(
        manifest: &Manifest,
        threshold: f32,
        options: &CudaOptions,
    ) -> Result<CudaBackend, GpuError> {
        let model_error = |m: String| GpuError::Model {
            path: manifest.onnx.clone(),
            message: m,
        };
        let batch = options.batch.max(1);
        let half = options.precision.half();
        let int8 = options.precision == Precision::Int8;
        let head = GpuHead::new(manifest).map_err(model_error)?;
        let model_sha256 = manifest
            .sha256
            .clone()
            .unwrap_or_else(|| file_hash(&manifest.onnx));
        let proto = onnx::read(&manifest.onnx).map_err(|e| model_error(e.to_string()))?;
        let mut shape = manifest.input.shape.to_vec();
        shape[0] = batch;
        let nchw = manifest.input.layout == Layout::Nchw;
        let mut gpu = Gpu::new(options.device)?;
        let cache = options.cache_dir.as_deref();
        // mma.sync needs compute capability 8.0 (Jetson Orin, Ampere) or newer.
        // The FP16 tensor-core convolutions; an INT8 plan has its own.
        let tensor_cores = half && !int8 && gpu.identity.compute_capability >= (8, 0);
        let mut calibration_sha256 = None;
        let lowered = if int8 {
            let table = options
                .int8_calibration
                .as_deref()
                .or(manifest.int8_calibration.as_deref());
            let m = engine::calibrated::int8_model(&manifest.name, proto, &model_sha256, table)
                .map_err(|e| model_error(e.to_string()))?;
            calibration_sha256 = m.calibration_sha256;
            let convs =
                engine::qdq::conv_quantization(&m.proto).map_err(|e| model_error(e.to_string()))?;
            let graph = onnx::from_model(m.proto).map_err(|e| model_error(e.to_string()))?;
            int8::load(&mut gpu, cache)?;
            engine::compile_int8(&graph, &shape, nchw, &manifest.output_names(), convs)
        } else {
            let graph = onnx::from_model(proto).map_err(|e| model_error(e.to_string()))?;
            let target = engine::Target { tensor_cores };
            engine::compile(&graph, &shape, nchw, &manifest.output_names(), target)
        }
        .map_err(|e| model_error(e.to_string()))?;
        tracing::info!(model = %manifest.name, steps = lowered.steps.len(), "cuda engine plan: {}", lowered.summary());
        let mut engine_names = ENGINE_NAMES.to_vec();
        if half {
            // Thread-block clusters: compute capability 9.0 (Hopper) or newer.
            let clusters = gpu.identity.compute_capability >= (9, 0);
            engine_names.extend(network::tensor_core_kernels(clusters));
        }
        gpu.load_kernels(ENGINE_KERNELS, half, &engine_names, cache)?;
        let plugin_src = format!("{}\n{}", plugins::PREPROCESS, plugins::POSTPROCESS);
        gpu.load_kernels(&plugin_src, half, PLUGIN_NAMES, cache)?;

        let key = cache::PlanKey {
            engine: format!("{}/{}", env!("CARGO_PKG_VERSION"), source_hash(&plugin_src)),
            model_sha256,
            calibration_sha256,
            input_shape: shape.clone(),
            precision: options.precision.name().into(),
            device: gpu.identity.clone(),
            plan: lowered.fingerprint(),
        };
        let path = cache.map(|d| {
            d.join(cache::file_name(
                &manifest.name,
                options.precision.name(),
                batch,
            ))
        });
        let cached = match &path {
            Some(p) => cache::lookup(p, &key),
            None => Err("no cache directory configured".into()),
        };
        let (net, plan_source) = match cached {
            Ok(choices) => (
                Network::build(
                    &gpu,
                    lowered,
                    half,
                    tensor_cores,
                    Some(&choices),
                    options.streams,
                )?,
                PlanSource::Cached(path.clone().unwrap_or_default()),
            ),
            Err(reason) => {
                tracing::info!(model = %manifest.name, "cuda engine: measuring convolution algorithms ({reason})");
                let net = Network::build(&gpu, lowered, half, tensor_cores, None, options.streams)?;
                if let Some(p) = &path {
                    if let Err(e) = cache::store(p, &key, &net.choices) {
                        tracing::warn!("cuda engine: plan not cached: {e}");
                    }
                }
                (net, PlanSource::Built { reason })
            }
        };

        let postprocess = Postprocess::new(&gpu, &net, head, threshold, manifest, batch)?;
        let staging_len = net.plan.buffers.iter().copied().max().unwrap_or(1) * 4;
        let staging = gpu.alloc(staging_len * 2)?;
        gpu.sync()?;
        Ok(CudaBackend {
            frame: None,
            network_graph: None,
            postprocess,
            staging,
            net,
            gpu,
            input_spec: manifest.input.clone(),
            batch,
            half,
            plan_source,
        })
    }

    pub fn compute_capability(&self) -> (i32, i32) {
        self.gpu.identity.compute_capability
    }

    pub fn identity(&self) -> String {
        let id = &self.gpu.identity;
        format!(
            "{} (sm_{}{}), driver {}.{}, cuDNN {}, NVRTC {}.{}",
            id.gpu,
            id.compute_capability.0,
            id.compute_capability.1,
            id.driver / 1000,
            (id.driver % 1000) / 10,
            id.cudnn,
            id.nvrtc.0,
            id.nvrtc.1
        )
    }

    fn prepare_frame(&mut self, width: usize, height: usize) -> Result<(), GpuError> {
        if self
            .frame
            .as_ref()
            .is_some_and(|f| f.width == width && f.height == height)
        {
            return Ok(());
        }
        self.frame = None;
        let (params, transform) = plugins::preprocess_params(width, height, &self.input_spec)
            .map_err(|e| GpuError::Preprocess(e.to_string()))?;
        let bytes = self.batch * width * height * 3;
        // SAFETY: pinned host memory, written only by us before a launch and read by the GPU.
        let mut host_in = unsafe { self.gpu.ctx.alloc_pinned::<u8>(bytes) }
            .map_err(|e| gpu_error("pinned memory", e))?;
        let host_in_ptr = host_in
            .as_mut_ptr()
            .map_err(|e| gpu_error("pinned memory", e))?;
        let device_in = self.gpu.alloc(bytes)?;
        let mut path = FramePath {
            width,
            height,
            params,
            transform,
            host_in,
            host_in_ptr,
            device_in,
            graph: None,
        };
        // Capture frame → detections once; replay it per frame. If capture is not possible
        // (old driver), run the same launches eagerly.
        let stream = self.gpu.stream.clone();
        stream
            .begin_capture(
                cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
            .map_err(|e| gpu_error("graph capture", e))?;
        let enqueued = self.enqueue_frame(&path);
        let graph = stream.end_capture(cudarc::driver::sys::CUgraphInstantiate_flags(0));
        match (enqueued, graph) {
            (Ok(()), Ok(Some(g))) => path.graph = Some(g),
            (e, g) => tracing::warn!(
                "cuda engine: no CUDA graph ({:?} / {:?}); running eagerly",
                e.err(),
                g.err()
            ),
        }
        self.frame = Some(path);
        Ok(())
    }

    /// Upload → preprocess → network → decode → NMS → download, on the stream.
    fn enqueue_frame(&self, f: &FramePath) -> Result<(), GpuError> {
        self.upload_frames(f)?;
        self.preprocess(f)?;
        self.net.enqueue(&self.gpu)?;
        self.postprocess.enqueue(&self.gpu, self.batch)?;
        self.postprocess.download(&self.gpu)
    }

    /// The network's steps captured into a graph of their own, as `prepare_frame` captures the
    /// frame. The capture is ended whatever happened, since a stream left capturing would fail
    /// every later launch.
    fn capture_network(&self) -> Result<CudaGraph, GpuError> {
        let stream = &self.gpu.stream;
        stream
            .begin_capture(
                cudarc::driver::sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL,
            )
            .map_err(|e| gpu_error("network graph capture", e))?;
        let enqueued = self.net.enqueue(&self.gpu);
        let graph = stream.end_capture(cudarc::driver::sys::CUgraphInstantiate_flags(0));
        enqueued?;
        match graph {
            Ok(Some(g)) => Ok(g),
            Ok(None) => Err(GpuError::Backend(
                "cuda engine: capturing the network gave no CUDA graph".into(),
            )),
            Err(e) => Err(gpu_error("network graph capture", e)),
        }
    }

    fn upload_frames(&self, f: &FramePath) -> Result<(), GpuError> {
        // SAFETY: host_in_ptr points to the pinned buffer of exactly this many bytes.
        let host = unsafe { std::slice::from_raw_parts(f.host_in_ptr, f.host_in.len()) };
        self.gpu.upload(f.device_in.1, host)
    }

    fn preprocess(&self, f: &FramePath) -> Result<(), GpuError> {
        let p = &f.params;
        let args: [&dyn Arg; 23] = [
            &self.net.input(),
            &f.device_in.1,
            &p.width,
            &p.height,
            &p.model_width,
            &p.model_height,
            &p.resized_width,
            &p.resized_height,
            &p.offset_x,
            &p.offset_y,
            &p.scale_x,
            &p.scale_y,
            &p.asymmetric,
            &p.swap_rb,
            &p.mul[0],
            &p.mul[1],
            &p.mul[2],
            &p.add[0],
            &p.add[1],
            &p.add[2],
            &p.pad[0],
            &p.pad[1],
            &p.pad[2],
        ];
        let pixels = (p.model_width * p.model_height) as usize;
        self.gpu
            .launch("preprocess", pixels, self.batch as u32, 0, &args)
    }

    fn copy_in(&mut self, frames: &[&[u8]], width: usize, height: usize) -> Result<(), GpuError> {
        if frames.len() != self.batch {
            return Err(GpuError::Inference(format!(
                "{} frames for an engine built for batch {}",
                frames.len(),
                self.batch
            )));
        }
        let frame_bytes = width * height * 3;
        if let Some(bad) = frames.iter().find(|f| f.len() != frame_bytes) {
            return Err(GpuError::Preprocess(format!(
                "RGB buffer of {} bytes for a {width}×{height} frame",
                bad.len()
            )));
        }
        self.prepare_frame(width, height)?;
        let f = self
            .frame
            .as_ref()
            .ok_or_else(|| GpuError::Backend("cuda: no frame path".into()))?;
        // SAFETY: the pinned buffer holds batch × frame_bytes bytes; no GPU work is pending
        // (every call ends with a synchronize).
        let host = unsafe { std::slice::from_raw_parts_mut(f.host_in_ptr, f.host_in.len()) };
        for (dst, src) in host.chunks_exact_mut(frame_bytes).zip(frames) {
            dst.copy_from_slice(src);
        }
        Ok(())
    }
}

/// Single-kernel checks against the CPU twins (GPU parity tests).
impl CudaBackend {
    /// The GPU preprocessing plugin's output for one frame, as FP32 NHWC.
    pub fn preprocess_only(
        &mut self,
        rgb: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let frames = vec![rgb; self.batch];
        self.copy_in(&frames, width, height)?;
        let f = self
            .frame
            .as_ref()
            .ok_or_else(|| GpuError::Backend("cuda: no frame path".into()))?;
        self.upload_frames(f)?;
        self.preprocess(f)?;
        let n = self.net.plan.buffers[self.net.plan.input] / self.batch;
        self.gpu.launch(
            "to_f32",
            n,
            1,
            0,
            &[&self.staging.1, &self.net.input(), &(n as i64)],
        )?;
        let mut host = vec![0f32; n];
        self.gpu.download(&mut host, self.staging.1)?;
        self.gpu.sync()?;
        Ok(host)
    }

    /// The GPU decode + NMS plugins on given head outputs (batch 1 engines).
    pub fn postprocess_only(&mut self, outputs: &[Tensor]) -> Result<FrameResult, GpuError> {
        for (t, &dst) in outputs.iter().zip(&self.postprocess.outputs) {
            self.gpu.upload(self.staging.1, &t.data)?;
            self.gpu.launch(
                "from_f32",
                t.data.len(),
                1,
                0,
                &[&dst, &self.staging.1, &(t.data.len() as i64)],
            )?;
        }
        self.postprocess.enqueue(&self.gpu, self.batch)?;
        self.postprocess.download(&self.gpu)?;
        self.gpu.sync()?;
        self.postprocess
            .read(self.batch)
            .into_iter()
            .next()
            .ok_or_else(|| GpuError::Inference("no postprocess result".into()))
    }
}

impl Postprocess {
    fn new(
        gpu: &Gpu,
        net: &Network,
        head: GpuHead,
        threshold: f32,
        manifest: &Manifest,
        batch: usize,
    ) -> Result<Postprocess, GpuError> {
        let cap = plugins::CANDIDATE_CAPACITY;
        let anchors = match &head {
            GpuHead::Ssd { anchors, .. } => {
                let flat: Vec<f32> = anchors.iter().flatten().copied().collect();
                let b = gpu.alloc(flat.len() * 4)?;
                gpu.upload(b.1, &flat)?;
                Some(b)
            }
            GpuHead::Gfl { .. } => None,
        };
        let out_len = batch * plugins::nms_output_len(manifest.max_detections);
        // SAFETY: pinned memory written by the GPU and read after a synchronize.
        let mut host_out = unsafe { gpu.ctx.alloc_pinned::<f32>(out_len) }
            .map_err(|e| gpu_error("pinned memory", e))?;
        let host_out_ptr = host_out
            .as_mut_ptr()
            .map_err(|e| gpu_error("pinned memory", e))?;
        Ok(Postprocess {
            head,
            threshold,
            nms_iou: manifest.nms_iou,
            max_det: manifest.max_detections,
            across_classes: manifest.nms == NmsMode::BestClass,
            anchors,
            cands: gpu.alloc(batch * cap * plugins::CANDIDATE_BYTES)?,
            counts: gpu.alloc(batch * 4)?,
            keys: gpu.alloc(batch * cap * 8)?,
            sorted: gpu.alloc(batch * cap * 4)?,
            result: gpu.alloc(out_len * 4)?,
            host_out,
            host_out_ptr,
            outputs: net
                .plan
                .outputs
                .iter()
                .map(|(b, _)| net.buffer(*b))
                .collect(),
        })
    }

    fn enqueue(&self, gpu: &Gpu, batch: usize) -> Result<(), GpuError> {
        let cap = plugins::CANDIDATE_CAPACITY as i32;
        let images = batch as u32;
        gpu.launch(
            "clear_counts",
            batch,
            1,
            0,
            &[&self.counts.1, &(batch as i32)],
        )?;
        let thr = self.threshold;
        match &self.head {
            GpuHead::Ssd {
                anchors,
                columns,
                first_label,
                activation,
                scales,
                xywh,
                best_class,
            } => {
                let (boxes, scores) = (
                    self.outputs.first().copied().unwrap_or(0),
                    self.outputs.get(1).copied().unwrap_or(0),
                );
                let n = anchors.len() as i32;
                let args: [&dyn Arg; 17] = [
                    &boxes,
                    &scores,
                    &self.anchors.as_ref().map_or(0, |a| a.1),
                    &n,
                    &(*columns as i32),
                    &(*first_label as i32),
                    &plugins::score_code(*activation),
                    &scales[0],
                    &scales[1],
                    &scales[2],
                    &scales[3],
                    &i32::from(*xywh),
                    &i32::from(*best_class),
                    &thr,
                    &self.cands.1,
                    &self.counts.1,
                    &cap,
                ];
                gpu.launch("ssd_decode", anchors.len(), images, 0, &args)?;
            }
            GpuHead::Gfl {
                levels,
                classes,
                bins,
                cell_offset,
                activation,
                input_width,
                input_height,
            } => {
                for (l, pair) in levels.iter().zip(self.outputs.chunks_exact(2)) {
                    let args: [&dyn Arg; 16] = [
                        &pair[0],
                        &pair[1],
                        &(l.cells as i32),
                        &(l.grid_w as i32),
                        &(*classes as i32),
                        &(*bins as i32),
                        &l.stride,
                        cell_offset,
                        &plugins::score_code(*activation),
                        input_width,
                        input_height,
                        &(l.cell_base as u32),
                        &thr,
                        &self.cands.1,
                        &self.counts.1,
                        &cap,
                    ];
                    gpu.launch("gfl_decode", l.cells * classes, images, 0, &args)?;
                }
            }
        }
        let args: [&dyn Arg; 9] = [
            &self.cands.1,
            &self.counts.1,
            &cap,
            &self.keys.1,
            &self.sorted.1,
            &self.nms_iou,
            &i32::from(self.across_classes),
            &(self.max_det as i32),
            &self.result.1,
        ];
        gpu.launch_grid(
            "nms",
            (images, 1, 1),
            NMS_THREADS,
            plugins::CANDIDATE_CAPACITY as u32,
            &args,
        )
    }

    fn download(&self, gpu: &Gpu) -> Result<(), GpuError> {
        // SAFETY: host_out_ptr points to the pinned buffer of host_out.len() floats.
        let host =
            unsafe { std::slice::from_raw_parts_mut(self.host_out_ptr, self.host_out.len()) };
        gpu.download(host, self.result.1)
    }

    /// Reads the downloaded results (after a synchronize).
    fn read(&self, batch: usize) -> Vec<FrameResult> {
        // SAFETY: the GPU finished writing (the caller synchronised).
        let host = unsafe { std::slice::from_raw_parts(self.host_out_ptr, self.host_out.len()) };
        let per = plugins::nms_output_len(self.max_det);
        (0..batch)
            .map(|b| {
                let o = &host[b * per..(b + 1) * per];
                let kept = (o[0].max(0.0) as usize).min(self.max_det);
                if o[1] > 0.0 {
                    let candidates = plugins::CANDIDATE_CAPACITY + o[1] as usize;
                    return FrameResult::Overflowed { candidates };
                }
                FrameResult::Kept(
                    o[2..2 + 6 * kept]
                        .chunks_exact(6)
                        .map(|d| Detection {
                            bbox: BBox::new(d[0], d[1], d[2], d[3]),
                            score: d[4],
                            label: d[5] as usize,
                        })
                        .collect(),
                )
            })
            .collect()
    }
}

/// What the detector's backend interface (`adas-detect`) calls.
impl CudaBackend {
    /// The network alone on a host tensor (parity tests, `adasd bench` stages): FP32 in,
    /// converted to the engine's precision and layout, outputs converted back.
    pub fn infer_host(&mut self, input: &Tensor) -> Result<Vec<Tensor>, GpuError> {
        let plan = &self.net.plan;
        if input.shape != plan.input_shape {
            return Err(GpuError::Inference(format!(
                "input shape {:?} does not match the engine's {:?}",
                input.shape, plan.input_shape
            )));
        }
        let n = input.data.len();
        let (staging, tmp) = (
            self.staging.1,
            self.staging.1 + (self.staging.0.len() / 2) as u64,
        );
        self.gpu.upload(staging, &input.data)?;
        let nchw = self.input_spec.layout == Layout::Nchw;
        let target = if nchw { tmp } else { self.net.input() };
        self.gpu
            .launch("from_f32", n, 1, 0, &[&target, &staging, &(n as i64)])?;
        if nchw {
            // Logical NCHW → the engine's NHWC input.
            network::launch_permute(
                &self.gpu,
                &self.gpu.stream,
                self.net.input(),
                tmp,
                &plan.input_shape,
                &[0, 2, 3, 1],
            )?;
        }
        self.net.enqueue(&self.gpu)?;
        let mut outputs = Vec::new();
        for (buf, shape) in &plan.outputs {
            let len: usize = shape.iter().product();
            self.gpu.launch(
                "to_f32",
                len,
                1,
                0,
                &[&staging, &self.net.buffer(*buf), &(len as i64)],
            )?;
            let mut host = vec![0f32; len];
            self.gpu.download(&mut host, staging)?;
            self.gpu.sync()?;
            outputs.push(
                Tensor::new(shape.clone(), host)
                    .ok_or_else(|| GpuError::Inference("output size".into()))?,
            );
        }
        Ok(outputs)
    }

    /// (FLOPs, bytes) of one image through the network (roofline).
    pub fn cost_per_image(&self) -> (f64, f64) {
        let element = if self.half { 2 } else { 4 };
        self.net.plan.cost_per_image(element)
    }
    /// `frames`: packed RGB images of `width`×`height`, as many as the engine's batch size.
    /// Per frame the detections after NMS (normalised model-input coordinates) or the
    /// candidate overflow, and the transform back to image pixels.
    pub fn detect_frames(
        &mut self,
        frames: &[&[u8]],
        width: usize,
        height: usize,
    ) -> Result<(Vec<FrameResult>, InputTransform), GpuError> {
        self.copy_in(frames, width, height)?;
        let f = self
            .frame
            .as_ref()
            .ok_or_else(|| GpuError::Backend("cuda: no frame path".into()))?;
        match &f.graph {
            Some(g) => g.launch().map_err(|e| gpu_error("graph launch", e))?,
            None => self.enqueue_frame(f)?,
        }
        self.gpu.sync()?;
        Ok((self.postprocess.read(self.batch), f.transform))
    }

    /// The network alone as one CUDA graph, input and outputs left on the device: `iterations`
    /// host wall times in ms of one launch + synchronize, after a few untimed launches.
    pub fn network_latency_ms(&mut self, iterations: usize) -> Result<Vec<f64>, GpuError> {
        if self.network_graph.is_none() {
            self.network_graph = Some(self.capture_network()?);
        }
        let graph = self
            .network_graph
            .as_ref()
            .ok_or_else(|| GpuError::Backend("cuda: no network graph".into()))?;
        let run = || -> Result<f64, GpuError> {
            let t = Instant::now();
            graph
                .launch()
                .map_err(|e| gpu_error("network graph launch", e))?;
            self.gpu.sync()?;
            Ok(t.elapsed().as_secs_f64() * 1e3)
        };
        // Untimed launches first: the first uploads the graph to the device and warms the caches,
        // as the bench's frame loop and the peer do.
        for _ in 0..5 {
            run()?;
        }
        (0..iterations).map(|_| run()).collect()
    }

    /// The frame path stage by stage with device timers (benchmarks).
    pub fn profile_stages(
        &mut self,
        frames: &[&[u8]],
        width: usize,
        height: usize,
    ) -> Result<GpuStageTimes, GpuError> {
        self.copy_in(frames, width, height)?;
        let f = self
            .frame
            .as_ref()
            .ok_or_else(|| GpuError::Backend("cuda: no frame path".into()))?;
        let event = || {
            self.gpu
                .stream
                .record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
                .map_err(|e| gpu_error("event", e))
        };
        // The eager wall time, host included.
        let host = Instant::now();
        self.enqueue_frame(f)?;
        self.gpu.sync()?;
        let wall = host.elapsed();
        // The stages' GPU times: everything queued behind a spin kernel before the GPU starts, so
        // the events do not measure the host's launch rate.
        network::hold_gpu(&self.gpu)?;
        let e0 = event()?;
        self.upload_frames(f)?;
        let e1 = event()?;
        self.preprocess(f)?;
        let e2 = event()?;
        self.net.enqueue(&self.gpu)?;
        let e3 = event()?;
        self.postprocess.enqueue(&self.gpu, self.batch)?;
        let e4 = event()?;
        self.postprocess.download(&self.gpu)?;
        let e5 = event()?;
        self.gpu.sync()?;
        if std::env::var_os("ADASD_PROFILE_STEPS").is_some() {
            // Where the network's time goes, slowest steps first (diagnostics for engine work).
            let steps = self.net.profile_steps(&self.gpu)?;
            let total: f64 = steps.iter().map(|s| s.1).sum();
            tracing::info!("steps: {} taking {total:.4} ms one by one", steps.len());
            for (what, ms) in &steps {
                tracing::info!("step {ms:8.4} ms  {what}");
            }
        }
        let ms = |a: &cudarc::driver::CudaEvent, b: &cudarc::driver::CudaEvent| {
            a.elapsed_ms(b)
                .map(f64::from)
                .map_err(|e| gpu_error("event timing", e))
        };
        Ok(GpuStageTimes {
            upload_ms: ms(&e0, &e1)?,
            preprocess_ms: ms(&e1, &e2)?,
            inference_ms: ms(&e2, &e3)?,
            decode_nms_ms: ms(&e3, &e4)?,
            download_ms: ms(&e4, &e5)?,
            eager_wall_ms: wall.as_secs_f64() * 1e3,
        })
    }
}

fn source_hash(extra: &str) -> String {
    Sha256::digest(format!("{ENGINE_KERNELS}{extra}{}", plugins::COMMON).as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_hash(path: &std::path::Path) -> String {
    std::fs::read(path)
        .map(|b| {
            Sha256::digest(&b)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        })
        .unwrap_or_default()
}
