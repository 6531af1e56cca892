"""The admin API (/api/parallel): per-model limits, live changes under load, refusals, auth."""
import concurrent.futures
import subprocess
import time

import pytest

from conftest import BIN, DEMO, Server, make_model, make_slow_model


def test_per_model_setting_overrides_env(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "2"}, tmp=str(tmp_path))
    try:
        mf = tmp_path / "Modelfile"
        mf.write_text(f"FROM {DEMO}\nPARAMETER num_parallel 3\n")
        assert s.cli("create", "three", "-f", str(mf)).returncode == 0
        _, show = s.post("/api/show", {"model": "three"})
        assert "num_parallel" in show["parameters"]
        for m in ("three", "stories260k"):
            assert s.post("/api/generate", {"model": m, "prompt": ""})[0] == 200
        _, ps = s.request("GET", "/api/ps")
        by = {m["name"]: m for m in ps["models"]}
        assert by["three:latest"]["num_parallel"] == 3 and by["three:latest"]["parallel_source"] == "modelfile"
        assert by["stories260k:latest"]["num_parallel"] == 2 and by["stories260k:latest"]["parallel_source"] == "env"
        assert " --parallel 3 " in s.read_log() and " --parallel 2 " in s.read_log()
    finally:
        s.stop()


def test_live_change_under_load_loses_nothing(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "1"}, tmp=str(tmp_path))
    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "slow", "prompt": ""})[0] == 200
        status, body = s.request("GET", "/api/parallel")
        assert status == 200
        m = body["models"][0]
        assert m["model"] == "slow:latest" and m["num_parallel"] == 1 and m["source"] == "env"
        assert 0 <= m["kv_used"] <= 1 and m["kv_blocks_total"] > 0 and m["max_parallel"] >= 1

        def go(i):
            return s.post("/api/generate", {"model": "slow", "prompt": f"Once upon a time {i}", "stream": False,
                                            "options": {"num_predict": 40, "temperature": 0}})

        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            futs = [ex.submit(go, i) for i in range(6)]
            # While one runs and five wait: grow to 4, see it in /api/ps, then shrink to 2.
            deadline = time.time() + 30
            while time.time() < deadline:
                _, ps = s.request("GET", "/api/ps")
                if ps["models"] and ps["models"][0]["queued"] >= 3:
                    break
                time.sleep(0.05)
            assert ps["models"][0]["running"] == 1 and ps["models"][0]["queued"] >= 3
            status, r = s.post("/api/parallel", {"model": "slow", "num_parallel": 4})
            assert status == 200 and r["num_parallel"] == 4 and r["source"] == "admin", r
            _, ps = s.request("GET", "/api/ps")
            assert ps["models"][0]["num_parallel"] == 4 and ps["models"][0]["parallel_source"] == "admin"
            seen_running = 0
            deadline = time.time() + 30
            while time.time() < deadline and seen_running < 2:
                _, st = s.request("GET", "/api/parallel")
                seen_running = max(seen_running, st["models"][0].get("engine_running", 0))
                time.sleep(0.02)
            assert seen_running >= 2, "the runner did not admit more sequences after the change"
            assert s.post("/api/parallel", {"model": "slow", "num_parallel": 2})[0] == 200
            results = [f.result(timeout=300) for f in futs]
        assert all(st == 200 and b["eval_count"] == 40 for st, b in results), results
        _, ps = s.request("GET", "/api/ps")
        assert ps["models"][0]["num_parallel"] == 2 and ps["models"][0]["running"] == 0
    finally:
        s.stop()


def test_refused_values(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "1"}, tmp=str(tmp_path))
    try:
        nb = make_model(str(tmp_path / "nb.gguf"), "--no-parallel")
        assert s.post("/api/create", {"model": "nb", "from": nb, "stream": False})[0] == 200
        status, r = s.post("/api/parallel", {"model": "stories260k", "num_parallel": 2})
        assert status == 404 and "not loaded" in r["error"]
        status, r = s.post("/api/parallel", {"model": "nope", "num_parallel": 2})
        assert status == 404
        for m in ("stories260k", "nb"):
            assert s.post("/api/generate", {"model": m, "prompt": ""})[0] == 200
        for bad in (0, -1, "many", 1.5, None):
            status, r = s.post("/api/parallel", {"model": "stories260k", "num_parallel": bad})
            assert status == 400, (bad, r)
        # More sequences than the KV pool has blocks: refused with the pool's numbers. The pool was sized
        # at load for one sequence of the model's context and a new limit never resizes it.
        _, st = s.request("GET", "/api/parallel")
        m = next(m for m in st["models"] if m["model"] == "stories260k:latest")
        maxp, ctx = m["max_parallel"], m["context_length"]
        status, r = s.post("/api/parallel", {"model": "stories260k", "num_parallel": maxp + 1})
        assert status == 400 and "KV" in r["error"], r
        assert f"holds only 1 sequence of the model's context ({ctx} tokens;" in r["error"], r
        assert f"{m['kv_blocks_total']} blocks of" in r["error"] and f"at most {maxp} can run" in r["error"], r
        assert "fixed while the model stays loaded" in r["error"], r
        # The refused value changed nothing.
        _, st = s.request("GET", "/api/parallel")
        m = next(m for m in st["models"] if m["model"] == "stories260k:latest")
        assert m["num_parallel"] == 1 and m["source"] == "env", m
        status, r = s.post("/api/parallel", {"model": "nb", "num_parallel": 2})
        assert status == 400 and "does not currently support parallel requests" in r["error"]
        # Above the pool's full contexts but within its blocks: accepted, with a warning.
        status, r = s.post("/api/parallel", {"model": "stories260k", "num_parallel": 2})
        assert status == 200 and "warning" in r and "preempted" in r["warning"]
    finally:
        s.stop()


