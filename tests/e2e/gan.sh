#!/usr/bin/env bash
# The gan job, `tessera sample` and `tessera eval fid` end to end on the CPU, with tiny widths.
#   dcgan | wgan_clip | wgan_gp: a run of examples/gan/<config>.toml (shrunk) writes sample
#             grids (PNG), log lines with the loss's keys and a checkpoint with both networks and
#             both optimizers; a run stopped half-way and resumed writes the straight run's
#             log.jsonl and weights bit for bit.
#   sample:   `tessera sample` writes a 242x242 PNG grid; the same seed gives the same file, a
#             different seed a different one; a classifier checkpoint is refused by name, and
#             `tessera eval fid` refuses an MLP classifier.
#   fid:      `tessera eval fid` with a tiny CNN classifier and a tiny generator prints the FID
#             and the train-vs-test floor.
#   bad_config: keys of another loss, batch norm with WGAN-GP, a dist.sync_batchnorm that is
#             not a boolean and a truncated IDX file are errors naming the key or the file.
source "$(dirname "$0")/lib.sh" "$@"
need_dataset

tiny=(--device cpu --set model.latent=8 --set model.g_width=4 --set model.d_width=4 --set train.batch_size=8
      --set log.every=2 --set sample.every=3)

png_ok() {  # png_ok FILE: a PNG signature and an IHDR of WxH (args 2, 3)
  [[ -s $1 ]] || fail "no PNG at $1"
  [[ $(head -c 8 "$1" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$1 is not a PNG"
  local wh
  wh=$(od -An -tu1 -j16 -N8 "$1" | awk '{print $3*256+$4 "x" $7*256+$8}')
  [[ $wh == "$2x$3" ]] || fail "$1 is $wh, expected $2x$3"
}

train_and_resume() {  # train_and_resume CONFIG KEYS...
  local config=examples/gan/$1.toml
  shift
  local args=(--config "$config" "${tiny[@]}" --set train.steps=6 --set gan.n_critic=2)
  "$TESSERA" train "${args[@]}" --out "$WORK/straight" >"$WORK/straight.txt"
  png_ok "$WORK/straight/samples/step_3.png" 242 242
  png_ok "$WORK/straight/samples/step_6.png" 242 242
  local log=$WORK/straight/log.jsonl
  [[ $(grep -c '"step":' "$log") -eq 3 ]] || fail "expected 3 log lines (steps 2, 4, 6): $(cat "$log")"
  for key in "$@"; do
    grep -Eq "\"$key\":-?[0-9]" "$log" || fail "log.jsonl lacks $key: $(cat "$log")"
  done
  for f in generator.safetensors critic.safetensors optimizer_g.safetensors optimizer_d.safetensors state.json; do
    [[ -s $WORK/straight/checkpoints/step_6/$f ]] || fail "checkpoint step_6 lacks $f"
  done
  grep -q '"d_width": 4' "$WORK/straight/checkpoints/step_6/state.json" || fail "state.json lacks the model"
  "$TESSERA" train "${args[@]}" --set train.stop_at=3 --out "$WORK/split" >/dev/null
  [[ -d $WORK/split/checkpoints/step_3 ]] || fail "the stopped run left no checkpoint at step 3"
  "$TESSERA" train "${args[@]}" --out "$WORK/split" --resume "$WORK/split" >"$WORK/second.txt"
  grep -q "resumed from .*step_3 at step 3" "$WORK/second.txt" || fail "no resume message: $(head -5 "$WORK/second.txt")"
  if ! cmp -s "$log" "$WORK/split/log.jsonl"; then
    diff "$log" "$WORK/split/log.jsonl" >&2 || true
    fail "the resumed run's log differs from the straight run's"
  fi
  for f in generator critic optimizer_g optimizer_d; do
    cmp -s "$WORK/straight/checkpoints/step_6/$f.safetensors" "$WORK/split/checkpoints/step_6/$f.safetensors" ||
      fail "$f.safetensors of the resumed run differs from the straight run's"
  done
  cmp -s "$WORK/straight/samples/step_6.png" "$WORK/split/samples/step_6.png" || fail "the final sample grids differ"
  echo "ok: $(tail -1 "$log")"
}

case $CASE in
dcgan) train_and_resume dcgan loss_d loss_g ;;
wgan_clip) train_and_resume wgan_clip loss_d loss_g wasserstein ;;
wgan_gp) train_and_resume wgan_gp loss_d loss_g wasserstein gp ;;
sample)
  "$TESSERA" train --config examples/gan/dcgan.toml "${tiny[@]}" --set train.steps=2 --out "$WORK/run" >/dev/null
  "$TESSERA" sample --checkpoint "$WORK/run" --out "$WORK/a.png" --seed 3 >"$WORK/sample.txt"
  grep -q "wrote $WORK/a.png: 64 samples" "$WORK/sample.txt" || fail "no summary line: $(cat "$WORK/sample.txt")"
  png_ok "$WORK/a.png" 242 242
  "$TESSERA" sample --checkpoint "$WORK/run/checkpoints/step_2" --out "$WORK/b.png" --seed 3 >/dev/null
  cmp -s "$WORK/a.png" "$WORK/b.png" || fail "the same seed gave different grids"
  "$TESSERA" sample --checkpoint "$WORK/run" --out "$WORK/e.png" --seed 4 >/dev/null
  cmp -s "$WORK/a.png" "$WORK/e.png" && fail "seeds 3 and 4 gave the same grid"
  "$TESSERA" sample --checkpoint "$WORK/run" --out "$WORK/c.png" --seed 4 --count 16 --columns 4 >/dev/null
  png_ok "$WORK/c.png" 122 122
  "$TESSERA" train --config "$EXAMPLE" --device cpu --set "model.hidden=[8]" --set train.steps=1 --set schedule.warmup_steps=0 \
    --set eval.batch_size=5000 --out "$WORK/cls" >/dev/null
  run_expect_failure 'does not describe a model of job "gan" (job "classifier")' \
    "$TESSERA" sample --checkpoint "$WORK/cls" --out "$WORK/d.png"
  run_expect_failure 'FID needs the CNN classifier' \
    "$TESSERA" eval fid --classifier "$WORK/cls" --generator "$WORK/run" --samples 10
  echo "ok"
  ;;
