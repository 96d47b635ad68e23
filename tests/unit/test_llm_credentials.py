"""Which keys an iteration needs, from its frozen definitions (checked at trigger time)."""

from __future__ import annotations

from typing import Any

from infra.llm.credentials import describe_missing, missing_credentials, required_credentials

ENVIRONMENTS: list[dict[str, Any]] = [
    {"name": "Claude docs v2", "agent": {"kind": "llm", "provider": "anthropic", "model": "m"}},
    {"name": "GPT", "agent": {"kind": "llm", "provider": "openai", "model": "gpt-4.1"}},
    {"name": "Replayed", "agent": {"kind": "replay", "transcripts": {"t": ["sha256:x"]}}},
]
CONFIG: dict[str, Any] = {
    "version": 1,
    "signals": [
        {
            "id": "tone",
            "name": "Tone",
            "type": "boolean",
            "source": "assistantText",
            "extract": {"method": "llm", "prompt": "Polite?"},
        },
        {
            "id": "mood",
            "name": "Mood",
            "type": "category",
            "category_enums": ["good", "bad"],
            "source": "assistantText",
            "extract": {"method": "llm", "prompt": "Mood?", "model": "gpt-4o-mini"},
        },
        {
            "id": "odd",
            "name": "Odd",
            "type": "boolean",
            "source": "assistantText",
            "extract": {"method": "llm", "prompt": "?", "model": "not-a-model"},
        },
        {
            "id": "steps",
            "name": "Steps",
            "type": "number",
            "extract": {"method": "stats", "stat": "steps"},
        },
    ],
    "aggregates": [],
}
TASKS: list[dict[str, Any]] = [
    {
        "name": "x",
        "prompt": "p",
        "success": {"judge": {"model": "gpt-4o", "prompt": "Done?"}},
        "user": {"model": "claude-haiku-4-5", "persona": "a dev"},
    },
    {"name": "plain", "prompt": "p"},
]


def test_every_model_that_would_be_called_names_its_key() -> None:
    assert required_credentials(ENVIRONMENTS, CONFIG, TASKS) == [
        ("environment 'Claude docs v2'", "ANTHROPIC_API_KEY"),
        ("environment 'GPT'", "OPENAI_API_KEY"),
        ("signal 'tone'", "ANTHROPIC_API_KEY"),  # the default judge model, claude-haiku-4-5
        ("signal 'mood'", "OPENAI_API_KEY"),
        ("task 'x' judge", "OPENAI_API_KEY"),
        ("task 'x' simulated user", "ANTHROPIC_API_KEY"),
    ]


def test_nothing_is_needed_without_models() -> None:
    assert required_credentials(ENVIRONMENTS[2:], None, TASKS[1:]) == []


def test_missing_keys_are_reported_per_variable() -> None:
    needs = required_credentials(ENVIRONMENTS, CONFIG, TASKS)
    missing = missing_credentials(needs, {"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": " "})
    assert [var for _, var in missing] == ["ANTHROPIC_API_KEY"] * 3
    assert describe_missing(missing) == (
        "ANTHROPIC_API_KEY is not set (needed by environment 'Claude docs v2', signal 'tone', "
        "task 'x' simulated user)"
    )


def test_a_command_agents_variables_are_product_secrets_not_server_variables() -> None:
    """`${VAR}` in a command agent's env names a product secret (checked by the service), so
    the server's environment is never consulted for it: no server variable is "needed"."""
    from infra.llm.credentials import check_credentials, required_credentials

    claude = {
        "name": "Claude Code",
        "agent": {
            "kind": "command",
            "command": "claude -p {prompt}",
            "env": {"ANTHROPIC_API_KEY": "${ANTHROPIC_API_KEY}", "NOTE": "$${literal}"},
        },
    }
    assert required_credentials([claude], None, []) == []
    assert check_credentials([claude], None, [], environ={}) == []


def test_an_llm_agent_with_its_own_key_needs_no_server_key() -> None:
    from infra.llm.credentials import check_credentials

    own = {
        "name": "own key",
        "agent": {"kind": "llm", "provider": "openai", "model": "m", "api_key": "${MY_KEY}"},
    }
    assert check_credentials([own], None, [], environ={}) == []
