#!/usr/bin/env python3
"""Runs the INT8 kernels of firmware-service/gpu/src/cuda/int8.cu on the CPU — the CUDA source
itself, compiled by g++ with a few shims — and checks every output bit for bit against TensorFlow
Lite's integer convolutions and ONNX's QuantizeLinear written out here in Python (gemmlowp's two
roundings, the zero points, the clamp, round half to even). No GPU needed: CI runs it, so the
kernels' arithmetic, their weight layout, their byte permutes, their wide loads and stores and
the tensor-core kernel's tiling and fragment shuffles are checked on every commit; the GPU tests
(tests/gpu/run.sh) check the same kernels on the hardware.

The depthwise and element-wise kernels share no memory between threads: their threads run one
after another. The
tensor-core kernel (conv_int8_mma) runs each block's threads as fibers that switch only where a
GPU's threads wait for each other: at __syncthreads, and at each warp's ldmatrix and mma.sync,
which gather the 32 lanes' registers and hand each lane its part of the result as the PTX ISA
lays the fragments out (ldmatrix .m8n8.x4; mma .m16n8k32 .s8: A row-major, B column-major, C).
Its cp.async copies complete at once.

What the shims cannot stand in for is what only a GPU shows: memory ordering (a missing
cp.async wait or barrier), occupancy, and the PTX of the inline assembly itself.

usage: int8_on_host.py [--cases N] [--dense-cases N] [--ew-cases N]
"""
import ctypes
import pathlib
import random
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np

root = pathlib.Path(__file__).resolve().parents[2]


