// The GPU engine's INT8 convolutions (prepended with plugins/cuda/common.cuh; T is unused here).
// The CPU twin of every kernel is adas_gpu::engine::int8 (`conv`), and the GPU tests compare
// them bit for bit; tests/gpu/int8_on_host.py runs this source itself on the CPU (g++ with shims).
//
// Data: activations are int8 NHWC with a per-tensor scale and zero point (the model's uint8
// values minus 128); weights int8 KRSC with a scale and a zero point per output channel
// (`w_zero`, null where all are 0: symmetric weights). The sums are exact INT32 over every tap,
// a tap outside the image reading the input's zero point (the real 0.0): S = Σ x·w and, with
// weight zero points, X = Σ x; `bias` is the model's INT32 bias with the constant cross terms
// folded in by the host (bias − x_zero·Σ w + taps·x_zero·w_zero), so S − w_zero·X + bias is
// exactly TensorFlow Lite's Σ (x − x_zero)·(w − w_zero) + bias.
// The epilogue requantizes as TensorFlow Lite does (gemmlowp's fixed-point multiplier, Q31
// `mult` and power-of-two `shift` per output channel, rounding twice), adds the output's zero
// point and clamps to [lo, hi]: the activation (ReLU, ReLU6) in the quantized domain. `out_mode`
// says what it writes: 0 that int8; 1 (the consumer is float) its dequantized value
// (q − y_zero)·y_scale as FP16; 2 (the model leaves the output unquantized) the sum's real value
// (acc + bias)·scale[kk] in FP32, activated there (`act`, `act_a`, `act_b`: common.cuh's
// activate) and rounded once to FP16, with no grid.

// TensorFlow Lite's MultiplyByQuantizedMultiplier: x · mult · 2^shift / 2^31, with gemmlowp's
// two roundings (the CPU twin spells them out: engine::int8::q31_high_mul, rounding_shift_right),
// as one 64-bit multiply-add and one shift. With a = x << left (int32, wrapping like TensorFlow
// Lite), r = right and u = a·mult + 2^30:
// - SaturatingRoundingDoublingHighMul is t = floor(u / 2^31) (its nudge-then-truncate rounds a tie
//   up on either side of zero; it saturates only for a = mult = INT32_MIN, and mult ≥ 0);
// - RoundingDivideByPOT rounds ties away from zero: floor((t + 2^(r−1) − [t < 0]) / 2^r), t itself
//   for r = 0;
// - floor(floor(v / b) / c) = floor(v / (b·c)), so the two are floor((u + h·2^31) / 2^(31 + r)),
//   h = 2^(r−1) − [t < 0] (0 for r = 0), and [t < 0] may be taken as [a < 0]: they differ only
//   where a < 0 and t = 0, and both offsets then give 0.
// So the result is (a·mult + round) >> (31 + r), round = 2^(30 + r) + 2^30 for a ≥ 0 and
// 2^(30 + r) − 2^30 for a < 0 where r > 0, 2^30 for r = 0: one multiply-add of a 64-bit constant
// picked by a's sign (i8_scale works out both once per channel; engine::int8's
// the_kernels_requantize_is_gemmlowps_two_roundings checks this form on the host).
struct I8Scale {
    int mult, left, bits;  // bits = 31 + r
    long long round_pos, round_neg;
};

__device__ __forceinline__ I8Scale i8_scale(int mult, int shift) {
    const int right = shift > 0 ? 0 : -shift;
    const long long up = right > 0 ? 1ll << (30 + right) : 0;
    return {mult, shift > 0 ? shift : 0, 31 + right, up + (1ll << 30),
            right > 0 ? up - (1ll << 30) : 1ll << 30};
}

// a·b + c: one signed 32 × 32 → 64-bit multiply-add (C's 64-bit product takes three).
__device__ __forceinline__ long long mad_wide(int a, int b, long long c) {
    long long d;
    asm("mad.wide.s32 %0, %1, %2, %3;" : "=l"(d) : "r"(a), "r"(b), "l"(c));
    return d;
}

__device__ __forceinline__ int requantize(int x, const I8Scale& q) {
    const int a = (int)((unsigned int)x << q.left);
    return (int)(mad_wide(a, q.mult, a < 0 ? q.round_neg : q.round_pos) >> q.bits);
}

