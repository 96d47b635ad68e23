"""The `product_secrets` table: each product's named secret values (`domain.secrets`).

Not events: the log is immutable and shown to the product, while a secret must be rotatable and
erasable for good. A value is replaced in place (`set`) or deleted (`remove`); nothing else keeps
a copy. The table is created by the schema migrations (`infra/store/migrations.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from infra.store.database import Database


class SecretStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def set(self, product_id: str, name: str, value: str) -> dict[str, Any]:
        """Create or replace; returns the secret's name and time (never its value)."""
        updated_at = datetime.now(UTC).isoformat()
        with self._database.write() as db:
            db.execute(
                "INSERT INTO product_secrets (product_id, name, value, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (product_id, name)"
                " DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (product_id, name, value, updated_at),
            )
        return {"name": name, "updated_at": updated_at}

    def names(self, product_id: str) -> list[dict[str, Any]]:
        rows = self._database.read(
            "SELECT name, updated_at FROM product_secrets WHERE product_id = ? ORDER BY name",
            (product_id,),
        )
        return [{"name": row[0], "updated_at": row[1]} for row in rows]

    def values(self, product_id: str) -> dict[str, str]:
        rows = self._database.read(
            "SELECT name, value FROM product_secrets WHERE product_id = ?", (product_id,)
        )
        return {row[0]: row[1] for row in rows}

    def remove(self, product_id: str, name: str) -> bool:
        """Delete the secret; False when the product had none of that name."""
        with self._database.write() as db:
            found = db.execute(
                "SELECT 1 FROM product_secrets WHERE product_id = ? AND name = ?",
                (product_id, name),
            ).fetchone()
            db.execute(
                "DELETE FROM product_secrets WHERE product_id = ? AND name = ?",
                (product_id, name),
            )
        return found is not None
