#!/usr/bin/env bash
# Attention benchmark driver: Tessera's kernels (attention_bench) and PyTorch's flash and cuDNN
# backends (bench_torch.py) on the same shapes, then one table of TFLOP/s and ratios.
#
#   tests/bench/attention/run.sh [BUILD_DIR] [attention_bench options...]
#
# BUILD_DIR defaults to ./build (a CUDA build with the attention_bench target built). Raw
# RESULT lines go to $OUT (or a temporary folder) as ours.txt and torch.txt.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-build}"
shift || true
bench="$build/tests/bench/attention/attention_bench"
if [[ ! -x "$bench" ]]; then
  echo "run.sh: $bench not found; build it with: ninja -C $build attention_bench" >&2
  exit 1
fi
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader || true
"$bench" "$@" | tee "$out/ours.txt"
python3 "$here/bench_torch.py" | tee "$out/torch.txt"
python3 "$here/bench_torch.py" --table "$out/ours.txt" "$out/torch.txt" | tee "$out/table.txt"
