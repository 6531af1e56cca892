"""Ollama's and OpenAI's HTTP API on a live `parallama serve` (plain HTTP, nothing mocked)."""
import base64
import concurrent.futures
import json
import math
import os
import struct
import subprocess

import pytest

from conftest import BIN, DEMO, Server, make_model, make_slow_model

GREEDY = {"temperature": 0, "num_predict": 24}


def cli_greedy(prompt, n):
    """The same model through `parallama generate`: the engine without the server."""
    r = subprocess.run([BIN, "generate", "-m", DEMO, "-p", prompt, "-n", str(n), "--temperature", "0"],
                       capture_output=True, text=True, check=True)
    return r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout  # generate ends its output with a newline


def test_root_and_version(server):
    status, body = server.request("GET", "/")
    assert status == 200 and body == "parallama is running"
    status, _, resp = server.request("HEAD", "/", raw=True)
    assert status == 200
    status, body = server.request("GET", "/api/version")
    assert status == 200 and isinstance(body["version"], str)


def test_tags_lists_the_demo_model(server):
    status, body = server.request("GET", "/api/tags")
    assert status == 200
    names = [m["name"] for m in body["models"]]
    assert "stories260k:latest" in names
    m = next(m for m in body["models"] if m["name"] == "stories260k:latest")
    assert m["size"] == os.path.getsize(DEMO) or m["size"] > os.path.getsize(DEMO)
    assert len(m["digest"]) == 64
    assert m["details"]["family"] == "llama" and m["details"]["format"] == "gguf"
    assert m["details"]["quantization_level"] == "F32"


def test_show(server):
    status, body = server.post("/api/show", {"model": "stories260k"})
    assert status == 200
    assert body["model_info"]["general.architecture"] == "llama"
    assert body["model_info"]["llama.block_count"] == 5
    assert body["model_info"]["tokenizer.ggml.tokens"] is None  # arrays only with verbose
    assert "FROM " in body["modelfile"]
    assert "completion" in body["capabilities"]
    status, body = server.post("/api/show", {"model": "stories260k", "verbose": True})
    assert len(body["model_info"]["tokenizer.ggml.tokens"]) == 512


def test_generate_non_stream_equals_the_engine(server):
    status, body = server.post("/api/generate", {"model": "stories260k", "prompt": "Once upon a time",
                                                 "stream": False, "options": GREEDY})
    assert status == 200, body
    assert body["done"] is True and body["done_reason"] == "length"
    assert body["eval_count"] == 24
    ids = subprocess.run([BIN, "tokenize", "-m", DEMO, "Once upon a time"], capture_output=True, text=True).stdout
    assert body["prompt_eval_count"] == len(ids.split())
    for k in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(body[k], int) and body[k] >= 0
    assert body["total_duration"] > 0
    assert body["response"] == cli_greedy("Once upon a time", 24)


def test_generate_stream(server):
    status, lines = server.lines("/api/generate", {"model": "stories260k", "prompt": "Once upon a time",
                                                   "options": GREEDY})
    assert status == 200
    assert all(not l["done"] for l in lines[:-1]) and lines[-1]["done"] is True
    assert all(l["model"] == "stories260k:latest" and "created_at" in l for l in lines)
    assert len(lines) > 2
    assert "".join(l["response"] for l in lines) == cli_greedy("Once upon a time", 24)
    assert lines[-1]["eval_count"] == 24 and lines[-1]["done_reason"] == "length"


def test_generate_system_and_raw(server):
    base = {"model": "stories260k", "stream": False, "options": GREEDY}
    _, with_sys = server.post("/api/generate", {**base, "prompt": "Tom ran.", "system": "Lily sat."})
    _, raw = server.post("/api/generate", {**base, "prompt": "Lily sat.\n\nTom ran.", "raw": True})
    assert with_sys["response"] == raw["response"]  # the fallback template: system, blank line, prompt


