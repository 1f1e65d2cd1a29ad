//! INT8 convolution arithmetic: the executable specification of the engine's INT8 kernels
//! (`cuda/int8.cu`), in TensorFlow Lite's integer semantics, pure Rust (CI checks it on the host,
//! the GPU tests compare the kernels with it bit for bit).
//!
//! Activations are int8 with a per-tensor scale and zero point (a uint8 model's values and zero
//! points minus 128), weights int8 with a scale and a zero point per output channel (0 where they
//! are symmetric), the bias INT32 at scale `x_scale · w_scale[k]`. An output is
//! `clamp(requantize(Σ (x − x_zero)·(w − w_zero[k]) + bias, m[k]) + y_zero, lo, hi)` with
//! `m[k] = x_scale · w_scale[k] / y_scale` as a Q31 fixed-point multiplier and a power of two
//! ([`Requant`], TensorFlow Lite's `QuantizeMultiplier` / `MultiplyByQuantizedMultiplier`), taps in
//! the padding contributing nothing; the activation is the clamp ([`activation_range`]). Where the
//! consumer is float the output is the dequantized value `(q − y_zero) · y_scale`, rounded to FP16;
//! where the model leaves the output unquantized (no convolution reads it: a detection head) it is
//! the INT32 sum's real value `(Σ + bias) · x_scale · w_scale[k]`, rounded to FP16 ([`Output::Float`]).

use super::qdq::Affine;
use adas_plugins::gpu::Act;

/// A real multiplier as TensorFlow Lite applies it: `multiplier · 2^shift / 2^31`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    /// Q31 mantissa in [2^30, 2^31) (0 for a zero multiplier).
    pub multiplier: i32,
    /// Power of two: > 0 shifts left before the multiplication, < 0 right after it.
    pub shift: i32,
}

impl Requant {
    /// TensorFlow Lite's `QuantizeMultiplier`: `m` as a Q31 mantissa and an exponent.
    pub fn new(m: f64) -> Requant {
        if m == 0.0 || !m.is_finite() {
            return Requant {
                multiplier: 0,
                shift: 0,
            };
        }
        let (frac, mut exp) = frexp(m);
        let mut q = (frac * (1u64 << 31) as f64).round() as i64;
        if q == 1 << 31 {
            q /= 2;
            exp += 1;
        }
        if exp < -31 {
            return Requant {
                multiplier: 0,
                shift: 0,
            };
        }
        Requant {
            multiplier: q as i32,
            shift: exp,
        }
    }

    /// TensorFlow Lite's `MultiplyByQuantizedMultiplier` (gemmlowp rounding, twice).
    pub fn apply(self, x: i32) -> i32 {
        let (left, right) = if self.shift > 0 {
            (self.shift, 0)
        } else {
            (0, -self.shift)
        };
        rounding_shift_right(
            q31_high_mul(x.wrapping_shl(left as u32), self.multiplier),
            right,
        )
    }
}

/// `m = frac · 2^exp` with |frac| in [0.5, 1) (C's frexp, for finite non-zero `m`).
fn frexp(m: f64) -> (f64, i32) {
    let mut exp = m.abs().log2().floor() as i32 + 1;
    let mut frac = m / 2f64.powi(exp);
    // log2 may land one off at exact powers of two.
    if frac.abs() >= 1.0 {
        frac /= 2.0;
        exp += 1;
    } else if frac.abs() < 0.5 {
        frac *= 2.0;
        exp -= 1;
    }
    (frac, exp)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: the rounded high half of 2·a·b.
pub fn q31_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge = if ab >= 0 {
        1i64 << 30
    } else {
        1 - (1i64 << 30)
    };
    // Rust's division truncates toward zero, as C's.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: x / 2^e, to nearest, ties away from zero.
pub fn rounding_shift_right(x: i32, e: i32) -> i32 {
    let mask = (1i32 << e).wrapping_sub(1);
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> e) + i32::from(remainder > threshold)
}

