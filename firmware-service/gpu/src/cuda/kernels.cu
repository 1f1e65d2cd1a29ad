// The GPU engine's own kernels (everything but the convolutions, which are cuDNN's). Prepended
// with plugins/cuda/common.cuh. The CPU twin of each is in detect/engine/reference.rs.

// Grid-stride loop with 32-bit indices: the host refuses buffers of 2³¹ values or more, and
// 64-bit division and remainder cost more than the rest of these small kernels.
#define FOR_EACH32(i, n)                                                                        \
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < (int)(n); i += gridDim.x * blockDim.x)

// After a cuDNN convolution: y = act(y + bias[c] + residual), channels innermost.
extern "C" __global__ void epilogue(T* y, const float* bias, const T* residual, long long n,
                                    int channels, int act, float a, float b) {
    FOR_EACH32(i, n) {
        float v = ld(y, i);
        if (bias) v += bias[i % channels];
        if (residual) v += ld(residual, i);
        st(y, i, activate(v, act, a, b));
    }
}

extern "C" __global__ void eltwise(T* y, const T* x, const T* other, long long n, int act,
                                   float a, float b) {
    FOR_EACH(i, n) {
        float v = ld(x, i);
        if (other) v += ld(other, i);
        st(y, i, activate(v, act, a, b));
    }
}

extern "C" __global__ void affine(T* y, const T* x, const float* scale, const float* shift,
                                  long long n, int channels) {
    FOR_EACH32(i, n) {
        int c = i % channels;
        st(y, i, ld(x, i) * scale[c] + shift[c]);
    }
}

extern "C" __global__ void pad_nhwc(T* y, const T* x, int n, int h, int w, int c, int top,
                                    int left, int oh, int ow, float value) {
    FOR_EACH32(i, n * oh * ow * c) {
        int ch = i % c, t = i / c;
        int ox = t % ow;
        t /= ow;
        int oy = t % oh, b = t / oh;
        int ix = ox - left, iy = oy - top;
        float v = value;
        if (ix >= 0 && iy >= 0 && ix < w && iy < h) v = ld(x, ((b * h + iy) * w + ix) * c + ch);
        st(y, i, v);
    }
}

extern "C" __global__ void maxpool_nhwc(T* y, const T* x, int n, int h, int w, int c, int kh,
                                        int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    FOR_EACH32(i, n * oh * ow * c) {
        int ch = i % c, t = i / c;
        int ox = t % ow;
        t /= ow;
        int oy = t % oh, b = t / oh;
        float m = -ADAS_INF;
        for (int r = 0; r < kh; ++r) {
            int iy = oy * sh + r - ph;
            if (iy < 0 || iy >= h) continue;
            for (int s = 0; s < kw; ++s) {
                int ix = ox * sw + s - pw;
                if (ix < 0 || ix >= w) continue;
                m = fmaxf(m, ld(x, ((b * h + iy) * w + ix) * c + ch));
            }
        }
        st(y, i, m);
    }
}

// coord: 0 half_pixel, 1 asymmetric, 2 align_corners, 3 pytorch_half_pixel (resize_coord in
// reference.rs).
__device__ __forceinline__ float resize_coord(int o, float scale, int len, int olen, int coord) {
    float f = (float)o;
    switch (coord) {
    case 1: return f / scale;
    case 2: return olen > 1 ? f * ((float)len - 1.0f) / ((float)olen - 1.0f) : 0.0f;
    case 3: return olen > 1 ? (f + 0.5f) / scale - 0.5f : 0.0f;
    default: return (f + 0.5f) / scale - 0.5f;
    }
}

__device__ __forceinline__ void resize_taps(int o, float scale, int len, int olen, int coord,
                                            int linear, int round, int* i0, int* i1, float* f) {
    float s = resize_coord(o, scale, len, olen, coord);
    if (linear) {
        s = fminf(fmaxf(s, 0.0f), (float)(len - 1));
        *i0 = (int)floorf(s);
        *i1 = imin(*i0 + 1, len - 1);
        *f = s - (float)*i0;
    } else {
        float i = round ? ceilf(s - 0.5f) : floorf(s);
        *i0 = imin((int)fmaxf(i, 0.0f), len - 1);
        *i1 = *i0;
        *f = 0.0f;
    }
}

// y = resize(x) (+ residual, an Add fused in; residual may be y itself: each value is read
// before it is written, by the same thread).
extern "C" __global__ void resize_nhwc(T* y, const T* x, const T* residual, int n, int h, int w,
                                       int c, int oh, int ow, float scale_h, float scale_w,
                                       int linear, int coord, int round) {
    FOR_EACH32(i, n * oh * ow * c) {
        int ch = i % c, t = i / c;
        int ox = t % ow;
        t /= ow;
        int oy = t % oh, b = t / oh;
        int y0, y1, x0, x1;
        float fy, fx;
        resize_taps(oy, scale_h, h, oh, coord, linear, round, &y0, &y1, &fy);
        resize_taps(ox, scale_w, w, ow, coord, linear, round, &x0, &x1, &fx);
        const T* base = x + b * h * w * c + ch;
        float p00 = ld(base, (y0 * w + x0) * c), p01 = ld(base, (y0 * w + x1) * c);
        float p10 = ld(base, (y1 * w + x0) * c), p11 = ld(base, (y1 * w + x1) * c);
        float top = p00 + (p01 - p00) * fx;
        float bottom = p10 + (p11 - p10) * fx;
        float v = top + (bottom - top) * fy;
        st(y, i, residual ? v + ld(residual, i) : v);
    }
}

extern "C" __global__ void copy_slab(T* y, const T* x, long long outer, long long len,
                                     long long x_stride, long long y_stride, long long x_offset,
                                     long long y_offset) {
    const int l = (int)len;
    FOR_EACH32(i, outer * len) {
        int o = i / l, j = i - o * l;
        y[o * y_stride + y_offset + j] = x[o * x_stride + x_offset + j];
    }
}

// Up to 6 axes: out_dims are the output's, in_strides the input stride of each output axis.
struct Dims6 {
    long long d[6];
};

extern "C" __global__ void permute(T* y, const T* x, int rank, long long total, Dims6 out_dims,
                                   Dims6 in_strides) {
    FOR_EACH32(i, total) {
        int rem = i, src = 0;
        for (int d = rank - 1; d >= 0; --d) {
            int dim = (int)out_dims.d[d];
            src += (rem % dim) * (int)in_strides.d[d];
            rem /= dim;
        }
        y[i] = x[src];
    }
}

// Host FP32 tensors in and out of the activation type (the `infer` path and output reads).
extern "C" __global__ void from_f32(T* y, const float* x, long long n) {
    FOR_EACH(i, n) st(y, i, x[i]);
}
extern "C" __global__ void to_f32(float* y, const T* x, long long n) {
    FOR_EACH(i, n) y[i] = ld(x, i);
}

// Two consecutive values from an even index (one 4- or 8-byte load).
__device__ __forceinline__ void ld2(const T* p, int i, float& a, float& b) {
#if ADAS_HALF
    unsigned int v = *(const unsigned int*)(p + i);
    asm("cvt.f32.f16 %0, %1;" : "=f"(a) : "h"((unsigned short)(v & 0xffff)));
    asm("cvt.f32.f16 %0, %1;" : "=f"(b) : "h"((unsigned short)(v >> 16)));
#else
    float2 v = *(const float2*)(p + i);
    a = v.x;
    b = v.y;
#endif
}

