"""Transcript reads: a run's stored transcript, and its messages to follow it live (the live
messages while it runs, the transcript's once it has one). Called by the routes, the
dashboard and the CLI's `run logs` through them.
"""

from __future__ import annotations

import json
from typing import Any

from infra.store.blobs import BlobStore
from projections.queries import Views
from projections.read_models import RunLog


class TranscriptReads:
    """Reads that go past the views to the blob table."""

    def __init__(self, views: Views, blobs: BlobStore) -> None:
        self._views = views
        self._blobs = blobs

    def transcript(self, product: str, run_id: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self._blobs.get(self._views.transcript_ref(product, run_id))
        )
        return document

    def run_logs(
        self, product: str, run_id: str, after: int = 0, limit: int | None = None
    ) -> RunLog:
        """A run's messages from index `after` on, to follow it live: while it runs, the live
        messages of its current attempt; once it has its transcript, the transcript's.
        `next` is the `after` of the next call, `done` is true once the run is terminal and
        every message was given."""
        after, limit = max(0, after), self._views.log_limit(limit)
        log = self._views.live_log(product, run_id, after, limit)
        if log.transcript_ref is None:
            return log
        everything = json.loads(self._blobs.get(log.transcript_ref)).get("messages", [])
        shown = everything[after : after + limit]
        return log.model_copy(
            update={
                "messages": [
                    {"index": index, **message} for index, message in enumerate(shown, start=after)
                ],
                "next": after + len(shown),
                "done": after + len(shown) >= len(everything),
            }
        )
