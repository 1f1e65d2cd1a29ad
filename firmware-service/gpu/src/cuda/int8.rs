//! INT8 convolutions on the GPU (`int8.cu`): dense ones on tensor cores (`conv_int8_mma`),
//! depthwise ones on CUDA cores (`dwconv_int8`), both with the requantizing epilogue fused. The
//! arithmetic is [`crate::engine::int8`]'s, bit for bit. [`Int8Convolver`] runs one convolution
//! at a time (the kernels' GPU tests).

use super::device::{Arg, DevPtr, Gpu};
use crate::engine::int8::{Output, QConv, QOutput, QWeights};
use crate::engine::qdq::Affine;
use crate::GpuError;
use adas_plugins::gpu::Act;
use cudarc::driver::{CudaSlice, CudaStream};
use std::path::Path;

const SOURCE: &str = include_str!("int8.cu");
const NAMES: &[&str] = &[
    "conv_int8_mma",
    "dwconv_int8",
    "quantize_f16",
    "requantize_f16",
];
/// The dense kernel's tile (`I8_BM` × `I8_BN` in int8.cu) and block size.
const TILE_PIXELS: usize = 64;
const TILE_CHANNELS: usize = 64;
const THREADS: u32 = 128;

/// `mma.sync` with s8 operands: compute capability 8.0 (Jetson Orin, Ampere) or newer.
pub fn supports_int8(compute_capability: (i32, i32)) -> bool {
    compute_capability >= (8, 0)
}

/// Compiles (or loads from the kernel cache) the INT8 kernels into `gpu`.
pub(crate) fn load(gpu: &mut Gpu, cache_dir: Option<&Path>) -> Result<(), GpuError> {
    let (major, minor) = gpu.identity.compute_capability;
    if !supports_int8(gpu.identity.compute_capability) {
        return Err(GpuError::Backend(format!(
            "cuda: INT8 needs tensor cores with int8 mma (compute capability 8.0 or newer: Jetson \
             Orin, Ampere, Hopper); {} is {major}.{minor}: use precision \"fp16\" or \"fp32\"",
            gpu.identity.gpu
        )));
    }
    // The source uses no activation type T: either prelude builds it.
    gpu.load_kernels(SOURCE, false, NAMES, cache_dir)
}

/// One INT8 convolution's constants on the GPU, ready to launch.
pub(crate) struct DeviceQConv {
    spec: QConv,
    weights: (CudaSlice<u8>, DevPtr),
    bias: (CudaSlice<u8>, DevPtr),
    multiplier: (CudaSlice<u8>, DevPtr),
    shift: (CudaSlice<u8>, DevPtr),
    scale: (CudaSlice<u8>, DevPtr),
    /// Weight zero points; None for symmetric weights (the kernels then skip Σ x).
    w_zero: Option<(CudaSlice<u8>, DevPtr)>,
}

impl DeviceQConv {
    pub fn upload(gpu: &Gpu, spec: &QConv, q: &QWeights) -> Result<DeviceQConv, GpuError> {
        if let Some(why) = spec.unsupported() {
            return Err(GpuError::Backend(format!("cuda: INT8 convolution: {why}")));
        }
        let want = spec.k * spec.q_len();
        let per_channel = [q.bias.len(), q.requant.len(), q.scale.len(), q.w_zero.len()];
        if q.weights.len() != want || per_channel.iter().any(|&n| n != spec.k) {
            return Err(GpuError::Backend(format!(
                "cuda: INT8 convolution: {} weights, {} biases, {} multipliers, {} scales, {} zero \
                 points for {} output channels of {} taps each",
                q.weights.len(),
                q.bias.len(),
                q.requant.len(),
                q.scale.len(),
                q.w_zero.len(),
                spec.k,
                spec.q_len()
            )));
        }
        let put_i32 = |v: &[i32]| -> Result<(CudaSlice<u8>, DevPtr), GpuError> {
            let b = gpu.alloc(v.len() * 4)?;
            gpu.upload(b.1, v)?;
            Ok(b)
        };
        let scale = gpu.alloc(q.scale.len() * 4)?;
        gpu.upload(scale.1, &q.scale)?;
        let bytes: Vec<u8> = if spec.groups == 1 {
            q.weights.iter().map(|&v| v as u8).collect()
        } else {
            depthwise_layout(&q.weights, spec.k, spec.r * spec.s)
        };
        let weights = gpu.alloc(bytes.len())?;
        gpu.upload(weights.1, &bytes)?;
        let multipliers: Vec<i32> = q.requant.iter().map(|r| r.multiplier).collect();
        let shifts: Vec<i32> = q.requant.iter().map(|r| r.shift).collect();
        let w_zero = if q.has_zero_point() {
            let zeros: Vec<i32> = q.w_zero.iter().map(|&z| i32::from(z)).collect();
            Some(put_i32(&zeros)?)
        } else {
            None
        };
        Ok(DeviceQConv {
            spec: spec.clone(),
            weights,
            bias: put_i32(&spec.folded_bias(q))?,
            multiplier: put_i32(&multipliers)?,
            shift: put_i32(&shifts)?,
            scale,
            w_zero,
        })
    }

