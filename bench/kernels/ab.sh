#!/usr/bin/env bash
# Alternated A/B of bench_kernels binaries on one benchmark: on a shared host
# single runs move by +-30% with the neighbours' load, so each round runs
# every binary once, in turn, and the summary gives per binary the best and
# the median of the rounds, for time (ms) and rate (GOP/s) counters alike,
# and for each later binary the median of its per-round GOP/s ratios to the
# first binary's (a paired comparison: both ran in the same minute).
#
#   bench/kernels/ab.sh ROUNDS FILTER BINARY...      (PARALLAMA_THREADS as usual, default 2)
#   e.g. bench/kernels/ab.sh 10 'BatchStep/Q4_0/n_tok:8' /tmp/base/bench_kernels build/bin/bench_kernels
set -euo pipefail
rounds="${1:?usage: ab.sh ROUNDS FILTER BINARY...}"; filter="${2:?filter}"; shift 2
[[ $# -ge 1 ]] || { echo "ab.sh: no binaries" >&2; exit 2; }
for b in "$@"; do [[ -x "$b" ]] || { echo "ab.sh: $b is not an executable" >&2; exit 2; }; done
for ((r = 0; r < rounds; ++r)); do
  for i in $(seq 0 $(($# - 1))); do
    b="${@:$((i + 1)):1}"
    line="$(PARALLAMA_THREADS="${PARALLAMA_THREADS:-2}" "$b" --benchmark_filter="$filter" --benchmark_min_time=0.5 2>&1 |
      grep -E '^[A-Za-z]' | grep -v '^Run\|^CPU\|^Load\|^Benchmark' | head -1 || true)"
    ms="$(grep -oE '[0-9.]+ ms' <<<"$line" | head -1 | cut -d' ' -f1 || true)"
    gops="$(grep -oE 'GOP/s=[0-9.]+' <<<"$line" | head -1 | cut -d= -f2 || true)"
    echo "$i ${ms:-nan} ${gops:-nan}"
  done
done | /usr/bin/python3 -c '
import math, statistics, sys
names = sys.argv[1:]
ms, gops = {}, {}
for line in sys.stdin:
    i, a, b = line.split()
    ms.setdefault(int(i), []).append(float(a)); gops.setdefault(int(i), []).append(float(b))
for i, n in enumerate(names):
    m = [v for v in ms.get(i, []) if not math.isnan(v)]
    g = [v for v in gops.get(i, []) if not math.isnan(v)]
    s = f"{n}: "
    runs = " ".join("%g" % v for v in m)
    if m: s += f"ms best {min(m):.1f} median {statistics.median(m):.1f} ({runs})"
    if g: s += f"  GOP/s best {max(g):.1f} median {statistics.median(g):.1f}"
    # Rounds alternate the binaries, so each round is a pair against the first binary.
    base = gops.get(0, [])
    pairs = [(a, b) for a, b in zip(base, gops.get(i, [])) if i > 0 and not math.isnan(a) and not math.isnan(b)]
    if pairs:
        r = [b / a for a, b in pairs]
        s += f"  paired GOP/s ratio to {names[0]}: median {statistics.median(r):.3f}, {sum(x > 1 for x in r)} of {len(r)} higher"
    print(s)' "$@"