// Σ over the R×S taps of one output pixel for channels ch (and ch + 1 when pairs). R and S > 0:
// known when compiled, so the loop unrolls and all the taps' loads go out together instead of
// one trip to memory per tap; 0: taken from r and s.
template <int R, int S>
__device__ __forceinline__ void dw_taps(const T* x, const T* w, int r, int s, int h, int wd,
                                        int xp, int sh, int sw, int dh, int dw, int ph, int pw,
                                        int bn, int oy, int ox, int ch, bool pairs, float& acc0,
                                        float& acc1) {
    const int rr = R > 0 ? R : r, ss = S > 0 ? S : s;
#pragma unroll
    for (int ry = 0; ry < rr; ++ry) {
        int iy = oy * sh + ry * dh - ph;
#pragma unroll
        for (int sx = 0; sx < ss; ++sx) {
            int ix = ox * sw + sx * dw - pw;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            int at = ((bn * h + iy) * wd + ix) * xp + ch, tap = ry * ss + sx;
            if (pairs) {
                float x0, x1;
                ld2(x, at, x0, x1);
                acc0 += x0 * ld(w, ch * rr * ss + tap);
                acc1 += x1 * ld(w, (ch + 1) * rr * ss + tap);
            } else {
                acc0 += ld(x, at) * ld(w, ch * rr * ss + tap);
            }
        }
    }
}

// The fused epilogue of the own convolution kernels: y = act(v + bias + residual) for output
// channel kk of pixel p, and for channel kk + 1 (v1) when `both` — pairs halve the epilogue's
// iterations, index arithmetic and stores; written as one 4-byte store when `packed` (FP16; y and
// its pixel pitch even-aligned). Both values are complete before the first store (a load after a
// store to y, which may alias, would wait for it).
__device__ __forceinline__ void conv_store(T* y, float v0, float v1, int p, int kk, int k, int yp,
                                            const float* bias, const T* residual, int act,
                                            float a, float b, bool both, bool packed) {
    if (bias) {
        v0 += bias[kk];
        if (both) v1 += bias[kk + 1];
    }
    if (residual) {
        v0 += ld(residual, p * k + kk);
        if (both) v1 += ld(residual, p * k + kk + 1);
    }
    v0 = activate(v0, act, a, b);
    v1 = activate(v1, act, a, b);
    const int at = p * yp + kk;
#if ADAS_HALF
    if (packed) {
        unsigned int two;
        asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(two) : "f"(v1), "f"(v0));
        *(unsigned int*)(y + at) = two;
        return;
    }
#endif
    st(y, at, v0);
    if (both) st(y, at + 1, v1);
}

// Depthwise convolution (groups = in = out channels), NHWC, with the convolution epilogue fused:
// y = act(Σ x·w + bias + residual). w is [C][R][S]. One thread per pair of channels of an output
// pixel (per channel when C is odd); consecutive threads read consecutive channels, so loads
// coalesce. 32-bit index arithmetic (see FOR_EACH32): 64-bit division dominated the first
// version. cuDNN's grouped NHWC kernels are several times slower on these small MobileNet
// layers. Same parameter list as conv_igemm (k = c here).
extern "C" __global__ void dwconv_nhwc(T* y, const T* x, const T* w, const float* bias,
                                       const T* residual, int n, int h, int wd, int c, int k,
                                       int r, int s, int ph, int pw, int sh, int sw, int dh,
                                       int dw, int oh, int ow, int act, float a, float b, int xp,
                                       int yp) {
    // Pairs need 4-byte (FP16) or 8-byte (FP32) aligned input pixels.
    const bool pairs = c % 2 == 0 && xp % 2 == 0 && (unsigned long long)x % (2 * sizeof(T)) == 0;
    const int per = pairs ? 2 : 1, groups = c / per, total = n * oh * ow * groups;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int ch = (i % groups) * per, t = i / groups;
        int ox = t % ow;
        t /= ow;
        int oy = t % oh, bn = t / oh;
        float acc0 = 0.0f, acc1 = 0.0f;
        if (r == 3 && s == 3)
            dw_taps<3, 3>(x, w, r, s, h, wd, xp, sh, sw, dh, dw, ph, pw, bn, oy, ox, ch, pairs, acc0, acc1);
        else
            dw_taps<0, 0>(x, w, r, s, h, wd, xp, sh, sw, dh, dw, ph, pw, bn, oy, ox, ch, pairs, acc0, acc1);
        conv_store(y, acc0, acc1, (bn * oh + oy) * ow + ox, ch, c, yp, bias, residual, act, a, b,
                   pairs, false);
    }
}

