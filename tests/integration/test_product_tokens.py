"""Products and tokens on both stores: keyed hashes, the store's key or TPC_TOKEN_KEY, legacy
plain hashes still accepted, revocation at once, and dashboard sessions that end with their
token, on sign-out and on expiry."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest

from application.catalog_commands import token_hash
from application.service import Service
from domain.catalog import Product
from domain.errors import Conflict, InvalidInput, NotFound
from infra.settings import Settings

KEY_A = "a" * 64
KEY_B = "b" * 64


def stored_states(service: Service) -> list[dict[str, object]]:
    """Every stored event's payload as it sits in the events table."""
    states = []
    for notification in service.store.notifications(0, 1000):
        state = notification.state
        states.append(json.loads(zlib.decompress(state)))
    return states


def test_products_have_several_tokens_stored_only_as_keyed_hashes(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        created = service.catalog.create_product("Payments")
        product_id = created["product"]["id"]
        first = created["token"]
        second = service.catalog.issue_token(product_id, "ci")
        assert service.catalog.authenticate(first["token"]) == (product_id, first["id"])
        assert service.catalog.authenticate(second["token"]) == (product_id, second["id"])
        listed = service.views.tokens(product_id)
        assert [(t["name"], t["hint"], t["revoked"]) for t in listed] == [
            ("default", first["token"][-4:], False),
            ("ci", second["token"][-4:], False),
        ]
        assert all("token" not in t for t in listed)
        # Neither the token nor its plain SHA-256 is in the log: only the keyed hash.
        text = json.dumps(stored_states(service))
        for token in (first["token"], second["token"]):
            assert token not in text
            assert hashlib.sha256(token.encode()).hexdigest() not in text
        assert text.count('"hmac-sha256:') == 2
        assert service.views.products()[0]["active_tokens"] == 2
    finally:
        service.close()


def test_the_store_key_is_made_once_and_an_operator_key_replaces_it(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        product_id = service.catalog.create_product("P")["product"]["id"]
        with_store_key = service.catalog.issue_token(product_id, "store")["token"]
    finally:
        service.close()
    reopened = Service(Settings(database_url=store_url))
    try:
        assert reopened.catalog.product_for_token(with_store_key) == product_id  # same key, kept
    finally:
        reopened.close()
    keyed = Service(Settings(database_url=store_url, token_key=KEY_A))
    try:
        # Hashes made with the store's key mean nothing under the operator's key, and the
        # server can tell the operator so.
        assert keyed.catalog.product_for_token(with_store_key) is None
        assert keyed.catalog.tokens_under_other_keys() == 2
        assert [t["current_key"] for t in keyed.catalog.tokens(product_id)] == [False, False]
        with_key_a = keyed.catalog.issue_token(product_id, "operator")["token"]
        assert keyed.catalog.product_for_token(with_key_a) == product_id
    finally:
        keyed.close()
    other_key = Service(Settings(database_url=store_url, token_key=KEY_B))
    try:
        assert other_key.catalog.product_for_token(with_key_a) is None
        assert [t["current_key"] for t in other_key.catalog.tokens(product_id)] == [False] * 3
    finally:
        other_key.close()


def test_legacy_plain_hashes_authenticate_and_can_be_revoked(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        service.store.save(
            Product(public_id="prd_oldaaaa", name="old", token_hash=token_hash("old"))
        )
        service.projector.catch_up()
        assert service.catalog.authenticate(" old ") == ("prd_oldaaaa", "tok_oldaaaa")
        (legacy,) = service.views.tokens("prd_oldaaaa")
        assert (legacy["id"], legacy["name"], legacy["hint"]) == ("tok_oldaaaa", "bootstrap", None)
        revoked = service.catalog.revoke_token("tok_oldaaaa")
        assert revoked["revoked"] is True
        assert service.catalog.authenticate("old") is None
        with pytest.raises(Conflict, match="already revoked"):
            service.catalog.revoke_token("tok_oldaaaa")
    finally:
        service.close()


def test_revoking_a_token_fails_it_at_once_and_ends_its_sessions(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        created = service.catalog.create_product("P")
        product_id, token = created["product"]["id"], created["token"]
        spare = service.catalog.issue_token(product_id, "spare")
        opened = service.catalog.open_session(token["token"])
        kept = service.catalog.open_session(spare["token"])
        assert opened is not None and kept is not None
        session_id = opened.session_id
        assert opened.product_id == product_id
        assert service.catalog.product_for_session(session_id) == product_id
        assert token["token"] not in session_id
        assert service.catalog.revoke_token(token["id"])["sessions_ended"] == 1
        assert service.catalog.product_for_token(token["token"]) is None
        assert service.catalog.product_for_session(session_id) is None
        assert service.catalog.open_session(token["token"]) is None
        # The product's other token and its session are untouched.
        assert service.catalog.product_for_session(kept.session_id) == product_id
        service.catalog.end_session(kept.session_id)
        assert service.catalog.product_for_session(kept.session_id) is None
    finally:
        service.close()


def test_a_revoked_token_is_refused_by_another_process_at_once(store_url: str) -> None:
    server = Service(Settings(database_url=store_url))
    operator = Service(Settings(database_url=store_url))
    try:
        created = operator.catalog.create_product("P")
        token = created["token"]
        assert server.catalog.product_for_token(token["token"]) == created["product"]["id"]
        operator.catalog.revoke_token(token["id"])
        # No catch-up in the server: the operator's command wrote the shared views.
        assert server.catalog.product_for_token(token["token"]) is None
    finally:
        operator.close()
        server.close()


def test_expired_sessions_do_not_sign_in(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        token = service.catalog.create_product("P")["token"]["token"]
        service.catalog.sessions.max_age_s = 0
        opened = service.catalog.open_session(token)
        assert opened is not None
        assert service.catalog.product_for_session(opened.session_id) is None
        assert service.catalog.product_for_session("") is None
        assert service.catalog.product_for_session("made-up") is None
    finally:
        service.close()


def test_bootstrap_normalises_the_token_it_stores(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        boot = service.catalog.bootstrap("  padded-token\n")
        assert boot is not None and boot.token is None
        for presented in ("padded-token", " padded-token ", "padded-token\n"):
            assert service.catalog.product_for_token(presented) == boot.product_id
        assert service.catalog.product_for_token("padded token") is None
        assert service.catalog.bootstrap(" padded-token ") is None  # same store, same token: fine
        with pytest.raises(InvalidInput, match="does not belong"):
            service.catalog.bootstrap("another-token")
        with pytest.raises(InvalidInput, match="must not contain spaces"):
            service.catalog.bootstrap("two words")
    finally:
        service.close()


def test_unknown_products_and_tokens_are_not_found(store_url: str) -> None:
    service = Service(Settings(database_url=store_url))
    try:
        for call in (
            lambda: service.catalog.issue_token("prd_nopenope", "x"),
            lambda: service.catalog.issue_token("nonsense", "x"),
            lambda: service.catalog.revoke_token("tok_nopenope"),
            lambda: service.catalog.revoke_token("nonsense"),
            lambda: service.views.tokens("prd_nopenope"),
        ):
            with pytest.raises(NotFound):
                call()
        with pytest.raises(InvalidInput, match="name must not be empty"):
            service.catalog.create_product("  ")
    finally:
        service.close()
