"""The one place where domain errors become HTTP statuses and CLI exit codes."""

from __future__ import annotations

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

# Exit codes that are not errors: the command worked and reports a verdict.
EXIT_GATE_FAILED = 4  # `results --fail-on`: a condition holds (docs/ci.md)

# Most specific first: the first class an error is an instance of decides.
_MAPPING: tuple[tuple[type[DomainError], int, int], ...] = (
    (UnreadableDocument, 400, 2),
    (InvalidInput, 422, 1),
    (NotFound, 404, 1),
    (Conflict, 409, 1),
    (Unauthorized, 401, 1),
    (Forbidden, 403, 1),
    (PayloadTooLarge, 413, 1),
    (TooManyRequests, 429, 1),
    (StorageFull, 507, 1),
    (DomainError, 400, 1),
)


def http_status(error: DomainError) -> int:
    return next(status for kind, status, _ in _MAPPING if isinstance(error, kind))


def exit_code(error: DomainError) -> int:
    return next(code for kind, _, code in _MAPPING if isinstance(error, kind))
