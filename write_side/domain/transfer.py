"""Deciding a transfer between two accounts: the rules that need both sides at once.

Pure, like the aggregate: given the two rebuilt accounts it either refuses or returns the events of
each side (a `TransferSent` on the sender, a `TransferReceived` on the receiver), which the caller
appends in one store transaction. Both accounts are changed in memory as their events are decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from kernel.events import DomainEvent
from write_side.domain.account import BankAccount
from write_side.domain.errors import AccountNotFound, CurrencyMismatch, SameAccount


@dataclass(frozen=True, slots=True)
class TransferEvents:
    sent: list[DomainEvent]
    received: list[DomainEvent]


def decide_transfer(
    source: BankAccount,
    target: BankAccount,
    transfer_id: str,
    amount: Decimal,
    reference: str | None = None,
    reversal_of: str | None = None,
) -> TransferEvents:
    """Refusals in the order a client can act on them: same account, unknown, closed, currencies,
    funds. `reversal_of` names the transfer this one moves back (reversal.py)."""
    if source.account_id == target.account_id:
        raise SameAccount("a transfer needs two different accounts")
    for account in (source, target):
        if account.version == 0:
            raise AccountNotFound(f"account {account.account_id!r} does not exist")
    source.check_open()
    target.check_open()
    if source.currency != target.currency:
        raise CurrencyMismatch(
            f"account {source.account_id!r} holds {source.currency} and account "
            f"{target.account_id!r} holds {target.currency}"
        )
    sent = source.send_transfer(transfer_id, target.account_id, amount, reference, reversal_of)
    received = target.receive_transfer(
        transfer_id, source.account_id, amount, reference, reversal_of
    )
    return TransferEvents(sent, received)