fid)
  "$TESSERA" train --config examples/classifier/fmnist_cnn.toml --device cpu --set "model.channels=[2, 4]" \
    --set "model.hidden=[8]" --set train.steps=4 --set eval.batch_size=5000 --set schedule.warmup_steps=1 \
    --out "$WORK/cnn" >/dev/null
  "$TESSERA" train --config examples/gan/wgan_gp.toml "${tiny[@]}" --set train.steps=2 --set gan.n_critic=1 \
    --out "$WORK/gan" >/dev/null
  "$TESSERA" eval fid --classifier "$WORK/cnn" --generator "$WORK/gan" --samples 300 --batch 150 >"$WORK/fid.txt"
  grep -Eq '^fid: [0-9]+\.[0-9]{4} \(generated vs test, 300 samples\)$' "$WORK/fid.txt" || fail "no fid line: $(cat "$WORK/fid.txt")"
  grep -Eq '^fid floor: [0-9]+\.[0-9]{4} \(train vs test, 300 samples\)$' "$WORK/fid.txt" || fail "no floor line: $(cat "$WORK/fid.txt")"
  fid=$(sed -n 's/^fid: \([0-9.]*\) .*/\1/p' "$WORK/fid.txt")
  floor=$(sed -n 's/^fid floor: \([0-9.]*\) .*/\1/p' "$WORK/fid.txt")
  (( $(echo "$fid > $floor" | bc) )) || fail "an untrained generator scored $fid, not above the floor $floor"
  echo "ok: $(tr '\n' ' ' <"$WORK/fid.txt")"
  ;;
bad_config)
  run_expect_failure 'unknown config key `gan.clip`' \
    "$TESSERA" train --config examples/gan/dcgan.toml --set gan.clip=0.1 --out "$WORK/run"
  run_expect_failure 'config key `model.d_norm` = "batch" does not go with `gan.loss` = "wgan_gp"' \
    "$TESSERA" train --config examples/gan/wgan_gp.toml --set model.d_norm=batch --out "$WORK/run"
  run_expect_failure 'config key `gan.loss` is "hinge"' \
    "$TESSERA" train --config examples/gan/dcgan.toml --set gan.loss=hinge --out "$WORK/run"
  run_expect_failure 'config key `dist.sync_batchnorm` (--set) must be a boolean (true or false), got integer 1' \
    "$TESSERA" train --config examples/gan/dcgan.toml --set dist.sync_batchnorm=1 --out "$WORK/run"
  printf 'job = "gan"\n[train]\nsteps = 2\n[dist]\nsync_batchnorm = "yes"\n' >"$WORK/sync.toml"
  run_expect_failure "config key \`dist.sync_batchnorm\` ($WORK/sync.toml:5) must be a boolean (true or false), got string \"yes\"" \
    "$TESSERA" train --config "$WORK/sync.toml" --out "$WORK/run"
  [[ ! -e $WORK/run/log.jsonl ]] || fail "a run with a bad config started training"
  mkdir "$WORK/data"
  cp "$FMNIST"/*.gz "$WORK/data/"
  head -c 1000000 "$FMNIST/train-images-idx3-ubyte.gz" >"$WORK/data/train-images-idx3-ubyte.gz"
  run_expect_failure "$WORK/data/train-images-idx3-ubyte.gz is truncated" \
    "$TESSERA" train --config examples/gan/dcgan.toml --set "data.dir=$WORK/data" --out "$WORK/run2"
  echo "ok"
  ;;
*) fail "unknown case" ;;
esac
