#!/usr/bin/env bash
# Run by tests/gpu/run.sh on a GPU machine:
#  1. the MPI test program on GPUs through NCCL — one rank (world size 1, still through NCCL),
#     and one rank per GPU when there are several;
#  2. `tessera train` itself under mpirun -np 1 on cuda (a tiny GPT-MTP, bf16 gradient wire):
#     the job's data-parallel path must go through NCCL at world size 1, which its metrics dump
#     shows as bf16 all-reduce bytes.
#   tests/gpu/extra_nccl.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export TESSERA_TEST_DEVICE=cuda
"$here/../mpi/run_mpi.sh" 1 "$build/tests/mpi/tessera_mpi_tests"
gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
if (( gpus > 1 )); then
  "$here/../mpi/run_mpi.sh" "$gpus" "$build/tests/mpi/tessera_mpi_tests"
fi
echo "extra_nccl: tessera_mpi_tests passed through NCCL on 1$( (( gpus > 1 )) && echo " and $gpus") rank(s)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$here/../mpi/tiny_corpus.sh"
tessera=$build/bin/tessera
make_tiny_shards "$tessera" "$work"
# shellcheck disable=SC2046
"$here/../mpi/run_mpi.sh" 1 "$tessera" train $(tiny_gpt_args "$root" "$work") --set dist.allreduce_dtype=bf16 \
  --set metrics.dump=true --out "$work/run" >"$work/run.txt" 2>&1 || { tail -30 "$work/run.txt"; exit 1; }
bytes=$(sed -n 's/^tessera_train_allreduce_bytes_total{dtype="bf16",rank="0",world="1"} //p' "$work/run/metrics/rank0.prom")
[[ -n $bytes && $bytes != 0 ]] || { echo "extra_nccl: no bf16 all-reduce bytes in the job's metrics dump" >&2; cat "$work/run/metrics/rank0.prom" >&2; exit 1; }
grep -q '"step":10,"loss":' "$work/run/log.jsonl" || { echo "extra_nccl: the job logged no loss at step 10" >&2; exit 1; }
echo "extra_nccl: tessera train on cuda under mpirun -np 1 sent $bytes bytes of bf16 gradients through NCCL"
