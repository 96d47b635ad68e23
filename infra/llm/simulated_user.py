"""The simulated user of multi-turn tasks (docs/spec.md §6.1, `task.user`): after the agent ends its
turn, a model playing the task's persona writes the user's next message, or answers `DONE` when
the user is satisfied.

The persona model sees only what a user would see: the user's own messages and the agent's
text, never its tool calls. It gets the conversation as one document rather than as chat turns,
so that provider rules on alternating roles never get in the way.
"""

from __future__ import annotations

from collections.abc import Sequence

from infra.llm.chat import ChatClient, ChatMessage, ChatRequest, Meter

DONE = "DONE"
SYSTEM = (
    "You play a user of a developer product who has asked an AI assistant for help. Stay in "
    "character as this user:\n\n{persona}\n\n"
    "Write only the user's next message to the assistant: in the first person, short, the way "
    "this user would write it. Do not do the assistant's work. When the assistant has done what "
    f"you asked and you have nothing more to ask, answer with exactly {DONE}."
)


class SimulatedUser:
    """One run's simulated user (it keeps the run's tokens and cost in `meter`)."""

    def __init__(
        self,
        client: ChatClient,
        model: str,
        persona: str,
        meter: Meter,
        *,
        max_tokens: int = 1024,
    ) -> None:
        self._client = client
        self._model = model
        self._persona = persona
        self._max_tokens = max_tokens
        self.meter = meter

    async def reply(self, conversation: Sequence[tuple[str, str]]) -> str | None:
        """The user's next message given the conversation so far (`("user" | "assistant",
        text)` pairs, oldest first), or None when the user is done. Raises `ProviderError`."""
        lines = [
            f"[{'you' if who == 'user' else 'assistant'}]\n{text}" for who, text in conversation
        ]
        document = (
            "The conversation so far:\n\n"
            + "\n\n".join(lines)
            + f"\n\nWrite your next message to the assistant, or {DONE}."
        )
        response = await self._client.chat(
            ChatRequest(
                model=self._model,
                system=SYSTEM.format(persona=self._persona.strip()),
                messages=[ChatMessage.user(document)],
                max_tokens=self._max_tokens,
            )
        )
        self.meter.add(self._model, response.usage)
        text = response.text.strip()
        return None if is_done(text) else text


def is_done(text: str) -> bool:
    """`DONE`, give or take quotes, punctuation and case; an empty answer ends the talk too."""
    return text.strip().strip("\"'`*.!").upper() == DONE or not text.strip()
