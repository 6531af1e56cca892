"""GET /metrics on a live `parallama serve`: valid Prometheus text, counters that move with requests and
survive a runner restart, running/waiting while requests are in flight, vLLM aliases behind
PARALLAMA_VLLM_METRICS=1, and scrapes that stay fast while the runner is busy."""
import http.client
import json
import math
import os
import signal
import subprocess
import time

import pytest

import promparse
from conftest import DEMO, Server, make_slow_model

DEMO_KEY = "stories260k:latest"
GREEDY = {"temperature": 0, "num_predict": 24}


def scrape(s):
    status, payload, resp = s.request("GET", "/metrics", raw=True)
    assert status == 200, payload
    assert resp.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    return promparse.parse(payload.decode())


def value(fams, name, suffix="", **labels):
    fam = fams.get(name)
    return None if fam is None else fam.value(suffix, **labels)


def wait_metrics(s, pred, timeout=10.0):
    """Scrapes until pred(families) is true; returns those families (the cache refreshes every 250 ms)."""
    deadline = time.time() + timeout
    while True:
        fams = scrape(s)
        if pred(fams):
            return fams
        if time.time() > deadline:
            raise AssertionError("metrics did not reach the expected state:\n" +
                                 s.request("GET", "/metrics")[1])
        time.sleep(0.05)


def generate(s, model, prompt="Once upon a time", options=GREEDY):
    status, body = s.post("/api/generate", {"model": model, "prompt": prompt, "stream": False, "options": options})
    assert status == 200, body
    return body


def check_conventions(fams, allow_vllm):
    for name, fam in fams.items():
        assert fam.help, f"{name} has no HELP"
        assert name.startswith("parallama_") or (allow_vllm and name.startswith("vllm:")), name
        if fam.type == "counter":
            assert name.endswith("_total"), name
        if name.startswith("parallama_"):
            assert ":" not in name, name


def test_promparse_rejects_broken_text():
    ok = ('# HELP a_total A.\n# TYPE a_total counter\na_total{m="x\\"y\\\\z\\n"} 3\n'
          '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3.5\nh_count 2\n')
    fams = promparse.parse(ok)
    assert fams["a_total"].value(m='x"y\\z\n') == 3
    assert fams["h"].value("_count") == 2
    bad = {
        "no TYPE": "x 1\n",
        "bad name": "# TYPE 1x gauge\n1x 1\n",
        "second TYPE": "# TYPE x gauge\n# TYPE x gauge\nx 1\n",
        "not contiguous": "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 1\n",
        "bad escape": '# TYPE x gauge\nx{a="\\t"} 1\n',
        "unterminated": '# TYPE x gauge\nx{a="b} 1\n',
        "duplicate series": "# TYPE x gauge\nx 1\nx 2\n",
        "negative counter": "# TYPE x_total counter\nx_total -1\n",
        "bad value": "# TYPE x gauge\nx one\n",
        "no +Inf": '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
        "not cumulative": '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="2"} 1\n'
                          'h_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
        "+Inf != count": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
        "no sum": '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\n',
    }
    for why, text in bad.items():
        with pytest.raises(promparse.PromError):
            promparse.parse(text)
            pytest.fail(why)


