"""Sealing personal fields: what the store holds, what readers see, and what forgetting leaves."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from kernel.events import AccountOpened, PersonalDataErased, event_from_json
from kernel.master_key import InvalidMasterKey, MasterKey, new_master_key_text
from kernel.personal_data import (
    ERASED,
    CannotUnseal,
    Sealed,
    new_data_key,
    reveal_payload,
    seal,
    seal_payload,
    shown,
    unseal,
)
from kernel.settings import SettingsError, settings_from
from write_side.domain.account import BankAccount

NAME = "Grace Hopper"


def test_a_sealed_owner_opens_only_with_its_key_for_its_own_account() -> None:
    key = new_data_key()
    sealed = seal(key, "acc-1", "owner", NAME)

    assert NAME not in sealed.enc
    assert unseal(key, "acc-1", "owner", sealed) == NAME
    with pytest.raises(CannotUnseal):
        unseal(new_data_key(), "acc-1", "owner", sealed)
    with pytest.raises(CannotUnseal):
        unseal(key, "acc-2", "owner", sealed)  # copied onto another account: refused


def test_a_sealed_payload_is_plain_json_that_reads_back_as_the_event() -> None:
    payload = seal_payload("AccountOpened", {"owner": NAME, "currency": "USD"}, "a", new_data_key())

    stored = msgspec.json.encode(payload)

    assert NAME.encode() not in stored
    assert set(msgspec.json.decode(stored)["owner"]) == {"enc"}
    event = event_from_json("AccountOpened", stored)
    assert isinstance(event, AccountOpened)
    assert isinstance(event.owner, Sealed)
    assert shown(event.owner) == ERASED  # never revealed here: never shown


def test_revealing_gives_the_name_until_the_key_is_gone_or_the_account_forgotten() -> None:
    key = new_data_key()
    stored = seal_payload("AccountOpened", {"owner": NAME, "currency": "USD"}, "a", key)

    assert reveal_payload("AccountOpened", stored, "a", key, erased=False)["owner"] == NAME
    assert reveal_payload("AccountOpened", stored, "a", None, erased=False)["owner"] == ERASED
    clear = {"owner": NAME, "currency": "USD"}  # written before encryption was switched on
    assert reveal_payload("AccountOpened", clear, "a", None, erased=False)["owner"] == NAME
    assert reveal_payload("AccountOpened", clear, "a", None, erased=True)["owner"] == ERASED
    deposit = {"amount": "1.00"}
    assert reveal_payload("MoneyDeposited", deposit, "a", None, erased=True) is deposit


def test_the_master_key_wraps_account_keys_bound_to_their_account() -> None:
    master = MasterKey(new_master_key_text())
    data_key = new_data_key()

    wrapped = master.wrap("acc-1", data_key)

    assert master.unwrap("acc-1", wrapped) == data_key
    with pytest.raises(InvalidMasterKey):
        master.unwrap("acc-2", wrapped)
    with pytest.raises(InvalidMasterKey):
        MasterKey(new_master_key_text()).unwrap("acc-1", wrapped)


@pytest.mark.parametrize("bad", ["short", "aGVsbG8=", "not base64 at all!"])
def test_a_master_key_that_is_not_32_base64_bytes_is_refused_at_startup(bad: str) -> None:
    with pytest.raises(SettingsError, match="BANK_MASTER_KEY must be base64 of 32"):
        settings_from({"BANK_MASTER_KEY": bad})


def test_a_good_master_key_is_read_into_its_own_settings_group() -> None:
    text = new_master_key_text()
    assert settings_from({"BANK_MASTER_KEY": text}).personal_data.master_key == text
    assert settings_from({}).personal_data.master_key is None


def _sealed_account() -> BankAccount:
    account = BankAccount("acc-1")
    account.apply(AccountOpened(owner=seal(new_data_key(), "acc-1", "owner", NAME), currency="USD"))
    account.deposit(Decimal("10.00"))
    return account


def test_an_erased_account_reads_erased_and_still_moves_money() -> None:
    account = _sealed_account()

    assert account.erase_personal_data() == [PersonalDataErased()]

    assert account.owner == ERASED
    assert account.balance == Decimal("10.00")
    account.deposit(Decimal("5.00"))
    account.withdraw(Decimal("15.00"))
    assert account.close()
    assert account.erase_personal_data() == []  # a second erasure records nothing


def test_a_snapshot_holds_the_sealed_owner_never_the_name() -> None:
    account = _sealed_account()

    state = account.snapshot_state()

    assert NAME not in msgspec.json.encode(state).decode()
    assert BankAccount.from_snapshot("acc-1", account.version, state) == account
    account.erase_personal_data()
    erased = BankAccount.from_snapshot("acc-1", account.version, account.snapshot_state())
    assert (erased.owner, erased.personal_data_erased) == (ERASED, True)