/// The quantized range an activation leaves: TensorFlow Lite's
/// `CalculateActivationRangeQuantized` for int8 (ReLU from the zero point, ReLU6 up to the
/// quantized 6). `None` for activations that are not a clamp (they stay float).
pub fn activation_range(act: Act, y_scale: f32, y_zero: i8) -> Option<(i8, i8)> {
    let q = |v: f32| (i32::from(y_zero) + (v / y_scale).round() as i32).clamp(-128, 127) as i8;
    match act {
        Act::None => Some((-128, 127)),
        Act::Relu => Some((y_zero, 127)),
        Act::Clip(lo, hi) => Some((q(lo), q(hi))),
        Act::Leaky(_) | Act::Sigmoid => None,
    }
}

/// The integer behind `v`, a value on grid `g` held dequantized (FP16 or FP32): exact, since the
/// activation type's rounding moves a value by at most 255·2⁻¹¹ of a step.
pub fn integer_of(v: f32, g: Affine) -> i32 {
    (v / g.scale).round_ties_even() as i32 + i32::from(g.zero)
}

/// One value of [`super::plan::Step::Requantize`]: `quantize(act(dequantize(x) +
/// dequantize(b)))` onto `to` (`x` and `b`: integers on their grids), as ONNX's
/// DequantizeLinear → op → QuantizeLinear define it in FP32 (each product and the sum rounded
/// once: no fused multiply-add; round half to even; saturated). On the COCO SSD it agrees with
/// TensorFlow Lite's fixed-point Add and its Concatenation and Logistic requantization on every
/// value measured (docs/GPU.md).
pub fn requantize(x: (i32, Affine), b: Option<(i32, Affine)>, act: Act, to: Affine) -> i8 {
    let real = |(q, g): (i32, Affine)| (q - i32::from(g.zero)) as f32 * g.scale;
    let sum = real(x) + b.map_or(0.0, real);
    let q = (act.apply(sum) / to.scale).round_ties_even() + f32::from(to.zero);
    q.clamp(-128.0, 127.0) as i8
}

/// What an INT8 convolution writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Output {
    /// int8, requantized: the next layer is INT8 too.
    Int8,
    /// The dequantized value as FP16: the consumer is float.
    Fp16,
    /// FP16 straight from the INT32 sum, `act((Σ + bias) · scale[k])` in FP32 then rounded once,
    /// with no output grid: the model does not quantize this output (no INT8 convolution reads
    /// it: a detection head, or the input of a layer kept float).
    Float,
}

impl Output {
    /// Bytes per output value.
    pub fn bytes(self) -> usize {
        match self {
            Output::Int8 => 1,
            Output::Fp16 | Output::Float => 2,
        }
    }
}

/// Shape and quantization of one INT8 convolution: NHWC int8 input with its pixels `x_pitch`
/// bytes apart, KRSC int8 weights (C/groups channels each), output pixels `y_pitch` values apart.
/// `groups` is 1 or C (= K, depthwise).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct QConv {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    pub k: usize,
    pub r: usize,
    pub s: usize,
    /// Top and left; bottom and right follow from `oh`, `ow`.
    pub pad: [usize; 2],
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
    pub x_pitch: usize,
    pub y_pitch: usize,
    pub x_zero: i8,
    pub y_zero: i8,
    pub y_scale: f32,
    /// The activation, as a clamp in the output's quantized domain.
    pub clamp: (i8, i8),
    pub output: Output,
    /// An [`Output::Float`]'s activation, on its FP32 value (`None` for quantized outputs).
    pub act: Act,
}

/// One INT8 convolution's constants: weights (KRSC) and their zero point, the model's INT32 bias
/// (at scale `x_scale · w_scale[k]`), the requantization and that scale, per output channel.
#[derive(Debug, Clone, PartialEq)]
pub struct QWeights {
    pub weights: Vec<i8>,
    /// Weight zero point per output channel; all 0 for symmetric weights.
    pub w_zero: Vec<i8>,
    pub bias: Vec<i32>,
    /// Onto the output's grid (an [`Output::Float`] convolution has none: multipliers of 0).
    pub requant: Vec<Requant>,
    /// `x_scale · w_scale[k]` in FP32, the real value of one unit of the INT32 sum: what an
    /// [`Output::Float`] output multiplies by.
    pub scale: Vec<f32>,
}

