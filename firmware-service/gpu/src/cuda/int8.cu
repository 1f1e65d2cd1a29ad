// The GPU engine's INT8 convolutions (prepended with plugins/cuda/common.cuh; T is unused here).
// The CPU twin of every kernel is adas_gpu::engine::int8 (`conv`), and the GPU tests compare
// them bit for bit.
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

// Rounded high half of 2·a·b, saturated (gemmlowp SaturatingRoundingDoublingHighMul).
__device__ __forceinline__ int q31_high_mul(int a, int b) {
    if (a == b && a == (int)0x80000000) return 0x7fffffff;
    const long long ab = (long long)a * (long long)b;
    const long long nudge = ab >= 0 ? (1ll << 30) : (1ll - (1ll << 30));
    return (int)((ab + nudge) / (1ll << 31));  // C division truncates toward zero, as gemmlowp's
}

// x / 2^e rounded to nearest, ties away from zero (gemmlowp RoundingDivideByPOT).
__device__ __forceinline__ int rounding_shift_right(int x, int e) {
    const int mask = (1 << e) - 1, remainder = x & mask, threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (remainder > threshold ? 1 : 0);
}

// TensorFlow Lite's MultiplyByQuantizedMultiplier: x · mult · 2^shift / 2^31.
__device__ __forceinline__ int requantize(int x, int mult, int shift) {
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    return rounding_shift_right(q31_high_mul((int)((unsigned int)x << left), mult), right);
}

// The epilogue's integer for output channel kk: requantized, its zero point added, clamped.
__device__ __forceinline__ int int8_output(int acc, int kk, const int* bias, const int* mult,
                                           const int* shift, int y_zero, int lo, int hi) {
    const int v = requantize(acc + bias[kk], mult[kk], shift[kk]) + y_zero;
    return v < lo ? lo : v > hi ? hi : v;
}

__device__ __forceinline__ unsigned short f32_to_half(float f) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
}

// q's dequantized value (q − y_zero)·y_scale as FP16 bits.
__device__ __forceinline__ unsigned short int8_to_half(int q, int y_zero, float y_scale) {
    return f32_to_half(__fmul_rn((float)(q - y_zero), y_scale));
}

// Output mode 2's float activation (common.cuh's activate codes).
struct FloatAct {
    int kind;
    float a, b;
};

// Output mode 2: the sum's real value, activated, as FP16 bits (one FP32 product, no fused
// multiply-add).
__device__ __forceinline__ unsigned short sum_to_half(int acc, int kk, const int* bias,
                                                      const float* scale, FloatAct act) {
    const float v = __fmul_rn(__int2float_rn(acc + bias[kk]), scale[kk]);
    return f32_to_half(activate(v, act.kind, act.a, act.b));
}

// The epilogue for output channel kk of output pixel p (see the header).
__device__ __forceinline__ void int8_store(void* y, int acc, int p, int kk, int yp,
                                           const int* bias, const int* mult, const int* shift,
                                           const float* scale, int y_zero, int lo, int hi,
                                           int out_mode, float y_scale, FloatAct act) {
    const int at = p * yp + kk;
    if (out_mode == 2) {
        ((unsigned short*)y)[at] = sum_to_half(acc, kk, bias, scale, act);
        return;
    }
    const int v = int8_output(acc, kk, bias, mult, shift, y_zero, lo, hi);
    if (out_mode == 1)
        ((unsigned short*)y)[at] = int8_to_half(v, y_zero, y_scale);
    else
        ((signed char*)y)[at] = (signed char)v;
}