__device__ __forceinline__ unsigned short f32_to_half(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// Output mode 2's float activation (common.cuh's activate codes).
struct FloatAct {
    int kind;
    float a, b;
};

// The epilogue's constants of one output channel, loaded once per thread and channel (the
// float scale of output mode 2 is read where it is used: it would hold a register per channel).
struct I8Channel {
    int bias, w_zero;
    I8Scale q;
};

__device__ __forceinline__ I8Channel i8_channel(int kk, const int* __restrict__ bias,
                                                const int* __restrict__ mult,
                                                const int* __restrict__ shift,
                                                const int* __restrict__ w_zero) {
    return {bias[kk], w_zero ? w_zero[kk] : 0, i8_scale(mult[kk], shift[kk])};
}

// The epilogue's output for INT32 sums S (and X = Σ x, with weight zero points) of channel kk
// (see the header): the int8 value (modes 0) or the FP16 bits (modes 1 and 2). Mode 2 is one
// FP32 product, no fused multiply-add.
__device__ __forceinline__ unsigned int i8_epilogue(int sum, int sum_x, const I8Channel& ch,
                                                    int kk, const float* __restrict__ scale,
                                                    int y_zero, int lo, int hi, int out_mode,
                                                    float y_scale, FloatAct act) {
    const int acc = sum - ch.w_zero * sum_x + ch.bias;
    if (out_mode == 2) {
        const float v = __fmul_rn(__int2float_rn(acc), scale[kk]);
        return f32_to_half(activate(v, act.kind, act.a, act.b));
    }
    const int q = min(max(requantize(acc, ch.q) + y_zero, lo), hi);
    if (out_mode == 1) return f32_to_half(__fmul_rn((float)(q - y_zero), y_scale));
    return (unsigned int)q;  // its low byte is the int8 (i8_store keeps only that)
}

// The low bytes of a, b, c and d in one word, a lowest: three byte permutes.
__device__ __forceinline__ unsigned int pack_low_bytes(unsigned int a, unsigned int b,
                                                       unsigned int c, unsigned int d) {
    return __byte_perm(__byte_perm(a, b, 0x0040), __byte_perm(c, d, 0x0040), 0x5410);
}

// Up to L neighbouring epilogue outputs `o` (the first `count`) at element `at` of y: one 4-byte
// (int8: the low bytes, packed by byte permutes) or 8-byte (FP16) store where `wide` (four of
// them, aligned), else one at a time.
template <int L>
__device__ __forceinline__ void i8_store(void* y, int at, const unsigned int (&o)[L], int count,
                                         bool wide, int out_mode) {
    if constexpr (L == 4) {
        if (wide) {
            if (out_mode)
                *(uint2*)((unsigned short*)y + at) = make_uint2(o[0] | o[1] << 16, o[2] | o[3] << 16);
            else
                *(unsigned int*)((signed char*)y + at) = pack_low_bytes(o[0], o[1], o[2], o[3]);
            return;
        }
    }
#pragma unroll
    for (int j = 0; j < L; ++j) {
        if (j >= count) break;
        if (out_mode)
            ((unsigned short*)y)[at + j] = (unsigned short)o[j];
        else
            ((signed char*)y)[at + j] = (signed char)o[j];
    }
}

// acc[j] (and, ZW, sum_x[j]) += channel j's four taps: xv[u] holds tap u's four channels (a
// 4-byte load of x), wv channel j's four taps in word j. Byte permutes transpose xv into one word
// per channel, and one dp4a multiplies each.
template <bool ZW>
__device__ __forceinline__ void i8_dot_taps(const int (&xv)[4], int4 wv, int (&acc)[4],
                                            int (&sum_x)[4]) {
    const unsigned int lo01 = __byte_perm(xv[0], xv[1], 0x5140),
                       hi01 = __byte_perm(xv[0], xv[1], 0x7362),
                       lo23 = __byte_perm(xv[2], xv[3], 0x5140),
                       hi23 = __byte_perm(xv[2], xv[3], 0x7362);
    const int xt[4] = {(int)__byte_perm(lo01, lo23, 0x5410), (int)__byte_perm(lo01, lo23, 0x7632),
                       (int)__byte_perm(hi01, hi23, 0x5410), (int)__byte_perm(hi01, hi23, 0x7632)};
    const int wt[4] = {wv.x, wv.y, wv.z, wv.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        acc[j] = __dp4a(xt[j], wt[j], acc[j]);
        if constexpr (ZW) sum_x[j] = __dp4a(xt[j], 0x01010101, sum_x[j]);
    }
}

// Depthwise convolution (groups = C = K), NHWC int8, the epilogue above. Weights [G][C][4]: the
// R·S taps in G groups of four, one 4-byte word per channel and group (the host transposes the
// model's [C][R][S]): a 3 × 3 kernel has one group per column, its three rows and a zero
// weight, so that the pixels of dwconv3x3_int8 share whole groups; any other kernel its taps in
// raster order, G = ⌈R·S / 4⌉, the last group padded with zero weights. A depthwise tap
// is one product per loaded byte, which tensor cores cannot use; dp4a takes four taps of one
// channel at once. Each thread computes L consecutive channels of one output pixel, consecutive
// threads consecutive channel groups (coalesced loads). With L = 4 (the host's choice where C,
// both pitches and the bases allow it) each tap is one 4-byte load of x (four channels), a group's
// four such words are transposed by byte permutes into one word per channel, its weights one
// 16-byte load, and the outputs one 4-byte int8 or 8-byte FP16 store. A pad tap past R·S reads
// 0 against its 0 weight: nothing added to S nor to X. ZW: the weights have zero points (X).
template <int L, bool ZW, int RS>
__device__ __forceinline__ void dwconv_int8_lanes(
    void* __restrict__ y, const signed char* __restrict__ x, const signed char* __restrict__ w,
    const int* __restrict__ bias, const int* __restrict__ mult, const int* __restrict__ shift,
    const float* __restrict__ scale, const int* __restrict__ w_zero, int n, int h, int wd, int c,
    int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int xp, int yp,
    int x_zero, int y_zero, int lo, int hi, int out_mode, float y_scale, FloatAct act) {
    if constexpr (RS != 0) r = s = RS;  // the taps known at compile time: the loops unroll
    const int lanes = c / L, per_row = ow * lanes, taps = r * s;
    const bool by_column = r == 3 && s == 3;  // the weights' layout (above)
    const int groups = by_column ? 3 : (taps + 3) / 4;
    const int fill = L == 4 ? (x_zero & 0xff) * 0x01010101 : x_zero;
    for (int row = blockIdx.y; row < n * oh; row += gridDim.y) {
        const int oy = row % oh, bn = row / oh, y0 = oy * sh - ph;
        const signed char* xr = x + bn * h * wd * xp;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per_row;
             i += gridDim.x * blockDim.x) {
            const int ch = i % lanes * L, ox = i / lanes, p = row * ow + ox, x0 = ox * sw - pw;
            const signed char* xb = xr + ch;
            int acc[L] = {}, sum_x[L] = {};
            int t = 0, tr = 0, ts = 0;  // raster order: the tap, its row and column
            for (int g = 0; g < groups; ++g) {
                int xv[4];  // four taps: L = 4, four channels' bytes each; L = 1, the one value
#pragma unroll
                for (int u = 0; u < 4; ++u, ++t) {
                    xv[u] = 0;
                    // By column: group g is column g, u its row.
                    if (by_column ? u < 3 : t < taps) {
                        const int iy = y0 + (by_column ? u : tr) * dh;
                        const int ix = x0 + (by_column ? g : ts) * dw;
                        const bool in = (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd;
                        const signed char* xs = xb + (iy * wd + ix) * xp;
                        if constexpr (L == 4)
                            xv[u] = in ? *(const int*)xs : fill;
                        else
                            xv[u] = in ? *xs : fill;
                        if (++ts == s) ts = 0, ++tr;
                    }
                }
                if constexpr (L == 4) {
                    i8_dot_taps<ZW>(xv, *(const int4*)(w + (g * c + ch) * 4), acc, sum_x);
                } else {
                    const signed char* ws = w + (g * c + ch) * 4;
#pragma unroll
                    for (int u = 0; u < 4; ++u) {
                        acc[0] += xv[u] * ws[u];
                        if constexpr (ZW) sum_x[0] += xv[u];
                    }
                }
            }
            unsigned int o[L];
#pragma unroll
            for (int j = 0; j < L; ++j)
                o[j] = i8_epilogue(acc[j], sum_x[j],
                                   i8_channel(ch + j, bias, mult, shift, ZW ? w_zero : nullptr),
                                   ch + j, scale, y_zero, lo, hi, out_mode, y_scale, act);
            i8_store<L>(y, p * yp + ch, o, L, L == 4, out_mode);
        }
    }
}

// Channel j's bytes of three input words (rows 0–2 of one column, four channels each) as word
// j, row by row; its fourth byte is one of row 2's, against a zero weight (and left out of X by
// the mask in dwconv3x3_int8_pixels).
__device__ __forceinline__ void i8_column(int r0, int r1, int r2, int (&col)[4]) {
    const unsigned int lo = __byte_perm(r0, r1, 0x5140), hi = __byte_perm(r0, r1, 0x7362);
    col[0] = (int)__byte_perm(lo, r2, 0x5410);
    col[1] = (int)__byte_perm(lo, r2, 0x6532);
    col[2] = (int)__byte_perm(hi, r2, 0x7610);
    col[3] = (int)__byte_perm(hi, r2, 0x7732);
}

// The 3 × 3 depthwise convolutions of MobileNets (dilation 1, stride SW on both axes, L = 4), PX
// neighbouring output pixels a thread: their taps share input columns, (PX − 1)·SW + 3 of them
// against 3·PX, each loaded and transposed (i8_column) once, and the weights and channel
// constants load once for all PX.
template <bool ZW, int PX, int SW>
__device__ __forceinline__ void dwconv3x3_int8_pixels(
    void* __restrict__ y, const signed char* __restrict__ x, const signed char* __restrict__ w,
    const int* __restrict__ bias, const int* __restrict__ mult, const int* __restrict__ shift,
    const float* __restrict__ scale, const int* __restrict__ w_zero, int n, int h, int wd, int c,
    int ph, int pw, int oh, int ow, int xp, int yp, int x_zero, int y_zero, int lo, int hi,
    int out_mode, float y_scale, FloatAct act) {
    constexpr int COLS = (PX - 1) * SW + 3;
    const int lanes = c / 4, per_row = (ow + PX - 1) / PX * lanes;
    const int fill = (x_zero & 0xff) * 0x01010101;
    for (int row = blockIdx.y; row < n * oh; row += gridDim.y) {
        const int oy = row % oh, bn = row / oh, y0 = oy * SW - ph;
        for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per_row;
             i += gridDim.x * blockDim.x) {
            const int ch = i % lanes * 4, ox0 = i / lanes * PX, x0 = ox0 * SW - pw;
            const signed char* xb = x + bn * h * wd * xp + ch;
            int cols[COLS][4];  // the input columns under the PX pixels' taps, transposed
#pragma unroll
            for (int col = 0; col < COLS; ++col) {
                const int ix = x0 + col;
                int v[3];
#pragma unroll
                for (int tr = 0; tr < 3; ++tr) {
                    const int iy = y0 + tr;
                    v[tr] = (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd
                                ? *(const int*)(xb + (iy * wd + ix) * xp)
                                : fill;
                }
                i8_column(v[0], v[1], v[2], cols[col]);
            }
            int4 wv[3];  // column g's weights: word j is channel j's rows 0–2 and a zero
#pragma unroll
            for (int g = 0; g < 3; ++g) wv[g] = *(const int4*)(w + (g * c + ch) * 4);
            // Every pixel's sums first (S − w_zero·X), then the epilogues: the taps' registers
            // are free by the time the channel constants load.
            int wz[4] = {};
            if constexpr (ZW) {
#pragma unroll
                for (int j = 0; j < 4; ++j) wz[j] = w_zero[ch + j];
            }
            int acc[PX][4] = {};
#pragma unroll
            for (int px = 0; px < PX; ++px) {
                int sum_x[4] = {};
#pragma unroll
                for (int g = 0; g < 3; ++g) {
                    const int(&col)[4] = cols[px * SW + g];
                    const int wg[4] = {wv[g].x, wv[g].y, wv[g].z, wv[g].w};
#pragma unroll
                    for (int j = 0; j < 4; ++j) {
                        acc[px][j] = __dp4a(col[j], wg[j], acc[px][j]);
                        if constexpr (ZW) sum_x[j] = __dp4a(col[j], 0x00010101, sum_x[j]);
                    }
                }
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[px][j] -= wz[j] * sum_x[j];
            }
            I8Channel chan[4];
#pragma unroll
            for (int j = 0; j < 4; ++j) chan[j] = i8_channel(ch + j, bias, mult, shift, nullptr);
#pragma unroll
            for (int px = 0; px < PX; ++px) {
                if (ox0 + px >= ow) break;
                unsigned int o[4];
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    o[j] = i8_epilogue(acc[px][j], 0, chan[j], ch + j, scale, y_zero, lo, hi,
                                       out_mode, y_scale, act);
                i8_store<4>(y, (row * ow + ox0 + px) * yp + ch, o, 4, true, out_mode);
            }
        }
    }
}

// Grid (x: over ⌈OW / PX⌉·C / 4 threads, y: the N·OH output rows), both grid-stride; PX = 4 at
// `stride` 1, 2 at stride 2. Parameters as dwconv_int8, less those fixed here. The bounds keep
// three blocks on an SM (79 registers, no spills, on sm_87 and sm_90).
extern "C" __global__ void __launch_bounds__(256, 3) dwconv3x3_int8(
    void* y, const signed char* x, const signed char* w, const int* bias, const int* mult,
    const int* shift, const float* scale, const int* w_zero, int n, int h, int wd, int c, int ph,
    int pw, int stride, int oh, int ow, int xp, int yp, int x_zero, int y_zero, int lo, int hi,
    int out_mode, float y_scale, int act_kind, float act_a, float act_b) {
    const FloatAct act = {act_kind, act_a, act_b};
#define I8_DW3(ZW, PX, SW)                                                                         \
    dwconv3x3_int8_pixels<ZW, PX, SW>(y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, ph, \
                                      pw, oh, ow, xp, yp, x_zero, y_zero, lo, hi, out_mode,       \
                                      y_scale, act)
    if (stride == 1) {
        if (w_zero) I8_DW3(true, 4, 1); else I8_DW3(false, 4, 1);
    } else {
        if (w_zero) I8_DW3(true, 2, 2); else I8_DW3(false, 2, 2);
    }
#undef I8_DW3
}

// Grid (x: over OW·C / lanes threads, y: the N·OH output rows), both grid-stride; `lanes` is 4 or
// 1 (see dwconv_int8_lanes).
extern "C" __global__ void dwconv_int8(void* y, const signed char* x, const signed char* w,
                                       const int* bias, const int* mult, const int* shift,
                                       const float* scale, const int* w_zero, int n,
                                       int h, int wd, int c, int r, int s, int ph, int pw, int sh,
                                       int sw, int dh, int dw, int oh, int ow, int xp, int yp,
                                       int x_zero, int y_zero, int lo, int hi, int out_mode,
                                       float y_scale, int act_kind, float act_a, float act_b,
                                       int lanes) {
    const FloatAct act = {act_kind, act_a, act_b};
#define I8_DW(L, ZW, RS)                                                                         \
    dwconv_int8_lanes<L, ZW, RS>(y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, r, s,  \
                                 ph, pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi, \
                                 out_mode, y_scale, act)
    const bool k3 = r == 3 && s == 3;  // MobileNets' depthwise layers
    if (lanes == 4) {
        if (w_zero) {
            if (k3) I8_DW(4, true, 3); else I8_DW(4, true, 0);
        } else {
            if (k3) I8_DW(4, false, 3); else I8_DW(4, false, 0);
        }
    } else {
        if (w_zero) I8_DW(1, true, 0); else I8_DW(1, false, 0);
    }
#undef I8_DW
}

// Implicit-GEMM convolution (groups = 1) on tensor cores: mma.sync m16n8k32 s8·s8 → s32 (sm_80+:
// Jetson Orin, Ampere, Hopper). GEMM rows are output pixels p, columns output channels, the
// reduction q = (r·S + s)·C + c walks the taps (im2col addresses computed on the fly). A block of
// 4 warps computes a BM-pixel × BN-channel tile, each warp 32 × 32 (2 × 4 MMAs per 32-wide
// step): 64 × 64, or 128 × 32 where K leaves a last tile of 32 channels or fewer (K = 16, 24,
// 32, 96, 144, 160 in MobileNets), so that no warp multiplies past K (the host's Split).
// The reduction runs in 64-byte slices, double-buffered: cp.async copies the next slice into
// shared memory while the warps multiply this one. Copies are 16 bytes where C, the pixel
// pitch and the base are multiples of 16, else 4, else 1 (a network's first layer, C = 3). INT32
// sums are exact, so the result does not depend on the order: bit-identical to the CPU twin.
#define I8_KC 64
// Row pitch in shared memory: 80 bytes keeps 16-byte copies aligned and puts the 8 rows a
// fragment load touches on 8 different groups of 4 banks.
#define I8_LD (I8_KC + 16)
#define I8_THREADS 128

__device__ __forceinline__ unsigned int i8_shared_address(const void* p) {
    unsigned long long s;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(s) : "l"(p));
    return (unsigned int)s;
}

