"""Model store round trips and the errors around them: `show --modelfile` then `create` keeps every value,
`create` refuses a template that does not parse, a failed model load says why, and `serve` checks
PARALLAMA_CPU before it listens."""
import os
import subprocess

import pytest

from conftest import BIN, Server, free_port

# Go template syntax, but text a Modelfile must quote with care: line breaks, quotes of every count,
# backslashes (kept as they are: a Modelfile has no escapes), blanks at the edges.
TRICKY_TEMPLATE = '{{ if .System }}<|system|> "{{ .System }}"\n{{ end }}<|user|> """ {{ .Prompt }} \\n \\\\ "'
TRICKY_SYSTEM = 'Say "hi" and """ three """.\nA path: C:\\models\\ and a literal \\n.\n  indented "end"'
TRICKY_MESSAGES = [
    {"role": "user", "content": "multi\nline"},
    {"role": "assistant", "content": 'quote " and """ and \\" backslash-quote'},
    {"role": "user", "content": "ends with a quote\""},
    {"role": "assistant", "content": "  edge blanks  "},
]
TRICKY_LICENSES = ["MIT\n\"quoted\" line", "second \\ licence"]
TRICKY_STOPS = ["<|end|>", 'a "b"', "back\\slash", "\n\n"]


def show(server, name):
    status, body = server.post("/api/show", {"model": name})
    assert status == 200, body
    return body


def kept(body):
    return {k: body.get(k) for k in ("template", "system", "messages", "license", "parameters")}


def test_show_modelfile_then_create_keeps_tricky_values(server):
    status, body = server.post("/api/create", {
        "model": "rt0", "from": "stories260k", "template": TRICKY_TEMPLATE, "system": TRICKY_SYSTEM,
        "messages": TRICKY_MESSAGES, "license": TRICKY_LICENSES,
        "parameters": {"stop": TRICKY_STOPS, "temperature": 0.25, "num_ctx": 256}, "stream": False})
    assert status == 200, body
    want = kept(show(server, "rt0"))
    assert want["template"] == TRICKY_TEMPLATE and want["system"] == TRICKY_SYSTEM
    assert want["messages"] == TRICKY_MESSAGES and want["license"] == TRICKY_LICENSES

    # Two rounds: the old writer added a level of escapes on each.
    for i in range(2):
        r = server.cli("show", f"rt{i}", "--modelfile")
        assert r.returncode == 0, r.stderr
        path = os.path.join(server.tmp, f"rt{i}.Modelfile")
        with open(path, "w") as f:
            f.write(r.stdout)
        r = server.cli("create", f"rt{i + 1}", "-f", path)
        assert r.returncode == 0, r.stderr + "\n" + open(path).read()
        assert kept(show(server, f"rt{i + 1}")) == want, open(path).read()


def test_create_refuses_a_template_that_does_not_parse(server):
    path = os.path.join(server.tmp, "bad-template.Modelfile")
    with open(path, "w") as f:
        f.write('FROM stories260k\nTEMPLATE "{{ .Prompt "\n')
    r = server.cli("create", "badtmpl", "-f", path)
    assert r.returncode != 0
    assert "Modelfile TEMPLATE: line 1, column 1: unclosed action" in r.stderr, r.stderr

    # Both forms of /api/create: the template field and a Modelfile's TEMPLATE.
    status, body = server.post("/api/create", {"model": "badtmpl", "from": "stories260k",
                                               "template": "{{ .Prompt ", "stream": False})
    assert status == 400 and "unclosed action" in body["error"], body
    status, body = server.post("/api/create", {"model": "badtmpl", "stream": False,
                                               "modelfile": "FROM stories260k\nTEMPLATE {{ if .System }}x\n"})
    assert status == 400 and "Modelfile TEMPLATE:" in body["error"], body

    status, body = server.post("/api/show", {"model": "badtmpl"})
    assert status == 404, body
    # A template that parses still goes through.
    status, body = server.post("/api/create", {"model": "goodtmpl", "from": "stories260k",
                                               "template": "{{ .Prompt }}", "stream": False})
    assert status == 200, body


@pytest.fixture(scope="module")
def tiny_ctx_server():
    """Every load fails: 8 tokens per sequence leave the runner a KV pool it refuses."""
    s = Server(env_extra={"OLLAMA_CONTEXT_LENGTH": "8"})
    yield s
    s.stop()


def test_a_failed_load_carries_the_runners_error(tiny_ctx_server):
    s = tiny_ctx_server
    status, body = s.post("/api/generate", {"model": "stories260k", "prompt": "Once", "stream": False})
    assert status >= 400
    err = body["error"]
    assert err.startswith("llama runner process has terminated: "), err
    assert "is more than the KV cache can run" in err and "exit status" not in err, err

    status, body = s.post("/api/generate", {"model": "stories260k", "prompt": "Once", "stream": False,
                                            "options": {"num_ctx": 16}})
    assert status >= 400 and "is more than the KV cache can run" in body["error"], body

    r = s.cli("run", "stories260k", "Once")
    assert r.returncode != 0
    assert "llama runner process has terminated: " in r.stderr and "KV cache" in r.stderr, r.stderr
    # The server's log still has the runner's own line and the exit status.
    log = s.read_log()
    assert "exit status 1" in log and "is more than the KV cache can run" in log


def test_serve_refuses_an_unknown_parallama_cpu(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA_", "PARALLAMA_"))}
    env.update({"OLLAMA_HOST": f"127.0.0.1:{free_port()}", "OLLAMA_MODELS": str(tmp_path / "models"),
                "PARALLAMA_CPU": "sse"})
    p = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        pytest.fail("serve started with PARALLAMA_CPU=sse instead of refusing it")
    assert p.returncode != 0
    assert "PARALLAMA_CPU=sse: unknown CPU level" in err, err
    assert "Listening" not in out + err
