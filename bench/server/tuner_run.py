#!/usr/bin/env python3
"""The automatic tuner on the real engine: keep N streaming /api/generate requests in flight against a
`parallama serve` started with OLLAMA_NUM_PARALLEL=auto, and print the limit the tuner sets over time and the
aggregate throughput per interval.

  OLLAMA_HOST=127.0.0.1:11500 bench/server/tuner_run.py MODEL --clients 16 --duration 120 --gen 64
"""
import argparse
import json
import os
import threading
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("model")
ap.add_argument("--clients", type=int, default=16)
ap.add_argument("--duration", type=float, default=120)
ap.add_argument("--gen", type=int, default=64)
ap.add_argument("--interval", type=float, default=10)
args = ap.parse_args()
host = os.environ.get("OLLAMA_HOST", "127.0.0.1:11434")
base = f"http://{host}"
tokens = 0
lock = threading.Lock()
stop = time.time() + args.duration


def client(i):
    global tokens
    n = 0
    while time.time() < stop:
        body = json.dumps({"model": args.model, "prompt": f"Story {i}-{n}: once upon a time there was a", "stream": False,
                           "options": {"num_predict": args.gen, "seed": i * 1000 + n}}).encode()
        n += 1
        try:
            r = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/generate", body), timeout=600))
            with lock:
                tokens += r.get("eval_count", 0)
        except Exception as e:  # noqa: BLE001
            print("request failed:", e)


threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
for t in threads:
    t.start()
t0 = time.time()
last_tokens, last_t = 0, t0
print(f"{'t (s)':>6} {'limit':>5} {'source':>7} {'running':>7} {'queued':>6} {'tok/s':>7}  last tuner reason")
while time.time() < stop:
    time.sleep(args.interval)
    st = json.load(urllib.request.urlopen(f"{base}/api/parallel", timeout=10))
    m = next((x for x in st["models"] if x["model"].startswith(args.model)), None)
    now = time.time()
    with lock:
        rate = (tokens - last_tokens) / (now - last_t)
        last_tokens, last_t = tokens, now
    if m:
        reason = m.get("tuner", {}).get("last_reason", "")
        print(f"{now - t0:6.0f} {m['num_parallel']:5d} {m['source']:>7} {m['running']:7d} {m['queued']:6d} {rate:7.1f}  {reason[:110]}")
for t in threads:
    t.join(timeout=700)