// V bytes at src → shared dst: cp.async for 4 and 16 (src-size 0 fills zeros when !valid), a
// plain load and store for 1.
template <int V>
__device__ __forceinline__ void i8_copy(unsigned int dst, const signed char* src, bool valid) {
    if constexpr (V == 1) {
        const signed char v = valid ? *src : (signed char)0;
        asm volatile("st.shared.u8 [%0], %1;" ::"r"(dst), "h"((unsigned short)(unsigned char)v) : "memory");
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(dst), "l"(src), "n"(V),
                     "r"(valid ? V : 0));
    }
}

// V bytes of `fill` (the input's zero point replicated) → shared dst: the taps in the padding.
template <int V>
__device__ __forceinline__ void i8_fill(unsigned int dst, unsigned int fill) {
    if constexpr (V == 1) {
        asm volatile("st.shared.u8 [%0], %1;" ::"r"(dst), "h"((unsigned short)(fill & 0xff)) : "memory");
    } else if constexpr (V == 4) {
        asm volatile("st.shared.u32 [%0], %1;" ::"r"(dst), "r"(fill) : "memory");
    } else {
        asm volatile("st.shared.v4.u32 [%0], {%1, %1, %1, %1};" ::"r"(dst), "r"(fill) : "memory");
    }
}

