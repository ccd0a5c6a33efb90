#!/usr/bin/env bash
# Bridged calls through the ACD on loopback: AGENTS SIPp agents register
# from one SIPp process (-inf CSV, MD5 digest, bench/acd_register.xml) on
# AGENT_PORT; then one SIPp UAS on that same port answers every agent
# INVITE (bench/acd_agent.xml); a SIPp caller
# places CALLS calls at RATE per second (bench/acd_caller.xml) that press 1
# (the consultation queue), wait to be bridged, talk TALK_MS and hang up.
# Both sides stream RTP (bench/tone.wav) so the bridge relays audio.
#
#   bench/acd_load.sh [CALLS] [RATE] [AGENTS] [TALK_MS]
#   bench/acd_load.sh 2000 50 600 10000     # about 500 bridged at once
#
# Bridged calls at once ~ RATE x TALK_MS/1000. Size AGENTS above
# RATE x (TALK_MS/1000 + 5 s) or the queue grows without bound (an agent
# is busy for the announcement, the talk and 1 s of wrap-up).
# Needs sipp (apt-get install sip-tester), jq, bc. Results go to stdout.
#
# Several nodes (docs/cluster.md): STORE=postgres runs the node(s) on a
# throw-away PostgreSQL cluster the script makes (Debian's postgresql;
# initdb and pg_ctl as the postgres user when run as root); NODES=2 (with
# STORE=postgres) runs two nodes behind Kamailio (config/kamailio/
# hotline-edge.cfg as shipped) on KAM_PORT, and the agents and callers go
# through Kamailio. The report adds queue entry to the agent's INVITE
# (p50, p99) and the shared store's round trips per call.
#   STORE=postgres NODES=2 bench/acd_load.sh 1000 20 300 10000
set -euo pipefail
CALLS=${1:-1000}
RATE=${2:-20}
AGENTS=${3:-300}
TALK_MS=${4:-10000}
SIP_PORT=${SIP_PORT:-5290}
API_PORT=${API_PORT:-18900}
CALLER_PORT=${CALLER_PORT:-5390}
AGENT_PORT=${AGENT_PORT:-5391}
# The caller stays this long after pressing 1: the queue wait (the business
# prompt, ringing the agent, the agent's number announced) plus the talk.
WAIT_MS=${WAIT_MS:-3500}
HOLD_MS=$((WAIT_MS + TALK_MS))
STORE=${STORE:-embedded}
NODES=${NODES:-1}
KAM_PORT=${KAM_PORT:-5292}
[ "$NODES" = 1 ] || [ "$STORE" = postgres ] || { echo "NODES=2 needs STORE=postgres" >&2; exit 2; }

here=$(cd "$(dirname "$0")/.." && pwd)
for tool in sipp jq bc md5sum; do
  command -v $tool >/dev/null || { echo "$tool missing" >&2; exit 2; }
done
target=${CARGO_TARGET_DIR:-$here/target}
(cd "$here" && cargo build --release --quiet)
bin="$target/release/hotline"
work=$(mktemp -d /tmp/hotline-acdbench.XXXXXX)
pids=()
pg_bin=$( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true) | sort -V | tail -1)
pg_as() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -z "${pg_dir:-}" ] || pg_as "$pg_bin/pg_ctl" stop -D "$pg_dir/data" -m immediate -w >/dev/null 2>&1 || true
}
trap cleanup EXIT

# Config: the demo config on our ports, fast answers and wrap-up, flood
# limits raised (every agent registers from 127.0.0.1), the two demo agents
# replaced by AGENTS bench agents in all three queues.
sed -e "0,/^listen = .*/s//listen = [\"127.0.0.1:$SIP_PORT\"]/" \
    -e "s/^listen = \"127.0.0.1:8088\"/listen = \"127.0.0.1:$API_PORT\"/" \
    -e "s/^port_min = .*/port_min = 40000/" \
    -e "s/^port_max = .*/port_max = 49999/" \
    -e "s/^max_calls = .*/max_calls = $((CALLS + 1000))/" \
    -e "s/^max_calls_per_second = .*/max_calls_per_second = $((RATE * 4 + 100))/" \
    -e "s/^answer_after = .*/answer_after = \"200ms\"/" \
    -e "s/^register_rate = .*/register_rate = 100000/" \
    -e "s/^invite_rate = .*/invite_rate = 100000/" \
    -e "s/^wrap_up = .*/wrap_up = \"1s\"/" \
    -e "s/^ring_timeout = .*/ring_timeout = \"5s\"/" \
    -e "s|^dir = \"var/cdr\"|dir = \"cdr\"|" \
    -e "s|^dir = \"var/messages\"|dir = \"messages\"|" \
    -e "s/^inactivity_timeout = .*/inactivity_timeout = \"120s\"/" \
    -e '/^\[\[agents\]\]/,/^$/d' \
    "$here/config/default.toml" > "$work/bench.toml"
