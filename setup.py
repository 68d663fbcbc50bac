"""Builds kws._kernels: Cython wrapper + one C file per ISA, dispatched at import time.

x86-64: every ISA file is compiled with baseline flags; AVX2/AVX-512 code carries per-function
`target` attributes, so one binary runs on any x86-64 CPU and picks its kernel at run time.
aarch64: built with -march=armv8-a (NEON is baseline there); no x86 flags ever reach the compiler.
"""

import platform

from Cython.Build import cythonize
from setuptools import Extension, setup

machine = platform.machine().lower()
sources = ["kws/_kernels.pyx"] + [
    f"kws/csrc/{name}.c"
    for name in ("pack", "bgemm_scalar", "bgemm_avx2", "bgemm_avx512", "bgemm_neon", "dispatch",
                 "memconv", "fsmn", "frontend")
]
cflags = ["-O3", "-ffp-contract=off", "-fno-strict-aliasing", "-std=gnu11"]
if machine in ("aarch64", "arm64"):
    cflags.append("-march=armv8-a")

ext = Extension(
    "kws._kernels",
    sources=sources,
    include_dirs=["kws/csrc"],
    extra_compile_args=cflags,
    depends=["kws/csrc/kernels.h", "kws/csrc/fsmn.h", "kws/csrc/fsmn_float.h", "kws/_fsmn_blocks.pxi",
             "kws/csrc/frontend.h", "kws/_frontend.pxi"],
)

setup(
    ext_modules=cythonize([ext], language_level=3, compiler_directives={"boundscheck": False,
                                                                       "wraparound": False}),
)
