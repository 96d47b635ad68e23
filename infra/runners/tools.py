"""The `llm` agent's tools (docs/spec.md §6): search and read the environment's docs, run shell
commands and write files in the run's workspace.

Every tool checks its input and answers a bad call with an error result the agent can act on
(what was wrong, what to do instead); nothing here raises for a bad call. Paths are relative:
`read_doc` reads only inside the docs folder, `write_file` writes only inside the workspace,
and `..`, absolute paths and symlinks that lead outside are refused.
"""

from __future__ import annotations

import asyncio
import difflib
import html
import logging
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from domain.network_policy import NetworkMode
from infra.runners.base import RunnerError
from infra.runners.toolbox import Toolbox, ToolResult, ToolSpec
from infra.runners.workspace import CommandResult, Workspace

log = logging.getLogger("tpc.tools")

DOC_SUFFIXES = frozenset({".md", ".mdx", ".markdown", ".txt", ".rst", ".adoc", ".html", ".htm"})
MAX_DOC_BYTES = 2_000_000  # larger files are not indexed (and read in pages)
READ_CHARS = 40_000  # one read_doc page
SEARCH_RESULTS = 5
SNIPPET_LINES = 3
OUTPUT_HEAD, OUTPUT_TAIL = 4_000, 8_000  # characters of each shell stream shown
WRITE_LIMIT = 5_000_000
# Words too common to say what a document is about.
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "of", "on", "or", "the", "this", "to", "what", "when", "where",
    "which", "with", "you", "your",
})
# fmt: on
_TAG = re.compile(r"<[^>]+>")


class BadInput(Exception):
    """A tool call the agent should correct; the message says how."""


def build_toolbox(
    tools: Sequence[str],
    workspace: Workspace,
    docs: Path | None,
    *,
    network: NetworkMode,
    shell_timeout_s: float,
) -> Toolbox:
    """The named tools over one run's workspace and docs folder.

    A docs folder that does not exist is a configuration error (RunnerError); no docs folder
    at all leaves the doc tools answering that there are no docs.
    """
    unknown = [name for name in tools if name not in SPECS]
    if unknown:
        raise RunnerError(f"unknown tools {unknown} (available: {', '.join(SPECS)})")
    if docs is not None and not docs.is_dir():
        raise RunnerError(
            f"docs folder {str(docs)!r} does not exist on the machine that runs the agent"
        )
    return WorkspaceToolbox(tools, workspace, docs, network, shell_timeout_s)


SPECS: dict[str, ToolSpec] = {
    spec.name: spec
    for spec in (
        ToolSpec(
            "search_docs",
            "Search the product documentation by keywords. Returns the best-matching documents "
            "(path, title and the lines that match); read one with read_doc.",
            {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Keywords, e.g. 'create customer'"},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 20},
                },
                "required": ["query"],
            },
        ),
        ToolSpec(
            "read_doc",
            "Read one documentation file by the path search_docs gave (relative to the docs "
            f"folder). Long files come in pages of {READ_CHARS} characters: pass `offset` for "
            "the next page.",
            {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "e.g. 'guides/quickstart.md'"},
                    "offset": {"type": "integer", "minimum": 0, "description": "A character"},
                },
                "required": ["path"],
            },
        ),
        ToolSpec(
            "shell",
            "Run a shell command (/bin/sh -c) in your workspace folder and get its exit code, "
            "stdout and stderr. Each call is a fresh shell: processes it leaves running are "
            "stopped when it ends. Long outputs are shortened in the middle.",
            {
                "type": "object",
                "properties": {"command": {"type": "string", "description": "e.g. 'ls -la'"}},
                "required": ["command"],
            },
        ),
        ToolSpec(
            "write_file",
            "Write a text file in your workspace (created with its folders, or replaced). "
            "The path is relative to the workspace.",
            {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "e.g. 'src/main.py'"},
                    "content": {"type": "string", "description": "The whole file's text"},
                },
                "required": ["path", "content"],
            },
        ),
    )
}


