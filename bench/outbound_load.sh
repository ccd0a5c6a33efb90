#!/usr/bin/env bash
# A voice-notice campaign of NUMBERS numbers through one trunk, a SIPp UAS
# on loopback (bench/trunk_uas.xml: answers every INVITE at once, listens,
# takes the engine's BYE when the notice ends). The trunk allows CHANNELS
# calls at once and RATE new calls per second. Reports attempts per second,
# the most channels ever in use (the engine's own high-water mark, and
# /api/v1/status sampled every 0.2 s, and SIPp's concurrent calls), the
# engine's CPU and peak RSS, and the store's writes per attempt (its own
# count at shutdown, and the rows in the SQLite file).
#
#   bench/outbound_load.sh [NUMBERS] [CHANNELS] [RATE] [PROMPT]
#   bench/outbound_load.sh 10000 200 100 goodbye
#
# PROMPT is a prompt of the built-in set (goodbye: 2.3 s in zh); each call
# lasts about that long, so with enough numbers the channels, not the
# rate, bound the attempts per second: CHANNELS / (PROMPT + setup).
# Needs sipp (apt-get install sip-tester), jq, curl, bc, sqlite3.
#
# CAPTURE=1 also captures the trunk's SIP (dumpcap, package tshark) and
# counts the calls up at the trunk at every instant, from each INVITE to
# its BYE, as the trunk sees them.
#
# Ports (environment): SIP_PORT (15790) the engine, SIPP_PORT (15791) the
# trunk, API_PORT (18490), RTP_MIN..RTP_MAX (20000..21999) the engine's
# RTP, SIPP_MEDIA_PORT (22000).
set -euo pipefail
NUMBERS=${1:-10000}
CHANNELS=${2:-200}
RATE=${3:-100}
PROMPT=${4:-goodbye}
SIP_PORT=${SIP_PORT:-15790}
SIPP_PORT=${SIPP_PORT:-15791}
API_PORT=${API_PORT:-18490}
RTP_MIN=${RTP_MIN:-20000}
RTP_MAX=${RTP_MAX:-21999}
SIPP_MEDIA_PORT=${SIPP_MEDIA_PORT:-22000}
TOKEN=bench-token
CAPTURE=${CAPTURE:-0}

here=$(cd "$(dirname "$0")/.." && pwd)
for tool in sipp jq curl bc sqlite3; do
  command -v $tool >/dev/null || { echo "$tool missing" >&2; exit 2; }
done
work=$(mktemp -d /tmp/hotline-outbench.XXXXXX)
(cd "$here" && cargo build --release --quiet)
# A copy: another build in the target dir cannot swap it mid-run.
cp "${CARGO_TARGET_DIR:-$here/target}/release/hotline" "$work/hotline"
engine=""
sipp_pid=""
capture_pid=""
trap 'kill $engine $sipp_pid $capture_pid 2>/dev/null || true' EXIT

sed -e "0,/^listen = .*/s//listen = [\"127.0.0.1:$SIP_PORT\"]/" \
    -e "s/^listen = \"127.0.0.1:8088\"/listen = \"127.0.0.1:$API_PORT\"/" \
    -e "s/^token = .*/token = \"$TOKEN\"/" \
    -e "s/^port_min = .*/port_min = $RTP_MIN/" \
    -e "s/^port_max = .*/port_max = $RTP_MAX/" \
    -e "s|^dir = \"var/cdr\"|dir = \"cdr\"|" \
    -e "s|^dir = \"var/messages\"|dir = \"messages\"|" \
    "$here/config/default.toml" > "$work/bench.toml"
cat >> "$work/bench.toml" <<EOF

[[trunks]]
name = "bench"
address = "127.0.0.1:$SIPP_PORT"
caller_id = "4008001234"
max_channels = $CHANNELS
max_calls_per_second = $RATE

[store]
path = "hotline.db"
EOF

if [ "$CAPTURE" = 1 ]; then
  dumpcap -q -i lo -f "udp port $SIPP_PORT" -w "$work/sip.pcapng" 2> "$work/dumpcap.log" &
  capture_pid=$!
  sleep 1
fi
sipp -sf "$here/bench/trunk_uas.xml" -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA_PORT" \
    -m "$NUMBERS" -nostdin -trace_stat -fd 1 -stf "$work/sipp_stat.csv" \
    -trace_err -error_file "$work/sipp_errors.log" -timeout 3600s \
    > "$work/sipp.out" 2>&1 &
sipp_pid=$!
"$work/hotline" run --config "$work/bench.toml" 2> "$work/engine.log" &
engine=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$API_PORT/api/v1/status" >/dev/null && break
  sleep 0.2
done
kill -0 $engine || { cat "$work/engine.log"; exit 1; }

seq 13800000001 $((13800000000 + NUMBERS)) \
  | jq -R . | jq -s --arg prompt "$PROMPT" \
      '{name: "bench", trunk: "bench", prompt: $prompt, numbers: map(tostring),
        first_after: "0s", retry: []}' > "$work/campaign.json"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
cpu0=$(ticks $engine)
sipp_cpu0=$(ticks $sipp_pid)
sipp_cpu1=$sipp_cpu0
start=$(date +%s.%N)
id=$(curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary @"$work/campaign.json" "http://127.0.0.1:$API_PORT/api/v1/campaigns" | jq .id)
created=$(date +%s.%N)

