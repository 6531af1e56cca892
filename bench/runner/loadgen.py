#!/usr/bin/python3
"""Load generator for `parallama runner`: K concurrent streaming /completion clients.

Each client sends requests back to back (closed loop) with a prompt of exactly
--prompt-tokens token ids (BOS + text tokens from the runner's own /tokenize, a
different window per request so the prefix cache does not hit), --n-predict
tokens, temperature 0. Reports aggregate generated tok/s, per-stream decode
tok/s, time to first token and inter-token latency (from chunk arrival times;
a chunk that carries several tokens spreads its gap over them).

Python stdlib only:  /usr/bin/python3 bench/runner/loadgen.py --url http://127.0.0.1:8080 --clients 8
"""

import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time
import urllib.parse

WORDS = ("once upon a time there was little girl named lily she loved to play outside in the park with her friend "
         "ben one day they saw big red ball tree bird sang song mom said happy sad dog cat ran jumped fast slow "
         "because wanted help find lost toy under bed sky blue sun warm rain came home ate cake smiled hugged").split()


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Runner:
    def __init__(self, url, timeout):
        u = urllib.parse.urlparse(url)
        self.host, self.port, self.timeout = u.hostname, u.port or 80, timeout

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post_json(self, path, body):
        c = self.conn()
        try:
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                raise RuntimeError(f"POST {path}: HTTP {r.status}: {data[:300]!r}")
            return json.loads(data)
        finally:
            c.close()

    def metrics(self):
        c = self.conn()
        try:
            c.request("GET", "/metrics")
            r = c.getresponse()
            text = r.read().decode()
            if r.status != 200:
                return {}
        except OSError:
            return {}
        finally:
            c.close()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out


def make_token_pool(runner, n_tokens):
    """Text tokens (no BOS) of a pseudo-random word sequence, at least n_tokens long."""
    rng = random.Random(1234)
    pool = []
    while len(pool) < n_tokens:
        text = " ".join(rng.choice(WORDS) for _ in range(max(64, n_tokens)))
        pool += runner.post_json("/tokenize", {"content": text, "add_special": False})["tokens"]
    bos = runner.post_json("/tokenize", {"content": "", "add_special": True})["tokens"]
    return pool, bos


