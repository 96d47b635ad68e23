"""Writing events the way an older tpc did, around today's save guard: text that a store cannot
hold (a NUL character, a lone surrogate) reaches the event table, as it did before the guard."""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    UUIDAsHex,
)

from infra.store.events import EventStore
from infra.store.transcoding import PayloadMapper


class _AsciiTranscoder(JSONTranscoder):
    """The library's transcoder with `ensure_ascii`: a lone surrogate is written as an escape
    (`\\ud800`), which reads back as the lone surrogate."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = json.JSONEncoder(
            default=self._encode_obj, separators=(",", ":"), ensure_ascii=True
        )


def unguarded_mapper() -> Mapper[Any]:
    transcoder = _AsciiTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    return PayloadMapper(transcoder=transcoder, compressor=ZlibCompressor())


def save_around_the_guard(store: EventStore, *aggregates: Aggregate) -> list[int]:
    """Append the aggregates' pending events as an older version would have; their positions."""
    mapper = unguarded_mapper()
    events = [event for aggregate in aggregates for event in aggregate.collect_events()]
    positions = store.recorder.insert_events([mapper.to_stored_event(e) for e in events])
    assert positions is not None
    return list(positions)
