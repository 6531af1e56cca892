"""The HTTP layer under the API: bodies as curl sends them, requests without a
body, clients that hang up on a non-streaming generation; the environment as
Ollama reads it, and a listening address that cannot be served."""
import http.client
import json
import os
import re
import socket
import subprocess
import time

from conftest import BIN, Server, make_slow_model


def test_form_encoded_bodies_are_json_at_any_size(server):
    """curl -d labels the body application/x-www-form-urlencoded; Ollama reads it as JSON whatever the label.
    The HTTP library caps such bodies at 8 KiB (413) unless they are relabelled."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    long_prompt = "Once upon a time " * 1000  # 17 KB of body
    status, body = server.post("/v1/completions", json.dumps(
        {"model": "stories260k", "prompt": long_prompt, "max_tokens": 2, "temperature": 0}), headers=form)
    assert status == 200, body
    assert body["usage"]["completion_tokens"] == 2
    status, body = server.post("/api/show", json.dumps({"model": "stories260k", "pad": "x" * 20000}), headers=form)
    assert status == 200, body
    assert body["details"]["family"] == "llama"


def raw_request(port, data, timeout=10):
    """Sends bytes as they are and reads the reply until the server closes or answers one response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        m = re.search(rb"Content-Length: *(\d+)", head, re.I)
        n = int(m.group(1)) if m else 0
        while len(rest) < n:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        return int(head.split()[1]), json.loads(rest[:n]) if n else None


def test_body_methods_without_length_have_an_empty_body(server):
    """A POST with neither Content-Length nor chunked encoding has no body (RFC 9112, 6.3): an immediate 400,
    not a wait for the client to close its end."""
    t0 = time.time()
    status, body = raw_request(server.port, b"POST /api/generate HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and body == {"error": "missing request body"}
    status, body = raw_request(server.port, b"DELETE /api/delete HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and "error" in body
    assert time.time() - t0 < 5


def running(s):
    _, ps = s.request("GET", "/api/ps")
    return sum(m.get("running", 0) for m in ps["models"])


def test_a_client_that_hangs_up_cancels_its_non_streaming_generation(tmp_path):
    """Nothing is written before the end of a non-streaming generation, so the server watches the client's
    socket: closing it frees the slot at once (a streaming client is noticed at its next token anyway)."""
    s = Server({"OLLAMA_NUM_PARALLEL": "1"}, tmp=str(tmp_path))
    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "slow", "prompt": ""})[0] == 200  # loaded
        for route, body in [
            ("/api/generate", {"model": "slow", "prompt": "Once upon a time", "raw": True, "stream": False,
                               "options": {"num_predict": 100000, "temperature": 0}}),
            ("/v1/chat/completions", {"model": "slow", "messages": [{"role": "user", "content": "Hi"}],
                                      "max_tokens": 100000, "temperature": 0}),
        ]:
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)
            conn.request("POST", route, body=json.dumps(body), headers={"Content-Type": "application/json"})
            deadline = time.time() + 60
            while running(s) != 1:
                assert time.time() < deadline, f"{route}: the generation never started"
                time.sleep(0.05)
            conn.close()
            deadline = time.time() + 10
            while running(s) != 0:
                assert time.time() < deadline, f"{route}: still running 10 s after the client left"
                time.sleep(0.05)
        # The slot is free for the next client, which gets its answer.
        status, body = s.post("/api/generate", {"model": "slow", "prompt": "Hello", "raw": True, "stream": False,
                                                "options": {"num_predict": 2, "temperature": 0}})
        assert status == 200 and body["eval_count"] == 2, body
        assert s.read_log().count("cancelled (client disconnected)") >= 2
    finally:
        s.stop()


def test_quoted_environment_values_read_as_ollama_reads_them(tmp_path):
    """Env files and compose lists keep the quotes (OLLAMA_NUM_PARALLEL="3"): Ollama strips spaces and quotes."""
    s = Server({"OLLAMA_NUM_PARALLEL": '"3"', "OLLAMA_KEEP_ALIVE": " '5m' ",
                "OLLAMA_MODELS": f'"{tmp_path}/models"'}, tmp=str(tmp_path))
    try:
        assert s.post("/api/generate", {"model": "stories260k", "prompt": ""})[0] == 200
        _, ps = s.request("GET", "/api/ps")
        m = ps["models"][0]
        assert m["num_parallel"] == 3 and m["parallel_source"] == "env", m
        assert os.path.isdir(os.path.join(str(tmp_path), "models", "manifests")), os.listdir(str(tmp_path))
    finally:
        s.stop()


def serve_error(env_host, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLAMA_")}
    env.update({"OLLAMA_HOST": env_host, "OLLAMA_MODELS": str(tmp_path / "models")})
    r = subprocess.run([BIN, "serve"], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    return r.stderr


def test_a_host_that_cannot_be_served_says_why(tmp_path):
    assert "cannot resolve host 'nosuchhost.invalid'" in serve_error("nosuchhost.invalid:11999", tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        err = serve_error(f"127.0.0.1:{port}", tmp_path)
        assert f"listen tcp 127.0.0.1:{port}: bind: address already in use" in err, err
    err = serve_error("192.0.2.1:11999", tmp_path)  # TEST-NET-1: not an address of this machine
    assert "bind: cannot assign requested address" in err, err


def test_ollama_variables_without_effect_are_noted(tmp_path):
    s = Server({"OLLAMA_KV_CACHE_TYPE": "q8_0", "OLLAMA_FLASH_ATTENTION": "1"}, tmp=str(tmp_path))
    try:
        log = s.read_log()
        assert "note: OLLAMA_KV_CACHE_TYPE=q8_0 has no effect in parallama: the KV cache is f16" in log, log
        assert "note: OLLAMA_FLASH_ATTENTION=1 has no effect" in log
        assert "OLLAMA_DEBUG" not in log  # unset: no note
    finally:
        s.stop()
