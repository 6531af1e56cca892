"""Tool definitions on /api/chat and /v1/chat/completions: validated, rendered through the model's template
(here a Modelfile TEMPLATE in Go syntax), tool-call history passed through, and the held-back streaming used when
tools are given. Random-weight models cannot be steered into writing a call by a prompt, so the parsing of calls out
of the text is covered by the C++ unit tests (tests/chat/test_tool_calls.cpp), and end to end by the last test here,
where a format schema forces the output to be a call."""
import json

import pytest

GREEDY = {"temperature": 0, "num_predict": 8}
TEMPLATE = ('{{ if .Tools }}Tools: {{ range .Tools }}{{ .Function.Name }} {{ end }}{{ end }}'
            '{{ range .Messages }}{{ .Content }}{{ range .ToolCalls }} call {{ .Function.Name }}{{ end }} {{ end }}')
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
                                      "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                     "required": ["city"]}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
]
USER = [{"role": "user", "content": "Tom ran."}]


@pytest.fixture(scope="module")
def tooled(server, tmp_path_factory):
    mf = tmp_path_factory.mktemp("tools") / "Modelfile"
    mf.write_text(f'FROM stories260k\nTEMPLATE """{TEMPLATE}"""\n')
    assert server.cli("create", "tooled", "-f", str(mf)).returncode == 0
    return "tooled"


def raw_count(server, text):
    status, r = server.post("/api/generate", {"model": "stories260k", "prompt": text, "raw": True, "stream": False,
                                              "options": {"num_predict": 1}})
    assert status == 200, r
    return r["prompt_eval_count"]


def test_tools_reach_the_template(server, tooled):
    base = {"model": tooled, "messages": USER, "stream": False, "options": GREEDY}
    _, without = server.post("/api/chat", base)
    status, with_tools = server.post("/api/chat", {**base, "tools": TOOLS})
    assert status == 200, with_tools
    assert without["prompt_eval_count"] == raw_count(server, "Tom ran. ")
    assert with_tools["prompt_eval_count"] == raw_count(server, "Tools: get_weather get_time Tom ran. ")
    assert with_tools["prompt_eval_count"] > without["prompt_eval_count"]
    # No call in the text: an ordinary answer, no tool_calls field.
    assert "tool_calls" not in with_tools["message"] and with_tools["done"]
    # An empty list is no tools (as Ollama treats it).
    _, empty = server.post("/api/chat", {**base, "tools": []})
    assert empty["prompt_eval_count"] == without["prompt_eval_count"]
    # OpenAI: the same prompt.
    status, oai = server.post("/v1/chat/completions", {"model": tooled, "messages": USER, "tools": TOOLS,
                                                       "max_tokens": 8, "temperature": 0})
    assert status == 200, oai
    assert oai["usage"]["prompt_tokens"] == with_tools["prompt_eval_count"]
    assert oai["choices"][0]["finish_reason"] in ("stop", "length")
    assert "tool_calls" not in oai["choices"][0]["message"]


