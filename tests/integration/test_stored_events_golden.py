"""Events stored by this version must keep loading: a golden log, replayed into a fresh store.

`tests/fixtures/stored_events_v1.json` holds a real log (every event type: products, tasks,
environments, experiments with attach/detach/config/rename/repeats, a completed iteration with
signals and a cancelled one) as stored. `stored_events_v2.json` is the same log as stored once
events carried typed payloads (ConfigFrozen, Run.Completed and Run.SignalsExtracted at class
version 2, `tests/golden_v2.py`). Both load, and project to the same views. If this test fails,
a topic or a payload changed: register the old topic or add a class version with an upcaster;
never edit a golden file.
"""

from __future__ import annotations

import json
import zlib
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from application.service import Service
from domain.catalog import Product
from domain.definitions import EnvironmentDefinition
from domain.experiments import Experiment
from domain.ids import iteration_stream_id, stream_id
from domain.iterations import FrozenSignalConfig, Iteration, PlannedRun
from domain.runs import RecordedStats, Run
from domain.signals.extraction import SignalValue
from infra.settings import Settings
from projections.read_models import document
from tests.conftest import FIXTURES
from tests.integration.test_store_contracts import dump_views

GOLDEN: dict[str, Any] = json.loads((FIXTURES / "stored_events_v1.json").read_text())
GOLDEN_V2: dict[str, Any] = json.loads((FIXTURES / "stored_events_v2.json").read_text())
GOLDEN_LOGS = {"v1": GOLDEN, "v2": GOLDEN_V2}
BLOBS: dict[str, Any] = json.loads((FIXTURES / "stored_blobs_v1.json").read_text())
ANSWERS: dict[str, Any] = json.loads((FIXTURES / "stored_events_v1_answers.json").read_text())


def insert_stored_events(service: Service, events: list[dict[str, Any]]) -> None:
    """Write golden events as stored, below the application (the recorder itself)."""
    service.store.recorder.insert_events(
        [
            StoredEvent(
                originator_id=UUID(e["originator_id"]),
                originator_version=e["originator_version"],
                topic=e["topic"],
                state=zlib.compress(json.dumps(e["state"], separators=(",", ":")).encode()),
            )
            for e in events
        ]
    )


def load_golden_store(url: str, golden: dict[str, Any] = GOLDEN) -> Service:
    """A store holding a golden log as stored, written below the application (the recorder
    and the blobs table), on either database."""
    service = Service(Settings(database_url=url))  # creates the tables
    try:
        insert_stored_events(service, golden["events"])
        with service.database.write() as db:
            db.executemany(
                "INSERT INTO blobs (ref, data) VALUES (?, ?)",
                [(ref, zlib.compress(json.dumps(doc).encode())) for ref, doc in BLOBS.items()],
            )
    finally:
        service.close()
    return Service(Settings(database_url=url))


@pytest.mark.parametrize("version", GOLDEN_LOGS)
def test_every_stored_event_still_decodes(store_url: str, version: str) -> None:
    golden = GOLDEN_LOGS[version]
    service = load_golden_store(store_url, golden)
    try:
        topics = set()
        for notification in service.store.notifications(0, 1000):
            event = service.store.to_event(notification)
            topics.add(type(event).TOPIC)  # type: ignore[attr-defined]
        assert len(topics) == len({e["topic"] for e in golden["events"]}) == 21
    finally:
        service.close()


def test_the_v2_log_stores_typed_payloads_at_class_version_2() -> None:
    typed = {"tpc:Iteration.ConfigFrozen", "tpc:Run.Completed", "tpc:Run.SignalsExtracted"}
    versions = {e["topic"]: e["state"].get("class_version") for e in GOLDEN_V2["events"]}
    assert {topic for topic, version in versions.items() if version == 2} == typed
    assert all("class_version" not in e["state"] for e in GOLDEN["events"])


