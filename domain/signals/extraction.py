"""Per-run signal extraction (SPEC §4.4–4.5): a transcript in, one value with evidence per signal.

`Extractor` compiles a config once and is then applied to any number of transcripts. Pattern
and stats signals are computed here; llm signals are asked of a judge through the port in
`domain.signals.judging` (questions out, verdicts in), so this module stays pure.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.signals import matching
from domain.signals.config import JUDGE_MODELS, Signal, SignalConfig
from domain.signals.folds import Observation, fold
from domain.signals.judging import JudgeKey, JudgeRequest, JudgeVerdict
from domain.sources import (
    Part,
    RenderedBlock,
    final_answer_part,
    message_text,
    parts_of,
    render_blocks,
    source_parts,
)
from domain.stats import RunStats
from domain.transcripts import Transcript

# Evidence lists name each matching message, up to this many per signal and run: enough to
# audit a value, bounded so that one chatty run cannot bloat the event log.
MAX_EVIDENCE = 25
NO_JUDGE = (
    "no judge was available to answer this llm signal "
    "(offline extraction asks no model; the server judges llm signals when it runs an iteration)"
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a value came from: a transcript event (message index) and the text around it."""

    event: int | None
    snippet: str
    pattern: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.event, "snippet": self.snippet}
        if self.pattern is not None:
            out["pattern"] = self.pattern
        return out


@dataclass(frozen=True, slots=True)
class SignalValue:
    """One signal's per-run value; `value` None means missing, and `error` then says why."""

    value: Any
    evidence: tuple[Evidence, ...] = ()
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "evidence": [item.to_json() for item in self.evidence],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def failed(message: str) -> SignalValue:
    return SignalValue(None, (), message)


@dataclass(frozen=True, slots=True)
class _Regex:
    name: str | None
    compiled: Any


class _Text:
    """A source's parts as one UTF-8 buffer, with each part's offset and message index."""

    __slots__ = ("data", "events", "starts")

    def __init__(self, parts: Sequence[Part]) -> None:
        encoded = [text.encode("utf-8") for _, text in parts]
        self.events = [event for event, _ in parts]
        self.starts: list[int] = []
        offset = 0
        for chunk in encoded:
            self.starts.append(offset)
            offset += len(chunk) + 1
        self.data = b"\n".join(encoded)

    def part_at(self, offset: int) -> int:
        part = max(bisect_right(self.starts, offset) - 1, 0)
        # A match that starts on the newline joining two parts belongs to the part after it.
        if offset == self.part_end(part) and part + 1 < len(self.starts):
            return part + 1
        return part

    def part_end(self, part: int) -> int:
        return self.starts[part + 1] - 1 if part + 1 < len(self.starts) else len(self.data)


class _Rendered:
    """One transcript's texts, each rendered and encoded once however many signals read it."""

    __slots__ = ("_blocks", "_messages", "_runs", "transcript")

    def __init__(self, transcript: Transcript) -> None:
        self.transcript = transcript
        self._blocks: list[RenderedBlock] | None = None
        self._runs: dict[str, _Text] = {}
        self._messages: dict[tuple[str | None, str | None], list[tuple[int, bytes]]] = {}

    @property
    def blocks(self) -> list[RenderedBlock]:
        if self._blocks is None:
            self._blocks = render_blocks(self.transcript)
        return self._blocks

    def run_text(self, source: str) -> _Text:
        if source not in self._runs:
            parts = (
                [final_answer_part(self.transcript)]
                if source == "finalAnswer"
                else parts_of(self.blocks, source)
            )
            self._runs[source] = _Text(parts)
        return self._runs[source]

    def message_texts(self, role: str | None, source: str | None) -> list[tuple[int, bytes]]:
        """(message index, text) for every message of `role`, an empty text included."""
        key = role, source
        if key not in self._messages:
            by_message: dict[int, list[RenderedBlock]] = {
                index: [] for index, m in enumerate(self.transcript.messages) if m.role == role
            }
            for block in self.blocks:
                if block.role == role:
                    by_message[block.event].append(block)
            self._messages[key] = [
                (index, "\n".join(text for _, text in parts_of(blocks, source)).encode("utf-8"))
                for index, blocks in by_message.items()
            ]
        return self._messages[key]


