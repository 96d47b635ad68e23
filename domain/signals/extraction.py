"""Per-run signal extraction (docs/spec.md §4.4–4.5): a transcript in, one value with evidence per
signal.

`Extractor` compiles a config once and is then applied to any number of transcripts. Pattern
and stats signals are computed here; llm signals are asked of a judge through the port in
`domain.signals.judging` (questions out, verdicts in), so this module stays pure.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from domain.signals import matching
from domain.signals.config import JUDGE_MODELS, Signal, SignalConfig
from domain.signals.folds import Observation, fold
from domain.signals.judging import JudgeKey, JudgeRequest, JudgeVerdict
from domain.signals.matching import JoinedText, Matcher, snippet
from domain.sources import (
    EncodedParts,
    MessageSource,
    Part,
    encode_sources,
    final_answer_part,
    message_text,
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

    def __init__(self, event: int | None, snippet: str, pattern: str | None = None) -> None:
        # What dataclass would write, minus a lookup of `object.__setattr__` per field: a run
        # makes dozens of these.
        _set_event(self, event)
        _set_snippet(self, snippet)
        _set_pattern(self, pattern)

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

    def __init__(
        self, value: Any, evidence: tuple[Evidence, ...] = (), error: str | None = None
    ) -> None:
        _set_value(self, value)
        _set_evidence(self, evidence)
        _set_error(self, error)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value": self.value,
            "evidence": [item.to_json() for item in self.evidence],
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class ExtractedSignals:
    """A run's signal values, extracted under the signal config whose text hashes to
    `config_hash` (recorded together by `Run.record_signals`)."""

    config_hash: str
    values: dict[str, SignalValue]


def _setter(cls: type, field: str) -> Callable[[Any, Any], None]:
    """A slot's own setter: a frozen dataclass allows no other assignment."""
    return vars(cls)[field].__set__  # type: ignore[no-any-return]


_set_event, _set_snippet, _set_pattern = (_setter(Evidence, f) for f in Evidence.__slots__)
_set_value, _set_evidence, _set_error = (_setter(SignalValue, f) for f in SignalValue.__slots__)


def failed(message: str) -> SignalValue:
    return SignalValue(None, (), message)


@dataclass(frozen=True, slots=True)
class _Pattern:
    """A pattern signal compiled once: its regexes and the text it reads."""

    names: tuple[str | None, ...]
    matchers: tuple[Matcher, ...]
    counting: bool  # `needle`: count matches; `patterns`: any found
    source: str | None  # run scope: the source (`any` when unset); message scope: narrowing
    role: str | None  # message scope: the target role, else None
    fold: str | None  # message scope: the fold
    # Message scope: whether all messages of the role may be searched at once
    # (`matching.scan_joined`): not for regexes that can tell a message's own start or end
    # from the newline joining it to the next.
    joinable: bool


class _Rendered:
    """One transcript's texts, each rendered and encoded once however many signals read it."""

    __slots__ = ("_encoded", "_joined", "_needs", "transcript")

    def __init__(self, transcript: Transcript, needs: _Needs) -> None:
        self.transcript = transcript
        self._needs = needs
        self._encoded: tuple[dict[str, EncodedParts], dict[MessageSource, EncodedParts]] | None
        self._encoded = None
        self._joined: dict[object, JoinedText] = {}

    def run_text(self, source: str) -> JoinedText:
        """A run-scoped source's parts (docs/spec.md §3.1)."""
        text = self._joined.get(source)
        if text is None:
            if source == "finalAnswer":
                event, final = final_answer_part(self.transcript)
                parts: EncodedParts = [event], [final.encode("utf-8")]
            else:
                parts = self._sources()[0][source]
            text = self._joined[source] = self._join(*parts)
        return text

    def message_texts(self, role: str | None, source: str | None) -> JoinedText:
        """One part per message of `role`, an empty text included: the message's text."""
        key = role, source
        text = self._joined.get(key)
        if text is None:
            text = self._joined[key] = self._join(*self._sources()[1][key])
        return text

    def _sources(self) -> tuple[dict[str, EncodedParts], dict[MessageSource, EncodedParts]]:
        if self._encoded is None:
            # Every source the config reads, in one pass over the transcript.
            self._encoded = encode_sources(self.transcript, *self._needs)
        return self._encoded

    def _join(self, events: list[int | None], parts: list[bytes]) -> JoinedText:
        # Tool messages usually hold one tool result each: their message texts are then the
        # `toolResults` parts, already joined.
        for other in self._joined.values():
            same = len(other.parts) == len(parts) and other.parts == parts
            if same and other.events == events:
                return other
        return JoinedText(events, parts)


