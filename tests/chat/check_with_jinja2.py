#!/usr/bin/env python3
"""Cross-check tests/chat/expected/ against Python's jinja2 (optional; needs jinja2).

The expected prompts were derived by hand from each template. This renders every
case of cases.json with jinja2 set up as transformers' apply_chat_template sets
it up (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loop controls,
tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now fixed at
2024-09-05 like the C++ tests) and reports any case where jinja2 disagrees.
Usage: python3 tests/chat/check_with_jinja2.py
"""
import datetime
import json
import pathlib
import sys

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

here = pathlib.Path(__file__).parent


def raise_exception(message):
    raise TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: datetime.datetime(2024, 9, 5).strftime(fmt)

bad = 0
cases = json.loads((here / "cases.json").read_text(encoding="utf-8"))
for c in cases:
    ctx = json.loads((here / "contexts" / c["context"]).read_text(encoding="utf-8"))
    ctx.update(c["vars"])
    src = (here / "templates" / c["template"]).read_text(encoding="utf-8")
    try:
        got = env.from_string(src).render(**ctx)
        ok = "expected" in c and got == (here / "expected" / c["expected"]).read_bytes().decode("utf-8")
    except Exception as e:  # the template's own errors are expected for some cases
        got = "error: " + str(e)
        ok = "error" in c and c["error"] in str(e)
    if not ok:
        bad += 1
        print(f"MISMATCH {c['template']} + {c['context']}: {got!r}")
print(f"{len(cases) - bad} of {len(cases)} cases agree with jinja2")
sys.exit(1 if bad else 0)