// The cp.async groups: close this thread's copies issued since the last commit; wait until at
// most one group (the slice being staged) is still in flight.
__device__ __forceinline__ void i8_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }

__device__ __forceinline__ void i8_wait_prior() { asm volatile("cp.async.wait_group 1;" ::: "memory"); }

// Where a thread's copy chunk is in the reduction q = (r·S + s)·C + c: q, its channel and tap.
// The slices advance it by I8_KC (no division per slice).
struct I8Cursor {
    int q, cc, tr, ts;
};

__device__ __forceinline__ I8Cursor i8_cursor(int q, int c, int s) {
    const int t = q / c;
    return {q, q % c, t / s, t % s};
}

__device__ __forceinline__ void i8_advance(I8Cursor& u, int c, int s) {
    u.q += I8_KC;
    u.cc += I8_KC;
    while (u.cc >= c) {
        u.cc -= c;
        if (++u.ts == s) u.ts = 0, ++u.tr;
    }
}

// One slice (the I8_KC reduction indices from the cursor's slice start) of A (pixels) and B
// (weights) into shared memory. Each thread copies a fixed column chunk of V bytes in every
// ROW_STEP-th row.
template <int V, int BM, int BN>
__device__ __forceinline__ void i8_stage(signed char (*as)[I8_LD], signed char (*bs)[I8_LD],
                                         const signed char* x, const signed char* w,
                                         const I8Cursor& u, int Q, int h, int wd, int xp, int dh,
                                         int dw, int k, int k0, unsigned int fill,
                                         const int* pix_off, const int* pix_y, const int* pix_x) {
    constexpr int PER_ROW = I8_KC / V, ROW_STEP = I8_THREADS / PER_ROW;
    const int col = threadIdx.x % PER_ROW, row0 = threadIdx.x / PER_ROW;
    const bool in_q = u.q < Q;
    // The chunk's tap: V divides C, so a chunk never straddles two taps.
    const int dy = u.tr * dh, dx = u.ts * dw;
    const int off = (dy * wd + dx) * xp + u.cc;
#pragma unroll 4
    for (int row = row0; row < BM; row += ROW_STEP) {
        const unsigned int dst = i8_shared_address(&as[row][col * V]);
        const int iy = pix_y[row] + dy, ix = pix_x[row] + dx;
        if (in_q && (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd)
            i8_copy<V>(dst, x + (pix_off[row] + off), true);
        else
            i8_fill<V>(dst, in_q ? fill : 0u);  // past Q: zeros, so that Σ x stays the taps'

    }
#pragma unroll 4
    for (int row = row0; row < BN; row += ROW_STEP) {
        const bool valid = in_q && k0 + row < k;
        i8_copy<V>(i8_shared_address(&bs[row][col * V]), valid ? w + ((k0 + row) * Q + u.q) : w,
                   valid);
    }
}

__device__ __forceinline__ int i8_word(const signed char* p) { return *(const int*)p; }

// Four 8 × 16-byte matrices from shared memory, one register of each per lane (lane l gets row
// l / 4, bytes 4·(l % 4) of each): lane l gives the address of row l % 8 of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(int (&r)[4], unsigned int row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(row));
}

