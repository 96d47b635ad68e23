"""How API tokens are stored: HMAC-SHA256 with the server's token key, so that the hashes in
a stolen database are of no use without the key (when the operator keeps it elsewhere, in
`TPC_TOKEN_KEY`). Without `TPC_TOKEN_KEY`, a random key is made once and kept in the store's
`token_key` table (migration 4): every server and worker on the store then shares it.

Products registered before keyed hashes hold a plain SHA-256 of their first token; those
still authenticate (`candidates` offers both forms to the lookup).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from infra.store.database import Database

KEYED_PREFIX = "hmac-sha256:"
KEY_BYTES = 32


def legacy_hash(token: str) -> str:
    """The plain SHA-256 (hex) that products registered before keyed hashes hold."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh API token: `tpc_` and 32 URL-safe characters (192 random bits)."""
    return f"tpc_{secrets.token_urlsafe(24)}"


def token_hint(token: str) -> str:
    """What may be shown of a token: its last four characters."""
    return token[-4:]


class TokenHasher:
    """Keyed hashes of normalised tokens (see `domain.api_tokens.normalise_token`)."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        # A fingerprint of the key, recorded with each hash; it reveals nothing of the key.
        self.key_id = hmac.new(key, b"tpc token key id", hashlib.sha256).hexdigest()[:16]

    def keyed(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()
        return KEYED_PREFIX + digest

    def candidates(self, token: str) -> tuple[str, str]:
        """Every stored form this token may have: keyed, then legacy."""
        return self.keyed(token), legacy_hash(token)


def load_token_key(database: Database, configured: str | None) -> bytes:
    """The operator's `TPC_TOKEN_KEY`, else the store's own key (made on first use; a
    process that loses the race to make it reads the winner's)."""
    if configured:
        return configured.encode()
    with database.write() as db:
        db.execute(
            "INSERT INTO token_key (id, key, created_at) VALUES (1, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            (secrets.token_hex(KEY_BYTES), datetime.now(UTC).isoformat()),
        )
        row = db.execute("SELECT key FROM token_key WHERE id = 1").fetchone()
    return bytes.fromhex(row[0])
