"""Used-token memory shared by the worker processes of one box (`voxrelay serve --workers N`).

A signed token can be checked by any worker, but "single use" needs every worker to see every
redemption: a per-process memory would let a token be replayed on a connection the kernel hands
to another worker. So the supervisor creates a small SQLite file (`create`) and each worker
claims nonces in it (`SharedUsedTokens.claim`): a primary-key insert is atomic across processes.

The claim is a synchronous write on the event loop: tens of microseconds (WAL, no fsync: the
file is scratch and dies with the supervisor), once per token handshake, not per frame. Another
worker's write holds the lock for about as long, so the wait for it is capped at `_LOCK_WAIT_S`:
past that the handshake is refused with 503 (try again) rather than the loop stalling for every
session this worker serves.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from voxrelay.security.auth import AuthError

__all__ = ["SharedUsedTokens", "create"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS used (nonce TEXT PRIMARY KEY, forget_after REAL NOT NULL)"
_PURGE_EVERY = 1000  # claims between deletions of rows past their token's expiry
_LOCK_WAIT_S = 0.05  # the longest a claim waits for another worker's write, on the event loop


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=_LOCK_WAIT_S, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    return db


def create(path: Path) -> None:
    """Make the file and its table (the supervisor, before any worker opens it)."""
    with _connect(path) as db:
        db.execute(_SCHEMA)
    db.close()


class SharedUsedTokens:
    """`auth.UsedTokens` over the SQLite file at `path` (made by `create`)."""

    def __init__(self, path: Path) -> None:
        self._db = _connect(path)
        self._claims = 0

    def claim(self, nonce: str, forget_after: float, now: float) -> bool:
        self._claims += 1
        try:
            if self._claims % _PURGE_EVERY == 0:
                self._db.execute("DELETE FROM used WHERE forget_after < ?", (now,))
            self._db.execute("INSERT INTO used (nonce, forget_after) VALUES (?, ?)", (nonce, forget_after))
        except sqlite3.IntegrityError:
            return False
        except sqlite3.Error:  # locked past the timeout, disk full: refuse rather than let a token be reused
            raise AuthError(503, "the token could not be checked; try again") from None
        return True

    def close(self) -> None:
        self._db.close()
