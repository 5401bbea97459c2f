"""API tokens: making, hashing and checking them, what scopes grant, and the BANK_AUTH switch."""

from __future__ import annotations

import hashlib

import pytest

from auth.guards import requires
from auth.tokens import (
    ADMIN,
    READ,
    WRITE,
    UnknownScope,
    checked_scopes,
    grants,
    hash_token,
    looks_like_token,
    new_token,
    scopes_from_text,
    scopes_to_text,
)
from kernel.settings import AuthSettingError, Settings, SettingsError


def test_a_new_token_is_prefixed_and_carries_256_random_bits() -> None:
    tokens = {new_token() for _ in range(100)}

    assert len(tokens) == 100
    for token in tokens:
        assert token.startswith("bank_")
        assert len(token) == len("bank_") + 43  # token_urlsafe(32): 32 bytes in base64url
        assert looks_like_token(token)


def test_the_stored_hash_is_the_hex_sha256_of_the_token() -> None:
    token = new_token()

    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert hash_token(token) == hash_token(token)
    assert token not in hash_token(token)


@pytest.mark.parametrize(
    "candidate", ["", "bank_", "bank_short", "Bearer bank_" + "a" * 43, "other_" + "a" * 43]
)
def test_strings_that_are_not_shaped_like_tokens_are_refused_without_a_lookup(
    candidate: str,
) -> None:
    assert not looks_like_token(candidate)


def test_admin_implies_every_scope_and_the_others_only_themselves() -> None:
    assert all(grants(frozenset({ADMIN}), scope) for scope in (READ, WRITE, ADMIN))
    assert grants(frozenset({READ}), READ)
    assert not grants(frozenset({READ}), WRITE)
    assert not grants(frozenset({READ, WRITE}), ADMIN)


def test_unknown_scopes_are_rejected_also_when_a_guard_is_built() -> None:
    with pytest.raises(UnknownScope):
        checked_scopes([READ, "superuser"])
    with pytest.raises(UnknownScope):
        requires("wrtie")


def test_scopes_round_trip_through_their_stored_text_form() -> None:
    assert scopes_to_text({ADMIN, READ, WRITE}) == "write read admin"
    assert scopes_from_text(scopes_to_text({READ, WRITE})) == {READ, WRITE}


@pytest.mark.parametrize(
    ("raw", "enabled"), [(None, True), ("", True), ("on", True), ("off", False), (" OFF ", False)]
)
def test_auth_is_on_unless_bank_auth_says_off(
    monkeypatch: pytest.MonkeyPatch, raw: str | None, enabled: bool
) -> None:
    if raw is None:
        monkeypatch.delenv("BANK_AUTH", raising=False)
    else:
        monkeypatch.setenv("BANK_AUTH", raw)

    assert Settings.from_env().auth.enabled is enabled


def test_an_unclear_bank_auth_value_is_an_error_not_a_guess(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BANK_AUTH", "maybe")

    with pytest.raises(AuthSettingError, match="BANK_AUTH must be 'on' or 'off'") as raised:
        Settings.from_env()
    assert isinstance(raised.value, SettingsError)  # so the CLI prints it as one line