// Depthwise convolution (groups = C = K), NHWC int8, w [R][S][C] (the host transposes the
// model's [C][R][S], so that neighbouring channels' taps are neighbours), the epilogue above.
// Scalar INT32 multiply-adds: a depthwise tap is one product per loaded byte, which tensor cores
// cannot use. Each thread computes L consecutive channels of one output pixel, consecutive
// threads consecutive channel groups (coalesced loads): with L = 4 (the host's choice where C,
// both pitches and the bases allow it) every tap is one 4-byte load of x and one of w, and the
// outputs one 4-byte int8 or 8-byte FP16 store.
template <int L>
__device__ __forceinline__ void dwconv_int8_lanes(void* y, const signed char* x,
                                                  const signed char* w, const int* bias,
                                                  const int* mult, const int* shift,
                                                  const float* scale, const int* w_zero, int n,
                                                  int h, int wd, int c, int r, int s, int ph,
                                                  int pw, int sh, int sw, int dh, int dw, int oh,
                                                  int ow, int xp, int yp, int x_zero, int y_zero,
                                                  int lo, int hi, int out_mode, float y_scale,
                                                  FloatAct act) {
    const int groups = c / L, total = n * oh * ow * groups;
    const int fill = (x_zero & 0xff) * 0x01010101;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const int ch = i % groups * L, p = i / groups, ox = p % ow, oy = p / ow % oh,
                  bn = p / ow / oh;
        int acc[L] = {}, sum_x[L] = {};
        for (int rr = 0; rr < r; ++rr) {
            const int iy = oy * sh - ph + rr * dh;
            for (int ss = 0; ss < s; ++ss) {
                const int ix = ox * sw - pw + ss * dw;
                const bool in = (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd;
                const signed char* xs = x + ((bn * h + iy) * wd + ix) * xp + ch;
                const signed char* ws = w + (rr * s + ss) * c + ch;
                if constexpr (L == 4) {
                    const int xv = in ? *(const int*)xs : fill, wv = *(const int*)ws;
#pragma unroll
                    for (int j = 0; j < 4; ++j) {
                        const int xj = (signed char)(xv >> (8 * j)),
                                  wj = (signed char)(wv >> (8 * j));
                        acc[j] += xj * wj;
                        sum_x[j] += xj;
                    }
                } else {
                    const int v = in ? *xs : x_zero;
                    acc[0] += v * *ws;
                    sum_x[0] += v;
                }
            }
        }
        // Each lane's output: the int8 q, or the FP16 bits h (modes 1 and 2).
        int q[L] = {};
        unsigned int hb[L] = {};
#pragma unroll
        for (int j = 0; j < L; ++j) {
            const int a = w_zero ? acc[j] - w_zero[ch + j] * sum_x[j] : acc[j];
            if (out_mode == 2) {
                hb[j] = sum_to_half(a, ch + j, bias, scale, act);
            } else {
                q[j] = int8_output(a, ch + j, bias, mult, shift, y_zero, lo, hi);
                if (out_mode == 1) hb[j] = int8_to_half(q[j], y_zero, y_scale);
            }
        }
        const int at = p * yp + ch;
        if constexpr (L == 4) {
            if (out_mode) {
                *(uint2*)((unsigned short*)y + at) = make_uint2(hb[0] | hb[1] << 16, hb[2] | hb[3] << 16);
            } else {
                *(int*)((signed char*)y + at) = (q[0] & 0xff) | (q[1] & 0xff) << 8 |
                                                 (q[2] & 0xff) << 16 | (q[3] & 0xff) << 24;
            }
        } else if (out_mode) {
            ((unsigned short*)y)[at] = (unsigned short)hb[0];
        } else {
            ((signed char*)y)[at] = (signed char)q[0];
        }
    }
}

// Grid-stride over N·OH·OW·C / lanes threads; `lanes` is 4 or 1 (see dwconv_int8_lanes).
extern "C" __global__ void dwconv_int8(void* y, const signed char* x, const signed char* w,
                                       const int* bias, const int* mult, const int* shift,
                                       const float* scale, const int* w_zero, int n,
                                       int h, int wd, int c, int r, int s, int ph, int pw, int sh,
                                       int sw, int dh, int dw, int oh, int ow, int xp, int yp,
                                       int x_zero, int y_zero, int lo, int hi, int out_mode,
                                       float y_scale, int act_kind, float act_a, float act_b,
                                       int lanes) {
    const FloatAct act = {act_kind, act_a, act_b};
    if (lanes == 4)
        dwconv_int8_lanes<4>(y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, r, s, ph,
                             pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi,
                             out_mode, y_scale, act);
    else
        dwconv_int8_lanes<1>(y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, r, s, ph,
                             pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi,
                             out_mode, y_scale, act);
}

