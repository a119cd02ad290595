#!/usr/bin/env bash
# Runs a program under mpirun with what the test machines need: root allowed, oversubscription
# (4 ranks on 2 cores), one OpenMP/OpenBLAS thread per rank, loopback TCP only.
#   tests/mpi/run_mpi.sh NP PROGRAM [ARGS...]
set -euo pipefail
np=$1
shift
extra=()
[[ -n ${TESSERA_TEST_DEVICE:-} ]] && extra+=(-x TESSERA_TEST_DEVICE)
[[ -n ${TESSERA_MPI_THREAD_LEVEL:-} ]] && extra+=(-x TESSERA_MPI_THREAD_LEVEL)
exec mpirun --allow-run-as-root --oversubscribe -np "$np" \
  --mca btl self,vader,tcp --mca btl_tcp_if_include lo \
  -x OMP_NUM_THREADS=1 -x OPENBLAS_NUM_THREADS=1 "${extra[@]}" \
  "$@"
