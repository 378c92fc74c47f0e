"""Stateless rotating nonces: every replica agrees, other servers' and old nonces don't pass."""

from __future__ import annotations

import re

import pytest

from mcp_auth_kit.rfc9449_dpop_nonces import DPoPNonces

SECRET = b"a secret shared by the replicas!"
NQCHAR = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 9449 §8.1


def nonces(now: float, secret: bytes = SECRET, context: str = "https://as.example.com/token") -> DPoPNonces:
    return DPoPNonces(secret, context=context, now=lambda: now)


def test_a_nonce_is_nqchars_and_unguessable_in_length() -> None:
    nonce = nonces(1_000_000).current()
    assert NQCHAR.fullmatch(nonce)
    assert len(nonce.partition(".")[2]) >= 22  # 128 bits of MAC


def test_a_nonce_from_one_replica_is_valid_at_another() -> None:
    assert nonces(1_000_000).is_valid(nonces(1_000_000.5).current())


def test_nonces_rotate_and_expire() -> None:
    first = nonces(1_000_000).current()
    assert nonces(1_000_030).current() != first
    assert nonces(1_000_030).is_valid(first)  # the window after
    assert nonces(999_970).is_valid(first)  # a replica whose clock is a window behind
    assert not nonces(1_000_060).is_valid(first)
    assert not nonces(1_000_090).is_valid(first)


def test_a_nonce_of_another_server_or_secret_is_refused() -> None:
    nonce = nonces(1_000_000).current()
    assert not nonces(1_000_000, context="https://rs.example.com/mcp").is_valid(nonce)
    assert not nonces(1_000_000, secret=b"another secret of enough length").is_valid(nonce)


@pytest.mark.parametrize("forged", ["", ".", "33333.", "33333.AAAA", "x.y", "٣٣٣٣٣.abc", "9" * 40 + ".a"])
def test_forged_nonces_are_refused(forged: str) -> None:
    assert not nonces(1_000_000).is_valid(forged)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        DPoPNonces(b"short", context="x")
