"""Structured output on a live `parallama serve`: Ollama's `format` ("json" or a JSON schema) on /api/generate and
/api/chat, OpenAI's `response_format` on /v1/chat/completions and /v1/completions. Every output is parsed and checked
with Debian's python3-jsonschema, a validator that shares nothing with src/grammar.

Random-weight models write anything, so the schemas bound every value (enums, maxLength, maxItems): a constrained
random model must then finish, and every output must complete ("stop"), parse and validate."""
import concurrent.futures
import json

import jsonschema
import pytest

from conftest import make_model

SCHEMAS = {
    "nested": {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 8},
        "address": {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome", "Oslo"]},
                                                     "zip": {"type": "string", "maxLength": 5}},
                    "required": ["city", "zip"]}},
        "required": ["name", "address"]},
    "arrays": {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4}, "maxItems": 3},
        "grid": {"type": "array", "minItems": 1, "maxItems": 2,
                 "items": {"type": "array", "items": {"type": "boolean"}, "maxItems": 2}}},
        "required": ["tags", "grid"]},
    "enums": {"type": "object", "properties": {
        "color": {"enum": ["red", "green", "blue"]}, "size": {"enum": [1, 2.5, None, True]},
        "version": {"const": 2}, "ok": {"type": "boolean"}, "none": {"type": "null"}},
        "required": ["color", "size", "version", "ok", "none"]},
    "anyof": {"anyOf": [
        {"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"enum": [1, 9]}},
         "required": ["kind", "lives"]},
        {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}},
         "required": ["kind", "good"]},
        {"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 1, "maxItems": 2}]},
    "ref": {"$defs": {"point": {"type": "object", "properties": {"x": {"enum": [0, 1, 2]}, "y": {"enum": [0, 1, 2]}},
                                "required": ["x", "y"]}},
            "type": "object", "properties": {"start": {"$ref": "#/$defs/point"}, "end": {"$ref": "#/$defs/point"}},
            "required": ["start", "end"]},
    "optional": {"type": "object", "properties": {"a": {"enum": ["p", "q"]}, "b": {"type": "boolean"},
                                                  "c": {"type": "string", "maxLength": 3}},
                 "required": ["a"], "additionalProperties": False},
    "date": {"type": "object", "properties": {"when": {"type": "string", "format": "date"},
                                              "tags": {"type": "array", "items": {"enum": ["u", "v"]}, "maxItems": 2}},
             "required": ["when", "tags"]},
    "root_array": {"type": "array", "items": {"type": "object", "properties": {"n": {"enum": [1, 2]}},
                                              "required": ["n"]}, "minItems": 1, "maxItems": 3},
}
PROMPT = "Once upon a time"
N_PREDICT = 400  # far more than any of the schemas above can take


def check(text, schema):
    value = json.loads(text)
    jsonschema.validate(value, schema, format_checker=jsonschema.FormatChecker())
    return value


@pytest.fixture(scope="module")
def models(server, tmp_path_factory):
    """stories260k, and random-weight models (f32 and q8_0) with its vocabulary, at 8 parallel sequences."""
    d = tmp_path_factory.mktemp("format")
    names = ["stories260k"]
    for name, extra in (("fmt-rnd", []), ("fmt-rnd-q8", ["--type", "q8_0"])):
        path = make_model(str(d / f"{name}.gguf"), *extra)
        mf = d / f"{name}.Modelfile"
        mf.write_text(f"FROM {path}\nPARAMETER num_parallel 8\n")
        r = server.cli("create", name, "-f", str(mf))
        assert r.returncode == 0, r.stderr
        names.append(name)
    return names


def generate(server, model, fmt, options, stream=False):
    body = {"model": model, "prompt": PROMPT, "stream": stream, "format": fmt,
            "options": {"num_predict": N_PREDICT, **options}}
    if stream:
        status, lines = server.lines("/api/generate", body)
        assert status == 200, lines
        assert "error" not in lines[-1], lines[-1]
        return "".join(l["response"] for l in lines), lines[-1]
    status, r = server.post("/api/generate", body)
    assert status == 200, r
    return r["response"], r


