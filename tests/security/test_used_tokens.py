"""used_tokens.py: a nonce claimed through one connection to the file is refused through another."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxrelay.security import auth, used_tokens


def test_a_claim_holds_across_connections_and_expired_rows_are_purged(tmp_path: Path) -> None:
    path = tmp_path / "used.db"
    used_tokens.create(path)
    one, two = used_tokens.SharedUsedTokens(path), used_tokens.SharedUsedTokens(path)
    try:
        assert one.claim("n1", forget_after=10.0, now=0.0)
        assert not two.claim("n1", forget_after=10.0, now=1.0)
        assert two.claim("n2", forget_after=10.0, now=1.0)
        for i in range(used_tokens._PURGE_EVERY):  # the purge runs every _PURGE_EVERY claims of a connection
            one.claim(f"later-{i}", forget_after=100.0, now=20.0)
        assert two.claim("n1", forget_after=30.0, now=20.0)  # n1's token had expired: its row is gone
    finally:
        one.close()
        two.close()


def test_token_stores_of_two_workers_share_single_use(tmp_path: Path) -> None:
    path = tmp_path / "used.db"
    used_tokens.create(path)
    first, second = used_tokens.SharedUsedTokens(path), used_tokens.SharedUsedTokens(path)
    try:
        minter = auth.TokenStore(secret=b"x" * 32, used=first)
        redeemer = auth.TokenStore(secret=b"x" * 32, used=second)
        token, _ = minter.mint("key-1", now=0.0)
        assert redeemer.redeem(token, now=1.0) == "key-1"
        with pytest.raises(auth.AuthError, match="already used"):
            minter.redeem(token, now=2.0)
    finally:
        first.close()
        second.close()
