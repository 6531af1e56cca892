#!/usr/bin/env bash
# Alternated A/B of parallama binaries through the runner: each round runs
# sweep.sh once per binary, in turn, at one K (64-token prompts, 64 generated,
# 2 rounds per client, 2 threads), so the neighbours' load on a shared host
# hits the binaries alike. Prints every run's summary row, then per binary
# the median aggregate tok/s, TTFT p50 and inter-token p50.
#
#   bench/runner/ab.sh MODEL ROUNDS BINARY... [-- K]      (K defaults to 8)
#   e.g. bench/runner/ab.sh /work/models/tiny-q4_0.gguf 6 /tmp/base/parallama build/bin/parallama
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="${1:?usage: ab.sh MODEL ROUNDS BINARY... [-- K]}"; rounds="${2:?rounds}"; shift 2
bins=(); k=8
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then k="${2:?K after --}"; break; fi
  bins+=("$1"); shift
done
[[ ${#bins[@]} -ge 1 ]] || { echo "ab.sh: no binaries" >&2; exit 2; }
out="$(mktemp -d /tmp/parallama_ab_XXXXXX)"
for ((r = 0; r < rounds; ++r)); do
  for i in "${!bins[@]}"; do
    row="$("$here/sweep.sh" "$model" --bin "${bins[$i]}" --threads 2 --rounds 2 --ks "$k" --n-predict 64 \
      --out "$out/r${r}_b$i" 2>/dev/null | grep -E "^ +$k " || true)"
    echo "$i $row"
  done
done | tee "$out/rows.txt" | /usr/bin/python3 -c '
import statistics, sys
names = sys.argv[1:]
runs = {}
for line in sys.stdin:
    f = line.split()
    print(names[int(f[0])], " ".join(f[1:]), flush=True)
    if len(f) > 10: runs.setdefault(int(f[0]), []).append((float(f[2]), float(f[5]), float(f[7])))
for i, n in enumerate(names):
    v = runs.get(i, [])
    if not v: print(f"{n}: no successful run"); continue
    med = lambda j: statistics.median(x[j] for x in v)
    agg = " ".join("%.1f" % x[0] for x in v)
    print(f"{n}: aggregate tok/s median {med(0):.1f} ({agg}); TTFT p50 median {med(1):.0f} ms; inter-token p50 median {med(2):.1f} ms")
' "${bins[@]}"