def option(name, default):
    return int(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


CASES = option("--cases", 1000)
DENSE_CASES = option("--dense-cases", 400)
EW_CASES = option("--ew-cases", 600)

# The CUDA built-ins the kernels use, on the host; a block's threads as fibers (see the header).
SHIM = r"""
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>
#include <ucontext.h>
#define __device__
#define __global__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))
#define __CUDA_ARCH__ 800
struct Dim3 { unsigned int x, y, z; };
struct alignas(8) int2 { int x, y; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
static inline int2 make_int2(int x, int y) { return {x, y}; }
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
static inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return {x, y, z, w}; }
// Not static: the fiber switches are calls the compiler cannot see into, so it must reload them.
Dim3 blockIdx, blockDim, gridDim, threadIdx;
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline float __int2float_rn(int i) { return (float)i; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
// Round half to even: the default rounding mode.
static inline int __float2int_rn(float a) { return (int)nearbyintf(a); }
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline void __trap() { fputs("__trap()\n", stderr); abort(); }
// PTX prmt: byte i of the result is byte (s >> 4i) & 7 of {y, x}.
static inline unsigned int __byte_perm(unsigned int x, unsigned int y, unsigned int s) {
    const uint64_t v = (uint64_t)y << 32 | x;
    unsigned int r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned int)(v >> 8 * ((s >> 4 * i) & 7) & 0xff) << 8 * i;
    return r;
}
// dp4a.s32.s32: c + the four products of signed bytes.
static inline int __dp4a(int a, int b, int c) {
    for (int i = 0; i < 4; ++i) c += (int)(int8_t)(a >> 8 * i) * (int)(int8_t)(b >> 8 * i);
    return c;
}

// A block's threads as fibers, run in turn by `run_block`; a fiber gives way only at a barrier.
struct Fiber { ucontext_t context; std::vector<char> stack; bool done; };
static ucontext_t scheduler;
static std::vector<Fiber> fibers;
static std::function<void()> fiber_body;
static int current;
static long progress;  // barrier arrivals and finished fibers: a round without any is a deadlock
struct Barrier { int arrived; long generation; };
static Barrier block_barrier, warp_barriers[32];

static void barrier_wait(Barrier& b, int count) {
    const long generation = b.generation;
    ++progress;
    if (++b.arrived == count) {
        b.arrived = 0;
        ++b.generation;
        return;
    }
    while (b.generation == generation) swapcontext(&fibers[current].context, &scheduler);
}
static inline void __syncthreads() { barrier_wait(block_barrier, blockDim.x); }
static inline void warp_sync() { barrier_wait(warp_barriers[threadIdx.x / 32], 32); }

static void fiber_main() {
    fiber_body();
    fibers[current].done = true;
    ++progress;
}

// Runs `body` as blockDim.x threads of block blockIdx (they return to the scheduler at the end).
static void run_block(std::function<void()> body) {
    const int threads = (int)blockDim.x;
    fiber_body = std::move(body);
    fibers.assign(threads, Fiber{});
    block_barrier = {};
    for (Barrier& b : warp_barriers) b = {};
    for (Fiber& f : fibers) {
        f.stack.resize(1 << 17);
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack.data();
        f.context.uc_stack.ss_size = f.stack.size();
        f.context.uc_link = &scheduler;
        makecontext(&f.context, fiber_main, 0);
    }
    for (int done = 0; done < threads;) {
        const long before = progress;
        for (int t = 0; t < threads; ++t) {
            if (fibers[t].done) continue;
            current = t;
            threadIdx = {(unsigned)t, 0, 0};
            swapcontext(&scheduler, &fibers[t].context);
            done += fibers[t].done;
        }
        if (progress == before && done < threads) {
            fprintf(stderr, "block (%u, %u): its threads wait at different barriers\n", blockIdx.x, blockIdx.y);
            abort();
        }
    }
}

// Shared memory is the kernel's static block; its 32-bit addresses are the low half of the
// host's (the block never straddles 4 GiB: checked).
static uintptr_t shared_high = UINTPTR_MAX;
static inline char* shared_pointer(unsigned int a) { return (char*)(shared_high << 32 | a); }

// Lane l's registers in an exchange among its warp's 32 lanes.
static unsigned int warp_words[32][32][6];
"""

# The functions whose body is inline PTX, on the host: name → body.
HOST_BODIES = {
    "f32_to_half": "{ _Float16 h = (_Float16)f; unsigned short b; memcpy(&b, &h, 2); return b; }",
    "from_f16": "{ _Float16 f; memcpy(&f, &h, 2); return (float)f; }",
    "mad_wide": "{ return (long long)a * b + c; }",
    "add_bytes": "{ return __dp4a(a, 0x01010101, c); }",
    "i8_shared_address": r"""{
    const uintptr_t a = (uintptr_t)p;
    if (shared_high == UINTPTR_MAX) shared_high = a >> 32;
    if (a >> 32 != shared_high) { fputs("shared memory straddles 4 GiB\n", stderr); abort(); }
    return (unsigned int)a;
}""",
    "i8_copy": """{
    if (valid) memcpy(shared_pointer(dst), src, V);
    else memset(shared_pointer(dst), 0, V);
}""",
    "i8_fill": """{
    for (int i = 0; i < V; ++i) shared_pointer(dst)[i] = (char)(fill >> 8 * (i % 4));
}""",
    "i8_commit": "{}",
    "i8_wait_prior": "{}",
    # Matrix i's rows come from lanes 8i … 8i + 7; lane l gets bytes 4·(l % 4) of row l / 4.
    "ldmatrix_x4": r"""{
    unsigned int (&words)[32][6] = warp_words[threadIdx.x / 32];
    const int l = threadIdx.x % 32;
    words[l][0] = row;
    warp_sync();
    for (int i = 0; i < 4; ++i) memcpy(&r[i], shared_pointer(words[8 * i + l / 4][0] + 4 * (l % 4)), 4);
    warp_sync();
}""",
    # m16n8k32 .s8, lane l = 4·g + t: A's register j holds row g + 8·(j % 2), bytes 16·(j / 2) +
    # 4·t …; B's register j column g, rows 16·j + 4·t …; C's register j row g + 8·(j / 2),
    # column 2·t + j % 2.
    "mma_16832": r"""{
    unsigned int (&words)[32][6] = warp_words[threadIdx.x / 32];
    const int l = threadIdx.x % 32, g = l / 4, t = l % 4;
    for (int j = 0; j < 4; ++j) words[l][j] = (unsigned int)a[j];
    words[l][4] = (unsigned int)b0;
    words[l][5] = (unsigned int)b1;
    warp_sync();
    for (int j = 0; j < 4; ++j) {
        const int m = g + 8 * (j / 2), n = 2 * t + j % 2;
        unsigned int sum = (unsigned int)acc[j];
        for (int q = 0; q < 32; ++q) {
            const int a_byte = (int8_t)(words[(m % 8) * 4 + q % 16 / 4][m / 8 + 2 * (q / 16)] >> 8 * (q % 4));
            const int b_byte = (int8_t)(words[n * 4 + q % 16 / 4][4 + q / 16] >> 8 * (q % 4));
            sum += (unsigned int)(a_byte * b_byte);
        }
        acc[j] = (int)sum;
    }
    warp_sync();
}""",
}

RUNNER = r"""
#define GRID(KERNEL, ...)                                                                        \
    gridDim = {(unsigned)gx, (unsigned)gy, 1}; blockDim = {(unsigned)bx, 1, 1};                  \
    for (int grid_y = 0; grid_y < gy; ++grid_y)                                                  \
        for (int grid_x = 0; grid_x < gx; ++grid_x)                                              \
            for (int thread = 0; thread < bx; ++thread) {                                        \
                blockIdx = {(unsigned)grid_x, (unsigned)grid_y, 0};                              \
                threadIdx = {(unsigned)thread, 0, 0};                                            \
                KERNEL(__VA_ARGS__);                                                             \
            }
extern "C" void run_dwconv3x3(int gx, int gy, int bx, void* y, const signed char* x,
    const signed char* w, const int* bias, const int* mult, const int* shift, const float* scale,
    const int* w_zero, int n, int h, int wd, int c, int ph, int pw, int stride, int oh, int ow,
    int xp, int yp, int x_zero, int y_zero, int lo, int hi, int out_mode, float y_scale,
    int act, float act_a, float act_b) {
    GRID(dwconv3x3_int8, y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, ph, pw, stride,
         oh, ow, xp, yp, x_zero, y_zero, lo, hi, out_mode, y_scale, act, act_a, act_b)
}
extern "C" void run_dwconv(int gx, int gy, int bx, void* y, const signed char* x,
    const signed char* w, const int* bias, const int* mult, const int* shift, const float* scale,
    const int* w_zero, int n, int h, int wd, int c, int r, int s, int ph, int pw, int sh, int sw,
    int oh, int ow, int xp, int yp, int x_zero, int y_zero, int lo, int hi, int out_mode,
    float y_scale, int act, float act_a, float act_b, int lanes) {
    GRID(dwconv_int8, y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, r, s, ph, pw, sh,
         sw, 1, 1, oh, ow, xp, yp, x_zero, y_zero, lo, hi, out_mode, y_scale, act, act_a, act_b,
         lanes)
}
// The element-wise kernels on `gx` blocks of 256 threads (their loops cover any count).
extern "C" void run_quantize(int gx, void* y, const unsigned short* x, int n, float scale, int zero,
    int out_int8) {
    const int bx = 256, gy = 1;
    GRID(quantize_f16, y, x, n, scale, zero, out_int8)
}
extern "C" void run_requantize_ew(int gx, void* y, const void* x, float x_scale, int x_zero,
    int x_int8, const void* b, float b_scale, int b_zero, int b_int8, int n, int act, float act_a,
    float act_b, float scale, int zero, int out_int8, int run, int stride, int offset) {
    const int bx = 256, gy = 1;
    GRID(requantize, y, x, x_scale, x_zero, x_int8, b, b_scale, b_zero, b_int8, n, act, act_a,
         act_b, scale, zero, out_int8, run, stride, offset)
}
// The kernels' requantization of one sum.
extern "C" int run_requantize(int x, int mult, int shift) { return requantize(x, i8_scale(mult, shift)); }
// The host's grid for conv_int8_mma (cuda::int8::Split::dense_grid), 128 threads a block.
extern "C" void run_conv_mma(void* y, const signed char* x, const signed char* w,
    const int* bias, const int* mult, const int* shift, const float* scale, const int* w_zero,
    int n, int h, int wd, int c, int k, int r, int s, int ph, int pw, int sh, int sw, int dh,
    int dw, int oh, int ow, int xp, int yp, int x_zero, int y_zero, int lo, int hi, int out_mode,
    float y_scale, int act, float act_a, float act_b, int tile_n) {
    const int bm = tile_n == 32 ? 128 : 64;
    gridDim = {(unsigned)((n * oh * ow + bm - 1) / bm), (unsigned)((k + tile_n - 1) / tile_n), 1};
    blockDim = {I8_THREADS, 1, 1};
    for (unsigned by = 0; by < gridDim.y; ++by)
        for (unsigned bx = 0; bx < gridDim.x; ++bx) {
            blockIdx = {bx, by, 0};
            run_block([&] {
                conv_int8_mma(y, x, w, bias, mult, shift, scale, w_zero, n, h, wd, c, k, r, s, ph,
                              pw, sh, sw, dh, dw, oh, ow, xp, yp, x_zero, y_zero, lo, hi, out_mode,
                              y_scale, act, act_a, act_b, tile_n);
            });
        }
}
"""


def replace_body(source, name, host):
    """`source` with the body of device function `name` (its braces and all) replaced by `host`."""
    m = re.search(r"__device__ __forceinline__ [^\n(]*\b" + name + r"\(", source)
    if not m:
        sys.exit(f"int8.cu has no function {name}: update HOST_BODIES in {__file__}")
    depth, at = 1, m.end()
    while depth:  # the parameter list (it may hold parentheses: `int (&r)[4]`)
        depth += {"(": 1, ")": -1}.get(source[at], 0)
        at += 1
    start = source.index("{", at)
    depth, end = 1, start + 1
    while depth:
        depth += {"{": 1, "}": -1}.get(source[end], 0)
        end += 1
    return source[:start] + host + source[end:]


def host_source():
    common = (root / "plugins/cuda/common.cuh").read_text()
    body = (root / "firmware-service/gpu/src/cuda/int8.cu").read_text()
    for name, host in HOST_BODIES.items():
        body = replace_body(body, name, host)
    return f"{SHIM}\n#define ADAS_HALF 0\n{common}\n{body}\n{RUNNER}"


def build(tmp):
    src = pathlib.Path(tmp) / "int8_host.cpp"
    src.write_text(host_source())
    lib = pathlib.Path(tmp) / "int8_host.so"
    # No contraction into FMAs and IEEE float, as NVRTC compiles the kernels (--fmad=false).
    subprocess.run(["g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-ffp-contract=off",
                    "-Wno-attributes", "-o", str(lib), str(src)], check=True)
    return ctypes.CDLL(str(lib))


# TensorFlow Lite's arithmetic, as written in gemmlowp and tflite (the kernels' specification).
def q31_high_mul(a, b):
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    # C's division truncates toward zero.
    q = abs(ab + nudge) // (1 << 31)
    return q if ab + nudge >= 0 else -q


def rounding_shift_right(x, e):
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def wrap32(v):
    return (v + (1 << 31)) % (1 << 32) - (1 << 31)


def multiply_by_quantized_multiplier(x, mult, shift):
    left, right = (shift, 0) if shift > 0 else (0, -shift)
    return rounding_shift_right(q31_high_mul(wrap32(x << left), mult), right)


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def f16_bits(v):
    return struct.unpack("H", struct.pack("e", v))[0]


# Activation codes (common.cuh) and ONNX's definitions in FP32 (mode 2's, on the float value).
ACTS = {0: lambda v, a, b: v, 1: lambda v, a, b: max(v, 0.0),
        2: lambda v, a, b: min(max(v, a), b), 3: lambda v, a, b: v if v >= 0 else f32(v * a)}


def depthwise_reference(case, x, weights, bias, mult, shift, scale, w_zero):
    """TensorFlow Lite's depthwise convolution: Σ over the taps inside the image of
    (x − x_zero)·(w − w_zero) + bias per output pixel and channel, then the epilogue."""
    n, h, wd, c, r, s = case["n"], case["h"], case["w"], case["c"], case["r"], case["s"]
    out = {}
    for b in range(n):
        for oy in range(case["oh"]):
            for ox in range(case["ow"]):
                for k in range(c):
                    acc = bias[k]
                    for tr in range(r):
                        for ts in range(s):
                            iy, ix = oy * case["sh"] - case["ph"] + tr, ox * case["sw"] - case["pw"] + ts
                            if 0 <= iy < h and 0 <= ix < wd:
                                v = x[((b * h + iy) * wd + ix) * case["xp"] + k]
                                acc += (v - case["x_zero"]) * (weights[k][tr * s + ts] - w_zero[k])
                    at = ((b * case["oh"] + oy) * case["ow"] + ox) * case["yp"] + k
                    out[at] = epilogue(case, acc, mult[k], shift[k], scale[k])
    return out


def int8_or_half(q, scale, zero, out_int8):
    """What a kernel writes for grid integer q: the int8, or (q − zero)·scale as FP16 bits."""
    return q if out_int8 else f16_bits(f32(float(q - zero) * scale))


def epilogue(case, acc, mult, shift, scale):
    """The output of sum `acc` (bias included) in the case's mode: the requantized int8 (mode 0),
    its dequantized value as FP16 bits (mode 1), or acc·scale in FP32, activated, as FP16 bits
    (mode 2)."""
    if case["mode"] == 2:
        real = f32(f32(float(acc)) * scale)
        return f16_bits(ACTS[case["act"]](real, case["act_a"], case["act_b"]))
    q = multiply_by_quantized_multiplier(acc, mult, shift) + case["y_zero"]
    q = min(max(q, case["lo"]), case["hi"])
    return int8_or_half(q, case["y_scale"], case["y_zero"], case["mode"] == 0)


def layout(weights, c, r, s):
    """The weights as the kernels read them (cuda::int8::depthwise_layout): [G][C][4], a 3 × 3
    kernel one group per column (rows 0–2, a zero), any other raster taps in fours."""
    by_column = (r, s) == (3, 3)
    groups = 3 if by_column else (r * s + 3) // 4
    out = bytearray(groups * c * 4)
    for g in range(groups):
        for k in range(c):
            for u in range(4):
                if by_column:
                    t = u * s + g if u < 3 else None
                else:
                    t = g * 4 + u if g * 4 + u < r * s else None
                out[(g * c + k) * 4 + u] = weights[k][t] & 0xff if t is not None else 0
    return bytes(out)


def make_case(rng, i):
    # Three cases in four are MobileNets' 3 × 3 (both kernels), the rest other shapes.
    r, s = (3, 3) if i % 4 != 3 else rng.choice([(1, 1), (2, 3), (3, 5), (5, 5)])
    stride = rng.choice([1, 2])
    c = rng.choice([4, 8, 12, 20] if i % 5 else [1, 3, 6, 9])
    h, w = rng.randint(1, 9), rng.randint(1, 11)
    ph, pw = rng.randint(0, r - 1), rng.randint(0, s - 1)
    oh, ow = (h + 2 * ph - r) // stride + 1, (w + 2 * pw - s) // stride + 1
    if oh < 1 or ow < 1:
        return None
    return output_modes(rng, dict(n=rng.randint(1, 2), h=h, w=w, c=c, r=r, s=s, sh=stride,
                                  sw=stride, ph=ph, pw=pw, oh=oh, ow=ow,
                                  xp=c + rng.choice([0, 0, 4, 8, 1, 3]),
                                  yp=c + rng.choice([0, 0, 4, 1])))


def output_type(case):
    """Bytes per output value and the sentinel that fills the output before a run."""
    return (1, 0x5a) if case["mode"] == 0 else (2, 0x5a5a)


def output_modes(rng, case):
    """The epilogue's mode, clamp and mode 2's activation: none, ReLU, a clip, LeakyRelu
    (NanoDet's heads); the Sigmoid's expf is the GPU's own, which the host does not have."""
    lo, hi = rng.choice([(-128, 127), (rng.randint(-128, -20), rng.randint(40, 127))])
    act, act_a, act_b = rng.choice([(0, 0.0, 0.0), (1, 0.0, 0.0), (2, f32(-0.5), f32(3.0)),
                                    (3, f32(0.1), 0.0)])
    case.update(mode=rng.choice([0, 0, 0, 1, 2]), lo=lo, hi=hi, act=act, act_a=act_a, act_b=act_b,
                x_zero=rng.randint(-128, 127), y_zero=rng.randint(-128, 127),
                y_scale=f32(rng.uniform(0.01, 0.2)), zw=rng.random() < 0.5)
    return case


def channel_constants(rng, c):
    """Per output channel: gemmlowp's multiplier and shift, and mode 2's float scale."""
    mult = [rng.randint(1 << 30, (1 << 31) - 1) for _ in range(c)]
    shift = [rng.choice([-14, -10, -8, -7, -5, -1, 0, 1]) for _ in range(c)]
    scale = [f32(rng.uniform(1e-4, 1e-2)) for _ in range(c)]
    return mult, shift, scale


def ints(values):
    return (ctypes.c_int * len(values))(*values)


def run_case(lib, rng, case):
    n, c = case["n"], case["c"]
    x = [rng.randint(-128, 127) for _ in range(n * case["h"] * case["w"] * case["xp"])]
    weights = [[rng.randint(-128, 127) for _ in range(case["r"] * case["s"])] for _ in range(c)]
    w_zero = [rng.randint(-20, 20) if case["zw"] else 0 for _ in range(c)]
    taps = case["r"] * case["s"]
    model_bias = [rng.randint(-5000, 5000) for _ in range(c)]
    # The host folds the constant cross terms into the bias (int8.cu's header).
    bias = [model_bias[k] - case["x_zero"] * sum(weights[k]) + taps * case["x_zero"] * w_zero[k]
            for k in range(c)]
    mult, shift, scale = channel_constants(rng, c)
    want = depthwise_reference(case, x, weights, model_bias, mult, shift, scale, w_zero)

    xb = (ctypes.c_byte * len(x))(*x)
    wb = ctypes.create_string_buffer(layout(weights, c, case["r"], case["s"]))
    out_bytes, sentinel = output_type(case)
    size = n * case["oh"] * case["ow"] * case["yp"]
    args = (ints(bias), ints(mult), ints(shift), (ctypes.c_float * c)(*scale),
            ints(w_zero) if case["zw"] else None)
    act_args = (case["act"], ctypes.c_float(case["act_a"]), ctypes.c_float(case["act_b"]))
    rows = n * case["oh"]
    results = {}
    kernels = []
    four = c % 4 == 0 and case["xp"] % 4 == 0 and case["yp"] % 4 == 0
    if (case["r"], case["s"]) == (3, 3) and four:
        kernels.append("dwconv3x3_int8")
    kernels += ["dwconv_int8 lanes 4"] if four else []
    kernels.append("dwconv_int8 lanes 1")
    for kernel in kernels:
        y = ((ctypes.c_uint8 if out_bytes == 1 else ctypes.c_uint16) * size)(*([sentinel] * size))
        # One or two blocks of 32 threads: the grid-stride loops cover the rest.
        gx, gy, bx = rng.choice([1, 2]), min(rows, rng.choice([1, 3])), 32
        common = (case["n"], case["h"], case["w"], c)
        if kernel == "dwconv3x3_int8":
            lib.run_dwconv3x3(gx, gy, bx, y, xb, wb, *args, *common, case["ph"], case["pw"],
                              case["sh"], case["oh"], case["ow"], case["xp"], case["yp"],
                              case["x_zero"], case["y_zero"], case["lo"], case["hi"], case["mode"],
                              ctypes.c_float(case["y_scale"]), *act_args)
        else:
            lib.run_dwconv(gx, gy, bx, y, xb, wb, *args, *common, case["r"], case["s"], case["ph"],
                           case["pw"], case["sh"], case["sw"], case["oh"], case["ow"], case["xp"],
                           case["yp"], case["x_zero"], case["y_zero"], case["lo"], case["hi"],
                           case["mode"], ctypes.c_float(case["y_scale"]), *act_args,
                           4 if "4" in kernel else 1)
        results[kernel] = (differing(list(y), want, out_bytes, sentinel), len(want))
    return results


def differing(got, want, out_bytes, sentinel):
    """How many outputs differ from `want` (element → value); an element `want` has no value for
    (a pitch gap) must still hold the sentinel."""
    wrong = 0
    for at, value in enumerate(got):
        expect = want.get(at)
        if expect is None:
            wrong += value != sentinel
        else:
            wrong += (value if out_bytes == 2 else value - 256 if value > 127 else value) != expect
    return wrong


def make_dense_case(rng):
    """A dense convolution: MobileNets' 1 × 1 and 3 × 3 and other shapes, channel counts that
    give each copy width (16, 4 and 1 bytes: C = 3 is a network's first layer), K below, at and
    past a tile, input and output pitches and misaligned bases, both tiles."""
    r, s = rng.choice([(1, 1), (1, 1), (3, 3), (3, 3), (1, 3), (2, 2), (5, 5)])
    stride, dilation = rng.choice([1, 1, 2]), rng.choice([1, 1, 1, 2])
    c = rng.choice([3, 4, 8, 16, 24, 32, 48, 64, 96, 5, 12])
    while r * s * c > 640:  # the fibers are slow: keep the reduction to ten slices
        c = rng.choice([3, 4, 8, 16, 24])
    k = rng.choice([rng.randint(1, 40), 16, 24, 32, 64, 96, rng.randint(60, 130)])
    h, w = rng.randint(1, 10), rng.randint(1, 12)
    ph, pw = rng.randint(0, (r - 1) * dilation), rng.randint(0, (s - 1) * dilation)
    oh = (h + 2 * ph - (r - 1) * dilation - 1) // stride + 1
    ow = (w + 2 * pw - (s - 1) * dilation - 1) // stride + 1
    if oh < 1 or ow < 1:
        return None
    return output_modes(rng, dict(
        n=rng.randint(1, 2), h=h, w=w, c=c, k=k, r=r, s=s, sh=stride, sw=stride, dh=dilation,
        dw=dilation, ph=ph, pw=pw, oh=oh, ow=ow, xp=c + rng.choice([0, 0, 16, 4, 1]),
        yp=k + rng.choice([0, 0, 4, 1, 8]), x_at=rng.choice([0, 0, 16, 4, 1]),
        w_at=rng.choice([0, 0, 4, 1]), y_at=rng.choice([0, 0, 1, 2]), tile_n=rng.choice([32, 64])))


def dense_reference(case, x, weights, bias, w_zero, mult, shift, scale):
    """TensorFlow Lite's convolution: Σ over the taps (those outside the image add nothing) of
    (x − x_zero)·(w − w_zero) + bias per output pixel and channel, then the epilogue."""
    n, h, wd, c, k = case["n"], case["h"], case["w"], case["c"], case["k"]
    r, s, oh, ow = case["r"], case["s"], case["oh"], case["ow"]
    pad_y, pad_x = case["ph"] + r * case["dh"], case["pw"] + s * case["dw"]
    image = np.array(x, dtype=np.int64).reshape(n, h, wd, case["xp"])[..., :c] - case["x_zero"]
    padded = np.zeros((n, h + 2 * pad_y, wd + 2 * pad_x, c), dtype=np.int64)
    padded[:, pad_y:pad_y + h, pad_x:pad_x + wd] = image
    taps = []
    for tr in range(r):
        for ts in range(s):
            y0 = pad_y - case["ph"] + tr * case["dh"]
            x0 = pad_x - case["pw"] + ts * case["dw"]
            taps.append(padded[:, y0:y0 + case["sh"] * oh:case["sh"], x0:x0 + case["sw"] * ow:case["sw"]])
    columns = np.concatenate(taps, axis=3).reshape(n * oh * ow, r * s * c)
    filters = np.array(weights, dtype=np.int64).reshape(k, r * s * c) - np.array(w_zero)[:, None]
    sums = columns @ filters.T + np.array(bias, dtype=np.int64)
    return {p * case["yp"] + kk: epilogue(case, int(sums[p, kk]), mult[kk], shift[kk], scale[kk])
            for p in range(n * oh * ow) for kk in range(k)}


def at(buffer, index, size):
    """A pointer to element `index` of a ctypes array of `size`-byte elements."""
    return ctypes.byref(buffer, index * size)


def run_dense_case(lib, rng, case):
    n, c, k = case["n"], case["c"], case["k"]
    taps = case["r"] * case["s"] * c
    x = [rng.randint(-128, 127) for _ in range(n * case["h"] * case["w"] * case["xp"])]
    weights = [rng.randint(-128, 127) for _ in range(k * taps)]
    w_zero = [rng.randint(-20, 20) if case["zw"] else 0 for _ in range(k)]
    model_bias = [rng.randint(-50000, 50000) for _ in range(k)]
    bias = [model_bias[kk] - case["x_zero"] * sum(weights[kk * taps:(kk + 1) * taps])
            + taps * case["x_zero"] * w_zero[kk] for kk in range(k)]
    mult, shift, scale = channel_constants(rng, k)
    want = dense_reference(case, x, weights, model_bias, w_zero, mult, shift, scale)

    xb = (ctypes.c_byte * (case["x_at"] + len(x)))(*([0] * case["x_at"] + x))
    wb = (ctypes.c_byte * (case["w_at"] + len(weights)))(*([0] * case["w_at"] + weights))
    out_bytes, sentinel = output_type(case)
    size = n * case["oh"] * case["ow"] * case["yp"]
    y = ((ctypes.c_uint8 if out_bytes == 1 else ctypes.c_uint16) * (case["y_at"] + size))(
        *([sentinel] * (case["y_at"] + size)))
    lib.run_conv_mma(at(y, case["y_at"], out_bytes), at(xb, case["x_at"], 1),
                     at(wb, case["w_at"], 1), ints(bias), ints(mult), ints(shift),
                     (ctypes.c_float * k)(*scale), ints(w_zero) if case["zw"] else None,
                     *(case[v] for v in ("n", "h", "w", "c", "k", "r", "s", "ph", "pw", "sh", "sw",
                                         "dh", "dw", "oh", "ow", "xp", "yp", "x_zero", "y_zero",
                                         "lo", "hi", "mode")),
                     ctypes.c_float(case["y_scale"]), case["act"], ctypes.c_float(case["act_a"]),
                     ctypes.c_float(case["act_b"]), case["tile_n"])
    return differing(list(y)[case["y_at"]:], want, out_bytes, sentinel), len(want)


def requantization_failures(lib):
    """The kernels' requantize (int8.cu's one multiply-add form) against gemmlowp's two
    roundings on every shift TensorFlow Lite's multipliers take, at the exact ties of both
    roundings and one either side, and at the ends of the int32 range; random sums seldom hit
    a tie."""
    sums = {-(1 << 31), -(1 << 31) + 1, -1, 0, 1, (1 << 31) - 2, (1 << 31) - 1}
    for e in range(31):
        for k in (-3, -1, 0, 1, 2):
            for d in (-1, 0, 1):
                v = k * (1 << (e + 1)) + (1 << e) + d
                sums |= {x for x in (v, -v) if -(1 << 31) <= x < (1 << 31)}
    rng = random.Random(0x5eed)
    mults = [0, 1, 1 << 30, (1 << 30) + 1, (1 << 31) - 1] + [rng.randint(1 << 30, (1 << 31) - 1)
                                                              for _ in range(3)]
    failures, checked = [], 0
    for shift in range(-31, 31):
        for m in mults:
            for x in sums:
                got, want = lib.run_requantize(x, m, shift), multiply_by_quantized_multiplier(x, m, shift)
                checked += 1
                if got != want:
                    failures.append(f"requantize({x}, {m}, {shift}) = {got}, gemmlowp {want}")
    return checked, failures


def ew_quantize(v, scale, zero):
    """ONNX's QuantizeLinear in FP32 onto the int8 grid: round half to even of v / scale (the
    quotient bounded to ±512 first), + zero, saturated."""
    t = min(max(float(np.float32(v) / np.float32(scale)), -512.0), 512.0)
    return min(max(round(t) + zero, -128), 127)


def half_value(bits):
    return float(np.array([bits], dtype=np.uint16).view(np.float16)[0])


def grid_real(raw, scale, zero, is_int8):
    """An operand's stored value (an int8, or FP16 bits) as the real value of its grid integer."""
    q = raw if is_int8 else round(float(np.float32(half_value(raw)) / np.float32(scale))) + zero
    return f32(float(q - zero) * scale)


def random_halves(rng, count, scale, zero):
    """FP16 values: most on the grid (as a producer writes them), some between its points, at
    ties and far outside it."""
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.6:
            v = (rng.randint(-128, 127) - zero) * scale
        elif kind < 0.8:
            v = (rng.randint(-140, 140) + 0.5) * scale
        elif kind < 0.95:
            v = rng.uniform(-200, 200) * scale
        else:
            v = rng.choice([1e4, -1e4, 65504.0, -65504.0])
        out.append(f16_bits(v))
    return out


def ew_layout(rng, wide):
    """Count, slice (run, stride, offset), grid and whether the buffers are 16-byte aligned."""
    if rng.random() < 0.5:
        run = rng.choice([8, 16, 24, 64]) if wide else rng.choice([5, 12, 8, 3])
        rows = rng.randint(1, 12)
        stride = run + (rng.choice([0, 8, 16]) if wide else rng.choice([0, 1, 3, 8]))
        offset = rng.choice([0, 8]) if wide else rng.choice([0, 1, 4])
        n = rows * run
    else:
        n = rng.choice([8, 64, 264, 1000]) if wide else rng.randint(1, 300)
        run, stride, offset = n, n, 0
    return n, run, stride, offset, rng.choice([1, 2, 3]), wide or rng.random() < 0.5


def make_ew_case(rng, i):
    """A Step::Quantize (i even) or Step::Requantize (odd); half of them laid out so that the
    kernels take eight values a thread."""
    n, run, stride, offset, gx, aligned = ew_layout(rng, rng.random() < 0.5)
    case = dict(requantize=i % 2 == 1, n=n, run=run, stride=stride, offset=offset, gx=gx,
                aligned=aligned, out_int8=rng.random() < 0.6, scale=f32(rng.uniform(0.005, 0.2)),
                zero=rng.randint(-128, 127))
    if case["requantize"]:
        act, act_a, act_b = rng.choice([(0, 0.0, 0.0), (1, 0.0, 0.0), (2, f32(-0.5), f32(3.0)),
                                        (3, f32(0.1), 0.0)])
        case.update(act=act, act_a=act_a, act_b=act_b, x_int8=rng.random() < 0.5,
                    b=rng.choice([None, True, False]), x_scale=f32(rng.uniform(0.005, 0.2)),
                    x_zero=rng.randint(-128, 127), b_scale=f32(rng.uniform(0.005, 0.2)),
                    b_zero=rng.randint(-128, 127))
    else:
        case.update(run=n, stride=n, offset=0)
    return case


def run_ew_case(lib, rng, case):
    n, out_int8 = case["n"], case["out_int8"]
    size = (n - 1) // case["run"] * case["stride"] + case["offset"] + (n - 1) % case["run"] + 1
    # A misaligned buffer starts one element into its allocation (the kernels then take one
    # value a thread).
    skip = 0 if case["aligned"] else 1

    def operand(is_int8, scale, zero):
        raw = ([rng.randint(-128, 127) for _ in range(n)] if is_int8
               else random_halves(rng, n, scale, zero))
        kind = ctypes.c_int8 if is_int8 else ctypes.c_uint16
        return raw, (kind * (n + 8))(*([0] * skip + raw))

    out_kind = ctypes.c_int8 if out_int8 else ctypes.c_uint16
    sentinel = 0x5a if out_int8 else 0x5a5a
    y = (out_kind * (size + 8))(*([sentinel] * (size + 8)))
    want = {}
    if not case["requantize"]:
        raw, xb = operand(False, case["scale"], case["zero"])
        lib.run_quantize(case["gx"], at(y, skip, 1 if out_int8 else 2), at(xb, skip, 2), n,
                         ctypes.c_float(case["scale"]), case["zero"], int(out_int8))
        for i, h in enumerate(raw):
            want[skip + i] = int8_or_half(ew_quantize(half_value(h), case["scale"], case["zero"]),
                                    case["scale"], case["zero"], out_int8)
        kernel = "quantize_f16"
    else:
        xr, xb = operand(case["x_int8"], case["x_scale"], case["x_zero"])
        b_int8 = case["b"] is True
        br, bb = (operand(b_int8, case["b_scale"], case["b_zero"]) if case["b"] is not None
                  else (None, None))
        lib.run_requantize_ew(
            case["gx"], at(y, skip, 1 if out_int8 else 2),
            at(xb, skip, 1 if case["x_int8"] else 2), ctypes.c_float(case["x_scale"]),
            case["x_zero"], int(case["x_int8"]),
            at(bb, skip, 1 if b_int8 else 2) if bb is not None else None,
            ctypes.c_float(case["b_scale"]), case["b_zero"], int(b_int8), n, case["act"],
            ctypes.c_float(case["act_a"]), ctypes.c_float(case["act_b"]),
            ctypes.c_float(case["scale"]), case["zero"], int(out_int8), case["run"],
            case["stride"], case["offset"])
        for i in range(n):
            v = grid_real(xr[i], case["x_scale"], case["x_zero"], case["x_int8"])
            if br is not None:
                v = f32(v + grid_real(br[i], case["b_scale"], case["b_zero"], b_int8))
            v = ACTS[case["act"]](v, case["act_a"], case["act_b"])
            at_ = skip + i // case["run"] * case["stride"] + case["offset"] + i % case["run"]
            want[at_] = int8_or_half(ew_quantize(v, case["scale"], case["zero"]), case["scale"],
                               case["zero"], out_int8)
        kernel = "requantize"
    got = [v & 0xff if out_int8 else v for v in y]
    wrong = differing(got, want, 1 if out_int8 else 2, sentinel)
    return {kernel: (wrong, n)}

def check(label, count, make, run):
    """`count` kernel runs on the cases `make(i)` gives (None: none), `run(case)` returning each
    kernel's differing and total values; prints the tally and returns the failures."""
    failures, i, checked, values = [], 0, 0, 0
    while checked < count:
        case = make(i)
        i += 1
        if case is None:
            continue
        for kernel, (wrong, total) in run(case).items():
            checked += 1
            values += total
            if wrong:
                failures.append(f"{kernel}: {wrong} of {total} differ in {case}")
    print(f"int8 {label} on the host: {checked} runs, {values} values, {len(failures)} failing")
    return failures

def main():
    rng = random.Random(0x1a8e)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(tmp)
        checked, failures = requantization_failures(lib)
        print(f"int8 requantization on the host: {checked} sums at gemmlowp's ties, "
              f"{len(failures)} failing")
        failures += check("depthwise kernels", CASES, lambda i: make_case(rng, i),
                          lambda case: run_case(lib, rng, case))
        failures += check("tensor-core kernel", DENSE_CASES, lambda i: make_dense_case(rng),
                          lambda case: {"conv_int8_mma": run_dense_case(lib, rng, case)})
        failures += check("element-wise kernels", EW_CASES, lambda i: make_ew_case(rng, i),
                          lambda case: run_ew_case(lib, rng, case))
    for f in failures[:10]:
        print("  " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
