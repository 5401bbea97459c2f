"""Reversing a transfer: a new transfer moving the same amount back, naming the one it reverses.

History is never rewritten: the original stays as it was recorded, and the reversal is a transfer
of its own (`reversal_of` on both its events), decided by the same rules as any transfer, so the
receiver of the original must still have the money and both accounts must still be open.

A transfer is reversed at most once because its reversal's id is derived from its own
(`reversal_id`): the store claims a transfer id once in the whole ledger, so a second reversal
finds the id taken. The derived id holds a '.', which no client-chosen id may contain
(`kernel/identifiers.py: ACCOUNT_ID`), so no ordinary transfer can take it first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from decimal import Decimal

from kernel.identifiers import ACCOUNT_ID
from write_side.domain.account import BankAccount
from write_side.domain.errors import NotReversible
from write_side.domain.transfer import TransferEvents, decide_transfer

REVERSAL_SUFFIX = ".reversal"
MAX_TRANSFER_ID = ACCOUNT_ID.max_length
"""The longest transfer id the store holds (the claim's column, like stream ids: 64)."""


def reversal_id(transfer_id: str) -> str:
    """`t-1` → `t-1.reversal`. An id too long for that gets a digest instead
    (`<32 hex>.long.reversal`): its two dots keep it apart from every readable one."""
    readable = f"{transfer_id}{REVERSAL_SUFFIX}"
    if len(readable) <= MAX_TRANSFER_ID:
        return readable
    digest = hashlib.sha256(transfer_id.encode()).hexdigest()[:32]
    return f"{digest}.long{REVERSAL_SUFFIX}"


@dataclass(frozen=True, slots=True)
class RecordedTransfer:
    """A transfer as the store recorded it: the facts a reversal needs."""

    transfer_id: str
    from_account: str
    to_account: str
    amount: Decimal
    reversal_of: str | None = None


def decide_reversal(
    original: RecordedTransfer,
    receiver: BankAccount,
    sender: BankAccount,
    reference: str | None = None,
) -> TransferEvents:
    """The reversal's events: `original.amount` from its receiver back to its sender."""
    if original.reversal_of is not None:
        raise NotReversible(
            f"transfer {original.transfer_id!r} reverses {original.reversal_of!r}; a reversal "
            "cannot be reversed"
        )
    return decide_transfer(
        receiver,
        sender,
        reversal_id(original.transfer_id),
        original.amount,
        reference,
        reversal_of=original.transfer_id,
    )