@pytest.mark.parametrize("version", GOLDEN_LOGS)
def test_typed_payloads_load_as_models(store_url: str, version: str) -> None:
    service = load_golden_store(store_url, GOLDEN_LOGS[version])
    try:
        exp_id = GOLDEN["experiment_id"]
        first = service.store.load(Iteration, iteration_stream_id(exp_id, 1), exp_id)
        assert isinstance(first.signal_config, FrozenSignalConfig)
        assert [s.id for s in first.signal_config.parsed.signals][:2] == [
            "fabricated-endpoint",
            "total-tokens",
        ]
        assert {d.name for d in first.tasks.values()} == {"install-sdk"}
        assert all(isinstance(d, EnvironmentDefinition) for d in first.environments.values())
        assert all(isinstance(run, PlannedRun) for run in first.runs)
        run = service.store.load(Run, stream_id(first.runs[0].run_id), "run")
        assert isinstance(run.stats, RecordedStats)
        assert run.stats.token_total is not None and run.stats.status == run.status
        signals = [
            e
            for e in service.store.repository.event_store.get(run.id)
            if isinstance(e, Run.SignalsExtracted)
        ]
        assert signals and isinstance(signals[0].values["total-tokens"], SignalValue)
        assert signals[0].values["total-tokens"].value == run.stats.token_total
    finally:
        service.close()


@pytest.mark.parametrize("version", GOLDEN_LOGS)
def test_views_of_the_golden_log_rebuilt_equal_those_built_event_by_event(
    store_url: str, version: str
) -> None:
    service = load_golden_store(store_url, GOLDEN_LOGS[version])
    try:
        service.projector.catch_up()
        incremental = dump_views(service)
        assert service.rebuild_projections() == service.store.last_position()
        assert dump_views(service) == incremental
    finally:
        service.close()


@pytest.mark.parametrize("version", GOLDEN_LOGS)
def test_aggregates_and_views_rebuilt_from_the_golden_log_answer_as_before(
    store_url: str, version: str
) -> None:
    service = load_golden_store(store_url, GOLDEN_LOGS[version])
    try:
        service.projector.catch_up()
        owner = service.catalog.product_for_token(GOLDEN["product_token"])
        assert owner is not None
        exp_id = GOLDEN["experiment_id"]
        experiment = service.store.load(Experiment, stream_id(exp_id), exp_id)
        assert (experiment.name, experiment.repeats, experiment.iterations) == ("golden v2", 2, 2)
        answers = {
            "results_1": document(service.views.results(owner, exp_id, 1)),
            "status_2": document(service.views.iteration_status(owner, exp_id, 2)),
            "experiment": document(service.views.experiment(owner, exp_id)),
        }
        assert json.loads(json.dumps(answers, sort_keys=True)) == ANSWERS
    finally:
        service.close()


# Token lifecycle events (Product.TokenIssued / TokenRevoked), as stored by `tpc product
# create`, `tpc token create` and `tpc token revoke` with a known TPC_TOKEN_KEY.
TOKENS_GOLDEN: dict[str, Any] = json.loads((FIXTURES / "stored_events_tokens_v1.json").read_text())


def test_stored_token_events_still_load_and_authenticate(store_url: str) -> None:
    settings = Settings(database_url=store_url, token_key=TOKENS_GOLDEN["token_key"])
    service = Service(settings)
    try:
        insert_stored_events(service, TOKENS_GOLDEN["events"])
        service.projector.catch_up()
        product_id = TOKENS_GOLDEN["product_id"]
        notifications = service.store.notifications(0, 10)
        topics = [type(service.store.to_event(n)).TOPIC for n in notifications]  # type: ignore[attr-defined]
        assert topics == [
            "tpc:Product.Registered",
            "tpc:Product.TokenIssued",
            "tpc:Product.TokenIssued",
            "tpc:Product.TokenRevoked",
        ]
        product = service.store.load(Product, stream_id(product_id), product_id)
        assert product.active_tokens() == [TOKENS_GOLDEN["live_token_id"]]
        live = service.catalog.authenticate(TOKENS_GOLDEN["live_token"])
        assert live == (product_id, TOKENS_GOLDEN["live_token_id"])
        assert service.catalog.authenticate(TOKENS_GOLDEN["revoked_token"]) is None
        listed = [(t["id"], t["name"], t["revoked"]) for t in service.views.tokens(product_id)]
        assert listed == [
            (TOKENS_GOLDEN["revoked_token_id"], "default", True),
            (TOKENS_GOLDEN["live_token_id"], "ci", False),
        ]
    finally:
        service.close()
