#!/usr/bin/env bash
# The attention kernel development loop for one GPU-machine call (~90-130 s): configure, build
# only the attention targets, run the GPU attention tests and the memcheck program, the
# benchmark next to PyTorch's flash and cuDNN backends, then (optionally) one variant of the
# sources rebuilt and benchmarked in the same call, so that two versions meet the same
# machine. Logs go to $OUT. Run from the repository root of an unpacked source tree:
#
#   tests/bench/attention/dev_loop.sh
#   MEMCHECK=0 TORCH=0 tests/bench/attention/dev_loop.sh          # ours only, no memcheck
#   VARIANT_CMD="python3 patch.py" VARIANT_ARGS="--shape 2,16,8192,128,1" tests/bench/attention/dev_loop.sh
#
# VARIANT_CMD edits the sources in place (e.g. a script that changes one constant), then the
# attention targets are rebuilt, the GPU attention tests rerun and attention_bench runs with
# VARIANT_ARGS. TESSERA_GPU_BUILD_DIR picks the build folder (default build-gpu).
set -uo pipefail
OUT=${OUT:-out/attention_dev}
mkdir -p "$OUT"
B=${TESSERA_GPU_BUILD_DIR:-build-gpu}
t0=$(date +%s)
cmake -S . -B "$B" -G Ninja -DTESSERA_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$OUT/configure.log" 2>&1 ||
  { tail -30 "$OUT/configure.log"; exit 1; }
ninja -C "$B" -j"$(nproc)" tessera_gpu_tests attention_bench tessera_attention_memcheck >"$OUT/build.log" 2>&1 ||
  { grep -E "error|FAILED" "$OUT/build.log" | head -40; exit 1; }
echo "build $(( $(date +%s) - t0 )) s"
timeout 200 "$B/tests/tessera_gpu_tests" --gtest_filter='Attention*' >"$OUT/tests.log" 2>&1
echo "tests rc=$?"; grep -E "FAILED|PASSED|OK \]" "$OUT/tests.log" | head -20
if [[ ${MEMCHECK:-1} == 1 ]]; then
  timeout 200 compute-sanitizer --tool memcheck --error-exitcode 1 "$B/tests/bench/attention/tessera_attention_memcheck" \
    >"$OUT/memcheck.log" 2>&1
  echo "memcheck rc=$?"; tail -3 "$OUT/memcheck.log"
fi
if [[ ${TORCH:-1} == 1 ]]; then
  OUT=$OUT/bench timeout 300 tests/bench/attention/run.sh "$B" >"$OUT/bench.txt" 2>&1
  echo "bench rc=$?"; cat "$OUT/bench/table.txt"
else
  timeout 200 "$B/tests/bench/attention/attention_bench" | tee "$OUT/ours.txt"
fi
if [[ -n ${VARIANT_CMD:-} ]]; then
  eval "$VARIANT_CMD" || { echo "VARIANT_CMD failed"; exit 1; }
  ninja -C "$B" -j"$(nproc)" attention_bench tessera_gpu_tests >"$OUT/build_variant.log" 2>&1 ||
    { grep -E "error|FAILED" "$OUT/build_variant.log" | head; exit 1; }
  timeout 200 "$B/tests/tessera_gpu_tests" --gtest_filter='Attention*' >"$OUT/tests_variant.log" 2>&1
  echo "variant tests rc=$?"
  # shellcheck disable=SC2086
  timeout 200 "$B/tests/bench/attention/attention_bench" ${VARIANT_ARGS:-} | tee "$OUT/ours_variant.txt"
fi
echo "total $(( $(date +%s) - t0 )) s"
