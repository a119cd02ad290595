#!/usr/bin/env bash
# Data-parallel training through the real `tessera train` under mpirun, on the CPU, with a tiny
# GPT-MTP on a corpus the script writes itself (tiny_corpus.sh).
#   tests/mpi/train_dp.sh TESSERA CASE
# Cases (each well under a minute on 2 cores):
#   match       (a, b) 2 ranks x 4 and 4 ranks x 2 sequences give the parameters of 1 process x 8
#               after 10 steps (f32 wire, 1e-5 relative), with gradient accumulation at 2 ranks
#               (2 x 2 x 2); every multi-rank run ends by checking that all ranks hold bitwise
#               identical parameters (the job fails otherwise) and says so
#   bf16        (d) bf16 wire: within 2^-6 relative of the f32 wire's parameters, different from
#               them, and tessera_train_allreduce_bytes_total halves (metrics.dump files)
#   zero        (c, g) dist.zero=1 at 4 ranks matches plain data parallelism; a ZeRO checkpoint
#               written at 4 ranks (stop at step 5) resumes at 2 ranks and ends where the
#               straight run ends (1e-5); resuming it with dist.zero=0 is an error naming the key
#   fp16        train.precision=fp16 with an initial loss scale of 2^20: the first steps overflow,
#               are skipped on both ranks alike (skipped_steps_total, log lines with loss_scale),
#               then training proceeds with the halved scale; ranks stay identical
#   classifier  the classifier job: 2 ranks x 16 images match 1 process x 32 (Fashion-MNIST;
#               skipped without the dataset)
#   classifier_cnn  the cnn classifier: per-rank batch-norm statistics end with identical ranks;
#               dist.sync_batchnorm = true matches 1 process with the global batch
#               (per-rank statistics do not); the mlp rejects the key
#   kill|stop   (f) kill -9 / SIGSTOP of rank 1 mid-training ends the job non-zero within
#               dist.timeout_s + 30 s; kill: a message naming rank 1; stop: our watchdog's line,
#               naming rank 1 when it stopped outside a collective (see the case below)
# TESSERA_DP_MAX_RANKS (default 4) caps the ranks a case starts: on GPUs NCCL needs one GPU per
# rank, so tests/gpu/run_multi.sh sets it to the GPU count. With 2: match drops its 4-rank run,
# zero runs at 2 ranks and resumes at 1, kill/stop fault rank 1 of 2.
set -euo pipefail
TESSERA=${1:?usage: train_dp.sh TESSERA CASE}
CASE=${2:?usage: train_dp.sh TESSERA CASE}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera_dp_${CASE}.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# /usr/bin/python3 has numpy here (Debian); the GPU machine names its own (TESSERA_PYTHON).
compare="${TESSERA_PYTHON:-/usr/bin/python3} $here/compare_safetensors.py"
max_ranks=${TESSERA_DP_MAX_RANKS:-4}
(( max_ranks >= 2 )) || { echo "train_dp.sh: TESSERA_DP_MAX_RANKS must be at least 2" >&2; exit 2; }

fail() {
  echo "FAIL ($CASE): $*" >&2
  exit 1
}
mpi() {  # mpi NP ARGS...: tessera train on NP ranks
  local np=$1
  shift
  "$here/run_mpi.sh" "$np" "$TESSERA" train "$@"
}

source "$here/tiny_corpus.sh"
make_shards() { make_tiny_shards "$TESSERA" "$WORK"; }
# Tiny and deterministic: no dropout (masks would depend on how rows are split), clipping on,
# warmup + cosine, DeepSeek MTP depth 2.
common() { tiny_gpt_args "$root" "$WORK"; }
model() { echo "$WORK/$1/checkpoints/step_10/model.safetensors"; }
identical() {  # identical RUN NP: the run's output says all NP ranks ended bitwise identical
  grep -q "parameters bitwise identical on all $2 ranks" "$WORK/$1.txt" ||
    fail "$1: no line saying that all $2 ranks hold identical parameters: $(tail -5 "$WORK/$1.txt")"
}
bytes() {  # bytes RUN DTYPE: rank 0's allreduce_bytes_total for DTYPE
  sed -n "s/^tessera_train_allreduce_bytes_total{dtype=\"$2\",rank=\"0\",world=\"[0-9]*\"} //p" \
    "$WORK/$1/metrics/rank0.prom"
}

