"""Ollama's behaviour where parallama had drifted from it: /api/show's capabilities (from the template and the
GGUF), tools and think refused with Ollama's 400 for a model that cannot do them, /api/embed's dimensions, and
/api/generate's context (the prompt's and the answer's token ids, given back to continue)."""
import math
import struct
import subprocess

import pytest

from conftest import BIN, DEMO

GREEDY = {"temperature": 0, "num_predict": 8}
USER = [{"role": "user", "content": "Tom ran."}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


# --- GGUF metadata: a copy of the demo model with more keys (the tensors and their data stay as they are) ---

SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
GGUF_UINT32, GGUF_STRING, GGUF_ARRAY = 4, 8, 9


def _skip_value(buf, pos, vtype):
    if vtype == GGUF_STRING:
        (n,) = struct.unpack_from("<Q", buf, pos)
        return pos + 8 + n
    if vtype == GGUF_ARRAY:
        item_type, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        for _ in range(n):
            pos = _skip_value(buf, pos, item_type)
        return pos
    return pos + SCALAR_SIZES[vtype]


def _string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_with(path, extra, src=DEMO):
    """Writes src with the keys of `extra` added (str values as strings, int values as uint32)."""
    buf = open(src, "rb").read()
    version, n_tensors, n_kv = struct.unpack_from("<IQQ", buf, 4)
    pos = 24
    for _ in range(n_kv):
        (klen,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + klen
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos = _skip_value(buf, pos + 4, vtype)
    kv_end = pos
    for _ in range(n_tensors):
        (nlen,) = struct.unpack_from("<Q", buf, pos)
        pos += 8 + nlen
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + 8 * n_dims + 4 + 8
    align = 32  # the demo model's (no general.alignment)
    data_at = (pos + align - 1) // align * align
    new_kvs = b"".join(_string(k) + (struct.pack("<I", GGUF_STRING) + _string(v) if isinstance(v, str)
                                     else struct.pack("<II", GGUF_UINT32, v)) for k, v in extra.items())
    head = buf[:4] + struct.pack("<IQQ", version, n_tensors, n_kv + len(extra)) + buf[24:kv_end] + new_kvs
    head += buf[kv_end:pos]
    head += b"\0" * (-len(head) % align)
    with open(path, "wb") as f:
        f.write(head + buf[data_at:])
    return path


def create(server, name, path=None, template=None):
    body = {"model": name, "from": path or "stories260k", "stream": False}
    if template is not None:
        body["template"] = template
    status, r = server.post("/api/create", body)
    assert status == 200, r
    return name


def capabilities(server, name):
    status, r = server.post("/api/show", {"model": name})
    assert status == 200, r
    return r["capabilities"]


@pytest.fixture(scope="module")
def models(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compat")
    jinja_tools = ("{% if tools %}{% for t in tools %}{{ t.function.name }} {% endfor %}{% endif %}"
                   "{% for m in messages %}{{ m['content'] }} {% endfor %}")
    jinja_plain = "{% for m in messages %}No tools here: {{ m['content'] }} {% endfor %}"
    return {
        "go_tools": create(server, "go-tools", template="{{ if .Tools }}{{ .Tools }}{{ end }}{{ .Prompt }}"),
        "go_insert": create(server, "go-insert", template="{{ .Prompt }}{{ if .Suffix }}<fim>{{ .Suffix }}{{ end }}"),
        "go_plain": create(server, "go-plain", template="{{ .System }} {{ .Prompt }}"),
        "jinja_tools": create(server, "jinja-tools",
                              gguf_with(str(tmp / "jt.gguf"), {"tokenizer.chat_template": jinja_tools})),
        "jinja_plain": create(server, "jinja-plain",
                              gguf_with(str(tmp / "jp.gguf"), {"tokenizer.chat_template": jinja_plain})),
        "embedder": create(server, "embedder", gguf_with(str(tmp / "emb.gguf"), {"llama.pooling_type": 1})),
    }


# --- 1. /api/show capabilities ---

def test_capabilities_follow_the_template_and_the_gguf(server, models):
    # A generative model without a template that takes tools: completion only (no "embedding").
    assert capabilities(server, "stories260k") == ["completion"]
    assert capabilities(server, models["go_plain"]) == ["completion"]
    assert capabilities(server, models["go_tools"]) == ["completion", "tools"]
    assert capabilities(server, models["go_insert"]) == ["completion"]  # suffix is refused: no "insert"
    # A GGUF Jinja template: `tools` in its code counts, the word in its text does not.
    assert capabilities(server, models["jinja_tools"]) == ["completion", "tools"]
    assert capabilities(server, models["jinja_plain"]) == ["completion"]
    # {arch}.pooling_type marks an embedding model (Ollama's test).
    assert capabilities(server, models["embedder"]) == ["embedding"]


# --- 2. tools for a model whose template cannot render them ---

def test_tools_need_a_template_that_renders_them(server, models):
    for name in ("stories260k", models["go_plain"], models["jinja_plain"]):
        status, r = server.post("/api/chat", {"model": name, "messages": USER, "tools": TOOLS, "stream": False})
        assert status == 400 and r["error"] == f"{name}:latest does not support tools", r
        # No tools, or an empty list: accepted as before.
        for extra in ({}, {"tools": []}, {"tools": None}):
            status, r = server.post("/api/chat", {"model": name, "messages": USER, "stream": False,
                                                  "options": GREEDY, **extra})
            assert status == 200, r
    # Refused before anything is loaded, even for a load request (empty messages).
    status, r = server.post("/api/chat", {"model": models["go_plain"], "messages": [], "tools": TOOLS})
    assert status == 400 and "does not support tools" in r["error"]
    # A malformed list is still named as such first.
    status, r = server.post("/api/chat", {"model": "stories260k", "messages": USER, "tools": {"x": 1}})
    assert status == 400 and "must be an array" in r["error"]
    # The OpenAI endpoint refuses them too, in its error shape.
    status, r = server.post("/v1/chat/completions", {"model": "stories260k", "messages": USER, "tools": TOOLS})
    assert status == 400 and r["error"]["message"] == "stories260k:latest does not support tools", r


def test_a_jinja_template_with_tools_gets_them(server, models):
    status, r = server.post("/api/chat", {"model": models["jinja_tools"], "messages": USER, "tools": TOOLS,
                                          "stream": False, "options": GREEDY})
    assert status == 200, r
    _, raw = server.post("/api/generate", {"model": "stories260k", "prompt": "get_weather Tom ran. ", "raw": True,
                                           "stream": False, "options": {"num_predict": 1}})
    assert r["prompt_eval_count"] == raw["prompt_eval_count"]


# --- 3. think ---

@pytest.mark.parametrize("path,body", [
    ("/api/chat", {"messages": USER}),
    ("/api/generate", {"prompt": "Tom ran."}),
])
def test_think_is_refused_like_ollama(server, path, body):
    base = {"model": "stories260k", "stream": False, "options": GREEDY, **body}
    for think in (True, "high", "medium", "low"):
        status, r = server.post(path, {**base, "think": think})
        assert status == 400 and r["error"] == '"stories260k" does not support thinking', r
    for think in (False, None):
        status, r = server.post(path, {**base, "think": think})
        assert status == 200 and r["done"], r
    status, r = server.post(path, base)
    assert status == 200, r
    for bad in ("max", 1, [True]):
        status, r = server.post(path, {**base, "think": bad})
        assert status == 400 and "think" in r["error"], r


# --- 4. /api/embed dimensions ---

def unit(v):
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def test_embed_dimensions_truncate_and_renormalize(server):
    base = {"model": "stories260k", "input": ["Tom ran.", "Lily sat down."]}
    status, full = server.post("/api/embed", base)
    assert status == 200, full
    size = len(full["embeddings"][0])
    status, short = server.post("/api/embed", {**base, "dimensions": 8})
    assert status == 200, short
    for whole, cut in zip(full["embeddings"], short["embeddings"]):
        assert len(cut) == 8
        assert cut == pytest.approx(unit(whole[:8]), abs=1e-6)
        assert math.sqrt(sum(x * x for x in cut)) == pytest.approx(1.0, abs=1e-5)
    # As many as the model has, or more: the whole vector.
    for dims in (size, size + 100, None):
        _, same = server.post("/api/embed", {**base, "dimensions": dims})
        for a, b in zip(same["embeddings"], full["embeddings"]):
            assert a == pytest.approx(b, abs=1e-6)


@pytest.mark.parametrize("dims", [0, -3, 2.5, "8", [8], True])
def test_bad_embed_dimensions_are_400(server, dims):
    status, r = server.post("/api/embed", {"model": "stories260k", "input": "Tom ran.", "dimensions": dims})
    assert status == 400 and "dimensions" in r["error"], r


# --- 5. /api/generate context ---

def tokenize(text, bos=True):
    args = [BIN, "tokenize", "-m", DEMO, *([] if bos else ["--no-bos"]), text]
    return [int(x) for x in subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()]


def detokenize(ids):
    return subprocess.run([BIN, "detokenize", "-m", DEMO, *map(str, ids)], capture_output=True, text=True,
                          check=True).stdout


def test_generate_returns_the_prompt_and_answer_ids_as_context(server):
    base = {"model": "stories260k", "prompt": "Tom ran.", "options": GREEDY}
    status, r = server.post("/api/generate", {**base, "stream": False})
    assert status == 200, r
    ctx = r["context"]
    n_prompt = r["prompt_eval_count"]
    assert ctx[:n_prompt] == tokenize("Tom ran.")  # the prompt as the model saw it (BOS included)
    assert len(ctx) == n_prompt + r["eval_count"]
    assert detokenize(ctx).rstrip("\n") == "Tom ran." + r["response"]
    # Streamed: the same context on the last chunk only.
    status, chunks = server.lines("/api/generate", {**base, "stream": True})
    assert status == 200
    assert chunks[-1]["done"] and chunks[-1]["context"] == ctx
    assert all("context" not in c for c in chunks[:-1])
    # Raw prompts get no context (as Ollama).
    _, raw = server.post("/api/generate", {**base, "raw": True, "stream": False})
    assert "context" not in raw


def test_a_requests_context_comes_before_its_prompt(server):
    base = {"model": "stories260k", "stream": False, "options": GREEDY}
    _, first = server.post("/api/generate", {**base, "prompt": "Tom ran."})
    status, second = server.post("/api/generate", {**base, "prompt": "Lily sat.", "context": first["context"]})
    assert status == 200, second
    continued = first["context"] + tokenize("Lily sat.", bos=False)  # one BOS: the context's
    assert second["prompt_eval_count"] == len(continued)
    assert second["context"][:len(continued)] == continued
    # An empty context is none.
    _, fresh = server.post("/api/generate", {**base, "prompt": "Lily sat.", "context": []})
    assert fresh["context"][:fresh["prompt_eval_count"]] == tokenize("Lily sat.")


@pytest.mark.parametrize("context,needle", [
    ("1 2 3", "must be an array"),
    ({"ids": [1]}, "must be an array"),
    ([1, -1], "context'[1]"),
    ([1, 2.5], "context'[1]"),
    (["1"], "context'[0]"),
    ([1, 2 ** 40], "context'[1]"),
    ([1, 100000], "outside the vocabulary"),  # checked by the runner
])
def test_bad_context_is_400(server, context, needle):
    status, r = server.post("/api/generate", {"model": "stories260k", "prompt": "Tom ran.", "context": context,
                                              "stream": False, "options": GREEDY})
    assert status == 400 and needle in r["error"], r


def test_raw_refuses_context_like_ollama(server):
    for extra in ({"context": [1, 274]}, {"system": "Be brief."}, {"template": "{{ .Prompt }}"}):
        status, r = server.post("/api/generate", {"model": "stories260k", "prompt": "Tom ran.", "raw": True,
                                                  "stream": False, **extra})
        assert status == 400 and r["error"] == "raw mode does not support template, system, or context", r
