//! INT8 convolutions on the GPU (`int8.cu`): dense ones on tensor cores (`conv_int8_mma`),
//! depthwise ones on CUDA cores (`dwconv_int8`), both with the requantizing epilogue fused. The
//! arithmetic is [`crate::engine::int8`]'s, bit for bit. [`Int8Convolver`] runs one convolution
//! at a time (the kernels' GPU tests).

use super::device::{Arg, DevPtr, Gpu};
use crate::engine::int8::{Output, QConv, QOutput, QWeights};
use crate::engine::plan::{Operand, Slice};
use crate::engine::qdq::Affine;
use crate::GpuError;
use adas_plugins::gpu::Act;
use cudarc::driver::{CudaSlice, CudaStream};
use std::path::Path;

const SOURCE: &str = include_str!("int8.cu");
const NAMES: &[&str] = &[
    "conv_int8_mma",
    "dwconv_int8",
    "dwconv3x3_int8",
    "quantize_f16",
    "requantize",
];
/// The dense kernel's block size.
const THREADS: u32 = 128;
/// The depthwise kernels' block size (`Gpu::launch_on`'s).
const DW_THREADS: u32 = 256;
/// Values a thread of the element-wise kernels, where their accesses can be that wide (`EW_LANES`).
const EW_LANES: usize = 8;

/// How a convolution's outputs are split among the kernels' threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// `conv_int8_mma`, a 64-pixel × 64-channel tile a block.
    Square,
    /// `conv_int8_mma`, a 128-pixel × 32-channel tile a block: where the last of K's 64-channel
    /// tiles would hold 32 channels or fewer (MobileNets' projections and first layers), no
    /// warp multiplies past K.
    Tall,
    /// `dwconv_int8`, one output pixel a thread.
    Pixel,
    /// `dwconv3x3_int8`: 3 × 3, dilation 1, stride 1 or 2, 4 channels a thread, and 4 (stride
    /// 1) or 2 neighbouring output pixels, whose taps share input columns.
    Pixels,
}

impl Split {
    /// The split every convolution of `c`'s kind can take, and the wider one where `c` allows
    /// it.
    fn splits(c: &QConv) -> (Split, Option<Split>) {
        if c.groups == 1 {
            (
                Split::Square,
                matches!(c.k % 64, 1..=32).then_some(Split::Tall),
            )
        } else {
            (
                Split::Pixel,
                (Split::pixels_per_thread(c) > 1).then_some(Split::Pixels),
            )
        }
    }

    /// Every split that can run `c` (the GPU tests run each).
    pub fn candidates(c: &QConv) -> Vec<Split> {
        let (narrow, wide) = Split::splits(c);
        std::iter::once(narrow).chain(wide).collect()
    }

    /// The split for `c` on a GPU that holds `resident(kernel, threads)` blocks of a kernel at
    /// once: the wider one (fewer, fuller blocks) only where its blocks still fill the whole
    /// GPU — at batch 1 a 150 × 150 layer gives an H100 too few of them, and the narrow
    /// split's extra blocks then run in parallel.
    fn choose<E>(
        c: &QConv,
        resident: impl FnOnce(&'static str, u32) -> Result<usize, E>,
    ) -> Result<Split, E> {
        Ok(match Split::splits(c) {
            (_, Some(wide)) if wide.blocks(c) >= resident(wide.kernel(), wide.threads())? => wide,
            (narrow, _) => narrow,
        })
    }

    fn kernel(self) -> &'static str {
        match self {
            Split::Square | Split::Tall => "conv_int8_mma",
            Split::Pixel => "dwconv_int8",
            Split::Pixels => "dwconv3x3_int8",
        }
    }

    fn threads(self) -> u32 {
        match self {
            Split::Square | Split::Tall => THREADS,
            Split::Pixel | Split::Pixels => DW_THREADS,
        }
    }

