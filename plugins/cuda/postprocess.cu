// GPU twin of plugins/src/decode/{ssd,gfl}.rs and plugins/src/nms.rs: raw head outputs →
// candidates above the score threshold → per-class greedy NMS → at most `max_det` detections per
// image, written to one small buffer that is the only thing copied back to the host.
//
// Determinism: decoders append candidates with an atomic counter, so their slots vary from run
// to run; every candidate carries `order`, its position in the CPU decoder's output, and NMS
// sorts by (score descending, order ascending) — exactly the CPU's stable sort. The result is
// therefore independent of scheduling and equal to the CPU plugin's for equal inputs.

struct Cand {
    float x1, y1, x2, y2, score;
    int label;
    unsigned int order;
    int unused;
};

// Score activations, as `adas_plugins::gpu::ScoreAct`.
#define SCORE_NONE 0
#define SCORE_SIGMOID 1
#define SCORE_SOFTMAX 2

__device__ __forceinline__ float clip01(float v) { return fminf(fmaxf(v, 0.0f), 1.0f); }

__device__ __forceinline__ void push(Cand* cands, int* count, int cap, float x1, float y1,
                                     float x2, float y2, float score, int label,
                                     unsigned int order) {
    int slot = atomicAdd(count, 1);
    if (slot < cap) {
        Cand c;
        c.x1 = clip01(x1);
        c.y1 = clip01(y1);
        c.x2 = clip01(x2);
        c.y2 = clip01(y2);
        c.score = score;
        c.label = label;
        c.order = order;
        c.unused = 0;
        cands[slot] = c;
    }
}

// Row statistics for softmax scores (max and 1/Σexp over all columns).
__device__ __forceinline__ void row_stats(const T* row, int columns, int activation, float* mx,
                                          float* inv) {
    *mx = 0.0f;
    *inv = 1.0f;
    if (activation != SCORE_SOFTMAX) return;
    float m = -ADAS_INF;
    for (int c = 0; c < columns; ++c) m = fmaxf(m, ld(row, c));
    float sum = 0.0f;
    for (int c = 0; c < columns; ++c) sum += expf(ld(row, c) - m);
    *mx = m;
    *inv = 1.0f / sum;
}

__device__ __forceinline__ float score_of(float x, int activation, float mx, float inv) {
    if (activation == SCORE_SIGMOID) return 1.0f / (1.0f + expf(-x));
    if (activation == SCORE_SOFTMAX) return expf(x - mx) * inv;
    return x;
}

extern "C" __global__ void clear_counts(int* counts, int n) {
    FOR_EACH(i, n) counts[i] = 0;
}

// SSD: one thread per anchor (blockIdx.y = image). anchors: (cy, cx, h, w) normalised.
// xywh = 0: TF (ty, tx, th, tw); 1: torchvision (dx, dy, dw, dh) with clamped log sizes.
// best_class = 1: only the anchor's best class (first of equal raw values) is a candidate.
extern "C" __global__ void ssd_decode(const T* boxes, const T* scores, const float* anchors,
                                      int n_anchors, int columns, int first_label,
                                      int activation, float s0, float s1, float s2, float s3,
                                      int xywh, int best_class, float threshold, Cand* cands,
                                      int* counts, int cap) {
    const int b = blockIdx.y;
    const T* bx = boxes + (long long)b * n_anchors * 4;
    const T* sc = scores + (long long)b * n_anchors * columns;
    Cand* out = cands + (long long)b * cap;
    const int labels = columns - first_label;
    for (int a = blockIdx.x * blockDim.x + threadIdx.x; a < n_anchors;
         a += gridDim.x * blockDim.x) {
        const T* row = sc + (long long)a * columns;
        float mx, inv;
        row_stats(row, columns, activation, &mx, &inv);
        bool have = false;
        float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
        int c_begin = first_label, c_end = columns;
        if (best_class) {
            // Activations are monotonic within a row: the best raw value is the best score.
            float best = -ADAS_INF;
            for (int c = first_label; c < columns; ++c) {
                float v = ld(row, c);
                if (v > best) {
                    best = v;
                    c_begin = c;
                }
            }
            c_end = c_begin + 1;
        }
        for (int c = c_begin; c < c_end; ++c) {
            float s = score_of(ld(row, c), activation, mx, inv);
            if (!(s >= threshold)) continue;
            if (!have) {
                const float* an = anchors + a * 4;  // cy, cx, h, w
                const T* e = bx + a * 4;
                float cx, cy, w, h;
                if (xywh) {
                    const float clip = 4.1351666f;  // log(1000 / 16), torchvision
                    cx = ld(e, 0) / s0 * an[3] + an[1];
                    cy = ld(e, 1) / s1 * an[2] + an[0];
                    w = expf(fminf(ld(e, 2) / s2, clip)) * an[3];
                    h = expf(fminf(ld(e, 3) / s3, clip)) * an[2];
                } else {
                    cy = ld(e, 0) / s0 * an[2] + an[0];
                    cx = ld(e, 1) / s1 * an[3] + an[1];
                    h = expf(ld(e, 2) / s2) * an[2];
                    w = expf(ld(e, 3) / s3) * an[3];
                }
                x1 = cx - 0.5f * w;
                y1 = cy - 0.5f * h;
                x2 = cx + 0.5f * w;
                y2 = cy + 0.5f * h;
                have = true;
            }
            push(out, counts + b, cap, x1, y1, x2, y2, s, c - first_label,
                 (unsigned int)(a * labels + (c - first_label)));
        }
    }
}