def test_generate_stop_and_seed(server):
    base = {"model": "stories260k", "prompt": "Once upon a time", "stream": False}
    _, a = server.post("/api/generate", {**base, "options": {"seed": 42, "num_predict": 30}})
    _, b = server.post("/api/generate", {**base, "options": {"seed": 42, "num_predict": 30}})
    assert a["response"] == b["response"]
    greedy = cli_greedy("Once upon a time", 40)
    word = greedy.split()[3]
    _, s = server.post("/api/generate", {**base, "options": {"temperature": 0, "num_predict": 40, "stop": [word]}})
    assert s["done_reason"] == "stop" and word not in s["response"]
    assert greedy.startswith(s["response"])


def test_load_and_unload_with_empty_prompt(server):
    status, body = server.post("/api/generate", {"model": "stories260k", "prompt": ""})
    assert status == 200 and body["done_reason"] == "load" and body["response"] == ""
    _, ps = server.request("GET", "/api/ps")
    assert any(m["name"] == "stories260k:latest" for m in ps["models"])
    status, body = server.post("/api/generate", {"model": "stories260k", "keep_alive": 0})
    assert status == 200 and body["done_reason"] == "unload"
    _, ps = server.request("GET", "/api/ps")
    assert not any(m["name"] == "stories260k:latest" for m in ps["models"])
    status, body = server.post("/api/chat", {"model": "stories260k", "messages": []})
    assert status == 200 and body["done_reason"] == "load" and body["message"]["role"] == "assistant"


def test_chat(server):
    msgs = [{"role": "system", "content": "Lily sat."}, {"role": "user", "content": "Tom ran."}]
    status, body = server.post("/api/chat", {"model": "stories260k", "messages": msgs, "stream": False,
                                             "options": GREEDY})
    assert status == 200
    assert body["message"]["role"] == "assistant" and body["done"] is True
    _, raw = server.post("/api/generate", {"model": "stories260k", "prompt": "Lily sat.\n\nTom ran.", "raw": True,
                                           "stream": False, "options": GREEDY})
    assert body["message"]["content"] == raw["response"]
    status, lines = server.lines("/api/chat", {"model": "stories260k", "messages": msgs, "options": GREEDY})
    assert status == 200 and lines[-1]["done"] and lines[-1]["done_reason"] == "length"
    assert "".join(l["message"]["content"] for l in lines) == body["message"]["content"]


def test_ps_fields(server):
    server.post("/api/generate", {"model": "stories260k", "prompt": "Hi", "stream": False,
                                  "options": {"num_predict": 2}})
    _, ps = server.request("GET", "/api/ps")
    m = next(m for m in ps["models"] if m["name"] == "stories260k:latest")
    for k in ("num_parallel", "running", "queued", "size", "expires_at", "digest", "details", "context_length",
              "kv_used"):
        assert k in m, k
    assert m["num_parallel"] >= 1 and m["running"] == 0 and m["queued"] == 0


@pytest.mark.parametrize("body,status,needle", [
    ("{not json", 400, "invalid JSON"),
    ('{"model": "stories260k", "prompt": "x", "options": {"seed": 6e6666}}', 400, "invalid JSON"),  # beyond double
    ({"prompt": "x"}, 400, "model"),
    ({"model": "nope", "prompt": "x"}, 404, "not found"),
    ({"model": "stories260k", "prompt": "x", "options": {"temperature": "hot"}}, 400, "temperature"),
    ({"model": "stories260k", "prompt": "x", "options": {"top_k": 1.5}}, 400, "top_k"),
    ({"model": "stories260k", "prompt": "x", "images": ["aGk="]}, 400, "images"),
    ({"model": "stories260k", "prompt": "x", "keep_alive": "soon"}, 400, "keep_alive"),
    ({"model": "stories260k", "prompt": 7}, 400, "prompt"),
    ({"model": "../../etc/passwd", "prompt": "x"}, 400, "name"),
])
def test_generate_errors(server, body, status, needle):
    got, resp = server.post("/api/generate", body)
    assert got == status, resp
    assert needle.lower() in resp["error"].lower()


