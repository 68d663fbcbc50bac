#!/usr/bin/env bash
# Install kws for development on a fresh Debian/Python 3.11 machine: the package (compiled
# kernels), the training extra (torch 2.13.0, the local CPU build), the test tools and the `kws bench`
# extra (onnx, onnxruntime) and the `kws serve` extra (wyoming, zeroconf).
# Idempotent: a second run only re-checks.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-python3}
# torch first and pinned: any other spec may pull a multi-GB CUDA build on these machines
"$py" -c "import torch" 2>/dev/null || "$py" -m pip install -q "torch==2.13.0"
"$py" -m pip install -q -e ".[train,dev,bench,serve]"
