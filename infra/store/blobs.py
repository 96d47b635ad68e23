"""Content-addressed, compressed storage for large payloads (transcripts).

Events carry only the `sha256:…` reference, which keeps them small (DESIGN: a multi-MB save
can stall PostgreSQL). A blob is written before the event that references it; a blob whose
event never got saved is harmless garbage, never a dangling reference.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import zlib
from pathlib import Path

from infra.store.sqlite import connect


def content_ref(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = threading.local()
        self._connection().execute(
            "CREATE TABLE IF NOT EXISTS blobs (ref TEXT PRIMARY KEY, data BLOB NOT NULL)"
        )

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = connect(self._path)
        return connection

    def put(self, data: bytes) -> str:
        ref = content_ref(data)
        self._connection().execute(
            "INSERT OR IGNORE INTO blobs (ref, data) VALUES (?, ?)", (ref, zlib.compress(data, 6))
        )
        return ref

    def get(self, ref: str) -> bytes:
        row = self._connection().execute("SELECT data FROM blobs WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            raise KeyError(ref)
        return zlib.decompress(row[0])