def test_metrics_parse_and_counters_move(server):
    fams = scrape(server)
    check_conventions(fams, allow_vllm=False)
    assert value(fams, "parallama_process_resident_memory_bytes") > 1 << 20
    assert value(fams, "parallama_system_memory_available_bytes") > 0
    assert value(fams, "parallama_system_load1") >= 0

    body = generate(server, "stories260k")
    n_prompt = body["prompt_eval_count"]
    fams = wait_metrics(server, lambda f: (value(f, "parallama_generated_tokens_total", model=DEMO_KEY) or 0) >= 24)
    check_conventions(fams, allow_vllm=False)
    m = {"model": DEMO_KEY}
    assert value(fams, "parallama_models_loaded") == 1
    assert value(fams, "parallama_runner_ready", **m) == 1
    assert value(fams, "parallama_generated_tokens_total", **m) == 24
    assert value(fams, "parallama_prompt_tokens_total", **m) == n_prompt
    assert value(fams, "parallama_requests_finished_total", reason="length", **m) == 1
    assert value(fams, "parallama_requests_finished_total", reason="stop", **m) == 0
    assert value(fams, "parallama_preemptions_total", **m) == 0
    assert value(fams, "parallama_prefix_cache_queries_total", **m) == 1
    assert value(fams, "parallama_requests_running", **m) == 0
    assert value(fams, "parallama_requests_waiting", **m) == 0
    assert value(fams, "parallama_parallel_limit", **m) >= 1
    assert fams["parallama_parallel_info"].series(**m)[0][0]["source"] in ("env", "default", "modelfile", "admin",
                                                                             "auto", "forced-1")
    for h in ("parallama_time_to_first_token_seconds", "parallama_e2e_request_latency_seconds",
              "parallama_request_queue_time_seconds"):
        assert fams[h].type == "histogram"
        assert value(fams, h, "_count", **m) == 1, h
    # 24 tokens: the first is TTFT, the others are inter-token gaps (fewer when the runner sends the first
    # line with more than one token).
    itl = value(fams, "parallama_inter_token_latency_seconds", "_count", **m)
    assert 1 <= itl <= 23
    ttft = value(fams, "parallama_time_to_first_token_seconds", "_sum", **m)
    e2e = value(fams, "parallama_e2e_request_latency_seconds", "_sum", **m)
    assert 0 < ttft <= e2e <= body["total_duration"] / 1e9 + 0.05

    total = value(fams, "parallama_kv_cache_blocks_total", **m)
    assert total > 0 and 0 <= value(fams, "parallama_kv_cache_blocks_used", **m) <= total
    assert 0 <= value(fams, "parallama_kv_cache_usage_ratio", **m) <= 1
    info = fams["parallama_cache_config_info"].series(**m)
    assert len(info) == 1 and info[0][1] == 1
    assert info[0][0]["block_size"] == "32" and int(info[0][0]["num_blocks"]) == total
    assert value(fams, "parallama_model_weights_bytes", **m) == os.path.getsize(DEMO)
    assert value(fams, "parallama_runner_resident_memory_bytes", **m) > 1 << 20
    assert value(fams, "parallama_runner_starts_total", **m) == 1
    assert not any(name.startswith("vllm:") for name in fams)

    # A second request moves every counter by its own amount.
    generate(server, "stories260k", options={"temperature": 0, "num_predict": 10})
    fams = wait_metrics(server, lambda f: value(f, "parallama_generated_tokens_total", model=DEMO_KEY) >= 34)
    assert value(fams, "parallama_generated_tokens_total", **m) == 34
    assert value(fams, "parallama_requests_finished_total", reason="length", **m) == 2
    assert value(fams, "parallama_time_to_first_token_seconds", "_count", **m) == 2
    assert itl < value(fams, "parallama_inter_token_latency_seconds", "_count", **m) <= itl + 9
    # The same prompt again: its full blocks (if any) come from the prefix cache.
    assert value(fams, "parallama_prefix_cache_queries_total", **m) == 2


def test_openai_requests_are_timed_too(server):
    before = scrape(server)
    n0 = value(before, "parallama_time_to_first_token_seconds", "_count", model=DEMO_KEY) or 0
    status, body = server.post("/v1/completions", {"model": "stories260k", "prompt": "Once upon a time",
                                                   "max_tokens": 8, "temperature": 0})
    assert status == 200, body
    fams = scrape(server)  # the histograms are written in the proxy path: no poll to wait for
    assert value(fams, "parallama_time_to_first_token_seconds", "_count", model=DEMO_KEY) == n0 + 1


def open_stream(s, model, prompt):
    """Sends a long streaming generation and leaves it running; closing the connection cancels it."""
    conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
    conn.request("POST", "/api/generate", body=json.dumps({
        "model": model, "prompt": prompt, "options": {"num_predict": 100000, "temperature": 0}}),
        headers={"Content-Type": "application/json"})
    return conn


