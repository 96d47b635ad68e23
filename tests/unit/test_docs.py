"""The docs keep up with the code: every command, route and setting is documented, and every
relative link in README.md and docs/ leads somewhere (a file, and a heading for `#anchors`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from starlette.routing import Route

from api.cli.main import cli
from api.http.app import create_app
from infra.settings import Settings

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("*.md")])
# Where the code reads settings from the environment (tests read their own, documented in
# docs/architecture.md, but they are not the product's).
CODE = ("api", "domain", "infra", "projections", "benchmarks")

FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SETTING = re.compile(r"\bTPC_[A-Z0-9_]*[A-Z0-9]\b")


def without_code(markdown: str) -> str:
    """The text of a page outside fenced and inline code, where links are links."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: link text kept, punctuation dropped, spaces -> -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def leaf_commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from leaf_commands(sub, f"{path} {name}")
    else:
        yield path, command


def cli_commands() -> list[str]:
    """Every command a user types: a hidden command is typed as its group (`run EXP`)."""
    paths: set[str] = set()
    for path, command in leaf_commands(cli, "tpc"):
        paths.add(path.rsplit(" ", 1)[0] if command.hidden else path)
    return sorted(paths)


def api_operations() -> list[tuple[str, str]]:
    app = create_app(Settings(database_url="sqlite:///unused.db"))
    operations: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/v1/"):
            methods = (route.methods or set()) - {"HEAD"}
            operations.update((method, route.path) for method in methods)
    return sorted(operations, key=lambda operation: (operation[1], operation[0]))


def settings_read_by_the_code() -> list[str]:
    names: set[str] = set()
    for folder in CODE:
        for source in (ROOT / folder).rglob("*.py"):
            names.update(SETTING.findall(source.read_text()))
    return sorted(names)


def test_the_command_tree_and_the_routes_are_found() -> None:
    # Guards the walks below: an empty list would make every test after it pass vacuously.
    assert "tpc sim experiment run status" in cli_commands()
    assert "tpc sim experiment run" in cli_commands()  # `run EXP` triggers (a hidden command)
    assert ("POST", "/v1/experiments/{exp_id}/iterations") in api_operations()
    assert {"TPC_DATABASE_URL", "TPC_API_TOKEN"} <= set(settings_read_by_the_code())
    assert ("tpc sim experiment results", "--fail-on") in command_options()


@pytest.mark.parametrize("command", cli_commands())
def test_every_command_is_in_the_cli_reference(command: str) -> None:
    text = (DOCS / "cli.md").read_text()
    assert re.search(re.escape(command) + r"(?![\w-])", text), (
        f"`{command}` is not in docs/cli.md: add it with what it prints"
    )


def places_describing(command: str, reference: str) -> list[str]:
    """The lines naming a command, the sections headed by it, and the paragraphs that name it
    in full or by its last two words in code (`task list`)."""
    named = re.compile(re.escape(command) + r"(?![\w-])")
    short = "`" + " ".join(command.split()[-2:])
    places = [line for line in reference.splitlines() if named.search(line)]
    for section in re.split(r"^(?=#{2,6} )", reference, flags=re.MULTILINE):
        if named.search(section.split("\n", 1)[0]):
            places.append(section)
    for paragraph in re.split(r"\n\s*\n", reference):
        if named.search(paragraph) or short + "`" in paragraph or short + " " in paragraph:
            places.append(paragraph)
    return places


def command_options() -> list[tuple[str, str]]:
    options: set[tuple[str, str]] = set()
    for path, command in leaf_commands(cli, "tpc"):
        typed = path.rsplit(" ", 1)[0] if command.hidden else path
        for param in command.params:
            if isinstance(param, click.Option):
                # Each option's main name, and its off switch; further names are aliases.
                for names in (param.opts, param.secondary_opts):
                    main = next((name for name in names if name.startswith("--")), None)
                    if main is not None:
                        options.add((typed, main))
    return sorted(options)


@pytest.mark.parametrize(("command", "option"), command_options())
def test_every_option_is_described_with_its_command(command: str, option: str) -> None:
    places = places_describing(command, (DOCS / "cli.md").read_text())
    described = re.compile(re.escape(option) + r"(?![\w-])")
    assert any(described.search(place) for place in places), (
        f"`{command} {option}` is not described in docs/cli.md where the command is"
    )


@pytest.mark.parametrize(("method", "path"), api_operations())
def test_every_route_is_in_the_api_reference(method: str, path: str) -> None:
    row = re.compile(rf"^\|\s*{method}\s*\|\s*`{re.escape(path)}`\s*\|", re.MULTILINE)
    assert row.search((DOCS / "api.md").read_text()), (
        f"{method} {path} has no row in docs/api.md's Resources table"
    )


@pytest.mark.parametrize("setting", settings_read_by_the_code())
def test_every_setting_is_documented(setting: str) -> None:
    pages = [page for page in PAGES if re.search(rf"\b{setting}\b", page.read_text())]
    assert pages, f"{setting} is read by the code but named in no page of docs/ or README.md"


def spec_sections() -> set[str]:
    headings = HEADING.findall(FENCE.sub("", (DOCS / "spec.md").read_text()))
    return {match.group(1) for h in headings if (match := re.match(r"(\d+(?:\.\d+)?)\.? ", h))}


def spec_citations() -> list[tuple[str, str]]:
    """(file, section) for every `docs/spec.md §N` (and `§N–M`, `§N, §M`) in code and tests."""
    cited = re.compile(r"docs/spec\.md\s+(§[\d.]+(?:(?:[–-]|,\s*§|\s*/\s*§)[\d.]+)*)")
    citations: set[tuple[str, str]] = set()
    for folder in (*CODE, "tests"):
        for source in (ROOT / folder).rglob("*.py"):
            for match in cited.finditer(source.read_text()):
                for number in re.findall(r"\d+(?:\.\d+)?", match.group(1)):
                    citations.add((str(source.relative_to(ROOT)), number))
    return sorted(citations)


def test_code_cites_sections_the_spec_has() -> None:
    sections = spec_sections()
    assert {"3.1", "4.6", "9"} <= sections
    citations = spec_citations()
    assert ("domain/signals/aggregates.py", "4.6") in citations
    wrong = [f"{path}: §{number}" for path, number in citations if number not in sections]
    assert not wrong, f"docs/spec.md has no such section: {wrong}"


def test_nothing_cites_files_outside_the_project() -> None:
    outside = re.compile(r"\.\./shared/|\bSPEC(?:\.md)? ?§|\bDESIGN(?:\.md)?\b")
    sources = [p for folder in (*CODE, "tests") for p in (ROOT / folder).rglob("*.py")]
    cited = [
        str(path.relative_to(ROOT))
        for path in [*sources, *PAGES]
        if path.name != "test_docs.py" and outside.search(path.read_text())
    ]
    assert not cited, f"cite docs/spec.md or docs/architecture.md instead, in: {cited}"


def test_slugs_follow_github() -> None:
    assert slug("3.1 Sources (which text a signal reads)") == "31-sources-which-text-a-signal-reads"
    assert slug("`tpc sim signals schema`") == "tpc-sim-signals-schema"
    assert slug("Products and tokens (operator)") == "products-and-tokens-operator"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in LINK.findall(without_code(page.read_text())):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
