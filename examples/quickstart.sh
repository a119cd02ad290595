#!/usr/bin/env bash
# Quickstart: from a fresh clone to a trained Fashion-MNIST classifier in one command.
#
#   ./examples/quickstart.sh            # run from anywhere; it works in the repository root
#
# 1. deploy/install-deps.sh installs whatever Debian/npm packages are missing (idempotent);
# 2. configures and builds into build/ (CUDA is used when nvcc is found; set
#    TESSERA_CMAKE_ARGS="-DTESSERA_CUDA=OFF" to skip it). Only the `tessera` program is built;
#    tests/run.sh builds and runs everything else;
# 3. trains the MLP of examples/classifier/fmnist_mlp.toml on the CPU (about a minute on two
#    cores) into runs/quickstart and shows where the log and checkpoints are.
set -euo pipefail
cd "$(dirname "$0")/.."

./deploy/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${TESSERA_CMAKE_ARGS:-}
ninja -C build tessera_cli

out=runs/quickstart
rm -rf "$out"
build/bin/tessera train --config examples/classifier/fmnist_mlp.toml --out "$out" --device cpu

echo
echo "Done. What the run wrote:"
echo "  $out/log.jsonl         training and evaluation lines (JSON), e.g. the last two:"
tail -n 2 "$out/log.jsonl" | sed 's/^/                         /'
echo "  $out/checkpoints/      $(ls "$out/checkpoints" | tr '\n' ' ')"
echo "  $out/config.toml       the effective configuration"
echo "Continue training with: build/bin/tessera train --config examples/classifier/fmnist_mlp.toml \\"
echo "                          --set train.steps=3000 --out $out --resume $out"
