"""The one place where domain errors become HTTP statuses and CLI exit codes."""

from __future__ import annotations

from api.cli.exit_codes import ExitCode
from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StorageFull,
    TooManyRequests,
    Unauthorized,
    UnreadableDocument,
)

# Most specific first: the first class an error is an instance of decides.
_MAPPING: tuple[tuple[type[DomainError], int, ExitCode], ...] = (
    (UnreadableDocument, 400, ExitCode.UNUSABLE_INPUT),
    (InvalidInput, 422, ExitCode.FAILED),
    (NotFound, 404, ExitCode.FAILED),
    (Conflict, 409, ExitCode.FAILED),
    (Unauthorized, 401, ExitCode.FAILED),
    (Forbidden, 403, ExitCode.FAILED),
    (PayloadTooLarge, 413, ExitCode.FAILED),
    (TooManyRequests, 429, ExitCode.FAILED),
    (StorageFull, 507, ExitCode.FAILED),
    (DomainError, 400, ExitCode.FAILED),
)


def http_status(error: DomainError) -> int:
    return next(status for kind, status, _ in _MAPPING if isinstance(error, kind))


def exit_code(error: DomainError) -> ExitCode:
    return next(code for kind, _, code in _MAPPING if isinstance(error, kind))
