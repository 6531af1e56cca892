"""The live view: GET /ui (and GET / for browsers) in headless Chromium, whose rendered page must show
the numbers /api/ps reports: parallel limit and source, running, queued, context, size, KV use and
throughput (tokens/s)."""
import html.parser
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import Server, make_slow_model

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


class Dom(html.parser.HTMLParser):
    """The page's stable hooks: elements by id, and model rows' data-field/data-value cells."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.rows = {}
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.by_id[a["id"]] = a
        if tag == "tr" and "data-model" in a:
            self._row = self.rows.setdefault(a["data-model"], {})
        elif tag == "td" and self._row is not None and "data-field" in a:
            self._row[a["data-field"]] = a.get("data-value", "")

    def handle_endtag(self, tag):
        if tag == "tr":
            self._row = None


def render(url, budget_ms=5000):
    """The DOM after the page's scripts ran for budget_ms of virtual time (about five polls)."""
    with tempfile.TemporaryDirectory(prefix="parallama-chromium-") as profile:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                            "--no-first-run", "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
                            f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                           capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    dom = Dom()
    dom.feed(r.stdout)
    return dom


def ps_numbers(server, name):
    """The moving numbers of one model in /api/ps: KV use and tokens/s."""
    status, body = server.request("GET", "/api/ps")
    assert status == 200
    m = next(m for m in body["models"] if m["name"] == name)
    return m.get("kv_used"), m.get("tokens_per_second")


def ps_fields(server):
    status, body = server.request("GET", "/api/ps")
    assert status == 200
    return {m["name"]: {"num_parallel": str(m["num_parallel"]), "parallel_source": m["parallel_source"],
                        "running": str(m["running"]), "queued": str(m["queued"]),
                        "context_length": str(m["context_length"]), "size": str(m["size"])}
            for m in body["models"]}


class Streams:
    """Streaming generations held open until stop(): closing the connection cancels them."""

    def __init__(self, server, body, n):
        self.stop_event = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(server.port, body), daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, port, body):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            conn.request("POST", "/api/generate", body=json.dumps(body), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            while not self.stop_event.is_set() and resp.readline():
                pass
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=60)


def test_root_is_text_for_clients_and_the_page_for_browsers(server):
    status, payload, r = server.request("GET", "/", raw=True)
    assert status == 200 and payload == b"parallama is running"
    assert r.getheader("Content-Type").startswith("text/plain")
    status, payload, r = server.request("GET", "/", headers={"Accept": "*/*"}, raw=True)
    assert payload == b"parallama is running"
    status, payload, r = server.request("GET", "/", headers={"Accept": BROWSER_ACCEPT}, raw=True)
    assert status == 200 and r.getheader("Content-Type").startswith("text/html")
    assert b"<title>parallama</title>" in payload
    status, page, r = server.request("GET", "/ui", raw=True)
    assert status == 200 and r.getheader("Content-Type").startswith("text/html")
    assert page == payload
    # Self-contained: no external scripts, styles, images or fonts.
    text = page.decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "@import" not in text and "url(http" not in text
    status, _ = server.request("HEAD", "/", headers={"Accept": BROWSER_ACCEPT})
    assert status == 200


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; scripts/setup.sh)")
def test_live_page_without_models(server):
    server.post("/api/generate", {"model": "stories260k", "keep_alive": 0})  # nothing loaded
    dom = render(f"http://127.0.0.1:{server.port}/ui")
    assert dom.by_id["status"]["data-state"] == "ok"
    assert int(dom.by_id["polls"]["data-count"]) >= 2
    if not ps_fields(server):
        assert dom.rows == {}
        assert "hidden" not in dom.by_id["no-models"]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; scripts/setup.sh)")
def test_live_page_matches_api_ps_under_load():
    """Two slots and three long generations: the page must show parallel 2, running 2, queued 1, and the
    KV use and tokens/s of /api/ps (those move while tokens come: between /api/ps's values just before
    and just after the render, within a tolerance for the throughput)."""
    s = Server(env_extra={"OLLAMA_NUM_PARALLEL": "2"})
    streams = None
    try:
        path = make_slow_model(os.path.join(s.tmp, "slow.gguf"))
        r = s.cli("create", "slow", "-f", path)
        assert r.returncode == 0, r.stderr
        status, _ = s.post("/api/generate", {"model": "slow"})
        assert status == 200
        streams = Streams(s, {"model": "slow", "prompt": "Once upon a time", "raw": True,
                              "options": {"num_predict": 100000, "temperature": 0}}, 3)
        deadline = time.time() + 60
        while time.time() < deadline:
            m = ps_fields(s).get("slow:latest")
            if m and m["running"] == "2" and m["queued"] == "1" and (ps_numbers(s, "slow:latest")[1] or 0) > 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the three requests never showed as running 2, queued 1 with tokens/s: {ps_fields(s)}")

        # /api/ps's counts are steady while the requests last; compare against it before and after rendering.
        for attempt in range(3):
            before = ps_fields(s)
            kv_before, tps_before = ps_numbers(s, "slow:latest")
            dom = render(f"http://127.0.0.1:{s.port}/ui")
            kv_after, tps_after = ps_numbers(s, "slow:latest")
            after = ps_fields(s)
            if before == after:
                break
        assert before == after, "/api/ps kept changing while the page rendered"
        assert dom.by_id["status"]["data-state"] == "ok"
        assert int(dom.by_id["polls"]["data-count"]) >= 2
        assert set(dom.rows) == set(after), dom.rows
        shown = dom.rows["slow:latest"]
        for field, value in after["slow:latest"].items():
            assert shown[field] == value, (field, shown, after)
        assert shown["num_parallel"] == "2" and shown["running"] == "2" and shown["queued"] == "1"

        # KV use only grows while the three requests generate: the page's value lies between /api/ps's.
        kv = float(shown["kv_used"])
        assert kv_before is not None and kv_after is not None
        assert kv_before - 1e-9 <= kv <= kv_after + 1e-9, (kv_before, kv, kv_after)
        assert 0 < kv <= 1
        # Throughput moves from one poll to the next: the page shows /api/ps's tokens_per_second from a
        # poll during the render, so it must lie near the values around it.
        tps = float(shown["tokens_per_s"])
        lo, hi = min(tps_before, tps_after), max(tps_before, tps_after)
        assert tps > 0, shown
        assert lo * 0.6 - 1 <= tps <= hi * 1.4 + 1, (tps_before, tps, tps_after)
        chart = dom.by_id["throughput-chart"]
        assert chart["data-unit"] == "tokens/s" and int(chart["data-points"]) >= 1
        assert abs(float(dom.by_id["total-tps"]["data-value"]) - tps) <= 0.01  # one model: the total is its rate
    finally:
        if streams:
            streams.stop()
        s.stop()
