"""`inspect-log`: Inspect AI eval logs, `./logs/*.eval` (a zip archive) or `*.json`.

An `.eval` archive holds `header.json` (the eval: task, model, results, stats) and one
`samples/<id>_epoch_<n>.json` per sample and epoch; a `.json` log is one document with the
header's fields and a `samples` array. Every sample becomes a transcript, named
`<id>_epoch_<n>` as Inspect names its files, with its scores (value, answer, explanation),
target, sample metadata and the eval's task and model kept as metadata.

Large texts Inspect stores once per sample (`attachment://<hash>`, in `attachments`) are
resolved. Messages: `system`, `user` (text; images and other media as a marker), `assistant` (text,
`reasoning` content -> thinking, `tool_calls` with their `function` and `arguments`), `tool`
(its `error` makes the result an error). Tokens sum the sample's `model_usage` (cache reads
and writes counted as input read); the model is the eval's without its provider prefix
(`openai/gpt-4o` -> `gpt-4o`, so prices apply). A sample's `error` is the agent's error; a
`limit` it hit is its termination reason (`message`/`token` -> max_steps, `time`/`working` ->
timeout, `cost` -> budget_exceeded).
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from domain.transcript_formats.parsing import (
    Node,
    ParsedOutput,
    Sample,
    TranscriptFormatError,
    decode_json,
    decode_text,
    iso_time,
    message,
    stats,
)
from domain.transcripts import Message, Transcript
from domain.vocabulary import TerminationReason

NAME = "inspect-log"
ZIP_MAGIC = b"PK\x03\x04"
_LIMITS: dict[str, TerminationReason] = {
    "message": "max_steps",
    "token": "max_steps",
    "time": "timeout",
    "working": "timeout",
    "cost": "budget_exceeded",
}
_ATTACHMENT = "attachment://"
_MEDIA = {"image": "[image]", "audio": "[audio]", "video": "[video]", "document": "[document]"}


def read_inspect_log(file_name: str, data: bytes) -> list[Sample]:
    if data.startswith(ZIP_MAGIC):
        header, samples = _eval_archive(file_name, data)
    else:
        header = decode_json(decode_text(data, NAME), NAME)
        if not header.get("eval").has("task") and not header.get("eval").has("model"):
            header.fail(
                "expected an Inspect eval log (an object with `eval`, `samples`, `results`)"
            )
        samples = list(header.get("samples").items()) if header.has("samples") else []
    if not samples:
        header.fail("the log has no samples (was the eval run with --no-log-samples?)")
    return [_sample(header, sample) for sample in samples]


def _eval_archive(file_name: str, data: bytes) -> tuple[Node, list[Node]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        problem = f"not a readable .eval archive ({error})"
        raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),)) from None
    with archive:
        names = archive.namelist()
        header_name = next((n for n in ("header.json", "_journal/start.json") if n in names), None)
        if header_name is None:
            problem = "a zip archive without header.json: not an Inspect .eval log"
            raise TranscriptFormatError(f"{NAME}: {problem}", (("", problem),))
        header = _member(archive, header_name)
        samples = [
            _member(archive, name)
            for name in sorted(names, key=_sample_order)
            if name.startswith("samples/") and name.endswith(".json")
        ]
    return header, samples


def _member(archive: zipfile.ZipFile, name: str) -> Node:
    return decode_json(decode_text(archive.read(name), f"{NAME} {name}"), f"{NAME} {name}")


def _sample_order(name: str) -> tuple[str, int]:
    # `<id>_epoch_<n>.json`: each sample's epochs in numeric order, as a `.json` log lists them.
    stem, _, epoch = name.removesuffix(".json").rpartition("_epoch_")
    return (stem, int(epoch)) if epoch.isdigit() else (name, 0)


def _sample(header: Node, sample: Node) -> Sample:
    sample = _with_attachments(sample)
    eval_spec = header.get("eval")
    sample_id = sample.get("id").value
    epoch = sample.get("epoch").opt_int() or 1
    messages = [item for node in sample.get("messages").items() for item in _message(node)]
    model = _model(sample, eval_spec)
    token_in, token_out = _tokens(sample)
    reason: TerminationReason | None = "completed"
    error: str | None = None
    if sample.has("error"):
        reason = "error"
        error = sample.get("error").get("message").opt_text() or "the sample failed"
    elif sample.has("limit"):
        kind = sample.get("limit").get("type").opt_text() or ""
        reason = _LIMITS.get(kind, "max_steps")
    completion = sample.path("output", "completion").value
    transcript = Transcript(
        messages=messages,
        stats=stats(
            model=model,
            token_in=token_in,
            token_out=token_out,
            duration=sample.get("total_time").opt_number(),
        ),
        final_answer=completion if isinstance(completion, str) and completion else None,
        termination_reason=reason,
        started_at=iso_time(sample.get("started_at").value),
        ended_at=iso_time(sample.get("completed_at").value),
    )
    metadata = {
        "sample_id": sample_id,
        "epoch": epoch,
        "task": eval_spec.get("task").value,
        "model": eval_spec.get("model").value,
        "scores": _scores(sample),
        "target": sample.get("target").value,
        "sample_metadata": sample.get("metadata").value or {},
        "eval_id": eval_spec.get("eval_id").value,
        "run_id": eval_spec.get("run_id").value,
    }
    plain = json.loads(json.dumps(metadata, default=str))
    return Sample(f"{sample_id}_epoch_{epoch}", ParsedOutput(transcript, error), plain)


def _with_attachments(sample: Node) -> Node:
    """The sample with Inspect's `attachment://<hash>` references (large texts it stores once,
    in the sample's `attachments`) replaced by their text."""
    attachments = sample.get("attachments").value
    if not isinstance(attachments, dict) or not attachments:
        return sample

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_ATTACHMENT):
            found = attachments.get(value.removeprefix(_ATTACHMENT))
            return found if isinstance(found, str) else value
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        return value

    data = dict(sample.obj())
    for key in ("messages", "output"):
        data[key] = resolve(data.get(key))
    return Node(data, sample.where, sample.loc)


