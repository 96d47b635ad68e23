"""The event store's mapper and transcoder. The mapper stores typed payloads as plain JSON
(`PayloadMapper`). The transcoder is eventsourcing's JSON transcoder that refuses text a store
cannot keep (`domain.safe_text`), so every save is checked however it was reached.

The check rides on the encoding every save does anyway: a NUL character is always escaped in
JSON (`\\u0000`), so one substring search of the encoded text finds it; a lone surrogate cannot
be encoded as UTF-8 at all, so the encoding itself fails on it. Only then is the event's state
walked, to name where each bad string is (a literal backslash before `u0000` is a false alarm
that this walk clears).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
)
from eventsourcing.utils import get_topic

from domain.errors import InvalidInput
from domain.event_payloads import dump_payload, load_payload, payload_of
from domain.safe_text import unsafe_text_problems

_ESCAPED_NUL = "\\u0000"


class SafeTextTranscoder(JSONTranscoder):
    """Encodes an event's state, or raises `InvalidInput` naming each string no store can hold
    (located in the event's payload, e.g. `definition.name`)."""

    def encode(self, obj: Any) -> bytes:
        text = self.encoder.encode(obj)
        try:
            encoded = text.encode("utf8")
        except UnicodeEncodeError:
            _refuse(obj)
            raise
        if _ESCAPED_NUL in text:
            _refuse(obj)
        return encoded


def _refuse(state: Any) -> None:
    problems = unsafe_text_problems(state)
    if problems:
        summary = "; ".join(f"{loc}: {message}" for loc, message in problems[:3])
        raise InvalidInput(f"text that cannot be stored: {summary}", tuple(problems))


class PayloadMapper(Mapper[UUID]):
    """eventsourcing's mapper, for events with typed payloads (`domain.event_payloads`): their
    models are stored as plain JSON and validated back into models once a state is read (and
    upcast from an older class version)."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        fields = payload_of(type(domain_event))
        if fields is None:
            return super().to_stored_event(domain_event)
        # As the library's mapper does, with the typed fields dumped first.
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        dump_payload(fields, state)
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        stored = self.transcoder.encode(state)
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=stored,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        domain_event = super().to_domain_event(stored_event)
        fields = payload_of(type(domain_event))
        if fields is not None:
            try:
                load_payload(fields, vars(domain_event))
            except (ValueError, TypeError, KeyError) as error:
                raise MapperDeserialisationError(
                    f"Failed to validate the payload of stored event with topic "
                    f"'{stored_event.topic}', originator_id '{stored_event.originator_id}' "
                    f"and originator_version {stored_event.originator_version}: {error}"
                ) from error
        return domain_event
