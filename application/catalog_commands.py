"""Catalog commands: products and their tokens, dashboard sessions, tasks, environments and
secrets. Called by the routes, the dashboard's sign-in and the operator's CLI commands.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple

from application.operator_rules import OperatorRules
from application.owner_guesses import OwnerGuess, OwnerGuesses
from application.saving import Saver
from domain.api_tokens import normalise_token, token_problem
from domain.catalog import LEGACY_TOKEN_NAME, Environment, Product, Task
from domain.definitions import parse_environment, parse_task
from domain.environment_network import check_network
from domain.errors import InvalidInput, NotFound
from domain.ids import has_prefix, stream_id
from domain.safe_text import unsafe_text_problems
from domain.secrets import check_secret, check_secret_name
from domain.transcripts import InvalidTranscript, transcript_from_object
from infra.dashboard_sessions import DashboardSessions
from infra.ids import new_id
from infra.store.blobs import BlobStore
from infra.store.events import EventStore
from infra.store.secrets import SecretStore
from infra.token_hashing import TokenHasher, legacy_hash, new_token, token_hint
from projections.queries import Views
from projections.read_models import EnvironmentView, TaskView


def token_hash(token: str) -> str:
    """The plain SHA-256 that products registered before keyed hashes hold (`legacy_hash`)."""
    return legacy_hash(token)


class TokenOwner(NamedTuple):
    """Who a live token acts for."""

    product_id: str
    token_id: str


class OpenedSession(NamedTuple):
    """A dashboard session just opened, and the product it acts for."""

    session_id: str
    product_id: str


@dataclass(frozen=True)
class Bootstrap:
    product_id: str
    token: str | None  # set only when the server generated it


class CatalogCommands:
    """What a product owns outside its experiments, and who may act for it."""

    def __init__(
        self,
        store: EventStore,
        saver: Saver,
        views: Views,
        blobs: BlobStore,
        secrets: SecretStore,
        sessions: DashboardSessions,
        token_hasher: TokenHasher,
        rules: OperatorRules,
    ) -> None:
        self._store = store
        self._saver = saver
        self._views = views
        self._blobs = blobs
        self._secrets = secrets
        self.sessions = sessions
        self.token_hasher = token_hasher
        self._rules = rules
        self._owner_guesses = OwnerGuesses(views)

    # -- products and tokens ----------------------------------------------------------------

    def bootstrap(self, token: str | None) -> Bootstrap | None:
        """On an empty store, create the first product; its token is `token` or a new one."""
        if token is not None:
            token = normalise_token(token, "TPC_API_TOKEN")
        if self._views.has_products():
            if token is not None and self.authenticate(token) is None:
                # A token given for a store that already has products must be one of theirs.
                raise InvalidInput(
                    "TPC_API_TOKEN does not belong to any product in this store (or was revoked)"
                )
            return None
        generated = token is None
        token = token or new_token()
        product = Product.new(public_id=new_id("prd"), name="default")
        self._issue(product, LEGACY_TOKEN_NAME, token)
        self._saver.save(product)
        return Bootstrap(product.public_id, token if generated else None)

    def authenticate(self, token: str) -> TokenOwner | None:
        """The product and token id of a live token; None for an unknown, revoked or malformed
        one. The token is normalised exactly as when it was made."""
        if token_problem(token) is not None:
            return None
        hashes = self.token_hasher.candidates(token.strip())
        owner = self._views.token_owner(hashes)
        if owner is None:
            return None
        self._owner_guesses.remember(hashes, owner[0])
        return TokenOwner(*owner)

    def owner_guess(self, token: str) -> OwnerGuess | None:
        """The product this token acted for last in this process, if any: a guess for a
        request to act on under `confirming_owner`, never an authority."""
        if token_problem(token) is not None:
            return None
        return self._owner_guesses.guess(self.token_hasher.candidates(token.strip()))

    def confirming_owner(self, guess: OwnerGuess) -> AbstractContextManager[str]:
        """A request acting for the guessed product, whose rows are used and whose writes are
        made only once the token's check (sent with its first query) confirms it;
        `GuardFailed` otherwise."""
        return self._owner_guesses.confirming(guess)

    def product_for_token(self, token: str) -> str | None:
        owner = self.authenticate(token)
        return owner.product_id if owner else None

    def _issue(self, product: Product, name: str, token: str) -> dict[str, Any]:
        token_id = new_id("tok")
        hasher = self.token_hasher
        product.issue_token(token_id, name, hasher.keyed(token), token_hint(token), hasher.key_id)
        return {"id": token_id, "product_id": product.public_id, "name": name.strip()}

    def tokens(self, product_id: str) -> list[dict[str, Any]]:
        """The product's tokens as `tpc token list` shows them (never the tokens)."""
        return [self._shown(token) for token in self._views.tokens(product_id)]

    def _token(self, token_id: str) -> dict[str, Any]:
        return self._shown(self._views.token(token_id))

    def _shown(self, token: dict[str, Any]) -> dict[str, Any]:
        """A token's row with `current_key` (false when its hash was made under another
        token key: it cannot authenticate) in place of the key's fingerprint."""
        shown = {k: v for k, v in token.items() if k != "key_id"}
        shown["current_key"] = token["key_id"] in ("", self.token_hasher.key_id)
        return shown

    def tokens_under_other_keys(self) -> int:
        """Live tokens that the current token key cannot check (TPC_TOKEN_KEY changed)."""
        return self._views.live_tokens_under_other_keys(self.token_hasher.key_id)

    def _product(self, product_id: str) -> Product:
        if not has_prefix(product_id, "prd"):
            raise NotFound(f"product {product_id} not found")
        return self._store.load(Product, stream_id(product_id), f"product {product_id}")

    def create_product(self, name: str) -> dict[str, Any]:
        """A new product and its first token (named "default"); the token is shown once."""
        token = new_token()
        product = Product.new(public_id=new_id("prd"), name=name)
        issued = self._issue(product, "default", token)
        self._saver.save(product)
        return {
            "product": self._views.product(product.public_id),
            "token": {**self._token(issued["id"]), "token": token},
        }

    def issue_token(self, product_id: str, name: str) -> dict[str, Any]:
        """A new named token for the product; the token itself is in the answer only."""
        token = new_token()

        def command() -> str:
            product = self._product(product_id)
            issued = self._issue(product, name, token)
            self._saver.save(product)
            return str(issued["id"])

        token_id = self._saver.retrying(command)
        return {**self._token(token_id), "token": token}

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token: API calls with it fail from now on and its dashboard sessions end."""
        if not has_prefix(token_id, "tok"):
            raise NotFound(f"token {token_id} not found")
        product_id = self._views.token(token_id)["product_id"]

        def command() -> None:
            product = self._product(product_id)
            product.revoke_token(token_id)
            self._saver.save(product)

        self._saver.retrying(command)
        ended = self.sessions.end_for_token(token_id)
        return {**self._token(token_id), "sessions_ended": ended}

    # -- dashboard sessions -----------------------------------------------------------------

    def open_session(self, token: str) -> OpenedSession | None:
        """A new session for a live token; None when it does not authenticate."""
        owner = self.authenticate(token)
        if owner is None:
            return None
        session_id = self.sessions.open(owner.product_id, owner.token_id)
        return OpenedSession(session_id, owner.product_id)

    def product_for_session(self, session_id: str) -> str | None:
        return self.sessions.product(session_id)

    def end_session(self, session_id: str) -> None:
        self.sessions.end(session_id)

    # -- tasks and environments -------------------------------------------------------------

    def create_task(self, product: str, data: Any) -> TaskView:
        definition = parse_task(data)
        self._rules.command_policy.require(product, tasks=[definition.model_dump(mode="json")])
        task = Task.new(public_id=new_id("task"), product_id=product, definition=definition)
        self._saver.save(task)
        return self._views.task(product, task.public_id)

    def create_environment(self, product: str, data: Any) -> EnvironmentView:
        data = self._store_replay_transcripts(data)
        parsed = parse_environment(data)
        check_network(parsed, self._rules.network_cap)
        self._rules.check(product, [parsed.model_dump(mode="json")], [])
        environment = Environment.new(
            public_id=new_id("env"), product_id=product, definition=parsed
        )
        self._saver.save(environment)
        return self._views.environment(product, environment.public_id)

    # -- secrets ----------------------------------------------------------------------------

    def _require_product(self, product: str) -> None:
        if not self._views.has_product(product):
            raise NotFound(f"product {product} not found")

    def set_secret(self, product: str, name: str, value: str) -> dict[str, Any]:
        """Create or replace a product's secret; returns its name and time, never the value."""
        check_secret(name, value)
        self._require_product(product)
        return self._secrets.set(product, name, value)

    def list_secrets(self, product: str) -> dict[str, Any]:
        self._require_product(product)
        return {"items": self._secrets.names(product)}

    def remove_secret(self, product: str, name: str) -> dict[str, Any]:
        check_secret_name(name)
        self._require_product(product)
        if not self._secrets.remove(product, name):
            raise NotFound(f"secret {name} not found")
        return {"name": name, "removed": True}

    def _store_replay_transcripts(self, data: Any) -> Any:
        """Replay transcripts arrive inline; they are validated, stored as blobs, and the
        environment keeps only their references (events stay small)."""
        agent = data.get("agent") if isinstance(data, dict) else None
        if not isinstance(agent, dict) or agent.get("kind") != "replay":
            return data
        transcripts = agent.get("transcripts")
        if not isinstance(transcripts, dict):
            return data
        documents: dict[str, list[bytes]] = {}
        problems: list[tuple[str, str]] = []
        for key, value in transcripts.items():
            items = value if isinstance(value, list) else [value]
            documents[key] = []
            for i, item in enumerate(items):
                where = f"agent.transcripts.{key}" + (f"[{i}]" if isinstance(value, list) else "")
                # Uploaded by a product, so a request: text no store can keep is refused
                # (they become blobs, which the event store's guard never sees).
                unsafe = unsafe_text_problems(item, (where,))
                if unsafe:
                    problems.extend(unsafe)
                    continue
                try:
                    transcript = transcript_from_object(item, where)
                except InvalidTranscript as error:
                    problems.extend(
                        (f"{where}.{loc}" if loc else where, msg) for loc, msg in error.problems
                    )
                    continue
                documents[key].append(transcript.model_dump_json(exclude_none=True).encode())
        if problems:
            summary = "; ".join(f"{loc}: {msg}" for loc, msg in problems[:3])
            raise InvalidInput(f"invalid replay transcripts: {summary}", tuple(problems))
        refs = {key: [self._blobs.put(doc) for doc in docs] for key, docs in documents.items()}
        return {**data, "agent": {**agent, "transcripts": refs}}