// acc (this lane's part of a 16 × 8 INT32 tile) += A (16 × 32, row-major) · B (32 × 8, col).
__device__ __forceinline__ void mma_16832(int (&acc)[4], const int (&a)[4], int b0, int b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The block's shared memory: two slices of A and B — once the reduction is done, the tile's INT32
// sums in their place (rows padded by 8: the fragments' 8-byte stores hit 2 banks' worth at
// most) —, where each tile row's pixel is, and its X (summed by 128 / BM threads a row).
template <int BM, int BN>
struct I8Shared {
    static constexpr int X_PARTS = I8_THREADS / BM;
    union {
        struct {
            signed char as[2][BM][I8_LD];
            signed char bs[2][BN][I8_LD];
        } stage;
        int sums[BM][BN + 8];
    };
    int pix_off[BM], pix_y[BM], pix_x[BM];
    int sum_x[X_PARTS][BM];  // X per tile row, in X_PARTS parts of each slice
};

// c + the four signed bytes of a.
__device__ __forceinline__ int add_bytes(int a, int c) {
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(0x01010101), "r"(c));
    return d;
}

template <int V, int BM, int BN>
__device__ __forceinline__ void conv_int8_tiles(I8Shared<BM, BN>& sm, void* y, const signed char* x,
                                                const signed char* w, const int* bias,
                                                const int* mult, const int* shift,
                                                const float* scale, const int* w_zero, int n,
                                                int h, int wd, int c, int k, int r, int s, int ph,
                                                int pw, int sh, int sw, int dh, int dw, int oh,
                                                int ow, int xp, int yp, int x_zero, int y_zero,
                                                int lo, int hi, int out_mode, float y_scale,
                                                FloatAct act) {
#if __CUDA_ARCH__ >= 800
    signed char(*as)[BM][I8_LD] = sm.stage.as;
    signed char(*bs)[BN][I8_LD] = sm.stage.bs;
    int *pix_off = sm.pix_off, *pix_y = sm.pix_y, *pix_x = sm.pix_x;
    const int P = n * oh * ow, Q = r * s * c, p0 = blockIdx.x * BM, k0 = blockIdx.y * BN;
    for (int row = threadIdx.x; row < BM; row += I8_THREADS) {
        const int p = p0 + row;
        if (p < P) {
            const int ox = p % ow, oy = p / ow % oh, bn = p / ow / oh;
            pix_y[row] = oy * sh - ph;
            pix_x[row] = ox * sw - pw;
            pix_off[row] = ((bn * h + pix_y[row]) * wd + pix_x[row]) * xp;
        } else {
            pix_y[row] = -(1 << 30);  // every tap misses the image
            pix_x[row] = 0;
            pix_off[row] = 0;
        }
    }
    __syncthreads();
    const unsigned int fill = (x_zero & 0xff) * 0x01010101u;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    constexpr int WARPS_M = BM / 32, X_PARTS = I8Shared<BM, BN>::X_PARTS;
    const int wm = (warp % WARPS_M) * 32, wn = (warp / WARPS_M) * 32;
    int acc[2][4][4] = {};
    int sum_x = 0;  // with weight zero points: this thread's part of its row's X
    const int x_row = threadIdx.x / X_PARTS, x_part = threadIdx.x % X_PARTS;
    const int slices = (Q + I8_KC - 1) / I8_KC;
    // The rows this lane addresses for ldmatrix_x4 in buffer 0 (A: fragment rows 0–15, bytes
    // 0 / 16; B: 8 channels, bytes 0 / 16, then the next 8 channels).
    const unsigned int a_lane = i8_shared_address(&as[0][wm + (lane & 15)][(lane >> 4) * 16]);
    const unsigned int b_lane =
        i8_shared_address(&bs[0][wn + (lane & 7) + (lane >> 4) * 8][(lane >> 3 & 1) * 16]);
    // This thread's copy chunk (i8_stage's column) and where the next slice starts.
    I8Cursor u = i8_cursor(threadIdx.x % (I8_KC / V) * V, c, s);
    i8_stage<V, BM, BN>(as[0], bs[0], x, w, u, Q, h, wd, xp, dh, dw, k, k0, fill, pix_off, pix_y, pix_x);
    i8_commit();
    for (int i = 0; i < slices; ++i) {
        const int buf = i & 1;
        if (i + 1 < slices) {
            i8_advance(u, c, s);
            i8_stage<V, BM, BN>(as[buf ^ 1], bs[buf ^ 1], x, w, u, Q, h, wd, xp, dh, dw, k, k0, fill,
                        pix_off, pix_y, pix_x);
        }
        i8_commit();
        i8_wait_prior();
        __syncthreads();
        // A 32-byte chunk past Q holds zeros only (layers with C = 16 or 24 are one such slice).
        const int valid = Q - i * I8_KC;
#pragma unroll
        for (int kk = 0; kk < I8_KC; kk += 32) {
            if (kk > 0 && kk >= valid) break;
            // A fragment mi: rows 0–7 / 8–15 × bytes 0–15 / 16–31 of its 16 rows; B, two
            // fragments ni, ni + 1: their 8 channels × bytes 0–15 / 16–31.
            int a[2][4];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi)
                ldmatrix_x4(a[mi], a_lane + buf * sizeof(as[0]) + (mi * 16 * I8_LD + kk));
#pragma unroll
            for (int nj = 0; nj < 2; ++nj) {
                int b[4];
                ldmatrix_x4(b, b_lane + buf * sizeof(bs[0]) + (nj * 16 * I8_LD + kk));
#pragma unroll
                for (int mi = 0; mi < 2; ++mi) {
                    mma_16832(acc[mi][nj * 2], a[mi], b[0], b[1]);
                    mma_16832(acc[mi][nj * 2 + 1], a[mi], b[2], b[3]);
                }
            }
        }
        if (w_zero) {
            const signed char* p = &as[buf][x_row][x_part * (I8_KC / X_PARTS)];
#pragma unroll
            for (int j = 0; j < I8_KC / X_PARTS; j += 4) sum_x = add_bytes(i8_word(p + j), sum_x);
        }
        __syncthreads();
    }
    // The epilogue. The fragments' sums go to shared memory (the staging buffers are free: the
    // last slice ended with a barrier), then each thread takes 4 neighbouring channels of every
    // 8th row, so that a warp writes 2 rows × 64 channels in 4-byte (int8) or 8-byte (FP16)
    // stores where the pitch and base allow.
    sm.sum_x[x_part][x_row] = sum_x;
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int eh = 0; eh < 2; ++eh)
                *(int2*)&sm.sums[wm + mi * 16 + g + eh * 8][wn + ni * 8 + t4 * 2] =
                    make_int2(acc[mi][ni][eh * 2], acc[mi][ni][eh * 2 + 1]);
    __syncthreads();
    constexpr int GROUPS = BN / 4;
    const int col = threadIdx.x % GROUPS * 4, kk = k0 + col;
    I8Channel chan[4];
    int kj[4];  // the channels, those past K read as channel 0 (their outputs are not stored)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
        kj[j] = kk + j < k ? kk + j : 0;
        chan[j] = i8_channel(kj[j], bias, mult, shift, w_zero);
    }
    const int out_bytes = out_mode ? 2 : 1;
    const bool wide = kk + 3 < k && yp % 4 == 0 && (unsigned long long)y % (4 * out_bytes) == 0;
    for (int row = threadIdx.x / GROUPS; row < BM && p0 + row < P; row += I8_THREADS / GROUPS) {
        int sx = 0;
#pragma unroll
        for (int part = 0; part < X_PARTS; ++part) sx += w_zero ? sm.sum_x[part][row] : 0;
        const int4 v = *(const int4*)&sm.sums[row][col];
        const int sums[4] = {v.x, v.y, v.z, v.w};
        unsigned int o[4];
#pragma unroll
        for (int j = 0; j < 4; ++j)
            o[j] = i8_epilogue(sums[j], sx, chan[j], kj[j], scale, y_zero, lo, hi, out_mode,
                               y_scale, act);
        i8_store<4>(y, (p0 + row) * yp + kk, o, k - kk, wide, out_mode);
    }
