#!/usr/bin/env bash
# Run by tests/gpu/run.sh on a GPU machine: the MPI test program on GPUs through NCCL — one rank
# (world size 1, still through NCCL), and one rank per GPU when there are several.
#   tests/gpu/extra_nccl.sh BUILD_DIR
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
export TESSERA_TEST_DEVICE=cuda
"$here/../mpi/run_mpi.sh" 1 "$build/tests/mpi/tessera_mpi_tests"
gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l)
if (( gpus > 1 )); then
  "$here/../mpi/run_mpi.sh" "$gpus" "$build/tests/mpi/tessera_mpi_tests"
fi
echo "extra_nccl: tessera_mpi_tests passed through NCCL on 1$( (( gpus > 1 )) && echo " and $gpus") rank(s)"
