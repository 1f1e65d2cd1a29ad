#!/usr/bin/env python3
"""Runs the INT8 depthwise kernels of firmware-service/gpu/src/cuda/int8.cu on the CPU — the
CUDA source itself, compiled by g++ with a few shims, one thread after another — and checks every
output bit for bit against TensorFlow Lite's integer depthwise convolution written out here in
Python (gemmlowp's two roundings, the zero points, the clamp). No GPU needed: CI runs it, so the
kernels' arithmetic, their weight layout and their byte permutes are checked on every commit; the
GPU tests (tests/gpu/run.sh) check the same kernels on the hardware.

What the shims cannot stand in for is what only a GPU shows (memory ordering, occupancy, the PTX
of the inline assembly): the depthwise kernels share no memory between threads, so running their
threads one by one is their semantics. The tensor-core kernel (conv_int8_mma), which needs warps,
is left out; its epilogue is the depthwise kernels' (i8_epilogue).

usage: int8_on_host.py [--cases N]
"""
import ctypes
import pathlib
import random
import re
import struct
import subprocess
import sys
import tempfile

root = pathlib.Path(__file__).resolve().parents[2]
CASES = int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 1000

# The CUDA built-ins the depthwise kernels use, on the host.
SHIM = r"""
#include <cmath>
#include <cstdint>
#include <cstring>
#define __device__
#define __global__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
struct Dim3 { unsigned int x, y, z; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
static inline uint2 make_uint2(unsigned int x, unsigned int y) { return {x, y}; }
static Dim3 blockIdx, blockDim, gridDim, threadIdx;
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline float __int2float_rn(int i) { return (float)i; }
static inline float __fmul_rn(float a, float b) { return a * b; }
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
"""

# Where the depthwise part of int8.cu ends.
DENSE = "// Implicit-GEMM convolution (groups = 1) on tensor cores"

# The functions whose body is inline PTX, on the host: name → body.
HOST_BODIES = {
    "f32_to_half": "{ _Float16 h = (_Float16)f; unsigned short b; memcpy(&b, &h, 2); return b; }",
    "mad_wide": "{ return (long long)a * b + c; }",
}

RUNNER = r"""
#define GRID(KERNEL, ...)                                                                        \
    gridDim = {(unsigned)gx, (unsigned)gy, 1}; blockDim = {(unsigned)bx, 1, 1};                  \
    for (int by = 0; by < gy; ++by)                                                              \
        for (int b = 0; b < gx; ++b)                                                             \
            for (int t = 0; t < bx; ++t) {                                                       \
                blockIdx = {(unsigned)b, (unsigned)by, 0}; threadIdx = {(unsigned)t, 0, 0};      \
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
"""


def host_source():
    common = (root / "plugins/cuda/common.cuh").read_text()
    body = (root / "firmware-service/gpu/src/cuda/int8.cu").read_text()
    # The depthwise kernels and what they use come first; the tensor-core kernel and the
    # element-wise ones after them are PTX throughout.
    end = body.find(DENSE)
    if end < 0:
        sys.exit(f"int8.cu has no line {DENSE!r}: update DENSE in {__file__}")
    body = body[:end]
    for name, host in HOST_BODIES.items():
        m = re.search(r"__device__ __forceinline__ [\w ]+ " + name + r"\([^)]*\) \{\n(.*?\n)\}\n",
                      body, re.S)
        if not m:
            sys.exit(f"int8.cu has no function {name}: update HOST_BODIES in {__file__}")
        body = body[:m.start(1) - 2] + host + "\n" + body[m.end():]
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


def reference(case, x, weights, bias, mult, shift, scale, w_zero):
    """TensorFlow Lite's depthwise convolution: Σ over the taps inside the image of
    (x − x_zero)·(w − w_zero) + bias, requantized, plus y_zero, clamped (mode 0); its dequantized
    value in FP16 (mode 1); or (Σ + bias)·scale in FP32, activated, rounded once to FP16 (mode
    2)."""
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
                    if case["mode"] == 2:
                        real = f32(f32(float(acc)) * scale[k])
                        val = f16_bits(ACTS[case["act"]](real, case["act_a"], case["act_b"]))
                    else:
                        q = multiply_by_quantized_multiplier(acc, mult[k], shift[k]) + case["y_zero"]
                        q = min(max(q, case["lo"]), case["hi"])
                        val = q if case["mode"] == 0 else f16_bits(f32(float(q - case["y_zero"]) * case["y_scale"]))
                    out[(((b * case["oh"] + oy) * case["ow"] + ox) * case["yp"]) + k] = val
    return out


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
    mode = rng.choice([0, 0, 0, 1, 2])
    lo, hi = rng.choice([(-128, 127), (rng.randint(-128, -20), rng.randint(40, 127))])
    # Mode 2's activation: none, ReLU, a clip, LeakyRelu (NanoDet's heads); the Sigmoid's expf
    # is the GPU's own, which the host does not have.
    act, act_a, act_b = rng.choice([(0, 0.0, 0.0), (1, 0.0, 0.0), (2, f32(-0.5), f32(3.0)),
                                    (3, f32(0.1), 0.0)])
    return dict(n=rng.randint(1, 2), h=h, w=w, c=c, r=r, s=s, sh=stride, sw=stride, ph=ph, pw=pw,
                oh=oh, ow=ow, xp=c + rng.choice([0, 0, 4, 8, 1, 3]), yp=c + rng.choice([0, 0, 4, 1]),
                x_zero=rng.randint(-128, 127), y_zero=rng.randint(-128, 127), lo=lo, hi=hi,
                mode=mode, y_scale=f32(rng.uniform(0.01, 0.2)), zw=rng.random() < 0.5, act=act,
                act_a=act_a, act_b=act_b)


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
    mult = [rng.randint(1 << 30, (1 << 31) - 1) for _ in range(c)]
    shift = [rng.choice([-14, -10, -8, -7, -5, -1, 0, 1]) for _ in range(c)]
    scale = [f32(rng.uniform(1e-4, 1e-2)) for _ in range(c)]
    want = reference(case, x, weights, model_bias, mult, shift, scale, w_zero)

    xb = (ctypes.c_byte * len(x))(*x)
    wb = ctypes.create_string_buffer(layout(weights, c, case["r"], case["s"]))
    out_bytes = 1 if case["mode"] == 0 else 2
    size = n * case["oh"] * case["ow"] * case["yp"]
    sentinel = 0x5a if out_bytes == 1 else 0x5a5a
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
        got = list(y)
        wrong = 0
        for at in range(size):
            expect = want.get(at)
            if expect is None:
                wrong += got[at] != sentinel  # a pitch gap must stay untouched
            else:
                value = got[at] if out_bytes == 2 else (got[at] - 256 if got[at] > 127 else got[at])
                wrong += value != expect
        results[kernel] = (wrong, len(want))
    return results


def main():
    rng = random.Random(0x1a8e)
    failures, checked, values = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(tmp)
        i = 0
        while checked < CASES:
            case = make_case(rng, i)
            i += 1
            if case is None:
                continue
            for kernel, (wrong, total) in run_case(lib, rng, case).items():
                checked += 1
                values += total
                if wrong:
                    failures.append(f"{kernel}: {wrong} of {total} differ in {case}")
    print(f"int8 depthwise kernels on the host: {checked} runs, {values} values, "
          f"{len(failures)} failing")
    for f in failures[:10]:
        print("  " + f)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
