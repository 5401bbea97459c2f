"""What the query API answers: msgspec Structs, every money value a string ("12.50")."""

from __future__ import annotations

import msgspec

from kernel.read_model_layout import StatementEntry


class Balance(msgspec.Struct, frozen=True, omit_defaults=True):
    account_id: str
    owner: str
    currency: str
    balance: str
    status: str
    """"open" or "closed"."""
    version: int
    """The account's stream version the balance includes."""
    position: int
    """The global store position of the last event the balance includes."""
    overdraft_limit: str
    """How far below zero the balance may go ("0.00": no overdraft)."""
    available: str
    """What the account can still pay out: balance plus overdraft limit minus held."""
    held: str
    """Reserved by the account's pending outgoing holds (the balance does not include them)."""
    as_of: str | None = None
    """Only in an answer `as_of` an instant: that instant, in UTC to the microsecond; the values
    above are as they stood then (owner and currency are today's)."""


class Statement(msgspec.Struct, frozen=True):
    account_id: str
    entries: list[StatementEntry]
    """Newest first."""
    next_before_version: int | None
    """Pass as `before_version` for the next (older) page; null on the last page."""


class AccountRow(msgspec.Struct, frozen=True):
    account_id: str
    owner: str
    currency: str
    balance: str
    status: str
    overdraft_limit: str
    available: str
    held: str


class Transfer(msgspec.Struct, frozen=True):
    transfer_id: str
    from_account: str
    to_account: str
    amount: str
    currency: str
    reference: str | None
    status: str
    """"posted" (both sides applied), or "reversed" once its reversal is applied."""
    position: int
    """The global store position of the transfer's last event (a `min_position` for reads)."""
    recorded_at: str
    reversal_of: str | None
    """On a reversal: the transfer it moves back; null otherwise."""
    reversed_by: str | None
    """On a reversed transfer: its reversal (a transfer of its own); null otherwise."""


class Hold(msgspec.Struct, frozen=True):
    hold_id: str
    from_account: str
    to_account: str
    amount: str
    """What the hold reserved when it was placed."""
    captured_amount: str
    """What its capture moved ("0.00" unless captured)."""
    currency: str
    reference: str | None
    status: str
    """"pending", "captured", "voided" or "expired"."""
    expires_at: str
    """ISO 8601, UTC."""
    position: int
    """The global store position of the hold's last event (a `min_position` for reads)."""


class HoldsPage(msgspec.Struct, frozen=True):
    account_id: str
    holds: list[Hold]
    """Newest first: holds the account takes part in, on either side."""
    next_before_position: int | None
    """Pass as `before_position` for the next (older) page; null on the last page."""


class AccountsPage(msgspec.Struct, frozen=True):
    accounts: list[AccountRow]
    next_cursor: str | None
    """Opaque; pass as `cursor` with the same `sort` and `order` for the next page."""


class Summary(msgspec.Struct, frozen=True):
    accounts: int
    """Accounts ever opened."""
    open_accounts: int
    balances_by_currency: dict[str, str]
    """Sum of all balances per currency, e.g. {"USD": "12.50"}."""
    events_projected: int
    """Events the balances projection has applied."""


class ProjectionStatus(msgspec.Struct, frozen=True):
    name: str
    generation: int
    checkpoint: int
    """Global position of the last event applied."""
    head: int
    """Highest store position announced to Redis (by commits or by the projectors)."""
    lag: int
    """head - checkpoint, never negative."""
    last_advanced_at: str | None
    """When the checkpoint last moved (ISO 8601), null before the first batch."""
