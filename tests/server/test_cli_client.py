"""The client commands (`parallama run|list|ps|show|create|cp|rm|stop|pull`) against a live server."""
import http.client
import json
import os
import re
import threading
import time

from conftest import DEMO, Server, make_model, make_slow_model


def test_run_one_shot_and_piped(server):
    r = server.cli("run", "stories260k", "Once", "upon", "a", "time")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.strip()) > 10
    r2 = server.cli("run", "stories260k", input="Once upon a time")
    assert r2.returncode == 0, r2.stderr


def test_run_interactive_chat(server):
    """With a terminal on stdin, `run MODEL` is a chat: each line is a user turn, /clear and /bye work."""
    import pty
    import subprocess
    from conftest import BIN
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, "run", "stories260k"], env=server.env, stdin=slave, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    os.close(slave)
    os.write(master, b"Tom ran.\n/clear\nLily sat.\n/bye\n")
    out, err = p.communicate(timeout=120)
    os.close(master)
    assert p.returncode == 0, err
    assert out.count(">>> ") >= 3 and "Cleared session context" in out
    answers = [part for part in out.split(">>> ") if part.strip() and "Cleared" not in part]
    assert len(answers) >= 2


def test_run_unknown_model_fails_clearly(server):
    r = server.cli("run", "no-such-model", "hi")
    assert r.returncode != 0 and "not found" in r.stderr


def test_list_show_ps(server):
    r = server.cli("list")
    assert r.returncode == 0 and "stories260k:latest" in r.stdout and r.stdout.startswith("NAME")
    r = server.cli("show", "stories260k")
    assert r.returncode == 0 and "architecture" in r.stdout and "llama" in r.stdout
    r = server.cli("show", "stories260k", "--modelfile")
    assert r.returncode == 0 and "FROM " in r.stdout
    server.cli("run", "stories260k", "Hi")
    r = server.cli("ps")
    assert r.returncode == 0 and "stories260k:latest" in r.stdout and "PARALLEL" in r.stdout


def ps_table(out):
    """`parallama ps` as rows of {column: value}: columns are separated by runs of spaces, values hold single ones."""
    lines = [l for l in out.splitlines() if l.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    return header, [dict(zip(header, re.split(r"\s{2,}", l.strip()))) for l in lines[1:]]


def test_ps_under_load_shows_parallel_running_and_throughput(tmp_path):
    """Ollama's columns first (scripts that read `ollama ps` still work), then what the live page shows, from
    the same /api/ps: under load, the parallel limit and its source, running, queued, KV use and tokens/s."""
    s = Server({"OLLAMA_NUM_PARALLEL": "2"}, tmp=str(tmp_path))
    stop = threading.Event()

    def stream():
        conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=300)
        try:
            conn.request("POST", "/api/generate", body=json.dumps(
                {"model": "slow", "prompt": "Once upon a time", "raw": True,
                 "options": {"num_predict": 100000, "temperature": 0}}), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            while not stop.is_set() and resp.readline():
                pass
        except OSError:
            pass
        finally:
            conn.close()  # cancels the generation

    threads = []
    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        assert s.post("/api/generate", {"model": "slow", "prompt": ""})[0] == 200
        threads = [threading.Thread(target=stream, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            _, ps = s.request("GET", "/api/ps")
            m = ps["models"][0]
            if m["running"] == 2 and m["queued"] == 1 and m.get("tokens_per_second", 0) > 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"never saw 2 running, 1 queued and tokens/s in /api/ps: {ps}")
        r = s.cli("ps")
        _, after = s.request("GET", "/api/ps")
        assert r.returncode == 0, r.stderr
        header, rows = ps_table(r.stdout)
        assert header[:6] == ["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"], header
        assert header[6:] == ["PARALLEL", "SOURCE", "RUNNING", "QUEUED", "KV USED", "TOKENS/S"], header
        row = next(x for x in rows if x["NAME"] == "slow:latest")
        assert row["PROCESSOR"] == "100% CPU" and row["CONTEXT"] == str(m["context_length"])
        assert row["PARALLEL"] == "2" and row["SOURCE"] == "env", row
        assert row["RUNNING"] == "2" and row["QUEUED"] == "1", row
        assert re.fullmatch(r"\d+%", row["KV USED"]) and int(row["KV USED"][:-1]) > 0, row
        tps = float(row["TOKENS/S"])
        assert tps > 0, row
        # The same figure /api/ps (and the live page) report, give or take its movement between two polls.
        ref = [m["tokens_per_second"], after["models"][0]["tokens_per_second"]]
        assert min(ref) * 0.6 - 1 <= tps <= max(ref) * 1.4 + 1, (ref, tps)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        s.stop()


def test_create_cp_rm_stop(server, tmp_path):
    gguf = make_model(str(tmp_path / "w.gguf"), "--type", "q4_0")
    mf = tmp_path / "Modelfile"
    mf.write_text('FROM ./w.gguf\nPARAMETER temperature 0\nPARAMETER stop "<eos>"\nSYSTEM """Be brief."""\n')
    r = server.cli("create", "mine", "-f", str(mf))
    assert r.returncode == 0, r.stderr
    assert "success" in r.stderr
    r = server.cli("show", "mine", "--system")
    assert r.stdout.strip() == "Be brief."
    r = server.cli("show", "mine", "--parameters")
    assert "temperature" in r.stdout and "<eos>" in r.stdout
    # A GGUF file given directly.
    r = server.cli("create", "direct", "-f", gguf)
    assert r.returncode == 0, r.stderr
    assert server.cli("cp", "mine", "mine2").returncode == 0
    assert "mine2:latest" in server.cli("list").stdout
    assert server.cli("run", "mine", "Hello").returncode == 0
    assert "mine:latest" in server.cli("ps").stdout
    assert server.cli("stop", "mine").returncode == 0
    assert "mine:latest" not in server.cli("ps").stdout
    r = server.cli("rm", "mine", "mine2", "direct")
    assert r.returncode == 0 and "deleted 'mine'" in r.stdout
    assert "mine" not in server.cli("list").stdout
    r = server.cli("rm", "mine")
    assert r.returncode != 0 and "not found" in r.stderr


def test_create_errors(server, tmp_path):
    mf = tmp_path / "Modelfile"
    mf.write_text("FROM ./missing.gguf\n")
    r = server.cli("create", "x", "-f", str(mf))
    assert r.returncode != 0 and r.stderr.strip()
    mf.write_text("FROM stories260k\nPARAMETER temperature hot\n")
    r = server.cli("create", "x", "-f", str(mf))
    assert r.returncode != 0 and "temperature" in r.stderr


def test_no_server(tmp_path):
    import subprocess
    from conftest import BIN, free_port
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{free_port()}")
    r = subprocess.run([BIN, "list"], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "parallama serve" in r.stderr