def test_chat_errors(server):
    status, resp = server.post("/api/chat", {"model": "stories260k", "messages": [{"role": "wizard", "content": "x"}]})
    assert status == 400 and "role" in resp["error"]
    status, resp = server.post("/api/chat", {"model": "stories260k", "messages": "hello"})
    assert status == 400 and "messages" in resp["error"]


def test_unknown_endpoint_and_method(server):
    status, resp = server.request("GET", "/api/nothing")
    assert status == 404 and "error" in resp


def test_embed(server):
    status, body = server.post("/api/embed", {"model": "stories260k", "input": ["Once upon a time", "Tom ran."]})
    assert status == 200, body
    assert len(body["embeddings"]) == 2 and len(body["embeddings"][0]) == 64
    for v in body["embeddings"]:
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4
    assert body["embeddings"][0] != body["embeddings"][1]
    assert body["prompt_eval_count"] > 0
    _, one = server.post("/api/embed", {"model": "stories260k", "input": "Once upon a time"})
    assert one["embeddings"][0] == pytest.approx(body["embeddings"][0], abs=1e-5)
    status, legacy = server.post("/api/embeddings", {"model": "stories260k", "prompt": "Once upon a time"})
    assert status == 200 and len(legacy["embedding"]) == 64
    norm = math.sqrt(sum(x * x for x in legacy["embedding"]))
    assert [x / norm for x in legacy["embedding"]] == pytest.approx(one["embeddings"][0], abs=1e-5)
    status, resp = server.post("/api/embed", {"model": "stories260k", "input": 5})
    assert status == 400


def test_create_copy_delete(server):
    status, lines = server.lines("/api/create", {"model": "teller", "from": "stories260k", "system": "Lily sat.",
                                                 "parameters": {"temperature": 0, "num_predict": 12,
                                                                "stop": ["zzz"]}})
    assert status == 200 and lines[-1]["status"] == "success"
    _, show = server.post("/api/show", {"model": "teller"})
    assert show["system"] == "Lily sat."
    assert "num_predict" in show["parameters"] and "temperature" in show["parameters"]
    # The model's parameters and system apply: greedy, 12 tokens, system before the prompt.
    _, a = server.post("/api/generate", {"model": "teller", "prompt": "Tom ran.", "stream": False})
    _, b = server.post("/api/generate", {"model": "stories260k", "prompt": "Lily sat.\n\nTom ran.", "raw": True,
                                         "stream": False, "options": {"temperature": 0, "num_predict": 12}})
    assert a["eval_count"] == 12 and a["response"] == b["response"]
    status, _ = server.post("/api/copy", {"source": "teller", "destination": "teller2:v1"})
    assert status == 200
    names = [m["name"] for m in server.request("GET", "/api/tags")[1]["models"]]
    assert "teller:latest" in names and "teller2:v1" in names
    status, _ = server.request("DELETE", "/api/delete", {"model": "teller"})
    assert status == 200
    status, resp = server.request("DELETE", "/api/delete", {"model": "teller"})
    assert status == 404 and "not found" in resp["error"]
    names = [m["name"] for m in server.request("GET", "/api/tags")[1]["models"]]
    assert "teller:latest" not in names and "teller2:v1" in names
    status, resp = server.post("/api/copy", {"source": "nope", "destination": "x"})
    assert status == 404
    status, resp = server.post("/api/create", {"model": "bad", "from": "no-such-model"})
    assert status in (400, 404) and "error" in resp


