"""`tpc sim experiment import` and `export` through the real CLI and a real `tpc serve`, on
SQLite and on PostgreSQL: a folder of recorded transcripts run as replay environments and
the same folder imported give equal results; bad input (an unknown key, a file of another
format, no files) exits 1 or 2 with a message naming what to fix and records nothing; an
export has stable columns whose values are the server's."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from api.cli.run_table import RUN_COLUMNS, STATS_COLUMNS
from tests.conftest import ROOT
from tests.e2e.api_servers import serve_store
from tests.e2e.server import Server, as_json

EXAMPLES = ROOT / "examples"
TASKS = {"install-sdk": "install-sdk", "webhook-setup": "webhook", "refund-payment": "refund"}
ENVIRONMENTS = ("sonnet-docs", "gpt-nodocs")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logs/<environment>/<task>.json: the example transcripts, as a harness might keep them."""
    home = tmp_path_factory.mktemp("import")
    for label in ENVIRONMENTS:
        folder = home / "logs" / label
        folder.mkdir(parents=True)
        for name, stem in TASKS.items():
            document = (EXAMPLES / "transcripts" / f"{stem}__{label}.json").read_text()
            (folder / f"{name}.json").write_text(document)
        (folder / "notes.txt").write_text("not a log: a folder's other files are skipped\n")
    (home / "empty").mkdir()
    (home / "session.jsonl").write_text(
        json.dumps({"type": "thread.started", "thread_id": "t1"}) + "\n"
    )
    return home


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, home: Path) -> Iterator[Server]:
    yield from serve_store(request, home)


def api(server: Server, method: str, path: str, body: Any = None) -> Any:
    with server.client() as client:
        answer = client.request(method, path, json=body)
    assert answer.is_success, answer.text
    return answer.json()


def make_experiment(server: Server, home: Path) -> str:
    envs = [
        as_json(
            server, "sim", "env", "create",
            "--name", label, "--replay-dir", str(home / "logs" / label),
        )["id"]
        for label in ENVIRONMENTS
    ]  # fmt: skip
    tasks = [
        api(server, "POST", "/v1/tasks", {"name": name, "prompt": f"Please {name}"})
        for name in TASKS
    ]
    (home / "signals.yaml").write_text((EXAMPLES / "signals.yaml").read_text())
    exp_id: str = as_json(
        server, "sim", "experiment", "create", "--name", "Recorded",
        "--task-ids", ",".join(t["id"] for t in tasks), "--env-ids", ",".join(envs),
        "--signal-config", str(home / "signals.yaml"),
    )["id"]  # fmt: skip
    return exp_id


def places(server: Server, exp_id: str, iteration: int) -> dict[str, str]:
    runs = api(server, "GET", f"/v1/experiments/{exp_id}/iterations/{iteration}/runs")
    return {r["id"]: f"{r['task_id']}/{r['environment_id']}/{r['repeat']}" for r in runs["items"]}


def comparable(server: Server, exp_id: str, iteration: int) -> Any:
    """The results and the signals report, with run ids replaced by their places."""
    where = places(server, exp_id, iteration)
    results = as_json(server, "sim", "experiment", "results", exp_id, "--iteration", str(iteration))
    report = as_json(server, "sim", "experiment", "signals", exp_id, "--iteration", str(iteration))
    text = json.dumps(
        {
            "summary": results["summary"],
            "clusters": results["failure_clusters"],
            "suggestions": results["suggestions"],
            "aggregates": report["aggregates"],
            "runs": sorted(report["runs"], key=lambda run: where[run["run_id"]]),
        }
    )
    for run_id, place in where.items():
        text = text.replace(run_id, place)
    document = json.loads(text)
    for cluster in document["clusters"]:  # listed in run id order, and run ids are random
        cluster["run_ids"].sort()
        cluster["evidence"].sort(key=lambda item: (item["run_id"], item["event"]))
    return document


def iterations(server: Server, exp_id: str) -> int:
    count: int = as_json(server, "sim", "experiment", "get", exp_id)["iterations"]
    return count