// Implicit-GEMM convolution (groups = 1) on tensor cores: mma.sync m16n8k32 s8·s8 → s32 (sm_80+:
// Jetson Orin, Ampere, Hopper). GEMM rows are output pixels p, columns output channels, the
// reduction q = (r·S + s)·C + c walks the taps (im2col addresses computed on the fly). A block of
// 4 warps computes a 64-pixel × 64-channel tile, each warp 32 × 32 (2 × 4 MMAs per 32-wide
// step), over the reduction in 64-byte slices, double-buffered: cp.async copies the next slice
// into shared memory while the warps multiply this one. Copies are 16 bytes where C, the pixel
// pitch and the base are multiples of 16, else 4, else 1 (a network's first layer, C = 3). INT32
// sums are exact, so the result does not depend on the order: bit-identical to the CPU twin.
#define I8_BM 64
#define I8_BN 64
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

// One slice (reduction indices q0 … q0 + I8_KC − 1) of A (pixels) and B (weights) into shared
// memory. Each thread copies a fixed column chunk of V bytes in every ROW_STEP-th row.
template <int V>
__device__ __forceinline__ void i8_stage(signed char (*as)[I8_LD], signed char (*bs)[I8_LD],
                                         const signed char* x, const signed char* w, int q0,
                                         int Q, int c, int s, int h, int wd, int xp, int dh,
                                         int dw, int k, int k0, unsigned int fill,
                                         const int* pix_off, const int* pix_y, const int* pix_x) {
    constexpr int PER_ROW = I8_KC / V, ROW_STEP = I8_THREADS / PER_ROW;
    const int col = threadIdx.x % PER_ROW, row0 = threadIdx.x / PER_ROW;
    const int q = q0 + col * V;
    const bool in_q = q < Q;
    // The chunk's tap: V divides C, so a chunk never straddles two taps.
    const int cc = q % c, t = q / c, dy = t / s * dh, dx = t % s * dw;
    const int off = (dy * wd + dx) * xp + cc;
#pragma unroll 4
    for (int row = row0; row < I8_BM; row += ROW_STEP) {
        const unsigned int dst = i8_shared_address(&as[row][col * V]);
        const int iy = pix_y[row] + dy, ix = pix_x[row] + dx;
        if (in_q && (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd)
            i8_copy<V>(dst, x + (pix_off[row] + off), true);
        else
            i8_fill<V>(dst, in_q ? fill : 0u);  // past Q: zeros, so that Σ x stays the taps'

    }
#pragma unroll 4
    for (int row = row0; row < I8_BN; row += ROW_STEP) {
        const bool valid = in_q && k0 + row < k;
        i8_copy<V>(i8_shared_address(&bs[row][col * V]), valid ? w + ((k0 + row) * Q + q) : w,
                   valid);
    }
}

__device__ __forceinline__ int i8_word(const signed char* p) { return *(const int*)p; }

// acc (this lane's part of a 16 × 8 INT32 tile) += A (16 × 32, row-major) · B (32 × 8, col).
__device__ __forceinline__ void mma_16832(int (&acc)[4], const int (&a)[4], int b0, int b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+r"(acc[0]), "+r"(acc[1]), "+r"(acc[2]), "+r"(acc[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The block's shared memory: two slices of A and B, and where each tile row's pixel is.
struct I8Shared {
    signed char as[2][I8_BM][I8_LD];
    signed char bs[2][I8_BN][I8_LD];
    int pix_off[I8_BM], pix_y[I8_BM], pix_x[I8_BM];
    int sum_x[2][I8_BM];  // X per tile row, in two halves of each slice
};
static_assert(I8_THREADS == 2 * I8_BM, "two threads sum each row's X");

// c + the four signed bytes of a.
__device__ __forceinline__ int add_bytes(int a, int c) {
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(0x01010101), "r"(c));
    return d;
}

template <int V>
__device__ __forceinline__ void conv_int8_tiles(I8Shared& sm, void* y, const signed char* x,
                                                const signed char* w, const int* bias,
                                                const int* mult, const int* shift,
                                                const float* scale, const int* w_zero, int n,
                                                int h, int wd, int c, int k, int r, int s, int ph,
                                                int pw, int sh, int sw, int dh, int dw, int oh,
                                                int ow, int xp, int yp, int x_zero, int y_zero,
                                                int lo, int hi, int out_mode, float y_scale,
                                                FloatAct act) {
#if __CUDA_ARCH__ >= 800
    signed char(*as)[I8_BM][I8_LD] = sm.as;
    signed char(*bs)[I8_BN][I8_LD] = sm.bs;
    int *pix_off = sm.pix_off, *pix_y = sm.pix_y, *pix_x = sm.pix_x;
    const int P = n * oh * ow, Q = r * s * c, p0 = blockIdx.x * I8_BM, k0 = blockIdx.y * I8_BN;
    for (int row = threadIdx.x; row < I8_BM; row += I8_THREADS) {
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
    const int wm = (warp % 2) * 32, wn = (warp / 2) * 32;
    int acc[2][4][4] = {};
    int sum_x = 0;  // with weight zero points: this thread's half of its row's X
    const int x_row = threadIdx.x / 2, x_half = threadIdx.x % 2;
    const int slices = (Q + I8_KC - 1) / I8_KC;
    i8_stage<V>(as[0], bs[0], x, w, 0, Q, c, s, h, wd, xp, dh, dw, k, k0, fill, pix_off, pix_y, pix_x);
    asm volatile("cp.async.commit_group;" ::: "memory");
    for (int i = 0; i < slices; ++i) {
        const int buf = i & 1;
        if (i + 1 < slices)
            i8_stage<V>(as[buf ^ 1], bs[buf ^ 1], x, w, (i + 1) * I8_KC, Q, c, s, h, wd, xp, dh,
                        dw, k, k0, fill, pix_off, pix_y, pix_x);
        asm volatile("cp.async.commit_group;" ::: "memory");
        asm volatile("cp.async.wait_group 1;" ::: "memory");
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < I8_KC; kk += 32) {
            int a[2][4];
#pragma unroll
            for (int mi = 0; mi < 2; ++mi) {
                const signed char* p = &as[buf][wm + mi * 16 + g][kk + t4 * 4];
                a[mi][0] = i8_word(p);
                a[mi][1] = i8_word(p + 8 * I8_LD);
                a[mi][2] = i8_word(p + 16);
                a[mi][3] = i8_word(p + 8 * I8_LD + 16);
            }
#pragma unroll
            for (int ni = 0; ni < 4; ++ni) {
                const signed char* p = &bs[buf][wn + ni * 8 + g][kk + t4 * 4];
                const int b0 = i8_word(p), b1 = i8_word(p + 16);
#pragma unroll
                for (int mi = 0; mi < 2; ++mi) mma_16832(acc[mi][ni], a[mi], b0, b1);
            }
        }
        if (w_zero) {
            const signed char* p = &as[buf][x_row][x_half * (I8_KC / 2)];
#pragma unroll
            for (int j = 0; j < I8_KC / 2; j += 4) sum_x = add_bytes(i8_word(p + j), sum_x);
        }
        __syncthreads();
    }
    sm.sum_x[x_half][x_row] = sum_x;
    __syncthreads();
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int p = p0 + wm + mi * 16 + g + (e / 2) * 8;
                const int kk = k0 + wn + ni * 8 + t4 * 2 + e % 2;
                if (p < P && kk < k) {
                    const int row = p - p0;
                    const int sx = sm.sum_x[0][row] + sm.sum_x[1][row];
                    const int v = w_zero ? acc[mi][ni][e] - w_zero[kk] * sx : acc[mi][ni][e];
                    int8_store(y, v, p, kk, yp, bias, mult, shift, scale, y_zero, lo, hi,
                               out_mode, y_scale, act);
                }
            }
#else
    __trap();  // the host loads this kernel on compute capability 8.0 or newer only
#endif
}