// Implicit-GEMM convolution (groups = 1), NHWC in and out, KRSC weights, epilogue fused:
// y[p, k] = act(Σ_q x̂[p, q] · w[k, q] + bias[k] + residual[p, k]), with p = output pixel and
// q = (r, s, c) the reduction index (im2col addresses computed on the fly). One block of 256
// threads computes a 64-pixel × 64-channel tile, 4×4 values per thread, in a fixed order (bit-
// identical on every run). The engine measures it against cuDNN's algorithms per layer and keeps
// the faster: on small layers at small batches cuDNN's per-call kernels cost more than the work.
// Input and output pixels are xp and yp values apart (C and K when dense, more when they are
// channel slices of a Concat written in place); the residual is dense.
#define IG_TP 64
#define IG_TK 64
#define IG_TQ 16
extern "C" __global__ void __launch_bounds__(256) conv_igemm(
    T* y, const T* x, const T* w, const float* bias, const T* residual, int n, int h, int wd, int c,
    int k, int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int act,
    float a, float b, int xp, int yp) {
    __shared__ float xs[IG_TQ][IG_TP + 4];
    __shared__ float ws[IG_TQ][IG_TK + 4];
    const int P = n * oh * ow, Q = r * s * c;
    const int p0 = blockIdx.x * IG_TP, k0 = blockIdx.y * IG_TK;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) acc[i][j] = 0.0f;
    for (int q0 = 0; q0 < Q; q0 += IG_TQ) {
        // Consecutive threads read consecutive q (= consecutive channels in NHWC): coalesced.
        for (int e = threadIdx.x; e < IG_TQ * IG_TP; e += 256) {
            int qq = e % IG_TQ, pp = e / IG_TQ;
            int q = q0 + qq, p = p0 + pp;
            float v = 0.0f;
            if (q < Q && p < P) {
                int cc = q % c, t = q / c, ss = t % s, rr = t / s;
                int ox = p % ow, t2 = p / ow, oy = t2 % oh, bn = t2 / oh;
                int iy = oy * sh + rr * dh - ph, ix = ox * sw + ss * dw - pw;
                if (iy >= 0 && ix >= 0 && iy < h && ix < wd)
                    v = ld(x, (((long long)bn * h + iy) * wd + ix) * xp + cc);
            }
            xs[qq][pp] = v;
        }
        for (int e = threadIdx.x; e < IG_TQ * IG_TK; e += 256) {
            int qq = e % IG_TQ, kk = e / IG_TQ;
            int q = q0 + qq, kx = k0 + kk;
            ws[qq][kk] = (q < Q && kx < k) ? ld(w, (long long)kx * Q + q) : 0.0f;
        }
        __syncthreads();
        for (int qq = 0; qq < IG_TQ; ++qq) {
            float xv[4], wv[4];
            for (int i = 0; i < 4; ++i) xv[i] = xs[qq][ty + 16 * i];
            for (int j = 0; j < 4; ++j) wv[j] = ws[qq][tx + 16 * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j) acc[i][j] = __fmaf_rn(xv[i], wv[j], acc[i][j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        int p = p0 + ty + 16 * i;
        if (p >= P) continue;
        for (int j = 0; j < 4; ++j) {
            int kk = k0 + tx + 16 * j;
            if (kk >= k) continue;
            conv_store(y, acc[i][j], 0.0f, p, kk, k, yp, bias, residual, act, a, b, false, false);
        }
    }
}

// The same convolution with 16 × 16 tiles and one output per thread: four times the blocks of
// conv_igemm for the small late layers (e.g. 19×19 or 10×10 pixels), where 64 × 64 tiles leave
// most of the GPU idle. Same reduction order per output as conv_igemm.
extern "C" __global__ void __launch_bounds__(256) conv_igemm16(
    T* y, const T* x, const T* w, const float* bias, const T* residual, int n, int h, int wd, int c,
    int k, int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int act,
    float a, float b, int xp, int yp) {
    __shared__ float xs[16][17];
    __shared__ float ws[16][17];
    const int P = n * oh * ow, Q = r * s * c;
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int p = blockIdx.x * 16 + ty, kk = blockIdx.y * 16 + tx;
    // Loader roles: thread (ty, tx) loads x[pixel p0+ty][q0+tx] and w[k0+ty][q0+tx].
    const int lp = blockIdx.x * 16 + ty, lk = blockIdx.y * 16 + ty;
    int ox = 0, oy = 0, bn = 0;
    if (lp < P) {
        ox = lp % ow;
        int t2 = lp / ow;
        oy = t2 % oh;
        bn = t2 / oh;
    }
    float acc = 0.0f;
    for (int q0 = 0; q0 < Q; q0 += 16) {
        int q = q0 + tx;
        float v = 0.0f;
        if (q < Q && lp < P) {
            int cc = q % c, t = q / c, ss = t % s, rr = t / s;
            int iy = oy * sh + rr * dh - ph, ix = ox * sw + ss * dw - pw;
            if (iy >= 0 && ix >= 0 && iy < h && ix < wd)
                v = ld(x, (((long long)bn * h + iy) * wd + ix) * xp + cc);
        }
        xs[ty][tx] = v;
        ws[ty][tx] = (q < Q && lk < k) ? ld(w, (long long)lk * Q + q) : 0.0f;
        __syncthreads();
        for (int j = 0; j < 16; ++j) acc = __fmaf_rn(xs[ty][j], ws[tx][j], acc);
        __syncthreads();
    }
    if (p < P && kk < k)
        conv_store(y, acc, 0.0f, p, kk, k, yp, bias, residual, act, a, b, false, false);
}

// Keeps the GPU busy for `ns` nanoseconds: timing runs queue their launches behind it, so CUDA
// events measure the kernels, not the host's launch rate.
extern "C" __global__ void spin(long long ns) {
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    } while ((long long)(now - start) < ns);
}

// Tensor-core implicit-GEMM convolution, FP16 in, FP32 accumulate (mma.sync m16n8k16, sm_80+:
// Jetson Orin, Ampere, Hopper). Same parameters and epilogue as conv_igemm. A block of WARPS
// warps computes a BM-pixel × BN-channel tile; each warp a 32 × 32 part of it over its share of
// the reduction: the SPLIT warps that share a part each take every SPLIT-th 16-wide slice of q
// and their sums are added in shared memory in warp order — split-K inside the block, which
// gives the small late layers (≤ 52×52 pixels, hundreds of input channels) SPLIT times the
// parallelism of a plain tile while staying bit-identical from run to run (no atomics). The
// reduction is walked in slices of KC halves (64; 128 and 256 for the 8- and 16-warp kernels,
// 16 per warp; or 32 for short reductions such as 1×1 layers with 16 or 24 input channels, which
// a 64-wide slice would mostly fill with zeros), double-buffered: while the warps multiply one slice, cp.async copies the
// next into shared memory (V halves per copy: 16 bytes when C is a multiple of 8). At batch 1 a
// slice costs about one memory round trip whatever its width, so wider slices over more warps
// (8 warps × 128, 16 × 256) shorten the walk without a second kernel.
// Shared memory is dynamic, MmaShape::BYTES; the host computes the same figure
// (network.rs, `OwnConv::shared_bytes`).
// With gridDim.z > 1 the slices are also split between blocks (split-K for layers with few
// tiles and long reductions, e.g. 3×3×256 at 13×13): each block writes its FP32 sums to
// `partial` and conv_split_sum adds them in order and applies the epilogue. On sm_90+ the
// CLUSTER variants make the blocks of a tile one thread-block cluster instead: they add their
// sums through distributed shared memory (each block finishes 1/CLUSTER of the tile's rows), so
// the FP32 partials never reach global memory and the second kernel disappears. Both orders of
// addition are the same (warps, then blocks, each in index order): bit-identical results.
#if ADAS_HALF
// The shared-memory (32-bit) address of a generic pointer into shared memory.
__device__ __forceinline__ unsigned int shared_address(const void* p) {
    unsigned long long s;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(s) : "l"(p));
    return (unsigned int)s;
}

// Shared-memory byte address dst ← V halves at src, or zeros when !valid. Asynchronous
// (cp.async, 4 or 16 bytes) where the hardware can; a single half (C odd: only a network's first
// layer) is stored directly.
template <int V>
__device__ __forceinline__ void copy_halves(unsigned int dst, const T* src, bool valid) {
    if constexpr (V == 1) {
        unsigned short v = valid ? *src : (T)0;
        asm volatile("st.shared.u16 [%0], %1;" ::"r"(dst), "h"(v) : "memory");
    } else {
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;" ::"r"(dst), "l"(src),
                     "n"(2 * V), "r"(valid ? 2 * V : 0));
    }
}

// Row pitch of a staged slice, in halves: KC + 8 makes the fragment loads hit 32 different banks.
template <int KC> struct Pitch { static constexpr int value = KC + 8; };

// Staging a reduction slice (KC halves) into shared memory. Each thread copies one fixed column
// of the slice (its chunk of V halves) in every ROW_STEP-th row, the same in every slice: so each
// row's pixel is worked out once per block, the column's tap once per slice by a few additions
// (Tap), and a copy costs a few more. (The first version divided q by C and S for every copy:
// Nsight Compute showed those divisions as most of the kernels' instructions, and the kernels
// bound by instruction issue, not by memory.)
template <int V, int KC, int THREADS> struct Staging {
    static constexpr int PER_ROW = KC / V, ROW_STEP = THREADS / PER_ROW;
    static_assert(THREADS % PER_ROW == 0, "a thread keeps its column from row to row");
};

// A thread's reduction index q = (r·S + s)·C + c as the tap it reads, moved on slice by slice
// with additions (a division by a run-time C or S costs about 20 instructions).
struct Tap {
    int q, cc, ss, rr;
    __device__ __forceinline__ Tap(int q0, int c, int s)
        : q(q0), cc(q0 % c), ss(q0 / c % s), rr(q0 / c / s) {}
    __device__ __forceinline__ void advance(int by, int c, int s) {
        q += by;
        cc += by;
        while (cc >= c) {
            cc -= c;
            if (++ss == s) {
                ss = 0;
                ++rr;
            }
        }
    }
};

