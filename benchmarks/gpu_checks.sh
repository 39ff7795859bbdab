#!/usr/bin/env bash
# The GPU checks of a lent device machine, in one run: the CUDA tests, then
# the noise-overhead benchmark at the paper's site on the GPU.
# Usage: bash benchmarks/gpu_checks.sh OUT_DIR  (wheels of the missing
# packages in .whl/, installed to /tmp/site; see the closing notes)
set -uo pipefail
out=${1:-/tmp/gpu-out}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PWD:/tmp/site"
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))" \
  | tee -a "$out/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_cuda.py \
  "tests/test_attacks.py::test_cuda_model_cpu_images" \
  "tests/test_covariance.py::test_cuda_matches_cpu" 2>&1 | tee "$out/cuda_tests.txt"
python3 benchmarks/perf_noise.py --device cuda --repeats 10 --out "$out" 2>&1 \
  | tee "$out/perf_noise_cuda.txt"