case $CASE in
match)
  make_shards
  # shellcheck disable=SC2046
  "$TESSERA" train $(common) --set train.batch_size=8 --out "$WORK/r1" >"$WORK/r1.txt"
  # shellcheck disable=SC2046
  mpi 2 $(common) --set train.batch_size=4 --out "$WORK/r2" >"$WORK/r2.txt" 2>&1 || fail "2 ranks: $(tail "$WORK/r2.txt")"
  declare -A ranks_of=([r2]=2 [r2a]=2)  # the runs compared with r1, and their rank counts
  runs=(r2 r2a)
  if (( max_ranks >= 4 )); then
    # shellcheck disable=SC2046
    mpi 4 $(common) --set train.batch_size=2 --out "$WORK/r4" >"$WORK/r4.txt" 2>&1 || fail "4 ranks: $(tail "$WORK/r4.txt")"
    ranks_of[r4]=4
    runs+=(r4)
  fi
  # shellcheck disable=SC2046
  mpi 2 $(common) --set train.batch_size=2 --set train.grad_accum=2 --out "$WORK/r2a" >"$WORK/r2a.txt" 2>&1 ||
    fail "2 ranks with accumulation: $(tail "$WORK/r2a.txt")"
  for run in "${runs[@]}"; do
    $compare "$(model r1)" "$(model $run)" --rtol 1e-5 || fail "$run differs from the 1-process run"
    identical $run "${ranks_of[$run]}"
  done
  last=${runs[-1]}
  [[ ! -e $WORK/$last/metrics ]] || fail "metrics.dump is off by default"
  grep -q '"step":10,"loss":' "$WORK/$last/log.jsonl" || fail "rank 0 wrote no training line at step 10"
  [[ $(grep -c '"step":10,"loss":' "$WORK/$last/log.jsonl") == 1 ]] || fail "more than one rank wrote log.jsonl"
  echo "ok: ${runs[*]} (ranks, a: 2 accumulation steps) match 1 process; ranks identical"
  ;;
bf16)
  make_shards
  for wire in fp32 bf16; do
    # shellcheck disable=SC2046
    mpi 2 $(common) --set train.batch_size=4 --set dist.allreduce_dtype=$wire --set metrics.dump=true \
      --out "$WORK/$wire" >"$WORK/$wire.txt" 2>&1 || fail "$wire wire: $(tail "$WORK/$wire.txt")"
    identical $wire 2
  done
  $compare "$(model fp32)" "$(model bf16)" --rtol 0.015625 || fail "the bf16 wire is further than 2^-6 from fp32"
  if $compare "$(model fp32)" "$(model bf16)" --bitwise >/dev/null; then
    fail "the bf16 wire gave the fp32 wire's parameters bit for bit: was bf16 used?"
  fi
  f32=$(bytes fp32 f32)
  bf16=$(bytes bf16 bf16)
  [[ -n $f32 && -n $bf16 && $bf16 -gt 0 ]] || fail "no allreduce byte counts in the metric dumps (f32 '$f32', bf16 '$bf16')"
  [[ $(bytes bf16 f32) == 0 ]] || fail "the bf16 run also sent f32 all-reduces: $(bytes bf16 f32) bytes"
  (( 2 * bf16 == f32 )) || fail "allreduce_bytes_total: f32 wire $f32 bytes, bf16 wire $bf16 bytes: not half"
  echo "ok: bf16 wire within 2^-6 of fp32; all-reduce bytes $f32 -> $bf16"
  ;;