    /// The dense tile, pixels × output channels (`BM` × `BN` in int8.cu).
    fn tile(self) -> (usize, usize) {
        if self == Split::Tall {
            (128, 32)
        } else {
            (64, 64)
        }
    }

    /// `dwconv3x3_int8`'s output pixels a thread for `c`; 1 where it cannot run `c`.
    fn pixels_per_thread(c: &QConv) -> usize {
        let shape = c.r == 3 && c.s == 3 && c.dilation == [1, 1];
        let lanes = four_channel_pitches(c);
        match c.stride {
            [1, 1] if shape && lanes => 4,
            [2, 2] if shape && lanes => 2,
            _ => 1,
        }
    }

    /// Output pixels a thread (depthwise splits).
    fn pixels(self, c: &QConv) -> usize {
        if self == Split::Pixels {
            Split::pixels_per_thread(c)
        } else {
            1
        }
    }

    /// The dense kernel's grid: pixel tiles × channel tiles.
    fn dense_grid(self, c: &QConv) -> (usize, usize) {
        let (m, n) = self.tile();
        ((c.n * c.oh * c.ow).div_ceil(m), c.k.div_ceil(n))
    }

    /// A depthwise kernel's threads per output row, `lanes` channels a thread.
    fn threads_per_row(self, c: &QConv, lanes: usize) -> usize {
        c.ow.div_ceil(self.pixels(c)) * c.k / lanes
    }

    /// Blocks of work for `c` (the launch's grid, before the grid-stride cap; four channels a
    /// depthwise thread).
    fn blocks(self, c: &QConv) -> usize {
        match self {
            Split::Square | Split::Tall => {
                let (pixels, channels) = self.dense_grid(c);
                pixels * channels
            }
            Split::Pixel | Split::Pixels => {
                c.n * c.oh * self.threads_per_row(c, 4).div_ceil(DW_THREADS as usize)
            }
        }
    }
}

/// Channel count and both pixel pitches multiples of 4: four channels a depthwise thread, in
/// 4-byte accesses.
fn four_channel_pitches(c: &QConv) -> bool {
    [c.c, c.x_pitch, c.y_pitch]
        .iter()
        .all(|v| v.is_multiple_of(4))
}

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
    split: Split,
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
            depthwise_layout(&q.weights, spec.k, spec.r, spec.s)
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
        let split = Split::choose(spec, |kernel, threads| gpu.resident_blocks(kernel, threads))?;
        Ok(DeviceQConv {
            split,
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
        // Four channels a depthwise thread where every access can be 4 bytes (8 for FP16
        // outputs); Pixels needs them.
        let out_bytes = c.output.bytes() as u64;
        let wide =
            four_channel_pitches(c) && x.is_multiple_of(4) && y.is_multiple_of(4 * out_bytes);
        // One depthwise grid row per output row (grid-stride past the 65 535 a grid has).
        let rows = (c.n * c.oh).min(65_535) as u32;
        match self.split {
            Split::Square | Split::Tall => {
                let tile_n = self.split.tile().1 as i32;
                let args: [&dyn Arg; 35] = [
                    &y, &x, &wt, &b, &m, &sf, &sc, &wz, &n, &h, &w, &ch, &k, &r, &s, &ph, &pw, &sh,
                    &sw, &dh, &dw, &oh, &ow, &xp, &yp, &xz, &yz, &lo, &hi, &mode, &y_scale, &act,
                    &act_a, &act_b, &tile_n,
                ];
                let (pixel_tiles, channel_tiles) = self.split.dense_grid(c);
                let grid = (pixel_tiles as u32, channel_tiles as u32, 1);
                gpu.launch_grid_on(stream, "conv_int8_mma", grid, THREADS, 0, &args)
            }
            Split::Pixels if wide => {
                let args: [&dyn Arg; 28] = [
                    &y, &x, &wt, &b, &m, &sf, &sc, &wz, &n, &h, &w, &ch, &ph, &pw, &sh, &oh, &ow,
                    &xp, &yp, &xz, &yz, &lo, &hi, &mode, &y_scale, &act, &act_a, &act_b,
                ];
                let per_row = self.split.threads_per_row(c, 4);
                gpu.launch_on(stream, "dwconv3x3_int8", per_row, rows, 0, &args)
            }
            Split::Pixel | Split::Pixels => {
                let lanes: i32 = if wide { 4 } else { 1 };
                let args: [&dyn Arg; 34] = [
                    &y, &x, &wt, &b, &m, &sf, &sc, &wz, &n, &h, &w, &ch, &r, &s, &ph, &pw, &sh,
                    &sw, &dh, &dw, &oh, &ow, &xp, &yp, &xz, &yz, &lo, &hi, &mode, &y_scale, &act,
                    &act_a, &act_b, &lanes,
                ];
                let per_row = Split::Pixel.threads_per_row(c, lanes as usize);
                gpu.launch_on(stream, "dwconv_int8", per_row, rows, 0, &args)
            }
        }
    }
}