// A (im2col of x): row = output pixel, whose first tap is at (pix_yx[row]) in the image and
// pix_off[row] values from x (a row past the last pixel has y = -2³⁰: every tap misses).
template <int V, int ROWS, int KC, int THREADS>
__device__ __forceinline__ void stage_pixels(unsigned int dst, const T* x, const Tap& tap, int Q,
                                             int xp, int dh, int dw, int h, int wd,
                                             const int* pix_off, const int2* pix_yx) {
    typedef Staging<V, KC, THREADS> S;
    static_assert(ROWS % S::ROW_STEP == 0, "every thread copies as many rows");
    const int col = threadIdx.x % S::PER_ROW, row0 = threadIdx.x / S::PER_ROW;
    dst += (row0 * Pitch<KC>::value + col * V) * 2;
    const bool in_q = tap.q < Q;
    const int dy = tap.rr * dh, dx = tap.ss * dw, off = (dy * wd + dx) * xp + tap.cc;
    for (int i = 0; i < ROWS / S::ROW_STEP; ++i) {
        const int row = row0 + i * S::ROW_STEP;
        const int2 yx = pix_yx[row];
        const bool valid = in_q && (unsigned)(yx.x + dy) < (unsigned)h && (unsigned)(yx.y + dx) < (unsigned)wd;
        copy_halves<V>(dst + i * S::ROW_STEP * Pitch<KC>::value * 2,
                       valid ? x + (pix_off[row] + off) : x, valid);
    }
}

// B (weights, KRSC: one dense row of Q per output channel): rows k0 … k0 + ROWS - 1; q is the
// thread's column.
template <int V, int ROWS, int KC, int THREADS>
__device__ __forceinline__ void stage_weights(unsigned int dst, const T* w, int q, int Q, int k,
                                              int k0) {
    typedef Staging<V, KC, THREADS> S;
    static_assert(ROWS % S::ROW_STEP == 0, "every thread copies as many rows");
    const int col = threadIdx.x % S::PER_ROW, row0 = threadIdx.x / S::PER_ROW;
    dst += (row0 * Pitch<KC>::value + col * V) * 2;
    for (int i = 0; i < ROWS / S::ROW_STEP; ++i) {
        const int row = row0 + i * S::ROW_STEP;
        const bool valid = q < Q && k0 + row < k;
        copy_halves<V>(dst + i * S::ROW_STEP * Pitch<KC>::value * 2,
                       valid ? w + ((k0 + row) * Q + q) : w, valid);
    }
}

__device__ __forceinline__ unsigned int pair(const T* p) { return *(const unsigned int*)p; }

// Halves per copy into shared memory: the widest that the input's channel count, pixel pitch and
// alignment allow (weights are dense rows of a multiple of the channel count).
__device__ __forceinline__ int copy_width(int c, int xp, const T* x) {
    const unsigned long long xa = (unsigned long long)x;
    return (c | xp) % 8 == 0 && xa % 16 == 0 ? 8 : (c | xp) % 2 == 0 && xa % 4 == 0 ? 2 : 1;
}

// This lane's part of a 16 × 16 A fragment (mma.sync m16n8k16, row-major) whose row g, column
// 2·t4 is at p in a tile of `pitch` halves per row.
__device__ __forceinline__ void a_fragment(const T* p, int pitch, unsigned int (&a)[4]) {
    a[0] = pair(p);
    a[1] = pair(p + 8 * pitch);
    a[2] = pair(p + 8);
    a[3] = pair(p + 8 * pitch + 8);
}

// acc (this lane's part of a 16 × 8 FP32 tile) += A fragment · B fragment (b0, b1: column g,
// rows 2·t4 and 2·t4 + 8 of a 16 × 8 FP16 tile).
__device__ __forceinline__ void mma_16816(float (&acc)[4], const unsigned int (&a)[4],
                                          unsigned int b0, unsigned int b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};"
        : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

#if __CUDA_ARCH__ >= 900
// Every thread of every block of the cluster arrives, then waits: shared-memory writes before
// are visible to the whole cluster after (release / acquire).
__device__ __forceinline__ void cluster_sync() {
    asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// The floats at p and p + 1 in the shared memory of cluster block `rank`.
__device__ __forceinline__ void cluster_load2(const float* p, unsigned int rank, float& v0, float& v1) {
    unsigned int remote;
    asm("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(shared_address(p)), "r"(rank));
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v0) : "r"(remote) : "memory");
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v1) : "r"(remote + 4) : "memory");
}
#endif

template <int WARPS_M, int WARPS_N, int KC, int WARPS> struct MmaShape {
    static constexpr int BM = 32 * WARPS_M, BN = 32 * WARPS_N, SPLIT = WARPS / (WARPS_M * WARPS_N);
    static constexpr int THREADS = 32 * WARPS, LD = Pitch<KC>::value;
    // Two slices of A and B while multiplying; the warps' partial sums after (same memory).
    static constexpr int TILES = 2 * (BM + BN) * LD * 2, SUMS = SPLIT * BM * (BN + 1) * 4;
    static constexpr int BYTES = TILES > SUMS ? TILES : SUMS;
    static_assert(KC % (16 * SPLIT) == 0, "every warp takes whole 16-wide steps of a slice");
};

extern __shared__ __align__(16) unsigned char mma_smem[];