#else
    __trap();  // the host loads this kernel on compute capability 8.0 or newer only
#endif
}

// Grid (⌈N·OH·OW / BM⌉, ⌈K / BN⌉), 128 threads; `tile_n` is BN, 64 (BM = 64) or 32 (BM = 128).
// Parameters as dwconv_int8 plus K, less lanes.
extern "C" __global__ void __launch_bounds__(I8_THREADS) conv_int8_mma(
    void* y, const signed char* x, const signed char* w, const int* bias, const int* mult,
    const int* shift, const float* scale, const int* w_zero, int n, int h, int wd, int c, int k,
    int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int xp, int yp,
    int x_zero, int y_zero, int lo, int hi, int out_mode, float y_scale, int act_kind,
    float act_a, float act_b, int tile_n) {
    const FloatAct act = {act_kind, act_a, act_b};
    // One shared block for every tile and copy width (per-instantiation arrays would add up).
    __shared__ __align__(16) union {
        I8Shared<64, 64> square;
        I8Shared<128, 32> tall;
    } sm;
    const unsigned long long xa = (unsigned long long)x, wa = (unsigned long long)w;
    const int v = (c | xp) % 16 == 0 && (xa | wa) % 16 == 0 ? 16
                  : (c | xp) % 4 == 0 && (xa | wa) % 4 == 0 ? 4
                                                            : 1;
#define I8_TILES(V, SM)                                                                           \
    conv_int8_tiles<V>(sm.SM, y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, k, r, s, ph, \
                       pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi, out_mode,       \
                       y_scale, act)
    if (tile_n == 32) {
        if (v == 16) I8_TILES(16, tall); else if (v == 4) I8_TILES(4, tall); else I8_TILES(1, tall);
    } else {
        if (v == 16) I8_TILES(16, square); else if (v == 4) I8_TILES(4, square); else I8_TILES(1, square);
    }
#undef I8_TILES
}

