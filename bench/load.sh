#!/usr/bin/env bash
# Places CONCURRENT simultaneous SIPp calls (each holding HOLD_MS while the
# engine plays prompts to it) against a release build of hotline on
# loopback, and reports failed calls, the engine's CPU and memory, RTP sent
# and its send-interval error from the engine's own histogram.
#
#   bench/load.sh [CONCURRENT] [HOLD_MS] [RATE]
#   bench/load.sh 500 20000 100
#
# Needs sipp (apt-get install sip-tester). Results go to stdout; copy them
# into BENCHMARKS.md with the machine (nproc, CPU model) and the command.
#
# Ports, by environment variable (to stay clear of others on the machine):
#   SIP_PORT (5090) the engine's SIP, SIPP_PORT (5071) SIPp's SIP,
#   SIPP_MEDIA_PORT (16000) SIPp's media, RTP_MIN..RTP_MAX (20000..39999)
#   the engine's RTP. MEDIA_WORKERS (0 = one per core) sets [media] workers,
#   REALTIME_PRIORITY (0 = off) [media] realtime_priority.
#   CAPTURE=1 captures the engine's RTP for the whole run, from the calls
#   whose SSRC ends in 5 zero bits (1 in 32, to keep dumpcap's own load
#   small), and reports the send intervals per stream
#   (bench/rtp_intervals.py). dumpcap starts before the first call: when it
#   attached mid-run, the engine's sends stalled for over 200 ms once.
set -euo pipefail
CONCURRENT=${1:-500}
HOLD_MS=${2:-20000}
RATE=${3:-100}
TOTAL=${TOTAL:-$((CONCURRENT * 2))}
SIP_PORT=${SIP_PORT:-5090}
SIPP_PORT=${SIPP_PORT:-5071}
SIPP_MEDIA_PORT=${SIPP_MEDIA_PORT:-16000}
RTP_MIN=${RTP_MIN:-20000}
RTP_MAX=${RTP_MAX:-39999}
MEDIA_WORKERS=${MEDIA_WORKERS:-0}
REALTIME_PRIORITY=${REALTIME_PRIORITY:-0}
CAPTURE=${CAPTURE:-0}

here=$(cd "$(dirname "$0")/.." && pwd)
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 2; }
work=$(mktemp -d /tmp/hotline-bench.XXXXXX)
# HOTLINE_BIN and CONFIG run another build (an older one, to compare) with
# its own default config; the engine is copied, so that another build in a
# shared target dir cannot swap it mid-run.
if [ -n "${HOTLINE_BIN:-}" ]; then
  cp "$HOTLINE_BIN" "$work/hotline"
else
  (cd "$here" && cargo build --release --quiet)
  cp "${CARGO_TARGET_DIR:-$here/target}/release/hotline" "$work/hotline"
fi
config_template=${CONFIG:-$here/config/default.toml}
bin="$work/hotline"
trap 'kill $engine ${capture_pid:-} 2>/dev/null || true' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

sed -e "0,/^listen = .*/s//listen = [\"127.0.0.1:$SIP_PORT\"]/" \
    -e "s/^port_min = .*/port_min = $RTP_MIN/" \
    -e "s/^port_max = .*/port_max = $RTP_MAX/" \
    -e "s/^workers = .*/workers = $MEDIA_WORKERS/" \
    -e "s/^realtime_priority = .*/realtime_priority = $REALTIME_PRIORITY/" \
    -e "s/^max_calls = .*/max_calls = $((CONCURRENT * 4))/" \
    -e "s/^max_calls_per_second = .*/max_calls_per_second = $((RATE * 4))/" \
    -e "s/^answer_after = .*/answer_after = \"500ms\"/" \
    -e "s|^dir = \"var/cdr\"|dir = \"cdr\"|" \
    -e "s/^inactivity_timeout = .*/inactivity_timeout = \"120s\"/" \
    "$config_template" > "$work/bench.toml"

RUST_LOG=warn,hotline::runtime=info,hotline::shell=info "$bin" run --config "$work/bench.toml" 2> "$work/engine.log" &
engine=$!
echo $engine > "$work/engine.pid"
sleep 1
kill -0 $engine || { cat "$work/engine.log"; exit 1; }

if [ "$CAPTURE" = 1 ]; then
  # udp[19]: the last byte of the RTP SSRC (8 bytes of UDP header + 11).
  dumpcap -q -i lo -f "udp and src portrange $RTP_MIN-$RTP_MAX and udp[19] & 0x1f = 0" \
    -w "$work/rtp.pcapng" 2>"$work/dumpcap.log" &
  capture_pid=$!
  sleep 2