class WorkspaceToolbox:
    """The `Toolbox` of an `llm` run: its tools, bound to its workspace and docs."""

    def __init__(
        self,
        tools: Sequence[str],
        workspace: Workspace,
        docs: Path | None,
        network: NetworkMode,
        shell_timeout_s: float,
    ) -> None:
        self._specs = tuple(SPECS[name] for name in dict.fromkeys(tools))
        self._workspace = workspace
        self._docs = docs
        self._network = network
        self._shell_timeout_s = shell_timeout_s
        self._index: DocIndex | None = None
        self._handlers: dict[str, Callable[[dict[str, Any]], Awaitable[str]]] = {
            "search_docs": self._search_docs,
            "read_doc": self._read_doc,
            "shell": self._shell,
            "write_file": self._write_file,
        }

    @property
    def specs(self) -> Sequence[ToolSpec]:
        return self._specs

    async def call(self, name: str, tool_input: dict[str, Any]) -> ToolResult:
        if name not in {spec.name for spec in self._specs}:
            available = ", ".join(spec.name for spec in self._specs) or "none"
            return ToolResult(f"Unknown tool {name!r}. Available tools: {available}.", True)
        if not isinstance(tool_input, dict):
            return ToolResult(f"The input of {name} must be a JSON object.", True)
        try:
            return ToolResult(await self._handlers[name](tool_input))
        except BadInput as error:
            return ToolResult(str(error), True)
        except _Failed as error:
            return ToolResult(str(error), True)
        except Exception as error:  # a tool must answer, whatever went wrong
            log.exception("tool %s failed", name)
            return ToolResult(f"{name} failed: {type(error).__name__}: {error}", True)

    # -- docs -------------------------------------------------------------------------------

    async def _search_docs(self, tool_input: dict[str, Any]) -> str:
        query = _string(tool_input, "query").strip()
        if not query:
            raise BadInput("`query` is empty: give a few keywords, e.g. 'install sdk'.")
        limit = _integer(tool_input, "max_results", SEARCH_RESULTS, 1, 20)
        index = await self._doc_index()
        hits = index.search(query, limit)
        if not hits:
            return (
                f"No document matches {query!r}. Try other or fewer keywords "
                f"({len(index.docs)} documents are searchable)."
            )
        lines = [f"{len(hits)} document{'s' if len(hits) > 1 else ''} match {query!r}:"]
        for rank, (doc, snippets) in enumerate(hits, 1):
            lines.append(f"{rank}. {doc.path}" + (f" — {doc.title}" if doc.title else ""))
            lines.extend(f"   {number}: {text}" for number, text in snippets)
        lines.append('Read one with read_doc {"path": "<path>"}.')
        return "\n".join(lines)

    async def _read_doc(self, tool_input: dict[str, Any]) -> str:
        root = self._docs_root()
        relative = _string(tool_input, "path")
        offset = _integer(tool_input, "offset", 0, 0, None)
        target = _inside(root, relative, "the docs folder")
        if target.is_dir():
            names = sorted(p.relative_to(root).as_posix() for p in target.iterdir())[:50]
            raise BadInput(f"{relative!r} is a folder; its entries: {', '.join(names)}")
        if not target.is_file():
            index = await self._doc_index()
            close = difflib.get_close_matches(relative, [d.path for d in index.docs], n=3)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise BadInput(f"No document {relative!r} in the docs.{hint} (search_docs finds them)")
        text = (await asyncio.to_thread(target.read_bytes)).decode("utf-8", errors="replace")
        page = text[offset : offset + READ_CHARS]
        if offset + READ_CHARS < len(text):
            page += (
                f"\n[showing characters {offset}–{offset + len(page)} of {len(text)}; "
                f'read_doc {{"path": "{relative}", "offset": {offset + READ_CHARS}}} continues]'
            )
        return page

    def _docs_root(self) -> Path:
        if self._docs is None:
            raise _Failed("This environment has no docs folder: there are no docs to read.")
        return self._docs

    async def _doc_index(self) -> DocIndex:
        if self._index is None:
            self._index = await asyncio.to_thread(DocIndex.build, self._docs_root())
        return self._index

    # -- workspace --------------------------------------------------------------------------

    async def _shell(self, tool_input: dict[str, Any]) -> str:
        command = _string(tool_input, "command")
        if not command.strip():
            raise BadInput("`command` is empty.")
        result = await self._workspace.run(
            command, timeout_s=self._shell_timeout_s, network=self._network
        )
        report = _shell_report(result, self._shell_timeout_s)
        if result.timed_out or result.exit_code != 0:
            raise _Failed(report)
        return report

    async def _write_file(self, tool_input: dict[str, Any]) -> str:
        relative = _string(tool_input, "path")
        content = _string(tool_input, "content")
        data = content.encode()
        if len(data) > WRITE_LIMIT:
            raise BadInput(f"The content is {len(data)} bytes; the limit is {WRITE_LIMIT}.")
        target = _inside(self._workspace.path, relative, "the workspace")
        if target.is_dir():
            raise BadInput(f"{relative!r} is a folder; give a file path inside it.")

        def write() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            self._workspace.hand_over(target)  # the agent's commands may change it

        try:
            await asyncio.to_thread(write)
        except OSError as error:
            raise _Failed(f"Cannot write {relative!r}: {error.strerror or error}") from None
        return f"Wrote {len(data)} bytes to {relative}."


