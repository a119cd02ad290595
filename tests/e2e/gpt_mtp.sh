#!/usr/bin/env bash
# The gpt_mtp job and `tessera generate` end to end on the CPU, on a small corpus the script
# writes itself (deterministic sentences), tokenized with the real verbs.
#   train:         a short run of examples/gpt_mtp/tiny.toml (shrunk) writes training lines,
#                  evaluation lines with val_loss, val_loss_mtp and mtp_accuracy (lists, one
#                  entry per depth), checkpoints and the run's tokenizer copy.
#   resume:        a straight run of 2N steps and a run stopped at N, then resumed, write
#                  identical log.jsonl files, bit for bit (so the loss at step 2N is equal).
#   bad_config:    wrong values and misspelt keys are errors naming the key.
#   missing_data:  the error names the missing shard and the commands that create it.
#   corrupt_shard: a truncated train.bin is an error naming the file.
#   generate:      text from the checkpoint, greedy and sampled; --speculative gives the same
#                  tokens as greedy and reports an acceptance rate.
source "$(dirname "$0")/lib.sh" "$@"

CONFIG=examples/gpt_mtp/tiny.toml

# A corpus of 240 short documents from a small vocabulary, and its shards (vocab 320), as the
# MPI tests use it.
source "$(dirname "$0")/../mpi/tiny_corpus.sh"
make_shards() { make_tiny_shards "$TESSERA" "$WORK"; }

# Small and fast, every mechanism on: DeepSeek MTP depth 2, warmup + cosine, clipping, gradient
# accumulation, dropout, periodic eval and log windows that end between checkpoints.
common() {
  echo --config "$CONFIG" --device cpu --set "data.dir=$WORK/shards" --set model.vocab_size=320
  echo --set model.dim=32 --set model.n_layers=2 --set model.n_heads=4 --set model.n_kv_heads=2
  echo --set model.context=32 --set model.mtp_depth=2 --set model.dropout=0.1 --set train.batch_size=4
  echo --set train.grad_accum=2 --set schedule.warmup_steps=3 --set log.every=3 --set eval.every=4
  echo --set eval.max_batches=3
}

case $CASE in
train)
  make_shards
  # shellcheck disable=SC2046
  "$TESSERA" train $(common) --set train.steps=8 --set checkpoint.every=4 --out "$WORK/run" >"$WORK/out.txt"
  log=$WORK/run/log.jsonl
  [[ -s $log ]] || fail "no log.jsonl"
  grep -q '"step":3,"loss":' "$log" || fail "no training line at step 3: $(cat "$log")"
  grep -Eq '"loss_mtp":\[[^],]+,[^],]+\]' "$log" || fail "training lines lack loss_mtp with 2 depths: $(cat "$log")"
  for step in 0 4 8; do
    grep -Eq "\"step\":$step,\"val_loss\":[0-9.]+,\"val_accuracy\":[0-9.e-]+,\"val_loss_mtp\":\[[0-9.]+,[0-9.]+\],\"mtp_accuracy\":\[[0-9.e-]+,[0-9.e-]+\]" "$log" ||
      fail "no evaluation line with val_loss, val_loss_mtp and mtp_accuracy lists at step $step: $(cat "$log")"
  done
  for f in model.safetensors optimizer.safetensors state.json; do
    [[ -s $WORK/run/checkpoints/step_8/$f ]] || fail "checkpoint step_8 lacks $f"
    [[ -s $WORK/run/checkpoints/step_4/$f ]] || fail "checkpoint step_4 lacks $f"
  done
  grep -q '"loader"' "$WORK/run/checkpoints/step_8/state.json" || fail "state.json lacks the loader position"
  grep -q '"mtp_kind": "deepseek"' "$WORK/run/checkpoints/step_8/state.json" || fail "state.json lacks the model"
  cmp -s "$WORK/run/tokenizer.json" "$WORK/shards/tok.json" || fail "the run has no copy of the tokenizer"
  grep -q '^step 8/8 | loss .* tokens/s .* ETA' "$WORK/out.txt" || fail "no progress line for step 8: $(cat "$WORK/out.txt")"
  grep -q '^final val_loss .*depth 2: val_loss .* mtp_accuracy' "$WORK/out.txt" || fail "no final summary line"
  echo "ok: $(tail -1 "$WORK/out.txt")"
  ;;
resume)
  make_shards
  # shellcheck disable=SC2046
  "$TESSERA" train $(common) --set train.steps=10 --out "$WORK/straight" >"$WORK/straight.txt"
  # shellcheck disable=SC2046
  "$TESSERA" train $(common) --set train.steps=10 --set train.stop_at=5 --out "$WORK/split" >"$WORK/first.txt"
  [[ -d $WORK/split/checkpoints/step_5 ]] || fail "the stopped run left no checkpoint at step 5"
  # shellcheck disable=SC2046
  "$TESSERA" train $(common) --set train.steps=10 --out "$WORK/split" --resume "$WORK/split" >"$WORK/second.txt"
  grep -q "resumed from .*step_5 at step 5" "$WORK/second.txt" || fail "no resume message: $(head -5 "$WORK/second.txt")"
  grep -q '"step":10,"loss":' "$WORK/straight/log.jsonl" || fail "the straight run logged no loss at step 10"
  if ! cmp -s "$WORK/straight/log.jsonl" "$WORK/split/log.jsonl"; then
    diff "$WORK/straight/log.jsonl" "$WORK/split/log.jsonl" >&2 || true
    fail "the resumed run's log differs from the straight run's"
  fi
  echo "ok: $(grep '"step":10,"loss"' "$WORK/split/log.jsonl")"
  ;;