@pytest.mark.parametrize("schema_name", sorted(SCHEMAS))
def test_generate_schema_greedy_and_sampled(server, models, schema_name):
    schema = SCHEMAS[schema_name]
    for model in models:
        for options in ({"temperature": 0}, {"temperature": 1, "seed": 1}, {"temperature": 1, "seed": 2}):
            text, last = generate(server, model, schema, options)
            assert last["done_reason"] == "stop", (model, options, text)
            check(text, schema)


def test_generate_streamed_equals_whole(server, models):
    for model in models:
        schema = SCHEMAS["nested"]
        whole, _ = generate(server, model, schema, {"temperature": 0})
        streamed, last = generate(server, model, schema, {"temperature": 0}, stream=True)
        assert streamed == whole and last["done_reason"] == "stop"
        check(streamed, schema)


def test_chat_schema(server, models):
    schema = SCHEMAS["ref"]
    for model in models:
        body = {"model": model, "messages": [{"role": "user", "content": "Where?"}], "format": schema,
                "options": {"temperature": 0, "num_predict": N_PREDICT}}
        status, r = server.post("/api/chat", {**body, "stream": False})
        assert status == 200, r
        assert r["done_reason"] == "stop"
        check(r["message"]["content"], schema)
        status, lines = server.lines("/api/chat", {**body, "stream": True})
        assert status == 200
        assert "".join(l["message"]["content"] for l in lines) == r["message"]["content"]


def test_json_gives_objects(server, models):
    """"json": any JSON object. Its strings are unbounded, so a random model may run into num_predict; what ends
    must parse as an object, and what is cut must be a valid start of one (checked by closing it)."""
    n_done = 0
    for model in models:
        for seed in range(4):
            body = {"model": model, "prompt": PROMPT, "stream": False, "format": "json",
                    "options": {"temperature": 1, "seed": seed, "num_predict": 600}}
            status, r = server.post("/api/generate", body)
            assert status == 200, r
            text = r["response"]
            if r["done_reason"] == "stop":
                assert isinstance(json.loads(text), dict), text
                n_done += 1
            else:
                assert isinstance(json.loads(close_json_prefix(text)), dict), text
    assert n_done > 0


def close_json_prefix(text):
    """Completes a prefix of a JSON document the shortest way: close the string, fill a missing value, close
    the open containers. Raises when the prefix cannot start a JSON document."""
    stack, out, i = [], text, 0
    in_string = escape = False
    pending_hex = 0  # hex digits still owed by a \\u escape
    expect = "value"  # what may come next outside a string: value | key | colon | after
    bare = ""  # the number or literal being read (outside strings)
    while i < len(text):
        c = text[i]
        i += 1
        if in_string:
            if pending_hex:
                pending_hex -= 1
            elif escape:
                escape = False
                pending_hex = 4 if c == "u" else 0
            elif c == "\\":
                escape = True
            elif c == '"':
                in_string = False
                expect = "colon" if expect == "key" else "after"
            continue
        if c in " \t\n\r":
            bare = ""
            continue
        if c not in '{[]}:,"':
            bare += c
            expect = "after"
            continue
        bare = ""
        if c == '"':
            in_string = True
            continue
        if c in "{[":
            stack.append(c)
            expect = "key" if c == "{" else "value"
        elif c in "}]":
            stack.pop()
            expect = "after"
        elif c == ":":
            expect = "value"
        elif c == ",":
            expect = "key" if stack[-1] == "{" else "value"
    if in_string:
        out += "0" * pending_hex + ("\\" if escape else "") + '"'
        if expect == "key":
            out += ": null"
    elif expect == "colon":
        out += ": null"
    elif expect == "value" and stack:
        out += "null"
    elif expect == "key" and out.rstrip().endswith(","):
        out += '"k": null'
    elif bare and bare[-1] in "-+.eE" and bare[0] in "-0123456789":
        out += "0"  # a number cut after its sign, point or exponent
    elif bare:
        # A literal cut short (tr, fal, nu): complete it; anything else is left for the parser to refuse.
        out += next((w[len(bare):] for w in ("true", "false", "null") if w.startswith(bare)), "")
    return out + "".join("}" if c == "{" else "]" for c in reversed(stack))


