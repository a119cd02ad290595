#!/usr/bin/env bash
# Run by tests/gpu/run.sh on a GPU machine: every CUDA attention variant on small, awkward shapes
# under compute-sanitizer's memcheck (out-of-bounds and misaligned accesses, leaks of device
# memory are reported and fail the run).
#   tests/gpu/extra_attention_memcheck.sh BUILD_DIR
set -euo pipefail
build=$1
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
[[ -x $sanitizer ]] || { echo "extra_attention_memcheck: compute-sanitizer not found" >&2; exit 1; }
"$sanitizer" --tool memcheck --error-exitcode 1 "$build/tests/bench/attention/tessera_attention_memcheck"
echo "extra_attention_memcheck: clean under compute-sanitizer memcheck"
