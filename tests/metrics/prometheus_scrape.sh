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
pids=()

# Stops one process: SIGTERM, up to 10 s for it to go, then SIGKILL.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do stop_pid "$pid"; done
  rm -rf "$work"
}
trap cleanup EXIT

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

# 2. Prometheus (a free port can be taken between asking and binding: up to 3 tries).
cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: tessera
    static_configs:
      - targets: ['127.0.0.1:$target_port']
YML
ready=0
for attempt in 1 2 3; do
  prom_port=$("$serve" --free-port)
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
  prom_pid=$!
  pids+=("$prom_pid")
  for _ in $(seq 150); do
    if curl -sf --max-time 2 "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1; then
      ready=1
      break
    fi
    kill -0 "$prom_pid" 2>/dev/null || break
    sleep 0.2
  done
  [[ $ready == 1 ]] && break
  echo "prometheus_scrape: prometheus did not become ready on port $prom_port (attempt $attempt)" >&2
  stop_pid "$prom_pid"
done
[[ $ready == 1 ]] || fail "prometheus never became ready"
echo "prometheus_scrape: prometheus on 127.0.0.1:$prom_port scrapes 127.0.0.1:$target_port"

query() {
  curl -sf --max-time 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" || true
}

# 3. Wait (bounded) until every expected series is there. Each check: a PromQL query and a
# fixed string its JSON answer must contain (Prometheus answers compact JSON).
checks=(
  'up{job="tessera"} == 1' '"job":"tessera"'
  'tessera_sample_tokens_total{dtype="bf16",rank="0"}' ',"42"]'
  'tessera_sample_queue_depth' '"path":"a\\b \"c\""'
  'tessera_sample_latency_seconds_count' ',"3"]'
  'tessera_sample_latency_seconds_bucket{le="0.5"}' ',"2"]'
  'tessera_sample_ticks_total > 0' '"__name__":"tessera_sample_ticks_total"'
  'process_start_time_seconds > 0' '"__name__":"process_start_time_seconds"'
)
deadline=$((SECONDS + 30))
while :; do
  missing=""
  for ((i = 0; i < ${#checks[@]}; i += 2)); do
    answer=$(query "${checks[i]}")
    if [[ "$answer" != *"${checks[i + 1]}"* ]]; then
      missing="${checks[i]} (expected ${checks[i + 1]} in: ${answer:-no answer})"
      break
    fi
  done
  [[ -z "$missing" ]] && break
  ((SECONDS < deadline)) || fail "after 30 s still missing: $missing"
  sleep 0.5
done
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
