"""Product secrets: named values a product's agents may use, and the `${NAME}` references
definitions make to them.

A secret is never part of a definition: an environment names it (`env: {KEY: "${KEY}"}`, an llm
agent's `api_key: "${KEY}"`) and the runner puts the value in at run time. So the event log,
which is immutable and shown by GET, never holds a value, and a secret can be rotated or erased.
References expand only from the product's own secrets, never from the server's environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from domain.errors import InvalidInput
from domain.safe_text import require_safe_text

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_NAME_LENGTH = 128
MAX_VALUE_BYTES = 64 * 1024
_NAME = re.compile(NAME_PATTERN)
# `$${` is a literal `${`; `${NAME}` a reference.
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_WHOLE_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")


class SecretUnavailable(Exception):
    """A reference to a secret the product does not have (removed since it was checked)."""


def check_secret_name(name: str) -> None:
    require_safe_text({"name": name}, "the secret name")
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        raise InvalidInput(
            f"secret name {name[:MAX_NAME_LENGTH]!r} is not valid: use letters, digits and _, "
            f"not starting with a digit, at most {MAX_NAME_LENGTH} characters",
            (("name", f"must match {NAME_PATTERN} (at most {MAX_NAME_LENGTH} characters)"),),
        )


def check_secret(name: str, value: str) -> None:
    """Raise `InvalidInput` (422) for a name or value that cannot be stored or used."""
    check_secret_name(name)
    require_safe_text({"value": value}, "the secret value")
    if not value:
        # Most likely nothing was piped in; an empty variable can be written literally.
        raise InvalidInput(
            f"the value of secret {name} is empty", (("value", "must not be empty"),)
        )
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(
            f"the value of secret {name} is larger than {MAX_VALUE_BYTES} bytes",
            (("value", f"must be at most {MAX_VALUE_BYTES} bytes"),),
        )


def references(values: Iterable[str]) -> list[str]:
    """The secrets `${NAME}` in these strings name, in order, once each."""
    names = (m.group(1) for value in values for m in _REFERENCE.finditer(value))
    return list(dict.fromkeys(name for name in names if name is not None))


def whole_reference(value: str) -> str | None:
    """The secret `value` names when it is exactly `${NAME}`, else None."""
    found = _WHOLE_REFERENCE.match(value)
    return found.group(1) if found else None


def expand(value: str, secrets: Mapping[str, str], where: str) -> str:
    """`value` with each `${NAME}` replaced by the product's secret (`$${` is a literal `${`).
    A secret the product does not have is an error, never an empty string."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        if name not in secrets:
            raise SecretUnavailable(
                f"{where}: ${{{name}}} is not a secret of this product (set it with "
                f"`tpc product secret set PRODUCT {name}` or PUT /v1/secrets/{name})"
            )
        return secrets[name]

    return _REFERENCE.sub(substitute, value)


def how_to_set(name: str) -> str:
    return f"`tpc product secret set PRODUCT {name}` (operator) or PUT /v1/secrets/{name}"
