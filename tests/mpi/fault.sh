#!/usr/bin/env bash
# A rank that dies (kill -9) or stalls (SIGSTOP) mid-training must end the whole job: non-zero
# exit within dist.timeout_s + 30 s, with a message naming that rank.
#   tests/mpi/fault.sh PROGRAM kill|stop [NP]
# PROGRAM is tessera_mpi_fault. Rank 1 faults at step 5; dist.timeout_s is 5 s.
set -uo pipefail
program=$1
mode=$2
np=${3:-3}
timeout_s=5
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start=$(date +%s.%N)
# The outer `timeout` only guards the test itself; the job must end long before. (mpirun's
# own status is 124 from our watchdog, or 137 when it reports the rank killed by signal 9.)
timeout -s KILL 120 "$here/run_mpi.sh" "$np" "$program" "$mode" 1 5 "$timeout_s" >"$log" 2>&1
rc=$?
end=$(date +%s.%N)
elapsed=$(echo "$end - $start" | bc)
echo "--- job output (exit $rc after ${elapsed} s) ---"
cat "$log"
echo "---"

fail() { echo "FAIL: $*"; exit 1; }
[[ $rc -ne 0 ]] || fail "the job exited 0 although rank 1 ${mode}ped"
limit=$((timeout_s + 30))
(( $(echo "$elapsed < $limit" | bc) )) ||
  fail "the job took ${elapsed} s; the limit is ${limit} s (dist.timeout_s + 30); at 120 s the test's guard kills it"
if [[ $mode == stop ]]; then
  # Our watchdog must have named the stalled rank.
  grep -Eq "tessera: collective [a-z_]+ #[0-9]+ .*timed out after ${timeout_s} s on rank [0-9]+: rank\(s\) 1 did not arrive" "$log" ||
    fail "no watchdog line naming rank 1"
else
  # Either our watchdog (rank(s) 1 did not arrive / failed) or mpirun (process rank 1 ... signal 9)
  # names the dead rank, whichever notices first.
  grep -Eq "rank\(s\) 1 did not arrive|rank 1 with PID [0-9]+ .*(signal 9|Killed)|process rank 1 .*signal 9" "$log" ||
    fail "no message naming rank 1"
fi
echo "PASS: $mode of rank 1 ended the job with exit $rc in ${elapsed} s, naming rank 1"