zero)
  make_shards
  # n ranks x 8/n sequences, ZeRO against plain; the stopped n-rank checkpoint resumes at n/2.
  n=4 half=2
  (( max_ranks >= 4 )) || { n=2 half=1; }
  # shellcheck disable=SC2046
  mpi $n $(common) --set train.batch_size=$((8 / n)) --out "$WORK/plain" >"$WORK/plain.txt" 2>&1 || fail "plain: $(tail "$WORK/plain.txt")"
  # shellcheck disable=SC2046
  mpi $n $(common) --set train.batch_size=$((8 / n)) --set dist.zero=1 --out "$WORK/zero" >"$WORK/zero.txt" 2>&1 ||
    fail "zero: $(tail "$WORK/zero.txt")"
  $compare "$(model plain)" "$(model zero)" --rtol 1e-5 || fail "ZeRO-1 differs from plain data parallelism"
  identical zero $n
  [[ -f $WORK/zero/checkpoints/step_10/optimizer.zero/manifest.json ]] || fail "no sharded optimizer state"
  ls "$WORK/zero/checkpoints/step_10/optimizer.zero/shard-0000$((n - 1))-of-0000$n.safetensors" >/dev/null || fail "no shard of rank $((n - 1))"
  # Written at n ranks, stopped at step 5, resumed at n/2 ranks (same global batch).
  # shellcheck disable=SC2046
  mpi $n $(common) --set train.batch_size=$((8 / n)) --set dist.zero=1 --set train.stop_at=5 --out "$WORK/split" \
    >"$WORK/split.txt" 2>&1 || fail "zero stop: $(tail "$WORK/split.txt")"
  [[ -d $WORK/split/checkpoints/step_5/optimizer.zero ]] || fail "the stopped run left no ZeRO checkpoint"
  cp "$WORK/split/log.jsonl" "$WORK/split_log_at_5"
  # shellcheck disable=SC2046
  mpi $half $(common) --set train.batch_size=$((8 / half)) --set dist.zero=0 --out "$WORK/split" --resume "$WORK/split" \
    >"$WORK/wrong.txt" 2>&1 && fail "resuming a ZeRO checkpoint with dist.zero=0 succeeded"
  grep -q "dist.zero=1" "$WORK/wrong.txt" || fail "the error does not name dist.zero: $(cat "$WORK/wrong.txt")"
  cp "$WORK/split_log_at_5" "$WORK/split/log.jsonl"
  # shellcheck disable=SC2046
  mpi $half $(common) --set train.batch_size=$((8 / half)) --set dist.zero=1 --out "$WORK/split" --resume "$WORK/split" \
    >"$WORK/resumed.txt" 2>&1 || fail "resume at $half rank(s): $(tail "$WORK/resumed.txt")"
  grep -q "resumed from .*step_5 at step 5" "$WORK/resumed.txt" || fail "did not resume at step 5"
  cp "$WORK/resumed.txt" "$WORK/split.txt"
  (( half == 1 )) || identical split $half
  $compare "$(model zero)" "$(model split)" --rtol 1e-5 || fail "$n -> $half rank resume differs from the straight run"
  echo "ok: ZeRO-1 matches plain DP at $n ranks; a $n-rank ZeRO checkpoint resumed at $half"
  ;;
fp16)
  make_shards
  # shellcheck disable=SC2046
  mpi 2 $(common) --set train.batch_size=4 --set train.precision=fp16 --set amp.init_scale=1048576 \
    --set metrics.dump=true --out "$WORK/fp16" >"$WORK/fp16.txt" 2>&1 || fail "fp16: $(tail "$WORK/fp16.txt")"
  identical fp16 2
  skipped=$(grep -c '"skipped_step":true,"loss_scale":' "$WORK/fp16/log.jsonl" || true)
  (( skipped > 0 && skipped < 10 )) || fail "expected some but not all steps skipped, got $skipped: $(cat "$WORK/fp16/log.jsonl")"
  for r in 0 1; do
    n=$(sed -n "s/^tessera_train_skipped_steps_total{rank=\"$r\",world=\"2\"} //p" "$WORK/fp16/metrics/rank$r.prom")
    [[ $n == "$skipped" ]] || fail "rank $r counted $n skipped steps, the log $skipped"
  done
  grep -q '"step":10,"loss":.*"loss_scale":' "$WORK/fp16/log.jsonl" || fail "no training line with loss_scale at step 10"
  echo "ok: fp16 skipped $skipped overflowing steps on both ranks, then trained"
  ;;
