"""Events stored by this version must keep loading: a golden log, replayed into a fresh store.

`tests/fixtures/stored_events_v1.json` holds a real log (every event type: products, tasks,
environments, experiments with attach/detach/config/rename/repeats, a completed iteration with
signals and a cancelled one) as stored. If this test fails, a topic or a payload changed:
register the old topic or add a class version with an upcaster; never edit the golden file.
"""

from __future__ import annotations

import json
import zlib
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from application.service import Service
from domain.catalog import Product
from domain.experiments import Experiment
from domain.ids import stream_id
from infra.settings import Settings
from projections.read_models import document
from tests.conftest import FIXTURES

GOLDEN: dict[str, Any] = json.loads((FIXTURES / "stored_events_v1.json").read_text())
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


def load_golden_store(url: str) -> Service:
    """A store holding the golden log as stored, written below the application (the recorder
    and the blobs table), on either database."""
    service = Service(Settings(database_url=url))  # creates the tables
    try:
        insert_stored_events(service, GOLDEN["events"])
        with service.database.write() as db:
            db.executemany(
                "INSERT INTO blobs (ref, data) VALUES (?, ?)",
                [(ref, zlib.compress(json.dumps(doc).encode())) for ref, doc in BLOBS.items()],
            )
    finally:
        service.close()
    return Service(Settings(database_url=url))


def test_every_stored_event_still_decodes(store_url: str) -> None:
    service = load_golden_store(store_url)
    try:
        topics = set()
        for notification in service.store.notifications(0, 1000):
            event = service.store.to_event(notification)
            topics.add(type(event).TOPIC)  # type: ignore[attr-defined]
        assert len(topics) == len({e["topic"] for e in GOLDEN["events"]}) == 21
    finally:
        service.close()


def test_aggregates_and_views_rebuilt_from_the_golden_log_answer_as_before(
    store_url: str,
) -> None:
    service = load_golden_store(store_url)
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
