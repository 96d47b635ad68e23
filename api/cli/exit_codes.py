"""Every exit status of `tpc`, in one table: the code says which, docs/cli.md prints it (a
test keeps the two equal), and every command exits through these names."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    UNUSABLE_INPUT = 2
    GATE_FAILED = 4
    INTERRUPTED = 130


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success; with `--fail-on`, no condition holds",
    ExitCode.FAILED: (
        "the command failed: invalid content (every located problem on stderr), an unknown "
        "id, a conflict, a rejected token, an unreachable or failing server"
    ),
    ExitCode.UNUSABLE_INPUT: (
        "the input could not be used at all: a usage error (unknown option, missing "
        "argument, malformed `--fail-on`), a file that does not exist or cannot be read, a "
        "definition file or signal config that is not YAML"
    ),
    ExitCode.GATE_FAILED: (
        "the gate failed: a `results --fail-on` condition holds (one `gate failed:` line each "
        "on stderr)"
    ),
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C)",
}


def markdown_table() -> str:
    """The table docs/cli.md shows under "Exit codes"."""
    rows = [f"| {int(code)} | {meaning} |" for code, meaning in MEANINGS.items()]
    return "\n".join(["| exit | meaning |", "|---|---|", *rows])
