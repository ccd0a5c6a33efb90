#!/usr/bin/env bash
# Short IVR calls at rising setup rates: each call rings 500 ms, is
# answered, hears 2 s of prompt and hangs up (BYE). For each rate,
# bench/load.sh places RATE x STEP_SECS calls with a fresh engine and
# reports failed calls, records, the engine's CPU, RTP sent against the
# expected count, and the send lateness.
#
#   bench/setup_rate.sh [RATE...]          (default: 100 200 500 1000 2000)
#   STEP_SECS=10 SIP_PORT=5190 bench/setup_rate.sh 500
#
# Ports and workers as for bench/load.sh (same environment variables).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
STEP_SECS=${STEP_SECS:-10}
rates=("$@")
[ ${#rates[@]} = 0 ] && rates=(100 200 500 1000 2000)
status=0
for rate in "${rates[@]}"; do
  total=$((rate * STEP_SECS))
  # A call lives about 0.5 s ringing + 2 s held + teardown: allow 4 s of
  # calls at once so that SIPp's limit never throttles the rate.
  concurrent=$((rate * 4))
  echo "=== $rate calls/s: $total calls of 2 s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  TOTAL=$total CAPTURE=0 bash "$here/load.sh" "$concurrent" 2000 "$rate" || status=1
done
exit $status
