#!/bin/sh
# Driver of the parity_dcgan test: runs the C++ program, then the PyTorch check, in a temp dir.
# Usage: run_dcgan_parity.sh DCGAN_PARITY_PROGRAM DCGAN_PARITY_PY
set -eu
program=$1
script=$2
python=${TESSERA_PARITY_PYTHON:-/usr/bin/python3}
if ! "$python" -c 'import torch, numpy' >/dev/null 2>&1; then
  echo "parity_dcgan: $python cannot import torch and numpy (Debian's python3-torch, python3-numpy);" \
       "run deploy/install-deps.sh" >&2
  exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/tessera_parity_dcgan.XXXXXX")
trap 'rm -rf "$dir"' EXIT
"$program" "$dir"
"$python" "$script" "$dir"
