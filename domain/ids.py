"""Public ids (`exp_…`, `run_…`) and the event-stream ids derived from them.

Public ids are made outside the domain (they are random) and passed in. Every stream id is a
UUID derived from a public id, so any process can find a stream from the id a user typed.
"""

from __future__ import annotations

import re
import uuid

PREFIXES = ("prd", "task", "env", "exp", "run", "tok")
PUBLIC_ID = re.compile(r"^(prd|task|env|exp|run|tok)_[a-z2-7]{4,32}$")
_NAMESPACE = uuid.UUID("5d0c1a7e-3f6b-4c7a-9d2e-7470632d7369")


def stream_id(public_id: str) -> uuid.UUID:
    """The event-stream id of a product, task, environment, experiment or run."""
    return uuid.uuid5(_NAMESPACE, public_id)


def iteration_stream_id(experiment_id: str, number: int) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{experiment_id}/iterations/{number}")


def has_prefix(public_id: str, prefix: str) -> bool:
    return public_id.startswith(prefix + "_") and PUBLIC_ID.match(public_id) is not None
