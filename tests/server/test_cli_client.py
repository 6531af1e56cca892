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


# --- Ollama's `run`: piped input before the prompt, flags, the interactive chat; help and unknown commands ---

def eval_counts(stderr):
    """(prompt eval count, eval count) from `run --verbose`'s timings."""
    pe = re.search(r"prompt eval count:\s+(\d+) token", stderr)
    ev = re.search(r"^eval count:\s+(\d+) token", stderr, re.M)
    assert pe and ev, stderr
    return int(pe.group(1)), int(ev.group(1))


def test_run_piped_input_goes_before_the_prompt(server):
    """`cat notes | run MODEL "Summarize:"` sends the piped text, a space, then the arguments (not the arguments alone)."""
    numbers = "".join(f"{i}\n" for i in range(1, 21))
    both = server.cli("run", "stories260k", "--verbose", "Tom", input=numbers)
    piped = server.cli("run", "stories260k", "--verbose", input=numbers)
    words = server.cli("run", "stories260k", "--verbose", "Tom", input="")
    for r in (both, piped, words):
        assert r.returncode == 0, r.stderr
    n_both, n_piped, n_words = (eval_counts(r.stderr)[0] for r in (both, piped, words))
    assert n_piped > n_words + 20, (n_piped, n_words)
    assert n_both > n_piped, (n_both, n_piped)


