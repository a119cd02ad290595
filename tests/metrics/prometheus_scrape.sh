#!/usr/bin/env bash
# A real Prometheus server scrapes a Tessera /metrics endpoint: starts metrics_serve (port 0 on
# loopback), starts `prometheus` on a free loopback port with a temporary config (scrape every
# 1 s) and storage, then asks Prometheus' HTTP API until the scraped series appear with the
# expected values (at most 30 s). Everything it started is stopped on exit (trap).
#   prometheus_scrape.sh METRICS_SERVE_BINARY
set -euo pipefail
serve=${1:?usage: prometheus_scrape.sh METRICS_SERVE_BINARY}
for tool in prometheus curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "prometheus_scrape: $tool not found; run deploy/install-deps.sh" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-prometheus-XXXXXX")
source "$(dirname "$0")/prometheus_lib.sh"

fail() {
  echo "prometheus_scrape: FAIL: $*" >&2
  echo "--- metrics_serve output:" >&2
  cat "$work/serve.log" >&2 || true
  echo "--- prometheus log (last 40 lines):" >&2
  tail -n 40 "$work/prometheus.log" >&2 || true
  exit 1
}

# 1. The endpoint.
"$serve" --address 127.0.0.1 --port 0 --seconds 300 --port-file "$work/port" >"$work/serve.log" 2>&1 &
serve_pid=$!
pids+=("$serve_pid")
for _ in $(seq 100); do
  [[ -s "$work/port" ]] && break
  kill -0 "$serve_pid" 2>/dev/null || fail "metrics_serve exited before listening"
  sleep 0.1
done
[[ -s "$work/port" ]] || fail "metrics_serve wrote no port within 10 s"
target_port=$(cat "$work/port")
curl -sf --max-time 5 "http://127.0.0.1:$target_port/metrics" >/dev/null || fail "cannot fetch /metrics with curl"

# 2. Prometheus.
start_prometheus tessera "127.0.0.1:$target_port"
echo "prometheus_scrape: prometheus on 127.0.0.1:$prom_port scrapes 127.0.0.1:$target_port"

# 3. Wait (bounded) until every expected series is there.
checks=(
  'up{job="tessera"} == 1' '"job":"tessera"'
  'tessera_sample_tokens_total{dtype="bf16",rank="0"}' ',"42"]'
  'tessera_sample_queue_depth' '"path":"a\\b \"c\""'
  'tessera_sample_latency_seconds_count' ',"3"]'
  'tessera_sample_latency_seconds_bucket{le="0.5"}' ',"2"]'
  'tessera_sample_ticks_total > 0' '"__name__":"tessera_sample_ticks_total"'
  'process_start_time_seconds > 0' '"__name__":"process_start_time_seconds"'
)
wait_for_checks 30
echo "prometheus_scrape: all series scraped: $(query 'tessera_sample_tokens_total')"

# 4. The endpoint stops cleanly on SIGTERM.
kill -TERM "$serve_pid"
status=0
for _ in $(seq 100); do
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$serve_pid" 2>/dev/null && fail "metrics_serve did not stop within 10 s of SIGTERM"
wait "$serve_pid" || status=$?
[[ $status == 0 ]] || fail "metrics_serve exited with status $status after SIGTERM"
echo "prometheus_scrape: OK"
