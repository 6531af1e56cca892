#!/usr/bin/env bash
# Throughput vs parallelism: for K in 1 2 4 8 16, start `parallama runner
# --parallel K` on MODEL and drive it with K streaming clients (64-token
# prompts, 128 generated tokens by default, temperature 0) using loadgen.py.
#
#   bench/runner/sweep.sh MODEL [--bin PATH] [--threads T] [--rounds R] [--ks "1 2 4 8 16"] [--out DIR]
#                               [--n-predict N] [--format json|SCHEMA_FILE]
#
# Each K's result is saved as DIR/k<K>.json (and the runner's log as
# DIR/k<K>.log); a summary table is printed at the end. Each sequence gets
# 256 tokens of KV (ctx-size = 256 * K), enough for 64 + 128.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
model="${1:?usage: sweep.sh MODEL [--bin PATH] [--threads T] [--rounds R] [--ks \"1 2 4 8 16\"] [--out DIR]}"
shift
bin="$root/build/bin/parallama"
threads=0
rounds=2
n_predict=128
format_args=()
ks="1 2 4 8 16"
out="$(mktemp -d /tmp/parallama_sweep_XXXXXX)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --ks) ks="$2"; shift 2 ;;
    --out) out="$2"; mkdir -p "$out"; shift 2 ;;
    --n-predict) n_predict="$2"; shift 2 ;;
    --format) format_args=(--format "$2"); shift 2 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
[[ -x "$bin" ]] || { echo "no parallama binary at $bin (use --bin)" >&2; exit 2; }
[[ -f "$model" ]] || { echo "no model at $model" >&2; exit 2; }

runner_pid=""
cleanup() { if [[ -n "$runner_pid" ]]; then kill -TERM "$runner_pid" 2>/dev/null || true; wait "$runner_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

for k in $ks; do
  port="$(free_port)"
  "$bin" runner --model "$model" --parallel "$k" --ctx-size $((256 * k)) --batch-size 512 --threads "$threads" \
    --port "$port" >"$out/k$k.log" 2>&1 &
  runner_pid=$!
  # Wait for /health 200 (the model loads in the background), or the runner to die.
  for _ in $(seq 1 6000); do
    if "$py" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1).status == 200 else 1)" 2>/dev/null; then
      break
    fi
    kill -0 "$runner_pid" 2>/dev/null || { echo "runner for K=$k exited; log:" >&2; cat "$out/k$k.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "K=$k: runner on port $port" >&2
  "$py" "$here/loadgen.py" --url "http://127.0.0.1:$port" --clients "$k" --prompt-tokens 64 --n-predict "$n_predict" \
    --rounds "$rounds" "${format_args[@]}" --json >"$out/k$k.json"
  kill -TERM "$runner_pid"
  wait "$runner_pid" || { echo "runner for K=$k exited with an error" >&2; }
  runner_pid=""
done

"$py" - "$out" $ks <<'PY'
import json, sys
out, ks = sys.argv[1], sys.argv[2:]
print(f"{'K':>3} {'agg_tok/s':>10} {'speedup':>8} {'stream_tok/s':>13} {'ttft_p50':>9} {'ttft_p95':>9} {'itl_p50':>8} {'itl_p95':>8} {'tok/step':>8} {'errs':>5}")
base = None
for k in ks:
    s = json.load(open(f"{out}/k{k}.json"))
    base = base or s["agg_tok_s"]
    f = lambda v, w, p: f"{v:>{w}.{p}f}" if v is not None else f"{'-':>{w}}"
    print(f"{k:>3} {f(s['agg_tok_s'],10,1)} {f(s['agg_tok_s']/base,8,2)} {f(s['stream_tok_s_p50'],13,1)} "
          f"{f(s['ttft_ms_p50'],9,1)} {f(s['ttft_ms_p95'],9,1)} {f(s['itl_ms_p50'],8,2)} {f(s['itl_ms_p95'],8,2)} "
          f"{f(s['tokens_per_step'],8,2)} {s['errors']:>5}")
print(f"(results in {out})")
PY
