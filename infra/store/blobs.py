"""Content-addressed, compressed storage for large payloads (transcripts).

Events carry only the `sha256:…` reference, which keeps them small (docs/architecture.md: a multi-MB
save can stall PostgreSQL). A blob is written before the event that references it; a blob whose
event never got saved is harmless garbage, never a dangling reference. The `blobs` table is
created by the schema migrations (`infra/store/migrations.py`).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator

from infra.store.database import Database

# Blobs read per query by `get_many`: a round trip for many, without holding every compressed
# transcript of a large iteration at once.
BLOBS_PER_QUERY = 50


def content_ref(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    def put(self, data: bytes) -> str:
        ref = content_ref(data)
        self._database.write_one(
            "INSERT INTO blobs (ref, data) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING",
            (ref, zlib.compress(data, 6)),
        )
        return ref

    def get(self, ref: str) -> bytes:
        row = self._database.read_one("SELECT data FROM blobs WHERE ref = ?", (ref,))
        if row is None:
            raise KeyError(ref)
        return zlib.decompress(row[0])

    def get_many(self, refs: Iterable[str]) -> Iterator[tuple[str, bytes]]:
        """Each distinct ref with its data, `BLOBS_PER_QUERY` to a query, in no set order;
        KeyError for a ref not stored."""
        wanted = list(dict.fromkeys(refs))
        for start in range(0, len(wanted), BLOBS_PER_QUERY):
            chunk = wanted[start : start + BLOBS_PER_QUERY]
            marks = ", ".join("?" for _ in chunk)
            rows = self._database.read(f"SELECT ref, data FROM blobs WHERE ref IN ({marks})", chunk)
            if len(rows) < len(chunk):
                found = {row[0] for row in rows}
                raise KeyError(next(ref for ref in chunk if ref not in found))
            for ref, data in rows:
                yield ref, zlib.decompress(data)