// Grid (⌈N·OH·OW / 64⌉, ⌈K / 64⌉), 128 threads. Parameters as dwconv_int8 plus K, less lanes.
extern "C" __global__ void __launch_bounds__(I8_THREADS) conv_int8_mma(
    void* y, const signed char* x, const signed char* w, const int* bias, const int* mult,
    const int* shift, const float* scale, const int* w_zero, int n, int h, int wd, int c, int k,
    int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int xp, int yp,
    int x_zero, int y_zero, int lo, int hi, int out_mode, float y_scale, int act_kind,
    float act_a, float act_b) {
    const FloatAct act = {act_kind, act_a, act_b};
    // One shared block for every copy width (per-instantiation arrays would add up).
    __shared__ __align__(16) I8Shared sm;
    const unsigned long long xa = (unsigned long long)x, wa = (unsigned long long)w;
    if ((c | xp) % 16 == 0 && (xa | wa) % 16 == 0)
        conv_int8_tiles<16>(sm, y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, k, r, s,
                             ph, pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi,
                             out_mode, y_scale, act);
    else if ((c | xp) % 4 == 0 && (xa | wa) % 4 == 0)
        conv_int8_tiles<4>(sm, y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, k, r, s,
                            ph, pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi,
                            out_mode, y_scale, act);
    else
        conv_int8_tiles<1>(sm, y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, k, r, s,
                            ph, pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi,
                            out_mode, y_scale, act);
}