classifier)
  [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST"; exit 77; }
  cls=(--config "$root/examples/classifier/fmnist_mlp.toml" --device cpu --set train.steps=10
       --set model.hidden=[32] --set log.every=5 --set eval.every=0 --set train.grad_clip=1.0
       --set schedule.warmup_steps=3)
  "$TESSERA" train "${cls[@]}" --set train.batch_size=32 --out "$WORK/c1" >"$WORK/c1.txt" 2>&1 ||
    fail "1 process: $(tail "$WORK/c1.txt")"
  mpi 2 "${cls[@]}" --set train.batch_size=16 --out "$WORK/c2" >"$WORK/c2.txt" 2>&1 || fail "2 ranks: $(tail "$WORK/c2.txt")"
  $compare "$(model c1)" "$(model c2)" --rtol 1e-5 || fail "2 ranks differ from 1 process"
  identical c2 2
  a1=$(sed -n 's/^test accuracy: //p' "$WORK/c1.txt")
  a2=$(sed -n 's/^test accuracy: //p' "$WORK/c2.txt")
  [[ -n $a1 && $a1 == "$a2" ]] || fail "test accuracy $a1 (1 process) vs $a2 (2 ranks)"
  echo "ok: classifier at 2 ranks matches 1 process (test accuracy $a2)"
  ;;
classifier_cnn)
  [[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST"; exit 77; }
  # SGD, not AdamW: Adam's first steps are sign(g), which turns float noise in near-zero
  # gradients into full steps and would hide the comparison.
  sed -e 's/name = "adamw"/name = "sgd"/' -e '/^betas/d' -e '/^weight_decay/d' \
    "$root/examples/classifier/fmnist_cnn.toml" >"$WORK/cnn_sgd.toml"
  cnn=(--config "$WORK/cnn_sgd.toml" --device cpu --set train.steps=4 --set "model.channels=[8, 8]"
       --set model.hidden=[16] --set log.every=2 --set eval.every=2 --set eval.batch_size=500
       --set train.grad_clip=0 --set schedule.warmup_steps=0 --set optim.lr=0.05)
  "$TESSERA" train "${cnn[@]}" --set train.batch_size=32 --out "$WORK/n1" >"$WORK/n1.txt" 2>&1 ||
    fail "1 process: $(tail "$WORK/n1.txt")"
  cnn_model() { echo "$WORK/$1/checkpoints/step_4/model.safetensors"; }
  # Per-rank statistics (the default): each rank normalises its own 16 images, rank 0's running
  # statistics are shared at evaluations and checkpoints, and the ranks end identical.
  mpi 2 "${cnn[@]}" --set train.batch_size=16 --out "$WORK/n2" >"$WORK/n2.txt" 2>&1 ||
    fail "2 ranks, per-rank statistics: $(tail "$WORK/n2.txt")"
  identical n2 2
  grep -q "batch-norm statistics per rank" "$WORK/n2.txt" || fail "no per-rank statistics line: $(head "$WORK/n2.txt")"
  # Synchronised: 2 ranks x 16 compute what 1 process x 32 does (f32 sums of squares against
  # the single process's batch norm: about 1e-4 of each tensor's scale after 4 steps, 5e-3 on
  # the near-zero batch-norm biases); per-rank statistics are far off (about 0.2).
  mpi 2 "${cnn[@]}" --set train.batch_size=16 --set dist.sync_batchnorm=true --out "$WORK/n3" >"$WORK/n3.txt" 2>&1 ||
    fail "2 ranks, synchronised: $(tail "$WORK/n3.txt")"
  identical n3 2
  grep -q "statistics of the global batch (2 synchronised layers)" "$WORK/n3.txt" ||
    fail "no synchronised-statistics line: $(head "$WORK/n3.txt")"
  $compare "$(cnn_model n1)" "$(cnn_model n3)" --rtol 2e-2 || fail "synchronised 2 ranks differ from 1 process"
  if $compare "$(cnn_model n1)" "$(cnn_model n2)" --rtol 2e-2 >/dev/null; then
    fail "per-rank statistics match 1 process: the comparison cannot tell them apart"
  fi
  # The mlp has no batch norm: the key is unknown there.
  if "$TESSERA" train --config "$root/examples/classifier/fmnist_mlp.toml" --set dist.sync_batchnorm=true \
    --set train.steps=1 --out "$WORK/m" >"$WORK/m.txt" 2>&1; then
    fail "the mlp accepted dist.sync_batchnorm"
  fi
  grep -q "unknown config key \`dist.sync_batchnorm\`" "$WORK/m.txt" || fail "mlp: $(tail -3 "$WORK/m.txt")"
  echo "ok: the cnn classifier at 2 ranks ends identical; synchronised batch norm matches 1 process"
  ;;
kill | stop)
  make_shards
  timeout_s=5
  # shellcheck disable=SC2046
  "$here/run_mpi.sh" $(( max_ranks < 3 ? max_ranks : 3 )) "$TESSERA" train $(common) --set train.batch_size=2 --set train.steps=100000 \
    --set log.every=1 --set dist.timeout_s=$timeout_s --out "$WORK/run" >"$WORK/job.txt" 2>&1 &
  job=$!
  # Wait (bounded) until training runs, then fault rank 1 (found by its MPI environment).
  for _ in $(seq 300); do
    grep -q '"step":3,' "$WORK/run/log.jsonl" 2>/dev/null && break
    kill -0 $job 2>/dev/null || fail "the job ended before step 3: $(tail "$WORK/job.txt")"
    sleep 0.1
  done
  victim=""
  for pid in $(pgrep -f "$TESSERA train" || true); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && victim=$pid
  done
  [[ -n $victim ]] || { kill $job; fail "rank 1's process not found"; }
  start_ms=$(( $(date +%s%N) / 1000000 ))  # no bc: the GPU machine has none
  if [[ $CASE == kill ]]; then kill -KILL "$victim"; else kill -STOP "$victim"; fi
  # The test's own guard: far beyond the limit checked below.
  for _ in $(seq 1200); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
  if kill -0 $job 2>/dev/null; then
    kill -KILL "$victim" 2>/dev/null || true
    pkill -KILL -P $job 2>/dev/null || true
    fail "the job still runs 120 s after rank 1 was faulted"
  fi
  rc=0
  wait $job || rc=$?
  elapsed_ms=$(( $(date +%s%N) / 1000000 - start_ms ))
  elapsed=$(printf '%d.%03d' $((elapsed_ms / 1000)) $((elapsed_ms % 1000)))
  kill -KILL "$victim" 2>/dev/null || true
  echo "--- job output (exit $rc, ${elapsed} s after the fault) ---"
  tail -20 "$WORK/job.txt"
  [[ $rc -ne 0 ]] || fail "the job exited 0 although rank 1 was faulted"
  (( elapsed_ms < (timeout_s + 30) * 1000 )) || fail "the job took ${elapsed} s; the limit is $((timeout_s + 30)) s"
  if [[ $CASE == stop ]]; then
    # Rank 1 stopped before entering a collective: the watchdog names it. Stopped inside one
    # (its arrival already sent), the watchdog can only say that the collective did not
    # complete although every rank arrived — it does not track completion per rank.
    grep -Eq "tessera: collective [a-z_]+ #[0-9]+ .*timed out after $timeout_s s on rank [0-9]+: (rank\(s\) 1 did not arrive|every rank arrived, but the collective did not complete)" \
      "$WORK/job.txt" || fail "no watchdog line naming rank 1 (or the stalled collective)"
  else
    grep -Eq "rank\(s\) 1 did not arrive|rank 1 with PID [0-9]+ .*(signal 9|Killed)|process rank 1 .*signal 9" \
      "$WORK/job.txt" || fail "no message naming rank 1"
  fi
  echo "ok: $CASE of rank 1 ended the job with exit $rc in ${elapsed} s, naming rank 1"
  ;;
*)
  fail "unknown case $CASE"
  ;;
esac
