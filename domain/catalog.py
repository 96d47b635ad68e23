"""Products (tenants), tasks and environments: the things experiments are made of.

Each is an event-sourced aggregate with a stable topic, so stored events never depend on
module paths. Definitions are stored as plain JSON (validated by `domain.definitions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.api_tokens import check_label
from domain.definitions import EnvironmentDefinition, TaskDefinition
from domain.errors import Conflict, NotFound
from domain.experiments import name_problems, require_no_problems
from domain.ids import stream_id


@dataclass
class IssuedToken:
    """What the aggregate knows of one of its tokens (never the token itself)."""

    name: str
    revoked: bool = False


# Products registered before tokens had a lifecycle hold one token, by its plain SHA-256 in
# `Registered.token_hash`; it keeps working and can be revoked under this id and name.
LEGACY_TOKEN_NAME = "bootstrap"


def legacy_token_id(product_id: str) -> str:
    return "tok_" + product_id.removeprefix("prd_")


class Product(Aggregate):
    """A tenant: everything else belongs to exactly one product. Its API tokens (several,
    named, revocable) are events on this aggregate, stored as keyed hashes."""

    TOPIC = "tpc:Product"

    # The library derives a `Created` class for every aggregate; with stable topics it needs
    # one too, although `Registered` is the creation event actually used.
    class Created(Aggregate.Created):
        TOPIC = "tpc:Product.Created"

    class Registered(Created):
        TOPIC = "tpc:Product.Registered"
        public_id: str
        name: str
        # The first token's plain SHA-256 in products made before `TokenIssued`; "" since.
        token_hash: str

    class TokenIssued(Aggregate.Event):
        TOPIC = "tpc:Product.TokenIssued"
        token_id: str
        name: str
        # "hmac-sha256:<hex>": keyed by the server's token key (infra/token_hashing.py).
        token_hash: str
        # The token's last four characters, so people can tell tokens apart.
        hint: str
        # Which key made the hash (a fingerprint, not the key): a token issued under another
        # key no longer authenticates, and the server can say so.
        key_id: str

    class TokenRevoked(Aggregate.Event):
        TOPIC = "tpc:Product.TokenRevoked"
        token_id: str

    @classmethod
    def new(cls, public_id: str, name: str) -> Product:
        """A new product named `name` (stripped; InvalidInput unless it passes `check_label`).
        The check lives here, not in `__init__`, which also replays events saved before it."""
        return cls(public_id=public_id, name=check_label(name))

    @staticmethod
    def create_id(public_id: str) -> UUID:
        return stream_id(public_id)

    @event(Registered)
    def __init__(self, public_id: str, name: str, token_hash: str = "") -> None:
        self.public_id = public_id
        self.name = name
        self.tokens: dict[str, IssuedToken] = {}
        if token_hash:
            self.tokens[legacy_token_id(public_id)] = IssuedToken(LEGACY_TOKEN_NAME)

    # -- commands -------------------------------------------------------------------------

    def issue_token(
        self, token_id: str, name: str, token_hash: str, hint: str, key_id: str
    ) -> None:
        name = check_label(name)
        if token_id in self.tokens:
            raise Conflict(f"{self.public_id} already has a token {token_id}")
        if any(t.name == name and not t.revoked for t in self.tokens.values()):
            raise Conflict(
                f"{self.public_id} already has a token named {name!r}: "
                "revoke it first or choose another name"
            )
        self._token_issued(token_id, name, token_hash, hint, key_id)

    def revoke_token(self, token_id: str) -> None:
        token = self.tokens.get(token_id)
        if token is None:
            raise NotFound(f"{self.public_id} has no token {token_id}")
        if token.revoked:
            raise Conflict(f"token {token_id} is already revoked")
        self._token_revoked(token_id)

    def active_tokens(self) -> list[str]:
        return [token_id for token_id, token in self.tokens.items() if not token.revoked]

    # -- events ---------------------------------------------------------------------------

    @event(TokenIssued)
    def _token_issued(
        self, token_id: str, name: str, token_hash: str, hint: str, key_id: str
    ) -> None:
        self.tokens[token_id] = IssuedToken(name)

    @event(TokenRevoked)
    def _token_revoked(self, token_id: str) -> None:
        self.tokens[token_id].revoked = True


class CatalogEntry(Aggregate):
    """The shape tasks and environments share: a product's definition, immutable once made
    (iterations freeze a copy). Each subclass names its own `Created` event and topics, so
    stored events keep loading whatever this base becomes."""

    class Created(Aggregate.Created):
        public_id: str
        product_id: str
        definition: dict[str, Any]

    @classmethod
    def new(
        cls, public_id: str, product_id: str, definition: TaskDefinition | EnvironmentDefinition
    ) -> Self:
        """A new entry from its parsed definition, once its name passes the rules every name
        obeys (InvalidInput else): checked here, not in `__init__`, which replays old events."""
        require_no_problems(name_problems(definition.name))
        return cls(
            public_id=public_id,
            product_id=product_id,
            definition=definition.model_dump(mode="json"),
        )

    @staticmethod
    def create_id(public_id: str) -> UUID:
        return stream_id(public_id)

    @event(Created)
    def __init__(self, public_id: str, product_id: str, definition: dict[str, Any]) -> None:
        self.public_id = public_id
        self.product_id = product_id
        self.definition = definition


class Task(CatalogEntry):
    """What an agent is asked to do. Immutable: iterations freeze a copy of the definition."""

    TOPIC = "tpc:Task"

    class Created(CatalogEntry.Created):
        TOPIC = "tpc:Task.Created"


class Environment(CatalogEntry):
    """Which agent runs the tasks, and within which limits."""

    TOPIC = "tpc:Environment"

    class Created(CatalogEntry.Created):
        TOPIC = "tpc:Environment.Created"
