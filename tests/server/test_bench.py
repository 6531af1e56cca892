"""`parallama bench` against a live server: a short sweep of the built-in stories260k through the
admin API, its JSON report, its SVG chart and the restored limit."""
import json
import signal
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import BIN

SVG_NS = "{http://www.w3.org/2000/svg}"


def parallel_entry(server, key):
    status, body = server.request("GET", "/api/parallel")
    if status == 404:
        pytest.skip("the server has no admin API yet (GET /api/parallel answered 404): bench needs it")
    assert status == 200, body
    return next((m for m in body["models"] if m["model"] == key), None)


def test_bench_sweep_reports_json_and_svg(server, tmp_path):
    status, _ = server.post("/api/generate", {"model": "stories260k"})  # load it, so it has a limit to restore
    assert status == 200
    before = parallel_entry(server, "stories260k:latest")
    assert before is not None
    svg = tmp_path / "out.svg"
    r = server.cli("bench", "stories260k", "--parallel", "1,2", "--duration", "3s", "--gen-tokens", "16",
                   "--prompt-tokens", "16", "--json", "--svg", str(svg), timeout=300)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)

    assert report["model"] == "stories260k:latest"
    assert report["prompt_tokens"] == 16 and report["gen_tokens"] == 16
    assert report["duration_s"] == 3 and report["max_itl_ms"] == 200
    assert [lvl["parallel"] for lvl in report["levels"]] == [1, 2]
    for lvl in report["levels"]:
        assert lvl["ok"], lvl
        assert 2.5 <= lvl["window_s"] <= 3.5
        assert lvl["tokens"] > 0 and lvl["requests"] >= 1 and lvl["requests_completed"] >= 1
        assert lvl["requests_failed"] == 0, lvl
        assert lvl["agg_tok_s"] == pytest.approx(lvl["tokens"] / lvl["window_s"])
        assert lvl["per_stream_tok_s"] > 0
        for q in ("ttft_ms", "itl_ms"):
            assert set(lvl[q]) >= {"p50", "p90", "p95", "p99", "mean", "n"}
            assert lvl[q]["n"] > 0 and 0 < lvl[q]["p50"] <= lvl[q]["p95"] <= lvl[q]["p99"]
        assert lvl["queued_max"] == 0, "the limit set through the admin API should hold every stream"
        assert lvl["size_bytes"] > 0
        assert lvl["prompt_tokens_mean"] > 0
    best = report["best"]
    if best is not None:
        assert best["parallel"] in (1, 2) and best["itl_p95_ms"] <= report["max_itl_ms"]
    assert report["previous"] == {"num_parallel": before["num_parallel"], "source": before["source"]}
    assert report["restored"] is True and report["interrupted"] is False

    root = ET.parse(svg).getroot()  # well-formed XML, an SVG document
    assert root.tag == SVG_NS + "svg"
    points = [c.get("data-parallel") for c in root.iter(SVG_NS + "circle")]
    assert points == ["1", "2"]
    assert "stories260k:latest" in root.find(SVG_NS + "title").text

    after = parallel_entry(server, "stories260k:latest")
    assert after["num_parallel"] == before["num_parallel"]
    assert "bench: chart written to" in r.stderr and "parallel  2 (2/2)" in r.stderr


def test_bench_table_on_the_terminal(server):
    server.post("/api/generate", {"model": "stories260k"})
    parallel_entry(server, "stories260k:latest")
    r = server.cli("bench", "stories260k", "--parallel", "2", "--duration", "2s", "--gen-tokens", "8",
                   "--prompt-tokens", "8", "--warmup", "0", "--max-itl", "10s", timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("PARALLEL"))
    for col in ("AGG TOK/S", "STREAM TOK/S", "TTFT P50", "TTFT P95", "ITL P50", "ITL P95", "REQUESTS"):
        assert col in lines[header]
    assert lines[header + 1].split()[0] == "2"
    assert "best for ITL p95 <= 10.00 s: parallel 2" in r.stdout


def test_bench_bad_arguments_fail_clearly(server):
    r = server.cli("bench", "stories260k", "--parallel", "1,0")
    assert r.returncode != 0 and "--parallel" in r.stderr
    r = server.cli("bench", "stories260k", "--duration", "soon")
    assert r.returncode != 0 and "duration" in r.stderr
    r = server.cli("bench", "no-such-model", "--parallel", "1", "--duration", "1s")
    assert r.returncode != 0 and "not found" in r.stderr


def test_bench_interrupted_restores_the_limit(server):
    """Ctrl-C mid-sweep: the partial results are printed, the previous limit is put back, the exit code says so."""
    server.post("/api/generate", {"model": "stories260k"})
    before = parallel_entry(server, "stories260k:latest")
    p = subprocess.Popen([BIN, "bench", "stories260k", "--parallel", "3,5", "--duration", "60s", "--gen-tokens", "32",
                          "--prompt-tokens", "16", "--json"], env=server.env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and parallel_entry(server, "stories260k:latest")["num_parallel"] != 3:
        time.sleep(0.1)
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1 and "interrupted" in err, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["restored"] is True
    assert [lvl["parallel"] for lvl in report["levels"]] == [3]
    assert parallel_entry(server, "stories260k:latest")["num_parallel"] == before["num_parallel"]
