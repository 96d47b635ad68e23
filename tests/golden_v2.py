"""Writes `tests/fixtures/stored_events_v2.json`: the golden log of `stored_events_v1.json`,
each event read by this version and stored again by it (typed payloads at class version 2).
Run once, when the file was made (`python -m tests.golden_v2`); never again to "fix" a test:
a golden file records what a version stored.
"""

from __future__ import annotations

import json
import tempfile
import zlib
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from application.service import Service
from infra.settings import Settings
from tests.conftest import FIXTURES


def stored_again(mapper: Mapper[UUID], events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each golden event as `mapper` reads it and stores it again, in the golden file's form."""
    again = []
    for event in events:
        state = zlib.compress(json.dumps(event["state"]).encode())
        stored = StoredEvent(
            UUID(event["originator_id"]), event["originator_version"], event["topic"], state
        )
        rewritten = mapper.to_stored_event(mapper.to_domain_event(stored))
        again.append({**event, "state": json.loads(zlib.decompress(rewritten.state))})
    return again


def main() -> None:
    golden = json.loads((FIXTURES / "stored_events_v1.json").read_text())
    with tempfile.TemporaryDirectory() as folder:
        service = Service(Settings(database_url=f"sqlite:///{Path(folder) / 'tpc.db'}"))
        try:
            events = stored_again(service.store.mapper, golden["events"])
        finally:
            service.close()
    written = {**golden, "events": events}
    (FIXTURES / "stored_events_v2.json").write_text(json.dumps(written, indent=1) + "\n")


if __name__ == "__main__":
    main()