/// A depthwise convolution's weights `[C][R][S]` as `dwconv_int8` and `dwconv3x3_int8` read
/// them: `[G][C][4]`, one dp4a word per group of four taps and channel. A 3 × 3 kernel has one
/// group per column (rows 0–2 and a zero weight: the output pixels of a thread share columns);
/// any other its taps in raster order, G = ⌈R·S / 4⌉, the last group padded with zero weights.
fn depthwise_layout(weights: &[i8], channels: usize, r: usize, s: usize) -> Vec<u8> {
    let taps = r * s;
    let by_column = (r, s) == (3, 3);
    let groups = if by_column { 3 } else { taps.div_ceil(4) };
    (0..groups * channels * 4)
        .map(|i| {
            let (g, c, u) = (i / 4 / channels, i / 4 % channels, i % 4);
            let tap = if by_column {
                (u < 3).then_some(u * s + g)
            } else {
                Some(g * 4 + u).filter(|&t| t < taps)
            };
            tap.map_or(0, |t| weights[c * taps + t] as u8)
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
    // Eight values a thread where the kernel can (int8.cu's EW_LANES); its loop covers the rest.
    gpu.launch_on(stream, "quantize_f16", len.div_ceil(EW_LANES), 1, 0, &args)
}

/// Enqueues a [`crate::engine::plan::Step::Requantize`]: `len` values of `x` (and `b`), each
/// int8 or FP16 on its grid, through `act` onto `grid`, into `y` (or its slice `into`) as int8
/// (`int8`) or as their FP16 value.
#[allow(clippy::too_many_arguments)]
pub(crate) fn launch_requantize(
    gpu: &Gpu,
    stream: &CudaStream,
    y: DevPtr,
    x: (DevPtr, Operand),
    b: Option<(DevPtr, Operand)>,
    act: Act,
    len: usize,
    grid: Affine,
    int8: bool,
    into: Option<Slice>,
) -> Result<(), GpuError> {
    let too_many = || GpuError::Backend(format!("cuda: requantizing {len} values: 2^31 or more"));
    let n = i32::try_from(len).map_err(|_| too_many())?;
    let last = into.map_or(len, |s| s.at(len.saturating_sub(1)) + 1);
    i32::try_from(last).map_err(|_| too_many())?;
    let (run, stride, offset) = into.map_or((n, n, 0), |s| {
        (s.len as i32, s.stride as i32, s.offset as i32)
    });
    let operand =
        |(p, o): (DevPtr, Operand)| (p, o.grid.scale, i32::from(o.grid.zero), i32::from(o.int8));
    let (xp, xs, xz, x8) = operand(x);
    // A null pointer: no second operand.
    let (bp, bs, bz, b8) = b.map_or((0, 1.0, 0, 0), operand);
    let (code, act_a, act_b) = act.code();
    let (scale, zero, out) = (grid.scale, i32::from(grid.zero), i32::from(int8));
    let args: [&dyn Arg; 19] = [
        &y, &xp, &xs, &xz, &x8, &bp, &bs, &bz, &b8, &n, &code, &act_a, &act_b, &scale, &zero, &out,
        &run, &stride, &offset,
    ];
    gpu.launch_on(stream, "requantize", len.div_ceil(EW_LANES), 1, 0, &args)
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

    /// `spec` on `x` (laid out as `spec` says) on the GPU, split among threads as `split` says
    /// (one of [`Split::candidates`]), or as the engine chooses for this GPU.
    pub fn conv(
        &self,
        spec: &QConv,
        q: &QWeights,
        x: &[i8],
        split: Option<Split>,
    ) -> Result<QOutput, GpuError> {
        if x.len() != spec.x_len() {
            return Err(GpuError::Backend(format!(
                "cuda: INT8 convolution: {} input values for a buffer of {}",
                x.len(),
                spec.x_len()
            )));
        }
        let gpu = &self.gpu;
        let mut conv = DeviceQConv::upload(gpu, spec, q)?;
        if let Some(split) = split {
            if !Split::candidates(spec).contains(&split) {
                return Err(GpuError::Backend(format!(
                    "cuda: INT8 convolution: {split:?} cannot run {} × {} groups {} stride {:?}; \
                     it takes one of {:?}",
                    spec.r,
                    spec.s,
                    spec.groups,
                    spec.stride,
                    Split::candidates(spec)
                )));
            }
            conv.split = split;
        }
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
    use super::{depthwise_layout, Split};
    use crate::engine::int8::{Output, QConv};
    use adas_plugins::gpu::Act;

    /// A MobileNet layer at batch `n`: `size`² output pixels, `c` → `k` channels, 1 × 1 dense
    /// or 3 × 3 depthwise (`groups` = C = K) at `stride`.
    fn layer(n: usize, size: usize, c: usize, k: usize, depthwise: bool, stride: usize) -> QConv {
        let taps = if depthwise { 3 } else { 1 };
        QConv {
            n,
            h: size * stride,
            w: size * stride,
            c,
            k,
            r: taps,
            s: taps,
            pad: [taps / 2; 2],
            stride: [stride; 2],
            dilation: [1, 1],
            groups: if depthwise { c } else { 1 },
            oh: size,
            ow: size,
            x_pitch: c,
            y_pitch: k,
            x_zero: 0,
            y_zero: 0,
            y_scale: 1.0,
            clamp: (-128, 127),
            output: Output::Int8,
            act: Act::None,
        }
    }

    #[test]
    fn the_wider_split_is_taken_only_where_its_blocks_fill_the_gpu() {
        use Split::*;
        // Dense: the 128 × 32 tile where K's last 64-channel tile would hold 32 or fewer
        // (MobileNets' projections and first layers), never past K by more than 31 channels.
        for k in [16, 24, 32, 96, 144, 160, 273, 288] {
            assert_eq!(
                Split::candidates(&layer(1, 19, 64, k, false, 1)),
                [Square, Tall]
            );
        }
        for k in [33, 64, 192, 384, 546, 576, 960, 1280] {
            assert_eq!(Split::candidates(&layer(1, 19, 64, k, false, 1)), [Square]);
        }
        // Depthwise: several pixels a thread for 3 × 3 at stride 1 (4) and 2 (2), with four
        // channels a thread; one otherwise.
        let dw = layer(1, 150, 32, 32, true, 1);
        assert_eq!(Split::candidates(&dw), [Pixel, Pixels]);
        assert_eq!(Pixels.pixels(&dw), 4);
        assert_eq!(Pixels.pixels(&layer(1, 75, 96, 96, true, 2)), 2);
        let odd_pitch = QConv {
            x_pitch: 33,
            ..dw.clone()
        };
        let dilated = QConv {
            dilation: [2, 2],
            ..dw.clone()
        };
        let five = QConv {
            r: 5,
            s: 5,
            ..dw.clone()
        };
        for c in [odd_pitch, dilated, five, layer(1, 50, 32, 32, true, 3)] {
            assert_eq!(Split::candidates(&c), [Pixel], "{c:?}");
        }
        // The choice: an H100 holds 132 SMs × 7 blocks of the dense kernel, × 3 of the
        // depthwise one. The SSD's 150 × 150 projection (K = 16) and depthwise layer give it
        // 176 and 300 of the wider blocks at batch 1 — the narrow split runs there —, 5 632 and
        // 9 600 at batch 32.
        let h100 = |kernel: &str, _threads: u32| -> Result<usize, ()> {
            Ok(132 * if kernel == "conv_int8_mma" { 7 } else { 3 })
        };
        let projection = |n| layer(n, 150, 32, 16, false, 1);
        let depthwise = |n| layer(n, 150, 32, 32, true, 1);
        assert_eq!(Tall.blocks(&projection(1)), 176);
        assert_eq!(Pixels.blocks(&depthwise(1)), 300);
        assert_eq!(Split::choose(&projection(1), h100), Ok(Square));
        assert_eq!(Split::choose(&projection(32), h100), Ok(Tall));
        assert_eq!(Split::choose(&depthwise(1), h100), Ok(Pixel));
        assert_eq!(Split::choose(&depthwise(32), h100), Ok(Pixels));
        // A Jetson Orin (16 SMs) is filled at batch 1 already.
        let orin = |kernel: &str, _threads: u32| -> Result<usize, ()> {
            Ok(16 * if kernel == "conv_int8_mma" { 7 } else { 3 })
        };
        assert_eq!(Split::choose(&projection(1), orin), Ok(Tall));
        assert_eq!(Split::choose(&depthwise(1), orin), Ok(Pixels));
        // Only the wider split's kernel is asked about, and its error is the choice's.
        let unloaded = |kernel: &str, _threads: u32| -> Result<usize, String> {
            Err(format!("{kernel} not loaded"))
        };
        assert_eq!(
            Split::choose(&depthwise(1), unloaded),
            Err("dwconv3x3_int8 not loaded".to_string())
        );
        assert_eq!(
            Split::choose(&layer(1, 19, 64, 64, false, 1), unloaded),
            Ok(Square)
        );
    }

    #[test]
    fn depthwise_weights_are_grouped_by_four_taps_per_channel() {
        // Each weight names its channel and tap: c·16 + t.
        let weights = |taps: i8| -> Vec<i8> {
            (0..3)
                .flat_map(|c| (0..taps).map(move |t| c * 16 + t))
                .collect()
        };
        // 3 × 3: group g is column g, byte u its row u, the fourth byte a zero weight.
        let laid = depthwise_layout(&weights(9), 3, 3, 3);
        assert_eq!(laid.len(), 3 * 3 * 4, "3 columns of 3 channels × 4 bytes");
        for g in 0..3 {
            for c in 0..3 {
                let word = &laid[(g * 3 + c) * 4..][..4];
                let want = [0, 1, 2].map(|u| (c * 16 + u * 3 + g) as u8);
                assert_eq!(
                    word,
                    [want[0], want[1], want[2], 0],
                    "column {g}, channel {c}"
                );
            }
        }
        // 2 × 3: six taps in raster order, two groups, the last padded.
        let laid = depthwise_layout(&weights(6), 3, 2, 3);
        assert_eq!(
            laid.len(),
            2 * 3 * 4,
            "⌈6/4⌉ = 2 groups of 3 channels × 4 taps"
        );
        for g in 0..2 {
            for c in 0..3 {
                let word = &laid[(g * 3 + c) * 4..][..4];
                for (u, &b) in word.iter().enumerate() {
                    let t = g * 4 + u;
                    let want = if t < 6 { (c * 16 + t) as u8 } else { 0 };
                    assert_eq!(b, want, "group {g}, channel {c}, tap {t}");
                }
            }
        }
    }
}