def test_blob_upload_and_create_from_files(server, tmp_path):
    path = make_model(str(tmp_path / "m.gguf"), "--type", "q8_0")
    data = open(path, "rb").read()
    import hashlib
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    status, _, _ = server.request("HEAD", f"/api/blobs/{digest}", raw=True)
    assert status == 404
    status, _ = server.request("POST", f"/api/blobs/{digest}", data,
                               headers={"Content-Type": "application/octet-stream"})
    assert status == 201
    status, _, _ = server.request("HEAD", f"/api/blobs/{digest}", raw=True)
    assert status == 200
    wrong = "sha256:" + "0" * 64
    status, resp = server.request("POST", f"/api/blobs/{wrong}", data,
                                  headers={"Content-Type": "application/octet-stream"})
    assert status == 400 and "digest" in resp["error"].lower()
    status, resp = server.post("/api/create", {"model": "tiny-q8", "files": {"m.gguf": digest}, "stream": False})
    assert status == 200 and resp["status"] == "success"
    _, tags = server.request("GET", "/api/tags")
    m = next(m for m in tags["models"] if m["name"] == "tiny-q8:latest")
    assert m["details"]["quantization_level"] == "Q8_0"
    status, body = server.post("/api/generate", {"model": "tiny-q8", "prompt": "Hello", "stream": False,
                                                 "options": {"num_predict": 5, "temperature": 0}})
    assert status == 200 and body["eval_count"] == 5


def test_pull(server, tmp_path):
    status, lines = server.lines("/api/pull", {"model": "stories260k"})
    assert status == 200 and lines[-1]["status"] == "success"
    status, resp = server.post("/api/pull", {"model": "llama3.2"})
    assert status >= 400 and "registry" in resp["error"]
    path = make_model(str(tmp_path / "pulled-model.gguf"))
    status, body = server.post("/api/pull", {"model": path, "stream": False})
    assert status == 200 and body["status"] == "success"
    names = [m["name"] for m in server.request("GET", "/api/tags")[1]["models"]]
    assert "pulled-model:latest" in names


def test_cors(server):
    status, _, r = server.request("GET", "/api/tags", headers={"Origin": "http://localhost:3000"}, raw=True)
    assert status == 200 and r.getheader("Access-Control-Allow-Origin") == "http://localhost:3000"
    status, _, r = server.request("OPTIONS", "/api/chat", headers={
        "Origin": "http://127.0.0.1:8080", "Access-Control-Request-Method": "POST"}, raw=True)
    assert status == 204 and r.getheader("Access-Control-Allow-Origin") == "http://127.0.0.1:8080"
    status, _, r = server.request("GET", "/api/tags", headers={"Origin": "https://evil.example"}, raw=True)
    assert status == 403


# --- OpenAI -----------------------------------------------------------------

