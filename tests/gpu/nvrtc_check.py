#!/usr/bin/env python3
"""Compiles every CUDA source of adas with NVRTC, exactly as the cuda backend does at run time
(common.cuh prelude, FP32 and FP16, --fmad=false), for the given architectures — on any machine,
no GPU needed (CI uses NVRTC from the nvidia-cuda-nvrtc wheel).

With --ptxas PATH (the nvidia-cuda-nvcc wheel's), each PTX also goes through ptxas for its SASS
target (compute_90 → sm_90), which the driver does at load time, and every kernel's registers,
spills and stack frame are printed. A kernel that spills registers, or keeps a stack frame it is
not listed with below, fails the check: local memory in a hot loop made an INT8 kernel 30 %
slower once, and only ptxas shows it without a GPU.

usage: nvrtc_check.py LIBNVRTC [--ptxas PTXAS] [compute_87 compute_90 ...]
"""
import ctypes
import pathlib
import re
import subprocess
import sys
import tempfile

root = pathlib.Path(__file__).resolve().parents[2]
args = sys.argv[1:]
lib = ctypes.CDLL(args.pop(0))
ptxas = None
if args[:1] == ["--ptxas"]:
    ptxas = args[1]
    args = args[2:]
archs = args or ["compute_87", "compute_90"]
# Kernels allowed a stack frame, and why: their arrays are indexed by run-time values.
STACK_ALLOWED = {
    "permute": "the source's strides and the permutation, indexed by the run-time rank",
}
common = (root / "plugins/cuda/common.cuh").read_text()
sources = {
    "engine": (root / "firmware-service/gpu/src/cuda/kernels.cu").read_text(),
    "int8": (root / "firmware-service/gpu/src/cuda/int8.cu").read_text(),
    "plugins": (root / "plugins/cuda/preprocess.cu").read_text() + "\n" + (root / "plugins/cuda/postprocess.cu").read_text(),
}


def check_resources(prog, what, arch):
    """ptxas -v on the program's PTX: prints each kernel's resources, returns the failures."""
    size = ctypes.c_size_t()
    assert lib.nvrtcGetPTXSize(prog, ctypes.byref(size)) == 0
    ptx = ctypes.create_string_buffer(size.value)
    assert lib.nvrtcGetPTX(prog, ptx) == 0
    sm = arch.replace("compute_", "sm_")
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "adas.ptx"
        src.write_bytes(ptx.value)
        run = subprocess.run([ptxas, f"-arch={sm}", "-v", str(src), "-o", str(src.with_suffix(".cubin"))],
                             capture_output=True, text=True)
    if run.returncode != 0:
        print(f"  ptxas {sm} FAILED:\n{run.stderr}")
        return 1
    bad = 0
    kernel = None
    for line in run.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            kernel = m.group(1)
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            stack, spill_st, spill_ld = map(int, m.groups())
        m = re.search(r"Used (\d+) registers", line)
        if m and kernel:
            problem = ""
            if spill_st or spill_ld:
                problem = f"spills ({spill_st} bytes stored, {spill_ld} loaded)"
            elif stack and kernel not in STACK_ALLOWED:
                problem = f"a {stack}-byte stack frame (local memory)"
            print(f"  {sm} {kernel}: {m.group(1)} registers, stack {stack} B, spills {spill_st}/{spill_ld} B"
                  + (f" — FAILED: {problem}" if problem else ""))
            bad += bool(problem)
            kernel = None
    return bad


failed = 0
for name, body in sources.items():
    for half in (0, 1):
        for arch in archs:
            src = f"#define ADAS_HALF {half}\n{common}\n{body}".encode()
            prog = ctypes.c_void_p()
            assert lib.nvrtcCreateProgram(ctypes.byref(prog), src, b"adas.cu", 0, None, None) == 0
            opts = [b"--fmad=false", f"--gpu-architecture={arch}".encode()]
            arr = (ctypes.c_char_p * len(opts))(*opts)
            rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            log = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, log)
            text = log.value.decode(errors="replace").strip()
            status = "ok" if rc == 0 else "FAILED"
            print(f"{name} {'fp16' if half else 'fp32'} {arch}: {status}")
            if text:
                print(text)
            failed += rc != 0
            if rc == 0 and ptxas:
                failed += check_resources(prog, f"{name} {'fp16' if half else 'fp32'}", arch)
sys.exit(1 if failed else 0)
