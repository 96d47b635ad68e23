"""The demo's port: a fixed default, a free one when the default is taken, and a clear error
when the port asked for is taken. Real sockets on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import click
import pytest

from api.cli import demo

HOST = "127.0.0.1"


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_the_default_port_falls_back_to_a_free_one_with_a_note(
    listening: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "DEFAULT_PORT", listening)
    port, note = demo.choose_port(HOST, None)
    assert port != listening and demo.port_is_free(HOST, port)
    assert note and f"Port {listening} is in use" in note and "--port" in note


def test_a_free_default_port_is_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        free = probe.getsockname()[1]
    monkeypatch.setattr(demo, "DEFAULT_PORT", free)
    assert demo.choose_port(HOST, None) == (free, None)


def test_a_port_asked_for_must_be_free(listening: int) -> None:
    with pytest.raises(click.ClickException, match=f"port {listening} is in use.*--port"):
        demo.choose_port(HOST, listening)
