"""Prompts rendered through the model's template: the GGUF's Jinja chat template, a Modelfile TEMPLATE (Go
syntax), a request's own template, and the plain fallback."""
import os
import subprocess

from conftest import BIN, DEMO

GREEDY = {"temperature": 0, "num_predict": 8}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHI3_VOCAB = os.path.join(ROOT, "..", "shared", "testdata", "vocab", "ggml-vocab-phi-3.gguf")


def n_tokens(model, text):
    r = subprocess.run([BIN, "tokenize", "-m", model, "--no-bos", "--parse-special", text],
                       capture_output=True, text=True, check=True)
    return len(r.stdout.split())


def test_gguf_jinja_template(server, tmp_path):
    if not os.path.exists(PHI3_VOCAB):
        import pytest
        pytest.skip("../shared/testdata/vocab/ggml-vocab-phi-3.gguf is absent")
    path = str(tmp_path / "phi.gguf")
    subprocess.run([BIN, "make-model", "-o", path, "--vocab", PHI3_VOCAB, "--n-embd", "64", "--n-head", "4",
                    "--n-head-kv", "2", "--n-layer", "1", "--n-ff", "96"], check=True, capture_output=True)
    assert server.post("/api/create", {"model": "phi", "from": path, "stream": False})[0] == 200
    msgs = [{"role": "user", "content": "Tom ran."}, {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "Lily sat."}]
    status, body = server.post("/api/chat", {"model": "phi", "messages": msgs, "stream": False, "options": GREEDY})
    assert status == 200, body
    # Phi-3's template: {{ bos_token }} then <|user|>\n...<|end|>\n<|assistant|>\n turns. The BOS the template
    # writes is the only one (the runner adds none on top).
    expected = ("<s><|user|>\nTom ran.<|end|>\n<|assistant|>\nYes.<|end|>\n"
                "<|user|>\nLily sat.<|end|>\n<|assistant|>\n")
    assert body["prompt_eval_count"] == n_tokens(path, expected)
    # /api/generate goes through the same template, /v1/chat/completions too.
    _, gen = server.post("/api/generate", {"model": "phi", "prompt": "Tom ran.", "stream": False, "options": GREEDY})
    assert gen["prompt_eval_count"] == n_tokens(path, "<s><|user|>\nTom ran.<|end|>\n<|assistant|>\n")
    _, oai = server.post("/v1/chat/completions", {"model": "phi", "messages": msgs, "max_tokens": 8,
                                                  "temperature": 0})
    assert oai["usage"]["prompt_tokens"] == body["prompt_eval_count"]


def test_modelfile_go_template_and_request_template(server, tmp_path):
    mf = tmp_path / "Modelfile"
    mf.write_text('FROM stories260k\nTEMPLATE """{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }} The end."""\n')
    assert server.cli("create", "templated", "-f", str(mf)).returncode == 0
    base = {"stream": False, "options": GREEDY}
    _, a = server.post("/api/generate", {**base, "model": "templated", "prompt": "Tom ran.", "system": "Lily sat."})
    _, b = server.post("/api/generate", {**base, "model": "stories260k", "prompt": "Lily sat. Tom ran. The end.",
                                         "raw": True})
    assert a["response"] == b["response"] and a["prompt_eval_count"] == b["prompt_eval_count"]
    # Chat: the same template, the system message and the turn.
    _, c = server.post("/api/chat", {**base, "model": "templated", "messages": [
        {"role": "system", "content": "Lily sat."}, {"role": "user", "content": "Tom ran."}]})
    assert c["message"]["content"] == b["response"]
    # A request's own template (Ollama's "template" field) wins over the model's.
    _, d = server.post("/api/generate", {**base, "model": "templated", "prompt": "Tom ran.",
                                         "template": "Once upon a time. {{ .Prompt }}"})
    _, e = server.post("/api/generate", {**base, "model": "stories260k", "prompt": "Once upon a time. Tom ran.",
                                         "raw": True})
    assert d["response"] == e["response"]


def test_template_errors_are_clear(server):
    status, body = server.post("/api/generate", {"model": "stories260k", "prompt": "x", "template": "{{ if }}"})
    assert status == 400 and "line 1" in body["error"]
