"""What operator commands share: the application service on the store itself.

Operator commands (`tpc product …`, `tpc token …`) open the store that `TPC_DATABASE_URL`
names, like `tpc db migrate`: whoever runs them holds the database, not a product's token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from infra.settings import Settings

if TYPE_CHECKING:
    from application.service import Service


@contextmanager
def operator_service() -> Iterator[Service]:
    """The application service on the store TPC_DATABASE_URL names, closed afterwards."""
    from application.service import Service  # opening the store is heavy: only when a command runs

    service = Service(Settings.from_env())
    try:
        yield service
    finally:
        service.close()