    /// Enqueues y ← conv(x) on `stream` (x and y: the spec's pitched int8 input and its int8 or
    /// FP16 output).
    pub fn launch_on(
        &self,
        gpu: &Gpu,
        stream: &CudaStream,
        y: DevPtr,
        x: DevPtr,
    ) -> Result<(), GpuError> {
        let c = &self.spec;
        // unsupported() bounds every buffer below 2^31 values: the kernels index with i32.
        let i = |v: usize| v as i32;
        let (n, h, w, ch, k, r, s) = (i(c.n), i(c.h), i(c.w), i(c.c), i(c.k), i(c.r), i(c.s));
        let (ph, pw, sh, sw) = (i(c.pad[0]), i(c.pad[1]), i(c.stride[0]), i(c.stride[1]));
        let (dh, dw, oh, ow) = (i(c.dilation[0]), i(c.dilation[1]), i(c.oh), i(c.ow));
        let (xp, yp) = (i(c.x_pitch), i(c.y_pitch));
        let (xz, yz) = (i32::from(c.x_zero), i32::from(c.y_zero));
        let (lo, hi) = (i32::from(c.clamp.0), i32::from(c.clamp.1));
        // int8.cu's out_mode.
        let mode: i32 = match c.output {
            Output::Int8 => 0,
            Output::Fp16 => 1,
            Output::Float => 2,
        };
        let y_scale = c.y_scale;
        let (act, act_a, act_b) = c.act.code();
        let (wt, b, m, sf) = (self.weights.1, self.bias.1, self.multiplier.1, self.shift.1);
        let sc = self.scale.1;
        // A null pointer: symmetric weights.
        let wz: DevPtr = self.w_zero.as_ref().map_or(0, |z| z.1);
        if c.groups == 1 {
            let args: [&dyn Arg; 34] = [
                &y, &x, &wt, &b, &m, &sf, &sc, &wz, &n, &h, &w, &ch, &k, &r, &s, &ph, &pw, &sh,
                &sw, &dh, &dw, &oh, &ow, &xp, &yp, &xz, &yz, &lo, &hi, &mode, &y_scale, &act,
                &act_a, &act_b,
            ];
            let grid = (
                (c.n * c.oh * c.ow).div_ceil(TILE_PIXELS) as u32,
                c.k.div_ceil(TILE_CHANNELS) as u32,
                1,
            );
            gpu.launch_grid_on(stream, "conv_int8_mma", grid, THREADS, 0, &args)
        } else {
            // Four channels a thread where every access can be 4 bytes (8 for FP16 outputs).
            let out_bytes = c.output.bytes() as u64;
            let wide = [c.c, c.x_pitch, c.y_pitch]
                .iter()
                .all(|v| v.is_multiple_of(4))
                && x.is_multiple_of(4)
                && y.is_multiple_of(4 * out_bytes);
            let lanes: i32 = if wide { 4 } else { 1 };
            let args: [&dyn Arg; 34] = [
                &y, &x, &wt, &b, &m, &sf, &sc, &wz, &n, &h, &w, &ch, &r, &s, &ph, &pw, &sh, &sw,
                &dh, &dw, &oh, &ow, &xp, &yp, &xz, &yz, &lo, &hi, &mode, &y_scale, &act, &act_a,
                &act_b, &lanes,
            ];
            // One grid row per output row (grid-stride past the 65 535 a grid has).
            let per_row = c.ow * c.k / lanes as usize;
            let rows = (c.n * c.oh).min(65_535) as u32;
            gpu.launch_on(stream, "dwconv_int8", per_row, rows, 0, &args)
        }
    }
}

/// A depthwise convolution's weights `[C][taps]` as `dwconv_int8` reads them: `[G][C][4]`, the
/// taps in G = ⌈taps / 4⌉ groups of four (one dp4a word per channel and group), the last group
/// padded with zero weights.
fn depthwise_layout(weights: &[i8], channels: usize, taps: usize) -> Vec<u8> {
    let groups = taps.div_ceil(4);
    (0..groups * channels * 4)
        .map(|i| {
            let (g, c, u) = (i / 4 / channels, i / 4 % channels, i % 4);
            let t = g * 4 + u;
            if t < taps {
                weights[c * taps + t] as u8
            } else {
                0
            }
        })
        .collect()
}

/// Enqueues a [`crate::engine::plan::Step::Quantize`]: `len` FP16 values of `x` onto their
/// quantization grid, into `y` as int8 (`int8`) or as their FP16 value.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_quantize(
    gpu: &Gpu,
    stream: &CudaStream,
    y: DevPtr,
    x: DevPtr,
    len: usize,
    scale: f32,
    zero: i8,
    int8: bool,
) -> Result<(), GpuError> {
    let n = i32::try_from(len)
        .map_err(|_| GpuError::Backend(format!("cuda: quantizing {len} values: 2^31 or more")))?;
    let (zero, out) = (i32::from(zero), i32::from(int8));
    let args: [&dyn Arg; 6] = [&y, &x, &n, &scale, &zero, &out];
    gpu.launch_on(stream, "quantize_f16", len, 1, 0, &args)
}

