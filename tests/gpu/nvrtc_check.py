#!/usr/bin/env python3
"""Compiles every CUDA source of adas with NVRTC, exactly as the cuda backend does at run time
(common.cuh prelude, FP32 and FP16, --fmad=false), for the given architectures — on any machine,
no GPU needed (CI uses NVRTC from the nvidia-cuda-nvrtc wheel).

usage: nvrtc_check.py LIBNVRTC [compute_87 compute_90 ...]
"""
import ctypes
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parents[2]
lib = ctypes.CDLL(sys.argv[1])
archs = sys.argv[2:] or ["compute_87", "compute_90"]
common = (root / "plugins/cuda/common.cuh").read_text()
sources = {
    "engine": (root / "firmware-service/gpu/src/cuda/kernels.cu").read_text(),
    "int8": (root / "firmware-service/gpu/src/cuda/int8.cu").read_text(),
    "plugins": (root / "plugins/cuda/preprocess.cu").read_text() + "\n" + (root / "plugins/cuda/postprocess.cu").read_text(),
}
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
sys.exit(1 if failed else 0)
