# Helpers for the e2e scripts (sourced). Usage in a script:
#   source "$(dirname "$0")/lib.sh" "$@"     # sets TESSERA (the program) and CASE, makes WORK
set -euo pipefail

TESSERA=${1:?usage: $0 TESSERA_BINARY CASE}
CASE=${2:?usage: $0 TESSERA_BINARY CASE}
EXAMPLE=examples/classifier/fmnist_mlp.toml
FMNIST=/usr/share/datasets/fashion-mnist
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera_e2e_${CASE}.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

fail() {
  echo "FAIL ($CASE): $*" >&2
  exit 1
}
skip() {
  echo "SKIP ($CASE): $*"
  exit 77
}
need_dataset() {
  [[ -f $FMNIST/train-images-idx3-ubyte.gz ]] || skip "Fashion-MNIST missing (install dataset-fashion-mnist)"
}
# run_expect_failure "needle" cmd...: the command must exit non-zero and print the needle on stderr.
run_expect_failure() {
  local needle=$1
  shift
  local rc=0
  "$@" >"$WORK/stdout" 2>"$WORK/stderr" || rc=$?
  [[ $rc -ne 0 ]] || fail "expected a non-zero exit from: $*"
  grep -qF -- "$needle" "$WORK/stderr" || fail "stderr lacks '$needle'; it was: $(cat "$WORK/stderr")"
  echo "ok: exit $rc, stderr: $(head -c 300 "$WORK/stderr")"
}