fi

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
cpu0=$(ticks $engine)
start=$(date +%s.%N)

sipp 127.0.0.1:$SIP_PORT -sf "$here/bench/uac_hold.xml" -s 4008 \
    -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA_PORT" -l "$CONCURRENT" -r "$RATE" -m "$TOTAL" -d "$HOLD_MS" \
    -nostdin -trace_stat -stf "$work/stat.csv" -trace_err -error_file "$work/errors.log" \
    -timeout $(( (TOTAL / RATE) + HOLD_MS / 1000 * 3 + 60 ))s -timeout_error \
    > "$work/sipp.out" 2>&1 &
sipp_pid=$!

# Sample the engine's RSS while calls are up.
peak_rss=0
while kill -0 $sipp_pid 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$engine/status)
  [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
  sipp_ticks=$(ticks $sipp_pid 2>/dev/null || echo "${sipp_ticks:-0}")
  sleep 0.5
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
wait $sipp_pid && sipp_rc=0 || sipp_rc=$?
end=$(date +%s.%N)
cpu1=$(ticks $engine)
# Time the media threads were runnable but waiting for a CPU (schedstat's
# second field, ns), summed: CPU contention shows here.
media_wait_ms=0
for t in /proc/$engine/task/*; do
  case "$(cat "$t/comm")" in media-*)
    media_wait_ms=$(( media_wait_ms + $(awk '{print int($2 / 1000000)}' "$t/schedstat") ));;
  esac
done
kill -TERM $engine
wait $engine || true
if [ "$CAPTURE" = 1 ]; then
  kill -TERM "$capture_pid"
  wait "$capture_pid" || true
fi
trap - EXIT

idle_rss_kb=$(grep -o 'rss_idle_kb=[0-9]*' "$work/engine.log" | head -1 | cut -d= -f2 || true)
stats=$(grep 'stopped; all records written' "$work/engine.log" | sed 's/\x1b\[[0-9;]*m//g' || true)
field() { echo "$stats" | grep -o "$1=[0-9]*" | cut -d= -f2; }
last=$(tail -n 1 "$work/stat.csv")
header=$(head -n 1 "$work/stat.csv")
col() { echo "$header" | tr ';' '\n' | grep -n "^$1$" | cut -d: -f1 | head -1; }
success=$(echo "$last" | cut -d';' -f"$(col SuccessfulCall\(C\))")
failed=$(echo "$last" | cut -d';' -f"$(col FailedCall\(C\))")
records=$(cat "$work"/cdr/*.jsonl | wc -l)
hangups=$(grep -c '"outcome":"caller_hangup"' "$work"/cdr/*.jsonl || true)
elapsed=$(echo "$end - $start" | bc)
cpu_pct=$(echo "scale=1; ($cpu1 - $cpu0) * 100 / $hz / $elapsed" | bc)
expected_rtp=$(( TOTAL * HOLD_MS / 20 ))

cat <<REPORT
calls: $TOTAL placed, $CONCURRENT at once, hold ${HOLD_MS} ms, rate $RATE/s (sipp exit $sipp_rc); media workers $MEDIA_WORKERS, realtime priority $REALTIME_PRIORITY
successful: $success   failed: $failed
records: $records written, $hangups caller_hangup
engine CPU: ${cpu_pct}% of one core over ${elapsed}s (SIPp: $(echo "scale=1; ${sipp_ticks:-0} * 100 / $hz / $elapsed" | bc)%)
engine peak RSS: $((peak_rss / 1024)) MiB ($((peak_rss / CONCURRENT)) KiB per concurrent call, including the process's base)
load average before / after: $load_before / $load_after; media threads waited $media_wait_ms ms for a CPU
RTP sent: $(field rtp_sent) packets (about $expected_rtp expected from hold times), resyncs $(field rtp_resyncs)
RTP send lateness: p50 <= $(field send_late_p50_us) us, p90 <= $(field send_late_p90_us) us, p99 <= $(field send_late_p99_us) us, p99.9 <= $(field send_late_p999_us) us
work dir: $work
REPORT
if [ -f "$work/rtp.pcapng" ]; then
  tshark -r "$work/rtp.pcapng" -T fields -e frame.time_epoch -e udp.srcport > "$work/rtp.tsv"
  echo "capture of the whole run, 1 stream in 32:"
  python3 "$here/bench/rtp_intervals.py" "$work/rtp.tsv"
fi
[ "$sipp_rc" = 0 ] && [ "$failed" = 0 ] && [ "$records" = "$TOTAL" ]