// The element-wise INT8 steps (Step::Quantize, Step::Requantize) read and write eight neighbouring
// values a thread — one 16-byte load of FP16 (8 bytes of int8), one store — where every access
// can be that wide: the count, a Concat slice's run, stride and offset multiples of 8 and the
// buffers 16-byte aligned (the host sizes the grid for eight a thread); else one a thread. The
// arithmetic of a value is the same either way.
#define EW_LANES 8

__device__ __forceinline__ bool ew_aligned(const void* p) {
    return (unsigned long long)p % 16 == 0;
}

__device__ __forceinline__ float from_f16(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// A QDQ model's QuantizeLinear (uint8 grid, int8 domain) of v:
// q = clamp(round_half_even(v / scale) + zero, −128, 127).
__device__ __forceinline__ int quantize_value(float v, float scale, int zero) {
    // The quotient bounded first, so that the conversion to int cannot overflow (a value past
    // ±512 saturates either way).
    const float t = fminf(fmaxf(__fdiv_rn(v, scale), -512.0f), 512.0f);
    return min(max(__float2int_rn(t) + zero, -128), 127);
}

// What y holds for q: the int8 (its low byte), or its dequantized value (q − zero)·scale as FP16
// where the readers are float.
__device__ __forceinline__ unsigned int quantized_out(int q, float scale, int zero, int out_int8) {
    return out_int8 ? (unsigned int)q : f32_to_half((float)(q - zero) * scale);
}

__device__ __forceinline__ void store_one(void* y, int i, unsigned int o, int out_int8) {
    if (out_int8) ((signed char*)y)[i] = (signed char)o;
    else ((unsigned short*)y)[i] = (unsigned short)o;
}

// Values i … i + 7 of `o` at y[i]: 8 bytes (int8) or 16 (FP16) at once.
__device__ __forceinline__ void store_eight(void* y, int i, const unsigned int (&o)[EW_LANES],
                                            int out_int8) {
    if (out_int8) {
        *(uint2*)((signed char*)y + i) = make_uint2(pack_low_bytes(o[0], o[1], o[2], o[3]),
                                                    pack_low_bytes(o[4], o[5], o[6], o[7]));
    } else {
        *(uint4*)((unsigned short*)y + i) = make_uint4(o[0] | o[1] << 16, o[2] | o[3] << 16,
                                                       o[4] | o[5] << 16, o[6] | o[7] << 16);
    }
}

// FP16 values i … i + 7 of x, as float.
__device__ __forceinline__ void load_eight_f16(const unsigned short* x, int i, float (&v)[EW_LANES]) {
    const uint4 w = *(const uint4*)(x + i);
    const unsigned int words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int j = 0; j < EW_LANES; ++j) v[j] = from_f16((unsigned short)(words[j / 2] >> 16 * (j % 2)));
}

