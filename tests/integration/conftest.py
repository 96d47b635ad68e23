"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from application.service import Service
from infra.settings import Settings


@pytest.fixture
def service(store_url: str) -> Iterator[Service]:
    """The service over an empty store of each kind (`store_url`)."""
    opened = Service(Settings(database_url=store_url))
    yield opened
    opened.close()
