#!/usr/bin/env bash
# What recording bridged calls costs: bench/acd_load.sh run alternately
# with no queue recording (RECORD=off) and every queue recording
# (RECORD=on, stereo WAV per call under the run's recordings/ folder), A B
# A B ..., the same load each time. Both runs play no recording notice, so
# the calls' timelines are the same; only the recording differs.
#
#   bench/recording_load.sh [CALLS] [RATE] [AGENTS] [TALK_MS] [ROUNDS]
#   bench/recording_load.sh 1000 25 700 20000 2   # ~500 bridged at once, A B A B
#
# Per run it prints acd_load.sh's report; at the end one line per run and
# the differences of the medians: the engine's extra CPU per call
# (CPU-seconds per call, and % of a core per call bridged at once), and
# the recordings' disk bytes per second (WAV bytes over the caller run's
# wall time, and per call bridged at once). The WAVs are deleted after
# each run (KEEP=1 keeps them).
# Needs what acd_load.sh needs (sipp, jq, bc). Wrap it in the shared
# cargo lock on a shared machine: flock /tmp/cargo.lock bench/recording_load.sh
set -euo pipefail
CALLS=${1:-1000}
RATE=${2:-25}
AGENTS=${3:-700}
TALK_MS=${4:-20000}
ROUNDS=${5:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(mktemp -d /tmp/hotline-recbench.XXXXXX)

value() { # FILE PATTERN: the first number after PATTERN in FILE
  grep -o "$2[^0-9]*[0-9.]*" "$1" | head -1 | grep -o '[0-9.]*$'
}
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

rows=()
for round in $(seq 1 "$ROUNDS"); do
  for mode in off on; do
    log="$out/run-$round-$mode.txt"
    echo "== round $round, recording $mode" >&2
    RECORD=$mode "$here/bench/acd_load.sh" "$CALLS" "$RATE" "$AGENTS" "$TALK_MS" > "$log" 2>&1 && rc=0 || rc=$?
    cat "$log"
    work=$(grep -o 'work dir: .*' "$log" | cut -d' ' -f3)
    cpu_s=$(value "$log" 'engine CPU seconds:')
    cpu_pct=$(value "$log" 'engine CPU:')
    elapsed=$(grep -o 'of one core over [0-9.]*s' "$log" | grep -o '[0-9.]*' | tail -1)
    ok=$(grep -o 'caller calls: [0-9]* attempted, [0-9]* successful, [0-9]* failed' "$log" | awk '{print $5 "/" $7}')
    peak=$(grep -o 'at most [0-9]* agent calls up at once' "$log" | grep -o '[0-9]*')
    files=$(grep -o 'recordings: [a-z ]*; [0-9]* WAV files, [0-9]* bytes' "$log" | awk '{print $3}')
    bytes=$(grep -o 'recordings: [a-z ]*; [0-9]* WAV files, [0-9]* bytes' "$log" | awk '{print $6}')
    wchar=$(grep -o 'engine writes over the caller run: [0-9]* bytes' "$log" | grep -o '[0-9]*')
    rss=$(grep -o 'peak RSS [0-9]* MiB' "$log" | grep -o '[0-9]*')
    rows+=("$mode $cpu_s $cpu_pct $elapsed $ok $peak $files $bytes $wchar $rss $rc")
    [ "${KEEP:-0}" = 1 ] || rm -rf "$work/recordings"
  done
done

echo
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(. /etc/os-release; echo "$PRETTY_NAME")"
echo "command: bench/recording_load.sh $CALLS $RATE $AGENTS $TALK_MS $ROUNDS (~$((RATE * TALK_MS / 1000)) bridged at once); logs in $out"
printf '%-4s %9s %8s %8s %12s %9s %7s %13s %13s %6s %3s\n' \
  run cpu_s cpu_%core wall_s ok/failed agent_peak wavs wav_bytes engine_wchar rss_MiB rc
for r in "${rows[@]}"; do
  # shellcheck disable=SC2086
  printf '%-4s %9s %8s %8s %12s %9s %7s %13s %13s %6s %3s\n' $r
done
pick() { # MODE COLUMN: the median of that column (1-based) over MODE's runs
  printf '%s\n' "${rows[@]}" | awk -v m="$1" -v c="$2" '$1 == m {print $c}' | median
}
off_cpu=$(pick off 2); on_cpu=$(pick on 2)
off_pct=$(pick off 3); on_pct=$(pick on 3)
on_wall=$(pick on 4); on_files=$(pick on 7); on_bytes=$(pick on 8)
concurrent=$((RATE * TALK_MS / 1000))
echo
echo "median engine CPU: off ${off_cpu} s (${off_pct}% of a core), on ${on_cpu} s (${on_pct}% of a core)"
echo "extra CPU per recorded call: $(echo "scale=2; ($on_cpu - $off_cpu) * 1000 / $CALLS" | bc) ms of CPU per call;" \
  "$(echo "scale=4; ($on_pct - $off_pct) / $concurrent" | bc)% of a core per call bridged at once (~$concurrent)"
echo "recordings: $on_files WAVs, $on_bytes bytes; $(echo "scale=0; $on_bytes / $on_wall" | bc) bytes/s over the run," \
  "$(echo "scale=0; $on_bytes / $on_files" | bc) bytes per call, 32000 bytes/s per call bridged (stereo 8 kHz 16-bit)"
