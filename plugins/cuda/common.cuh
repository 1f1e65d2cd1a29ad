// Shared prelude of every adas CUDA source (compiled at run time by NVRTC; see plugins/src/gpu.rs).
// The host prepends `#define ADAS_HALF 0|1` to choose the activation type T. Half precision is
// stored as raw 16-bit words and converted with PTX `cvt` instructions, so no CUDA header (which
// NVRTC may not find on a target) is needed. All arithmetic is done in float.
#if ADAS_HALF
typedef unsigned short T;
__device__ __forceinline__ float ld(const T* p, long long i) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(p[i]));
    return f;
}
__device__ __forceinline__ void st(T* p, long long i, float v) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    p[i] = h;
}
#else
typedef float T;
__device__ __forceinline__ float ld(const T* p, long long i) { return p[i]; }
__device__ __forceinline__ void st(T* p, long long i, float v) { p[i] = v; }
#endif

// NVRTC has no math headers: IEEE infinity by its bit pattern.
#define ADAS_INF __int_as_float(0x7f800000)

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

// Grid-stride loop over n elements.
#define FOR_EACH(i, n)                                                                          \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n);    \
         i += (long long)gridDim.x * blockDim.x)

// Activation codes, the same numbers as `adas_plugins::gpu::Act` on the host.
#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_CLIP 2
#define ACT_LEAKY 3
#define ACT_SIGMOID 4

__device__ __forceinline__ float activate(float x, int kind, float a, float b) {
    switch (kind) {
    case ACT_RELU: return fmaxf(x, 0.0f);
    case ACT_CLIP: return fminf(fmaxf(x, a), b);
    case ACT_LEAKY: return x >= 0.0f ? x : x * a;
    case ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    default: return x;
    }
}