def test_openai_chat(server):
    msgs = [{"role": "user", "content": "Tom ran."}]
    status, body = server.post("/v1/chat/completions", {"model": "stories260k", "messages": msgs,
                                                        "temperature": 0, "max_tokens": 16})
    assert status == 200, body
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    c = body["choices"][0]
    assert c["message"]["role"] == "assistant" and c["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 16
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + 16
    _, ollama = server.post("/api/chat", {"model": "stories260k", "messages": msgs, "stream": False,
                                          "options": {"temperature": 0, "num_predict": 16}})
    assert c["message"]["content"] == ollama["message"]["content"]
    status, payload, r = server.request("POST", "/v1/chat/completions", {
        "model": "stories260k", "messages": msgs, "temperature": 0, "max_tokens": 16, "stream": True,
        "stream_options": {"include_usage": True}}, raw=True)
    assert status == 200 and r.getheader("Content-Type").startswith("text/event-stream")
    events = [e[len("data: "):] for e in payload.decode().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(ch["choices"][0]["delta"].get("content", "") for ch in chunks if ch["choices"])
    assert text == c["message"]["content"]
    finals = [ch for ch in chunks if ch["choices"] and ch["choices"][0]["finish_reason"]]
    assert finals[0]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 16


def test_openai_completions_and_errors(server):
    status, body = server.post("/v1/completions", {"model": "stories260k", "prompt": "Once upon a time",
                                                   "temperature": 0, "max_tokens": 24})
    assert status == 200 and body["object"] == "text_completion"
    assert body["choices"][0]["text"] == cli_greedy("Once upon a time", 24)
    status, payload, _ = server.request("POST", "/v1/completions", {
        "model": "stories260k", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 24, "stream": True},
        raw=True)
    events = [e[6:] for e in payload.decode().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1]) == body["choices"][0]["text"]
    status, body = server.post("/v1/chat/completions", {"model": "nope", "messages": [{"role": "user",
                                                                                       "content": "x"}]})
    assert status == 404 and "message" in body["error"]
    status, body = server.post("/v1/chat/completions", {"model": "stories260k"})
    assert status == 400 and "messages" in body["error"]["message"]


def test_openai_embeddings_and_models(server):
    status, body = server.post("/v1/embeddings", {"model": "stories260k", "input": ["Tom ran.", "Lily sat."]})
    assert status == 200 and body["object"] == "list" and len(body["data"]) == 2
    v = body["data"][0]["embedding"]
    status, b64 = server.post("/v1/embeddings", {"model": "stories260k", "input": "Tom ran.",
                                                 "encoding_format": "base64"})
    raw = base64.b64decode(b64["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert decoded == pytest.approx(v, abs=1e-4)  # alone vs in a batch of two: summation order
    status, models = server.request("GET", "/v1/models")
    assert status == 200 and any(m["id"] == "stories260k:latest" for m in models["data"])
    status, m = server.request("GET", "/v1/models/stories260k")
    assert status == 200 and m["id"] == "stories260k:latest"
    status, m = server.request("GET", "/v1/models/nope")
    assert status == 404


# --- parallelism, queue, crash ----------------------------------------------

def test_parallel_requests_batch_and_match_alone(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "4"}, tmp=str(tmp_path))
    try:
        prompts = ["Once upon a time", "Tom ran.", "Lily sat.", "The sun"]
        alone = {p: cli_greedy(p, 40) for p in prompts}

        def go(p):
            return s.post("/api/generate", {"model": "stories260k", "prompt": p, "stream": False,
                                            "options": {"temperature": 0, "num_predict": 40}})

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(go, prompts * 2))
        for p, (status, body) in zip(prompts * 2, results):
            assert status == 200 and body["response"] == alone[p]
        log = s.read_log()
        line = next(l for l in log.splitlines() if "starting llama server" in l)
        assert 'starting llama server cmd="' in line
        assert " runner --model " in line and " --parallel 4 " in line and " --batch-size 512 " in line
        assert " --threads 1 " in line and " --port " in line
        ctx = int(line.split("--ctx-size ")[1].split()[0])
        assert ctx % 4 == 0
        _, ps = s.request("GET", "/api/ps")
        m = ps["models"][0]
        assert m["num_parallel"] == 4 and m["parallel_source"] == "env" and m["context_length"] * 4 == ctx
    finally:
        s.stop()


def test_max_queue_answers_503(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "1", "OLLAMA_MAX_QUEUE": "1"}, tmp=str(tmp_path))
    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        s.post("/api/generate", {"model": "slow", "prompt": ""})  # loaded

        def go(_):
            return s.post("/api/generate", {"model": "slow", "prompt": "Once upon a time", "stream": False,
                                            "options": {"num_predict": 100, "temperature": 0}})

        with concurrent.futures.ThreadPoolExecutor(6) as ex:
            results = list(ex.map(go, range(6)))
        statuses = sorted(r[0] for r in results)
        assert statuses.count(200) >= 2, statuses  # one running + one queued always fit
        busy = [r[1] for r in results if r[0] == 503]
        assert busy, statuses
        assert busy[0]["error"] == "server busy, please try again.  maximum pending requests exceeded"
        assert set(statuses) <= {200, 503}
    finally:
        s.stop()