def _message(node: Node) -> list[Message]:
    role = node.get("role").text()
    if role in ("system", "user"):
        return [message(role, [_text(node.get("content"))], node)]
    if role == "assistant":
        blocks = _assistant_content(node)
        if node.has("tool_calls"):
            for call in node.get("tool_calls").items():
                blocks.append(
                    {
                        "type": "tool_call",
                        "id": call.get("id").opt_text(),
                        "name": call.get("function").text(),
                        "input": call.get("arguments").value or {},
                    }
                )
        return [message("assistant", blocks, node)]
    if role == "tool":
        content = _text(node.get("content"))
        failed = node.has("error")
        if failed and not content:
            content = node.get("error").get("message").opt_text() or "the tool call failed"
        result = {
            "type": "tool_result",
            "tool_call_id": node.get("tool_call_id").opt_text(),
            "content": content,
            "is_error": failed,
        }
        return [message("tool", [result], node)]
    node.get("role").fail(f"unknown role {role!r} (expected system, user, assistant or tool)")


def _assistant_content(node: Node) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    legacy = node.get("reasoning").value  # before reasoning became a content part
    if isinstance(legacy, str) and legacy:
        blocks.append({"type": "thinking", "thinking": legacy})
    content = node.get("content")
    if isinstance(content.value, str):
        if content.value:
            blocks.append({"type": "text", "text": content.value})
        return blocks
    for part in content.items() if content.value is not None else iter(()):
        kind = part.get("type").text()
        if kind == "reasoning":
            redacted = part.get("redacted").flag()
            text = part.get("reasoning").opt_text() or ""
            blocks.append(
                {"type": "thinking", "thinking": "[redacted reasoning]" if redacted else text}
            )
        elif kind == "text":
            blocks.append({"type": "text", "text": part.get("text").text()})
        else:
            blocks.append({"type": "text", "text": _MEDIA.get(kind, f"[{kind}]")})
    return blocks


def _text(content: Node) -> str:
    if content.value is None:
        return ""
    if isinstance(content.value, str):
        return content.value
    parts: list[str] = []
    for part in content.items():
        kind = part.get("type").text()
        if kind == "text":
            parts.append(part.get("text").text())
        elif kind == "reasoning":
            continue
        else:
            parts.append(_MEDIA.get(kind, f"[{kind}]"))
    return "\n".join(parts)


def _model(sample: Node, eval_spec: Node) -> str | None:
    name = sample.path("output", "model").opt_text() or eval_spec.get("model").opt_text()
    return name.rpartition("/")[2] if name else None


def _tokens(sample: Node) -> tuple[int | None, int | None]:
    if not sample.has("model_usage"):
        usage = sample.path("output", "usage")
        if usage.value is None:
            return None, None
        return _usage_in(usage), usage.get("output_tokens").opt_int()
    token_in = token_out = 0
    for name in sample.get("model_usage").obj():
        usage = sample.get("model_usage").get(name)
        token_in += _usage_in(usage) or 0
        token_out += usage.get("output_tokens").opt_int() or 0
    return token_in, token_out


def _usage_in(usage: Node) -> int | None:
    uncached = usage.get("input_tokens").opt_int()
    if uncached is None:
        return None
    read = usage.get("input_tokens_cache_read").opt_int() or 0
    written = usage.get("input_tokens_cache_write").opt_int() or 0
    return uncached + read + written


def _scores(sample: Node) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    if sample.has("scores"):
        for name, score in sample.get("scores").obj().items():
            if isinstance(score, dict):
                scores[name] = {
                    key: score.get(key)
                    for key in ("value", "answer", "explanation")
                    if score.get(key) is not None
                }
    elif sample.has("score"):  # logs from before `scores`
        score = sample.get("score").obj()
        scores["score"] = {k: score.get(k) for k in ("value", "answer", "explanation")}
    return scores
