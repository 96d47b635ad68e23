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
from eventsourcing.persistence import MapperDeserialisationError, StoredEvent

from application.service import Service
from domain.clusters import Evidence, Place, RecordedCluster
from domain.iterations import Iteration
from domain.runs import RecordedStats, Run
from projections.views import handled
from tests.integration.test_stored_events_golden import GOLDEN_LOGS, load_golden_store

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


@pytest.fixture(params=sorted(GOLDEN_LOGS))
def golden_service(store_url: str, request: pytest.FixtureRequest) -> Iterator[Service]:
    service = load_golden_store(store_url, GOLDEN_LOGS[request.param])
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


def completed_state(**extra: Any) -> dict[str, Any]:
    stats = {"turns": 2, "token_total": 10, "judge_cost": 0.5}
    return {
        "timestamp": STAMP,
        "status": "passed",
        "termination_reason": "completed",
        "stats": stats,
        "transcript_ref": None,
        "error": None,
        **extra,
    }


TYPED_STATES = [
    completed_state(),  # version 1: upcast, then typed
    completed_state(class_version=2),
    completed_state(class_version=2, stats={"turns": 1, "when": STAMP}),  # a tagged stat
    completed_state(stats={}),
]


def test_typed_payloads_decode_as_the_mapper_decodes_them(golden_service: Service) -> None:
    store = golden_service.store
    events = [
        StoredEvent(uuid4(), 2, "tpc:Run.Completed", zlib.compress(json.dumps(state).encode()))
        for state in TYPED_STATES
    ]
    store.recorder.insert_events(events)
    notifications = list(store.notifications(0, 1000))[-len(events) :]
    with golden_service.database.write() as db:
        read, _ = store.read_events(db, notifications[0].id - 1, len(events))
        decoded = [event for event, _ in read]
    for notification, event in zip(notifications, decoded, strict=True):
        expected = store.mapper.to_domain_event(notification)
        assert isinstance(expected, Run.Completed)
        assert isinstance(expected.stats, RecordedStats)
        assert same(store.to_event(notification), expected)
        assert same(event, expected)
    assert decoded[0].stats.to_json() == {"turns": 2, "token_total": 10, "judge_cost": 0.5}
    assert decoded[0].stats.spent == {"judge_cost": 0.5}


def test_a_payload_that_does_not_validate_is_refused_on_either_road(
    golden_service: Service,
) -> None:
    store = golden_service.store
    state = completed_state(class_version=2, stats={"turns": "many"})
    event = StoredEvent(uuid4(), 2, "tpc:Run.Completed", zlib.compress(json.dumps(state).encode()))
    store.recorder.insert_events([event])
    [notification] = list(store.notifications(0, 1000))[-1:]
    with pytest.raises(MapperDeserialisationError, match="payload"):
        store.mapper.to_domain_event(notification)
    with pytest.raises(MapperDeserialisationError, match="payload"):
        store.to_event(notification)


# Clusters as version 1 stored them: before cause keys and places, then with them and a model's
# rewrite; version 2 stores the same JSON.
OLD_CLUSTER = {
    "id": "cl_1",
    "category": "Docs",
    "root_cause": {"area": "docs", "explanation": "a page is gone"},
    "recommended_fix": "restore it",
    "run_ids": ["run_1", "run_2"],
    "size": 2,
    "evidence": [{"run_id": "run_1", "event": None, "snippet": "404"}],
}
KEYED_CLUSTER = {
    "id": "cl_2",
    "key": "docs_page_missing",
    "category": "Missing docs pages",
    "root_cause": {"area": "docs", "explanation": "the quickstart links /old"},
    "recommended_fix": "redirect /old",
    "run_ids": ["run_3"],
    "size": 1,
    "places": [{"kind": "page", "name": "/old", "runs": 1}],
    "evidence": [{"run_id": "run_3", "event": 4, "snippet": "GET /old 404"}],
    "written_by": "claude-haiku-4-5",
}
SUGGESTION = {"fix": "restore it", "runs": 2, "cluster_ids": ["cl_1"], "area": "docs"}


def clusters_state(**extra: Any) -> dict[str, Any]:
    return {
        "timestamp": STAMP,
        "clusters": [OLD_CLUSTER, KEYED_CLUSTER],
        "suggestions": [SUGGESTION],
        **extra,
    }


def test_recorded_clusters_decode_typed_and_store_the_same_json(golden_service: Service) -> None:
    store = golden_service.store
    states = [clusters_state(), clusters_state(class_version=2)]
    events = [
        StoredEvent(
            uuid4(), 2, "tpc:Iteration.ClustersRecorded", zlib.compress(json.dumps(s).encode())
        )
        for s in states
    ]
    store.recorder.insert_events(events)
    notifications = list(store.notifications(0, 1000))[-len(events) :]
    with golden_service.database.write() as db:
        read, _ = store.read_events(db, notifications[0].id - 1, len(events))
        decoded = [event for event, _ in read]
    for notification, event in zip(notifications, decoded, strict=True):
        expected = store.mapper.to_domain_event(notification)
        assert isinstance(expected, Iteration.ClustersRecorded)
        assert same(store.to_event(notification), expected)
        assert same(event, expected)
        old, keyed = event.clusters
        assert isinstance(old, RecordedCluster) and old.key is None and old.places is None
        assert keyed.places == (Place("page", "/old", 1),)
        assert keyed.evidence == (Evidence("run_3", 4, "GET /old 404"),)
        assert [item.fix for item in event.suggestions] == ["restore it"]
        again = json.loads(zlib.decompress(store.mapper.to_stored_event(event).state))
        assert again == {**clusters_state(), "class_version": 2}


def test_recorded_clusters_that_do_not_validate_are_refused_on_either_road(
    golden_service: Service,
) -> None:
    store = golden_service.store
    state = clusters_state(class_version=2, clusters=[{**OLD_CLUSTER, "size": "two"}])
    event = StoredEvent(
        uuid4(), 2, "tpc:Iteration.ClustersRecorded", zlib.compress(json.dumps(state).encode())
    )
    store.recorder.insert_events([event])
    [notification] = list(store.notifications(0, 1000))[-1:]
    with pytest.raises(MapperDeserialisationError, match="payload"):
        store.mapper.to_domain_event(notification)
    with pytest.raises(MapperDeserialisationError, match="payload"):
        store.to_event(notification)
