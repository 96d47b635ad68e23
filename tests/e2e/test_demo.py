"""`tpc demo`, the main job (`make demo`): the real command in a subprocess, in a narrow
terminal, with no provider keys. It runs the experiment to completion and tells a short story
(what ran, who won, the top clusters, where to look next). Without a terminal its server stops
at the end: it says so, and the commands it prints to serve the store again really work."""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx

from tests.e2e.server import PROVIDER_VARIABLES, TPC, free_port
from tests.eventually import eventually

ENVIRONMENTS = ("Careful agent (scripted)", "Hasty agent (scripted)", "Claude Sonnet + docs")
SECTIONS = ("What ran", "Who won", "failure clusters", "Where to look next")


def demo_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.update({"HOME": str(home), "COLUMNS": "60", "NO_COLOR": "1"})
    return env


def check_story(story: str) -> None:
    """The story's parts, not its wording: every section once, in order, and short."""
    at = [story.find(section) for section in SECTIONS]
    assert all(i >= 0 for i in at) and at == sorted(at), story
    # What ran: the experiment's shape and its outcome with the overall interval (the words
    # may wrap at 60 columns).
    flat = " ".join(story.split())
    assert "3 tasks × 3 environments × 2 repeats = 18 runs" in flat, story
    assert re.search(r"\d+ passed, \d+ failed: overall score \d+% \[\d+–\d+%\]", flat), story
    # Who won: every environment ranked once, the others' gaps with their verdicts.
    ranked = story[at[1] : at[2]]
    for name in ENVIRONMENTS:
        assert ranked.count(name) >= 1, ranked
    assert re.search(r"^  1\. ", ranked, re.M) and re.search(r"^  3\. ", ranked, re.M), ranked
    verdicts = re.findall(r"pts \[[^\]]+\]: (not significant|significant|too few runs)", ranked)
    assert len(verdicts) == 2, ranked
    assert re.search(r"(wins|leads)", ranked), ranked
    # The top clusters, each with its fix.
    clusters = story[at[2] : at[3]]
    assert re.search(r"^  1\. .+: \d+ runs?", clusters, re.M), clusters
    assert "fix: " in clusters, clusters
    # Short, and none of the long tables or the config hash (the commands show them).
    assert len(story.splitlines()) <= 50, story  # at 60 columns; about 35 at 100
    assert "sha256:" not in story and "Signal aggregates" not in story, story
    assert "┃" not in story, story


def test_demo_without_a_terminal_says_its_server_stopped_and_how_to_serve_it_again(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = demo_env(tmp_path)
    done = subprocess.run(
        [TPC, "demo", "--port", str(port), "--data-dir", "demo"],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo" / "tpc.db").is_file()
    story = done.stdout
    check_story(story)
    lines = story.splitlines()
    assert any("server has stopped" in line for line in lines), story
    assert any(line.strip().endswith("demo --keep") for line in lines), story

    # The printed commands, each on one line however narrow the terminal: run them as printed.
    (export,) = [line.strip() for line in lines if line.strip().startswith("export ")]
    variables = dict(word.split("=", 1) for word in shlex.split(export)[1:])
    assert variables["TPC_API_URL"] == f"http://127.0.0.1:{port}", export
    assert variables["TPC_API_TOKEN"].startswith("tpc_demo_"), export
    (serve,) = [line.strip() for line in lines if " serve --port " in line]
    assert re.fullmatch(
        r"TPC_DATABASE_URL=sqlite:///demo/tpc\.db " + re.escape(TPC) + rf" serve --port {port} &",
        serve,
    ), serve
    (results,) = [line.strip() for line in lines if " sim experiment results " in line]
    assert re.fullmatch(re.escape(TPC) + r" sim experiment results exp_[a-z0-9]+ +# .+", results), (
        results
    )
    (dashboard,) = [line.strip() for line in lines if line.strip().startswith("Dashboard: ")]
    assert re.search(rf"http://127\.0\.0\.1:{port}/experiments/exp_\w+/iterations/1", dashboard)

    database = serve.split()[0].split("=", 1)
    served = subprocess.Popen(
        [TPC, "serve", "--port", str(port)],
        env={**env, **variables, database[0]: database[1]},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        again = subprocess.run(
            shlex.split(results.split("#")[0]),
            env={**env, **variables},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert "18 runs" in again.stdout, again.stdout
    finally:
        served.send_signal(signal.SIGTERM)
        served.wait(timeout=30)


def wait_for(url: str) -> None:
    eventually(
        lambda: httpx.get(url, timeout=1).status_code == 200,
        what=f"an answer at {url}",
        interval=0.1,
        ignoring=(httpx.TransportError,),
    )


def test_demo_keep_serves_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    with subprocess.Popen(
        [TPC, "demo", "--keep", "--port", str(port), "--data-dir", "demo"],
        env=demo_env(tmp_path),
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as demo:
        code, errors = follow_kept_demo(demo, port)
    assert code == 0, errors


def follow_kept_demo(demo: subprocess.Popen[str], port: int) -> tuple[int, str]:
    """Read the story, check the server still answers, then press Ctrl-C."""
    lines: queue.Queue[str] = queue.Queue()
    stdout = demo.stdout
    assert stdout is not None

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    story: list[str] = []
    try:
        while not any(" sim run logs " in line for line in story):
            story.append(lines.get(timeout=300))
        text = "".join(story)
        check_story(text)
        assert "runs until Ctrl-C" in text and "stopped" not in text, text
        token = re.search(r"TPC_API_TOKEN=(\S+)", text)
        exp = re.search(r"results (exp_\w+)", text)
        assert token and exp, text
        # Still serving after the story: the iteration it told about answers.
        answer = httpx.get(
            f"http://127.0.0.1:{port}/v1/experiments/{exp[1]}/iterations/1",
            headers={"Authorization": f"Bearer {token[1]}"},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["status"] == "completed"
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=60)
    return code, demo.stderr.read() if demo.stderr else ""


def test_demo_on_a_port_in_use_says_so_before_touching_anything(tmp_path: Path) -> None:
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "keep-me").write_text("an earlier demo's store")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [TPC, "demo", "--exit", "--port", str(port), "--data-dir", "demo"],
            env=demo_env(tmp_path),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    assert f"port {port} is in use" in done.stderr and "--port" in done.stderr, done.stderr
    assert (tmp_path / "demo" / "keep-me").is_file()
