// The GPU engine's own kernels (everything but the convolutions, which are cuDNN's). Prepended
// with plugins/cuda/common.cuh. The CPU twin of each is in detect/engine/reference.rs.

// After a cuDNN convolution: y = act(y + bias[c] + residual), channels innermost.
extern "C" __global__ void epilogue(T* y, const float* bias, const T* residual, long long n,
                                    int channels, int act, float a, float b) {
    FOR_EACH(i, n) {
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
    FOR_EACH(i, n) {
        int c = (int)(i % channels);
        st(y, i, ld(x, i) * scale[c] + shift[c]);
    }
}

extern "C" __global__ void pad_nhwc(T* y, const T* x, int n, int h, int w, int c, int top,
                                    int left, int oh, int ow, float value) {
    FOR_EACH(i, (long long)n * oh * ow * c) {
        int ch = (int)(i % c);
        long long t = i / c;
        int ox = (int)(t % ow);
        t /= ow;
        int oy = (int)(t % oh);
        int b = (int)(t / oh);
        int ix = ox - left, iy = oy - top;
        float v = value;
        if (ix >= 0 && iy >= 0 && ix < w && iy < h) v = ld(x, (((long long)b * h + iy) * w + ix) * c + ch);
        st(y, i, v);
    }
}

extern "C" __global__ void maxpool_nhwc(T* y, const T* x, int n, int h, int w, int c, int kh,
                                        int kw, int sh, int sw, int ph, int pw, int oh, int ow) {
    FOR_EACH(i, (long long)n * oh * ow * c) {
        int ch = (int)(i % c);
        long long t = i / c;
        int ox = (int)(t % ow);
        t /= ow;
        int oy = (int)(t % oh);
        int b = (int)(t / oh);
        float m = -ADAS_INF;
        for (int r = 0; r < kh; ++r) {
            int iy = oy * sh + r - ph;
            if (iy < 0 || iy >= h) continue;
            for (int s = 0; s < kw; ++s) {
                int ix = ox * sw + s - pw;
                if (ix < 0 || ix >= w) continue;
                m = fmaxf(m, ld(x, (((long long)b * h + iy) * w + ix) * c + ch));
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

extern "C" __global__ void resize_nhwc(T* y, const T* x, int n, int h, int w, int c, int oh,
                                       int ow, float scale_h, float scale_w, int linear,
                                       int coord, int round) {
    FOR_EACH(i, (long long)n * oh * ow * c) {
        int ch = (int)(i % c);
        long long t = i / c;
        int ox = (int)(t % ow);
        t /= ow;
        int oy = (int)(t % oh);
        int b = (int)(t / oh);
        int y0, y1, x0, x1;
        float fy, fx;
        resize_taps(oy, scale_h, h, oh, coord, linear, round, &y0, &y1, &fy);
        resize_taps(ox, scale_w, w, ow, coord, linear, round, &x0, &x1, &fx);
        const T* base = x + (long long)b * h * w * c + ch;
        float p00 = ld(base, ((long long)y0 * w + x0) * c), p01 = ld(base, ((long long)y0 * w + x1) * c);
        float p10 = ld(base, ((long long)y1 * w + x0) * c), p11 = ld(base, ((long long)y1 * w + x1) * c);
        float top = p00 + (p01 - p00) * fx;
        float bottom = p10 + (p11 - p10) * fx;
        st(y, i, top + (bottom - top) * fy);
    }
}

extern "C" __global__ void copy_slab(T* y, const T* x, long long outer, long long len,
                                     long long x_stride, long long y_stride, long long x_offset,
                                     long long y_offset) {
    FOR_EACH(i, outer * len) {
        long long o = i / len, j = i % len;
        y[o * y_stride + y_offset + j] = x[o * x_stride + x_offset + j];
    }
}

// Up to 6 axes: out_dims are the output's, in_strides the input stride of each output axis.
struct Dims6 {
    long long d[6];
};

extern "C" __global__ void permute(T* y, const T* x, int rank, long long total, Dims6 out_dims,
                                   Dims6 in_strides) {
    FOR_EACH(i, total) {
        long long rem = i, src = 0;
        for (int d = rank - 1; d >= 0; --d) {
            src += (rem % out_dims.d[d]) * in_strides.d[d];
            rem /= out_dims.d[d];
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

// Depthwise convolution (groups = in = out channels), NHWC, with the convolution epilogue fused:
// y = act(Σ x·w + bias + residual). w is [C][R][S]. One thread per output value; consecutive
// threads read consecutive channels, so loads coalesce. cuDNN's grouped NHWC kernels are several
// times slower on these small MobileNet layers.
// Same parameter list as conv_igemm (k = c here).
extern "C" __global__ void dwconv_nhwc(T* y, const T* x, const T* w, const float* bias,
                                       const T* residual, int n, int h, int wd, int c, int k,
                                       int r, int s, int ph, int pw, int sh, int sw, int dh,
                                       int dw, int oh, int ow, int act, float a, float b) {
    FOR_EACH(i, (long long)n * oh * ow * c) {
        int ch = (int)(i % c);
        long long t = i / c;
        int ox = (int)(t % ow);
        t /= ow;
        int oy = (int)(t % oh);
        int bn = (int)(t / oh);
        float acc = 0.0f;
        for (int ry = 0; ry < r; ++ry) {
            int iy = oy * sh + ry * dh - ph;
            if (iy < 0 || iy >= h) continue;
            for (int sx = 0; sx < s; ++sx) {
                int ix = ox * sw + sx * dw - pw;
                if (ix < 0 || ix >= wd) continue;
                acc += ld(x, (((long long)bn * h + iy) * wd + ix) * c + ch) * ld(w, ((long long)ch * r + ry) * s + sx);
            }
        }
        if (bias) acc += bias[ch];
        if (residual) acc += ld(residual, i);
        st(y, i, activate(acc, act, a, b));
    }
}

// Implicit-GEMM convolution (groups = 1), NHWC in and out, KRSC weights, epilogue fused:
// y[p, k] = act(Σ_q x̂[p, q] · w[k, q] + bias[k] + residual[p, k]), with p = output pixel and
// q = (r, s, c) the reduction index (im2col addresses computed on the fly). One block of 256
// threads computes a 64-pixel × 64-channel tile, 4×4 values per thread, in a fixed order (bit-
// identical on every run). The engine measures it against cuDNN's algorithms per layer and keeps
// the faster: on small layers at small batches cuDNN's per-call kernels cost more than the work.
#define IG_TP 64
#define IG_TK 64
#define IG_TQ 16
extern "C" __global__ void __launch_bounds__(256) conv_igemm(
    T* y, const T* x, const T* w, const float* bias, const T* residual, int n, int h, int wd, int c,
    int k, int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int act,
    float a, float b) {
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
                    v = ld(x, (((long long)bn * h + iy) * wd + ix) * c + cc);
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
            long long o = (long long)p * k + kk;
            float v = acc[i][j];
            if (bias) v += bias[kk];
            if (residual) v += ld(residual, o);
            st(y, o, activate(v, act, a, b));
        }
    }
}

// The same convolution with 16 × 16 tiles and one output per thread: four times the blocks of
// conv_igemm for the small late layers (e.g. 19×19 or 10×10 pixels), where 64 × 64 tiles leave
// most of the GPU idle. Same reduction order per output as conv_igemm.
extern "C" __global__ void __launch_bounds__(256) conv_igemm16(
    T* y, const T* x, const T* w, const float* bias, const T* residual, int n, int h, int wd, int c,
    int k, int r, int s, int ph, int pw, int sh, int sw, int dh, int dw, int oh, int ow, int act,
    float a, float b) {
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
                v = ld(x, (((long long)bn * h + iy) * wd + ix) * c + cc);
        }
        xs[ty][tx] = v;
        ws[ty][tx] = (q < Q && lk < k) ? ld(w, (long long)lk * Q + q) : 0.0f;
        __syncthreads();
        for (int j = 0; j < 16; ++j) acc = __fmaf_rn(xs[ty][j], ws[tx][j], acc);
        __syncthreads();
    }
    if (p < P && kk < k) {
        long long o = (long long)p * k + kk;
        float v = acc;
        if (bias) v += bias[kk];
        if (residual) v += ld(residual, o);
        st(y, o, activate(v, act, a, b));
    }
}
