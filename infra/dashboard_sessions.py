"""Dashboard sessions, kept on the server: the browser's cookie holds a random session id,
never an API token, and the store keeps only that id's SHA-256 (a stolen database cannot sign
anyone in). A session names its product and the token it was opened with; it ends when the
user signs out, when it expires, or when that token is revoked (a lookup only finds sessions
whose token is still live in `v_tokens`).

Sessions are not events: they are short-lived access state, not facts about the product.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from infra.store.database import Database

# A week, as the cookie's max-age.
SESSION_MAX_AGE_S = 7 * 24 * 3600


def _id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class DashboardSessions:
    """The `dashboard_sessions` table (migration 4)."""

    def __init__(self, database: Database, max_age_s: int = SESSION_MAX_AGE_S) -> None:
        self._database = database
        self.max_age_s = max_age_s

    def open(self, product_id: str, token_id: str) -> str:
        """A new session; returns its id (for the cookie). Expired sessions are swept."""
        session_id = secrets.token_urlsafe(32)
        now = int(time.time())
        with self._database.write() as db:
            db.execute("DELETE FROM dashboard_sessions WHERE expires_at <= ?", (now,))
            db.execute(
                "INSERT INTO dashboard_sessions"
                " (id_hash, product_id, token_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (_id_hash(session_id), product_id, token_id, now, now + self.max_age_s),
            )
        return session_id

    def product(self, session_id: str) -> str | None:
        """The session's product while it is live and its token is not revoked."""
        if not session_id:
            return None
        row = self._database.read_one(
            "SELECT s.product_id FROM dashboard_sessions s"
            " JOIN v_tokens t ON t.id = s.token_id AND t.product_id = s.product_id"
            " WHERE s.id_hash = ? AND s.expires_at > ? AND t.revoked_at IS NULL",
            (_id_hash(session_id), int(time.time())),
        )
        return None if row is None else str(row[0])

    def end(self, session_id: str) -> None:
        with self._database.write() as db:
            db.execute("DELETE FROM dashboard_sessions WHERE id_hash = ?", (_id_hash(session_id),))

    def end_for_token(self, token_id: str) -> int:
        """End every session opened with this token; returns how many."""
        with self._database.write() as db:
            cursor = db.execute("DELETE FROM dashboard_sessions WHERE token_id = ?", (token_id,))
            count = getattr(cursor, "rowcount", 0)
        return int(count or 0)