bad_config)
  make_shards
  # shellcheck disable=SC2046
  run_expect_failure 'config key `model.n_heads`=7 does not divide `model.dim`=32' \
    "$TESSERA" train $(common) --set model.n_heads=7 --set model.n_kv_heads=0 --out "$WORK/run"
  # shellcheck disable=SC2046
  run_expect_failure 'config key `model.mlp` is "relu": unknown activation' \
    "$TESSERA" train $(common) --set model.mlp=relu --out "$WORK/run"
  # shellcheck disable=SC2046
  run_expect_failure 'config key `model.mtp_kind` is "eagle"' \
    "$TESSERA" train $(common) --set model.mtp_kind=eagle --out "$WORK/run"
  # shellcheck disable=SC2046
  run_expect_failure 'unknown config key `model.n_layer` in --set (did you mean `model.n_layers`?)' \
    "$TESSERA" train $(common) --set model.n_layer=3 --out "$WORK/run"
  [[ ! -e $WORK/run/log.jsonl ]] || fail "a run with a bad config started training"
  ;;
missing_data)
  run_expect_failure "$WORK/nothing/train.bin does not exist" \
    "$TESSERA" train --config "$CONFIG" --set "data.dir=$WORK/nothing" --out "$WORK/run"
  grep -q "tessera data tokenize" "$WORK/stderr" || fail "the error does not say how to create the shards"
  ;;
corrupt_shard)
  make_shards
  size=$(stat -c %s "$WORK/shards/train.bin")
  head -c $((size - 7)) "$WORK/shards/train.bin" >"$WORK/cut.bin" && mv "$WORK/cut.bin" "$WORK/shards/train.bin"
  # shellcheck disable=SC2046
  run_expect_failure "$WORK/shards/train.bin" "$TESSERA" train $(common) --set train.steps=2 \
    --set schedule.warmup_steps=1 --out "$WORK/run"
  ;;
generate)
  make_shards
  # shellcheck disable=SC2046
  "$TESSERA" train $(common) --set model.dropout=0 --set train.steps=30 --set eval.every=0 --out "$WORK/run" >/dev/null
  "$TESSERA" generate --checkpoint "$WORK/run" --prompt "the jury said" --max-tokens 12 --ignore-eos \
    >"$WORK/greedy.txt" 2>"$WORK/greedy.err"
  grep -q '^the jury said' "$WORK/greedy.txt" || fail "the output does not start with the prompt: $(cat "$WORK/greedy.txt")"
  [[ $(wc -c <"$WORK/greedy.txt") -gt 20 ]] || fail "no text generated: $(cat "$WORK/greedy.txt")"
  grep -q "generated 12 tokens" "$WORK/greedy.err" || fail "no statistics line: $(cat "$WORK/greedy.err")"
  "$TESSERA" generate --checkpoint "$WORK/run" --prompt "the jury said" --max-tokens 24 --ignore-eos --print-ids \
    >"$WORK/greedy.ids" 2>/dev/null
  "$TESSERA" generate --checkpoint "$WORK/run/checkpoints/step_30" --prompt "the jury said" --max-tokens 24 \
    --ignore-eos --print-ids --speculative >"$WORK/spec.ids" 2>"$WORK/spec.err"
  cmp -s "$WORK/greedy.ids" "$WORK/spec.ids" || fail "speculative ($(cat "$WORK/spec.ids")) != greedy ($(cat "$WORK/greedy.ids"))"
  grep -q "acceptance rate" "$WORK/spec.err" || fail "no acceptance rate: $(cat "$WORK/spec.err")"
  "$TESSERA" generate --checkpoint "$WORK/run" --prompt "the jury said" --max-tokens 12 --temperature 0.9 \
    --top-p 0.9 --seed 3 >"$WORK/a.txt" 2>/dev/null
  "$TESSERA" generate --checkpoint "$WORK/run" --prompt "the jury said" --max-tokens 12 --temperature 0.9 \
    --top-p 0.9 --seed 3 >"$WORK/b.txt" 2>/dev/null
  cmp -s "$WORK/a.txt" "$WORK/b.txt" || fail "sampling with one seed is not reproducible"
  run_expect_failure "no checkpoint found" "$TESSERA" generate --checkpoint "$WORK/nothing" --prompt hi
  echo "ok: $(cat "$WORK/greedy.txt"); $(tail -1 "$WORK/spec.err")"
  ;;
*) fail "unknown case" ;;
esac
