#!/usr/bin/env bash
# Run by tests/gpu/run.sh on a GPU machine: the GPU attention tests again with the Hopper wgmma
# backward switched off (TESSERA_ATTENTION_WGMMA=0), so that the portable mma.sync kernels, which
# every non-Hopper GPU runs, stay tested on the H200 too; and the memcheck program on them.
#   tests/gpu/extra_attention_mma_sync.sh BUILD_DIR
set -euo pipefail
build=$1
export TESSERA_ATTENTION_WGMMA=0
"$build/tests/tessera_gpu_tests" --gtest_color=no --gtest_filter='Attention*'
sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
"$sanitizer" --tool memcheck --error-exitcode 1 "$build/tests/bench/attention/tessera_attention_memcheck"
echo "extra_attention_mma_sync: attention tests and memcheck pass on the mma.sync kernels"
