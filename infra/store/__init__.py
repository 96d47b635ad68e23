"""Storage: the event store, transcript blobs, and the SQLite connections they share."""