def test_run_format_nowordwrap_think_flags(server):
    r = server.cli("run", "stories260k", "--format", "json", "--nowordwrap", "Tom", input="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.lstrip().startswith("{"), r.stdout[:200]
    schema = '{"type":"object","properties":{"age":{"type":"integer"}},"required":["age"]}'
    r = server.cli("run", "stories260k", "--format", schema, "Tom", input="")
    assert r.returncode == 0, r.stderr
    assert isinstance(json.loads(r.stdout)["age"], int), r.stdout
    r = server.cli("run", "stories260k", "--format", "xml", "Tom", input="")
    assert r.returncode == 1 and "--format must be json or a JSON schema" in r.stderr, r.stderr
    # --think reaches the server, which refuses it for a model that cannot think (as Ollama does).
    r = server.cli("run", "stories260k", "--think", "Tom", input="")
    assert r.returncode == 1 and "does not support thinking" in r.stderr, r.stderr
    r = server.cli("run", "stories260k", "--think=false", "--hidethinking", "Tom", input="")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    assert "--nowordwrap" in server.cli("run", "--help").stdout


def test_version_help_and_unknown_command(server):
    v = server.cli("-v")
    assert v.returncode == 0 and v.stdout == server.cli("--version").stdout and "parallama" in v.stdout
    for args in (["help"], []):
        r = server.cli(*args)
        assert r.returncode == 0 and "Usage: parallama" in r.stdout and "run" in r.stdout, (args, r.stdout)
    r = server.cli("help", "run")
    assert r.returncode == 0 and "Usage: parallama run" in r.stdout and "--format" in r.stdout, r.stdout
    r = server.cli("help", "ls")
    assert r.returncode == 0 and "Usage: parallama list" in r.stdout, r.stdout
    r = server.cli("frobnicate")
    assert r.returncode == 1 and 'Error: unknown command "frobnicate" for "parallama"' in r.stderr, r.stderr


class Chat:
    """`parallama run MODEL` on a pseudo-terminal that is its controlling terminal (so a typed Ctrl-C, \\x03,
    reaches it as SIGINT), with stdout and stderr collected as they come."""

    def __init__(self, server, model, *args):
        import fcntl
        import pty
        import subprocess
        import termios
        from conftest import BIN
        self.master, slave = pty.openpty()
        self.p = subprocess.Popen([BIN, "run", model, *args], env=server.env, stdin=slave, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True,
                                  preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.out, self.err = bytearray(), bytearray()
        self.threads = [threading.Thread(target=self._drain, args=(fd, buf), daemon=True)
                        for fd, buf in ((self.p.stdout.fileno(), self.out), (self.p.stderr.fileno(), self.err),
                                        (self.master, None))]  # the terminal's echo, so it never fills up
        for t in self.threads:
            t.start()

    @staticmethod
    def _drain(fd, buf):
        while True:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            if buf is not None:
                buf.extend(data)

    def stdout(self):
        return self.out.decode("utf-8", "replace")

    def type(self, text):
        os.write(self.master, text.encode())

    def wait_for(self, predicate, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate(self.stdout()):
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"timed out; stdout: {self.stdout()[-2000:]!r} stderr: {bytes(self.err)!r}")

    def prompts(self):
        return self.stdout().count(">>> ")

    def wait_prompt(self, n):
        """Until the n-th '>>> ' prompt is shown."""
        self.wait_for(lambda out: out.count(">>> ") >= n)

    def finish(self, timeout=60):
        rc = self.p.wait(timeout=timeout)
        for t in self.threads[:2]:
            t.join(timeout=10)
        os.close(self.master)
        return rc, self.stdout(), bytes(self.err).decode("utf-8", "replace")


def test_chat_multiline_commands_and_set_parameter(server):
    """\"\"\" begins a multi-line message (quotes not part of it); /set parameter applies to the next answers;
    an unknown /command says so and is not sent; /save keeps what was sent, so the model's messages show it."""
    c = Chat(server, "stories260k")
    c.wait_prompt(1)
    c.type("/set parameter num_predict 5\n")
    c.wait_for(lambda out: "Set parameter 'num_predict' to '5'" in out)
    c.type("/set parameter stop a b\n")
    c.wait_for(lambda out: "Set parameter 'stop' to 'a, b'" in out)
    c.type("/set parameter stop\n/set parameter num_predict many\n")
    c.wait_for(lambda out: "Couldn't set parameter" in out)
    c.type("/set parameter stop <none>\n/set verbose\n/set system Be brief.\n/frobnicate now\n")
    c.wait_for(lambda out: "Unknown command '/frobnicate'. Type /? for help" in out)
    c.type('"""Tom ran.\n\nLily sat."""\n')
    c.wait_for(lambda out: "eval count" in bytes(c.err).decode() and out.endswith(">>> "))
    c.type('"""One line."""\n')
    c.wait_for(lambda out: bytes(c.err).decode().count("total duration") == 2 and out.endswith(">>> "))
    c.type("/?\n/save chat-saved\n/bye\n")
    rc, out, err = c.finish()
    assert rc == 0, err
    assert "/set" in out and '"""' in out and "Created new model 'chat-saved'" in out, out
    assert err.count("total duration") == 2, err  # two answers: the unknown command was not sent
    assert re.search(r"^eval count:\s+[1-5] token", err, re.M), err
    status, info = server.post("/api/show", {"model": "chat-saved"})
    assert status == 200, info
    sent = [m["content"] for m in info["messages"] if m["role"] == "user"]
    assert sent == ["Tom ran.\n\nLily sat.", "One line."], info["messages"]
    assert info.get("system") == "Be brief.", info
    assert re.search(r"num_predict\s+5", info["parameters"]) and "<none>" in info["parameters"], info["parameters"]
    assert server.cli("rm", "chat-saved").returncode == 0


def test_chat_ctrl_c_stops_the_answer_and_the_session_goes_on(server, tmp_path):
    """Ctrl-C while an answer streams cancels it (the server stops generating) and gives the prompt back;
    Ctrl-C at an empty prompt says how to leave; Ctrl-D leaves."""
    path = make_slow_model(str(tmp_path / "slow.gguf"))
    assert server.post("/api/create", {"model": "slow-chat", "from": path, "stream": False})[0] == 200
    try:
        c = Chat(server, "slow-chat")
        c.wait_prompt(1)
        c.type("/set parameter num_predict 100000\n/set parameter temperature 0\n")
        c.wait_for(lambda out: "'temperature' to '0'" in out and out.endswith(">>> "))
        c.type("Once upon a time\n")
        n = len(c.stdout())
        c.wait_for(lambda out: len(out) > n + 20)  # the answer is streaming
        c.type("\x03")
        t0 = time.time()
        c.wait_for(lambda out: out.endswith(">>> "), timeout=15)
        assert time.time() - t0 < 10
        deadline = time.time() + 15
        while time.time() < deadline:  # the generation was cancelled on the server
            models = server.request("GET", "/api/ps")[1]["models"]
            if all(m.get("running", 0) == 0 for m in models if m["name"] == "slow-chat:latest"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the answer still runs on the server: {models}")
        c.type("\x03")
        c.wait_for(lambda out: "Use Ctrl + d or /bye to exit." in out and out.endswith(">>> "))
        c.type("/show info\n")
        c.wait_for(lambda out: "architecture" in out and out.endswith(">>> "))
        c.type("\x04")
        rc, out, err = c.finish()
        assert rc == 0, err
    finally:
        server.request("DELETE", "/api/delete", {"model": "slow-chat"})


def test_chat_ctrl_c_leaves_a_request_still_in_the_queue(tmp_path):
    """Ctrl-C ends a request that has produced nothing yet (here queued behind another at parallel 1): the prompt
    comes back at once and the server drops the request."""
    s = Server({"OLLAMA_NUM_PARALLEL": "1"}, tmp=str(tmp_path))
    busy = http.client.HTTPConnection("127.0.0.1", s.port, timeout=120)

    def ps():
        models = s.request("GET", "/api/ps")[1]["models"]
        return models[0] if models else {}

    def wait(pred, what):
        deadline = time.time() + 30
        while not pred(ps()):
            assert time.time() < deadline, f"never {what}: {ps()}"
            time.sleep(0.05)

    try:
        path = make_slow_model(str(tmp_path / "slow.gguf"))
        assert s.post("/api/create", {"model": "slow", "from": path, "stream": False})[0] == 200
        busy.request("POST", "/api/generate", body=json.dumps({"model": "slow", "prompt": "Once", "raw": True,
                     "options": {"num_predict": 100000}}), headers={"Content-Type": "application/json"})
        wait(lambda m: m.get("running") == 1, "running")
        c = Chat(s, "slow")
        c.wait_prompt(1)
        c.type("Hello\n")
        wait(lambda m: m.get("queued") == 1, "queued")
        c.type("\x03")
        t0 = time.time()
        c.wait_for(lambda out: out.endswith(">>> "), timeout=10)
        assert time.time() - t0 < 5
        wait(lambda m: m.get("queued") == 0 and m.get("running") == 1, "dropped from the queue")
        c.type("\x04")
        rc, _, err = c.finish()
        assert rc == 0, err
    finally:
        busy.close()
        s.stop()