impl QWeights {
    /// Whether any output channel has a weight zero point (the kernels then also sum `X`).
    pub fn has_zero_point(&self) -> bool {
        self.w_zero.iter().any(|&z| z != 0)
    }
}

impl QConv {
    /// `c`'s geometry at batch `n` with dense buffers, and a neutral quantization: zero points
    /// 0, scale 1, no clamp, int8 out.
    pub fn of(c: &super::plan::ConvStep, n: usize) -> QConv {
        QConv {
            n,
            h: c.h,
            w: c.w,
            c: c.c,
            k: c.k,
            r: c.r,
            s: c.s,
            pad: c.pad,
            stride: c.stride,
            dilation: c.dilation,
            groups: c.groups,
            oh: c.oh,
            ow: c.ow,
            x_pitch: c.c,
            y_pitch: c.k,
            x_zero: 0,
            y_zero: 0,
            y_scale: 1.0,
            clamp: (i8::MIN, i8::MAX),
            output: Output::Int8,
            act: Act::None,
        }
    }

    /// Values of the input buffer (the last pixel needs only its C values).
    pub fn x_len(&self) -> usize {
        (self.n * self.h * self.w - 1) * self.x_pitch + self.c
    }

    /// Values of the output buffer.
    pub fn y_len(&self) -> usize {
        (self.n * self.oh * self.ow - 1) * self.y_pitch + self.k
    }

    /// Reduction length per output channel: R·S·C/groups.
    pub fn q_len(&self) -> usize {
        self.r * self.s * (self.c / self.groups)
    }

    /// Why the INT8 kernels cannot run this convolution, if they cannot.
    pub fn unsupported(&self) -> Option<String> {
        let dense = self.groups == 1;
        let depthwise = self.groups == self.c && self.c == self.k;
        if !dense && !depthwise {
            return Some(format!(
                "grouped convolution ({} groups of {} channels): INT8 runs dense and depthwise ones only",
                self.groups, self.c
            ));
        }
        if self.n * self.h * self.w * self.x_pitch.max(self.c) >= 1 << 31
            || self.n * self.oh * self.ow * self.y_pitch.max(self.k) >= 1 << 31
        {
            return Some("a buffer of 2^31 values or more".into());
        }
        None
    }

    /// The bias the kernels add. They read padding taps as `x_zero` and sum `S = Σ x·w` and, where
    /// the weights have a zero point, `X = Σ x` per output pixel (and channel, depthwise) over
    /// all R·S·C/groups taps; then `Σ (x − x_zero)(w − w_zero) = S − w_zero·X − x_zero·Σ w +
    /// taps·x_zero·w_zero`, and the constant terms fold into the bias.
    pub fn folded_bias(&self, q: &QWeights) -> Vec<i32> {
        let len = self.q_len();
        let xz = i32::from(self.x_zero);
        q.bias
            .iter()
            .zip(q.weights.chunks(len))
            .zip(&q.w_zero)
            .map(|((&b, w), &wz)| {
                let sum: i32 = w.iter().map(|&v| i32::from(v)).sum();
                let taps = len as i32;
                b.wrapping_sub(xz.wrapping_mul(sum))
                    .wrapping_add(taps.wrapping_mul(xz).wrapping_mul(i32::from(wz)))
            })
            .collect()
    }
}

/// The convolution's outputs, each at its place in the output buffer (values between pixels of a
/// pitched output stay 0).
#[derive(Debug, Clone, PartialEq)]
pub enum QOutput {
    Int8(Vec<i8>),
    /// FP16 values, widened to f32 (exactly).
    Fp16(Vec<f32>),
}

