"""The judge port: how llm signals are answered without the domain doing any I/O.

Extraction first lists the questions a transcript raises (`JudgeRequest`), an adapter in
`infra/llm/` answers them, and extraction turns the answers (`JudgeVerdict`) into values with
evidence. Answers are recorded as events, so replaying the log never calls a model again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

# A request is identified by its signal and, for message-scoped signals, the message index.
JudgeKey = tuple[str, int | None]


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    signal_id: str
    event: int | None
    model: str
    prompt: str
    text: str
    answer: Literal["boolean", "category"]
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> JudgeKey:
        return self.signal_id, self.event

    @property
    def cache_key(self) -> str:
        """Identical questions over identical text are asked once (model, prompt, text hash)."""
        digest = hashlib.sha256()
        for part in (self.model, self.prompt, self.answer, "\x1f".join(self.categories), self.text):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class JudgeVerdict:
    """A judge's answer: a boolean or a category, with the excerpt it cites; or an error."""

    value: bool | str | None
    excerpt: str = ""
    error: str | None = None


class Judge(Protocol):
    async def judge(self, requests: Sequence[JudgeRequest]) -> Mapping[JudgeKey, JudgeVerdict]:
        """Answer every request; failures come back as verdicts with an `error`."""
        ...
