#!/usr/bin/env bash
# `tessera train` rejects bad input with a non-zero exit and a message naming what was wrong.
source "$(dirname "$0")/lib.sh" "$@"

case $CASE in
unknown_key)
  run_expect_failure 'unknown config key `optim.lrr` in --set (did you mean `optim.lr`?)' \
    "$TESSERA" train --config "$EXAMPLE" --set optim.lrr=0.1 --out "$WORK/run"
  printf 'job = "classifier"\n[optim]\nlrr = 0.1\n' >"$WORK/typo.toml"
  run_expect_failure "unknown config key \`optim.lrr\` in $WORK/typo.toml:3" \
    "$TESSERA" train --config "$WORK/typo.toml" --out "$WORK/run"
  [[ ! -e $WORK/run/log.jsonl ]] || fail "a run with a bad key started training"
  ;;
unknown_flag)
  run_expect_failure "--bogus" "$TESSERA" train --config "$EXAMPLE" --out "$WORK/run" --bogus
  ;;
truncated_idx)
  need_dataset
  mkdir "$WORK/data"
  cp "$FMNIST"/*.gz "$WORK/data/"
  head -c 1000000 "$FMNIST/train-images-idx3-ubyte.gz" >"$WORK/data/train-images-idx3-ubyte.gz"
  run_expect_failure "$WORK/data/train-images-idx3-ubyte.gz is truncated" \
    "$TESSERA" train --config "$EXAMPLE" --set "data.dir=$WORK/data" --out "$WORK/run"
  ;;
missing_dataset)
  run_expect_failure "$WORK/nothing/train-images-idx3-ubyte.gz" \
    "$TESSERA" train --config "$EXAMPLE" --set "data.dir=$WORK/nothing" --out "$WORK/run"
  grep -q "dataset-fashion-mnist" "$WORK/stderr" || fail "the error does not name the package to install"
  ;;
cuda_without_gpu)
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then skip "this machine has a GPU"; fi
  run_expect_failure "device cuda:0 requested, but" \
    "$TESSERA" train --config "$EXAMPLE" --device cuda --out "$WORK/run"
  grep -Eq "no CUDA backend|no CUDA GPU is visible" "$WORK/stderr" || fail "unclear message: $(cat "$WORK/stderr")"
  ;;
existing_out)
  mkdir -p "$WORK/run/checkpoints/step_5"
  echo '{"step":5,"loss":1.0}' >"$WORK/run/log.jsonl"
  run_expect_failure "--out $WORK/run already holds a run" \
    "$TESSERA" train --config "$EXAMPLE" --out "$WORK/run"
  [[ $(cat "$WORK/run/log.jsonl") == '{"step":5,"loss":1.0}' ]] || fail "the earlier run's log was touched"
  ;;
help)
  "$TESSERA" --help >"$WORK/help.txt"
  grep -q "train" "$WORK/help.txt" || fail "tessera --help does not list train"
  "$TESSERA" train --help >"$WORK/train_help.txt"
  for needle in --config --set --out --resume --device log.jsonl "checkpoints/step_<N>" state.json \
      "test accuracy" "Jobs in this build (config key \`job\`): " classifier; do
    grep -qF -- "$needle" "$WORK/train_help.txt" || fail "tessera train --help does not mention $needle"
  done
  echo "ok"
  ;;
*) fail "unknown case" ;;
esac