# What a config reads: its run-scoped sources and its (role, source) message texts.
_Needs = tuple[frozenset[str], frozenset[MessageSource]]


class Extractor:
    """A compiled signal config: extracts every signal of it from one transcript at a time."""

    def __init__(self, config: SignalConfig) -> None:
        self.config = config
        self._plans: list[tuple[Signal, _Pattern | None]] = []
        for signal in config.signals:
            extract = signal.extract
            if extract.method != "pattern":
                self._plans.append((signal, None))
                continue
            regexes: list[tuple[str | None, str]]
            if extract.patterns is not None:
                regexes = [(p.name, p.regex) for p in extract.patterns]
            else:
                assert extract.needle is not None
                regexes = [(None, extract.needle)]
            ignore_case = extract.ignore_case
            message = signal.scope == "message"
            pattern = _Pattern(
                names=tuple(name for name, _ in regexes),
                matchers=tuple(
                    Matcher(
                        matching.compile_regex(regex, ignore_case),
                        matching.literal_text(regex, ignore_case),
                    )
                    for _, regex in regexes
                ),
                counting=extract.needle is not None,
                source=signal.effective_source if message else signal.effective_source or "any",
                role=signal.target_role if message else None,
                fold=signal.fold.fn if message and signal.fold is not None else None,
                joinable=not any(matching.uses_text_anchors(regex) for _, regex in regexes),
            )
            self._plans.append((signal, pattern))
        patterns = [pattern for _, pattern in self._plans if pattern is not None]
        self._needs: _Needs = (
            frozenset(p.source for p in patterns if p.role is None and p.source is not None),
            frozenset((p.role, p.source) for p in patterns if p.role is not None),
        )

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
        rendered = _Rendered(transcript, self._needs)
        for signal, pattern in self._plans:
            try:
                if pattern is None:
                    value = self._other_value(signal, rendered, stats, verdicts or {}, no_verdict)
                elif pattern.role is not None:
                    value = _message_pattern_value(pattern, rendered)
                else:
                    value = _run_pattern_value(pattern, rendered)
            except Exception as error:
                value = failed(f"extraction failed: {type(error).__name__}: {error}")
            values[signal.id] = value
        return values

    def _other_value(
        self,
        signal: Signal,
        rendered: _Rendered,
        stats: RunStats,
        verdicts: Mapping[JudgeKey, JudgeVerdict],
        no_verdict: str,
    ) -> SignalValue:
        if signal.extract.method == "stats":
            return _stat_value(signal, stats)
        return self._llm_value(signal, rendered.transcript, verdicts, no_verdict)

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
        if signal.scope == "run" and (signal.id, None) not in verdicts:
            return failed(no_verdict)  # without rendering the text it was not asked about
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


def _run_pattern_value(pattern: _Pattern, rendered: _Rendered) -> SignalValue:
    """The matches in a source's text (its parts joined), or whether any pattern matched;
    the evidence names each message matched, up to MAX_EVIDENCE."""
    assert pattern.source is not None
    text = rendered.run_text(pattern.source)
    if not text.starts:
        return _no_parts_value(pattern)
    evidence = _EvidenceLog()
    total = 0
    found = False
    for name, matcher in zip(pattern.names, pattern.matchers, strict=True):
        if pattern.counting and matcher.literal is not None and b"\n" not in matcher.literal:
            total += _count_literal(matcher.literal, name, text, evidence)
        elif pattern.counting:
            total += _count_spans(matcher, name, text, evidence)
        elif _first_in_each_part(matcher, name, text, evidence):
            found = True
    value: Any = total if pattern.counting else found
    if len(pattern.matchers) > 1:
        # One regex finds its parts in order; several need putting in message order.
        evidence.items.sort(key=_evidence_order)
    return SignalValue(value, tuple(evidence.items))


class _EvidenceLog:
    """The evidence of one run-scoped pattern signal: one item per message matched."""

    def __init__(self) -> None:
        self.items: list[Evidence] = []
        self.seen_events: set[int | None] = set()


# (The part of a match, written out in the functions below: they are the inner loops. A match
# that starts on the newline joining two parts belongs to the later part.)


