# Sourced by the tests that have a real Prometheus server scrape Tessera endpoints
# (prometheus_scrape.sh, train_scrape.sh). The caller defines `work` (a temporary directory),
# `serve` (tessera_metrics_serve, used for --free-port) and `fail MESSAGE`; every process it
# starts goes into `pids`, and all of them are stopped (and `work` removed) on exit.
#   start_prometheus JOB TARGET...    Prometheus on a free loopback port scraping TARGETs
#                                     (host:port) every 1 s as job JOB; sets prom_port
#   query PROMQL                      the API's JSON answer ("" when there is none)
#   wait_for_checks SECONDS           until every (query, expected substring) pair in the array
#                                     `checks` holds, or fail after SECONDS
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

# A free port can be taken between asking and binding: up to 3 tries.
start_prometheus() {
  local job=$1 targets="" target
  shift
  for target in "$@"; do targets+="${targets:+, }'$target'"; done
  cat >"$work/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: $job
    static_configs:
      - targets: [$targets]
YML
  local ready=0 attempt prom_pid
  for attempt in 1 2 3; do
    prom_port=$("$serve" --free-port)
    prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
      --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
    prom_pid=$!
    pids+=("$prom_pid")
    for _ in $(seq 150); do
      curl -sf --max-time 2 "http://127.0.0.1:$prom_port/-/ready" >/dev/null 2>&1 && { ready=1; break; }
      kill -0 "$prom_pid" 2>/dev/null || break
      sleep 0.2
    done
    [[ $ready == 1 ]] && return 0
    echo "prometheus did not become ready on port $prom_port (attempt $attempt)" >&2
    stop_pid "$prom_pid"
  done
  fail "prometheus never became ready"
}

query() {
  curl -sf --max-time 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$prom_port/api/v1/query" || true
}

# Each check: a PromQL query and a fixed string its JSON answer must contain (Prometheus
# answers compact JSON).
wait_for_checks() {
  local limit=$1 deadline=$((SECONDS + $1)) missing answer i
  while :; do
    missing=""
    for ((i = 0; i < ${#checks[@]}; i += 2)); do
      answer=$(query "${checks[i]}")
      if [[ "$answer" != *"${checks[i + 1]}"* ]]; then
        missing="${checks[i]} (expected ${checks[i + 1]} in: ${answer:-no answer})"
        break
      fi
    done
    [[ -z "$missing" ]] && return 0
    ((SECONDS < deadline)) || fail "after $limit s still missing: $missing"
    sleep 0.5
  done
}
