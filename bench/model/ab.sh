#!/usr/bin/env bash
# Alternated A/B of two bench_e2e binaries on the 8-stream engine round
# (64-token prompts, 64 generated, 2 threads): on a shared host single runs
# move by +-15-30% with the neighbours' load, so each pair runs A then B in the
# same minute. Prints every run's round line, then per binary the medians of
# tok/s, prefill and decode step, and the median of the per-pair ratios.
#
#   bench/model/ab.sh PAIRS A B [MODEL]     (MODEL defaults to /work/models/tiny-q4_0.gguf)
#   e.g. bench/model/ab.sh 6 /tmp/base/build/bin/bench_e2e build/bin/bench_e2e
set -euo pipefail
pairs="${1:?usage: ab.sh PAIRS A B [MODEL]}"; a="${2:?binary A}"; b="${3:?binary B}"
model="${4:-/work/models/tiny-q4_0.gguf}"
for x in "$a" "$b"; do [[ -x "$x" ]] || { echo "ab.sh: $x is not an executable" >&2; exit 2; }; done
[[ -f "$model" ]] || { echo "ab.sh: no model at $model" >&2; exit 2; }
for ((i = 0; i < pairs; ++i)); do
  for which in A B; do
    bin="$a"; [[ "$which" == B ]] && bin="$b"
    line="$("$bin" "$model" --threads 2 --round 8 --prompt 64 --gen 64 --reps 1 2>&1 | grep 'round K' || true)"
    echo "$which $line"
  done
done | tee /dev/stderr | /usr/bin/python3 -c '
import re, statistics as st, sys
runs = {"A": [], "B": []}
for line in sys.stdin:
    m = re.match(r"(\w) .*prefill (\d+) ms, decode step ([\d.]+) ms.*= ([\d.]+) tok/s", line)
    if m:
        runs[m[1]].append((float(m[4]), float(m[2]), float(m[3])))
for k in "AB":
    v = runs[k]
    if v:
        print(f"{k}: tok/s median {st.median(r[0] for r in v):.1f}, prefill median {st.median(r[1] for r in v):.0f} ms, "
              f"step median {st.median(r[2] for r in v):.1f} ms")
pairs = list(zip(runs["A"], runs["B"]))
if pairs:
    tok = [b[0] / a[0] for a, b in pairs]
    print(f"paired tok/s B/A: median {st.median(tok):.3f}, {sum(r > 1 for r in tok)} of {len(tok)} higher; "
          f"paired step A/B: median {st.median(a[2] / b[2] for a, b in pairs):.3f}")
'