def test_eight_parallel_requests_with_eight_schemas(server, models):
    names = sorted(SCHEMAS)
    assert len(names) == 8
    for model in models[1:2] + models[:1]:  # a random model, then stories260k
        def one(i):
            return generate(server, model, SCHEMAS[names[i]], {"temperature": 1, "seed": i})
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(one, range(8)))
        for i, (text, last) in enumerate(results):
            assert last["done_reason"] == "stop", (model, names[i], text)
            check(text, SCHEMAS[names[i]])
        # Alone, each gives the same (seeded sampling does not depend on the neighbours).
        for i in (0, 5):
            assert one(i)[0] == results[i][0]
    status, ps = server.request("GET", "/api/ps")
    rnd = next(m for m in ps["models"] if m["name"].startswith("fmt-rnd:"))
    assert rnd["num_parallel"] == 8


def test_properties_in_the_schemas_order(server, models):
    schema = {"type": "object", "properties": {"zeta": {"enum": [1, 2]}, "mid": {"type": "boolean"},
                                               "alpha": {"const": "a"}},
              "required": ["zeta", "mid", "alpha"]}
    for model in models:
        text, _ = generate(server, model, schema, {"temperature": 0})
        assert list(json.loads(text, object_pairs_hook=lambda kv: [k for k, _ in kv])) == ["zeta", "mid", "alpha"]
    status, r = server.post("/v1/chat/completions", {
        "model": models[1], "messages": [{"role": "user", "content": "x"}], "temperature": 0,
        "response_format": {"type": "json_schema", "json_schema": {"name": "ordered", "schema": schema}}})
    assert status == 200, r
    text = r["choices"][0]["message"]["content"]
    assert list(json.loads(text, object_pairs_hook=lambda kv: [k for k, _ in kv])) == ["zeta", "mid", "alpha"]


def test_no_format_means_unconstrained(server):
    base = {"model": "stories260k", "prompt": PROMPT, "stream": False, "options": {"temperature": 0, "num_predict": 12}}
    _, plain = server.post("/api/generate", base)
    for fmt in ("", None):
        status, r = server.post("/api/generate", {**base, "format": fmt})
        assert status == 200 and r["response"] == plain["response"]
    status, r = server.post("/v1/chat/completions", {"model": "stories260k", "messages": [{"role": "user", "content": "x"}],
                                                     "max_tokens": 5, "response_format": {"type": "text"}})
    assert status == 200 and r["choices"][0]["finish_reason"] == "length"


