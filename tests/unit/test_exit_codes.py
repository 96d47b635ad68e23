"""One table of exit codes: the code's, shown as is in docs/cli.md and docs/ci.md, and the
only way a command chooses its exit status."""

from __future__ import annotations

import re

import pytest

from api.cli.exit_codes import MEANINGS, ExitCode, markdown_table
from api.error_mapping import exit_code
from domain.errors import InvalidInput, NotFound, UnreadableDocument
from tests.conftest import ROOT


@pytest.mark.parametrize("page", ["docs/cli.md", "docs/ci.md"])
def test_the_docs_show_the_codes_table(page: str) -> None:
    assert markdown_table() in (ROOT / page).read_text()


def test_every_code_has_a_meaning() -> None:
    assert set(MEANINGS) == set(ExitCode)


def test_commands_exit_only_through_the_table() -> None:
    literal = re.compile(r"(?:sys\.exit|SystemExit|ctx\.exit)\(\s*\d")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "api").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


def test_domain_errors_map_to_the_table() -> None:
    assert exit_code(UnreadableDocument("x")) is ExitCode.UNUSABLE_INPUT
    assert exit_code(InvalidInput("x")) is ExitCode.FAILED
    assert exit_code(NotFound("x")) is ExitCode.FAILED
