#!/usr/bin/env bash
# Prepares the Brown corpus shards for examples/gpt_mtp (if missing) and trains tiny.toml on
# the CPU, then generates a few lines from the result.
#
#   examples/gpt_mtp/run.sh [--prepare-only] [OUT_DIR]
#
# Data (ignored by git): data/brown/brown.txt, data/brown/tok2048/ (tiny.toml) and
# data/brown/tok8192/ (small.toml), each with tok.json, train.bin, val.bin, manifest.json.
# TESSERA defaults to the first of build/bin/tessera, build-*/bin/tessera that exists.
set -euo pipefail
cd "$(dirname "$0")/../.."
prepare_only=0
if [[ ${1:-} == --prepare-only ]]; then prepare_only=1; shift; fi
out=${1:-runs/gpt_mtp_tiny}
if [[ -z ${TESSERA:-} ]]; then
  for candidate in build/bin/tessera build-*/bin/tessera; do
    [[ -x $candidate ]] && { TESSERA=$candidate; break; }
  done
fi
[[ -x ${TESSERA:-} ]] || { echo "run.sh: no tessera binary; build it (cmake -S . -B build -G Ninja && ninja -C build tessera_cli) or set TESSERA" >&2; exit 1; }

if [[ ! -f data/brown/brown.txt ]]; then
  "$TESSERA" data prepare brown --out data/brown
fi
for vocab in 2048 8192; do
  dir=data/brown/tok$vocab
  [[ -f $dir/train.bin && -f $dir/val.bin ]] && continue
  mkdir -p "$dir"
  "$TESSERA" tokenizer train --input data/brown/brown.txt --vocab "$vocab" --out "$dir/tok.json"
  "$TESSERA" data tokenize --tokenizer "$dir/tok.json" --input data/brown/brown.txt --out "$dir"
done
(( prepare_only )) && exit 0

if [[ -d $out/checkpoints ]]; then
  "$TESSERA" train --config examples/gpt_mtp/tiny.toml --out "$out" --resume "$out"
else
  "$TESSERA" train --config examples/gpt_mtp/tiny.toml --out "$out"
fi
"$TESSERA" generate --checkpoint "$out" --prompt "The jury said" --max-tokens 40
"$TESSERA" generate --checkpoint "$out" --prompt "The jury said" --max-tokens 40 --speculative --no-echo >/dev/null
