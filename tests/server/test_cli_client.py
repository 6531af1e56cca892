"""The client commands (`parallama run|list|ps|show|create|cp|rm|stop|pull`) against a live server."""
import os

from conftest import DEMO, make_model


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
