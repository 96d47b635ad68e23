"""Which provider keys an iteration needs, from its frozen definitions: checked when an
experiment is triggered, so a missing key is one clear error instead of a page of errored runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from domain.errors import InvalidInput
from domain.signals.config import JUDGE_MODELS, SignalConfig
from infra.llm.chat import Provider
from infra.llm.key_policy import KEY_VARS
from infra.llm.providers import provider_for_model

# (who needs it, environment variable), e.g. ("signal 'tone'", "ANTHROPIC_API_KEY").
Need = tuple[str, str]


def required_credentials(
    environments: Iterable[Mapping[str, Any]],
    signal_config: SignalConfig | Mapping[str, Any] | None,
    tasks: Iterable[Mapping[str, Any]],
) -> list[Need]:
    """Every (who, key variable) that running these definitions calls for, in order, once each.

    `environments` and `tasks` are definitions as frozen into an iteration; `signal_config` is
    the typed config or its parsed form. Only models that would really be called count: llm
    agents, llm signals with a supported judge model, task success judges with a supported
    judge model, and simulated users. An llm agent with its own `api_key` needs no server
    key, and `${VAR}`s (command agents' env) name product secrets, not server variables: the
    service checks those (`ExperimentCommands.trigger`).
    """
    needs: list[Need] = []
    for who, provider in (
        *_agent_needs(environments),
        *_signal_needs(signal_config),
        *_task_needs(tasks),
    ):
        if provider is not None and (who, KEY_VARS[provider]) not in needs:
            needs.append((who, KEY_VARS[provider]))
    return needs


def _agent_needs(environments: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Provider]]:
    """llm agents without a key of their own."""
    for environment in environments:
        agent = environment.get("agent") or {}
        if (
            agent.get("kind") == "llm"
            and agent.get("provider") in KEY_VARS
            and not agent.get("api_key")
        ):
            yield f"environment {environment.get('name')!r}", agent["provider"]


def _signal_needs(
    signal_config: SignalConfig | Mapping[str, Any] | None,
) -> Iterator[tuple[str, Provider | None]]:
    """llm signals with a supported judge model."""
    if signal_config is None:
        return
    config = (
        signal_config
        if isinstance(signal_config, SignalConfig)
        else SignalConfig.model_validate(signal_config)
    )
    for signal in config.signals:
        if signal.extract.method == "llm" and signal.judge_model in JUDGE_MODELS:
            yield f"signal {signal.id!r}", provider_for_model(signal.judge_model)


def _task_needs(tasks: Iterable[Mapping[str, Any]]) -> Iterator[tuple[str, Provider | None]]:
    """Tasks' success judges with a supported model, and simulated users."""
    for task in tasks:
        name = task.get("name")
        judge = (task.get("success") or {}).get("judge") or {}
        if judge.get("model") in JUDGE_MODELS:
            yield f"task {name!r} judge", provider_for_model(judge["model"])
        user = task.get("user") or {}
        if user.get("model"):
            yield f"task {name!r} simulated user", provider_for_model(user["model"])


def missing_credentials(
    needs: Iterable[Need], environ: Mapping[str, str] | None = None
) -> list[Need]:
    """The needs whose variable is not set (or blank) in `environ` (default: this process)."""
    env = os.environ if environ is None else environ
    return [(who, var) for who, var in needs if not env.get(var, "").strip()]


def describe_missing(missing: Iterable[Need]) -> str:
    """One line per variable: `ANTHROPIC_API_KEY is not set (needed by environment 'x', …)`."""
    by_var: dict[str, list[str]] = {}
    for who, var in missing:
        by_var.setdefault(var, []).append(who)
    return "\n".join(
        f"{var} is not set (needed by {', '.join(whos)})" for var, whos in by_var.items()
    )


def check_credentials(
    environments: Iterable[Mapping[str, Any]],
    signal_config: SignalConfig | Mapping[str, Any] | None,
    tasks: Iterable[Mapping[str, Any]],
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """At trigger time: raise `InvalidInput` when an agent, a success judge or a simulated
    user needs a key that is not set (their runs could only fail); return warnings for llm
    signals without their key (the runs are fine; those values will be missing)."""
    missing = missing_credentials(required_credentials(environments, signal_config, tasks), environ)
    signals = [need for need in missing if need[0].startswith("signal ")]
    blocking = [need for need in missing if need not in signals]
    if blocking:
        raise InvalidInput(
            f"cannot start the iteration: {describe_missing(blocking)}; set it where "
            "`tpc serve` and `tpc worker` run, then trigger again"
        )
    return [
        f"{line}: those values will be missing until it is set"
        for line in describe_missing(signals).splitlines()
    ]
