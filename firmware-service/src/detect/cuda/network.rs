//! The lowered network on the GPU: device buffers, weights (FP32 or FP16), one cuDNN
//! convolution per Conv step with its measured algorithm, and `enqueue`, which puts every step on
//! the stream — eagerly, or while a CUDA graph is being captured.

use super::device::{gpu_error, Arg, DevPtr, Gpu};
use crate::detect::engine::plan::{ConvStep, Coord, Plan, Step};
use crate::detect::DetectError;
use cudarc::cudnn::{result as dnn, sys};
use cudarc::driver::{CudaSlice, DeviceRepr};

/// Algorithm and workspace of one convolution, as measured by cuDNN (kept in the plan cache).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConvChoice {
    pub algo: u32,
    pub workspace: usize,
    pub time_ms: f32,
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
        // SAFETY: created in `Network::build`, destroyed once.
        unsafe {
            let _ = dnn::destroy_handle(self.0);
        }
    }
}

pub struct Network {
    pub plan: Plan,
    buffers: Vec<(CudaSlice<u8>, DevPtr)>,
    weights: Vec<(CudaSlice<u8>, DevPtr)>,
    /// Per step: the cuDNN descriptors of a Conv step (None for other steps).
    convs: Vec<Option<Descriptors>>,
    pub choices: Vec<ConvChoice>,
    workspace: (CudaSlice<u8>, DevPtr, usize),
    handle: Handle,
}

// SAFETY: the cuDNN handle and descriptors are only used from the thread that currently owns
// the Network (it is moved between threads, never shared).
unsafe impl Send for Network {}

fn dnn_error(what: &str, e: impl std::fmt::Debug) -> DetectError {
    DetectError::Backend(format!("cuda: cuDNN {what}: {e:?}"))
}

/// `ConvChoice::algo` of the engine's own implicit-GEMM kernels (cuDNN's are 0…7): 64×64 tiles
/// and 16×16 tiles.
pub const OWN_IGEMM: u32 = 1000;
pub const OWN_IGEMM16: u32 = 1001;

