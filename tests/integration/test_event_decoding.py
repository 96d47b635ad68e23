"""The event store's decoder gives what eventsourcing's mapper gives, object for object: on the
golden log as stored, and on states built to push it off its fast road (other tagged values,
escapes, a `"_type_"` inside a string, a class version, odd numbers)."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from application.service import Service
from domain.runs import Run
from projections.views import handled
from tests.integration.test_stored_events_golden import load_golden_store

STAMP = {"_type_": "datetime_iso", "_data_": "2026-11-23T01:38:53.671566+00:00"}
MESSAGES_TOPIC = "tpc:Run.MessagesRecorded"


def messages_state(messages: list[Any], **extra: Any) -> dict[str, Any]:
    return {"timestamp": STAMP, "attempt": 1, "first": 0, "messages": messages, **extra}


ODD_STATES = [
    messages_state([{"role": "assistant", "content": 'a "_type_" key in a string'}]),
    messages_state([{"role": "assistant", "content": '{"_type_": "datetime_iso"}'}]),
    messages_state([STAMP]),  # a tagged value the mapper turns into a datetime
    messages_state([{"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00"}]),
    messages_state([{"_type_": "x", "_data_": 1, "more": 2}]),
    messages_state([{"role": "user", "content": "café \u2603 \U0001f600"}]),
    messages_state([{"n": 12345678901234567890123, "f": 1e-320, "g": 0.1, "e": 2.5e300}]),
    messages_state([], class_version=1),
    {"timestamp": {"_data_": STAMP["_data_"], "_type_": "datetime_iso"}, "attempt": 2},
]
# Texts json.dumps never writes: a tag spelled with an escape, spaces around the tokens.
ODD_TEXTS = [
    text.replace("WHEN", STAMP["_data_"])
    for text in (
        '{"timestamp":{"\\u005ftype_":"datetime_iso","_data_":"WHEN"},"attempt":3}',
        '{ "timestamp" : { "_type_" : "datetime_iso" , "_data_" : "WHEN" } , "attempt" : 4 }',
    )
]


@pytest.fixture
def golden_service(store_url: str) -> Iterator[Service]:
    service = load_golden_store(store_url)
    yield service
    service.close()


def same(event: Any, expected: Any) -> bool:
    return type(event) is type(expected) and vars(event) == vars(expected)


def stored(text: str) -> StoredEvent:
    return StoredEvent(uuid4(), 1, MESSAGES_TOPIC, zlib.compress(text.encode()))


def test_every_golden_event_decodes_as_the_mapper_decodes_it(golden_service: Service) -> None:
    store = golden_service.store
    notifications = list(store.notifications(0, 1000))
    expected = [store.mapper.to_domain_event(n) for n in notifications]
    assert all(same(store.to_event(n), e) for n, e in zip(notifications, expected, strict=True))
    with golden_service.database.write() as db:
        events, last = store.read_events(db, 0, 1000)
        decoded = list(events)
        wanted, _ = store.read_events(db, 0, 1000, handled)
        kept = [position for _, position in wanted]
    assert last == notifications[-1].id
    assert [position for _, position in decoded] == [n.id for n in notifications]
    assert all(same(e, m) for (e, _), m in zip(decoded, expected, strict=True))
    assert kept == [n.id for n, e in zip(notifications, expected, strict=True) if handled(type(e))]


def test_odd_states_decode_as_the_mapper_decodes_them(golden_service: Service) -> None:
    store = golden_service.store
    texts = [
        json.dumps(state, separators=(",", ":"), ensure_ascii=ascii_only)
        for state in ODD_STATES
        for ascii_only in (True, False)
    ]
    events = [stored(text) for text in texts + ODD_TEXTS]
    store.recorder.insert_events(events)
    notifications = list(store.notifications(0, 1000))[-len(events) :]
    assert isinstance(store.to_event(notifications[0]), Run.MessagesRecorded)
    with golden_service.database.write() as db:
        read, _ = store.read_events(db, notifications[0].id - 1, len(events))
        decoded = [event for event, _ in read]
    for notification, event in zip(notifications, decoded, strict=True):
        expected = store.mapper.to_domain_event(notification)
        assert same(store.to_event(notification), expected)
        assert same(event, expected)
