"""An iteration's identity: its experiment and its number (what executors key their work by)."""

from __future__ import annotations

from typing import NamedTuple


class IterationKey(NamedTuple):
    experiment_id: str
    number: int
