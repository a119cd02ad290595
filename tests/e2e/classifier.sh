#!/usr/bin/env bash
# The classifier job end to end on the CPU.
#   train:  a short run writes log.jsonl (step/loss lines, eval lines), config.toml, a
#           checkpoint with model/optimizer safetensors and state.json, and prints
#           `test accuracy: 0.xxxx`.
#   resume: a straight run of 2N steps and a run stopped at N (train.stop_at) then resumed to
#           2N write identical log.jsonl files, bit for bit (losses, lr, grad norms, eval).
source "$(dirname "$0")/lib.sh" "$@"
need_dataset

# Small and fast, but every mechanism on: warmup + cosine, clipping, eval, partial log windows.
common=(--config "$EXAMPLE" --device cpu --set "model.hidden=[32]" --set train.batch_size=32
        --set schedule.warmup_steps=5 --set log.every=4 --set eval.every=10 --set eval.batch_size=2500)

case $CASE in
train)
  "$TESSERA" train "${common[@]}" --set train.steps=20 --set checkpoint.every=10 --out "$WORK/run" >"$WORK/out.txt"
  log=$WORK/run/log.jsonl
  [[ -s $log ]] || fail "no log.jsonl"
  grep -q '"step":4,"loss":' "$log" || fail "no training line for step 4 in log.jsonl: $(cat "$log")"
  [[ $(grep -c '"loss":' "$log") -eq 5 ]] || fail "expected 5 training lines (steps 4..20): $(cat "$log")"
  grep -q '"step":20,"test_accuracy":' "$log" || fail "no evaluation line at step 20: $(cat "$log")"
  for f in model.safetensors optimizer.safetensors state.json; do
    [[ -s $WORK/run/checkpoints/step_20/$f ]] || fail "checkpoint step_20 lacks $f"
    [[ -s $WORK/run/checkpoints/step_10/$f ]] || fail "checkpoint step_10 lacks $f"
  done
  grep -q '"step": 20' "$WORK/run/checkpoints/step_20/state.json" || fail "state.json lacks the step"
  ls "$WORK/run/checkpoints" | grep -q tmp && fail "a temporary checkpoint directory was left behind"
  [[ -s $WORK/run/config.toml ]] || fail "no config.toml"
  grep -Eq '^test accuracy: 0\.[0-9]{4}$' "$WORK/out.txt" || fail "no final 'test accuracy: 0.xxxx' line: $(tail -3 "$WORK/out.txt")"
  grep -q '^step 20/20 | loss ' "$WORK/out.txt" || fail "no progress line for step 20: $(cat "$WORK/out.txt")"
  echo "ok: $(tail -1 "$WORK/out.txt")"
  ;;
resume)
  "$TESSERA" train "${common[@]}" --set train.steps=30 --out "$WORK/straight" >"$WORK/straight.txt"
  "$TESSERA" train "${common[@]}" --set train.steps=30 --set train.stop_at=15 --out "$WORK/split" >"$WORK/first.txt"
  [[ -d $WORK/split/checkpoints/step_15 ]] || fail "the stopped run left no checkpoint at step 15"
  grep -q '"step":28' "$WORK/split/log.jsonl" && fail "the stopped run went past step 15"
  "$TESSERA" train "${common[@]}" --set train.steps=30 --out "$WORK/split" --resume "$WORK/split" >"$WORK/second.txt"
  grep -q "resumed from .*step_15 at step 15" "$WORK/second.txt" || fail "no resume message: $(head -5 "$WORK/second.txt")"
  [[ $(grep -c '"loss":' "$WORK/straight/log.jsonl") -ge 7 ]] || fail "straight run logged too little"
  if ! cmp -s "$WORK/straight/log.jsonl" "$WORK/split/log.jsonl"; then
    diff "$WORK/straight/log.jsonl" "$WORK/split/log.jsonl" >&2 || true
    fail "the resumed run's log differs from the straight run's"
  fi
  [[ $(grep '^test accuracy' "$WORK/straight.txt") == $(grep '^test accuracy' "$WORK/second.txt") ]] ||
    fail "final accuracies differ"
  echo "ok: $(wc -l <"$WORK/straight/log.jsonl") identical log lines; $(grep '^test accuracy' "$WORK/second.txt")"
  ;;
*) fail "unknown case" ;;
esac
