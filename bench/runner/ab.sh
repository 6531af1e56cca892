#!/usr/bin/env bash
# Alternated A/B of parallama binaries through the runner: each round runs
# sweep.sh once per binary, in turn, at one K (64-token prompts, 64 generated,
# 2 rounds per client, 2 threads), so the neighbours' load on a shared host
# hits the binaries alike. Prints every run's summary row, then per binary
# the median aggregate tok/s, TTFT p50 and inter-token p50.
#
#   bench/runner/ab.sh MODEL ROUNDS BINARY... [-- K]      (K defaults to 8)
#   e.g. bench/runner/ab.sh /work/models/tiny-q4_0.gguf 6 /tmp/base/parallama build/bin/parallama
#
# With PROBE=path/to/bench_kernels, each run is preceded by a host probe: the
# 2-thread int8 tile rate on an L2-resident Q4_0 matrix at 8 tokens (Gvnni/s)
# and a 2-thread memory read (GB/s). A neighbour on this vCPU's sibling
# hyperthread halves the first, a neighbour streaming memory lowers the
# second; the probe says which host a run measured. Each row then ends with
# the two probe figures, and the summary adds their medians.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="${1:?usage: ab.sh MODEL ROUNDS BINARY... [-- K]}"; rounds="${2:?rounds}"; shift 2
bins=(); k=8
while [[ $# -gt 0 ]]; do
  if [[ "$1" == "--" ]]; then k="${2:?K after --}"; break; fi
  bins+=("$1"); shift
done
[[ ${#bins[@]} -ge 1 ]] || { echo "ab.sh: no binaries" >&2; exit 2; }
probe="${PROBE:-}"
[[ -z "$probe" || -x "$probe" ]] || { echo "ab.sh: PROBE=$probe is not an executable" >&2; exit 2; }
# Prints "VNNI MEM": Gvnni/s of the in-cache tile and GB/s of the read.
host_probe() {
  PARALLAMA_THREADS=2 "$probe" --benchmark_filter='MatmulInCache/Q4_0/1024x2048/n_tok:8/|BM_MemRead/threads:2' \
    --benchmark_min_time=0.3 2>/dev/null | /usr/bin/python3 -c '
import re, sys
v = m = "nan"
for line in sys.stdin:
    g = re.search(r"Gvnni/s=([0-9.]+)([GM])", line)
    if g: v = "%.2f" % (float(g.group(1)) / (1000 if g.group(2) == "M" else 1))
    b = re.search(r"GB/s=([0-9.]+)([GM])", line)
    if b and "MemRead" in line: m = "%.1f" % (float(b.group(1)) / (1000 if b.group(2) == "M" else 1))
print(v, m)'
}
out="$(mktemp -d /tmp/parallama_ab_XXXXXX)"
for ((r = 0; r < rounds; ++r)); do
  for i in "${!bins[@]}"; do
    host=""
    [[ -n "$probe" ]] && host="$(host_probe)"
    row="$("$here/sweep.sh" "$model" --bin "${bins[$i]}" --threads 2 --rounds 2 --ks "$k" --n-predict 64 \
      --out "$out/r${r}_b$i" 2>/dev/null | grep -E "^ +$k " || true)"
    echo "$i $row${row:+ }$host"
  done
done | tee "$out/rows.txt" | /usr/bin/python3 -c '
import statistics, sys
names = sys.argv[1:]
runs = {}
for line in sys.stdin:
    f = line.split()
    print(names[int(f[0])], " ".join(f[1:]), flush=True)
    if len(f) > 10:
        probe = [float(x) for x in f[11:13]] if len(f) >= 13 else []
        runs.setdefault(int(f[0]), []).append([float(f[2]), float(f[5]), float(f[7])] + probe)
for i, n in enumerate(names):
    v = runs.get(i, [])
    if not v: print(f"{n}: no successful run"); continue
    med = lambda j: statistics.median(x[j] for x in v)
    agg = " ".join("%.1f" % x[0] for x in v)
    s = f"{n}: aggregate tok/s median {med(0):.1f} ({agg}); TTFT p50 median {med(1):.0f} ms; inter-token p50 median {med(2):.1f} ms"
    if all(len(x) == 5 for x in v):
        s += f"; host probe median {med(3):.2f} Gvnni/s, {med(4):.1f} GB/s"
    print(s)
' "${bins[@]}"
