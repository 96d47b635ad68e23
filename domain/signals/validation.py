"""Signal config validation (docs/spec.md §4.3): every problem at once, each with its location.

The same function serves `tpc sim experiment validate-signal-config` (client side, no server)
and the server's upload endpoint (HTTP 422 with the same messages). Shape problems come from
the pydantic models in `domain.signals.config`; the rules that relate fields to each other are
checked here, for every signal and aggregate whose shape is sound.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.resolver import Resolver

from domain.errors import InvalidInput, UnreadableDocument
from domain.problems import Problem, problems_from_pydantic
from domain.signals.config import (
    JUDGE_MODELS,
    NUMERIC_AGGREGATES,
    STAT_CATEGORIES,
    WHERE_OPERATORS,
    Aggregate,
    Signal,
    SignalConfig,
)
from domain.signals.matching import RegexError, compile_regex

KEBAB_CASE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_TOP_LEVEL = ("version", "signals", "aggregates")


class SignalConfigSyntaxError(UnreadableDocument):
    """The document is not YAML at all (exit 2 on the CLI)."""


class InvalidSignalConfig(InvalidInput):
    """A config that parsed but breaks the rules (HTTP 422, exit 1)."""


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one config: the typed config when valid, else the problems."""

    config: SignalConfig | None
    errors: tuple[Problem, ...]
    warnings: tuple[Problem, ...]
    content_hash: str | None

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [p.to_json() for p in self.errors],
            "warnings": [p.to_json() for p in self.warnings],
            "config_hash": self.content_hash,
        }

    def require_valid(self) -> SignalConfig:
        """The config, or `InvalidSignalConfig` carrying every located error."""
        if self.config is None:
            summary = "; ".join(str(p) for p in self.errors[:3])
            more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
            raise InvalidSignalConfig(
                f"invalid signal config: {summary}{more}",
                tuple((p.loc, p.message) for p in self.errors),
            )
        return self.config


# Reports of valid configs up to this size written without aliases are remembered (the last
# REMEMBERED_CONFIGS of them): a trigger parses its experiment's config again, and teams create
# experiments from one file; parsing and checking a few kB costs over a millisecond of the
# server's CPU. Without aliases a config's objects stay within a small multiple of its text,
# so what is remembered stays within a few tens of MB whatever products send.
REMEMBERED_CONFIG_CHARS = 64 * 1024
REMEMBERED_CONFIGS = 64
_remembered: OrderedDict[str, ValidationReport] = OrderedDict()
_remembered_lock = threading.Lock()


def load_signal_config(text: str) -> ValidationReport:
    """Parse YAML text and validate it; `SignalConfigSyntaxError` when it is not YAML. The
    report may be shared between callers given the same text: it is immutable."""
    with _remembered_lock:
        report = _remembered.get(text)
        if report is not None:
            _remembered.move_to_end(text)
            return report
    data, aliased = _load_yaml(text)
    report = validate_signal_config(data)
    if report.valid and not aliased and len(text) <= REMEMBERED_CONFIG_CHARS:
        with _remembered_lock:
            _remembered[text] = report
            if len(_remembered) > REMEMBERED_CONFIGS:
                _remembered.popitem(last=False)
    return report


def parse_yaml(text: str) -> Any:
    """YAML text as data; refuses duplicate keys, deep nesting and alias bombs."""
    return _load_yaml(text)[0]


def _load_yaml(text: str) -> tuple[Any, bool]:
    """`parse_yaml`'s data, and whether the text used aliases."""
    try:
        loader = _StrictLoader(text)
        try:
            return loader.get_single_data(), loader.aliased > 0
        finally:
            loader.dispose()
    except yaml.YAMLError as error:
        raise SignalConfigSyntaxError(f"not valid YAML: {_yaml_reason(error)}") from None
    except UnicodeEncodeError:  # libyaml reads UTF-8: a lone surrogate cannot be encoded
        raise SignalConfigSyntaxError(
            "not valid YAML: unacceptable character (a lone surrogate)"
        ) from None
    except RecursionError:  # the limits above should make this unreachable
        raise SignalConfigSyntaxError("not valid YAML: nested too deeply") from None


def content_hash(data: Any) -> str:
    """`sha256:` + hex digest of the config as loaded, canonically serialised (docs/spec.md
    §4.3)."""
    canonical = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def validate_signal_config(data: Any) -> ValidationReport:
    checker = _Checker()
    config = checker.check_document(data)
    errors = tuple(checker.errors)
    return ValidationReport(
        config=None if errors else config,
        errors=errors,
        warnings=tuple(checker.warnings),
        content_hash=None if errors else content_hash(data),
    )