def _count_literal(
    literal: bytes, name: str | None, text: JoinedText, evidence: _EvidenceLog
) -> int:
    """A plain string without a newline never spans a join: count it in C, and find only the
    first match of each part, from the part's start."""
    data, events, starts, ends = text.data, text.events, text.starts, text.ends
    items, seen_events = evidence.items, evidence.seen_events
    start = data.find(literal)
    while start >= 0:
        part = bisect_right(starts, start) - 1
        event = events[part]
        if event not in seen_events:
            seen_events.add(event)
            end = start + len(literal)
            text_around = snippet(data, start, end, starts[part], ends[part])
            items.append(Evidence(event, text_around, name))
            if len(items) == MAX_EVIDENCE:
                break
        start = data.find(literal, ends[part] + 1)
    return data.count(literal)


def _count_spans(
    matcher: Matcher, name: str | None, text: JoinedText, evidence: _EvidenceLog
) -> int:
    """Every match of a regex, with evidence for the first in each part."""
    data, events, starts, ends = text.data, text.events, text.starts, text.ends
    items, seen_events = evidence.items, evidence.seen_events
    last = len(starts) - 1
    spans = matcher.spans(data)
    lo = hi = -1  # the bounds of the part the previous match was in
    for start, end in spans:
        if lo <= start < hi:
            continue  # The same part again: its message has its evidence.
        part = bisect_right(starts, start) - 1
        if start == ends[part] and part < last:
            part += 1  # a match from the newline that joins two parts: the later
        lo, hi = starts[part], ends[part]
        event = events[part]
        if event not in seen_events:
            seen_events.add(event)
            items.append(Evidence(event, snippet(data, start, end, lo, hi), name))
            if len(items) == MAX_EVIDENCE:
                break  # The rest only needed counting.
    return len(spans)


def _first_in_each_part(
    matcher: Matcher, name: str | None, text: JoinedText, evidence: _EvidenceLog
) -> bool:
    """A boolean: whether the regex matches, finding the first match in each part until the
    evidence is full."""
    data, events, starts, ends = text.data, text.events, text.starts, text.ends
    items, seen_events = evidence.items, evidence.seen_events
    last = len(starts) - 1
    found = False
    first = matcher.first
    pos = 0
    size = len(data)
    while pos <= size and len(items) < MAX_EVIDENCE:
        span = first(data, pos)
        if span is None:
            break
        found = True
        start, end = span
        part = bisect_right(starts, start) - 1
        if start == ends[part] and part < last:
            part += 1
        part_end = ends[part]
        event = events[part]
        if event not in seen_events:
            seen_events.add(event)
            text_around = snippet(data, start, end, starts[part], part_end)
            items.append(Evidence(event, text_around, name))
        # Then from the next part: one match per part is all a boolean needs (the part
        # ends at or after the match's start, so this moves on).
        pos = part_end + 1 if part_end >= end else end
    return found


def _no_parts_value(pattern: _Pattern) -> SignalValue:
    """A source with no parts (no tool calls, say) is the empty text: only an empty match
    can be found there, and no message to name."""
    if pattern.counting:
        return SignalValue(sum(len(matcher.spans(b"")) for matcher in pattern.matchers))
    return SignalValue(any(matcher.first(b"", 0) is not None for matcher in pattern.matchers))


def _message_pattern_value(pattern: _Pattern, rendered: _Rendered) -> SignalValue:
    """One observation per message of the role (its matches, or whether any pattern
    matched), folded; the evidence names each message matched, up to MAX_EVIDENCE."""
    text = rendered.message_texts(pattern.role, pattern.source)
    counting = pattern.counting
    scanned = matching.scan_joined(pattern.matchers, text, counting) if pattern.joinable else None
    hits, firsts = scanned or matching.scan_parts(pattern.matchers, text, counting)
    observations: Sequence[Observation] = hits if counting else [hit > 0 for hit in hits]
    evidence = [
        Evidence(
            text.events[part],
            snippet(text.data, start, end, text.starts[part], text.ends[part]),
            pattern.names[index],
        )
        for part, (index, start, end) in islice(
            firsts.items() if len(pattern.matchers) == 1 else sorted(firsts.items()), MAX_EVIDENCE
        )
    ]
    assert pattern.fold is not None
    return SignalValue(fold(pattern.fold, observations), tuple(evidence))


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
