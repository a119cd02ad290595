#!/usr/bin/env bash
# Checks that Tessera's exposition passes `promtool check metrics` (format and lint rules).
#   promtool_check.sh METRICS_SAMPLE_BINARY
set -euo pipefail
sample=${1:?usage: promtool_check.sh METRICS_SAMPLE_BINARY}

if ! command -v promtool >/dev/null 2>&1; then
  echo "promtool_check: promtool not found (Debian package prometheus); run deploy/install-deps.sh" >&2
  exit 1
fi

text=$("$sample")
printf '%s\n' "$text"
echo "--- promtool check metrics:"
# promtool exits non-zero on format errors and on lint problems.
printf '%s\n' "$text" | promtool check metrics
echo "promtool_check: OK"
