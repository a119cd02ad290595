#!/usr/bin/env bash
# DCGAN training-step benchmark driver: Tessera (dcgan_bench, f32) and PyTorch eager with bf16
# autocast (bench_torch.py, the GPU machine's python3) on the same networks and step in the same
# run, then one markdown table on stdout (tests/gpu/run.sh appends it to tests/bench/RESULTS.md).
# Raw RESULT lines go to $OUT (or a temporary folder) and stderr.
#
#   tests/bench/dcgan/run.sh [BUILD_DIR] [dcgan_bench options...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${1:-build}"
shift || true
bench="$build/tests/bench/dcgan/dcgan_bench"
[[ -x "$bench" ]] && bench="$(cd "$(dirname "$bench")" && pwd)/dcgan_bench"
if [[ ! -x "$bench" ]]; then
  echo "run.sh: $bench not found; build it with: ninja -C $build dcgan_bench" >&2
  exit 1
fi
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader >&2 || true
"$bench" "$@" | tee "$out/dcgan_ours.txt" >&2
python3 "$here/bench_torch.py" | tee "$out/dcgan_torch.txt" >&2
python3 "$here/bench_torch.py" --table "$out/dcgan_ours.txt" "$out/dcgan_torch.txt"
