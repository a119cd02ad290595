#!/usr/bin/env bash
# Optional convenience wrapper: `tessera train` on N ranks of this machine (or of a hostfile)
# through mpirun. `mpirun -np N build/bin/tessera train ...` works just as well without it —
# ranks, world size and local ranks come from MPI — this only adds the flags people forget.
#
#   launchers/mpirun_train.sh -n 4 -- --config examples/gpt_mtp/tiny.toml --out runs/tiny \
#       --set dist.allreduce_dtype=bf16
#   launchers/mpirun_train.sh -n 16 -H hostfile -- --config FILE --out runs/big --device cuda
#
# Options (before --): -n NP ranks [default: GPUs on this node, else 2], -H HOSTFILE,
# -b BINARY [build/bin/tessera], -t OMP threads per rank [cores / NP]. Everything after -- goes
# to `tessera train`. Environment passed to the ranks: OMP_NUM_THREADS, OPENBLAS_NUM_THREADS,
# NCCL_* and TESSERA_*. Running as root adds --allow-run-as-root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
np=""
hostfile=""
binary="$here/../build/bin/tessera"
threads=""
while (( $# )); do
  case $1 in
    -n) np=$2; shift 2 ;;
    -H) hostfile=$2; shift 2 ;;
    -b) binary=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) awk 'NR > 1 && /^#/ {print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "mpirun_train.sh: unknown option $1 (put tessera's own flags after --)" >&2; exit 2 ;;
  esac
done
if [[ -z $np ]]; then
  gpus=$(nvidia-smi --list-gpus 2>/dev/null | wc -l || true)
  np=$(( gpus > 0 ? gpus : 2 ))
fi
[[ -x $binary ]] || { echo "mpirun_train.sh: $binary not found; build first (cmake --build build)" >&2; exit 2; }
cores=$(nproc)
threads=${threads:-$(( cores / np > 0 ? cores / np : 1 ))}

args=(-np "$np" --bind-to none -x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS="$threads")
[[ -n $hostfile ]] && args+=(--hostfile "$hostfile")
(( np > cores )) && [[ -z $hostfile ]] && args+=(--oversubscribe)
[[ $(id -u) -eq 0 ]] && args+=(--allow-run-as-root)
for var in $(compgen -e); do
  [[ $var == NCCL_* || $var == TESSERA_* ]] && args+=(-x "$var")
done
exec mpirun "${args[@]}" "$binary" train "$@"