class _Failed(Exception):
    """A tool that ran and failed (a non-zero exit, no docs): an error result, no traceback."""


def _shell_report(result: CommandResult, timeout_s: float) -> str:
    if result.timed_out:
        head = f"The command timed out after {timeout_s:g} s and was stopped."
    else:
        head = f"exit code {result.exit_code}"
    parts = [head]
    for name, data in (("stdout", result.stdout), ("stderr", result.stderr)):
        if data:
            parts.append(f"--- {name} ---\n{_shorten(data.decode('utf-8', errors='replace'))}")
    if len(parts) == 1:
        parts.append("(no output)")
    return "\n".join(parts)


def _shorten(text: str) -> str:
    if len(text) <= OUTPUT_HEAD + OUTPUT_TAIL:
        return text
    omitted = len(text) - OUTPUT_HEAD - OUTPUT_TAIL
    return f"{text[:OUTPUT_HEAD]}\n[… {omitted} characters omitted …]\n{text[-OUTPUT_TAIL:]}"


def _string(tool_input: dict[str, Any], key: str) -> str:
    value = tool_input.get(key)
    if not isinstance(value, str):
        got = "nothing" if value is None else type(value).__name__
        raise BadInput(f"`{key}` must be a string (got {got}).")
    return value


def _integer(tool_input: dict[str, Any], key: str, default: int, low: int, high: int | None) -> int:
    value = tool_input.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"`{key}` must be a whole number.")
    if value < low or (high is not None and value > high):
        raise BadInput(f"`{key}` must be between {low} and {high if high else 'any'}.")
    return value


def _inside(root: Path, relative: str, where: str) -> Path:
    """`relative` under `root`, or BadInput when it is absolute, uses `..` or leads outside
    through a symlink."""
    pure = PurePosixPath(relative.strip())
    if not relative.strip() or pure.is_absolute() or relative.startswith("~") or ".." in pure.parts:
        raise BadInput(
            f"{relative!r}: give a path relative to {where}, without '..' (e.g. 'guide.md')."
        )
    base = root.resolve()
    target = (base / pure).resolve()
    if not target.is_relative_to(base):
        raise BadInput(f"{relative!r} leads outside {where} (through a symlink).")
    return target


