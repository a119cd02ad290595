#!/usr/bin/env bash
# Installs what is missing, configures, builds and runs every test; ends with ctest's summary
# and exits non-zero if anything failed. GPU tests (label gpu) skip on machines without a GPU;
# run tests/gpu/run.sh on a GPU machine for them.
#
#   ./tests/run.sh                 # everything
#   ./tests/run.sh -L unit         # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${TESSERA_CMAKE_ARGS:-}
ninja -C build -j"$jobs"
cd build
ctest --output-on-failure -j"$jobs" --timeout 1200 "$@"