def test_an_imported_folder_gives_the_results_of_its_replay(server: Server, home: Path) -> None:
    exp_id = make_experiment(server, home)
    as_json(server, "sim", "experiment", "run", exp_id)
    replayed = as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    assert replayed["status"] == "completed" and replayed["imported"] is None

    done = server.tpc(
        "--format", "json", "sim", "experiment", "import", exp_id, str(home / "logs"),
        "--task-key", "file-stem", "--env-key", "dir", "--wait",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "install-sdk.json: detected tpc" in done.stderr
    imported = json.loads(done.stdout)
    assert imported["iteration"] == 2 and imported["status"] == "completed"
    assert imported["imported"] == {"format": "tpc", "runs": 6, "files": 6}
    assert imported["runs"] == replayed["runs"]
    first, second = comparable(server, exp_id, 1), comparable(server, exp_id, 2)
    assert second["clusters"], "the examples have failing runs to cluster"
    assert second == first

    listed = as_json(server, "sim", "experiment", "iterations", exp_id)["items"]
    assert [i["imported"] for i in listed] == [None, imported["imported"]]
    table = server.tpc("sim", "experiment", "iterations", exp_id, check=True).stdout
    assert "imported" in table
    history = as_json(server, "sim", "experiment", "history", exp_id)["items"]
    assert any("imported from 6 recorded transcripts (tpc" in e["summary"] for e in history)
    results = server.tpc("sim", "experiment", "results", exp_id, check=True).stdout
    assert "imported from 6 recorded transcripts (tpc, 6 files)" in results

    cookies = {"tpc_session": server.dashboard_session()}
    for page, shown in (
        (f"/experiments/{exp_id}", ">imported</span>"),
        (f"/experiments/{exp_id}/iterations/2", "6 recorded transcripts from 6 tpc log files"),
    ):
        html = httpx.get(f"{server.url}{page}", cookies=cookies, timeout=30)
        assert html.status_code == 200 and shown in html.text, page
    first = httpx.get(f"{server.url}/experiments/{exp_id}/iterations/1", cookies=cookies)
    assert 'id="imported"' not in first.text


def test_bad_imports_say_what_to_fix_and_record_nothing(server: Server, home: Path) -> None:
    exp_id = make_experiment(server, home)
    logs = str(home / "logs")

    unknown = server.tpc(
        "sim", "experiment", "import", exp_id, logs, "--task-key", "file", "--env-key", "dir"
    )
    assert unknown.returncode == 1
    assert "unknown task keys 'install-sdk.json'" in unknown.stderr
    assert "runs[0].task" in unknown.stderr

    several = server.tpc("sim", "experiment", "import", exp_id, logs, "--env-key", "dir")
    assert several.returncode == 2
    assert "has 3 tasks" in several.stderr and "--task-key" in several.stderr

    wrong = server.tpc(
        "sim", "experiment", "import", exp_id, logs,
        "--from", "codex-jsonl", "--task-key", "file-stem", "--env-key", "dir",
    )  # fmt: skip
    assert wrong.returncode == 1
    assert "install-sdk.json" in wrong.stderr  # the file is named

    nothing = server.tpc("sim", "experiment", "import", exp_id)
    assert nothing.returncode == 2 and "give the log files" in nothing.stderr
    empty = server.tpc("sim", "experiment", "import", exp_id, str(home / "empty"))
    assert empty.returncode == 1 and "no transcripts found" in empty.stderr
    bad_key = server.tpc("sim", "experiment", "import", exp_id, logs, "--task-key", "stem")
    assert bad_key.returncode == 1 and "expected file, file-stem" in bad_key.stderr

    assert iterations(server, exp_id) == 0


def test_the_import_route_obeys_the_api_rules(server: Server, home: Path) -> None:
    exp_id = make_experiment(server, home)
    transcript = json.loads((home / "logs" / "gpt-nodocs" / "refund-payment.json").read_text())
    run = {"task": "refund-payment", "environment": "gpt-nodocs", "transcript": transcript}
    with server.client() as client:
        path = f"/v1/experiments/{exp_id}/imports"
        answers = {
            "empty": client.post(path, json={"format": "tpc", "runs": []}),
            "format": client.post(path, json={"format": "word", "runs": [run]}),
            "extra": client.post(path, json={"format": "tpc", "runs": [{**run, "x": 1}]}),
            "nul": client.post(
                path, json={"format": "tpc", "runs": [{**run, "sample": "a\u0000"}]}
            ),
            "other product": client.post(
                "/v1/experiments/exp_unknown/imports", json={"format": "tpc", "runs": [run]}
            ),
        }
        assert {name: a.status_code for name, a in answers.items()} == {
            "empty": 422,
            "format": 422,
            "extra": 422,
            "nul": 422,
            "other product": 404,
        }
        assert "nothing to import" in answers["empty"].json()["error"]["message"]
        assert iterations(server, exp_id) == 0
        created = client.post(path, json={"format": "openai-messages", "runs": [run]})
        assert created.status_code == 201, created.text
        assert created.json()["imported"] == {"format": "openai-messages", "runs": 1, "files": 1}


def test_an_export_has_stable_columns_and_the_servers_values(server: Server, home: Path) -> None:
    exp_id = make_experiment(server, home)
    as_json(server, "sim", "experiment", "run", exp_id)
    as_json(server, "sim", "experiment", "run", "status", exp_id, "--watch")
    runs = {
        r["id"]: r
        for r in api(server, "GET", f"/v1/experiments/{exp_id}/iterations/1/runs")["items"]
    }
    results = as_json(server, "sim", "experiment", "results", exp_id, "--iteration", "1")
    names = {t["task_id"]: t["name"] for t in results["summary"]["tasks"]}
    signal_ids = sorted(next(iter(runs.values()))["signals"])
    expected_columns = [
        *RUN_COLUMNS,
        *(f"stats.{name}" for name in STATS_COLUMNS),
        *(f"signal.{sid}" for sid in signal_ids),
    ]

    jsonl = server.tpc("sim", "experiment", "export", exp_id, "--iteration", "1", check=True)
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert len(rows) == len(runs) == 6
    for row in rows:
        assert list(row) == expected_columns
        run = runs[row["run_id"]]
        assert row["task_name"] == names[run["task_id"]]
        assert (row["status"], row["repeat"], row["iteration"]) == (
            run["status"],
            run["repeat"],
            1,
        )
        assert row["stats.token_total"] == run["stats"]["token_total"]
        assert row["stats.cost"] == run["stats"]["cost"]
        for sid in signal_ids:
            assert row[f"signal.{sid}"] == run["signals"][sid]["value"]

    table = server.tpc("sim", "experiment", "export", exp_id, "--to", "csv", check=True).stdout
    read = list(csv.DictReader(io.StringIO(table)))
    assert list(read[0]) == expected_columns
    assert [r["run_id"] for r in read] == [r["run_id"] for r in rows]
    assert {r["status"] for r in read} == {r["status"] for r in rows}

    out = home / f"runs-{exp_id}.parquet"
    written = as_json(
        server, "sim", "experiment", "export", exp_id, "--to", "parquet",
        "--output", str(out), "--transcripts", str(home / f"transcripts-{exp_id}"),
    )  # fmt: skip
    assert written["rows"] == 6 and written["transcripts"] == 6
    assert written["columns"] == expected_columns
    frame = pq.read_table(out).to_pylist()
    assert [r["run_id"] for r in frame] == [r["run_id"] for r in rows]
    assert [r["stats.steps"] for r in frame] == [r["stats.steps"] for r in rows]
    for run_id in runs:
        saved = json.loads((home / f"transcripts-{exp_id}" / f"{run_id}.json").read_text())
        assert saved == api(server, "GET", f"/v1/runs/{run_id}/transcript")

    needs_file = server.tpc("sim", "experiment", "export", exp_id, "--to", "parquet")
    assert needs_file.returncode == 1 and "--output FILE" in needs_file.stderr


def inspect_log() -> dict[str, Any]:
    """An Inspect eval log (`.json`): two samples, two epochs each, `capital` failing once;
    a third epoch of `add` that crashed."""

    def sample(sample_id: str, epoch: int, answer: str, score: str) -> dict[str, Any]:
        return {
            "id": sample_id,
            "epoch": epoch,
            "input": f"Solve {sample_id}",
            "target": "ok",
            "messages": [
                {"role": "user", "content": f"Solve {sample_id}"},
                {"role": "assistant", "content": answer},
            ],
            "output": {"completion": answer},
            "scores": {"match": {"value": score, "answer": answer}},
            "model_usage": {"openai/gpt-4o": {"input_tokens": 12, "output_tokens": 3}},
        }

    return {
        "version": 2,
        "status": "success",
        "eval": {"task": "arith", "model": "openai/gpt-4o", "eval_id": "e1", "run_id": "r1"},
        "results": {"total_samples": 4},
        "samples": [
            sample("add", 1, "4", "C"),
            sample("capital", 1, "Paris", "C"),
            sample("add", 2, "4", "C"),
            sample("capital", 2, "I could not find it", "I"),
            {**sample("add", 3, "", "I"), "error": {"message": "sandbox crashed"}},
        ],
    }


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_an_inspect_log_is_keyed_by_sample_and_model(server: Server, home: Path) -> None:
    env = api(server, "POST", "/v1/environments", {"name": "gpt-4o", "agent": {"kind": "scripted"}})
    tasks = [
        api(
            server,
            "POST",
            "/v1/tasks",
            {"name": name, "prompt": f"Solve {name}", "success": {"final_answer_regex": "4|Paris"}},
        )
        for name in ("add", "capital")
    ]
    exp_id = api(
        server,
        "POST",
        "/v1/experiments",
        {"name": "Inspect", "task_ids": [t["id"] for t in tasks], "env_ids": [env["id"]]},
    )["id"]
    log = home / "arith.json"
    log.write_text(json.dumps(inspect_log()))

    status = as_json(
        server, "sim", "experiment", "import", exp_id, str(log),
        "--task-key", "metadata.sample_id", "--env-key", "model", "--wait",
    )  # fmt: skip
    assert status["imported"] == {"format": "inspect-log", "runs": 5, "files": 1}
    assert [status["runs"][s] for s in ("passed", "failed", "errored")] == [3, 1, 1]
    runs = api(server, "GET", f"/v1/experiments/{exp_id}/iterations/1/runs")["items"]
    by_task = {t["id"]: t["name"] for t in tasks}
    assert sorted((by_task[r["task_id"]], r["repeat"], r["status"]) for r in runs) == [
        ("add", 0, "passed"),
        ("add", 1, "passed"),
        ("add", 2, "errored"),
        ("capital", 0, "passed"),
        ("capital", 1, "failed"),
    ]
    assert {r["stats"]["model"] for r in runs} == {"gpt-4o"}
    assert {r["stats"]["token_total"] for r in runs} == {15}
    crashed = next(r for r in runs if r["status"] == "errored")
    assert crashed["termination_reason"] == "error"
    transcript = api(server, "GET", f"/v1/runs/{crashed['id']}/transcript")
    assert transcript["messages"][-1]["content"][0]["text"] == "[agent error] sandbox crashed"

    # The export says which sample of which file each run was read from.
    table = server.tpc("sim", "experiment", "export", exp_id, check=True).stdout
    rows = [json.loads(line) for line in table.splitlines()]
    assert sorted((r["task_name"], r["repeat"], r["source_sample"]) for r in rows) == [
        ("add", 0, "add_epoch_1"),
        ("add", 1, "add_epoch_2"),
        ("add", 2, "add_epoch_3"),
        ("capital", 0, "capital_epoch_1"),
        ("capital", 1, "capital_epoch_2"),
    ]
    assert {r["source_file"] for r in rows} == {str(log)}


CORPUS = sorted(
    path for path in (ROOT / "tests" / "fixtures" / "formats").iterdir() if path.suffix != ".md"
)


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_every_format_of_the_corpus_imports(server: Server, home: Path) -> None:
    """Each log of the corpus, its format detected, becomes a completed iteration of the
    experiment's only task and environment, one run per transcript read from it."""
    env = api(server, "POST", "/v1/environments", {"name": "logs", "agent": {"kind": "scripted"}})
    task = api(server, "POST", "/v1/tasks", {"name": "recorded", "prompt": "Do the task"})
    exp_id = api(
        server,
        "POST",
        "/v1/experiments",
        {"name": "Corpus", "task_ids": [task["id"]], "env_ids": [env["id"]]},
    )["id"]
    converted = {
        path.name: as_json(server, "sim", "transcript", "convert", str(path)) for path in CORPUS
    }
    for number, path in enumerate(CORPUS, start=1):
        status = as_json(server, "sim", "experiment", "import", exp_id, str(path), "--wait")
        assert status["iteration"] == number and status["status"] == "completed", path.name
        read = converted[path.name]
        assert status["imported"] == {"format": read[0]["format"], "runs": len(read), "files": 1}
        assert status["runs"]["total"] == len(read)


def test_an_import_over_the_body_limit_is_refused_whole(tmp_path: Path) -> None:
    server = Server(tmp_path, environ={"TPC_MAX_BODY_BYTES": "6000"}).start()
    try:
        env = api(server, "POST", "/v1/environments", {"name": "e", "agent": {"kind": "scripted"}})
        task = api(server, "POST", "/v1/tasks", {"name": "refund-payment", "prompt": "p"})
        exp_id = api(
            server,
            "POST",
            "/v1/experiments",
            {"name": "Small", "task_ids": [task["id"]], "env_ids": [env["id"]]},
        )["id"]
        logs = tmp_path / "logs"
        logs.mkdir()
        for i in range(10):  # about 13 kB in all
            document = (EXAMPLES / "transcripts" / "refund__gpt-nodocs.json").read_text()
            (logs / f"refund-payment-{i}.json").write_text(document)
        done = server.tpc("sim", "experiment", "import", exp_id, str(logs))
        assert done.returncode == 1
        assert "TPC_MAX_BODY_BYTES" in done.stderr
        assert iterations(server, exp_id) == 0
        one = server.tpc("sim", "experiment", "import", exp_id, str(logs / "refund-payment-0.json"))
        assert one.returncode == 0, one.stderr
        assert iterations(server, exp_id) == 1
    finally:
        server.stop()