# RECORD=on|off: every queue records its calls (record = true) or none
# does, with no recording notice either way, so that both runs have the
# same call timeline; recordings go to $work/recordings. Unset: the queues
# as config/default.toml has them.
if [ -n "${RECORD:-}" ]; then
  case "$RECORD" in on) rec=true ;; off) rec=false ;; *) echo "RECORD=on|off" >&2; exit 2 ;; esac
  awk -v rec="$rec" '
    /^\[/ { in_queue = ($0 == "[[queues]]") }
    in_queue && /^(record|recording_notice) *=/ { next }
    { print }
    in_queue && /^name *=/ { print "record = " rec; print "recording_notice = false" }
    ' "$work/bench.toml" > "$work/bench.toml.new"
  mv "$work/bench.toml.new" "$work/bench.toml"
  sed -i '/^\[recordings\]/,/^\[/ s|^dir = .*|dir = "recordings"|' "$work/bench.toml"
  grep -q '^\[recordings\]' "$work/bench.toml" || printf '\n[recordings]\ndir = "recordings"\n' >> "$work/bench.toml"
fi
# SIPp caches rtp_stream files when it loads a scenario, before any key
# is expanded, so the WAV's path is written into copies of the scenarios.
for sc in acd_agent acd_caller; do
  sed "s|\\[tone\\]|$here/bench/tone.wav|" "$here/bench/$sc.xml" > "$work/$sc.xml"
done
echo SEQUENTIAL > "$work/agents.csv"
for i in $(seq 1 "$AGENTS"); do
  id=$((2000 + i))
  ha1=$(printf '%s' "$id:hotline:secret" | md5sum | cut -d' ' -f1)
  echo "$id;[authentication username=$id password=secret]" >> "$work/agents.csv"
  printf '\n[[agents]]\nid = "%s"\nnumber = "%s"\nha1_md5 = "%s"\nqueues = ["consultation", "repair", "complaint"]\n' \
    "$id" "$id" "$ha1" >> "$work/bench.toml"
done

# The shared store: a throw-away PostgreSQL cluster on PG_PORT.
if [ "$STORE" = postgres ]; then
  [ -n "$pg_bin" ] || { echo "PostgreSQL's server is not installed (apt-get install postgresql)" >&2; exit 2; }
  PG_PORT=${PG_PORT:-5293}
  pg_dir="$work/pg"; mkdir -p "$pg_dir"; chmod 755 "$work"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pg_dir"
  pg_as "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth=trust --no-sync >/dev/null
  pg_as "$pg_bin/pg_ctl" start -D "$pg_dir/data" -l "$pg_dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $pg_dir -c max_connections=100" >/dev/null
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc 'CREATE DATABASE hotline' postgres
  printf '\n[store]\nurl = "postgres://postgres@127.0.0.1:%s/hotline"\n\n[node]\nid = "a"\n' "$PG_PORT" >> "$work/bench.toml"
fi
RUST_LOG=warn,hotline::runtime=info,hotline::shell=info,hotline::shell::cluster=info "$bin" run --config "$work/bench.toml" 2> "$work/engine.log" &
engine=$!
pids+=($engine)
engines=($engine)
target_port=$SIP_PORT
if [ "$NODES" = 2 ]; then
  # Node b: the same config, its own ports and name.
  sed -e "s/127.0.0.1:$SIP_PORT/127.0.0.1:$((SIP_PORT + 1))/" \
      -e "s/127.0.0.1:$API_PORT/127.0.0.1:$((API_PORT + 1))/" \
      -e "s/^port_min = .*/port_min = 56000/" -e "s/^port_max = .*/port_max = 59999/" \
      -e 's/^id = "a"$/id = "b"/' -e 's|^dir = "cdr"|dir = "cdr-b"|' "$work/bench.toml" > "$work/bench-b.toml"
  RUST_LOG=warn,hotline::runtime=info,hotline::shell=info,hotline::shell::cluster=info "$bin" run --config "$work/bench-b.toml" 2> "$work/engine-b.log" &
  engines+=($!)
  pids+=($!)
  printf '1 sip:127.0.0.1:%s 0 0\n1 sip:127.0.0.1:%s 0 0\n' "$SIP_PORT" "$((SIP_PORT + 1))" > "$work/dispatcher.list"
  modules=
  for d in /usr/lib/*/kamailio/modules /usr/lib/kamailio/modules; do
    [ -f "$d/dispatcher.so" ] && modules=$d && break
  done
  [ -n "$modules" ] || { echo "Kamailio's modules are not installed (apt-get install kamailio)" >&2; exit 2; }
  kamailio -f "$here/config/kamailio/hotline-edge.cfg" -DD -E -m 64 -M 8 -w "$work" -Y "$work" \
    -A LISTEN_IP=127.0.0.1 -A "SIP_PORT=$KAM_PORT" -A "MODULES_DIR=\"$modules/\"" \
    -A "DISPATCHER_LIST=\"$work/dispatcher.list\"" > "$work/kamailio.log" 2>&1 &
  pids+=($!)
  target_port=$KAM_PORT
fi
sleep 1
for e in "${engines[@]}"; do kill -0 "$e" || { cat "$work"/engine*.log; exit 1; }; done

sipp 127.0.0.1:$target_port -sf "$here/bench/acd_register.xml" -inf "$work/agents.csv" \
    -i 127.0.0.1 -p $AGENT_PORT -m "$AGENTS" -r 100 -l 200 \
    -nostdin -trace_err -error_file "$work/register_errors.log" -timeout 120s -timeout_error \
    > "$work/register_sipp.out" 2>&1 && reg_rc=0 || reg_rc=$?
# The agents' phone: one UAS for every agent, on the port they registered
# from (hotline rings the REGISTER's source address).
sipp 127.0.0.1:$target_port -sf "$work/acd_agent.xml" \
    -i 127.0.0.1 -p $AGENT_PORT -mp 55000 \
    -nostdin -trace_stat -fd 1 -stf "$work/agent_stat.csv" -trace_err -error_file "$work/agent_errors.log" \
    > "$work/agent_sipp.out" 2>&1 &
agent_sipp=$!
pids+=($agent_sipp)

sleep 1
logged_in=$(curl -s -H 'Authorization: Bearer demo-token' "http://127.0.0.1:$API_PORT/api/v1/agents" \
  | jq '[.[]? // .agents[]? | select((.state // .status // "") | test("idle|available|Idle|Available"))] | length' 2>/dev/null || echo "?")

ticks() { local t=0 e; for e in "${engines[@]}"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$e/stat"))); done; echo $t; }
io() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/io"; }
hz=$(getconf CLK_TCK)
wchar0=$(io $engine wchar); wbytes0=$(io $engine write_bytes)
cpu0=$(ticks $engine)
start=$(date +%s.%N)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

sipp 127.0.0.1:$target_port -sf "$work/acd_caller.xml" -s 4008 \
    -i 127.0.0.1 -p $CALLER_PORT -mp 50000 \
    -m "$CALLS" -r "$RATE" -l "$CALLS" -d "$HOLD_MS" \
    -nostdin -trace_stat -stf "$work/stat.csv" -trace_err -error_file "$work/errors.log" \
    -timeout $(( CALLS / RATE + HOLD_MS / 1000 * 3 + 60 ))s -timeout_error \
    > "$work/sipp.out" 2>&1 &
caller_sipp=$!
pids+=($caller_sipp)

peak_rss=0
load_peak=0
while kill -0 $caller_sipp 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$engine/status)
  [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
  l=$(cut -d' ' -f1 /proc/loadavg)
  [ "$(echo "$l > $load_peak" | bc)" = 1 ] && load_peak=$l
  sleep 0.5
done
wait $caller_sipp && sipp_rc=0 || sipp_rc=$?
end=$(date +%s.%N)
cpu1=$(ticks $engine)
wchar1=$(io $engine wchar); wbytes1=$(io $engine write_bytes)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
sleep 2   # the last BYEs to the agents
# The live counters cover both legs of a call; the shutdown log's totals
# (below) count only the caller's session.
metrics=$(curl -s "http://127.0.0.1:$API_PORT/metrics" || true)
metric() { echo "$metrics" | grep -F "$1" | awk '{print $2}' | head -1; }
rtp_sent_all=$(metric 'hotline_rtp_packets_total{direction="sent"}')
rtp_recv_all=$(metric 'hotline_rtp_packets_total{direction="received"}')
for e in "${engines[@]}"; do kill -TERM "$e"; done
for e in "${engines[@]}"; do wait "$e" || true; done
kill -INT $agent_sipp 2>/dev/null || true
sleep 1
kill $agent_sipp 2>/dev/null || true
cleanup   # Kamailio and PostgreSQL, if started
trap - EXIT

[ -s "$work/stat.csv" ] || { echo "caller sipp failed: see $work/sipp.out" >&2; tail -n 5 "$work/sipp.out" "$work/agent_sipp.out" >&2; exit 1; }
stats=$(grep 'stopped; all records written' "$work/engine.log" | sed 's/\x1b\[[0-9;]*m//g' || true)
field() { echo "$stats" | grep -o "$1=[0-9]*" | cut -d= -f2; }
stat_field() { # FILE COLUMN: the last row's value of a -trace_stat column
  local header last n
  header=$(head -n 1 "$1"); last=$(tail -n 1 "$1")
  n=$(echo "$header" | tr ';' '\n' | grep -n "^$2$" | cut -d: -f1 | head -1)
  echo "$last" | cut -d';' -f"$n"
}
attempted=$(stat_field "$work/stat.csv" 'TotalCallCreated')
success=$(stat_field "$work/stat.csv" 'SuccessfulCall(C)')
failed=$(stat_field "$work/stat.csv" 'FailedCall(C)')
agent_in=$(stat_field "$work/agent_stat.csv" 'TotalCallCreated' || echo "?")
agent_ok=$(stat_field "$work/agent_stat.csv" 'SuccessfulCall(C)' || echo "?")
agent_failed=$(stat_field "$work/agent_stat.csv" 'FailedCall(C)' || echo "?")
# The most agent calls up at once, from the UAS's per-second statistics.
cc=$(head -n 1 "$work/agent_stat.csv" | tr ';' '\n' | grep -n '^CurrentCall$' | cut -d: -f1)
agent_peak=$(tail -n +2 "$work/agent_stat.csv" | cut -d';' -f"$cc" | sort -n | tail -1)

rec_files=$(find "$work" -path '*recordings/*' -name '*.wav' | wc -l)
rec_bytes=$(find "$work" -path '*recordings/*' -name '*.wav' -printf '%s\n' | awk '{s += $1} END {print s + 0}')
# The call records only, not the offers stream beside them.
cat "$work"/cdr*/[0-9]*.jsonl > "$work/all.jsonl"
records=$(wc -l < "$work/all.jsonl")
answered=$(jq -s '[.[] | select(.queue_result == "answered")] | length' "$work/all.jsonl")
results=$(jq -rs '[.[] | .queue_result // "none"] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$work/all.jsonl")
outcomes=$(jq -rs '[.[] | .outcome] | group_by(.) | map("\(.[0])=\(length)") | join(" ")' "$work/all.jsonl")
# Nearest-rank percentiles of wait_ms over the answered calls.
pct() {
  jq -s --argjson p "$1" '[.[] | select(.queue_result == "answered") | .wait_ms] | sort
    | if length == 0 then null else .[((length * $p / 100) | ceil) - 1] end' "$work/all.jsonl"
}
wait_p50=$(pct 50); wait_p95=$(pct 95); wait_max=$(pct 100)
# Queue entry to the agent's 200 OK: the ACD's own part of wait_ms (the
# rest is the agent's number announced to the caller).
ring_pct() {
  jq -s --argjson p "$1" '
    def ms: sub("\\.(?<f>[0-9]+)Z$"; "Z") as $s | (($s | fromdateiso8601) * 1000)
      + ((capture("\\.(?<f>[0-9]{3})") // {f: "0"}).f | tonumber);
    [.[] | select(.queue_result == "answered") | (.agent_answered_at | ms) - (.queued_at | ms)] | sort
    | if length == 0 then null else .[((length * $p / 100) | ceil) - 1] end' "$work/all.jsonl"
}
ring_p50=$(ring_pct 50); ring_p95=$(ring_pct 95)
# Queue entry to the agent's INVITE (the first offer): the ACD and, with
# several nodes, the store's claim.
offer_pct() {
  jq -s --argjson p "$1" '
    def ms: sub("\\.(?<f>[0-9]+)Z$"; "Z") as $s | (($s | fromdateiso8601) * 1000)
      + ((capture("\\.(?<f>[0-9]{3})") // {f: "0"}).f | tonumber);
    [.[] | select(.first_offer_at != null and .queued_at != null) | (.first_offer_at | ms) - (.queued_at | ms)] | sort
    | if length == 0 then null else .[((length * $p / 100) | ceil) - 1] end' "$work/all.jsonl"
}
offer_p50=$(offer_pct 50); offer_p99=$(offer_pct 99)
# The cluster threads' round trips to the store (every node, start to stop).
round_trips=$(cat "$work"/engine*.log | sed 's/\x1b\[[0-9;]*m//g' | { grep -o 'round_trips=[0-9]*' || true; } | cut -d= -f2 | awk '{s += $1} END {print s + 0}')
elapsed=$(echo "$end - $start" | bc)
cpu_pct=$(echo "scale=1; ($cpu1 - $cpu0) * 100 / $hz / $elapsed" | bc)
concurrent=$(( RATE * TALK_MS / 1000 ))

cat <<REPORT
machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
command: bench/acd_load.sh $CALLS $RATE $AGENTS $TALK_MS  (caller holds ${HOLD_MS} ms after pressing 1)
load average: start $load_start, peak 1-min $load_peak, end $load_end
agents: $AGENTS registered (register sipp exit $reg_rc), $logged_in available per the API before the run
caller calls: $attempted attempted, $success successful, $failed failed (sipp exit $sipp_rc); ~$concurrent bridged at once
agent INVITEs: $agent_in received, $agent_ok completed (answered + BYE taken), $agent_failed failed; at most $agent_peak agent calls up at once
records: $records; queue_result: $results; outcome: $outcomes
answered by an agent: $answered; wait_ms p50 $wait_p50, p95 $wait_p95, max $wait_max
queued to the agent's answer (ms): p50 $ring_p50, p95 $ring_p95
store: $STORE, nodes: $NODES; queued to the agent's INVITE (ms): p50 $offer_p50, p99 $offer_p99
calls per second completed: $(echo "scale=2; $success / $elapsed" | bc); shared-store round trips: $round_trips ($(echo "scale=1; $round_trips / ($success + 0.0001)" | bc) per call, counting the view and the heartbeat, 20 a second per node)
engine CPU: ${cpu_pct}% of one core over ${elapsed}s; peak RSS $((peak_rss / 1024)) MiB
engine CPU seconds: $(echo "scale=2; ($cpu1 - $cpu0) / $hz" | bc) (utime + stime over the caller run)
engine writes over the caller run: $((wchar1 - wchar0)) bytes written (wchar), $((wbytes1 - wbytes0)) bytes to storage (write_bytes)
recordings: ${RECORD:-as configured}; $rec_files WAV files, $rec_bytes bytes
RTP, both legs (/metrics): sent $rtp_sent_all, received $rtp_recv_all
RTP, callers' sessions only (shutdown log): sent $(field rtp_sent), received $(field rtp_received), invalid $(field rtp_invalid), resyncs $(field rtp_resyncs); send lateness p50 <= $(field send_late_p50_us) us, p99 <= $(field send_late_p99_us) us
work dir: $work
REPORT
[ "$sipp_rc" = 0 ] && [ "$failed" = 0 ] && [ "$answered" = "$CALLS" ]
