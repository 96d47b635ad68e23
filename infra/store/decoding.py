"""Stored events to domain events, faster than eventsourcing's mapper and to the same objects.

The library parses each event's JSON with the `json` module and a Python hook called for every
object, only to turn `{"_type_": …, "_data_": …}` objects back into values; our events hold one
such object, their timestamp. Here the state is parsed by pydantic-core (Rust) and, when the
text shows no other `"_type_"` key (and no `\\u` escape that could spell one), only the
timestamp is converted. States of an older class version are upcast as the mapper does, and
typed payloads (`domain.event_payloads`) validated into their models, as `PayloadMapper` does.
Anything else (another tagged value, a parse this cannot do, a payload that does not validate,
a store set up otherwise) takes the mapper's path, which also raises its own errors.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
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

from domain.event_payloads import PayloadField, load_payload, payload_of
from infra.store.transcoding import PayloadMapper

# A row of the events table as the projections read it.
EventRow = tuple[int, Any, int, str, bytes]


class EventDecoder:
    """Decodes what `mapper` encoded; the fast road only for the setup it mirrors (zlib, no
    cipher, the JSON transcoder with the library's datetime transcoding)."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self._mapper = mapper
        transcoder = mapper.transcoder
        self._fast = (
            type(mapper) in (Mapper, PayloadMapper)
            # The store's transcoder checks what it encodes and decodes as the library's.
            and isinstance(transcoder, JSONTranscoder)
            and type(transcoder).decode is JSONTranscoder.decode
            and type(transcoder)._decode_obj is JSONTranscoder._decode_obj
            and type(transcoder.names.get(DatetimeAsISO.name)) is DatetimeAsISO
            and type(mapper.compressor) is ZlibCompressor
            and mapper.cipher is None
        )
        self._classes: dict[str, type] = {}
        self._decodings: dict[type, _ClassDecoding | None] = {}
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
        decoding = self._decoding(cls)
        event_state = self._state(state, decoding) if decoding is not None else None
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

    def _decoding(self, cls: type) -> _ClassDecoding | None:
        """How events of this class are decoded here; None when the mapper must (an originator
        id it converts)."""
        if cls not in self._decodings:
            self._decodings[cls] = (
                _ClassDecoding(cls, getattr(cls, "class_version", 1), payload_of(cls))
                if find_id_convertor(cls, UUID) is pass_through_convertor
                else None
            )
        return self._decodings[cls]

    def _state(self, state: bytes, decoding: _ClassDecoding) -> dict[str, Any] | None:
        """The event's state as the mapper decodes it, or None when only the mapper can say."""
        decoded = self._parsed(state) if self._fast else None
        if decoded is None:
            return None
        upcast = "class_version" in decoded or decoding.class_version != 1
        if upcast and not decoding.upcast(decoded):
            return None
        if decoding.payload is not None:
            try:
                load_payload(decoding.payload, decoded)
            except (ValueError, TypeError, KeyError):  # the mapper reports it
                return None
        return decoded

    @staticmethod
    def _parsed(state: bytes) -> dict[str, Any] | None:
        """The stored JSON with its timestamp converted, when that is its only tagged value."""
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
        if type(decoded) is not dict:
            return None
        if tagged and not _convert_timestamp(decoded):
            return None
        return decoded


def _convert_timestamp(decoded: dict[str, Any]) -> bool:
    """Turn the one tagged object, the timestamp, into a datetime; False when it is not that
    (the mapper decides then)."""
    stamp = decoded.get("timestamp")
    if (
        type(stamp) is not dict
        or len(stamp) != 2
        or stamp.get("_type_") != DatetimeAsISO.name
        or type(data := stamp.get("_data_")) is not str
    ):
        return False
    try:
        decoded["timestamp"] = datetime.fromisoformat(data)
    except ValueError:  # the mapper reports it as it would
        return False
    return True


class _ClassDecoding:
    """What decoding an event class's state takes beyond parsing: upcasting from older class
    versions (the class's `upcast_vN_vN+1`, as the mapper calls them) and typed payloads."""

    __slots__ = ("class_version", "cls", "payload")

    def __init__(
        self, cls: type, class_version: int, payload: Mapping[str, PayloadField] | None
    ) -> None:
        self.cls = cls
        self.class_version = class_version
        self.payload = payload

    def upcast(self, state: dict[str, Any]) -> bool:
        """Upcast `state` to the class's version in place; False when it cannot be here (a
        version from the future, or not an int), which the mapper then reports."""
        stored = state.pop("class_version", 1)
        if type(stored) is not int or stored > self.class_version:
            return False
        while stored < self.class_version:
            getattr(self.cls, f"upcast_v{stored}_v{stored + 1}")(state)
            stored += 1
        return True