/// The reference: TensorFlow Lite's integer convolution, `x` as laid out by `conv`.
pub fn conv(conv: &QConv, q: &QWeights, x: &[i8]) -> QOutput {
    let cg = conv.c / conv.groups;
    let kg = conv.k / conv.groups;
    let len = conv.q_len();
    let xz = i32::from(conv.x_zero);
    let mut y8 = vec![0i8; conv.y_len()];
    let mut yf = vec![0f32; conv.y_len()];
    for n in 0..conv.n {
        for oy in 0..conv.oh {
            for ox in 0..conv.ow {
                let p = (n * conv.oh + oy) * conv.ow + ox;
                for k in 0..conv.k {
                    let g = k / kg;
                    let wz = i32::from(q.w_zero[k]);
                    let mut acc = 0i32;
                    for r in 0..conv.r {
                        let iy = (oy * conv.stride[0] + r * conv.dilation[0]) as isize
                            - conv.pad[0] as isize;
                        if iy < 0 || iy >= conv.h as isize {
                            continue;
                        }
                        for s in 0..conv.s {
                            let ix = (ox * conv.stride[1] + s * conv.dilation[1]) as isize
                                - conv.pad[1] as isize;
                            if ix < 0 || ix >= conv.w as isize {
                                continue;
                            }
                            let xi = ((n * conv.h + iy as usize) * conv.w + ix as usize)
                                * conv.x_pitch
                                + g * cg;
                            let wi = k * len + (r * conv.s + s) * cg;
                            for ci in 0..cg {
                                let xv = i32::from(x[xi + ci]) - xz;
                                let wv = i32::from(q.weights[wi + ci]) - wz;
                                acc = acc.wrapping_add(xv * wv);
                            }
                        }
                    }
                    let at = p * conv.y_pitch + k;
                    if conv.output == Output::Float {
                        let real = acc.wrapping_add(q.bias[k]) as f32 * q.scale[k];
                        yf[at] = half::f16::from_f32(conv.act.apply(real)).to_f32();
                        continue;
                    }
                    let v = q.requant[k]
                        .apply(acc.wrapping_add(q.bias[k]))
                        .wrapping_add(i32::from(conv.y_zero))
                        .clamp(i32::from(conv.clamp.0), i32::from(conv.clamp.1));
                    y8[at] = v as i8;
                    let real = (v - i32::from(conv.y_zero)) as f32 * conv.y_scale;
                    yf[at] = half::f16::from_f32(real).to_f32();
                }
            }
        }
    }
    match conv.output {
        Output::Int8 => QOutput::Int8(y8),
        Output::Fp16 | Output::Float => QOutput::Fp16(yf),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_grid_value_held_in_fp16_gives_back_its_integer() {
        // Every integer of every zero point, at scales from the COCO SSD's smallest to far past
        // its largest: FP16 moves the value by at most 255·2⁻¹¹ of a step.
        for scale in [
            0.003_906_25f32,
            0.020_660_741,
            0.331_191_75,
            0.459_535_75,
            7.3,
        ] {
            for zero in [-128i8, -18, 0, 94, 127] {
                let g = Affine { scale, zero };
                for q in -128i32..=127 {
                    let v = half::f16::from_f32((q - i32::from(zero)) as f32 * scale).to_f32();
                    assert_eq!(integer_of(v, g), q, "{g:?}");
                }
            }
        }
    }

    #[test]
    fn requantize_adds_and_activates_exactly_then_rounds_once() {
        let a = Affine {
            scale: 0.25,
            zero: 4,
        };
        let b = Affine {
            scale: 0.5,
            zero: -2,
        };
        let to = Affine {
            scale: 1.0,
            zero: 10,
        };
        // (6 − 4)·0.25 + (1 + 2)·0.5 = 2.0 → 2 + 10.
        assert_eq!(requantize((6, a), Some((1, b)), Act::None, to), 12);
        // 0.5 rounds half to even: 0 + 10; ReLU clamps −1.5 to 0.
        assert_eq!(requantize((6, a), None, Act::None, to), 10);
        assert_eq!(requantize((-5, b), None, Act::Relu, to), 10);
        // Saturates at the int8 ends: 117 + 117 → 244 + 10; the Sigmoid of 0 is 0.5 → 128 on a
        // 1/256 grid.
        assert_eq!(requantize((127, to), Some((127, to)), Act::None, to), 127);
        let scores = Affine {
            scale: 1.0 / 256.0,
            zero: -128,
        };
        assert_eq!(requantize((10, to), None, Act::Sigmoid, scores), 0);
    }

    #[test]
    fn multipliers_round_trip_as_tflite_quantizes_them() {
        // Q31 mantissa in [2^30, 2^31), exponent: value = q · 2^(shift − 31).
        for m in [
            0.5,
            0.75,
            1.0,
            1.5,
            0.000_123_4,
            3.9e-3,
            0.999_999_999_9,
            7.25,
        ] {
            let r = Requant::new(m);
            assert!(r.multiplier >= 1 << 30, "{m}: {r:?}");
            let back = f64::from(r.multiplier) * 2f64.powi(r.shift - 31);
            assert!((back - m).abs() <= m * 2f64.powi(-30), "{m}: {back}");
        }
        assert_eq!(
            Requant::new(0.5),
            Requant {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        // A mantissa that rounds up to 2^31 moves to the next exponent.
        assert_eq!(
            Requant::new(1.0 - 1e-12),
            Requant {
                multiplier: 1 << 30,
                shift: 1
            }
        );
        assert_eq!(Requant::new(0.0).multiplier, 0);
    }

    #[test]
    fn fixed_point_rounding_is_gemmlowps() {
        assert_eq!(q31_high_mul(i32::MIN, i32::MIN), i32::MAX);
        // 2·a·b / 2^31 with b = 2^30 is a itself; b = 2^30 + 1 rounds.
        assert_eq!(q31_high_mul(12345, 1 << 30), 6173);
        assert_eq!(q31_high_mul(-12345, 1 << 30), -6172);
        // Ties away from zero on both signs.
        assert_eq!(rounding_shift_right(5, 1), 3);
        assert_eq!(rounding_shift_right(-5, 1), -3);
        assert_eq!(rounding_shift_right(4, 1), 2);
        assert_eq!(rounding_shift_right(-7, 2), -2);
        assert_eq!(rounding_shift_right(-6, 2), -2);
        assert_eq!(rounding_shift_right(6, 2), 2);
        assert_eq!(rounding_shift_right(7, 0), 7);
    }

    /// Requantization is within one step of the real product, over every range a layer uses.
    #[test]
    fn requantization_is_the_real_product_rounded() {
        let mut state = 0x2545_f491u32;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let m = f64::from(state % 1_000_000 + 1) * 1e-8; // 1e-8 … 1e-2
            let x = (state as i32) >> 8; // ±2^23
            let got = Requant::new(m).apply(x);
            let want = f64::from(x) * m;
            // Rounded twice (before and after the power of two, right ≥ 6 here): ½ + ½/64.
            assert!(
                (f64::from(got) - want).abs() <= 0.51,
                "{x} × {m}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn activations_clamp_in_the_quantized_domain() {
        assert_eq!(activation_range(Act::Relu, 0.1, -20), Some((-20, 127)));
        // ReLU6 at scale 6/255 from zero point −128 spans the whole int8 range.
        assert_eq!(
            activation_range(Act::Clip(0.0, 6.0), 6.0 / 255.0, -128),
            Some((-128, 127))
        );
        assert_eq!(
            activation_range(Act::Clip(0.0, 6.0), 0.1, -10),
            Some((-10, 50))
        );
        assert_eq!(activation_range(Act::Sigmoid, 0.1, 0), None);
    }

    fn xorshift(state: &mut u32) -> u32 {
        *state ^= *state << 13;
        *state ^= *state >> 17;
        *state ^= *state << 5;
        *state
    }

    /// The kernels' formulation — padding read as the zero point, Σ x·w − w_zero·Σ x plus the
    /// folded bias — equals TensorFlow Lite's Σ (x − x_zero)·(w − w_zero) + bias with padding
    /// skipped, on a pitched input and output, for dense and depthwise layers with padding on
    /// every side, with and without weight zero points.
    #[test]
    fn the_folded_zero_point_equals_tflites_sum() {
        let mut st = 7u32;
        for (groups, c, k, zeros) in [
            (1, 5, 7, false),
            (6, 6, 6, false),
            (1, 5, 7, true),
            (6, 6, 6, true),
        ] {
            let spec = QConv {
                n: 2,
                h: 5,
                w: 4,
                c,
                k,
                r: 3,
                s: 3,
                pad: [1, 1],
                stride: [2, 1],
                dilation: [1, 1],
                groups,
                oh: 3,
                ow: 4,
                x_pitch: c + 3,
                y_pitch: k + 2,
                x_zero: -37,
                y_zero: 11,
                y_scale: 0.05,
                clamp: (-100, 90),
                output: Output::Int8,
                act: Act::None,
            };
            let len = spec.q_len();
            let weights: Vec<i8> = (0..k * len).map(|_| xorshift(&mut st) as i8).collect();
            let bias: Vec<i32> = (0..k).map(|_| (xorshift(&mut st) as i32) >> 18).collect();
            let requant = (0..k)
                .map(|i| Requant::new(0.0004 * (i + 1) as f64))
                .collect();
            // Small zero points (1…4 away from 0): the sums stay inside the clamp.
            let w_zero = (0..k)
                .map(|_| {
                    if zeros {
                        (xorshift(&mut st) % 4) as i8 + 1
                    } else {
                        0
                    }
                })
                .collect();
            let q = QWeights {
                weights,
                w_zero,
                bias,
                requant,
                scale: vec![1.0; k],
            };
            assert_eq!(q.has_zero_point(), zeros);
            let x: Vec<i8> = (0..spec.x_len()).map(|_| xorshift(&mut st) as i8).collect();
            let QOutput::Int8(want) = conv(&spec, &q, &x) else {
                panic!("int8 output asked for");
            };
            // The kernels' way, spelled out.
            let folded = spec.folded_bias(&q);
            let (cg, kg) = (c / groups, k / groups);
            let mut hits = 0;
            for p in 0..spec.n * spec.oh * spec.ow {
                let (b, oy, ox) = (p / 12, p / 4 % 3, p % 4);
                for kk in 0..k {
                    let (mut acc, mut sum_x) = (0i32, 0i32);
                    for r in 0..3 {
                        for s in 0..3 {
                            let iy = (oy * 2 + r) as isize - 1;
                            let ix = (ox + s) as isize - 1;
                            for ci in 0..cg {
                                let xv = if iy < 0 || ix < 0 || iy >= 5 || ix >= 4 {
                                    spec.x_zero
                                } else {
                                    x[((b * 5 + iy as usize) * 4 + ix as usize) * spec.x_pitch
                                        + kk / kg * cg
                                        + ci]
                                };
                                acc += i32::from(xv)
                                    * i32::from(q.weights[kk * len + (r * 3 + s) * cg + ci]);
                                sum_x += i32::from(xv);
                            }
                        }
                    }
                    let acc = acc - i32::from(q.w_zero[kk]) * sum_x;
                    let v = (q.requant[kk].apply(acc + folded[kk]) + 11).clamp(-100, 90);
                    assert_eq!(
                        v as i8,
                        want[p * spec.y_pitch + kk],
                        "pixel {p} channel {kk}"
                    );
                    hits += usize::from(v != -100 && v != 90);
                }
            }
            // The comparison is not all clamps.
            assert!(hits > spec.n * spec.oh * spec.ow * k / 2, "{hits}");
        }
    }

    #[test]
    fn fp16_outputs_are_the_dequantized_value_or_the_sums_real_one() {
        let spec = QConv {
            n: 1,
            h: 1,
            w: 1,
            c: 1,
            k: 1,
            r: 1,
            s: 1,
            pad: [0, 0],
            stride: [1, 1],
            dilation: [1, 1],
            groups: 1,
            oh: 1,
            ow: 1,
            x_pitch: 1,
            y_pitch: 1,
            x_zero: 0,
            y_zero: 3,
            y_scale: 0.1,
            clamp: (-128, 127),
            output: Output::Fp16,
            act: Act::None,
        };
        let q = QWeights {
            weights: vec![2],
            w_zero: vec![0],
            bias: vec![0],
            requant: vec![Requant::new(1.0)],
            scale: vec![0.1],
        };
        // 2·10 = 20 → q = 23 → (23 − 3) · 0.1 = 2.0 (FP16: exactly 2).
        assert_eq!(conv(&spec, &q, &[10]), QOutput::Fp16(vec![2.0]));
        // A float output: the sum's real value, off the output's grid, past its clamp, no
        // requantization: (2·(−7 − 1) + 3) · 0.125 = −1.625, exact in FP16.
        let float = QConv {
            x_zero: 1,
            clamp: (0, 127),
            output: Output::Float,
            ..spec
        };
        let q = QWeights {
            bias: vec![3],
            requant: vec![Requant::new(0.0)],
            scale: vec![0.125],
            ..q
        };
        assert_eq!(conv(&float, &q, &[-7]), QOutput::Fp16(vec![-1.625]));
        // Its activation runs on that FP32 value: LeakyRelu 0.1 → −0.1625, rounded once to
        // FP16.
        let leaky = QConv {
            act: Act::Leaky(0.1),
            ..float
        };
        let want = half::f16::from_f32(-1.625f32 * 0.1).to_f32();
        assert_eq!(conv(&leaky, &q, &[-7]), QOutput::Fp16(vec![want]));
    }

    /// cuda/int8.cu's `requantize`, transcribed: both of gemmlowp's roundings in one 64-bit
    /// multiply-add of a rounding constant picked by the sign of x << left, and one arithmetic
    /// shift.
    fn requantize_in_one_shift(x: i32, mult: i32, shift: i32) -> i32 {
        let (left, right) = if shift > 0 { (shift, 0) } else { (0, -shift) };
        let a = x.wrapping_shl(left as u32);
        let up = if right > 0 { 1i64 << (30 + right) } else { 0 };
        let (round_pos, round_neg) = if right > 0 {
            (up + (1 << 30), up - (1 << 30))
        } else {
            (1 << 30, 1 << 30)
        };
        let round = if a < 0 { round_neg } else { round_pos };
        ((i64::from(a) * i64::from(mult) + round) >> (31 + right)) as i32
    }

    #[test]
    fn the_kernels_requantize_is_gemmlowps_two_roundings() {
        // Every shift TensorFlow Lite's multipliers take, the ends of the Q31 range (a
        // multiplier is never negative: Requant::new), and sums at the extremes, at exact ties of both roundings
        // (a·m = ±2^30 + k·2^31, t = ±2^(e−1) + k·2^e) and one either side, plus a
        // pseudo-random sweep.
        let mut sums: Vec<i32> = vec![i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX];
        for e in 0..31 {
            for k in [-3i64, -1, 0, 1, 2] {
                for d in -1..=1 {
                    let v = k * (1i64 << (e + 1)) + (1i64 << e) + d;
                    sums.extend(
                        i32::try_from(v)
                            .ok()
                            .into_iter()
                            .chain(i32::try_from(-v).ok()),
                    );
                }
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as i32
        };
        sums.extend((0..2000).map(|_| next()));
        sums.extend((0..2000).map(|_| next() >> 12));
        let mut mults = vec![0, 1, 1 << 30, (1 << 30) + 1, i32::MAX];
        mults.extend((0..24).map(|_| (next() & i32::MAX) | (1 << 30)));
        let mut checked = 0usize;
        for shift in -31..=30 {
            for &m in &mults {
                let r = Requant {
                    multiplier: m,
                    shift,
                };
                for &x in &sums {
                    assert_eq!(
                        requantize_in_one_shift(x, m, shift),
                        r.apply(x),
                        "x {x}, multiplier {m}, shift {shift}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 8_800_000, "{checked}");
    }
}
