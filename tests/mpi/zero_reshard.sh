#!/usr/bin/env bash
# (g) A ZeRO-1 checkpoint written at 4 ranks resumes at 2 ranks (and at 3, whose shards cut the
# flat space at other places) with the same next-step losses, 1e-6 relative.
#   tests/mpi/zero_reshard.sh PROGRAM      (PROGRAM is tessera_mpi_zero_resume)
set -euo pipefail
program=$1
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$here/run_mpi.sh" 4 "$program" save "$dir"
ls "$dir/zero"
"$here/run_mpi.sh" 2 "$program" resume "$dir"
"$here/run_mpi.sh" 3 "$program" resume "$dir"
echo "PASS: 4-rank ZeRO checkpoint resumed at 2 and 3 ranks"