# Sample the trunk's channels at 5 Hz until the campaign completes.
max_sampled=0
samples=0
state=running
while [ "$state" != completed ]; do
  status=$(curl -s "http://127.0.0.1:$API_PORT/api/v1/status")
  ch=$(echo "$status" | jq '.outbound.trunks[0].channels')
  samples=$((samples + 1))
  # SIPp exits with its last call, about when the campaign completes.
  sipp_cpu1=$(ticks $sipp_pid 2>/dev/null || echo "$sipp_cpu1")
  [ "$ch" -gt "$max_sampled" ] && max_sampled=$ch
  if [ $((samples % 5)) = 0 ]; then
    state=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/api/v1/campaigns" \
      | jq -r --argjson id "$id" '.[] | select(.id == $id) | .state')
  fi
  sleep 0.2
done
end=$(date +%s.%N)
cpu1=$(ticks $engine)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
peak=$(curl -s "http://127.0.0.1:$API_PORT/api/v1/status" | jq '.outbound.trunks[0].peak_channels')
summary=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/api/v1/campaigns/$id" \
  | jq -c '.counts')
hwm=$(awk '/VmHWM/ {print $2}' /proc/$engine/status)
kill -TERM $engine
wait $engine || true
engine=""
sleep 1
kill -INT $sipp_pid 2>/dev/null || true
wait $sipp_pid 2>/dev/null || true
sipp_pid=""

at_trunk="not captured (CAPTURE=1)"
if [ -n "$capture_pid" ]; then
  kill -INT $capture_pid; wait $capture_pid 2>/dev/null || true; capture_pid=""
  # +1 at a call's first INVITE, -1 at its first BYE; the running sum's max.
  at_trunk=$(tshark -r "$work/sip.pcapng" -Y 'sip.Method == "INVITE" || sip.Method == "BYE"' \
      -T fields -e frame.time_epoch -e sip.Call-ID -e sip.Method 2>/dev/null \
    | awk '!seen[$2 $3]++ { print $1, ($3 == "INVITE" ? 1 : -1) }' | sort -n -k1,1 -k2,2n \
    | awk '{ up += $2; if (up > max) max = up } END { print "at most " max " calls up at once" }')
fi

stat_col() { # the values of a -trace_stat column, one per line
  local n
  n=$(head -n 1 "$work/sipp_stat.csv" | tr ';' '\n' | grep -n "^$1$" | cut -d: -f1 | head -1)
  tail -n +2 "$work/sipp_stat.csv" | cut -d';' -f"$n"
}
sipp_peak=$(stat_col CurrentCall | sort -n | tail -1)
sipp_calls=$(stat_col 'TotalCallCreated' | tail -1)
sipp_failed=$(stat_col 'FailedCall(C)' | tail -1)

cat "$work"/cdr/*.jsonl | jq -c 'select(.direction == "outbound")' > "$work/outbound.jsonl"
records=$(wc -l < "$work/outbound.jsonl")
results=$(jq -rs 'map(.attempt_result) | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$work/outbound.jsonl")
# Attempts per wall-clock second, from the records' INVITE times.
per_second=$(jq -rs 'map(.invite_at[0:19]) | group_by(.) | map(length) | sort
  | "seconds \(length), per second min \(.[0]) median \(.[length/2|floor]) max \(.[-1])"' "$work/outbound.jsonl")
span=$(jq -rs 'def s: (.[0:19] + "Z" | fromdateiso8601) + ((.[20:23] | tonumber) / 1000);
  (map(.invite_at | s) | max) - (map(.invite_at | s) | min)' "$work/outbound.jsonl")

store=$(sed 's/\x1b\[[0-9;]*m//g' "$work/engine.log" | grep 'store closed' || true)
sfield() { echo "$store" | grep -o "$1=[0-9]*" | cut -d= -f2; }
writes=$(sfield writes)
db="$work/hotline.db"
rows=$(sqlite3 "$db" "SELECT count(*) FROM attempts")
ended=$(sqlite3 "$db" "SELECT count(*) FROM attempts WHERE ended_ms IS NOT NULL AND result IS NOT NULL")
targets=$(sqlite3 "$db" "SELECT group_concat(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM targets GROUP BY state)")

elapsed=$(echo "$end - $start" | bc)
cpu_s=$(echo "scale=2; ($cpu1 - $cpu0) / $hz" | bc)
cpu_pct=$(echo "scale=1; $cpu_s * 100 / $elapsed" | bc)
rate=$(echo "scale=1; ($records - 1) / $span" | bc)

cat <<REPORT
machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)
command: bench/outbound_load.sh $NUMBERS $CHANNELS $RATE $PROMPT
load average: start $load_start, end $load_end
campaign: $NUMBERS numbers created in $(echo "$created - $start" | bc) s; completed $(echo "$end - $start" | bc) s after the request; counts $summary
attempts: $records records ($results); $rate attempts/s from first to last INVITE ($span s); $per_second
channels (cap $CHANNELS): engine's peak $peak, status sampled max $max_sampled ($samples samples), SIPp concurrent max $sipp_peak (1 s samples); on the wire (INVITE to BYE): $at_trunk
SIPp: $sipp_calls calls, $sipp_failed failed
engine CPU: ${cpu_s} s, ${cpu_pct}% of one core over ${elapsed} s; peak RSS (VmHWM) $((hwm / 1024)) MiB
SIPp CPU: $(echo "scale=2; ($sipp_cpu1 - $sipp_cpu0) / $hz" | bc) s
store: $writes writes ($(echo "scale=3; $writes / $records" | bc) per attempt), mean $(sfield mean_us) us, max $(sfield max_us) us each; attempts rows $rows, ended $ended; targets $targets
work dir: $work
REPORT
[ "$records" = "$NUMBERS" ] && [ "$peak" -le "$CHANNELS" ] && [ "$max_sampled" -le "$CHANNELS" ]
