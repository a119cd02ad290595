#!/usr/bin/env bash
# Trains the three GAN configs (examples/gan/*.toml) on one GPU for a fixed wall time each, trains
# the Fashion-MNIST CNN classifier (examples/classifier/fmnist_cnn.toml), and prints one markdown
# table: steps reached, FID of each generator's latest checkpoint against the test split, and
# the real-vs-real floor. The last 8x8 sample grid of each run is copied to
# $OUT/gan_samples/<config>.png. tests/gpu/run.sh appends the table to tests/bench/RESULTS.md.
#
#   tests/bench/gan_train/run.sh [BUILD_DIR]
#   GAN_SECONDS=45 (training wall time per GAN), GAN_WIDTH=64 (g_width = d_width), GAN_DEVICE=cuda,
#   CNN_STEPS=1400 (classifier steps), FID_SAMPLES=10000, GAN_EVERY=200 (checkpoint and grid interval),
#   FMNIST_DIR=/usr/share/datasets/fashion-mnist (the GPU machine has no Debian package: the
#   IDX files travel with the sources there)
set -euo pipefail
cd "$(dirname "$0")/../../.."
build=${1:-build}
tessera=$build/bin/tessera
seconds=${GAN_SECONDS:-45}
width=${GAN_WIDTH:-64}
data=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
device=${GAN_DEVICE:-cuda}
cnn_steps=${CNN_STEPS:-1400}
samples=${FID_SAMPLES:-10000}
every=${GAN_EVERY:-200}
out=${OUT:-$(mktemp -d)}
runs=$out/gan_runs
mkdir -p "$runs" "$out/gan_samples"
[[ -f $data/train-images-idx3-ubyte.gz || -f $data/train-images-idx3-ubyte ]] ||
  { echo "gan_train: no Fashion-MNIST under $data (set FMNIST_DIR)" >&2; exit 1; }

"$tessera" train --config examples/classifier/fmnist_cnn.toml --device "$device" --set "data.dir=$data" \
  --set train.steps="$cnn_steps" --out "$runs/cnn" >"$runs/cnn.txt" 2>&1 || { tail -20 "$runs/cnn.txt" >&2; exit 1; }
accuracy=$(grep -oE 'test accuracy: [0-9.]+' "$runs/cnn.txt" | tail -1)

rows=()
for cfg in dcgan wgan_clip wgan_gp; do
  # Stopped by the clock: checkpoints (atomic) and grids every GAN_EVERY steps keep the latest state.
  timeout "$seconds" "$tessera" train --config "examples/gan/$cfg.toml" --device "$device" --set "data.dir=$data" \
    --set model.g_width="$width" --set model.d_width="$width" --set train.steps=1000000 --set sample.every="$every" \
    --set checkpoint.every="$every" --set checkpoint.keep=1 --set log.every=100 --out "$runs/$cfg" >"$runs/$cfg.txt" 2>&1 || true
  last=$( (ls -d "$runs/$cfg"/checkpoints/step_* 2>/dev/null || true) | sort -t_ -k2 -n | tail -1)
  if [[ -z $last ]]; then
    rows+=("| $cfg | no checkpoint in ${seconds} s | - | - |")
    tail -20 "$runs/$cfg.txt" >&2
    continue
  fi
  grid=$( (ls "$runs/$cfg"/samples/step_*.png 2>/dev/null || true) | sort -t_ -k2 -n | tail -1)
  [[ -n $grid ]] && cp "$grid" "$out/gan_samples/$cfg.png"
  "$tessera" eval fid --classifier "$runs/cnn" --generator "$last" --samples "$samples" --device "$device" --data-dir "$data" \
    >"$runs/$cfg.fid.txt" 2>&1 || { tail -20 "$runs/$cfg.fid.txt" >&2; }
  fid=$(sed -n 's/^fid: \([0-9.]*\).*/\1/p' "$runs/$cfg.fid.txt")
  floor=$(sed -n 's/^fid floor: \([0-9.]*\).*/\1/p' "$runs/$cfg.fid.txt")
  rows+=("| $cfg | $(basename "$last" | sed 's/step_//') | ${fid:--} | ${floor:--} |")
done

echo "A quality report, not a speed comparison (the DCGAN step against PyTorch is tests/bench/dcgan)."
echo "GAN configs on one GPU, ${seconds} s of training each, widths $width (g_width = d_width), other keys as in"
echo "examples/gan/*.toml; FID in the penultimate features of examples/classifier/fmnist_cnn.toml trained in the"
echo "same run (${accuracy:-test accuracy not found}), $samples generated images against the 10,000 test images."
echo
echo "| config | steps reached | FID | floor (train vs test) |"
echo "|---|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
