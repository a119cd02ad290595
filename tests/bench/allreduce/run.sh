#!/usr/bin/env bash
# All-reduce benchmark driver: prints markdown on stdout (tests/gpu/run.sh appends it to
# tests/bench/RESULTS.md), progress on stderr.
#   tests/bench/allreduce/run.sh [BUILD_DIR]
# 1. allreduce_bench under mpirun: Tessera's Reducer (bucketed gradients) and
#    Communicator::all_reduce against raw MPI_Allreduce (CPU build or no GPU: 2 ranks, 1 to
#    256 MiB) or raw ncclAllReduce (GPU machine: one rank per GPU, TESSERA_BENCH_NP to override,
#    1 MiB to 1 GiB).
# 2. Data-parallel overhead: `tessera train` step time (tessera_train_step_seconds from the
#    metrics dump) of a GPT-MTP shaped like examples/gpt_mtp/tiny.toml on a generated corpus
#    (tests/mpi/tiny_corpus.sh), 1 process without a launcher against N ranks under mpirun at
#    the same per-rank batch (CPU: N = 2, one thread per process; GPU: N = the rank count above,
#    so on one GPU it is the NCCL path at world size 1 against no communication at all).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bench=$build/tests/bench/allreduce/allreduce_bench
tessera=$build/bin/tessera
for f in "$bench" "$tessera"; do
  [[ -x $f ]] || { echo "run.sh: $f not found; build it: ninja -C $build allreduce_bench tessera_cli" >&2; exit 1; }
done
# The CUDA path when the build links CUDA and a GPU is visible.
gpus=0
if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l || echo 0); fi
if (( gpus > 0 )) && compgen -G "$build/CMakeFiles/*/CMakeCUDACompiler.cmake" >/dev/null; then
  device=cuda np=${TESSERA_BENCH_NP:-$gpus} max_mib=1024
else
  device=cpu np=${TESSERA_BENCH_NP:-2} max_mib=256
fi
mpi=(mpirun --oversubscribe -np "$np" -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 -x NCCL_NVLS_ENABLE=0)
[[ $(id -u) -eq 0 ]] && mpi+=(--allow-run-as-root)
[[ $device == cpu ]] && mpi+=(--mca btl self,vader,tcp --mca btl_tcp_if_include lo)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "run.sh: allreduce_bench on $np rank(s), $device" >&2
echo "Command: \`tests/bench/allreduce/run.sh ${1:-build}\` ($(date -u +%F), $device, $np rank(s), $(nproc) CPU cores)"
echo
"${mpi[@]}" "$bench" --device "$device" --max-mib "$max_mib"
echo

echo "run.sh: data-parallel overhead" >&2
source "$root/tests/mpi/tiny_corpus.sh"
make_tiny_shards "$tessera" "$work"
train=(--config "$root/examples/gpt_mtp/tiny.toml" --device "$device" --set "data.dir=$work/shards"
       --set model.vocab_size=320 --set train.batch_size=8 --set train.steps=30 --set log.every=10
       --set eval.every=0 --set eval.max_batches=1 --set schedule.warmup_steps=5 --set checkpoint.every=0
       --set metrics.dump=true)
step_ms() {  # mean step time of rank 0 of run $1, in ms
  awk '/^tessera_train_step_seconds_sum/ {s = $2} /^tessera_train_step_seconds_count/ {n = $2}
       END {printf "%.1f", 1000 * s / n}' "$work/$1/metrics/rank0.prom"
}
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$tessera" train "${train[@]}" --out "$work/one" >"$work/one.txt" 2>&1 ||
  { tail "$work/one.txt" >&2; exit 1; }
"${mpi[@]}" "$tessera" train "${train[@]}" --out "$work/dp" >"$work/dp.txt" 2>&1 || { tail "$work/dp.txt" >&2; exit 1; }
one=$(step_ms one)
dp=$(step_ms dp)
echo "Data-parallel overhead (tiny.toml shapes, vocab 320, 8 sequences of 128 tokens per rank, 30 steps, mean step time of rank 0):"
echo
echo "| run | ms/step | ratio |"
echo "|---|---|---|"
echo "| 1 process, no launcher | $one | 1.00 |"
echo "| $np rank(s) under mpirun ($device) | $dp | $(awk -v a="$dp" -v b="$one" 'BEGIN {printf "%.2f", a / b}') |"