def test_openai_response_format(server, models):
    msgs = [{"role": "user", "content": "Give me a point."}]
    for model in models:
        schema = SCHEMAS["anyof"]
        rf = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
        status, r = server.post("/v1/chat/completions", {"model": model, "messages": msgs, "temperature": 0,
                                                         "max_tokens": N_PREDICT, "response_format": rf})
        assert status == 200, r
        assert r["choices"][0]["finish_reason"] == "stop"
        whole = r["choices"][0]["message"]["content"]
        check(whole, schema)
        # Streamed: the same text.
        status, payload, _ = server.request("POST", "/v1/chat/completions", {
            "model": model, "messages": msgs, "temperature": 0, "max_tokens": N_PREDICT, "response_format": rf,
            "stream": True}, raw=True)
        assert status == 200
        events = [l[6:] for l in payload.decode().splitlines() if l.startswith("data: ")]
        assert events[-1] == "[DONE]"
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-1])
        assert text == whole
        # The legacy completions endpoint takes the same field.
        status, r = server.post("/v1/completions", {"model": model, "prompt": PROMPT, "temperature": 0,
                                                    "max_tokens": N_PREDICT, "response_format": rf})
        assert status == 200, r
        assert r["choices"][0]["finish_reason"] == "stop"
        check(r["choices"][0]["text"], schema)
    # json_object: any JSON object (the random model finishes with this seed or is cut; what ends, parses).
    status, r = server.post("/v1/chat/completions", {"model": "stories260k", "messages": msgs, "max_tokens": 40,
                                                     "seed": 1, "response_format": {"type": "json_object"}})
    assert status == 200, r
    text = r["choices"][0]["message"]["content"]
    assert text.startswith("{")
    if r["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(text), dict)
    else:
        assert isinstance(json.loads(close_json_prefix(text)), dict)


BAD_OLLAMA = [
    (42, "field 'format' must be \"json\" or a JSON schema object"),
    ("xml", "got \"xml\""),
    (["json"], "field 'format'"),
    (True, "field 'format'"),
    ({"type": "string", "pattern": "^a"}, "'pattern'"),
    ({"type": "strng"}, "strng"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "$ref"),
    ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems"),
    ({"not": {"type": "null"}}, "'not'"),
]


@pytest.mark.parametrize("fmt,needle", BAD_OLLAMA)
def test_bad_ollama_formats_are_400(server, fmt, needle):
    status, r = server.post("/api/generate", {"model": "stories260k", "prompt": "x", "stream": False, "format": fmt})
    assert status == 400 and needle in r["error"], r
    status, r = server.post("/api/chat", {"model": "stories260k", "messages": [{"role": "user", "content": "x"}],
                                          "stream": True, "format": fmt})
    assert status == 400 and needle in r["error"], r


BAD_OPENAI = [
    ("json", "'response_format' must be an object"),
    ({}, "'response_format.type' must be a string"),
    ({"type": "xml"}, "must be \"text\", \"json_object\" or \"json_schema\""),
    ({"type": "json_schema"}, "'response_format.json_schema' must be an object"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}, "json_schema.name"),
    ({"type": "json_schema", "json_schema": {"name": "x"}}, "json_schema.schema' is missing"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}}, "must be a JSON schema object"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": "yes"}}, "strict"),
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "pattern": "a"}}},
     "'response_format.json_schema.schema': JSON schema keyword 'pattern'"),
]


@pytest.mark.parametrize("rf,needle", BAD_OPENAI)
def test_bad_openai_response_formats_are_400(server, rf, needle):
    msgs = [{"role": "user", "content": "x"}]
    status, r = server.post("/v1/chat/completions", {"model": "stories260k", "messages": msgs, "response_format": rf})
    assert status == 400, r
    assert r["error"]["type"] == "invalid_request_error" and needle in r["error"]["message"], r
    status, r = server.post("/v1/completions", {"model": "stories260k", "prompt": "x", "response_format": rf,
                                                "stream": True})
    assert status == 400 and needle in r["error"]["message"], r


def test_bad_schema_is_refused_before_a_load(server, tmp_path):
    """The schema is checked in the server: a model that is not loaded stays unloaded."""
    path = make_model(str(tmp_path / "cold.gguf"))
    mf = tmp_path / "Modelfile"
    mf.write_text(f"FROM {path}\n")
    assert server.cli("create", "fmt-cold", "-f", str(mf)).returncode == 0
    status, r = server.post("/api/generate", {"model": "fmt-cold", "prompt": "x", "stream": False,
                                              "format": {"type": "string", "pattern": "a"}})
    assert status == 400
    _, ps = server.request("GET", "/api/ps")
    assert not any(m["name"].startswith("fmt-cold") for m in ps["models"])
