#!/usr/bin/env python3
"""Send-interval error of the engine's RTP streams, from a capture.

Input: tshark -T fields -e frame.time_epoch -e udp.srcport (one packet per
line). Each source port is one call's stream. For each pair of consecutive
packets of a stream, the error is |interval - 20 ms|. Intervals over 60 ms
are counted as gaps (a stream paused, e.g. between a call's end and its
port's reuse) and left out of the percentiles, but reported.

    python3 bench/rtp_intervals.py rtp.tsv [PTIME_MS]
"""
import math
import sys
from collections import defaultdict


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    # Nearest rank: the smallest value with at least p% of values <= it.
    k = max(0, min(len(sorted_values) - 1, math.ceil(p / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def main():
    path = sys.argv[1]
    ptime = float(sys.argv[2]) / 1000 if len(sys.argv) > 2 else 0.020
    streams = defaultdict(list)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            streams[parts[1]].append(float(parts[0]))
    errors, gaps, packets = [], 0, 0
    for times in streams.values():
        times.sort()
        packets += len(times)
        for a, b in zip(times, times[1:]):
            d = b - a
            if d > 3 * ptime:
                gaps += 1
                continue
            errors.append(abs(d - ptime) * 1e6)
    errors.sort()
    over_2ms = sum(1 for e in errors if e > 2000)
    print(f"streams: {len(streams)}, packets: {packets}, intervals: {len(errors)}, gaps > {3 * ptime * 1000:.0f} ms: {gaps}")
    if errors:
        print(
            "interval error us: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  (> 2 ms: %d, %.3f%%)"
            % (
                percentile(errors, 50),
                percentile(errors, 90),
                percentile(errors, 99),
                percentile(errors, 99.9),
                errors[-1],
                over_2ms,
                100 * over_2ms / len(errors),
            )
        )


if __name__ == "__main__":
    main()