def test_tool_history_passes_through(server, tooled):
    # OpenAI's shape: arguments as a JSON string, the result as a role "tool" message with tool_call_id.
    msgs = USER + [
        {"role": "assistant", "content": "",
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny."},
        {"role": "user", "content": "Lily sat."},
    ]
    expected = "Tools: get_weather get_time Tom ran.  call get_weather Sunny. Lily sat. "
    status, oai = server.post("/v1/chat/completions", {"model": tooled, "messages": msgs, "tools": TOOLS,
                                                       "max_tokens": 4, "temperature": 0})
    assert status == 200, oai
    assert oai["usage"]["prompt_tokens"] == raw_count(server, expected)
    # Ollama's shape: arguments as an object, tool_name on the result.
    msgs[1]["tool_calls"] = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    msgs[2] = {"role": "tool", "tool_name": "get_weather", "content": "Sunny."}
    status, ol = server.post("/api/chat", {"model": tooled, "messages": msgs, "tools": TOOLS, "stream": False,
                                           "options": {"temperature": 0, "num_predict": 4}})
    assert status == 200, ol
    assert ol["prompt_eval_count"] == oai["usage"]["prompt_tokens"]


@pytest.mark.parametrize("tools,needle", [
    ({"type": "function"}, "must be an array"),
    (["x"], "tools[0] must be an object"),
    ([{"type": "retrieval", "function": {"name": "f"}}], "tools[0].type"),
    ([{"type": "function"}], "'function' object"),
    ([{"type": "function", "function": {"description": "no name"}}], "'name'"),
    ([{"type": "function", "function": {"name": ""}}], "'name'"),
    ([TOOLS[0], {"type": "function", "function": {"name": "f", "parameters": "{}"}}], "tools[1].function.parameters"),
    ([{"type": "function", "function": {"name": "f", "description": 3}}], "description"),
])
def test_bad_tools_are_400(server, tools, needle):
    status, body = server.post("/api/chat", {"model": "stories260k", "messages": USER, "tools": tools,
                                             "stream": False})
    assert status == 400 and needle in body["error"], body
    status, body = server.post("/v1/chat/completions", {"model": "stories260k", "messages": USER, "tools": tools})
    assert status == 400 and needle in body["error"]["message"], body


def test_bad_tool_calls_in_messages_are_400(server):
    msgs = USER + [{"role": "assistant", "content": "", "tool_calls": {"name": "f"}}]
    status, body = server.post("/api/chat", {"model": "stories260k", "messages": msgs, "stream": False})
    assert status == 400 and "tool_calls must be an array" in body["error"]


def test_streaming_with_tools_is_held_back(server, tooled):
    base = {"model": tooled, "messages": USER, "tools": TOOLS, "options": GREEDY}
    _, whole = server.post("/api/chat", {**base, "stream": False})
    status, chunks = server.lines("/api/chat", {**base, "stream": True})
    assert status == 200
    # One message chunk with the whole text, then the done chunk.
    assert [c["done"] for c in chunks] == [False, True]
    assert chunks[0]["message"]["content"] == whole["message"]["content"]
    assert chunks[1]["message"]["content"] == "" and chunks[1]["done_reason"] == whole["done_reason"]

    _, oai_whole = server.post("/v1/chat/completions", {"model": tooled, "messages": USER, "tools": TOOLS,
                                                        "max_tokens": 8, "temperature": 0})
    status, payload, _ = server.request("POST", "/v1/chat/completions",
                                        {"model": tooled, "messages": USER, "tools": TOOLS, "max_tokens": 8,
                                         "temperature": 0, "stream": True}, raw=True)
    assert status == 200
    events = [l[len("data: "):] for l in payload.decode().splitlines() if l.startswith("data: ")]
    assert events[-1] == "[DONE]"
    deltas = [json.loads(e)["choices"][0] for e in events[:-1]]
    text = "".join(d["delta"].get("content", "") for d in deltas)
    assert text == oai_whole["choices"][0]["message"]["content"]
    assert deltas[-1]["finish_reason"] == oai_whole["choices"][0]["finish_reason"]


# A format schema that only a call of get_weather(city="Paris") satisfies: with it even a random-weight model
# writes a call, so the parsing of calls is tested end to end (the template has no marker: Llama 3's bare JSON).
CALL_SCHEMA = {"type": "object", "properties": {
    "name": {"const": "get_weather"},
    "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris"]}}, "required": ["city"]}},
    "required": ["name", "parameters"]}


def test_a_format_forced_tool_call_comes_back_as_tool_calls(server, tooled):
    base = {"model": tooled, "messages": USER, "tools": TOOLS, "format": CALL_SCHEMA,
            "options": {"temperature": 0, "num_predict": 100}}
    status, r = server.post("/api/chat", {**base, "stream": False})
    assert status == 200, r
    assert r["message"]["tool_calls"] == [{"function": {"index": 0, "name": "get_weather",
                                                        "arguments": {"city": "Paris"}}}]
    assert r["message"]["content"] == "" and r["done_reason"] == "stop"
    status, chunks = server.lines("/api/chat", {**base, "stream": True})
    assert status == 200
    assert chunks[0]["message"]["tool_calls"] == r["message"]["tool_calls"] and chunks[-1]["done"]

    oai = {"model": tooled, "messages": USER, "tools": TOOLS, "temperature": 0, "max_tokens": 100,
           "response_format": {"type": "json_schema", "json_schema": {"name": "call", "schema": CALL_SCHEMA}}}
    status, r = server.post("/v1/chat/completions", oai)
    assert status == 200, r
    choice = r["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    status, payload, _ = server.request("POST", "/v1/chat/completions", {**oai, "stream": True}, raw=True)
    assert status == 200
    events = [json.loads(l[6:]) for l in payload.decode().splitlines() if l.startswith("data: {")]
    [delta_calls] = [e["choices"][0]["delta"]["tool_calls"] for e in events if "tool_calls" in e["choices"][0]["delta"]]
    assert delta_calls[0]["index"] == 0 and delta_calls[0]["function"]["name"] == "get_weather"
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
