"""Which runner executes which agent kind (docs/spec.md §6): one entry per `agent.kind`."""

from __future__ import annotations

from collections.abc import Callable

from infra.runners.base import Runner
from infra.runners.command import CommandRunner
from infra.runners.llm import LlmRunner
from infra.runners.replay import ReplayRunner
from infra.runners.scripted import ScriptedRunner


def build_runners(load_blob: Callable[[str], bytes]) -> dict[str, Runner]:
    """Every runner this process can execute, by agent kind."""
    return {
        "scripted": ScriptedRunner(),
        "replay": ReplayRunner(load_blob),
        "command": CommandRunner(),
        "llm": LlmRunner(),
    }