template <int WARPS_M, int WARPS_N, int KC, int WARPS, int CLUSTER>
__device__ __forceinline__ void conv_mma(T* y, const T* x, const T* w, const float* bias,
                                         const T* residual, int n, int h, int wd, int c, int k,
                                         int r, int s, int ph, int pw, int sh, int sw, int dh,
                                         int dw, int oh, int ow, int act, float a, float b,
                                         int xp, int yp, float* partial) {
#if __CUDA_ARCH__ >= 800
    typedef MmaShape<WARPS_M, WARPS_N, KC, WARPS> Shape;
    constexpr int BM = Shape::BM, BN = Shape::BN, SPLIT = Shape::SPLIT, THREADS = Shape::THREADS;
    unsigned int given;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(given));
    if (given < Shape::BYTES) __trap();  // launched with less shared memory than it uses
    typedef T Row[Shape::LD];
    Row* As = (Row*)mma_smem;         // [2][BM]
    Row* Bs = As + 2 * BM;            // [2][BN]
    typedef float SumRow[BN + 1];
    SumRow* red = (SumRow*)mma_smem;  // [SPLIT][BM]
    __shared__ int pix_off[BM];
    __shared__ int2 pix_yx[BM];
    const int P = n * oh * ow, Q = r * s * c;
    const int p0 = blockIdx.x * BM, k0 = blockIdx.y * BN;
    for (int i = threadIdx.x; i < BM; i += THREADS) {
        int p = p0 + i, ox = p % ow, t = p / ow, oy = t % oh, bn = t / oh;
        int2 yx;
        yx.x = p < P ? oy * sh - ph : -(1 << 30);
        yx.y = ox * sw - pw;
        pix_yx[i] = yx;
        pix_off[i] = p < P ? ((bn * h + yx.x) * wd + yx.y) * xp : 0;
    }
    __syncthreads();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    const int split = warp % SPLIT, part = warp / SPLIT;
    const int m0 = (part % WARPS_M) * 32, n0 = (part / WARPS_M) * 32;
    float acc[2][4][4];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 4; ++l) acc[i][j][l] = 0.0f;
    const int v = copy_width(c, xp, x);
    // This block's share of the slices: whole slices, so no q is summed twice.
    const int slices = (Q + KC - 1) / KC, share = (slices + gridDim.z - 1) / gridDim.z;
    const int q_begin = blockIdx.z * share * KC, q_end = imin(Q, q_begin + share * KC);
    // This thread's column of every slice (Staging), as a tap moved on after each slice.
    Tap tap(q_begin + threadIdx.x % (KC / v) * v, c, s);
    const unsigned int smem = shared_address(mma_smem);
    auto stage = [&](int buf) {
        const unsigned int a_dst = smem + buf * BM * Shape::LD * 2;
        const unsigned int b_dst = smem + (2 * BM + buf * BN) * Shape::LD * 2;
        if (v == 8) {
            stage_pixels<8, BM, KC, THREADS>(a_dst, x, tap, Q, xp, dh, dw, h, wd, pix_off, pix_yx);
            stage_weights<8, BN, KC, THREADS>(b_dst, w, tap.q, Q, k, k0);
        } else if (v == 2) {
            stage_pixels<2, BM, KC, THREADS>(a_dst, x, tap, Q, xp, dh, dw, h, wd, pix_off, pix_yx);
            stage_weights<2, BN, KC, THREADS>(b_dst, w, tap.q, Q, k, k0);
        } else {
            stage_pixels<1, BM, KC, THREADS>(a_dst, x, tap, Q, xp, dh, dw, h, wd, pix_off, pix_yx);
            stage_weights<1, BN, KC, THREADS>(b_dst, w, tap.q, Q, k, k0);
        }
        asm volatile("cp.async.commit_group;");
        tap.advance(KC, c, s);
    };
    if (q_begin < q_end) stage(0);
    for (int q0 = q_begin, buf = 0; q0 < q_end; q0 += KC, buf ^= 1) {
        if (q0 + KC < q_end) {
            stage(buf ^ 1);  // the next slice; the other buffer was released by the last barrier
            asm volatile("cp.async.wait_group 1;");
        } else {
            asm volatile("cp.async.wait_group 0;");
        }
        __syncthreads();
        const Row* A = As + buf * BM;
        const Row* B = Bs + buf * BN;
        for (int kk = split * 16; kk < KC; kk += 16 * SPLIT) {
            unsigned int af[2][4], bf[4][2];
            for (int i = 0; i < 2; ++i) a_fragment(&A[m0 + i * 16 + g][kk + 2 * t4], Shape::LD, af[i]);
            for (int j = 0; j < 4; ++j) {
                const int col = n0 + j * 8 + g;
                bf[j][0] = pair(&B[col][kk + 2 * t4]);
                bf[j][1] = pair(&B[col][kk + 2 * t4 + 8]);
            }
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 4; ++j) mma_16816(acc[i][j], af[i], bf[j][0], bf[j][1]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j)
            for (int l = 0; l < 4; ++l)
                red[split * BM + m0 + i * 16 + g + (l / 2) * 8][n0 + j * 8 + 2 * t4 + l % 2] =
                    acc[i][j][l];
    __syncthreads();
    // The epilogue takes channels in pairs (kk even: k0 and col are); one 4-byte store per pair
    // where y and its pixel pitch allow.
    constexpr int PAIRS = BN / 2;
    const bool packed = yp % 2 == 0 && (unsigned long long)y % 4 == 0;
#if __CUDA_ARCH__ >= 900
    if constexpr (CLUSTER > 1) {
        // The warps' sums (each value by one thread), then the cluster's, in rank order.
        for (int e = threadIdx.x; e < BM * BN; e += THREADS) {
            int row = e / BN, col = e % BN;
            float v = red[row][col];
            for (int sp = 1; sp < SPLIT; ++sp) v += red[sp * BM + row][col];
            red[row][col] = v;
        }
        cluster_sync();
        unsigned int rank;
        asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
        constexpr int ROWS = BM / CLUSTER;
        for (int e = threadIdx.x; e < ROWS * PAIRS; e += THREADS) {
            int row = rank * ROWS + e / PAIRS, col = e % PAIRS * 2, p = p0 + row, kk = k0 + col;
            if (p >= P || kk >= k) continue;
            const bool both = kk + 1 < k;
            float v0, v1;
            cluster_load2(&red[row][col], 0, v0, v1);
            for (unsigned int z = 1; z < CLUSTER; ++z) {
                float w0, w1;
                cluster_load2(&red[row][col], z, w0, w1);
                v0 += w0;
                v1 += w1;
            }
            conv_store(y, v0, v1, p, kk, k, yp, bias, residual, act, a, b, both, packed && both);
        }
        cluster_sync();  // this block's sums stay until every block of the cluster has read them
    } else
#endif
    // Consecutive threads write consecutive channel pairs: coalesced stores.
    for (int e = threadIdx.x; e < BM * PAIRS; e += THREADS) {
        int row = e / PAIRS, col = e % PAIRS * 2, p = p0 + row, kk = k0 + col;
        if (p >= P || kk >= k) continue;
        float v0 = red[row][col], v1 = red[row][col + 1];
        for (int sp = 1; sp < SPLIT; ++sp) {
            v0 += red[sp * BM + row][col];
            v1 += red[sp * BM + row][col + 1];
        }
        const bool both = kk + 1 < k;
        if (gridDim.z > 1) {
            float* out = partial + ((long long)blockIdx.z * P + p) * k + kk;
            out[0] = v0;
            if (both) out[1] = v1;
            continue;
        }
        conv_store(y, v0, v1, p, kk, k, yp, bias, residual, act, a, b, both, packed && both);
    }
#endif
}
#define CONV_MMA(NAME, WM, WN, KC, WARPS, CLUSTER, ATTRIBUTES)                                 \
    extern "C" __global__ void ATTRIBUTES __launch_bounds__(32 * WARPS) NAME(                  \
        T* y, const T* x, const T* w, const float* bias, const T* residual, int n, int h,       \
        int wd, int c, int k, int r, int s, int ph, int pw, int sh, int sw, int dh, int dw,     \
        int oh, int ow, int act, float a, float b, int xp, int yp, float* partial) {            \
        conv_mma<WM, WN, KC, WARPS, CLUSTER>(y, x, w, bias, residual, n, h, wd, c, k, r, s, ph, pw, sh, \
                         sw, dh, dw, oh, ow, act, a, b, xp, yp, partial);                       \
    }
// 32 × 32 tile, reduction split over the 4 warps: small layers.
CONV_MMA(conv_mma_split, 1, 1, 64, 4, 1, )
// The same over 8 and 16 warps with 128- and 256-wide slices: long reductions.
CONV_MMA(conv_mma_split8, 1, 1, 128, 8, 1, )
CONV_MMA(conv_mma_split16, 1, 1, 256, 16, 1, )
// 64 × 64 tile, one 32 × 32 quarter per warp: large layers.
CONV_MMA(conv_mma_wide, 2, 2, 64, 4, 1, )
// The same with 32-wide slices: large layers with short reductions.
CONV_MMA(conv_mma_wide32, 2, 2, 32, 4, 1, )
#if __CUDA_ARCH__ >= 900
// Split-K over a cluster of 4 or 8 blocks (launched with gridDim.z = the cluster size).
CONV_MMA(conv_mma_split_c4, 1, 1, 64, 4, 4, __cluster_dims__(1, 1, 4))
CONV_MMA(conv_mma_split_c8, 1, 1, 64, 4, 8, __cluster_dims__(1, 1, 8))
CONV_MMA(conv_mma_split8_c4, 1, 1, 128, 8, 4, __cluster_dims__(1, 1, 4))
CONV_MMA(conv_mma_split8_c8, 1, 1, 128, 8, 8, __cluster_dims__(1, 1, 8))
CONV_MMA(conv_mma_split16_c4, 1, 1, 256, 16, 4, __cluster_dims__(1, 1, 4))
CONV_MMA(conv_mma_split16_c8, 1, 1, 256, 16, 8, __cluster_dims__(1, 1, 8))
CONV_MMA(conv_mma_wide_c4, 2, 2, 64, 4, 4, __cluster_dims__(1, 1, 4))
CONV_MMA(conv_mma_wide_c8, 2, 2, 64, 4, 8, __cluster_dims__(1, 1, 8))
#endif

