#!/usr/bin/env bash
# Runs on a GPU machine: builds Tessera with CUDA, runs the GPU tests (ctest label gpu and the
# CPU-vs-CUDA op table), runs the benchmarks next to their peers (PyTorch, raw copies) in the
# same run, appends the tables to tests/bench/RESULTS.md, and prints a short summary last.
# Full logs go under $OUT (default out/gpu); exit status is non-zero if a GPU test failed.
#
#   tests/gpu/run.sh              # build + tests + benchmarks
#   tests/gpu/run.sh --no-bench   # build + tests
#   TESSERA_GPU_BENCHES="ops gpt_mtp" tests/gpu/run.sh   # only these benchmarks ("ops" is the
#                                 # GEMM/memory-bound table, the others tests/bench/<name>/run.sh)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/out/gpu}
mkdir -p "$OUT/logs"
LOGS=$OUT/logs
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
BENCH=1
for arg in "$@"; do [[ $arg == --no-bench ]] && BENCH=0; done
BUILD=${TESSERA_GPU_BUILD_DIR:-build-gpu}
summary=()
t0=$(date +%s)
gpu_rc=0
# The whole script keeps within TESSERA_GPU_BUDGET seconds (default 540): each step's timeout is
# capped by what is left, and steps are skipped once less than 20 s remain.
BUDGET=${TESSERA_GPU_BUDGET:-540}
cap() {  # cap SECONDS -> min(SECONDS, time left), at least 1
  local left=$(( BUDGET - ($(date +%s) - t0) ))
  (( left < $1 )) && echo $(( left > 1 ? left : 1 )) || echo "$1"
}
have_time() { (( BUDGET - ($(date +%s) - t0) >= 20 )); }
wanted() { [[ -z ${TESSERA_GPU_BENCHES:-} || " $TESSERA_GPU_BENCHES " == *" $1 "* ]]; }
# Whatever happens (a failure, a timeout's SIGTERM), pack the logs and print the summary.
finish() {
  trap - EXIT TERM INT
  [[ -d $LOGS ]] && tar -czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -rf "$LOGS"
  summary+=("total: $(( $(date +%s) - t0 )) s")
  echo
  echo "================ summary ================"
  printf '%s\n' "${summary[@]}"
  [[ -f $OUT/results_new.md ]] && cat "$OUT/results_new.md"
  exit $gpu_rc
}
trap finish EXIT
trap 'summary+=("stopped by a signal"); gpu_rc=1; finish' TERM INT

echo "== configure + build ($BUILD)"
if ! cmake -S . -B "$BUILD" -G Ninja -DTESSERA_CUDA=ON -DCMAKE_BUILD_TYPE=Release >"$LOGS/configure.log" 2>&1; then
  tail -40 "$LOGS/configure.log"; gpu_rc=1; exit 1
fi
if ! timeout "$(cap 450)" ninja -C "$BUILD" -j"$(nproc)" -k 0 >"$LOGS/build.log" 2>&1; then
  grep -E "error|FAILED" "$LOGS/build.log" | head -60; gpu_rc=1; summary+=("build FAILED"); exit 1
fi
summary+=("build: $(( $(date +%s) - t0 )) s")

echo "== GPU tests"
t1=$(date +%s)
timeout "$(cap 240)" "$BUILD/tests/tessera_gpu_tests" --gtest_color=no >"$LOGS/gpu_tests.log" 2>&1
gpu_rc=$?
grep -E "^\[  (PASSED|FAILED|SKIPPED) |tests ran" "$LOGS/gpu_tests.log" | tail -5
grep -E "^\[  FAILED  \]" "$LOGS/gpu_tests.log" | head -40
summary+=("gpu tests: rc=$gpu_rc, $(grep -c '^\[       OK \]' "$LOGS/gpu_tests.log") ok, $(grep -c '^\[  FAILED  \]' "$LOGS/gpu_tests.log") failed lines, $(( $(date +%s) - t1 )) s")

# Further GPU test programs (e.g. compute-sanitizer runs) register here.
for extra in tests/gpu/extra_*.sh; do
  [[ -x $extra ]] && have_time || continue
  echo "== $extra"
  if timeout "$(cap 120)" "$extra" "$BUILD" >"$LOGS/$(basename "$extra" .sh).log" 2>&1; then
    summary+=("$(basename "$extra"): ok")
  else
    summary+=("$(basename "$extra"): FAILED"); gpu_rc=1
    tail -20 "$LOGS/$(basename "$extra" .sh).log"
  fi
done

if (( BENCH )) && have_time; then
  echo "== benchmarks"
  device=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  {
    echo
    echo "## $(date -u +%F) — ${device:-GPU} — \`tests/gpu/run.sh\`"
    echo
  } >"$OUT/results_new.md"
  if [[ -x $BUILD/tests/bench/tessera_ops_bench ]] && wanted ops; then
    timeout "$(cap 120)" python3 tests/bench/torch_ops_peer.py >"$LOGS/bench_ops_torch.txt" 2>&1
    timeout "$(cap 120)" "$BUILD/tests/bench/tessera_ops_bench" >"$LOGS/bench_ops_ours.txt" 2>&1
    {
      echo "### GEMM and memory-bound kernels (peer: PyTorch $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null), same run)"
      echo
      python3 tests/bench/compare.py "$LOGS/bench_ops_ours.txt" "$LOGS/bench_ops_torch.txt"
      echo
    } >>"$OUT/results_new.md"
  fi
  for bench in tests/bench/*/run.sh; do
    name=$(basename "$(dirname "$bench")")
    [[ -x $bench ]] && wanted "$name" && have_time || continue
    echo "== bench $name"
    if timeout "$(cap 240)" "$bench" "$BUILD" >"$LOGS/bench_$name.md" 2>"$LOGS/bench_$name.err"; then
      { echo "### $name"; echo; cat "$LOGS/bench_$name.md"; echo; } >>"$OUT/results_new.md"
    else
      summary+=("bench $name: FAILED (see logs/bench_$name.err)")
      tail -20 "$LOGS/bench_$name.err"
    fi
  done
  cat "$OUT/results_new.md" >>tests/bench/RESULTS.md
  cp tests/bench/RESULTS.md "$OUT/RESULTS.md"
fi

exit $gpu_rc
