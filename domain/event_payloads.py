"""Typed event payloads: an event's fields hold models, its stored state holds their plain JSON.

An event class lists its typed fields in `payload` (name -> `PayloadField`). The store writes
each as `dump(value)` (plain JSON, no `_type_` tags, so that decoding stays on its fast road)
and reads it back with `load(json)`, after any upcast of an older class version. Everything else
in the state is stored as it is, as for any event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from pydantic import TypeAdapter


@dataclass(frozen=True, slots=True)
class PayloadField:
    """How one typed field of an event is read from and written to its stored JSON."""

    load: Callable[[Any], Any]
    dump: Callable[[Any], Any]


def modelled(kind: Any) -> PayloadField:
    """A field validated into `kind` (a pydantic model, or a type made of them) and dumped
    as its JSON."""
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    return PayloadField(adapter.validate_python, partial(adapter.dump_python, mode="json"))


def typed_payload(**fields: PayloadField) -> Mapping[str, PayloadField]:
    """An event class's `payload`: its typed fields, by name."""
    return MappingProxyType(fields)


def payload_of(cls: type) -> Mapping[str, PayloadField] | None:
    """The typed fields of an event class, or None when it has none."""
    fields: Mapping[str, PayloadField] | None = getattr(cls, "payload", None)
    return fields


def load_payload(fields: Mapping[str, PayloadField], state: dict[str, Any]) -> None:
    """Turn a decoded (and upcast) state's typed fields into their models, in place."""
    for name, field in fields.items():
        state[name] = field.load(state[name])


def dump_payload(fields: Mapping[str, PayloadField], state: dict[str, Any]) -> None:
    """Turn an event state's typed fields into their plain JSON, in place."""
    for name, field in fields.items():
        state[name] = field.dump(state[name])