// A 1×1 expansion (groups 1, stride 1, no padding) and the 3×3 depthwise convolution that reads
// it, in one kernel: MobileNetV2's inverted residual without its projection. At batch 1 the
// depthwise layer was a launch of its own that waited for the expansion and read its output (six
// times the block's input) back from memory; here the expanded map never leaves shared memory.
// A block of 256 threads makes a TH × TW tile of output pixels for EXPAND_CHANNELS expanded
// channels (8 warps: a block does its three steps one after the other, and at batch 1 there are
// few blocks per SM, so its warps are what hides the latencies):
// 1. stages the (TH−1)·SH+3 × (TW−1)·SH+3 input pixels under the tile (whole reduction at once:
//    the host fuses only c ≤ 256) and the channels' expansion weights (cp.async);
// 2. expands them on tensor cores (mma.sync m16n8k16, FP32 sums), applies bias and activation,
//    rounds to T like the expansion's own output would be, and writes zeros outside the image
//    (the depthwise layer's padding is of the expanded map);
// 3. runs the depthwise taps from shared memory in dwconv_nhwc's order, epilogue conv_store.
// So the output equals the two kernels' whenever the expansion sums do (the reduction order of
// one tensor-core kernel differs from another's in the last bits).
// Shared memory is dynamic, ExpandShape::bytes; the host computes the same figure (network.rs,
// `expand_dw_bytes`).
#define EXPAND_CHANNELS 48
template <int SH> struct ExpandShape {
    static constexpr int TH = 4, TW = SH == 1 ? 8 : 4;
    static constexpr int HW = (TW - 1) * SH + 3, HALO = ((TH - 1) * SH + 3) * HW;
    static constexpr int ROWS = (HALO + 15) / 16 * 16, EP = EXPAND_CHANNELS + 8;
    // Staged input and weights (row pitch c rounded up to 16, + 8 against bank conflicts), the
    // expanded tile, the depthwise weights as floats.
    static __device__ __forceinline__ int bytes(int pitch) {
        return (ROWS + EXPAND_CHANNELS) * pitch * 2 + ROWS * EP * 2 + EXPAND_CHANNELS * 9 * 4;
    }
};

// Step 1's input: the halo pixels under the tile, V halves per copy (the widest c, the pixel
// pitch and x's alignment allow), zeros outside the image.
template <int V, int HW, int HALO>
__device__ __forceinline__ void stage_halo(unsigned int dst, const T* x, int rows, int c, int kp,
                                           int pitch, int bn, int iy0, int ix0, int h, int wd,
                                           int xp) {
    const int per_row = kp / V;
    for (int i = threadIdx.x; i < rows * per_row; i += blockDim.x) {
        const int row = i / per_row, q = i % per_row * V;
        const int iy = iy0 + row / HW, ix = ix0 + row % HW;
        const bool valid =
            row < HALO && q < c && (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd;
        copy_halves<V>(dst + (row * pitch + q) * 2,
                       valid ? x + (((bn * h + iy) * wd + ix) * xp + q) : x, valid);
    }
}

// rows × cols halves of a row-major matrix (ld halves per row) into shared memory (pitch halves
// per row), V per copy; zeros past row_limit or col_limit.
template <int V>
__device__ __forceinline__ void stage_matrix(unsigned int dst, int pitch, const T* src, int ld,
                                             int rows, int row_limit, int cols, int col_limit) {
    const int per_row = cols / V;
    for (int i = threadIdx.x; i < rows * per_row; i += blockDim.x) {
        const int row = i / per_row, q = i % per_row * V;
        const bool valid = row < row_limit && q < col_limit;
        copy_halves<V>(dst + (row * pitch + q) * 2, valid ? src + (row * ld + q) : src, valid);
    }
}

// Step 1 for expanded channels e0 …: the halo pixels (when `halo`) and the channels' expansion
// weights (cp.async, not yet waited for), and their depthwise weights as floats.
template <int SH>
__device__ __forceinline__ void stage_expansion(T* As, T* Bs, float* Ws, const T* x, const T* w1,
                                                const T* w2, bool halo, int c, int kp, int pitch,
                                                int e, int e0, int bn, int iy0, int ix0, int h,
                                                int wd, int xp) {
    typedef ExpandShape<SH> Shape;
    constexpr int EC = EXPAND_CHANNELS, HW = Shape::HW, HALO = Shape::HALO, ROWS = Shape::ROWS;
    const int v = copy_width(c, xp, x);
    const unsigned int a_dst = shared_address(As), b_dst = shared_address(Bs);
    const T* w = w1 + e0 * c;
    if (v == 8) {
        if (halo) stage_halo<8, HW, HALO>(a_dst, x, ROWS, c, kp, pitch, bn, iy0, ix0, h, wd, xp);
        stage_matrix<8>(b_dst, pitch, w, c, EC, e - e0, kp, c);
    } else if (v == 2) {
        if (halo) stage_halo<2, HW, HALO>(a_dst, x, ROWS, c, kp, pitch, bn, iy0, ix0, h, wd, xp);
        stage_matrix<2>(b_dst, pitch, w, c, EC, e - e0, kp, c);
    } else {
        if (halo) stage_halo<1, HW, HALO>(a_dst, x, ROWS, c, kp, pitch, bn, iy0, ix0, h, wd, xp);
        stage_matrix<1>(b_dst, pitch, w, c, EC, e - e0, kp, c);
    }
    for (int i = threadIdx.x; i < EC * 9; i += blockDim.x)
        Ws[i] = e0 + i / 9 < e ? ld(w2, e0 * 9 + i) : 0.0f;
}

// Step 2: the staged halo pixels (As) times the expansion weights (Bs) → Es, in units of 16 halo
// pixels × 24 channels (three n8 fragments), round robin over the warps.
template <int SH>
__device__ __forceinline__ void expand_tile(const T* As, const T* Bs, T* Es, const float* b1,
                                            int act1, float a1, float c1, int kp, int pitch,
                                            int e, int e0, int iy0, int ix0, int h, int wd) {
    typedef ExpandShape<SH> Shape;
    constexpr int EC = EXPAND_CHANNELS, HW = Shape::HW;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    const int warps = blockDim.x / 32;
    for (int u = warp; u < Shape::ROWS / 16 * 2; u += warps) {
        const int m0 = u / 2 * 16, n0 = u % 2 * (EC / 2);
        float acc[3][4];
        for (int j = 0; j < 3; ++j)
            for (int l = 0; l < 4; ++l) acc[j][l] = 0.0f;
        for (int kk = 0; kk < kp; kk += 16) {
            unsigned int af[4];
            a_fragment(As + (m0 + g) * pitch + kk + 2 * t4, pitch, af);
            for (int j = 0; j < 3; ++j) {
                const T* b = Bs + (n0 + j * 8 + g) * pitch + kk + 2 * t4;
                mma_16816(acc[j], af, pair(b), pair(b + 8));
            }
        }
        for (int j = 0; j < 3; ++j) {
            const int col = n0 + j * 8 + 2 * t4, ch = e0 + col;
            const float bias0 = b1 && ch < e ? b1[ch] : 0.0f;
            const float bias1 = b1 && ch + 1 < e ? b1[ch + 1] : 0.0f;
            for (int r8 = 0; r8 < 2; ++r8) {
                const int row = m0 + g + 8 * r8, iy = iy0 + row / HW, ix = ix0 + row % HW;
                const bool inside = row < Shape::HALO && (unsigned)iy < (unsigned)h && (unsigned)ix < (unsigned)wd;
                float v0 = acc[j][2 * r8], v1 = acc[j][2 * r8 + 1];
                if (b1) {
                    v0 += bias0;
                    v1 += bias1;
                }
                v0 = inside ? activate(v0, act1, a1, c1) : 0.0f;
                v1 = inside ? activate(v1, act1, a1, c1) : 0.0f;
                unsigned int two;
                asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(two) : "f"(v1), "f"(v0));
                *(unsigned int*)(Es + row * Shape::EP + col) = two;
            }
        }
    }
}