# Put in place of a missing or wrong free-text field to check the rest of its item.
STAND_IN = "x"


def _repairs(model: type[Any], error: ValidationError) -> tuple[set[str], set[str]] | None:
    """(plain-text fields that failed, unknown fields) when nothing else failed; else None."""
    texts: set[str] = set()
    unknown: set[str] = set()
    for item in error.errors(include_url=False):
        loc = item["loc"]
        if len(loc) != 1:
            return None
        if item["type"] == "extra_forbidden":
            unknown.add(str(loc[0]))
            continue
        field_info = model.model_fields.get(loc[0])
        if field_info is None or field_info.annotation is not str:
            return None
        texts.add(str(loc[0]))
    return texts, unknown


@dataclass
class _Checker:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    # Locations of fields checked with a stand-in text (their problem is already reported).
    stand_ins: set[str] = field(default_factory=set)

    def error(self, loc: str, message: str) -> None:
        self.errors.append(Problem(loc, message))

    def check_document(self, data: Any) -> SignalConfig | None:
        if data is None:  # an empty file: it lacks what is required, nothing else
            data = {}
        if not isinstance(data, Mapping):
            self.error(
                "", "a signal config is a mapping with 'version' and 'signals' (and 'aggregates')"
            )
            return None
        for key in data:
            if key not in _TOP_LEVEL:
                self.error(str(key), "unknown field (expected version, signals, aggregates)")
        if "version" not in data:
            self.error("version", "required (write 'version: 1')")
        elif data["version"] != 1 or isinstance(data["version"], bool):
            self.error("version", f"must be 1 (got {data['version']!r})")

        raw_signals = self._list(data, "signals", required=True)
        raw_aggregates = self._list(data, "aggregates", required=False)
        signals = [self._signal(raw, f"signals[{i}]") for i, raw in enumerate(raw_signals)]
        self._check_unique_ids(raw_signals, "signals")
        known = {raw.get("id") for raw in raw_signals if isinstance(raw, Mapping)}
        by_id = {s.id: s for s in signals if s is not None}
        aggregates = [
            self._aggregate(raw, f"aggregates[{i}]", by_id, known)
            for i, raw in enumerate(raw_aggregates)
        ]
        self._check_unique_ids(raw_aggregates, "aggregates")
        if self.errors:
            return None
        return SignalConfig(
            version=1,
            signals=[s for s in signals if s is not None],
            aggregates=[a for a in aggregates if a is not None],
        )

    def _list(self, data: Mapping[str, Any], key: str, required: bool) -> list[Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.error(key, "required: a list of signals")
            return []
        if not isinstance(value, list):
            self.error(key, f"must be a list (got {type(value).__name__})")
            return []
        if required and not value:
            self.error(key, "must list at least one signal")
        return value

    def _check_unique_ids(self, raws: list[Any], what: str) -> None:
        first: dict[Hashable, int] = {}
        for i, raw in enumerate(raws):
            ident = raw.get("id") if isinstance(raw, Mapping) else None
            if not isinstance(ident, str):
                continue
            if ident in first:
                self.error(
                    f"{what}[{i}].id", f"duplicate id {ident!r} (also {what}[{first[ident]}])"
                )
            else:
                first[ident] = i

    def _parse(self, model: type[Any], raw: Any, loc: str) -> tuple[Any, bool]:
        """The typed item (None when its shape is wrong) and whether it holds stand-ins.

        When only free-text fields (a name, a label, an id) are missing or wrong, or unknown
        fields are present, the item is still checked against the rules below (with a
        stand-in text, without the unknown fields), so one pass reports every problem;
        problems on the stand-ins are dropped (their own problem is already reported), and
        the item counts as invalid."""
        if not isinstance(raw, Mapping):
            self.error(loc, f"must be a mapping (got {type(raw).__name__})")
            return None, False
        try:
            return model.model_validate(raw), False
        except ValidationError as error:
            self.errors.extend(problems_from_pydantic(error, loc))
            repairs = _repairs(model, error)
            if repairs is None:
                return None, False
            texts, unknown = repairs
            self.stand_ins.update(f"{loc}.{name}" for name in texts)
            repaired = {k: v for k, v in raw.items() if k not in unknown}
            try:
                return model.model_validate({**repaired, **dict.fromkeys(texts, STAND_IN)}), True
            except ValidationError:
                return None, False

    def _drop_stand_in_problems(self, before: int) -> None:
        """Forget the problems found since `before` that sit on a stand-in text."""
        kept = [p for p in self.errors[before:] if p.loc not in self.stand_ins]
        self.errors[before:] = kept

    # -- signals (§4.1) -------------------------------------------------------------------

    def _signal(self, raw: Any, loc: str) -> Signal | None:
        signal: Signal | None
        signal, stood_in = self._parse(Signal, raw, loc)
        if signal is None:
            return None
        before = len(self.errors)
        self._signal_identity(signal, loc)
        self._signal_type(signal, loc)
        self._signal_scope(signal, loc)
        self._signal_source(signal, loc)
        {"pattern": self._pattern, "stats": self._stats, "llm": self._llm}[signal.extract.method](
            signal, loc
        )
        self._drop_stand_in_problems(before)
        return signal if len(self.errors) == before and not stood_in else None

    def _signal_identity(self, signal: Signal, loc: str) -> None:
        if not KEBAB_CASE.match(signal.id):
            self.error(f"{loc}.id", f"must be kebab-case like 'total-tokens' (got {signal.id!r})")
        if not signal.name.strip():
            self.error(f"{loc}.name", "must not be empty")

    def _signal_type(self, signal: Signal, loc: str) -> None:
        enums = signal.category_enums
        stat_categories = STAT_CATEGORIES.get(signal.extract.stat or "")
        if signal.type != "category":
            if enums is not None:
                self.error(f"{loc}.category_enums", "only allowed when type is 'category'")
            return
        if enums is None:
            if not (signal.extract.method == "stats" and stat_categories):
                self.error(f"{loc}.category_enums", "required when type is 'category'")
            return
        if not enums:
            self.error(f"{loc}.category_enums", "must list at least one category")
        seen: set[str] = set()
        for i, value in enumerate(enums):
            if value in seen:
                self.error(f"{loc}.category_enums[{i}]", f"duplicate category {value!r}")
            seen.add(value)
            if stat_categories and value not in stat_categories:
                self.error(
                    f"{loc}.category_enums[{i}]",
                    f"{signal.extract.stat} is never {value!r} "
                    f"(it is one of {', '.join(stat_categories)})",
                )

    def _signal_scope(self, signal: Signal, loc: str) -> None:
        if signal.scope == "run":
            if signal.target_role is not None:
                self.error(f"{loc}.target_role", "only allowed for message-scoped signals")
            if signal.fold is not None:
                self.error(f"{loc}.fold", "only allowed for message-scoped signals")
            return
        if signal.target_role is None:
            self.error(f"{loc}.target_role", "required for message-scoped signals")
        if signal.fold is None:
            self.error(f"{loc}.fold", "required for message-scoped signals")
        elif signal.type == "category" and signal.fold.fn in {"sum", "average", "min", "max"}:
            self.error(
                f"{loc}.fold.fn",
                f"'{signal.fold.fn}' needs numbers; fold a category signal with count or histogram",
            )

    def _signal_source(self, signal: Signal, loc: str) -> None:
        method = signal.extract.method
        if signal.source and signal.extract.source and signal.source != signal.extract.source:
            self.error(
                f"{loc}.extract.source",
                f"conflicts with {loc}.source ({signal.source!r}); name the source once",
            )
        source = signal.effective_source
        if method == "stats":
            if source is not None:
                self.error(f"{loc}.source", "not allowed for stats signals (they read run stats)")
        elif signal.scope == "run" and source is None:
            self.error(f"{loc}.source", f"required for run-scoped {method} signals")
        if signal.scope == "message" and source == "finalAnswer":
            self.error(f"{loc}.source", "finalAnswer is not a message-scoped source")

    def _not_for_method(self, signal: Signal, loc: str, fields: tuple[str, ...]) -> None:
        for name in fields:
            if name in signal.extract.model_fields_set:
                self.error(
                    f"{loc}.extract.{name}",
                    f"not allowed for method '{signal.extract.method}'",
                )

    def _pattern(self, signal: Signal, loc: str) -> None:
        extract = signal.extract
        self._not_for_method(signal, loc, ("stat", "prompt", "model"))
        if (extract.patterns is None) == (extract.needle is None):
            self.error(
                f"{loc}.extract",
                "pattern signals need exactly one of 'patterns' (boolean) or 'needle' (number)",
            )
            return
        if extract.patterns is not None:
            if signal.type != "boolean":
                self.error(f"{loc}.type", "must be 'boolean' with 'patterns' (any pattern found)")
            if not extract.patterns:
                self.error(f"{loc}.extract.patterns", "must list at least one pattern")
            for i, pattern in enumerate(extract.patterns):
                self._regex(
                    pattern.regex, extract.ignore_case, f"{loc}.extract.patterns[{i}].regex"
                )
        else:
            assert extract.needle is not None
            if signal.type != "number":
                self.error(f"{loc}.type", "must be 'number' with 'needle' (a count of matches)")
            self._regex(extract.needle, extract.ignore_case, f"{loc}.extract.needle")

    def _regex(self, regex: str, ignore_case: bool, loc: str) -> None:
        try:
            compile_regex(regex, ignore_case)
        except RegexError as error:
            self.error(loc, str(error))

    def _stats(self, signal: Signal, loc: str) -> None:
        self._not_for_method(signal, loc, ("patterns", "needle", "ignore_case", "prompt", "model"))
        stat = signal.extract.stat
        if signal.scope != "run":
            self.error(f"{loc}.scope", "stats signals are run-scoped only")
        if stat is None:
            self.error(f"{loc}.extract.stat", "required for method 'stats'")
            return
        wanted = "category" if stat in STAT_CATEGORIES else "number"
        if signal.type != wanted:
            self.error(f"{loc}.type", f"must be '{wanted}' for stat '{stat}'")

    def _llm(self, signal: Signal, loc: str) -> None:
        self._not_for_method(signal, loc, ("patterns", "needle", "ignore_case", "stat"))
        if signal.extract.prompt is None:
            self.error(f"{loc}.extract.prompt", "required for method 'llm'")
        elif not signal.extract.prompt.strip():
            self.error(f"{loc}.extract.prompt", "must not be empty")
        if signal.type == "number":
            self.error(f"{loc}.type", "llm signals are 'boolean' or 'category'")
        if signal.judge_model not in JUDGE_MODELS:
            self.warnings.append(
                Problem(
                    f"{loc}.extract.model",
                    f"unsupported judge model {signal.judge_model!r}: it will fail at extraction "
                    f"(supported: {', '.join(JUDGE_MODELS)})",
                )
            )

    # -- aggregates (§4.2) ----------------------------------------------------------------

    def _aggregate(
        self, raw: Any, loc: str, signals: Mapping[str, Signal], known: set[Any]
    ) -> Aggregate | None:
        aggregate: Aggregate | None
        aggregate, stood_in = self._parse(Aggregate, raw, loc)
        if aggregate is None:
            return None
        before = len(self.errors)
        if not KEBAB_CASE.match(aggregate.id):
            self.error(f"{loc}.id", f"must be kebab-case like 'avg-tokens' (got {aggregate.id!r})")
        if not aggregate.label.strip():
            self.error(f"{loc}.label", "must not be empty")
        signal = signals.get(aggregate.signal_id)
        if aggregate.signal_id not in known:
            self.error(f"{loc}.signal_id", f"unknown signal {aggregate.signal_id!r}")
        self._aggregate_options(aggregate, loc, signal, signals, known)
        self._drop_stand_in_problems(before)
        return aggregate if len(self.errors) == before and not stood_in else None

    def _aggregate_options(
        self,
        aggregate: Aggregate,
        loc: str,
        signal: Signal | None,
        signals: Mapping[str, Signal],
        known: set[Any],
    ) -> None:
        fn = aggregate.fn
        for option, owner in (
            ("where", "count_where"),
            ("by", "avg_by_category"),
            ("bins", "distribution"),
        ):
            if getattr(aggregate, option) is not None and fn != owner:
                self.error(f"{loc}.{option}", f"only allowed with fn '{owner}'")
        if (
            signal is not None
            and fn in NUMERIC_AGGREGATES
            and signal.value_kind in {"category", "histogram"}
        ):
            self.error(
                f"{loc}.fn",
                f"'{fn}' needs numbers but signal {signal.id!r} gives "
                f"{'categories' if signal.value_kind == 'category' else 'histograms'}",
            )
        if fn == "count_where":
            self._where(aggregate, loc, signal)
        if fn == "avg_by_category":
            self._by(aggregate, loc, signals, known)
        if fn == "distribution" and aggregate.bins is not None and not 1 <= aggregate.bins <= 1000:
            self.error(f"{loc}.bins", f"must be between 1 and 1000 (got {aggregate.bins})")

    def _where(self, aggregate: Aggregate, loc: str, signal: Signal | None) -> None:
        if aggregate.where is None:
            self.error(f"{loc}.where", "required for fn 'count_where'")
            return
        operators = aggregate.where.operators
        if len(operators) != 1:
            self.error(
                f"{loc}.where",
                f"needs exactly one operator of {', '.join(WHERE_OPERATORS)} "
                f"(got {len(operators)})",
            )
            return
        name, operand = operators[0]
        if operand is None:
            self.error(f"{loc}.where.{name}", "needs a value")
            return
        if signal is None or signal.value_kind != "category":
            return
        values = operand if name == "in" else [operand]
        for value in values:
            if value not in signal.categories:
                self.error(
                    f"{loc}.where.{name}",
                    f"{value!r} is not a category of signal {signal.id!r} "
                    f"({', '.join(signal.categories)})",
                )

    def _by(
        self, aggregate: Aggregate, loc: str, signals: Mapping[str, Signal], known: set[Any]
    ) -> None:
        if aggregate.by is None:
            self.error(
                f"{loc}.by", "required for fn 'avg_by_category': the id of a category signal"
            )
            return
        by = signals.get(aggregate.by)
        if aggregate.by not in known:
            self.error(f"{loc}.by", f"unknown signal {aggregate.by!r}")
        elif by is not None and by.value_kind != "category":
            self.error(f"{loc}.by", f"signal {aggregate.by!r} is not a run-level category signal")


# A document nests at most this deep, and its aliases repeat at most this many values in
# all: a hostile file can exhaust neither the stack nor, once expanded (as JSON, say), memory.
MAX_YAML_DEPTH = 100
MAX_ALIASED_VALUES = 100_000


class _StrictComposer(yaml.composer.Composer):
    """A composer that refuses documents nested deeper than MAX_YAML_DEPTH, and alias bombs
    (aliases that would repeat more than MAX_ALIASED_VALUES values once expanded)."""

    # The event parser's, beside this composer in the loader.
    check_event: Callable[..., bool]
    peek_event: Callable[[], Any]

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self.aliased = 0  # values that aliases repeated so far
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            anchored = self.anchors.get(event.anchor)
            if anchored is not None:
                self.aliased += self._size(anchored)
                if self.aliased > MAX_ALIASED_VALUES:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"aliases repeat more than {MAX_ALIASED_VALUES} values "
                        "(refused as an alias bomb)",
                        event.start_mark,
                    )
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _size(self, root: yaml.Node) -> int:
        """How many values `root` stands for, aliases expanded (memoised: composed nodes are
        shared, never copied, so this stays linear in the text)."""
        pending = [(root, False)]
        while pending:
            node, children_done = pending.pop()
            if id(node) in self._sizes:
                continue
            children = _children(node)
            if children_done or not children:
                self._sizes[id(node)] = 1 + sum(self._sizes[id(c)] for c in children)
            else:
                pending.append((node, True))
                pending.extend((c, False) for c in children if id(c) not in self._sizes)
        return self._sizes[id(root)]


