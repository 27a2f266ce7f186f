#!/usr/bin/env bash
# The GPU checks of one session with a lent GPU, each phase under the device tool's 10-minute limit:
#
#   bash bench/gpu_session.sh tests   # the CUDA-only tests (graphs, bf16 fast path, stacks): ~3 min
#   bash bench/gpu_session.sh bench   # bench/RESULTS.md's Run 4 measurement: ~8 min
#   bash bench/gpu_session.sh autotune  # torch.compile's max-autotune mode vs its default (long compile)
#
# Uses the machine's python3 (torch preinstalled there) with this checkout on PYTHONPATH. Each phase writes
# its log, and the benchmark phases their JSON records (results.json), to $OUT (the device tool brings that
# folder back), else to ./gpu-out; copy the records into bench/results.json by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != tests && "${1:-}" != bench && "${1:-}" != autotune ]]; then
  echo "usage: bash bench/gpu_session.sh tests|bench|autotune" >&2
  exit 2
fi
out="${OUT:-gpu-out}"
mkdir -p "$out"
export PYTHONPATH=.
python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"
case "${1:-}" in
  tests)
    python3 -m pytest -q -rs tests/test_speed.py tests/test_reliability.py tests/test_core.py \
      -k "cuda or graph or stack or together" 2>&1 | tee "$out/tests.log" ;;
  bench)
    python3 bench/benchmark.py --out "$out/results.json" --steps 80 --repeats 3 \
      --only "usual,eval batch 2000,torch.compile (graphs)" --stacked 2,3 \
      --e2e-epochs 6 --e2e-stacked 3 --e2e-compile 2>&1 | tee "$out/bench.log" ;;
  autotune)
    python3 bench/benchmark.py --out "$out/results.json" --steps 80 --repeats 3 --skip-usual --stacked 0 \
      --e2e-epochs 0 --only "torch.compile (graphs),max-autotune" 2>&1 | tee "$out/autotune.log" ;;
esac
