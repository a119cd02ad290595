#!/usr/bin/env bash
# (h) A real Prometheus server scrapes a 2-rank `tessera train` run: the job (mpirun, tiny GPT-MTP
# on the CPU, metrics.port = P so the ranks serve on P and P + 1 on loopback) trains long enough
# to be scraped; `prometheus` (loopback, scrape every 1 s) must show tessera_train_* series of
# both ranks through its HTTP API within 40 s; `promtool check metrics` must pass on what a rank
# serves. Everything started here is stopped on exit. Sibling of prometheus_scrape.sh.
#   train_scrape.sh TESSERA METRICS_SERVE_BINARY     (the latter only picks free ports)
set -euo pipefail
tessera=${1:?usage: train_scrape.sh TESSERA METRICS_SERVE_BINARY}
serve=${2:?usage: train_scrape.sh TESSERA METRICS_SERVE_BINARY}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
for tool in prometheus promtool curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "train_scrape: $tool not found; run deploy/install-deps.sh" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-train-scrape-XXXXXX")
source "$here/prometheus_lib.sh"
fail() {
  echo "train_scrape: FAIL: $*" >&2
  echo "--- job output (last 30 lines):" >&2
  tail -n 30 "$work/job.txt" >&2 || true
  echo "--- prometheus log (last 20 lines):" >&2
  tail -n 20 "$work/prometheus.log" >&2 || true
  exit 1
}

source "$root/tests/mpi/tiny_corpus.sh"
make_tiny_shards "$tessera" "$work"

# 1. The job: two ranks serving on P and P + 1 (a free P whose neighbour is free too).
port=""
for _ in $(seq 20); do
  p=$("$serve" --free-port)
  if (( p < 65535 )) && ! (echo >"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null; then port=$p; break; fi
done
[[ -n $port ]] || fail "no pair of free ports"
# shellcheck disable=SC2046
"$root/tests/mpi/run_mpi.sh" 2 "$tessera" train $(tiny_gpt_args "$root" "$work") --set train.batch_size=2 \
  --set train.steps=1000000 --set log.every=20 --set metrics.port=$port --set metrics.address=127.0.0.1 \
  --out "$work/run" >"$work/job.txt" 2>&1 &
job=$!
pids+=("$job")
for r in 0 1; do
  for _ in $(seq 300); do
    curl -sf --max-time 2 "http://127.0.0.1:$((port + r))/metrics" >"$work/rank$r.prom" 2>/dev/null && break
    kill -0 "$job" 2>/dev/null || fail "the job ended before serving metrics"
    sleep 0.1
  done
  grep -q "^tessera_train_step{rank=\"$r\",world=\"2\"}" "$work/rank$r.prom" || fail "rank $r serves no tessera_train_step"
done
promtool check metrics <"$work/rank1.prom" || fail "promtool rejects what rank 1 serves"

# 2. Prometheus.
start_prometheus tessera_train "127.0.0.1:$port" "127.0.0.1:$((port + 1))"
echo "train_scrape: prometheus on 127.0.0.1:$prom_port scrapes the ranks on $port and $((port + 1))"

# 3. Both ranks' series, with values that show training ran (bounded wait).
checks=()
for r in 0 1; do
  checks+=("tessera_train_step{rank=\"$r\",world=\"2\"} > 0" "\"rank\":\"$r\"")
  checks+=("tessera_train_tokens_total{rank=\"$r\"} > 0" "\"rank\":\"$r\"")
  checks+=("tessera_train_allreduce_bytes_total{dtype=\"f32\",rank=\"$r\"} > 0" "\"rank\":\"$r\"")
  checks+=("tessera_train_step_seconds_count{rank=\"$r\"} > 0" "\"rank\":\"$r\"")
  checks+=("tessera_train_allreduce_seconds_count{rank=\"$r\"} > 0" "\"rank\":\"$r\"")
  checks+=("tessera_train_loss_scale{rank=\"$r\"}" "\"rank\":\"$r\"")
  checks+=("process_start_time_seconds{job=\"tessera_train\",rank=\"$r\"} > 0" "\"rank\":\"$r\"")
done
checks+=('count(up{job="tessera_train"} == 1)' ',"2"]')
wait_for_checks 40
echo "train_scrape: OK: $(query 'tessera_train_step')"
