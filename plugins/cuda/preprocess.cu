// GPU twin of plugins/src/preprocess.rs: packed 8-bit RGB frames → normalised model input,
// bilinear stretch or letterbox, colour order, written as NHWC (the engine's layout for the
// network input). Same formulas and operation order as the CPU code (compiled without FMA
// contraction), so both agree to float rounding.

// Bilinear taps of destination index d (see source_coord in preprocess.rs).
__device__ __forceinline__ void taps(int d, float scale, int n, int asymmetric, int* i0, int* i1,
                                     float* f) {
    float s = asymmetric ? (float)d * scale : fmaxf(((float)d + 0.5f) * scale - 0.5f, 0.0f);
    int i = (int)floorf(s);
    if (i + 1 >= n) {
        *i0 = n - 1;
        *i1 = n - 1;
        *f = 0.0f;
    } else {
        *i0 = i;
        *i1 = i + 1;
        *f = s - (float)i;
    }
}

// One thread per model-input pixel of one image (blockIdx.y = image in the batch).
// frames: batch × height × width × 3 bytes; out: batch × mh × mw × 3 values of T.
extern "C" __global__ void preprocess(T* out, const unsigned char* frames, int width, int height,
                                      int mw, int mh, int rw, int rh, int ox, int oy, float sx,
                                      float sy, int asymmetric, int swap_rb, float m0, float m1,
                                      float m2, float a0, float a1, float a2, float p0, float p1,
                                      float p2) {
    const unsigned char* rgb = frames + (long long)blockIdx.y * width * height * 3;
    T* dst = out + (long long)blockIdx.y * mw * mh * 3;
    const float mul[3] = {m0, m1, m2};
    const float add[3] = {a0, a1, a2};
    const float pad[3] = {p0, p1, p2};
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < mw * mh; i += gridDim.x * blockDim.x) {
        int x = i % mw, y = i / mw;
        int dx = x - ox, dy = y - oy;
        if (dx < 0 || dy < 0 || dx >= rw || dy >= rh) {
            for (int c = 0; c < 3; ++c) st(dst, (long long)i * 3 + c, pad[c]);
            continue;
        }
        int x0, x1, y0, y1;
        float fx, fy;
        taps(dx, sx, width, asymmetric, &x0, &x1, &fx);
        taps(dy, sy, height, asymmetric, &y0, &y1, &fy);
        const unsigned char* r0 = rgb + (long long)y0 * width * 3;
        const unsigned char* r1 = rgb + (long long)y1 * width * 3;
        float px[3];
        for (int c = 0; c < 3; ++c) {
            float p00 = r0[x0 * 3 + c], p01 = r0[x1 * 3 + c];
            float p10 = r1[x0 * 3 + c], p11 = r1[x1 * 3 + c];
            float top = p00 + (p01 - p00) * fx;
            float bottom = p10 + (p11 - p10) * fx;
            px[c] = top + (bottom - top) * fy;
        }
        if (swap_rb) {
            float t = px[0];
            px[0] = px[2];
            px[2] = t;
        }
        for (int c = 0; c < 3; ++c) st(dst, (long long)i * 3 + c, px[c] * mul[c] + add[c]);
    }
}
