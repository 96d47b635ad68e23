"""Products (tenants), tasks and environments: the things experiments are made of.

Each is an event-sourced aggregate with a stable topic, so stored events never depend on
module paths. Definitions are stored as plain JSON (validated by `domain.definitions`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import stream_id


class Product(Aggregate):
    """A tenant: everything else belongs to exactly one product."""

    TOPIC = "tpc:Product"

    # The library derives a `Created` class for every aggregate; with stable topics it needs
    # one too, although `Registered` is the creation event actually used.
    class Created(Aggregate.Created):
        TOPIC = "tpc:Product.Created"

    class Registered(Created):
        TOPIC = "tpc:Product.Registered"
        public_id: str
        name: str
        token_hash: str

    @staticmethod
    def create_id(public_id: str) -> UUID:
        return stream_id(public_id)

    @event(Registered)
    def __init__(self, public_id: str, name: str, token_hash: str) -> None:
        self.public_id = public_id
        self.name = name
        self.token_hash = token_hash


class Task(Aggregate):
    """What an agent is asked to do. Immutable: iterations freeze a copy of the definition."""

    TOPIC = "tpc:Task"

    class Created(Aggregate.Created):
        TOPIC = "tpc:Task.Created"
        public_id: str
        product_id: str
        definition: dict[str, Any]

    @staticmethod
    def create_id(public_id: str) -> UUID:
        return stream_id(public_id)

    @event(Created)
    def __init__(self, public_id: str, product_id: str, definition: dict[str, Any]) -> None:
        self.public_id = public_id
        self.product_id = product_id
        self.definition = definition


class Environment(Aggregate):
    """Which agent runs the tasks, and within which limits."""

    TOPIC = "tpc:Environment"

    class Created(Aggregate.Created):
        TOPIC = "tpc:Environment.Created"
        public_id: str
        product_id: str
        definition: dict[str, Any]

    @staticmethod
    def create_id(public_id: str) -> UUID:
        return stream_id(public_id)

    @event(Created)
    def __init__(self, public_id: str, product_id: str, definition: dict[str, Any]) -> None:
        self.public_id = public_id
        self.product_id = product_id
        self.definition = definition
