# Sourced by the tests that train a tiny GPT-MTP (tests/e2e/gpt_mtp.sh, tests/mpi/train_dp.sh,
# tests/metrics/train_scrape.sh):
#   make_tiny_shards TESSERA DIR   writes DIR/corpus.txt (240 documents of deterministic sentences
#                                  over 30 words, as tests/e2e/gpt_mtp.sh) and DIR/shards/
#                                  (BPE vocabulary 320, train.bin, val.bin)
#   tiny_gpt_args ROOT DIR         prints `tessera train` flags for a 2-layer width-32 model
#                                  with 2 DeepSeek MTP depths on those shards, 10 steps, no dropout,
#                                  on TESSERA_TEST_DEVICE (default cpu)
make_tiny_shards() {
  local tessera=$1 dir=$2
  local words=(the a jury said court county city election board state report new old men women
               voted asked friday monday program plan money tax school public member year day)
  RANDOM=7
  : >"$dir/corpus.txt"
  for ((d = 0; d < 240; d++)); do
    for ((l = 0; l < 4; l++)); do
      local line=""
      for ((w = 0; w < 12; w++)); do line+="${words[RANDOM % ${#words[@]}]} "; done
      echo "${line% }." >>"$dir/corpus.txt"
    done
    echo >>"$dir/corpus.txt"
  done
  mkdir -p "$dir/shards"
  "$tessera" tokenizer train --input "$dir/corpus.txt" --vocab 320 --out "$dir/shards/tok.json" >/dev/null
  "$tessera" data tokenize --tokenizer "$dir/shards/tok.json" --input "$dir/corpus.txt" --out "$dir/shards" \
    --val-fraction 0.1 >/dev/null
}

tiny_gpt_args() {
  local root=$1 dir=$2
  # TESSERA_TEST_DEVICE=cuda (tests/gpu/run_multi.sh): the same runs on GPUs, in f32 so that the
  # 1e-5 comparisons with a one-process run still hold.
  local device=${TESSERA_TEST_DEVICE:-cpu}
  echo --config "$root/examples/gpt_mtp/tiny.toml" --device "$device" --set "data.dir=$dir/shards"
  [[ $device == cpu ]] || echo --set train.precision=f32
  echo --set model.vocab_size=320 --set model.dim=32 --set model.n_layers=2 --set model.n_heads=4
  echo --set model.n_kv_heads=2 --set model.context=32 --set model.mtp_depth=2 --set train.steps=10
  echo --set log.every=5 --set eval.every=0 --set eval.max_batches=2 --set schedule.warmup_steps=3
}