def test_runner_crash_fails_in_flight_then_recovers(tmp_path):
    s = Server({"OLLAMA_NUM_PARALLEL": "1"}, tmp=str(tmp_path))
    try:
        path = make_slow_model(str(tmp_path / "crash.gguf"))
        assert s.post("/api/create", {"model": "crash", "from": path, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "crash", "prompt": ""})[0] == 200
        line = [l for l in s.read_log().splitlines() if "starting llama server" in l][-1]
        port = line.split("--port ")[1].split('"')[0].split()[0]
        pids = subprocess.run(["pgrep", "-f", f"runner --model .* --port {port}"], capture_output=True,
                              text=True).stdout.split()
        assert pids
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(s.lines, "/api/generate", {"model": "crash", "prompt": "Once upon a time",
                                                       "options": {"num_predict": 100000, "temperature": 0}})
            import time
            time.sleep(1.0)
            for pid in pids:
                os.kill(int(pid), 9)
            status, lines = fut.result(timeout=60)
        assert status == 200
        assert "error" in lines[-1] and "runner" in lines[-1]["error"]
        status, body = s.post("/api/generate", {"model": "crash", "prompt": "Hello", "stream": False,
                                                "options": {"num_predict": 3}})
        assert status == 200 and body["eval_count"] == 3
    finally:
        s.stop()


def test_runners_exit_when_the_server_is_killed(tmp_path):
    s = Server(tmp=str(tmp_path))
    assert s.post("/api/generate", {"model": "stories260k", "prompt": ""})[0] == 200
    line = [l for l in s.read_log().splitlines() if "starting llama server" in l][-1]
    port = line.split("--port ")[1].split('"')[0].split()[0]
    pattern = f"runner --model .* --port {port}"
    assert subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0
    s.proc.kill()  # SIGKILL: the server cannot stop its runners itself
    s.proc.wait()
    import time
    deadline = time.time() + 10
    while time.time() < deadline and subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode != 0, "orphaned runner"
    s.stop()


def test_forced_parallel_one_and_memory_default(tmp_path):
    s = Server({"PARALLAMA_AVAILABLE_MEMORY": str(64 << 30)}, tmp=str(tmp_path))
    try:
        nb = make_model(str(tmp_path / "nobatch.gguf"), "--no-parallel")
        assert s.post("/api/create", {"model": "nobatch", "from": nb, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "nobatch", "prompt": ""})[0] == 200
        assert s.post("/api/generate", {"model": "stories260k", "prompt": ""})[0] == 200
        log = s.read_log()
        assert "model architecture does not currently support parallel requests" in log
        _, ps = s.request("GET", "/api/ps")
        by = {m["name"]: m for m in ps["models"]}
        assert by["nobatch:latest"]["num_parallel"] == 1 and by["nobatch:latest"]["parallel_source"] == "forced-1"
        # Unset OLLAMA_NUM_PARALLEL, 64 GiB available: the memory-aware default is 4.
        assert by["stories260k:latest"]["num_parallel"] == 4
        assert by["stories260k:latest"]["parallel_source"] == "default"
    finally:
        s.stop()
    s = Server({"PARALLAMA_AVAILABLE_MEMORY": str((1 << 30) + (5 << 20))}, tmp=str(tmp_path / "small"))
    try:
        # 5 MiB above the 1 GiB reserve: weights (1.2 MB) + one 2048-token context of KV (1.3 MB) fit, four do not.
        assert s.post("/api/generate", {"model": "stories260k", "prompt": "",
                                        "options": {"num_ctx": 2048}})[0] == 200
        _, ps = s.request("GET", "/api/ps")
        assert ps["models"][0]["num_parallel"] == 1
        assert " --parallel 1 " in s.read_log()
    finally:
        s.stop()


def test_bad_environment_is_a_clear_startup_error(tmp_path):
    env = dict(os.environ, OLLAMA_NUM_PARALLEL="lots", OLLAMA_MODELS=str(tmp_path))
    r = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "OLLAMA_NUM_PARALLEL" in r.stderr
    env = dict(os.environ, OLLAMA_HOST="127.0.0.1:99999", OLLAMA_MODELS=str(tmp_path))
    r = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "OLLAMA_HOST" in r.stderr