fn is_own(algo: u32) -> bool {
    algo == OWN_IGEMM || algo == OWN_IGEMM16
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
    /// replays must be bit-exact.
    pub fn build(
        gpu: &Gpu,
        plan: Plan,
        half: bool,
        cached: Option<&[ConvChoice]>,
    ) -> Result<Network, DetectError> {
        let elem = if half { 2 } else { 4 };
        let buffers = plan
            .buffers
            .iter()
            .map(|&n| gpu.alloc(n * elem))
            .collect::<Result<Vec<_>, _>>()?;
        // Conv weights in the activation type; biases and affine parameters stay FP32.
        let mut conv_weight = vec![false; plan.weights.len()];
        for s in &plan.steps {
            if let Step::Conv(c) = s {
                conv_weight[c.weight] = true;
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
        let handle = Handle(dnn::create_handle().map_err(|e| dnn_error("handle", e))?);
        // SAFETY: the handle is valid; the stream outlives the network (both owned by the backend).
        unsafe { dnn::set_stream(handle.0, gpu.stream.cu_stream() as *mut _) }
            .map_err(|e| dnn_error("set stream", e))?;
        let mut convs = Vec::with_capacity(plan.steps.len());
        for s in &plan.steps {
            convs.push(match s {
                Step::Conv(c) if !c.is_depthwise() => Some(conv_descriptors(c, half)?),
                _ => None,
            });
        }
        let n_convs = convs.iter().filter(|c| c.is_some()).count();
        let choices: Vec<ConvChoice> = match cached {
            Some(c)
                if c.len() == n_convs
                    && c.iter()
                        .all(|c| is_own(c.algo) || algo_from(c.algo).is_some()) =>
            {
                c.to_vec()
            }
            _ => {
                gpu.sync()?;
                let search = gpu.alloc(SEARCH_WORKSPACE)?;
                let mut out = Vec::with_capacity(n_convs);
                for (step, d) in plan.steps.iter().zip(&convs) {
                    if let (Step::Conv(c), Some(d)) = (step, d) {
                        let best = find(
                            handle.0,
                            d,
                            buffers[c.x].1,
                            weights[c.weight].1,
                            buffers[c.y].1,
                            search.1,
                            &c.node,
                        )?;
                        // cuDNN's best against our own kernels, each timed the same way with its
                        // epilogue (cuDNN's own figure leaves the epilogue out); keep the fastest.
                        let (bias, residual) = (
                            c.bias.map_or(0, |b| weights[b].1),
                            c.residual.map_or(0, |r| buffers[r].1),
                        );
                        let io = (
                            buffers[c.x].1,
                            buffers[c.y].1,
                            weights[c.weight].1,
                            bias,
                            residual,
                        );
                        let ws = (search.1, best.workspace);
                        let mut choice = ConvChoice {
                            time_ms: time_layer(gpu, || {
                                launch_cudnn(gpu, handle.0, d, best.algo, ws, c, io)
                            })?,
                            ..best
                        };
                        for algo in [OWN_IGEMM, OWN_IGEMM16] {
                            let t = time_layer(gpu, || launch_own(gpu, algo, c, io))?;
                            if t < choice.time_ms {
                                choice = ConvChoice {
                                    algo,
                                    workspace: 0,
                                    time_ms: t,
                                };
                            }
                        }
                        out.push(choice);
                    }
                }
                out
            }
        };
        let own = |a| choices.iter().filter(|c| c.algo == a).count();
        tracing::info!(
            "cuda engine: {} convolutions on cuDNN, {} on own 64×64 tiles, {} on own 16×16 tiles, {} depthwise; sum of measured times {:.3} ms",
            choices.len() - own(OWN_IGEMM) - own(OWN_IGEMM16),
            own(OWN_IGEMM),
            own(OWN_IGEMM16),
            plan.steps.iter().filter(|s| matches!(s, Step::Conv(c) if c.is_depthwise())).count(),
            choices.iter().map(|c| c.time_ms).sum::<f32>()
        );
        let ws = choices.iter().map(|c| c.workspace).max().unwrap_or(0);
        let (slice, ptr) = gpu.alloc(ws)?;
        Ok(Network {
            plan,
            buffers,
            weights,
            convs,
            choices,
            workspace: (slice, ptr, ws),
            handle,
        })
    }

    pub fn buffer(&self, id: usize) -> DevPtr {
        self.buffers.get(id).map_or(0, |b| b.1)
    }

    pub fn input(&self) -> DevPtr {
        self.buffer(self.plan.input)
    }

    /// Puts every step on the stream.
    pub fn enqueue(&self, gpu: &Gpu) -> Result<(), DetectError> {
        let mut conv_index = 0;
        for (step, desc) in self.plan.steps.iter().zip(&self.convs) {
            self.enqueue_step(gpu, step, desc.as_ref(), &mut conv_index)?;
        }
        Ok(())
    }

    /// Device time of every step (CUDA events around each), slowest first: where the time goes.
    pub fn profile_steps(&self, gpu: &Gpu) -> Result<Vec<(String, f64)>, DetectError> {
        use cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT;
        let event = || {
            gpu.stream
                .record_event(Some(CU_EVENT_DEFAULT))
                .map_err(|e| gpu_error("event", e))
        };
        let mut conv_index = 0;
        let mut marks = vec![event()?];
        for (step, desc) in self.plan.steps.iter().zip(&self.convs) {
            self.enqueue_step(gpu, step, desc.as_ref(), &mut conv_index)?;
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

    fn enqueue_step(
        &self,
        gpu: &Gpu,
        step: &Step,
        desc: Option<&Descriptors>,
        conv_index: &mut usize,
    ) -> Result<(), DetectError> {
        let buf = |id: usize| self.buffer(id);
        let wt = |id: usize| self.weights.get(id).map_or(0, |w| w.1);
        {
            match step {
                Step::Conv(c) if c.is_depthwise() => {
                    let io = (
                        buf(c.x),
                        buf(c.y),
                        wt(c.weight),
                        c.bias.map_or(0, wt),
                        c.residual.map_or(0, buf),
                    );
                    let args = conv_args(c, &io);
                    let refs: Vec<&dyn Arg> = args.iter().map(|a| a.as_ref()).collect();
                    gpu.launch("dwconv_nhwc", c.n * c.oh * c.ow * c.k, 1, 0, &refs)?;
                }
                Step::Conv(c) => {
                    let choice = self.choices[*conv_index];
                    *conv_index += 1;
                    if is_own(choice.algo) {
                        let (bias, residual) = (c.bias.map_or(0, wt), c.residual.map_or(0, buf));
                        let io = (buf(c.x), buf(c.y), wt(c.weight), bias, residual);
                        return launch_own(gpu, choice.algo, c, io);
                    }
                    let d = desc.ok_or_else(|| {
                        DetectError::Backend("cuda: conv without descriptors".into())
                    })?;
                    let (bias, residual) = (c.bias.map_or(0, wt), c.residual.map_or(0, buf));
                    let io = (buf(c.x), buf(c.y), wt(c.weight), bias, residual);
                    let workspace = (self.workspace.1, self.workspace.2);
                    launch_cudnn(gpu, self.handle.0, d, choice.algo, workspace, c, io)?;
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
                    gpu.launch("pad_nhwc", n * oh * ow * c, 1, 0, &args)?;
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
                    gpu.launch("maxpool_nhwc", n * oh * ow * c, 1, 0, &args)?;
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
                } => {
                    let coord = match coord {
                        Coord::HalfPixel => 0i32,
                        Coord::Asymmetric => 1,
                        Coord::AlignCorners => 2,
                        Coord::PytorchHalfPixel => 3,
                    };
                    let args: [&dyn Arg; 13] = [
                        &buf(*y),
                        &buf(*x),
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
                    gpu.launch("resize_nhwc", n * oh * ow * c, 1, 0, &args)?;
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
                    gpu.launch("eltwise", *len, 1, 0, &args)?;
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
                    gpu.launch("affine", *len, 1, 0, &args)?;
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
                    gpu.launch("copy_slab", outer * len, 1, 0, &args)?;
                }
                Step::Permute { x, y, dims, axes } => {
                    launch_permute(gpu, buf(*y), buf(*x), dims, axes)?
                }
            }
        }
        Ok(())
    }
}

/// A cuDNN convolution followed by the epilogue kernel (bias, residual, activation).
fn launch_cudnn(
    gpu: &Gpu,
    handle: sys::cudnnHandle_t,
    d: &Descriptors,
    algo: u32,
    (ws, ws_size): (DevPtr, usize),
    c: &ConvStep,
    (x, y, w, bias, residual): (DevPtr, DevPtr, DevPtr, DevPtr, DevPtr),
) -> Result<(), DetectError> {
    let algo = algo_from(algo).ok_or_else(|| DetectError::Backend("cuda: bad algorithm".into()))?;
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
        gpu.launch("epilogue", n, 1, 0, &args)?;
    }
    Ok(())
}

/// Device time of `launch` (best of 5 after a warm-up), ms. Timing runs only write the layer's
/// own output buffer, which every frame rewrites.
fn time_layer(gpu: &Gpu, launch: impl Fn() -> Result<(), DetectError>) -> Result<f32, DetectError> {
    use cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT;
    let event = || {
        gpu.stream
            .record_event(Some(CU_EVENT_DEFAULT))
            .map_err(|e| gpu_error("event", e))
    };
    launch()?;
    let mut best = f32::INFINITY;
    for _ in 0..5 {
        let start = event()?;
        launch()?;
        let end = event()?;
        end.synchronize().map_err(|e| gpu_error("event", e))?;
        best = best.min(
            start
                .elapsed_ms(&end)
                .map_err(|e| gpu_error("event timing", e))?,
        );
    }
    Ok(best)
}

/// The parameter list shared by `dwconv_nhwc`, `conv_igemm` and `conv_igemm16`: output, input,
/// weights, bias, residual, geometry, activation.
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
    args
}

/// The engine's own implicit-GEMM convolution with its fused epilogue.
fn launch_own(
    gpu: &Gpu,
    algo: u32,
    c: &ConvStep,
    (x, y, w, bias, residual): (DevPtr, DevPtr, DevPtr, DevPtr, DevPtr),
) -> Result<(), DetectError> {
    let args = conv_args(c, &(x, y, w, bias, residual));
    let args: Vec<&dyn Arg> = args.iter().map(|a| a.as_ref()).collect();
    let pixels = c.n * c.oh * c.ow;
    let (name, tile) = if algo == OWN_IGEMM16 {
        ("conv_igemm16", 16)
    } else {
        ("conv_igemm", 64)
    };
    gpu.launch_grid(
        name,
        (pixels.div_ceil(tile) as u32, c.k.div_ceil(tile) as u32),
        256,
        0,
        &args,
    )
}

/// A step in a few words, for profiles.
fn describe(step: &Step) -> String {
    match step {
        Step::Conv(c) => format!(
            "conv{} {}x{} s{} {}→{} @{}x{} {}",
            if c.is_depthwise() { " dw" } else { "" },
            c.r,
            c.s,
            c.stride[0],
            c.c,
            c.k,
            c.oh,
            c.ow,
            c.node
        ),
        Step::Pad { nhwc, .. } => format!("pad {nhwc:?}"),
        Step::MaxPool { nhwc, .. } => format!("maxpool {nhwc:?}"),
        Step::Resize { nhwc, .. } => format!("resize {nhwc:?}"),
        Step::Eltwise { len, .. } => format!("eltwise {len}"),
        Step::Affine { len, .. } => format!("affine {len}"),
        Step::Copy { outer, len, .. } => format!("copy {outer}×{len}"),
        Step::Permute { dims, .. } => format!("permute {dims:?}"),
    }
}

/// Launches the permute kernel: row-major `y` with axis i = axis `axes[i]` of row-major `x`.
pub fn launch_permute(
    gpu: &Gpu,
    y: DevPtr,
    x: DevPtr,
    dims: &[usize],
    axes: &[usize],
) -> Result<(), DetectError> {
    let (out_dims, strides) = permute_args(dims, axes)?;
    let total: usize = dims.iter().product();
    let args: [&dyn Arg; 6] = [&y, &x, &i(dims.len()), &(total as i64), &out_dims, &strides];
    gpu.launch("permute", total, 1, 0, &args)
}

/// Kernel arguments of a permute: output dims and the input stride of each output axis.
fn permute_args(dims: &[usize], axes: &[usize]) -> Result<(Dims6, Dims6), DetectError> {
    if dims.len() > 6 || axes.len() != dims.len() {
        return Err(DetectError::Backend(
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
    c: &crate::detect::engine::plan::ConvStep,
    half: bool,
) -> Result<Descriptors, DetectError> {
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
) -> Result<ConvChoice, DetectError> {
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
