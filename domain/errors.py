"""The domain's error hierarchy: every edge (HTTP, CLI) maps these to statuses and exit codes."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class InvalidInput(DomainError):
    """Input that does not have the expected shape; `problems` carry located messages."""

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class UnreadableDocument(DomainError):
    """A document that cannot be parsed at all (not YAML, not JSON)."""


class NotFound(DomainError):
    """An id that names nothing this product can see (HTTP 404)."""


class Conflict(DomainError):
    """A command that the current state does not allow (HTTP 409)."""


class Unauthorized(DomainError):
    """A missing or unknown API token (HTTP 401)."""


class Forbidden(DomainError):
    """Something the operator has not allowed this product to do (HTTP 403)."""


class PayloadTooLarge(DomainError):
    """A request or document larger than the operator's limit (HTTP 413)."""


class TooManyRequests(DomainError):
    """A product over an operator limit on work in flight (HTTP 429)."""


class StorageFull(DomainError):
    """The store has no room left: nothing was saved (HTTP 507)."""