// Step 3's sums for output pixel (ty, tx) of the tile and expanded channels col, col + 1 of the
// chunk, in dwconv_nhwc's order. Taps outside the image read the zeros written there (dw_taps
// skips them instead: the same sums, but for the sign of an exact zero).
template <int SH>
__device__ __forceinline__ void depthwise_pair(const T* Es, const float* Ws, int ty, int tx,
                                               int col, float& acc0, float& acc1) {
    typedef ExpandShape<SH> Shape;
    acc0 = 0.0f;
    acc1 = 0.0f;
#pragma unroll
    for (int ry = 0; ry < 3; ++ry) {
#pragma unroll
        for (int sx = 0; sx < 3; ++sx) {
            float x0, x1;
            ld2(Es, ((ty * SH + ry) * Shape::HW + tx * SH + sx) * Shape::EP + col, x0, x1);
            acc0 += x0 * Ws[col * 9 + ry * 3 + sx];
            acc1 += x1 * Ws[(col + 1) * 9 + ry * 3 + sx];
        }
    }
}

template <int SH>
__device__ __forceinline__ void conv_expand_dw(T* y, const T* x, const T* w1, const float* b1,
                                               int act1, float a1, float c1, const T* w2,
                                               const float* b2, int act2, float a2, float c2,
                                               int n, int h, int wd, int c, int e, int oh, int ow,
                                               int pt, int pl, int xp, int yp) {
#if __CUDA_ARCH__ >= 800
    typedef ExpandShape<SH> Shape;
    constexpr int EC = EXPAND_CHANNELS, TH = Shape::TH, TW = Shape::TW;
    const int kp = (c + 15) / 16 * 16, pitch = kp + 8;
    unsigned int given;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(given));
    if (given < (unsigned)Shape::bytes(pitch)) __trap();  // launched with less than it uses
    T* As = (T*)mma_smem;                                // [ROWS][pitch]
    T* Bs = As + Shape::ROWS * pitch;                    // [EC][pitch]
    T* Es = Bs + EC * pitch;                             // [ROWS][EP]
    float* Ws = (float*)(Es + Shape::ROWS * Shape::EP);  // [EC][9]
    const int tiles_x = (ow + TW - 1) / TW, tiles = tiles_x * ((oh + TH - 1) / TH);
    const int bn = blockIdx.x / tiles, t = blockIdx.x % tiles;
    const int oy0 = t / tiles_x * TH, ox0 = t % tiles_x * TW, e0 = blockIdx.y * EC;
    const int iy0 = oy0 * SH - pt, ix0 = ox0 * SH - pl;
    stage_expansion<SH>(As, Bs, Ws, x, w1, w2, true, c, kp, pitch, e, e0, bn, iy0, ix0, h, wd, xp);
    asm volatile("cp.async.commit_group;");
    asm volatile("cp.async.wait_group 0;");
    __syncthreads();
    expand_tile<SH>(As, Bs, Es, b1, act1, a1, c1, kp, pitch, e, e0, iy0, ix0, h, wd);
    __syncthreads();
    // Step 3: one thread per output pixel and channel pair.
    constexpr int PAIRS = EC / 2;
    const bool packed = yp % 2 == 0 && (unsigned long long)y % 4 == 0;
    for (int i = threadIdx.x; i < TH * TW * PAIRS; i += blockDim.x) {
        const int px = i / PAIRS, col = i % PAIRS * 2, ch = e0 + col;
        const int ty = px / TW, tx = px % TW, oy = oy0 + ty, ox = ox0 + tx;
        if (oy >= oh || ox >= ow || ch >= e) continue;
        float acc0, acc1;
        depthwise_pair<SH>(Es, Ws, ty, tx, col, acc0, acc1);
        const bool both = ch + 1 < e;
        conv_store(y, acc0, acc1, (bn * oh + oy) * ow + ox, ch, e, yp, b2, nullptr, act2, a2, c2,
                   both, packed && both);
    }
#endif
}
#define CONV_EXPAND_DW(NAME, SH)                                                                \
    extern "C" __global__ void __launch_bounds__(256) NAME(                                    \
        T* y, const T* x, const T* w1, const float* b1, int act1, float a1, float c1,           \
        const T* w2, const float* b2, int act2, float a2, float c2, int n, int h, int wd, int c, \
        int e, int oh, int ow, int pt, int pl, int xp, int yp) {                                \
        conv_expand_dw<SH>(y, x, w1, b1, act1, a1, c1, w2, b2, act2, a2, c2, n, h, wd, c, e,   \
                           oh, ow, pt, pl, xp, yp);                                              \
    }
CONV_EXPAND_DW(conv_expand_dw_s1, 1)
CONV_EXPAND_DW(conv_expand_dw_s2, 2)

// The whole inverted residual in one kernel: 1×1 expansion, 3×3 depthwise, 1×1 projection
// (+ the block's input where it has a residual). Fused as above, the projection was still a
// launch of its own that waited for the depthwise output and read it back. Here the tile's
// depthwise output stays in shared memory and is projected there; the projection's reduction
// over the expanded channels is split between the CLUSTER blocks of a thread-block cluster,
// which share one output tile: block `rank` takes the 48-channel chunks rank, rank + CLUSTER, …
// (expand → depthwise → round to T, as the depthwise layer's own output would be → project,
// FP32 sums kept in registers from chunk to chunk), then the blocks add their sums through
// distributed shared memory in rank order (each finishing 1/CLUSTER of the tile's pixels) and
// apply the projection's epilogue. A fixed order: bit-identical from run to run. Compute
// capability 9.0 or newer (clusters). Shared memory: InvertedShape::bytes (host:
// `inverted_residual_bytes`).
#define MAX_PROJECT 320
template <int SH> struct InvertedShape {
    typedef ExpandShape<SH> E;
    // Output pixels of a tile; projection fragments (16 pixels × 8 channels) per warp.
    static constexpr int MP = E::TH * E::TW, FRAGMENTS = MP / 16 * (MAX_PROJECT / 8) / 8;
    // ExpandShape's, then the depthwise output tile and the projection weights (np rows of the
    // chunk's channels, FP16), and the block's projection sums (FP32).
    static __device__ __forceinline__ int bytes(int pitch, int np) {
        return E::bytes(pitch) + MP * E::EP * 2 + np * E::EP * 2 + MP * np * 4;
    }
};

