"""auth.py: key matching, tokens (TTL, single use), origins, query credentials. No sockets, no clock."""

from __future__ import annotations

import pytest

from voxrelay.security import auth


def test_auth_is_off_only_on_loopback_without_keys() -> None:
    assert not auth.auth_required("127.0.0.1", ())
    assert not auth.auth_required("::1", ())
    assert not auth.auth_required("localhost", ())
    assert auth.auth_required("127.0.0.1", ("k",))
    assert auth.auth_required("0.0.0.0", ())
    assert auth.auth_required("192.168.1.5", ())


def test_keys_match_by_id_and_ids_hide_the_key() -> None:
    keys = ("alpha-key", "beta-key")
    assert auth.match_key("beta-key", keys) == auth.key_id("beta-key")
    assert auth.match_key("beta-ke", keys) is None
    assert auth.match_key("", keys) is None
    assert "beta" not in auth.key_id("beta-key")
    assert auth.parse_list(" a, ,b ,") == ("a", "b")


def test_credentials_from_header_and_subprotocol() -> None:
    assert auth.credential_from("Bearer k1", None) == auth.Credential("key", "k1")
    assert auth.credential_from(None, "bearer, tok") == auth.Credential("token", "tok")
    assert auth.credential_from("Token k1", None) is None  # Deepgram's form is /v1/listen's only
    assert auth.credential_from(None, "bearer") is None
    assert "s3cret" not in repr(auth.credential_from(None, "bearer, s3cret"))


def test_tokens_are_single_use_and_expire() -> None:
    store = auth.TokenStore(ttl_s=60)
    token, expiry = store.mint("key-1", now=100.0)
    assert expiry == 160.0 and token.startswith("vxt_")
    assert store.redeem(token, now=120.0) == "key-1"
    with pytest.raises(auth.AuthError, match="already used"):
        store.redeem(token, now=121.0)
    late, _ = store.mint("key-1", now=100.0)
    with pytest.raises(auth.AuthError, match="expired"):
        store.redeem(late, now=161.0)
    purged, _ = store.mint("key-1", now=100.0)
    store.mint("key-2", now=200.0)  # purges the expired one
    with pytest.raises(auth.AuthError, match="expired"):
        store.redeem(purged, now=200.0)
    for forged in ("vxt_forged", "vxt_a.1.n.mac", "vxt_a.1.n.m\u00e4c", "key-1.1.n.mac"):  # bytes, not str, compared
        with pytest.raises(auth.AuthError, match="unknown"):
            store.redeem(forged, now=200.0)


def test_outstanding_tokens_are_capped() -> None:
    store = auth.TokenStore(ttl_s=10, max_outstanding=2)
    store.mint("k", 0.0)
    store.mint("k", 0.0)
    with pytest.raises(auth.AuthError) as refused:
        store.mint("k", 0.0)
    assert refused.value.status == 429
    store.mint("k", 11.0)  # the first two expired


def test_tokens_are_not_stored() -> None:
    store = auth.TokenStore()
    token, _ = store.mint("k", 0.0)
    assert token not in repr(store.__dict__) and "secret" not in repr(store)


def test_a_token_is_redeemed_by_any_store_with_the_same_secret_once_per_shared_memory() -> None:
    used = auth.UsedTokensInMemory()  # what the workers of a box share (used_tokens.SharedUsedTokens)
    minter = auth.TokenStore(ttl_s=60, secret=b"s" * 32, used=used)
    other = auth.TokenStore(ttl_s=60, secret=b"s" * 32, used=used)
    token, _ = minter.mint("key-1", now=100.0)
    assert other.redeem(token, now=101.0) == "key-1"
    with pytest.raises(auth.AuthError, match="already used"):
        minter.redeem(token, now=102.0)
    fresh, _ = minter.mint("key-1", now=100.0)
    with pytest.raises(auth.AuthError, match="unknown"):
        auth.TokenStore(secret=b"t" * 32).redeem(fresh, now=101.0)  # another secret
    with pytest.raises(auth.AuthError, match="unknown"):
        other.redeem(fresh.replace("key-1", "key-2"), now=101.0)  # the owner is signed
    with pytest.raises(auth.AuthError, match="unknown"):
        other.redeem(fresh.replace(".", ".9", 1), now=101.0)  # so is the expiry
    # Without a shared memory, single use holds per store only: the limit docs/deploy.md names.
    alone = auth.TokenStore(ttl_s=60, secret=b"s" * 32)
    assert alone.redeem(token, now=103.0) == "key-1"


def test_the_used_nonce_memory_forgets_expired_nonces_in_sweeps_and_never_a_live_one() -> None:
    used = auth.UsedTokensInMemory()
    for n in range(3000):  # tokens that expire at t=10, redeemed at t=0..2999 ms
        assert used.claim(f"old{n}", forget_after=10.0, now=n / 1000)
    assert not used.claim("old0", forget_after=10.0, now=5.0)  # still live: refused, whatever was swept
    for n in range(3000):  # after t=10 the old ones go in the next sweep; these live until t=100
        assert used.claim(f"new{n}", forget_after=100.0, now=20.0)
    assert len(used._used) < 4000  # the 3000 expired nonces were swept, not kept forever
    assert not used.claim("new0", forget_after=100.0, now=21.0)
    assert used.claim("old0", forget_after=10.0, now=21.0)  # forgotten: the token itself is refused as expired


@pytest.mark.parametrize(
    ("origin", "host", "auth_on", "allowed"),
    [
        (None, "gw:8765", True, True),  # not a browser: credentials decide
        ("app://voxrelay", "gw:8765", True, True),  # allowlisted
        ("https://gw:8765", "gw:8765", True, True),  # same origin (the served web UI)
        ("https://evil.example", "gw:8765", True, False),
        ("https://gw:8765.evil.example", "gw:8765", True, False),
        ("null", "gw:8765", True, False),
        ("file://", "gw:8765", True, False),
        ("app://voxrelay.evil", "gw:8765", True, False),
        ("http://localhost:5173", "127.0.0.1:8765", False, True),  # auth off: local dev servers
        ("http://evil.example:8765", "evil.example:8765", False, False),  # DNS rebinding
        ("http://127.0.0.1:8765", "evil.example:8765", False, False),
        ("http://localhost:5173", "gw:8765", True, False),
    ],
)
def test_origins(origin: str | None, host: str, auth_on: bool, allowed: bool) -> None:
    assert auth.origin_allowed(origin, host, ("app://voxrelay",), auth_on=auth_on) is allowed


def test_credentials_in_the_query_are_spotted() -> None:
    assert auth.token_in_query([("token", "x")])
    assert auth.token_in_query({"access_token": "x"})
    assert auth.token_in_query([("API_KEY", "x")])
    assert not auth.token_in_query([("batch", "true"), ("model", "nova-3")])