class Extractor:
    """A compiled signal config: extracts every signal of it from one transcript at a time."""

    def __init__(self, config: SignalConfig) -> None:
        self.config = config
        self._regexes: dict[str, list[_Regex]] = {}
        for signal in config.signals:
            extract = signal.extract
            if extract.method != "pattern":
                continue
            if extract.patterns is not None:
                regexes = [
                    _Regex(p.name, matching.compile_regex(p.regex, extract.ignore_case))
                    for p in extract.patterns
                ]
            else:
                assert extract.needle is not None
                regexes = [
                    _Regex(None, matching.compile_regex(extract.needle, extract.ignore_case))
                ]
            self._regexes[signal.id] = regexes

    # -- llm signals: the questions a transcript raises --------------------------------------

    def judge_requests(self, transcript: Transcript) -> list[JudgeRequest]:
        """Every question the config's llm signals ask of this transcript."""
        requests: list[JudgeRequest] = []
        for signal in self.config.signals:
            if signal.extract.method != "llm" or signal.judge_model not in JUDGE_MODELS:
                continue
            for key, (_, text) in self._llm_texts(signal, transcript):
                requests.append(
                    JudgeRequest(
                        signal_id=signal.id,
                        event=key,
                        model=signal.judge_model,
                        prompt=signal.extract.prompt or "",
                        text=text,
                        answer="category" if signal.type == "category" else "boolean",
                        categories=signal.categories,
                    )
                )
        return requests

    def _llm_texts(self, signal: Signal, transcript: Transcript) -> list[tuple[int | None, Part]]:
        """(request key, (evidence event, text)): one question per run, or per message."""
        if signal.scope == "message":
            return [
                (index, (index, message_text(message, signal.effective_source)))
                for index, message in enumerate(transcript.messages)
                if message.role == signal.target_role
            ]
        source = signal.effective_source or "any"
        if source == "finalAnswer":
            return [(None, final_answer_part(transcript))]
        parts = source_parts(transcript, source)
        return [(None, (None, "\n".join(text for _, text in parts)))]

    # -- extraction ---------------------------------------------------------------------------

    def extract(
        self,
        transcript: Transcript,
        stats: RunStats,
        verdicts: Mapping[JudgeKey, JudgeVerdict] | None = None,
        no_verdict: str = NO_JUDGE,
    ) -> dict[str, SignalValue]:
        """Every signal's value for one run; a failure is confined to its own signal."""
        values: dict[str, SignalValue] = {}
        rendered = _Rendered(transcript)
        for signal in self.config.signals:
            try:
                values[signal.id] = self._extract_one(
                    signal, rendered, stats, verdicts or {}, no_verdict
                )
            except Exception as error:
                values[signal.id] = failed(f"extraction failed: {type(error).__name__}: {error}")
        return values

    def _extract_one(
        self,
        signal: Signal,
        rendered: _Rendered,
        stats: RunStats,
        verdicts: Mapping[JudgeKey, JudgeVerdict],
        no_verdict: str,
    ) -> SignalValue:
        method = signal.extract.method
        if method == "stats":
            return _stat_value(signal, stats)
        if method == "llm":
            return self._llm_value(signal, rendered.transcript, verdicts, no_verdict)
        if signal.scope == "message":
            return self._message_pattern_value(signal, rendered)
        return self._run_pattern_value(signal, rendered)

    def _run_pattern_value(self, signal: Signal, rendered: _Rendered) -> SignalValue:
        text = rendered.run_text(signal.effective_source or "any")
        counting = signal.extract.needle is not None
        evidence: list[Evidence] = []
        seen_events: set[int | None] = set()
        total = 0
        for regex in self._regexes[signal.id]:
            spans = _spans(regex.compiled, text, every=counting)
            for start, end in spans:
                total += 1
                if len(evidence) >= MAX_EVIDENCE:
                    # Evidence is full: a count only needs the rest counted, a boolean is settled.
                    total += sum(1 for _ in spans) if counting else 0
                    break
                part = text.part_at(start)
                event = text.events[part]
                if event not in seen_events:
                    seen_events.add(event)
                    snippet = matching.snippet(
                        text.data, start, end, text.starts[part], text.part_end(part)
                    )
                    evidence.append(Evidence(event, snippet, regex.name))
        value: Any = total if counting else bool(total)
        return SignalValue(value, tuple(sorted(evidence, key=_evidence_order)))

    def _message_pattern_value(self, signal: Signal, rendered: _Rendered) -> SignalValue:
        counting = signal.extract.needle is not None
        regexes = self._regexes[signal.id]
        observations: list[Observation] = []
        evidence: list[Evidence] = []
        for index, data in rendered.message_texts(signal.target_role, signal.effective_source):
            found: tuple[str | None, Any] | None = None
            hits = 0
            for regex in regexes:
                matches = regex.compiled.finditer(data) if counting else None
                first = next(matches, None) if matches else regex.compiled.search(data)
                if first is None:
                    continue
                found = found or (regex.name, first)
                if not counting:
                    break
                hits += 1 + sum(1 for _ in matches or ())
            observations.append(hits if counting else found is not None)
            if found is not None and len(evidence) < MAX_EVIDENCE:
                name, match = found
                start, end = match.span()
                evidence.append(Evidence(index, matching.snippet(data, start, end), name))
        assert signal.fold is not None
        return SignalValue(fold(signal.fold.fn, observations), tuple(evidence))

    def _llm_value(
        self,
        signal: Signal,
        transcript: Transcript,
        verdicts: Mapping[JudgeKey, JudgeVerdict],
        no_verdict: str,
    ) -> SignalValue:
        if signal.judge_model not in JUDGE_MODELS:
            return failed(
                f"unsupported judge model {signal.judge_model!r} "
                f"(supported: {', '.join(JUDGE_MODELS)})"
            )
        observations: list[Observation] = []
        evidence: list[Evidence] = []
        for key, (event, _) in self._llm_texts(signal, transcript):
            verdict = verdicts.get((signal.id, key))
            if verdict is None:
                return failed(no_verdict)
            if verdict.error is not None:
                return failed(f"judge {signal.judge_model} failed: {verdict.error}")
            problem = _check_answer(signal, verdict.value)
            if problem is not None:
                return failed(problem)
            assert verdict.value is not None
            observations.append(verdict.value)
            if verdict.excerpt and len(evidence) < MAX_EVIDENCE:
                evidence.append(Evidence(event, verdict.excerpt[: matching.SNIPPET_CHARS]))
        if signal.scope == "run":
            return SignalValue(observations[0], tuple(evidence))
        assert signal.fold is not None
        return SignalValue(fold(signal.fold.fn, observations), tuple(evidence))