/// Enqueues a [`crate::engine::plan::Step::Requantize`]: `len` values of `x` (and `b`), FP16
/// on their grids, through `act` onto `grid`, into `y` as int8 (`int8`) or as their FP16 value.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_requantize(
    gpu: &Gpu,
    stream: &CudaStream,
    y: DevPtr,
    x: (DevPtr, Affine),
    b: Option<(DevPtr, Affine)>,
    act: Act,
    len: usize,
    grid: Affine,
    int8: bool,
) -> Result<(), GpuError> {
    let n = i32::try_from(len)
        .map_err(|_| GpuError::Backend(format!("cuda: requantizing {len} values: 2^31 or more")))?;
    let (xp, xs, xz) = (x.0, x.1.scale, i32::from(x.1.zero));
    // A null pointer: no second operand.
    let (bp, bs, bz) = b.map_or((0, 1.0, 0), |(p, g)| (p, g.scale, i32::from(g.zero)));
    let (code, act_a, act_b) = act.code();
    let (scale, zero, out) = (grid.scale, i32::from(grid.zero), i32::from(int8));
    let args: [&dyn Arg; 14] = [
        &y, &xp, &xs, &xz, &bp, &bs, &bz, &n, &code, &act_a, &act_b, &scale, &zero, &out,
    ];
    gpu.launch_on(stream, "requantize_f16", len, 1, 0, &args)
}

/// One INT8 convolution at a time on a GPU: input up, kernel, output down.
pub struct Int8Convolver {
    gpu: Gpu,
}

impl Int8Convolver {
    /// The GPU `device` with the INT8 kernels loaded (errors: no GPU, or one without int8
    /// tensor cores).
    pub fn new(device: usize) -> Result<Int8Convolver, GpuError> {
        let mut gpu = Gpu::new(device)?;
        load(&mut gpu, None)?;
        Ok(Int8Convolver { gpu })
    }

    /// The GPU's name and compute capability.
    pub fn device(&self) -> String {
        let (major, minor) = self.gpu.identity.compute_capability;
        format!("{} (sm_{major}{minor})", self.gpu.identity.gpu)
    }

    /// `spec` on `x` (laid out as `spec` says) on the GPU.
    pub fn conv(&self, spec: &QConv, q: &QWeights, x: &[i8]) -> Result<QOutput, GpuError> {
        if x.len() != spec.x_len() {
            return Err(GpuError::Backend(format!(
                "cuda: INT8 convolution: {} input values for a buffer of {}",
                x.len(),
                spec.x_len()
            )));
        }
        let gpu = &self.gpu;
        let conv = DeviceQConv::upload(gpu, spec, q)?;
        let xb = gpu.alloc(x.len())?;
        let bytes: Vec<u8> = x.iter().map(|&v| v as u8).collect();
        gpu.upload(xb.1, &bytes)?;
        let len = spec.y_len();
        let yb = gpu.alloc(len * spec.output.bytes())?;
        conv.launch_on(gpu, &gpu.stream, yb.1, xb.1)?;
        let out = match spec.output {
            Output::Int8 => {
                let mut y = vec![0u8; len];
                gpu.download(&mut y, yb.1)?;
                gpu.sync()?;
                QOutput::Int8(y.into_iter().map(|v| v as i8).collect())
            }
            Output::Fp16 | Output::Float => {
                let mut y = vec![0u16; len];
                gpu.download(&mut y, yb.1)?;
                gpu.sync()?;
                QOutput::Fp16(
                    y.into_iter()
                        .map(|b| half::f16::from_bits(b).to_f32())
                        .collect(),
                )
            }
        };
        // The buffers live until the copies are done.
        drop((xb, yb, conv));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::depthwise_layout;

    #[test]
    fn depthwise_weights_are_grouped_by_four_taps_per_channel() {
        // 3 channels × 9 taps, each weight naming its channel and tap: c·16 + t.
        let weights: Vec<i8> = (0..3)
            .flat_map(|c| (0..9).map(move |t| c * 16 + t))
            .collect();
        let laid = depthwise_layout(&weights, 3, 9);
        assert_eq!(
            laid.len(),
            3 * 3 * 4,
            "⌈9/4⌉ = 3 groups of 3 channels × 4 taps"
        );
        for g in 0..3 {
            for c in 0..3 {
                let word = &laid[(g * 3 + c) * 4..][..4];
                for (u, &b) in word.iter().enumerate() {
                    let t = g * 4 + u;
                    let want = if t < 9 { (c * 16 + t) as u8 } else { 0 };
                    assert_eq!(b, want, "group {g}, channel {c}, tap {t}");
                }
            }
        }
    }
}
