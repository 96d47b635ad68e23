"""Extraction throughput against a bare regex loop over the same text, in the same run.

    .venv/bin/python benchmarks/extract.py            # 2,000 transcripts, ~50 MB
    .venv/bin/python benchmarks/extract.py --runs 200 # a quick look

The pipeline measured is what a worker does per run: parse the JSON transcript, derive its
stats, extract every signal (the seed config plus ten pattern signals) with evidence, and
finally aggregate. The baseline is the floor any extractor pays: the same compiled RE2
patterns searched over exactly the texts extraction scans, pre-rendered as bytes, with
nothing else. The ratio is baseline time / pipeline time (1.0 = no overhead at all).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain.signals.aggregates import RunValues, compute_aggregates  # noqa: E402
from domain.signals.config import Signal, SignalConfig  # noqa: E402
from domain.signals.extraction import Extractor  # noqa: E402
from domain.signals.matching import compile_regex  # noqa: E402
from domain.signals.validation import validate_signal_config  # noqa: E402
from domain.sources import message_text, source_text  # noqa: E402
from domain.stats import derive_stats  # noqa: E402
from domain.transcripts import Transcript, parse_transcript  # noqa: E402
from infra.llm.prices import MODEL_PRICES  # noqa: E402

WORDS = [
    "the",
    "a",
    "to",
    "install",
    "client",
    "customer",
    "create",
    "api",
    "key",
    "token",
    "docs",
    "page",
    "endpoint",
    "request",
    "response",
    "error",
    "retry",
    "webhook",
    "payment",
    "refund",
    "sdk",
    "python",
    "module",
    "import",
    "function",
    "call",
    "returns",
    "value",
    "field",
    "object",
    "list",
    "page",
    "limit",
    "cursor",
    "timeout",
    "header",
    "json",
    "status",
    "ok",
    "authentication",
    "signature",
    "verify",
    "secret",
    "environment",
    "variable",
    "config",
    "file",
    "path",
]
TOOLS = ("shell", "search_docs", "read_doc", "write_file")

TEN_PATTERN_SIGNALS: list[dict[str, Any]] = [
    {
        "id": "auth-errors",
        "name": "Auth errors",
        "type": "boolean",
        "source": "toolResults",
        "extract": {
            "method": "pattern",
            "ignore_case": True,
            "patterns": [{"name": "401", "regex": r"\b401\b|unauthorized|forbidden"}],
        },
    },
    {
        "id": "not-found",
        "name": "404s",
        "type": "number",
        "source": "toolResults",
        "extract": {"method": "pattern", "needle": r"404 Not Found"},
    },
    {
        "id": "tracebacks",
        "name": "Tracebacks",
        "type": "number",
        "scope": "message",
        "target_role": "tool",
        "fold": {"fn": "sum"},
        "extract": {"method": "pattern", "needle": r"Traceback \(most recent call last\)"},
    },
    {
        "id": "pip-installs",
        "name": "pip installs",
        "type": "number",
        "source": "toolCalls",
        "extract": {"method": "pattern", "needle": r"pip3? install [\w\-\.=]+"},
    },
    {
        "id": "secrets-in-code",
        "name": "Secrets in code",
        "type": "boolean",
        "source": "codeText",
        "extract": {
            "method": "pattern",
            "patterns": [
                {"name": "key", "regex": r"sk_(live|test)_[A-Za-z0-9]{8,}"},
                {"name": "bearer", "regex": r"Bearer [A-Za-z0-9\-_\.]{20,}"},
            ],
        },
    },
    {
        "id": "apology",
        "name": "Apologies",
        "type": "boolean",
        "scope": "message",
        "target_role": "assistant",
        "fold": {"fn": "count"},
        "extract": {
            "method": "pattern",
            "ignore_case": True,
            "patterns": [{"name": "sorry", "regex": r"i apologi[sz]e|sorry"}],
        },
    },
    {
        "id": "docs-links",
        "name": "Docs links",
        "type": "number",
        "source": "assistantText",
        "extract": {"method": "pattern", "needle": r"https://docs\.acme\.com/[a-z0-9/\-]+"},
    },
    {
        "id": "gave-up-words",
        "name": "Give-up words",
        "type": "boolean",
        "source": "finalAnswer",
        "extract": {
            "method": "pattern",
            "ignore_case": True,
            "patterns": [{"name": "cannot", "regex": r"\b(cannot|can't|unable to)\b"}],
        },
    },
    {
        "id": "retries",
        "name": "Retries",
        "type": "number",
        "scope": "message",
        "target_role": "assistant",
        "fold": {"fn": "histogram"},
        "extract": {"method": "pattern", "ignore_case": True, "needle": r"\bretry(ing)?\b"},
    },
    {
        "id": "http-status",
        "name": "HTTP statuses",
        "type": "number",
        "source": "any",
        "extract": {"method": "pattern", "needle": r"HTTP/1\.[01] [1-5]\d\d"},
    },
]


def benchmark_config() -> SignalConfig:
    seed = yaml.safe_load((ROOT / "examples" / "seed-signals.yaml").read_text())
    seed["signals"].extend(TEN_PATTERN_SIGNALS)
    return validate_signal_config(seed).require_valid()


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _spice(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            "",
            "",
            "",
            "HTTP/1.1 401 Unauthorized",
            "HTTP/1.1 404 Not Found",
            "see https://docs.acme.com/quickstart/python",
            "POST https://api.acme.com/v2/customers",
            'Traceback (most recent call last):\n  File "x.py", line 3',
            "Sorry, retrying now.",
            "pip install acme-payments==2.1",
            "Bearer abcdefghijklmnopqrstuvwxyz012345",
        ]
    )


def generate_transcript(rng: random.Random, index: int, target_bytes: int) -> bytes:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a developer trying the Acme SDK."},
        {"role": "user", "content": f"Task {index}: " + _sentence(rng, 20)},
    ]
    size = 0
    call = 0
    while size < target_bytes:
        call += 1
        text = f"{_sentence(rng, rng.randint(20, 80))} {_spice(rng)}"
        if rng.random() < 0.3:
            text += f"\n```python\nimport acme\nclient = acme.Client('{_spice(rng)}')\n```\n"
        blocks: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if rng.random() < 0.4:
            blocks.insert(0, {"type": "thinking", "thinking": _sentence(rng, rng.randint(10, 60))})
        tool = rng.choice(TOOLS)
        blocks.append(
            {
                "type": "tool_call",
                "id": f"c{call}",
                "name": tool,
                "input": {"command": f"{_sentence(rng, 6)} {_spice(rng)}"},
            }
        )
        messages.append({"role": "assistant", "content": blocks})
        output = "\n".join(f"{_sentence(rng, 12)} {_spice(rng)}" for _ in range(rng.randint(3, 40)))
        messages.append(
            {
                "role": "tool",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_call_id": f"c{call}",
                        "content": output,
                        "is_error": rng.random() < 0.2,
                    }
                ],
            }
        )
        size += len(text) + len(output) + 120
    messages.append({"role": "assistant", "content": _sentence(rng, 30) + " " + _spice(rng)})
    status = rng.choice(["passed", "passed", "failed", "errored", "timed_out"])
    document = {
        "version": 1,
        "task_id": f"task_{index % 25}",
        "environment_id": f"env_{index % 4}",
        "status": status,
        "termination_reason": "completed",
        "started_at": "2026-11-21T10:00:00Z",
        "ended_at": "2026-11-21T10:01:30Z",
        "stats": {
            "token_in": rng.randint(1000, 50000),
            "token_out": rng.randint(100, 5000),
            "model": "claude-sonnet-4-5",
        },
        "messages": messages,
    }
    return json.dumps(document).encode("utf-8")


def generate_corpus(runs: int, total_mb: float, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    per_run = int(total_mb * 1_000_000 / runs)
    return [generate_transcript(rng, i, int(per_run * rng.uniform(0.7, 1.3))) for i in range(runs)]


def scanned_texts(signal: Signal, transcript: Transcript) -> list[bytes]:
    """Exactly the texts extraction matches a pattern signal against, as bytes."""
    if signal.scope == "message":
        return [
            message_text(m, signal.effective_source).encode("utf-8")
            for m in transcript.messages
            if m.role == signal.target_role
        ]
    return [source_text(transcript, signal.effective_source or "any").encode("utf-8")]


def bare_regex_loop(config: SignalConfig, transcripts: list[Transcript]) -> float:
    """Seconds to run each pattern signal's compiled regexes over its pre-rendered texts."""
    plan: list[tuple[list[Any], bool, list[bytes]]] = []
    for signal in config.signals:
        extract = signal.extract
        if extract.method != "pattern":
            continue
        regexes = [
            compile_regex(p.regex, extract.ignore_case) for p in (extract.patterns or [])
        ] or [compile_regex(extract.needle or "", extract.ignore_case)]
        for transcript in transcripts:
            plan.append((regexes, extract.needle is not None, scanned_texts(signal, transcript)))
    started = time.perf_counter()
    for regexes, counting, texts in plan:
        for data in texts:
            for regex in regexes:
                if counting:
                    sum(1 for _ in regex.finditer(data))
                elif regex.search(data) is not None:
                    break
    return time.perf_counter() - started


