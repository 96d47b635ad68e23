"""The demo's story from results documents shaped as the API returns them: who won, said with
the significance the results carry, and the next steps for a server that runs or has stopped."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from api.cli.demo_story import NextSteps, render_story
from projections.read_models import IterationStatus, Results

STATUS = IterationStatus.model_validate(
    {
        "experiment_id": "exp_1",
        "iteration": 1,
        "status": "completed",
        "runs": {"total": 40, "passed": 25, "failed": 15, "errored": 0, "timed_out": 0},
        "config_hash": None,
        "cancel_requested": False,
        "created_at": "2026-01-01T10:00:00+00:00",
        "completed_at": "2026-01-01T10:02:03+00:00",
        "rescore_of": None,
        "imported": None,
    }
)


def environment(env_id: str, score: float, verdict: str | None) -> dict[str, Any]:
    comparison = None
    if verdict:
        entry = {"delta": score - 0.9, "ci": [-0.6, -0.2], "p_adjusted": 0.01, "verdict": verdict}
        comparison = {"baseline": "env_a", "score": entry}
    return {
        "environment_id": env_id,
        "name": f"Agent {env_id[-1].upper()}",
        "score": score,
        "score_ci": [score - 0.1, min(1.0, score + 0.1)],
        "runs": 20,
        "comparison": comparison,
    }


def results(*environments: dict[str, Any], clusters: int = 0) -> dict[str, Any]:
    return {
        "experiment_id": "exp_1",
        "iteration": 1,
        "status": "completed",
        "config_hash": None,
        "rescore_of": None,
        "imported": None,
        "suggestions": [],
        "confidence": 0.95,
        "summary": {
            "score": 0.62,
            "score_ci": [0.5, 0.7],
            "tasks": [{"task_id": "task_1"}, {"task_id": "task_2"}],
            "environments": list(environments),
            "stability": {
                "repeats": 10,
                "power": 0.8,
                "environments": [
                    {"environment_id": "env_b", "runs_needed": 64, "repeats_needed": 32}
                ],
            },
        },
        "failure_clusters": [
            {
                "category": f"Cluster {i}",
                "size": 5 - i,
                "root_cause": {"area": "docs"},
                "recommended_fix": f"Fix {i}.",
                "run_ids": [f"run_{i}"],
            }
            for i in range(clusters)
        ],
    }


def story(document: dict[str, Any], serving: bool = False) -> str:
    console = Console(record=True, width=100, no_color=True)
    steps = NextSteps(
        "http://127.0.0.1:8765",
        "tpc_demo_x",
        "exp_1",
        1,
        "tpc",
        "sqlite:///d/tpc.db",
        8765,
        serving,
    )
    render_story(console, "Trial", STATUS, Results.model_validate(document), steps)
    return console.export_text()


def test_a_leader_significantly_ahead_of_every_other_wins() -> None:
    text = story(results(environment("env_a", 0.9, None), environment("env_b", 0.3, "significant")))
    assert "2 tasks × 2 environments × 10 repeats = 40 runs in 2 min 3 s." in text
    assert "25 passed, 15 failed: overall score 62% [50–70%]" in text
    assert "−60 pts [−60, −20]: significant (p = 0.01)" in text
    assert "Agent A wins: significantly ahead of every other environment" in text
    assert "No failing runs." in text


def test_a_gap_that_is_not_significant_says_how_many_runs_would_tell() -> None:
    text = " ".join(
        story(
            results(
                environment("env_a", 0.9, None),
                environment("env_b", 0.7, "not significant"),
                environment("env_c", 0.2, "significant"),
            )
        ).split()
    )
    assert "Agent A leads: significantly ahead of Agent C, but not of Agent B" in text
    assert "To tell them apart at 80% power: Agent B 64 runs (32 repeats)." in text


def test_an_environment_alone_has_nothing_to_beat() -> None:
    assert "Agent A ran alone" in story(results(environment("env_a", 0.9, None)))


def test_the_top_three_clusters_then_the_rest_by_name() -> None:
    text = story(results(environment("env_a", 0.9, None), clusters=5))
    assert "Top failure clusters (5 clusters of 15 failing runs)" in text
    assert "1. Cluster 0: 5 runs, docs issue" in text and "fix: Fix 2." in text
    assert "fix: Fix 3." not in text
    assert "… and 2 more: Cluster 3 (2 runs), Cluster 4 (1 run)" in text
    assert "tpc sim run logs run_0" in text


def test_next_steps_for_a_stopped_server_serve_the_same_store_again() -> None:
    stopped = story(results(environment("env_a", 0.9, None)))
    assert "server has stopped" in stopped
    assert "TPC_DATABASE_URL=sqlite:///d/tpc.db tpc serve --port 8765 &" in stopped
    assert "tpc demo --keep" in stopped
    running = story(results(environment("env_a", 0.9, None)), serving=True)
    assert "runs until Ctrl-C" in running and "serve --port" not in running
    assert "export TPC_API_URL=http://127.0.0.1:8765 TPC_API_TOKEN=tpc_demo_x" in running