// A QDQ model's QuantizeLinear (uint8 grid, int8 domain) of v into y[i]:
// q = clamp(round_half_even(v / scale) + zero, −128, 127); int8 out, or its dequantized value
// (q − zero)·scale as FP16 where the readers are float.
__device__ __forceinline__ void store_quantized(void* y, int i, float v, float scale, int zero,
                                                int out_int8) {
    int q = __float2int_rn(__fdiv_rn(v, scale)) + zero;
    q = q < -128 ? -128 : q > 127 ? 127 : q;
    if (out_int8) {
        ((signed char*)y)[i] = (signed char)q;
    } else {
        const float d = (float)(q - zero) * scale;
        unsigned short h;
        asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(d));
        ((unsigned short*)y)[i] = h;
    }
}

__device__ __forceinline__ float from_f16(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// Step::Quantize: FP16 values onto their grid.
extern "C" __global__ void quantize_f16(void* y, const unsigned short* x, int n, float scale,
                                        int zero, int out_int8) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
        store_quantized(y, i, from_f16(x[i]), scale, zero, out_int8);
}

// A QDQ model's element-wise op between quantized values (Step::Requantize; the CPU twin is
// engine::int8::requantize): y = quantize(act(dequantize(x) + dequantize(b))), b optional. x and
// b hold FP16 values on their grids; their integers are recovered exactly, the rest is FP32 with
// each product and the sum rounded once (no FMA contraction) and round half to even.
__device__ __forceinline__ float grid_value(unsigned short h, float scale, int zero) {
    const int q = __float2int_rn(__fdiv_rn(from_f16(h), scale)) + zero;
    return __fmul_rn((float)(q - zero), scale);
}

extern "C" __global__ void requantize_f16(void* y, const unsigned short* x, float x_scale,
                                          int x_zero, const unsigned short* b, float b_scale,
                                          int b_zero, int n, int act, float act_a, float act_b,
                                          float scale, int zero, int out_int8) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        float v = grid_value(x[i], x_scale, x_zero);
        if (b) v = __fadd_rn(v, grid_value(b[i], b_scale, b_zero));
        store_quantized(y, i, activate(v, act, act_a, act_b), scale, zero, out_int8);
    }
}
