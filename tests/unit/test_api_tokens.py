"""API tokens: one normal form at creation and at check, and the Product's token events."""

from __future__ import annotations

import pytest

from domain.api_tokens import check_label, normalise_token, token_problem
from domain.catalog import LEGACY_TOKEN_NAME, Product, legacy_token_id
from domain.errors import Conflict, InvalidInput, NotFound


@pytest.mark.parametrize("raw", ["abc", " abc", "abc\n", "\tabc  "])
def test_surrounding_whitespace_is_stripped_the_same_way_everywhere(raw: str) -> None:
    assert normalise_token(raw) == "abc"
    assert token_problem(raw) is None


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("ab c", "must not contain spaces or other whitespace"),
        ("ab\tc", "must not contain spaces or other whitespace"),
        ("ab\u00a0c", "must not contain spaces or other whitespace"),
        ("ab\x00c", "must contain only printable characters"),
        ("a" * 513, "must be at most 512 characters"),
    ],
)
def test_tokens_no_request_could_present_are_refused(raw: str, problem: str) -> None:
    assert token_problem(raw) == problem
    with pytest.raises(InvalidInput) as refused:
        normalise_token(raw, "TPC_API_TOKEN")
    assert str(refused.value) == f"TPC_API_TOKEN {problem}"
    assert refused.value.problems == (("TPC_API_TOKEN", problem),)


def test_names_are_stripped_and_must_say_something() -> None:
    assert check_label("  ci  ") == "ci"
    for bad in ("", "   ", "x" * 101, "a\x00b"):
        with pytest.raises(InvalidInput):
            check_label(bad)


def product() -> Product:
    return Product(public_id="prd_aaaa", name="P")


def test_a_product_holds_several_named_tokens_and_revokes_one() -> None:
    p = product()
    p.issue_token("tok_aaaa", "ci", "hmac-sha256:1", "wxyz", "k1")
    p.issue_token("tok_bbbb", " laptop ", "hmac-sha256:2", "abcd", "k1")
    assert {k: t.name for k, t in p.tokens.items()} == {"tok_aaaa": "ci", "tok_bbbb": "laptop"}
    p.revoke_token("tok_aaaa")
    assert p.active_tokens() == ["tok_bbbb"]
    kinds = [type(e).__name__ for e in p.collect_events()]
    assert kinds == ["Registered", "TokenIssued", "TokenIssued", "TokenRevoked"]


def test_token_rules_conflict_or_name_what_is_missing() -> None:
    p = product()
    p.issue_token("tok_aaaa", "ci", "hmac-sha256:1", "wxyz", "k1")
    with pytest.raises(Conflict, match="already has a token named 'ci'"):
        p.issue_token("tok_bbbb", "ci", "hmac-sha256:2", "abcd", "k1")
    with pytest.raises(Conflict, match="already has a token tok_aaaa"):
        p.issue_token("tok_aaaa", "other", "hmac-sha256:3", "abcd", "k1")
    with pytest.raises(NotFound, match="has no token tok_cccc"):
        p.revoke_token("tok_cccc")
    p.revoke_token("tok_aaaa")
    with pytest.raises(Conflict, match="already revoked"):
        p.revoke_token("tok_aaaa")
    # A revoked token's name is free again.
    p.issue_token("tok_bbbb", "ci", "hmac-sha256:2", "abcd", "k1")


def test_a_product_registered_with_a_plain_hash_has_that_token_under_a_stable_id() -> None:
    p = Product(public_id="prd_aaaa", name="P", token_hash="0" * 64)
    assert legacy_token_id("prd_aaaa") == "tok_aaaa"
    assert p.tokens["tok_aaaa"].name == LEGACY_TOKEN_NAME
    p.revoke_token("tok_aaaa")
    assert p.active_tokens() == []
