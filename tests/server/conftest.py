"""A live `parallama serve` for the HTTP tests: its own port, model store and
environment; models made with `parallama make-model` plus the built-in demo
(stories260k). Helpers speak plain HTTP (urllib), nothing is mocked."""
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PARALLAMA_BIN", os.path.join(ROOT, "build", "bin", "parallama"))
DEMO = os.path.join(ROOT, "assets", "stories260k.gguf")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, env_extra=None, tmp=None):
        self.tmp = tmp or tempfile.mkdtemp(prefix="parallama-serve-")
        os.makedirs(self.tmp, exist_ok=True)
        self.port = free_port()
        self.models = os.path.join(self.tmp, "models")
        self.log_path = os.path.join(self.tmp, "serve.log")
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("OLLAMA_") or k.startswith("PARALLAMA_"):
                del env[k]
        env.update({
            "OLLAMA_HOST": f"127.0.0.1:{self.port}",
            "OLLAMA_MODELS": self.models,
            "PARALLAMA_DEMO_MODEL": DEMO,
            "PARALLAMA_THREADS": "1",
        })
        env.update(env_extra or {})
        self.env = env
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BIN, "serve"], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited: " + self.read_log())
            try:
                if self.request("GET", "/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("serve did not start: " + self.read_log())

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def request(self, method, path, body=None, headers=None, timeout=120, raw=False):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        r = conn.getresponse()
        payload = r.read()
        conn.close()
        if raw:
            return r.status, payload, r
        text = payload.decode("utf-8", "replace")
        try:
            return r.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return r.status, text

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def lines(self, path, body, timeout=120):
        """A streaming POST: (status, [parsed NDJSON objects])."""
        status, payload, _ = self.request("POST", path, body, timeout=timeout, raw=True)
        out = [json.loads(l) for l in payload.decode().splitlines() if l.strip()]
        return status, out

    def cli(self, *args, input=None, timeout=120):
        # No input: stdin is empty (`run MODEL PROMPT` reads a stdin that is not a terminal, as Ollama's does).
        stdin = subprocess.DEVNULL if input is None else None
        return subprocess.run([BIN, *args], env=self.env, input=input, stdin=stdin, capture_output=True, text=True,
                              timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def make_model(path, *extra, n_embd=64, n_layer=2, n_ff=128, n_head=4):
    subprocess.run([BIN, "make-model", "-o", path, "--n-layer", str(n_layer), "--n-embd", str(n_embd),
                    "--n-head", str(n_head), "--n-head-kv", str(n_head // 2), "--n-ff", str(n_ff),
                    "--vocab", DEMO, "--seed", "7", *extra], check=True, capture_output=True)
    return path


def make_slow_model(path):
    """About 30 M parameters: slow enough (tens of tokens/s on one thread) to keep requests in flight."""
    return make_model(path, n_embd=512, n_layer=8, n_ff=1536, n_head=8)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.stop()