def one_request(runner, prompt, n_predict, fmt=None):
    """Streams one completion; returns a dict of measurements."""
    req = {"prompt": prompt, "n_predict": n_predict, "temperature": 0, "stream": True}
    if fmt is not None:
        req["format"] = fmt
    body = json.dumps(req)
    c = runner.conn()
    t0 = time.perf_counter()
    arrivals = []  # (time, n_tokens)
    final = None
    try:
        c.request("POST", "/completion", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line:
                continue
            msg = json.loads(line)
            now = time.perf_counter()
            if "error" in msg:
                raise RuntimeError(msg["error"])
            if msg.get("stop"):
                final = msg
                break
            n = len(msg.get("tokens", []))
            if n:
                arrivals.append((now, n))
    finally:
        c.close()
    t1 = time.perf_counter()
    if final is None:
        raise RuntimeError("stream ended without a final message")
    n_gen = sum(n for _, n in arrivals)
    itl = []
    for (ta, _), (tb, nb) in zip(arrivals, arrivals[1:]):
        itl += [(tb - ta) * 1000.0 / nb] * nb
    decode_s = arrivals[-1][0] - arrivals[0][0] if len(arrivals) > 1 else 0.0
    return {
        "t_start": t0,
        "t_end": t1,
        "ttft_ms": (arrivals[0][0] - t0) * 1000.0 if arrivals else float("nan"),
        "n_generated": n_gen,
        "stream_tok_s": (n_gen - arrivals[0][1]) / decode_s if decode_s > 0 else float("nan"),
        "itl_ms": itl,
        "cached_n": final.get("timings", {}).get("cached_n", 0),
        "done_reason": final.get("done_reason"),
    }


def run(args):
    runner = Runner(args.url, args.timeout)
    pool, bos = make_token_pool(runner, max(args.prompt_tokens * 16, 4096))
    need = args.prompt_tokens - len(bos)
    results, errors = [], []
    lock = threading.Lock()
    counter = [0]
    deadline = time.perf_counter() + args.duration if args.duration else None

    def next_prompt():
        with lock:
            i = counter[0]
            counter[0] += 1
        start = (i * 131) % len(pool)
        return bos + [pool[(start + j) % len(pool)] for j in range(need)]

    def client():
        done = 0
        while True:
            if deadline is not None:
                if time.perf_counter() >= deadline:
                    break
            elif done >= args.rounds:
                break
            try:
                res = one_request(runner, next_prompt(), args.n_predict, args.format)
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001 - reported, not fatal for the other clients
                with lock:
                    errors.append(str(e))
            done += 1

    m0 = runner.metrics()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    m1 = runner.metrics()

    gen = sum(r["n_generated"] for r in results)
    itl = [x for r in results for x in r["itl_ms"]]
    ttft = [r["ttft_ms"] for r in results if r["ttft_ms"] == r["ttft_ms"]]
    stream = [r["stream_tok_s"] for r in results if r["stream_tok_s"] == r["stream_tok_s"]]

    def delta(name):
        return m1.get(name, 0.0) - m0.get(name, 0.0)

    steps = delta("parallama_runner_steps_total")
    summary = {
        "url": args.url,
        "clients": args.clients,
        "prompt_tokens": args.prompt_tokens,
        "n_predict": args.n_predict,
        "format": args.format,
        "requests": len(results),
        "errors": len(errors),
        "first_errors": errors[:3],
        "wall_s": wall,
        "generated_tokens": gen,
        "agg_tok_s": gen / wall if wall > 0 else 0.0,
        "stream_tok_s_mean": statistics.fmean(stream) if stream else float("nan"),
        "stream_tok_s_p50": percentile(stream, 50),
        "ttft_ms_p50": percentile(ttft, 50),
        "ttft_ms_p95": percentile(ttft, 95),
        "itl_ms_p50": percentile(itl, 50),
        "itl_ms_p95": percentile(itl, 95),
        "cached_tokens": sum(r["cached_n"] for r in results),
        "engine_steps": steps,
        # Time the engine spent in its forward passes (scheduling to logits):
        # wall_s minus this is what sampling, streaming, HTTP and the clients add.
        "engine_forward_s": delta("parallama_runner_step_seconds_total"),
        "tokens_per_step": (delta("parallama_runner_generated_tokens_total") +
                            delta("parallama_runner_prompt_tokens_total")) / steps if steps else float("nan"),
        "preemptions": delta("parallama_runner_preemptions_total"),
        "parallel": m1.get("parallama_runner_parallel"),
    }
    return summary


def print_table(s):
    cols = [
        ("clients", "{:>7}", s["clients"]),
        ("reqs", "{:>5}", s["requests"]),
        ("errs", "{:>4}", s["errors"]),
        ("gen_tok", "{:>8}", s["generated_tokens"]),
        ("wall_s", "{:>7.2f}", s["wall_s"]),
        ("agg_tok/s", "{:>9.1f}", s["agg_tok_s"]),
        ("stream_tok/s", "{:>12.1f}", s["stream_tok_s_p50"]),
        ("ttft_p50_ms", "{:>11.1f}", s["ttft_ms_p50"]),
        ("ttft_p95_ms", "{:>11.1f}", s["ttft_ms_p95"]),
        ("itl_p50_ms", "{:>10.2f}", s["itl_ms_p50"]),
        ("itl_p95_ms", "{:>10.2f}", s["itl_ms_p95"]),
        ("tok/step", "{:>8.2f}", s["tokens_per_step"]),
    ]
    print("  ".join(f"{name:>{len(fmt.format(v))}}" for name, fmt, v in cols))
    print("  ".join(fmt.format(v) for _, fmt, v in cols))
    for e in s["first_errors"]:
        print("error:", e, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080", help="runner base URL")
    ap.add_argument("--clients", "-k", type=int, default=4, help="concurrent streaming clients")
    ap.add_argument("--prompt-tokens", type=int, default=64, help="prompt length in tokens (BOS included)")
    ap.add_argument("--n-predict", type=int, default=128, help="tokens to generate per request")
    ap.add_argument("--rounds", type=int, default=2, help="requests per client (ignored with --duration)")
    ap.add_argument("--duration", type=float, default=0, help="run for this many seconds instead of --rounds")
    ap.add_argument("--timeout", type=float, default=600, help="per-request socket timeout, seconds")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    ap.add_argument("--format", help='structured output: "json" or a file holding a JSON schema')
    args = ap.parse_args()
    if args.format is not None and args.format != "json":
        with open(args.format) as f:
            args.format = json.load(f)
    if args.clients < 1 or args.prompt_tokens < 2 or args.n_predict < 1:
        ap.error("need --clients >= 1, --prompt-tokens >= 2, --n-predict >= 1")
    s = run(args)
    if args.json:
        clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in s.items()}  # NaN is not JSON
        print(json.dumps(clean, indent=1))
    else:
        print_table(s)
    return 1 if s["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