def test_in_flight_requests_vllm_aliases_and_fast_scrapes(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "1", "PARALLAMA_VLLM_METRICS": "1"}, tmp=str(tmp_path))
    conns = []
    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "slow", "prompt": ""})[0] == 200  # loaded
        m = {"model": "slow:latest"}
        conns.append(open_stream(s, "slow", "Once upon a time"))
        wait_metrics(s, lambda f: value(f, "parallama_requests_running", **m) == 1
                     and value(f, "parallama_engine_requests_running", **m) == 1)
        conns.append(open_stream(s, "slow", "The little dog"))
        fams = wait_metrics(s, lambda f: value(f, "parallama_requests_waiting", **m) == 1
                            and value(f, "parallama_engine_requests_waiting", **m) == 1)
        check_conventions(fams, allow_vllm=True)
        assert value(fams, "parallama_requests_running", **m) == 1
        assert value(fams, "parallama_parallel_limit", **m) == 1
        assert value(fams, "parallama_kv_cache_usage_ratio", **m) > 0

        # vLLM's names and labels, the same numbers.
        v = {"model_name": "slow:latest"}
        assert value(fams, "vllm:num_requests_running", **v) == 1
        assert value(fams, "vllm:num_requests_waiting", **v) == 1
        usage = value(fams, "vllm:kv_cache_usage_perc", **v)
        assert 0 < usage <= 1 and value(fams, "vllm:gpu_cache_usage_perc", **v) == usage
        assert fams["vllm:num_requests_waiting"].type == "gauge"
        info = fams["vllm:cache_config_info"].series(**v)
        assert len(info) == 1 and info[0][1] == 1
        assert info[0][0]["block_size"] == "32"
        assert int(info[0][0]["num_gpu_blocks"]) == value(fams, "parallama_kv_cache_blocks_total", **m)

        # While the runner decodes, a scrape answers from the cache: 20 in well under a second.
        busy_before = value(fams, "parallama_generated_tokens_total", **m)
        t0 = time.time()
        for _ in range(20):
            fams = scrape(s)
        elapsed = time.time() - t0
        assert elapsed < 1.0, f"20 scrapes took {elapsed:.2f} s"
        assert value(fams, "parallama_requests_running", **m) == 1  # still busy all along
        fams = wait_metrics(s, lambda f: value(f, "parallama_generated_tokens_total", **m) > busy_before)
    finally:
        for c in conns:
            c.close()
        s.stop()


def runner_pids(s):
    line = [l for l in s.read_log().splitlines() if "starting llama server" in l][-1]
    port = line.split("--port ")[1].split('"')[0].split()[0]
    return subprocess.run(["pgrep", "-f", f"runner --model .* --port {port}"], capture_output=True,
                          text=True).stdout.split()


def test_counters_survive_a_runner_restart(tmp_path):
    s = Server(tmp=str(tmp_path))
    try:
        m = {"model": DEMO_KEY}
        generate(s, "stories260k")
        wait_metrics(s, lambda f: (value(f, "parallama_generated_tokens_total", **m) or 0) >= 24)
        for pid in runner_pids(s):
            os.kill(int(pid), signal.SIGKILL)
        deadline = time.time() + 10
        while s.request("GET", "/api/ps")[1]["models"] and time.time() < deadline:
            time.sleep(0.05)
        seen = []
        # The model is gone: its counters stay, its gauges go.
        fams = wait_metrics(s, lambda f: value(f, "parallama_models_loaded") == 0)
        assert value(fams, "parallama_generated_tokens_total", **m) == 24
        assert value(fams, "parallama_requests_running", **m) is None
        assert value(fams, "parallama_models_loaded") == 0

        generate(s, "stories260k", options={"temperature": 0, "num_predict": 10})  # a new runner

        def moved(f):
            seen.append(value(f, "parallama_generated_tokens_total", **m))
            return seen[-1] >= 34
        fams = wait_metrics(s, moved)
        assert seen == sorted(seen), f"the counter went down: {seen}"
        assert value(fams, "parallama_generated_tokens_total", **m) == 34
        assert value(fams, "parallama_requests_finished_total", reason="length", **m) == 2
        assert value(fams, "parallama_runner_starts_total", **m) == 2
        assert value(fams, "parallama_time_to_first_token_seconds", "_count", **m) == 2
    finally:
        s.stop()


def test_bad_vllm_metrics_value_stops_the_server(tmp_path):
    with pytest.raises(RuntimeError, match="PARALLAMA_VLLM_METRICS"):
        Server({"PARALLAMA_VLLM_METRICS": "maybe"}, tmp=str(tmp_path))
