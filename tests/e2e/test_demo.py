"""`tpc demo`, the main job (`make demo`): the real command in a subprocess, in a narrow
terminal, with no provider keys: it runs the experiment to completion, prints the results,
and prints a command to explore them that survives a copy and paste."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.e2e.server import PROVIDER_VARIABLES, TPC


def test_demo_runs_an_experiment_end_to_end_and_says_how_to_explore_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.update({"HOME": str(tmp_path), "COLUMNS": "60", "NO_COLOR": "1"})
    done = subprocess.run(
        [TPC, "demo", "--exit", "--data-dir", str(tmp_path / "demo")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "demo" / "tpc.db").is_file()
    # The results: the iteration completed, with the runs counted and the signals' table.
    assert "iteration 1 (completed): overall score" in done.stdout
    assert re.search(r"18 runs: passed \d+, failed \d+", done.stdout), done.stdout
    assert "Task scores" in done.stdout and "Signal aggregates" in done.stdout
    explore = [line for line in done.stderr.splitlines() if line.startswith("Explore:")]
    assert len(explore) == 1, done.stderr
    # One line, however narrow the terminal: the variables, the program, the command.
    assert re.fullmatch(
        r"Explore: TPC_API_URL=http://127\.0\.0\.1:\d+ TPC_API_TOKEN=tpc_demo_\S+ "
        + re.escape(TPC)
        + r" sim experiment results exp_[a-z0-9]+",
        explore[0],
    ), explore[0]
    assert "Dashboard: http://127.0.0.1:" in done.stderr