def _spans(compiled: Any, text: _Text, every: bool) -> Iterator[tuple[int, int]]:
    """Every match (for counts), or the first match in each part (enough for a boolean)."""
    if every:
        yield from (match.span() for match in compiled.finditer(text.data))
        return
    pos = 0
    while pos <= len(text.data):
        match = compiled.search(text.data, pos)
        if match is None:
            return
        start, end = match.span()
        yield start, end
        # Skip to the next part: one piece of evidence per part is all a boolean needs.
        pos = max(text.part_end(text.part_at(start)) + 1, end, pos + 1)


def _evidence_order(item: Evidence) -> tuple[int, str]:
    return (-1 if item.event is None else item.event), item.snippet


def _check_answer(signal: Signal, value: Any) -> str | None:
    if signal.type == "boolean" and not isinstance(value, bool):
        return f"judge answered {value!r}, not true or false"
    if signal.type == "category" and value not in signal.categories:
        return f"judge answered {value!r}, not one of {', '.join(signal.categories)}"
    return None


def _stat_value(signal: Signal, stats: RunStats) -> SignalValue:
    stat = signal.extract.stat
    assert stat is not None
    value = stats.get(stat)
    if value is None:
        return SignalValue(None, (Evidence(None, f"{stat}: not recorded and not derivable"),))
    return SignalValue(value, (Evidence(None, f"{stat} = {value}"),))