// Step::Quantize: FP16 values onto their grid.
extern "C" __global__ void quantize_f16(void* y, const unsigned short* x, int n, float scale,
                                        int zero, int out_int8) {
    const int t = blockIdx.x * blockDim.x + threadIdx.x, threads = gridDim.x * blockDim.x;
    if (n % EW_LANES == 0 && ew_aligned(x) && ew_aligned(y)) {
        for (int i = t * EW_LANES; i < n; i += threads * EW_LANES) {
            float v[EW_LANES];
            load_eight_f16(x, i, v);
            unsigned int o[EW_LANES];
#pragma unroll
            for (int j = 0; j < EW_LANES; ++j)
                o[j] = quantized_out(quantize_value(v[j], scale, zero), scale, zero, out_int8);
            store_eight(y, i, o, out_int8);
        }
    } else {
        for (int i = t; i < n; i += threads)
            store_one(y, i, quantized_out(quantize_value(from_f16(x[i]), scale, zero), scale, zero, out_int8),
                      out_int8);
    }
}

// A QDQ model's element-wise op between quantized values (Step::Requantize; the CPU twin is
// engine::int8::requantize): y = quantize(act(dequantize(x) + dequantize(b))), b optional. x and
// b hold values on their grids, as int8 or FP16 (their integers recovered exactly); the rest is
// FP32 with each product and the sum rounded once (no FMA contraction) and round half to even.
struct EwOperand {
    const void* p;
    float scale;
    int zero, is_int8;
};

// The real value of an operand's integer q.
__device__ __forceinline__ float grid_real(int q, const EwOperand& a) {
    return __fmul_rn((float)(q - a.zero), a.scale);
}

// The integer of an FP16 value on a's grid.
__device__ __forceinline__ int grid_integer(float h, const EwOperand& a) {
    return __float2int_rn(__fdiv_rn(h, a.scale)) + a.zero;
}

__device__ __forceinline__ float grid_value(const EwOperand& a, int i) {
    return grid_real(a.is_int8 ? (int)((const signed char*)a.p)[i]
                               : grid_integer(from_f16(((const unsigned short*)a.p)[i]), a),
                     a);
}

// Values i … i + 7 of operand a.
__device__ __forceinline__ void grid_eight(const EwOperand& a, int i, float (&v)[EW_LANES]) {
    if (a.is_int8) {
        const uint2 w = *(const uint2*)((const signed char*)a.p + i);
#pragma unroll
        for (int j = 0; j < EW_LANES; ++j)
            v[j] = grid_real((int)(signed char)((j < 4 ? w.x : w.y) >> 8 * (j % 4)), a);
    } else {
        load_eight_f16((const unsigned short*)a.p, i, v);
#pragma unroll
        for (int j = 0; j < EW_LANES; ++j) v[j] = grid_real(grid_integer(v[j], a), a);
    }
}

// Where value i of n goes: y[i / run · stride + offset + i % run] (a Concat's slice; y itself for
// run = stride = n, offset = 0). A single run, n values from the offset, needs no division.
__device__ __forceinline__ int slice_at(int i, int n, int run, int stride, int offset) {
    return run == n ? offset + i : i / run * stride + offset + i % run;
}

extern "C" __global__ void requantize(void* y, const void* x, float x_scale, int x_zero,
                                      int x_int8, const void* b, float b_scale, int b_zero,
                                      int b_int8, int n, int act, float act_a, float act_b,
                                      float scale, int zero, int out_int8, int run, int stride,
                                      int offset) {
    const EwOperand xa = {x, x_scale, x_zero, x_int8}, ba = {b, b_scale, b_zero, b_int8};
    const int t = blockIdx.x * blockDim.x + threadIdx.x, threads = gridDim.x * blockDim.x;
    const bool wide = (n | run | stride | offset) % EW_LANES == 0 && ew_aligned(x) &&
                      ew_aligned(b) && ew_aligned(y);
    if (wide) {
        for (int i = t * EW_LANES; i < n; i += threads * EW_LANES) {
            float v[EW_LANES], w[EW_LANES];
            grid_eight(xa, i, v);
            if (b) grid_eight(ba, i, w);
            unsigned int o[EW_LANES];
#pragma unroll
            for (int j = 0; j < EW_LANES; ++j) {
                const float u = b ? __fadd_rn(v[j], w[j]) : v[j];
                o[j] = quantized_out(quantize_value(activate(u, act, act_a, act_b), scale, zero), scale,
                                     zero, out_int8);
            }
            // Eight values never straddle a run: run is a multiple of eight.
            store_eight(y, slice_at(i, n, run, stride, offset), o, out_int8);
        }
    } else {
        for (int i = t; i < n; i += threads) {
            float v = grid_value(xa, i);
            if (b) v = __fadd_rn(v, grid_value(ba, i));
            const int q = quantize_value(activate(v, act, act_a, act_b), scale, zero);
            store_one(y, slice_at(i, n, run, stride, offset), quantized_out(q, scale, zero, out_int8),
                      out_int8);
        }
    }
}
