#!/usr/bin/env bash
# GPT-MTP training-throughput benchmark driver: Tessera (gpt_mtp_bench) and PyTorch eager and
# torch.compile (bench_torch.py, the GPU machine's python3) on examples/gpt_mtp/small.toml
# shapes in the same run, then one markdown table on stdout (tests/gpu/run.sh appends it to
# tests/bench/RESULTS.md). Raw RESULT lines go to $OUT (or a temporary folder) and stderr.
#
#   tests/bench/gpt_mtp/run.sh [BUILD_DIR] [gpt_mtp_bench options...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
build="${1:-build}"
shift || true
bench="$build/tests/bench/gpt_mtp/gpt_mtp_bench"
[[ -x "$bench" ]] && bench="$(cd "$(dirname "$bench")" && pwd)/gpt_mtp_bench"
if [[ ! -x "$bench" ]]; then
  echo "run.sh: $bench not found; build it with: ninja -C $build gpt_mtp_bench" >&2
  exit 1
fi
config="$root/examples/gpt_mtp/small.toml"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader >&2 || true
(cd "$root" && "$bench" --config "$config" "$@") | tee "$out/gpt_mtp_ours.txt" >&2
python3 "$here/bench_torch.py" --config "$config" | tee "$out/gpt_mtp_torch.txt" >&2
python3 "$here/bench_torch.py" --table "$out/gpt_mtp_ours.txt" "$out/gpt_mtp_torch.txt"
