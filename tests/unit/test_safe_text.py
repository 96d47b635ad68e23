from __future__ import annotations

import pytest

from domain.errors import InvalidInput
from domain.safe_text import clean_text, require_safe_text, unsafe_text_problems


def test_nul_and_lone_surrogates_are_located() -> None:
    body = {"name": "a\x00b", "tags": ["ok", "x\ud800"], "meta": {"k\x00": "v"}}
    assert unsafe_text_problems(body) == [
        ("name", "must not contain the NUL character (U+0000)"),
        ("tags[1]", "must not contain a lone surrogate (U+D800)"),
        ("meta.k\x00", "key must not contain the NUL character (U+0000)"),
    ]
    with pytest.raises(InvalidInput) as raised:
        require_safe_text(body)
    assert raised.value.problems[0][0] == "name"


def test_paired_surrogates_and_plain_text_pass() -> None:
    assert unsafe_text_problems({"emoji": "😀", "text": "é\n\t"}) == []
    require_safe_text("fine")


def test_deep_nesting_does_not_exhaust_the_stack() -> None:
    deep: object = "bad\x00"
    for _ in range(100_000):
        deep = [deep]
    assert len(unsafe_text_problems(deep)) == 1


def test_clean_text_replaces_what_cannot_be_stored() -> None:
    assert clean_text("a\x00b\udc80") == "a\ufffdb\ufffd"
    assert clean_text("plain") == "plain"