// Σ k·softmax(bins)_k (see expectation in gfl.rs).
__device__ __forceinline__ float expectation(const T* bins, int n) {
    float m = -ADAS_INF;
    for (int i = 0; i < n; ++i) m = fmaxf(m, ld(bins, i));
    float sum = 0.0f, weighted = 0.0f;
    for (int i = 0; i < n; ++i) {
        float e = expf(ld(bins, i) - m);
        sum += e;
        weighted += e * (float)i;
    }
    return weighted / sum;
}

// GFL (NanoDet), one level: one thread per (cell, class) score (blockIdx.y = image), so the
// class rows are read coalesced and the whole GPU takes part (one thread per cell left a
// 2 704-cell level on 11 blocks, each thread walking 80 scores: 56 µs for three levels). The few
// threads whose score passes decode their cell's box — the same arithmetic for every class of a
// cell, so the result equals the CPU's one decode per cell.
extern "C" __global__ void gfl_decode(const T* scores, const T* dists, int cells, int grid_w,
                                      int classes, int bins, float stride, float offset,
                                      int activation, float in_w, float in_h,
                                      unsigned int cell_base, float threshold, Cand* cands,
                                      int* counts, int cap) {
    const int b = blockIdx.y;
    Cand* out = cands + (long long)b * cap;
    const int total = cells * classes;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        const int cell = i / classes, c = i - cell * classes;
        const T* row = scores + ((long long)b * cells + cell) * classes;
        float mx, inv;
        row_stats(row, classes, activation, &mx, &inv);  // softmax only: per-row statistics
        float s = score_of(ld(row, c), activation, mx, inv);
        if (!(s >= threshold)) continue;
        const T* dist = dists + ((long long)b * cells + cell) * 4 * bins;
        float px = ((float)(cell % grid_w) + offset) * stride;
        float py = ((float)(cell / grid_w) + offset) * stride;
        float l = expectation(dist, bins) * stride;
        float t = expectation(dist + bins, bins) * stride;
        float r = expectation(dist + 2 * bins, bins) * stride;
        float bo = expectation(dist + 3 * bins, bins) * stride;
        push(out, counts + b, cap, (px - l) / in_w, (py - t) / in_h, (px + r) / in_w,
             (py + bo) / in_h, s, c, (unsigned int)((cell_base + cell) * classes + c));
    }
}

__device__ __forceinline__ float area(float x1, float y1, float x2, float y2) {
    return fmaxf(x2 - x1, 0.0f) * fmaxf(y2 - y1, 0.0f);
}

// IoU exactly as BBox::iou (same operation order).
__device__ __forceinline__ float iou(const Cand& a, const Cand& b) {
    float inter = area(fmaxf(a.x1, b.x1), fmaxf(a.y1, b.y1), fminf(a.x2, b.x2), fminf(a.y2, b.y2));
    float uni = area(a.x1, a.y1, a.x2, a.y2) + area(b.x1, b.y1, b.x2, b.y2) - inter;
    return uni > 0.0f ? inter / uni : 0.0f;
}

// Sort key: score descending (NaN last, like the CPU), then decoder order ascending.
__device__ __forceinline__ unsigned long long sort_key(const Cand& c) {
    float s = (c.score != c.score) ? -ADAS_INF : c.score;
    unsigned int u = __float_as_uint(s);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);  // ascending as unsigned
    return ((unsigned long long)(~u) << 32) | c.order;
}

// One block per image. out per image: [kept, overflow, kept × (x1, y1, x2, y2, score, label)]
// with room for max_det detections. Dynamic shared memory: cap bytes (suppression flags).
// across = 1: a kept box suppresses boxes of every label, not only its own.
extern "C" __global__ void nms(const Cand* cands, const int* counts, int cap,
                               unsigned long long* keys, int* sorted, float iou_threshold,
                               int across, int max_det, float* out) {
    extern __shared__ unsigned char suppressed[];
    __shared__ int kept;
    const int b = blockIdx.x;
    const Cand* cb = cands + (long long)b * cap;
    unsigned long long* kb = keys + (long long)b * cap;
    int* sb = sorted + (long long)b * cap;
    float* ob = out + (long long)b * (2 + 6 * max_det);
    const int total = counts[b];
    const int n = imin(total, cap);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        kb[i] = sort_key(cb[i]);
        suppressed[i] = 0;
    }
    if (threadIdx.x == 0) kept = 0;
    __syncthreads();
    // Rank sort: keys are unique (order is), so ranks form a permutation.
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        unsigned long long k = kb[i];
        int rank = 0;
        for (int j = 0; j < n; ++j) rank += kb[j] < k;
        sb[rank] = i;
    }
    __syncthreads();
    for (int i = 0; i < n; ++i) {
        if (kept >= max_det) break;  // uniform: shared, read after a barrier
        if (!suppressed[i]) {        // uniform likewise
            const Cand c = cb[sb[i]];
            if (threadIdx.x == 0) {
                float* o = ob + 2 + 6 * kept;
                o[0] = c.x1;
                o[1] = c.y1;
                o[2] = c.x2;
                o[3] = c.y2;
                o[4] = c.score;
                o[5] = (float)c.label;
            }
            for (int j = i + 1 + threadIdx.x; j < n; j += blockDim.x) {
                const Cand d = cb[sb[j]];
                if ((across || d.label == c.label) && iou(c, d) > iou_threshold) suppressed[j] = 1;
            }
            __syncthreads();
            if (threadIdx.x == 0) kept += 1;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        ob[0] = (float)kept;
        ob[1] = (float)(total > cap ? total - cap : 0);
    }
}
