#!/usr/bin/env bash
# The gan job under mpirun on the CPU (Fashion-MNIST; skipped without it), tiny widths.
#   tests/mpi/train_gan.sh TESSERA
# DCGAN (batch norm in both networks, statistics per rank) at 2 ranks: the run ends by checking
# that both ranks hold bitwise-identical parameters and buffers, and says so; only rank 0 writes
# log.jsonl and samples; a 2-rank run stopped at step 3 and resumed at 2 ranks writes the
# straight 2-rank run's log and weights bit for bit. DCGAN with dist.sync_batchnorm = true at 2
# ranks matches 1 process with the global batch (the per-rank run does not), keeps the ranks
# identical without broadcasting the buffers, and resumes bitwise. WGAN-GP (gradient penalty
# through create_graph) at 2 ranks with the DDP reducer and with dist.zero=1 (ZeRO-1 Adam for
# both networks): identical ranks too.
set -euo pipefail
TESSERA=${1:?usage: train_gan.sh TESSERA}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
[[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST"; exit 77; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera_gan_dp.XXXXXX")
trap '[[ -n ${KEEP:-} ]] || rm -rf "$WORK"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
mpi() { "$here/run_mpi.sh" 2 "$TESSERA" train "$@"; }
tiny=(--device cpu --set model.latent=8 --set model.g_width=4 --set model.d_width=4 --set train.batch_size=4
      --set log.every=2 --set sample.every=3 --set train.steps=6 --set dist.timeout_s=120)
identical() {
  grep -q "parameters bitwise identical on all 2 ranks" "$WORK/$1.txt" ||
    fail "$1: no line saying that both ranks hold identical parameters: $(tail -5 "$WORK/$1.txt")"
}

dcgan=(--config "$root/examples/gan/dcgan.toml" "${tiny[@]}")
mpi "${dcgan[@]}" --out "$WORK/straight" >"$WORK/straight.txt" 2>&1 || fail "dcgan: $(tail "$WORK/straight.txt")"
identical straight
grep -q "data parallel: 2 rank(s)" "$WORK/straight.txt" || fail "the run did not say it is data parallel"
[[ $(grep -c '"step":6,' "$WORK/straight/log.jsonl") == 1 ]] || fail "not exactly one log line for step 6"
[[ -s $WORK/straight/samples/step_6.png ]] || fail "no sample grid"
mpi "${dcgan[@]}" --set train.stop_at=3 --out "$WORK/split" >"$WORK/split.txt" 2>&1 || fail "stop: $(tail "$WORK/split.txt")"
identical split
mpi "${dcgan[@]}" --out "$WORK/split" --resume "$WORK/split" >"$WORK/resumed.txt" 2>&1 ||
  fail "resume: $(tail "$WORK/resumed.txt")"
identical resumed
cmp -s "$WORK/straight/log.jsonl" "$WORK/split/log.jsonl" || fail "the resumed 2-rank log differs from the straight one"
for f in generator critic optimizer_g optimizer_d; do
  cmp -s "$WORK/straight/checkpoints/step_6/$f.safetensors" "$WORK/split/checkpoints/step_6/$f.safetensors" ||
    fail "$f.safetensors of the resumed 2-rank run differs"
done

# dist.sync_batchnorm: 2 ranks x 4 images train what 1 process x 8 trains (per-rank statistics do
# not: checked too, so the comparison can fail); the running statistics are not broadcast, so
# the identical-ranks check covers them; stop + resume is bitwise; at 1 rank it changes nothing.
compare=(/usr/bin/python3 "$here/compare_safetensors.py")
sync=("${dcgan[@]}" --set dist.sync_batchnorm=true)
mpi "${sync[@]}" --out "$WORK/sync" >"$WORK/sync.txt" 2>&1 || fail "sync_batchnorm: $(tail "$WORK/sync.txt")"
identical sync
grep -q "batch-norm statistics of the global batch (3 synchronised layers)" "$WORK/sync.txt" ||
  fail "the run did not say that its 3 batch norms are synchronised: $(grep "data parallel" "$WORK/sync.txt")"
"$TESSERA" train "${dcgan[@]}" --set train.batch_size=8 --out "$WORK/one" >"$WORK/one.txt" 2>&1 ||
  fail "1 process: $(tail "$WORK/one.txt")"
for f in generator critic; do
  "${compare[@]}" "$WORK/sync/checkpoints/step_6/$f.safetensors" "$WORK/one/checkpoints/step_6/$f.safetensors" \
    --rtol 1e-4 || fail "$f: 2 ranks with synchronised batch norm differ from 1 process with the global batch"
  ! "${compare[@]}" "$WORK/straight/checkpoints/step_6/$f.safetensors" "$WORK/one/checkpoints/step_6/$f.safetensors" \
    --rtol 1e-4 >/dev/null || fail "$f: per-rank batch norm matches 1 process too, so the comparison proves nothing"
done
mpi "${sync[@]}" --set train.stop_at=3 --out "$WORK/sync_split" >"$WORK/sync_split.txt" 2>&1 ||
  fail "sync stop: $(tail "$WORK/sync_split.txt")"
mpi "${sync[@]}" --out "$WORK/sync_split" --resume "$WORK/sync_split" >"$WORK/sync_resumed.txt" 2>&1 ||
  fail "sync resume: $(tail "$WORK/sync_resumed.txt")"
identical sync_resumed
cmp -s "$WORK/sync/log.jsonl" "$WORK/sync_split/log.jsonl" || fail "the resumed sync_batchnorm log differs"
for f in generator critic; do
  "${compare[@]}" "$WORK/sync/checkpoints/step_6/$f.safetensors" "$WORK/sync_split/checkpoints/step_6/$f.safetensors" \
    --bitwise >/dev/null || fail "$f.safetensors of the resumed sync_batchnorm run differs"
done
"$here/run_mpi.sh" 1 "$TESSERA" train "${sync[@]}" --set train.batch_size=8 --out "$WORK/sync_np1" \
  >"$WORK/sync_np1.txt" 2>&1 || fail "sync_batchnorm at 1 rank: $(tail "$WORK/sync_np1.txt")"
for f in generator critic; do
  "${compare[@]}" "$WORK/sync_np1/checkpoints/step_6/$f.safetensors" "$WORK/one/checkpoints/step_6/$f.safetensors" \
    --bitwise >/dev/null || fail "$f: sync_batchnorm at 1 rank is not plain batch norm bit for bit"
done

mpi --config "$root/examples/gan/wgan_gp.toml" "${tiny[@]}" --set gan.n_critic=2 \
  --out "$WORK/gp_ddp" >"$WORK/gp_ddp.txt" 2>&1 || fail "wgan_gp: $(tail "$WORK/gp_ddp.txt")"
identical gp_ddp
grep -q "DDP buckets" "$WORK/gp_ddp.txt" || fail "the plain WGAN-GP run did not use the DDP reducer"
mpi --config "$root/examples/gan/wgan_gp.toml" "${tiny[@]}" --set gan.n_critic=2 --set dist.zero=1 \
  --out "$WORK/gp" >"$WORK/gp.txt" 2>&1 || fail "wgan_gp zero: $(tail "$WORK/gp.txt")"
identical gp
grep -q "ZeRO-1" "$WORK/gp.txt" || fail "the WGAN-GP run did not use ZeRO-1"
[[ -d $WORK/gp/checkpoints/step_6/optimizer_g.zero && -d $WORK/gp/checkpoints/step_6/optimizer_d.zero ]] ||
  fail "no sharded optimizer state for both networks"
grep -Eq '"gp":[0-9]' "$WORK/gp/log.jsonl" || fail "no gp in the WGAN-GP log"
echo "ok: 2-rank DCGAN (identical ranks, bitwise resume; synchronised batch norm = 1 process) and 2-rank WGAN-GP" \
  "(DDP and ZeRO-1)"
