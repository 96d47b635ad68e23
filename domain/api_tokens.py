"""API tokens as products hold them: one normal form, used when a token is made and when it
is checked, so a token can never be stored in a form that no request can present.

A token is what is left after stripping surrounding whitespace; it must be non-empty and hold
no whitespace (an HTTP header, a cookie or a shell variable would split or trim it) and no
character a store cannot keep. Token names (shown by `tpc token list`) are short labels.
"""

from __future__ import annotations

from domain.errors import InvalidInput
from domain.safe_text import unsafe_reason

MAX_TOKEN_LENGTH = 512
MAX_NAME_LENGTH = 100


def token_problem(raw: str) -> str | None:
    """Why `raw` cannot be a token (after stripping), or None when it can."""
    token = raw.strip()
    if not token:
        return "must not be empty"
    if any(char.isspace() for char in token):
        return "must not contain spaces or other whitespace"
    if len(token) > MAX_TOKEN_LENGTH:
        return f"must be at most {MAX_TOKEN_LENGTH} characters"
    if not token.isprintable():
        return "must contain only printable characters"
    return unsafe_reason(token)


def normalise_token(raw: str, what: str = "token") -> str:
    """The token's one form (surrounding whitespace removed); InvalidInput naming `what`."""
    problem = token_problem(raw)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}", ((what, problem),))
    return raw.strip()


def check_label(name: str, what: str = "name") -> str:
    """A token's or a product's name: stripped, non-empty, short, storable."""
    cleaned = name.strip()
    problem = None
    if not cleaned:
        problem = "must not be empty"
    elif len(cleaned) > MAX_NAME_LENGTH:
        problem = f"must be at most {MAX_NAME_LENGTH} characters"
    elif not cleaned.isprintable():
        problem = "must contain only printable characters"
    else:
        problem = unsafe_reason(cleaned)
    if problem is not None:
        raise InvalidInput(f"{what} {problem}", ((what, problem),))
    return cleaned