#if __CUDA_ARCH__ >= 900
// Parameters: conv_expand_dw's (y and yp now the projection's output), then the projection's.
template <int SH, int CLUSTER>
__device__ __forceinline__ void conv_inverted_residual(
    T* y, const T* x, const T* w1, const float* b1, int act1, float a1, float c1, const T* w2,
    const float* b2, int act2, float a2, float c2, int n, int h, int wd, int c, int e, int oh,
    int ow, int pt, int pl, int xp, int yp, const T* w3, const float* b3, const T* residual,
    int act3, float a3, float c3, int k) {
    typedef ExpandShape<SH> Shape;
    typedef InvertedShape<SH> Inv;
    constexpr int EC = EXPAND_CHANNELS, TH = Shape::TH, TW = Shape::TW, EP = Shape::EP;
    constexpr int MP = Inv::MP, MT = MP / 16;
    const int kp = (c + 15) / 16 * 16, pitch = kp + 8, np = (k + 7) / 8 * 8;
    unsigned int given;
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(given));
    // Launched with less shared memory than it uses, or a projection it was not made for.
    if (given < (unsigned)Inv::bytes(pitch, np) || np > MAX_PROJECT || e % 8 != 0) __trap();
    T* As = (T*)mma_smem;                                // [ROWS][pitch]
    T* Bs = As + Shape::ROWS * pitch;                    // [EC][pitch]
    T* Es = Bs + EC * pitch;                             // [ROWS][EP]
    float* Ws = (float*)(Es + Shape::ROWS * EP);         // [EC][9]
    T* Ds = (T*)(Ws + EC * 9);                           // [MP][EP]
    T* Ps = Ds + MP * EP;                                // [np][EP]
    float* sums = (float*)(Ps + np * EP);                // [MP][np]
    const int tiles_x = (ow + TW - 1) / TW, tiles = tiles_x * ((oh + TH - 1) / TH);
    const int bn = blockIdx.x / tiles, t = blockIdx.x % tiles;
    const int oy0 = t / tiles_x * TH, ox0 = t % tiles_x * TW;
    const int iy0 = oy0 * SH - pt, ix0 = ox0 * SH - pl;
    unsigned int rank;
    asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
    float acc[Inv::FRAGMENTS][4];
#pragma unroll
    for (int j = 0; j < Inv::FRAGMENTS; ++j)
        for (int l = 0; l < 4; ++l) acc[j][l] = 0.0f;
    constexpr int PAIRS = EC / 2;
    for (int e0 = rank * EC; e0 < e; e0 += CLUSTER * EC) {
        stage_expansion<SH>(As, Bs, Ws, x, w1, w2, e0 == (int)rank * EC, c, kp, pitch, e, e0, bn,
                            iy0, ix0, h, wd, xp);
        stage_matrix<8>(shared_address(Ps), EP, w3 + e0, e, np, k, EC, e - e0);
        asm volatile("cp.async.commit_group;");
        asm volatile("cp.async.wait_group 0;");
        __syncthreads();
        expand_tile<SH>(As, Bs, Es, b1, act1, a1, c1, kp, pitch, e, e0, iy0, ix0, h, wd);
        __syncthreads();
        // The chunk's depthwise output for the tile, rounded to T; zeros where there is no
        // output pixel or channel (they add nothing to the projection).
        for (int i = threadIdx.x; i < MP * PAIRS; i += blockDim.x) {
            const int px = i / PAIRS, col = i % PAIRS * 2, ch = e0 + col;
            const int ty = px / TW, tx = px % TW;
            float v0 = 0.0f, v1 = 0.0f;
            if (oy0 + ty < oh && ox0 + tx < ow && ch < e) {
                depthwise_pair<SH>(Es, Ws, ty, tx, col, v0, v1);
                v0 = activate(v0 + (b2 ? b2[ch] : 0.0f), act2, a2, c2);
                v1 = ch + 1 < e ? activate(v1 + (b2 ? b2[ch + 1] : 0.0f), act2, a2, c2) : 0.0f;
            }
            unsigned int two;
            asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(two) : "f"(v1), "f"(v0));
            *(unsigned int*)(Ds + px * EP + col) = two;
        }
        __syncthreads();
        // Projection: sums[pixel][channel] += Ds · Psᵀ, fragment f = (pixels f % MT, channels
        // f / MT) on warp f % 8.
#pragma unroll
        for (int j = 0; j < Inv::FRAGMENTS; ++j) {
            const int f = warp + 8 * j;
            if (f >= MT * (np / 8)) break;
            const int m0 = f % MT * 16, n0 = f / MT * 8;
#pragma unroll
            for (int kk = 0; kk < EC; kk += 16) {
                unsigned int af[4];
                a_fragment(Ds + (m0 + g) * EP + kk + 2 * t4, EP, af);
                const T* b = Ps + (n0 + g) * EP + kk + 2 * t4;
                mma_16816(acc[j], af, pair(b), pair(b + 8));
            }
        }
        __syncthreads();  // the next chunk overwrites the staged weights and tiles
    }
#pragma unroll
    for (int j = 0; j < Inv::FRAGMENTS; ++j) {
        const int f = warp + 8 * j;
        if (f >= MT * (np / 8)) break;
        const int row = f % MT * 16 + g, col = f / MT * 8 + 2 * t4;
        sums[row * np + col] = acc[j][0];
        sums[row * np + col + 1] = acc[j][1];
        sums[(row + 8) * np + col] = acc[j][2];
        sums[(row + 8) * np + col + 1] = acc[j][3];
    }
    cluster_sync();
    constexpr int ROWS = (MP + CLUSTER - 1) / CLUSTER;
    const int pairs = np / 2;
    const bool packed = yp % 2 == 0 && (unsigned long long)y % 4 == 0;
    for (int i = threadIdx.x; i < ROWS * pairs; i += blockDim.x) {
        const int row = rank * ROWS + i / pairs, col = i % pairs * 2;
        const int oy = oy0 + row / TW, ox = ox0 + row % TW;
        if (row >= MP || oy >= oh || ox >= ow || col >= k) continue;
        float v0, v1;
        cluster_load2(&sums[row * np + col], 0, v0, v1);
        for (unsigned int z = 1; z < CLUSTER; ++z) {
            float w0, w1;
            cluster_load2(&sums[row * np + col], z, w0, w1);
            v0 += w0;
            v1 += w1;
        }
        const bool both = col + 1 < k;
        conv_store(y, v0, v1, (bn * oh + oy) * ow + ox, col, k, yp, b3, residual, act3, a3, c3,
                   both, packed && both);
    }
    cluster_sync();  // this block's sums stay until every block of the cluster has read them
}
#define CONV_INVERTED_RESIDUAL(NAME, SH, CLUSTER)                                               \
    extern "C" __global__ void __cluster_dims__(1, 1, CLUSTER) __launch_bounds__(256) NAME(     \
        T* y, const T* x, const T* w1, const float* b1, int act1, float a1, float c1,           \
        const T* w2, const float* b2, int act2, float a2, float c2, int n, int h, int wd, int c, \
        int e, int oh, int ow, int pt, int pl, int xp, int yp, const T* w3, const float* b3,    \
        const T* residual, int act3, float a3, float c3, int k) {                               \
        conv_inverted_residual<SH, CLUSTER>(y, x, w1, b1, act1, a1, c1, w2, b2, act2, a2, c2,   \
                                            n, h, wd, c, e, oh, ow, pt, pl, xp, yp, w3, b3,     \
                                            residual, act3, a3, c3, k);                         \
    }
CONV_INVERTED_RESIDUAL(conv_inverted_residual_s1_c2, 1, 2)
CONV_INVERTED_RESIDUAL(conv_inverted_residual_s1_c4, 1, 4)
CONV_INVERTED_RESIDUAL(conv_inverted_residual_s1_c8, 1, 8)
CONV_INVERTED_RESIDUAL(conv_inverted_residual_s2_c2, 2, 2)
CONV_INVERTED_RESIDUAL(conv_inverted_residual_s2_c4, 2, 4)
CONV_INVERTED_RESIDUAL(conv_inverted_residual_s2_c8, 2, 8)
#endif

// The end of a split-K convolution: y = act(Σ_z partial[z] + bias + residual), z in order.
extern "C" __global__ void conv_split_sum(T* y, const float* partial, int splits, int pixels,
                                          int k, const float* bias, const T* residual, int act,
                                          float a, float b, int yp) {
    const int total = pixels * k;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        float v = partial[i];
        for (int z = 1; z < splits; ++z) v += partial[(long long)z * total + i];
        conv_store(y, v, 0.0f, i / k, i % k, k, yp, bias, residual, act, a, b, false, false);
    }
}
#endif