def test_admin_auth(tmp_path):
    s = Server({"PARALLAMA_ADMIN_TOKEN": "s3cret"}, tmp=str(tmp_path))
    try:
        status, r = s.request("GET", "/api/parallel")
        assert status == 401
        status, r = s.request("GET", "/api/parallel", headers={"Authorization": "Bearer wrong"})
        assert status == 403
        status, r = s.request("GET", "/api/parallel", headers={"Authorization": "Bearer s3cret"})
        assert status == 200 and r == {"models": []}
        env_ok = dict(s.env, PARALLAMA_ADMIN_TOKEN="s3cret")
        r = subprocess.run([BIN, "parallel"], env=env_ok, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        s.stop()


def test_admin_is_loopback_only_without_a_token(tmp_path):
    """A non-loopback client is refused: reach the server through another local address."""
    import socket
    addrs = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    addrs = [a for a in addrs if not a.startswith("127.")]
    if not addrs:
        pytest.skip("this machine has no non-loopback IPv4 address to test from")
    s = Server({"OLLAMA_HOST": "0.0.0.0:0"}, tmp=str(tmp_path))  # replaced below
    s.stop()
    port = __import__("conftest").free_port()
    s = Server({"OLLAMA_HOST": f"0.0.0.0:{port}"}, tmp=str(tmp_path / "b"))
    s.port = port
    try:
        import http.client
        conn = http.client.HTTPConnection(addrs[0], port, timeout=10)
        conn.request("GET", "/api/parallel")
        r = conn.getresponse()
        assert r.status == 403 and b"loopback" in r.read()
        conn = http.client.HTTPConnection(addrs[0], port, timeout=10)
        conn.request("GET", "/api/tags")
        assert conn.getresponse().status == 200  # the rest of the API is not restricted
    finally:
        s.stop()


def test_cli_parallel(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "1"}, tmp=str(tmp_path))
    try:
        assert s.post("/api/generate", {"model": "stories260k", "prompt": ""})[0] == 200
        r = s.cli("parallel", "stories260k", "3")
        assert r.returncode == 0, r.stderr
        r = s.cli("parallel")
        assert r.returncode == 0 and "stories260k:latest" in r.stdout and "3" in r.stdout and "admin" in r.stdout
        r = s.cli("parallel", "stories260k", "0")
        assert r.returncode != 0 and "num_parallel" in r.stderr
    finally:
        s.stop()


def test_auto_parallel_runs_the_tuner(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "auto", "PARALLAMA_AVAILABLE_MEMORY": str(64 << 30)}, tmp=str(tmp_path))
    try:
        assert s.post("/api/generate", {"model": "stories260k", "prompt": ""})[0] == 200
        _, ps = s.request("GET", "/api/ps")
        assert ps["models"][0]["parallel_source"] == "auto" and ps["models"][0]["num_parallel"] == 4
        # Under load the tuner observes the runner and reports what it measured.
        def go(i):
            return s.post("/api/generate", {"model": "stories260k", "prompt": f"Tom {i}", "stream": False,
                                            "options": {"num_predict": 200}})
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(go, range(16)))
        assert all(st == 200 for st, _ in results)
        deadline = time.time() + 10  # the tuner looks every 500 ms
        while time.time() < deadline:
            _, st = s.request("GET", "/api/parallel")
            m = st["models"][0]
            if "tuner" in m:
                break
            time.sleep(0.1)
        assert m["source"] == "auto" and "tuner" in m and m["tuner"]["target_itl_ms"] == 250
        _, text, _ = s.request("GET", "/metrics", raw=True)
        assert b'parallama_tuner_limit{model="stories260k:latest"}' in text
        # A number from the admin API turns it off for that model; "auto" turns it back on.
        assert s.post("/api/parallel", {"model": "stories260k", "num_parallel": 2})[1]["source"] == "admin"
        _, st = s.request("GET", "/api/parallel")
        assert st["models"][0]["source"] == "admin" and "tuner" not in st["models"][0]
        status, r = s.post("/api/parallel", {"model": "stories260k", "num_parallel": "auto"})
        assert status == 200 and r["source"] == "auto"
        _, ps = s.request("GET", "/api/ps")
        assert ps["models"][0]["parallel_source"] == "auto"
    finally:
        s.stop()


def test_tuner_judges_latency_by_measured_token_gaps(tmp_path):
    """On the real server the tuner gets each token's gap from the streaming proxy, not only step times."""
    s = Server({"OLLAMA_NUM_PARALLEL": "auto", "PARALLAMA_AVAILABLE_MEMORY": str(64 << 30)}, tmp=str(tmp_path))
    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "slow", "prompt": ""})[0] == 200

        def go(i):
            return s.lines("/api/generate", {"model": "slow", "prompt": f"Once upon a time {i}", "raw": True,
                                             "options": {"num_predict": 150, "temperature": 0}}, timeout=300)

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            futs = [ex.submit(go, i) for i in range(8)]
            tuner = {}
            deadline = time.time() + 60
            while time.time() < deadline and not tuner.get("itl_measured"):
                _, st = s.request("GET", "/api/parallel")
                tuner = st["models"][0].get("tuner", {})
                time.sleep(0.25)
            results = [f.result(timeout=300) for f in futs]
        assert all(status == 200 for status, _ in results)
        assert tuner.get("itl_measured") is True and tuner["itl_p90_ms"] > 0, tuner
    finally:
        s.stop()


def test_bad_target_itl_is_a_startup_error(tmp_path):
    env = dict(__import__("os").environ, PARALLAMA_TARGET_ITL="soon", OLLAMA_MODELS=str(tmp_path))
    r = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "PARALLAMA_TARGET_ITL" in r.stderr