try:
    from yaml._yaml import CParser as _EventParser
except ImportError:  # a PyYAML built without libyaml: its own parser, five times slower

    class _EventParser(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _StrictLoader(_StrictComposer, _EventParser, yaml.constructor.SafeConstructor, Resolver):
    """A safe loader that also refuses duplicate keys (which YAML forbids and PyYAML silently
    merges), deep nesting and alias bombs (`_StrictComposer`).

    The events come from libyaml's parser (`CParser`), which is five times faster than
    PyYAML's pure-Python one (1.2 against 6.3 ms for `examples/signals.yaml`: every creation and
    trigger parses a config); the nodes are composed in Python, where the checks live, since
    libyaml's own composer could not be checked."""

    def __init__(self, stream: str) -> None:
        _EventParser.__init__(self, stream)
        _StrictComposer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, Hashable) and key in seen:
            line = key_node.start_mark.line + 1
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} on line {line} (first on line {seen[key]})",
                key_node.start_mark,
            )
        if isinstance(key, Hashable):
            seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(  # type: ignore[type-var]  # the stubs know only yaml's loaders
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


# libyaml stops nesting at 1,000 levels itself, before the composer's own limit can.
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _yaml_reason(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = error.problem or str(error)
        if problem == _LIBYAML_TOO_DEEP:
            problem = f"nested deeper than {MAX_YAML_DEPTH} levels"
        return f"{where}{problem}"
    return str(error)


__all__ = [
    "InvalidSignalConfig",
    "SignalConfigSyntaxError",
    "ValidationReport",
    "content_hash",
    "load_signal_config",
    "parse_yaml",
    "validate_signal_config",
]