def pipeline(config: SignalConfig, corpus: list[bytes]) -> dict[str, float]:
    """Seconds per stage of the real pipeline: parse, extract, aggregate."""
    extractor = Extractor(config)
    parse = extract = 0.0
    rows: list[RunValues] = []
    for document in corpus:
        t0 = time.perf_counter()
        transcript = parse_transcript(document)
        t1 = time.perf_counter()
        values = extractor.extract(transcript, derive_stats(transcript, MODEL_PRICES))
        t2 = time.perf_counter()
        rows.append(
            RunValues(
                transcript.task_id or "",
                transcript.environment_id or "",
                {k: v.value for k, v in values.items()},
            )
        )
        parse += t1 - t0
        extract += t2 - t1
    t3 = time.perf_counter()
    compute_aggregates(config, rows)
    return {"parse": parse, "extract": extract, "aggregate": time.perf_counter() - t3}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--mb", type=float, default=50.0)
    args = parser.parse_args(argv)
    mb = args.mb if args.runs >= 2000 or args.mb != 50.0 else 50.0 * args.runs / 2000

    config = benchmark_config()
    corpus = generate_corpus(args.runs, mb)
    size_mb = sum(map(len, corpus)) / 1e6
    transcripts = [parse_transcript(d) for d in corpus]
    scanned_mb = (
        sum(
            len(t)
            for s in config.signals
            if s.extract.method == "pattern"
            for tr in transcripts
            for t in scanned_texts(s, tr)
        )
        / 1e6
    )
    baseline = bare_regex_loop(config, transcripts)
    stages = pipeline(config, corpus)
    total = sum(stages.values())
    pattern_signals = sum(s.extract.method == "pattern" for s in config.signals)
    print(
        f"corpus: {args.runs} transcripts, {size_mb:.1f} MB of JSON; {len(config.signals)} "
        f"signals ({pattern_signals} pattern); {scanned_mb:.1f} MB of text scanned by patterns"
    )
    print(f"bare regex loop : {baseline:6.2f} s  {scanned_mb / baseline:7.1f} MB/s scanned")
    print(
        f"pipeline        : {total:6.2f} s  {size_mb / total:7.1f} MB/s of transcripts  "
        f"{args.runs / total:7.0f} runs/s"
    )
    print(
        f"  parse {stages['parse']:.2f} s, extract {stages['extract']:.2f} s, "
        f"aggregate {stages['aggregate']:.3f} s"
    )
    print(f"ratio (bare loop time / pipeline time): {baseline / total:.2f}")
    return {"baseline": baseline, **stages, "ratio": baseline / total}


if __name__ == "__main__":
    main()