def test_origins_from_the_environment(tmp_path):
    s = Server({"OLLAMA_ORIGINS": "https://*.example.com"}, tmp=str(tmp_path))
    try:
        status, _, r = s.request("GET", "/api/tags", headers={"Origin": "https://app.example.com"}, raw=True)
        assert status == 200 and r.getheader("Access-Control-Allow-Origin") == "https://app.example.com"
        status, _, _ = s.request("GET", "/api/tags", headers={"Origin": "https://example.org"}, raw=True)
        assert status == 403
    finally:
        s.stop()


def test_push_is_refused(server):
    status, body = server.post("/api/push", {"model": "stories260k"})
    assert status == 500 and "not supported" in body["error"]


def _oai_body(path, **extra):
    body = {"model": "stories260k", "temperature": 0}
    body.update({"messages": [{"role": "user", "content": "Tom ran."}]} if "chat" in path
                else {"prompt": "Once upon a time"})
    body.update(extra)
    return body


def _sse_chunks(payload):
    events = [e[len("data: "):] for e in payload.decode().split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_openai_completions_stream_include_usage(server):
    status, payload, _ = server.request("POST", "/v1/completions", _oai_body(
        "/v1/completions", max_tokens=8, stream=True, stream_options={"include_usage": True}), raw=True)
    assert status == 200
    chunks = _sse_chunks(payload)
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"]["completion_tokens"] == 8 and last["usage"]["prompt_tokens"] > 0
    assert last["usage"]["total_tokens"] == last["usage"]["prompt_tokens"] + 8
    assert all("usage" not in ch and ch["choices"] for ch in chunks[:-1])
    for k in ("id", "object", "created", "model"):
        assert last[k] == chunks[0][k]
    assert last["object"] == "text_completion"
    # Not asked for (false, null, or no stream_options at all): no usage chunk.
    for so in ({"include_usage": False}, {"include_usage": None}, None):
        status, payload, _ = server.request("POST", "/v1/completions", _oai_body(
            "/v1/completions", max_tokens=8, stream=True, stream_options=so), raw=True)
        assert status == 200 and all("usage" not in ch for ch in _sse_chunks(payload))


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
@pytest.mark.parametrize("extra,needle", [
    ({"stream_options": {"include_usage": "yes"}}, "field 'stream_options.include_usage' must be a boolean"),
    ({"stream_options": "yes"}, "field 'stream_options' must be an object"),
    ({"max_tokens": "5"}, "field 'max_tokens' must be an integer, got string"),
    ({"max_tokens": 2.5}, "field 'max_tokens' must be an integer, got 2.5"),
    ({"max_tokens": 0}, "field 'max_tokens' must be at least 1, got 0"),
    ({"max_tokens": -3}, "field 'max_tokens' must be at least 1, got -3"),
    ({"max_completion_tokens": -1}, "field 'max_completion_tokens' must be at least 1, got -1"),
    ({"max_completion_tokens": 4, "max_tokens": "x"}, "field 'max_tokens' must be an integer"),
])
def test_openai_parameter_errors(server, path, extra, needle):
    status, body = server.post(path, _oai_body(path, stream=True, **extra))
    assert status == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert needle in body["error"]["message"], body
    assert "num_predict" not in body["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_openai_null_parameters_are_not_set(server, path):
    for extra in ({"stream_options": {"include_usage": None}, "max_tokens": 4},
                  {"stream_options": None, "max_tokens": 4},
                  {"max_tokens": None, "max_completion_tokens": 3},
                  {"max_completion_tokens": None, "max_tokens": 3}):
        status, body = server.post(path, _oai_body(path, **extra))
        assert status == 200, (extra, body)
    _, body = server.post(path, _oai_body(path, max_tokens=9, max_completion_tokens=3))
    assert body["usage"]["completion_tokens"] == 3  # max_completion_tokens wins
