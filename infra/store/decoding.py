"""Stored events to domain events, faster than eventsourcing's mapper and to the same objects.

The library parses each event's JSON with the `json` module and a Python hook called for every
object, only to turn `{"_type_": …, "_data_": …}` objects back into values; our events hold one
such object, their timestamp. Here the state is parsed by pydantic-core (Rust) and, when the
text shows no other `"_type_"` key (and no `\\u` escape that could spell one), only the
timestamp is converted. Anything else (another tagged value, a class to upcast, a parse this
cannot do, a store set up otherwise) takes the mapper's path, which also raises its own errors.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    DatetimeAsISO,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    find_id_convertor,
    pass_through_convertor,
)
from eventsourcing.utils import resolve_topic
from pydantic_core import from_json

# A row of the events table as the projections read it.
EventRow = tuple[int, Any, int, str, bytes]


class EventDecoder:
    """Decodes what `mapper` encoded; the fast road only for the setup it mirrors (zlib, no
    cipher, the JSON transcoder with the library's datetime transcoding)."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self._mapper = mapper
        transcoder = mapper.transcoder
        self._fast = (
            type(mapper) is Mapper
            # The store's transcoder checks what it encodes and decodes as the library's.
            and isinstance(transcoder, JSONTranscoder)
            and type(transcoder).decode is JSONTranscoder.decode
            and type(transcoder)._decode_obj is JSONTranscoder._decode_obj
            and type(transcoder.names.get(DatetimeAsISO.name)) is DatetimeAsISO
            and type(mapper.compressor) is ZlibCompressor
            and mapper.cipher is None
        )
        self._classes: dict[str, type] = {}
        self._plain: dict[type, bool] = {}
        self._wanted: dict[Callable[[type], bool], dict[type, bool]] = {}

    def decode(
        self, topic: str, originator_id: UUID | str, version: int, state: bytes
    ) -> DomainEventProtocol[Any]:
        """What `Mapper.to_domain_event` returns for this stored event."""
        if not isinstance(originator_id, UUID):  # the mapper converts it as the class says
            return self._mapped(topic, originator_id, version, state)
        event: DomainEventProtocol[Any] = self._decoded(
            self._class(topic), topic, originator_id, version, state
        )
        return event

    def decode_rows(
        self, rows: Iterable[EventRow], wanted: Callable[[type], bool] | None = None
    ) -> Iterator[tuple[Any, int]]:
        """(event, position) for each row (position, originator id, version, topic, state),
        decoded as iterated; rows of classes `wanted` refuses are skipped undecoded."""
        keep = self._wanted.setdefault(wanted, {}) if wanted is not None else None
        streams: dict[Any, UUID] = {}  # a run's events come together: parse its id once
        for position, originator_id, version, topic, state in rows:
            cls = self._classes.get(topic) or self._class(topic)
            if keep is not None:
                kept = keep.get(cls)
                if kept is None:
                    kept = keep[cls] = wanted(cls)  # type: ignore[misc]
                if not kept:
                    continue
            stream = streams.get(originator_id)
            if stream is None:
                stream = streams[originator_id] = (
                    originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
                )
            yield self._decoded(cls, topic, stream, version, state), position

    def _decoded(
        self, cls: type, topic: str, originator_id: UUID, version: int, state: bytes
    ) -> Any:
        event_state = self._state(state) if self._is_plain(cls) else None
        if event_state is None:
            return self._mapped(topic, originator_id, version, state)
        # As the mapper makes it (its id convertor passes a UUID through).
        event_state["originator_id"] = originator_id
        event_state["originator_version"] = version
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", event_state)
        return event

    def _mapped(
        self, topic: str, originator_id: UUID | str, version: int, state: bytes
    ) -> DomainEventProtocol[Any]:
        return self._mapper.to_domain_event(
            StoredEvent(originator_id, version, topic, bytes(state))
        )

    def _class(self, topic: str) -> type:
        cls = self._classes.get(topic)
        if cls is None:
            cls = self._classes[topic] = resolve_topic(topic)
        return cls

    def _is_plain(self, cls: type) -> bool:
        """Whether the mapper takes events of this class as stored: no upcasting, the
        originator id as it is. Others (and states naming a `class_version`) go through it."""
        plain = self._plain.get(cls)
        if plain is None:
            plain = self._plain[cls] = (
                getattr(cls, "class_version", 1) == 1
                and find_id_convertor(cls, UUID) is pass_through_convertor
            )
        return plain

    def _state(self, state: bytes) -> dict[str, Any] | None:
        """The event's state as the mapper decodes it, or None when only the mapper can say."""
        if not self._fast:
            return None
        try:
            text = zlib.decompress(state)
        except zlib.error:
            return None
        # `"_type_"` appears literally wherever the key is, unless an escape (\uXXXX) spells it.
        if b"\\u" in text:
            return None
        tagged = text.count(b'"_type_"')
        if tagged > 1:
            return None
        try:
            decoded = from_json(text)
        except ValueError:  # the mapper raises its own error, or parses what this cannot
            return None
        if type(decoded) is not dict or "class_version" in decoded:
            return None
        if tagged:
            # The one tagged object must be the timestamp, else the mapper decides.
            stamp = decoded.get("timestamp")
            if (
                type(stamp) is not dict
                or len(stamp) != 2
                or stamp.get("_type_") != DatetimeAsISO.name
                or type(data := stamp.get("_data_")) is not str
            ):
                return None
            try:
                decoded["timestamp"] = datetime.fromisoformat(data)
            except ValueError:  # the mapper reports it as it would
                return None
        return decoded