@dataclass(frozen=True, slots=True)
class Doc:
    path: str  # relative, with forward slashes
    title: str
    lines: tuple[str, ...]  # the text lines (tags stripped for HTML), for snippets
    terms: Counter[str]
    path_terms: frozenset[str]


class DocIndex:
    """Plain keyword search over a docs folder: BM25 over words, a bonus for words in the
    path, snippets from the lines that hold the most query words."""

    def __init__(self, docs: list[Doc]) -> None:
        self.docs = docs
        self._average = sum(sum(d.terms.values()) for d in docs) / len(docs) if docs else 1.0
        self._frequency: Counter[str] = Counter()
        for doc in docs:
            self._frequency.update(doc.terms.keys())

    @classmethod
    def build(cls, root: Path) -> DocIndex:
        docs = []
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            hidden = any(part.startswith(".") for part in relative.parts)
            if hidden or path.suffix.lower() not in DOC_SUFFIXES or not path.is_file():
                continue
            if path.stat().st_size > MAX_DOC_BYTES:
                continue
            docs.append(_read_doc_file(path, relative.as_posix()))
        return cls(docs)

    def search(self, query: str, limit: int) -> list[tuple[Doc, list[tuple[int, str]]]]:
        words = list(dict.fromkeys(_words(query)))
        if not words:
            return []
        scored = []
        for doc in self.docs:
            score = sum(self._score(doc, word) for word in words)
            if score > 0:
                scored.append((score, doc))
        scored.sort(key=lambda item: (-item[0], item[1].path))
        return [(doc, _snippets(doc, words)) for _, doc in scored[:limit]]

    def _score(self, doc: Doc, word: str) -> float:
        count = doc.terms.get(word, 0)
        if not count and word not in doc.path_terms:
            return 0.0
        n, df = len(self.docs), self._frequency.get(word, 0)
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        length = sum(doc.terms.values())
        k, b = 1.2, 0.75
        saturation = count * (k + 1) / (count + k * (1 - b + b * length / self._average))
        return idf * (saturation + (1.0 if word in doc.path_terms else 0.0))


def _read_doc_file(path: Path, relative: str) -> Doc:
    text = path.read_bytes().decode("utf-8", errors="replace")
    is_html = path.suffix.lower() in (".html", ".htm")
    lines = tuple(
        html.unescape(_TAG.sub(" ", line)) if is_html else line for line in text.splitlines()
    )
    return Doc(
        path=relative,
        title=_title(text, lines, is_html),
        lines=lines,
        terms=Counter(_words("\n".join(lines))),
        path_terms=frozenset(_words(relative.replace("/", " ").replace("-", " "))),
    )


def _title(text: str, lines: Sequence[str], is_html: bool) -> str:
    if is_html:
        found = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return html.unescape(found.group(1).strip())[:120] if found else ""
    for line in lines[:40]:
        if line.startswith("#"):
            return line.lstrip("#").strip()[:120]
    return ""


def _words(text: str) -> list[str]:
    return [_stem(w) for w in re.findall(r"[a-z0-9_]+", text.lower()) if w not in _STOPWORDS]


def _stem(word: str) -> str:
    # Plurals match their singular ("customers" finds "customer"); nothing cleverer.
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _snippets(doc: Doc, words: list[str]) -> list[tuple[int, str]]:
    wanted = set(words)
    ranked = []
    for number, line in enumerate(doc.lines, 1):
        found = wanted.intersection(_words(line))
        if found:
            ranked.append((-len(found), number, line.strip()))
    ranked.sort()
    picked = sorted(ranked[:SNIPPET_LINES], key=lambda item: item[1])
    return [(number, _clip(line, words)) for _, number, line in picked]


def _clip(line: str, words: list[str], width: int = 200) -> str:
    if len(line) <= width:
        return line
    lower = line.lower()
    start = min((i for i in (lower.find(w) for w in words) if i >= 0), default=0)
    start = max(0, start - width // 4)
    return ("…" if start else "") + line[start : start + width] + "…"
