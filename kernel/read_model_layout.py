"""The Redis layout of the read models: the contract between the projectors (writers) and the
query API (reader). Neither side spells a key or a stored shape anywhere else.

Every key starts with the configured prefix. Each projection keeps its data under a generation
(`{prefix}:{projection}:g{n}:...`) and a pointer names the live one, so a rebuild can fill a new
generation beside it and switch with one write. Per-account keys carry the account id as a Redis
Cluster hash tag (`{account_id}`) so all of an account's keys share a slot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

BALANCES = "balances"
STATEMENTS = "statements"
PROJECTION_NAMES = (BALANCES, STATEMENTS)

StoredHash = dict[Any, str | int]
"""Fields of a hash about to be written (keys typed loosely: Redis clients accept many kinds)."""

FIRST_GENERATION = 1
"""The generation a projection starts in when no live pointer exists yet."""

# Balances are kept in a lexicographically ordered set so that "sort by balance" pages by key,
# not by rank: a fixed-width, offset decimal orders like the number (negative ones included).
_BALANCE_OFFSET = 10**18
_BALANCE_WIDTH = 20


class StatementEntry(msgspec.Struct, frozen=True):
    """One line of a statement, stored as JSON in Redis and returned as-is by the query API."""

    version: int
    event_id: str
    type: str
    amount: str
    """Signed: deposits and transfers in positive, withdrawals and transfers out negative
    ("-5.00"); open, close, a new overdraft limit and hold events "0.00". Always what the entry
    moved the balance by, so a statement adds up to its balance."""
    balance_after: str
    recorded_at: str
    reference: str | None = None
    """The client's reference of a deposit, withdrawal or transfer; null when none was given."""
    transfer_id: str | None = None
    """On the two sides of a transfer only."""
    counterparty: str | None = None
    """On a transfer: the other account (the receiver on the sending side, and back)."""
    reversal_of: str | None = None
    """On the two sides of a reversal: the transfer it moves back."""
    hold_amount: str | None = None
    """On hold entries (whose `transfer_id` is the hold id): the amount held (HoldPlaced) or
    released without moving (HoldCaptured: the uncaptured rest; HoldVoided, HoldExpired: all)."""


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """The balances projection's hash per account (`GenerationKeys.account`)."""

    owner: str
    currency: str
    balance: int
    """Cents."""
    status: str
    """"open" or "closed"."""
    version: int
    position: int
    updated_at: str
    overdraft_limit: int = 0
    """Cents: the balance may go down to minus this (0, the default: no overdraft)."""
    held: int = 0
    """Cents reserved by the account's pending outgoing holds."""

    @property
    def available(self) -> int:
        """Cents the account can still pay out: balance plus overdraft limit minus held."""
        return self.balance + self.overdraft_limit - self.held

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> AccountBalance | None:
        if not fields:
            return None
        return cls(
            owner=fields["owner"],
            currency=fields["currency"],
            balance=int(fields["balance"]),
            status=fields["status"],
            version=int(fields["version"]),
            position=int(fields["position"]),
            updated_at=fields["updated_at"],
            overdraft_limit=int(fields.get("overdraft_limit", 0)),
            held=int(fields.get("held", 0)),
        )

    def to_hash(self) -> StoredHash:
        return {
            "owner": self.owner,
            "currency": self.currency,
            "balance": self.balance,
            "status": self.status,
            "version": self.version,
            "position": self.position,
            "updated_at": self.updated_at,
            "overdraft_limit": self.overdraft_limit,
            "held": self.held,
        }


TRANSFER_POSTED = "posted"
TRANSFER_REVERSED = "reversed"


@dataclass(frozen=True, slots=True)
class StoredTransfer:
    """The balances projection's hash per transfer (`GenerationKeys.transfer`), written in the
    batch that applies the transfer's two sides."""

    from_account: str
    to_account: str
    amount: int
    """Cents."""
    currency: str
    reference: str | None
    """Not stored when None."""
    status: str
    """"posted", or "reversed" once its reversal is applied."""
    position: int
    """The global position of the transfer's last event: read after it to see both sides."""
    recorded_at: str
    reversal_of: str | None = None
    """On a reversal: the transfer it moves back. Not stored when None."""
    reversed_by: str | None = None
    """On a reversed transfer: its reversal. Not stored when None (`reversed_fields`)."""

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> StoredTransfer | None:
        if not fields:
            return None
        return cls(
            from_account=fields["from_account"],
            to_account=fields["to_account"],
            amount=int(fields["amount"]),
            currency=fields["currency"],
            reference=fields.get("reference"),
            status=fields["status"],
            position=int(fields["position"]),
            recorded_at=fields["recorded_at"],
            reversal_of=fields.get("reversal_of"),
            reversed_by=fields.get("reversed_by"),
        )

    def to_hash(self) -> StoredHash:
        stored: StoredHash = {
            "from_account": self.from_account,
            "to_account": self.to_account,
            "amount": self.amount,
            "currency": self.currency,
            "status": self.status,
            "position": self.position,
            "recorded_at": self.recorded_at,
        }
        for name, value in (
            ("reference", self.reference),
            ("reversal_of", self.reversal_of),
            ("reversed_by", self.reversed_by),
        ):
            if value is not None:
                stored[name] = value
        return stored

    @staticmethod
    def reversed_fields(reversed_by: str) -> StoredHash:
        """The fields a reversal changes on the hash of the transfer it reverses (HSET over the
        stored hash: the rest of what was recorded stays)."""
        return {"status": TRANSFER_REVERSED, "reversed_by": reversed_by}


HOLD_PENDING = "pending"


@dataclass(frozen=True, slots=True)
class StoredHold:
    """The balances projection's hash per hold (`GenerationKeys.hold`): written whole when the hold
    is placed; its resolution rewrites `status`, `captured_amount` and `position` only."""

    from_account: str
    to_account: str
    amount: int
    """Cents held when it was placed."""
    captured_amount: int
    """Cents moved by its capture (0 unless captured)."""
    currency: str
    status: str
    """"pending", then "captured", "voided" or "expired"."""
    expires_at: str
    """ISO 8601, UTC."""
    position: int
    """The global position of the hold's last event (placement or resolution)."""
    reference: str | None = None
    """Not stored when None."""

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> StoredHold | None:
        if not fields:
            return None
        return cls(
            from_account=fields["from_account"],
            to_account=fields["to_account"],
            amount=int(fields["amount"]),
            captured_amount=int(fields["captured_amount"]),
            currency=fields["currency"],
            status=fields["status"],
            expires_at=fields["expires_at"],
            position=int(fields["position"]),
            reference=fields.get("reference"),
        )

    def to_hash(self) -> StoredHash:
        stored: StoredHash = {
            "from_account": self.from_account,
            "to_account": self.to_account,
            "amount": self.amount,
            "captured_amount": self.captured_amount,
            "currency": self.currency,
            "status": self.status,
            "expires_at": self.expires_at,
            "position": self.position,
        }
        if self.reference is not None:
            stored["reference"] = self.reference
        return stored


def hold_resolution_fields(status: str, captured_amount: int, position: int) -> StoredHash:
    """The fields of a `StoredHold` its resolution rewrites."""
    return {"status": status, "captured_amount": captured_amount, "position": position}


@dataclass(frozen=True, slots=True)
class Running:
    """The statements projection's own running balance per account (`GenerationKeys.running`)."""

    balance: int
    """Cents."""
    version: int

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> Running | None:
        return cls(int(fields["balance"]), int(fields["version"])) if fields else None

    def to_hash(self) -> StoredHash:
        return {"balance": self.balance, "version": self.version}


SUMMARY_ACCOUNTS = "accounts"
SUMMARY_OPEN_ACCOUNTS = "open_accounts"
SUMMARY_EVENTS = "events"
_SUMMARY_BALANCE = "balance:"


def summary_balance_field(currency: str) -> str:
    """The summary field holding the total balance of `currency`, in cents."""
    return f"{_SUMMARY_BALANCE}{currency}"


@dataclass(frozen=True, slots=True)
class StoredSummary:
    """The balances projection's summary hash (`GenerationKeys.summary`): counters only, each
    changed by HINCRBY in the batch that changes it."""

    accounts: int = 0
    open_accounts: int = 0
    events: int = 0
    balances: dict[str, int] = field(default_factory=dict)
    """Cents per currency."""

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> StoredSummary:
        return cls(
            accounts=int(fields.get(SUMMARY_ACCOUNTS, 0)),
            open_accounts=int(fields.get(SUMMARY_OPEN_ACCOUNTS, 0)),
            events=int(fields.get(SUMMARY_EVENTS, 0)),
            balances={
                name.removeprefix(_SUMMARY_BALANCE): int(value)
                for name, value in sorted(fields.items())
                if name.startswith(_SUMMARY_BALANCE)
            },
        )


META_POSITION = "position"
"""The checkpoint: the global position of the last event the generation applied."""
META_ADVANCED_AT = "advanced_at"
META_EVENTS = "events"


@dataclass(frozen=True, slots=True)
class GenerationMeta:
    """The meta hash of a generation (`GenerationKeys.meta`), written with every batch."""

    position: int = 0
    advanced_at: str | None = None
    """ISO 8601; None before the first batch."""
    events: int = 0

    @classmethod
    def from_hash(cls, fields: Mapping[str, str]) -> GenerationMeta:
        return cls(
            position=int(fields.get(META_POSITION, 0)),
            advanced_at=fields.get(META_ADVANCED_AT),
            events=int(fields.get(META_EVENTS, 0)),
        )


def balance_sort_member(balance_cents: int, account_id: str) -> str:
    return f"{balance_cents + _BALANCE_OFFSET:0{_BALANCE_WIDTH}d}:{account_id}"


def account_of_sort_member(member: str) -> str:
    return member.split(":", 1)[1]


@dataclass(frozen=True, slots=True)
class GenerationKeys:
    """The keys of one generation of one projection."""

    base: str

    @property
    def meta(self) -> str:
        """Hash: `GenerationMeta` (the checkpoint `position`, `advanced_at`, `events`)."""
        return f"{self.base}:meta"

    def account(self, account_id: str) -> str:
        """Hash: `AccountBalance` (owner, currency, balance in cents, status, version, ...)."""
        return f"{self.base}:account:{{{account_id}}}"

    def transfer(self, transfer_id: str) -> str:
        """Hash: `StoredTransfer` (from and to account, amount in cents, currency, status, ...)."""
        return f"{self.base}:transfer:{{{transfer_id}}}"

    def hold(self, hold_id: str) -> str:
        """Hash: `StoredHold` (from and to account, amounts in cents, status, expires_at, ...)."""
        return f"{self.base}:hold:{{{hold_id}}}"

    def holds_of(self, account_id: str) -> str:
        """Sorted set: the ids of every hold the account takes part in (either side), scored by
        the position of its placement on this account."""
        return f"{self.base}:holds:{{{account_id}}}"

    def pending_holds_of(self, account_id: str) -> str:
        """Sorted set: the subset of `holds_of` still pending, with the same scores."""
        return f"{self.base}:pending_holds:{{{account_id}}}"

    @property
    def holds_due(self) -> str:
        """Sorted set: the ids of the pending holds, scored by `expires_at` in Unix seconds; the
        worker's expiry loop takes the due ones from the live generation."""
        return f"{self.base}:holds_due"

    @property
    def by_balance(self) -> str:
        """Sorted set, all scores 0, members `balance_sort_member(...)`: ordered by balance."""
        return f"{self.base}:by_balance"

    @property
    def by_id(self) -> str:
        """Sorted set, all scores 0, members account ids: ordered by id."""
        return f"{self.base}:by_id"

    @property
    def summary(self) -> str:
        """Hash: `StoredSummary` (accounts, open_accounts, events, `balance:{currency}` cents)."""
        return f"{self.base}:summary"

    @property
    def changes(self) -> str:
        """Stream: the change feed (`kernel/change_feed.py`), written in each batch's MULTI/EXEC."""
        return f"{self.base}:changes"

    def statement(self, account_id: str) -> str:
        """Sorted set: score = stream version, member = the JSON statement entry."""
        return f"{self.base}:statement:{{{account_id}}}"

    def running(self, account_id: str) -> str:
        """Hash: `Running`, the statement projection's own running balance and version."""
        return f"{self.base}:running:{{{account_id}}}"

    def history(self, account_id: str) -> str:
        """Sorted set: score = `history_score`, member = `history_member(state after the event)`:
        the account's state after each of its events, for balances as of an instant."""
        return f"{self.base}:history:{{{account_id}}}"

    def statement_times(self, account_id: str) -> str:
        """Sorted set: score = `history_score`, member = `statement_times_member(version)`: the
        statement's time index, turning a time range into a version range."""
        return f"{self.base}:statement_times:{{{account_id}}}"


def checkpoint_message(projection: str, position: int) -> str:
    """What `ReadModelKeys.checkpoints` carries: a projection's live checkpoint after a batch."""
    return f"{projection} {position}"


def parse_checkpoint_message(message: str) -> tuple[str, int] | None:
    projection, _, position = message.partition(" ")
    return (projection, int(position)) if position.isdigit() else None


@dataclass(frozen=True, slots=True)
class ReadModelKeys:
    prefix: str

    @property
    def head(self) -> str:
        """String: the highest store position anyone announced (only ever raised)."""
        return f"{self.prefix}:store:head"

    @property
    def nudge_pending(self) -> str:
        """Flag: events were announced that no catch-up has looked for yet (SET NX, with expiry)."""
        return f"{self.prefix}:projectors:pending"

    @property
    def nudge_wake(self) -> str:
        """List: one token per raised pending flag, pushed with it; a lingering catch-up waits on
        it with BLPOP, so an announcement wakes it at once (emptied with the flag)."""
        return f"{self.prefix}:projectors:wake"

    @property
    def checkpoints(self) -> str:
        """Pub/sub channel: each batch applied to a live generation publishes
        `checkpoint_message(projection, position)` in its MULTI/EXEC; waiting reads wake on it."""
        return f"{self.prefix}:projectors:checkpoints"

    @property
    def catch_up_running(self) -> str:
        """Marker: a catch-up job is running and will look at the pending flag before it ends."""
        return f"{self.prefix}:projectors:running"

    @property
    def worker_metrics(self) -> str:
        """Hash: the projection workers' counters and histogram buckets (`projectors/metrics.py`),
        exported by the query API's `/metrics`."""
        return f"{self.prefix}:metrics:worker"

    def live(self, projection: str) -> str:
        """String: the live generation of `projection`."""
        return f"{self.prefix}:proj:{projection}:live"

    def lock(self, projection: str) -> str:
        """Lock: held by the one runner catching `projection` up."""
        return f"{self.prefix}:proj:{projection}:lock"

    def rebuild_lock(self, projection: str) -> str:
        """Lock: held by the one rebuild or dry run of `projection`."""
        return f"{self.prefix}:proj:{projection}:rebuild"

    def handover(self, projection: str) -> str:
        """Marker: a rebuild waits for the runner lock; live runners yield it between batches."""
        return f"{self.prefix}:proj:{projection}:handover"

    def generation_counter(self, projection: str) -> str:
        """String: the highest generation number ever handed out (INCR; never reused)."""
        return f"{self.prefix}:proj:{projection}:generations"

    def disposable(self, projection: str) -> str:
        """Set: generations that are not live and are to be deleted (scratch, or replaced)."""
        return f"{self.prefix}:proj:{projection}:disposable"

    def around_generation(
        self, projection: str, key_of: Callable[[GenerationKeys], str]
    ) -> tuple[str, str]:
        """The text before and after the generation number in `key_of(generation(projection, n))`,
        for scripts that resolve `n` inside Redis."""
        keys = self.generation(projection, 0)
        before = keys.base.removesuffix("0")
        return before, key_of(keys).removeprefix(keys.base)

    def generation(self, projection: str, generation: int) -> GenerationKeys:
        return GenerationKeys(f"{self.prefix}:{projection}:g{generation}")

    def generation_pattern(self, projection: str, generation: int) -> str:
        """SCAN pattern matching every key of one generation of `projection`."""
        return f"{self.generation(projection, generation).base}:*"

    def generations_pattern(self, projection: str) -> str:
        """SCAN pattern matching every key of every generation of `projection`."""
        return f"{self.prefix}:{projection}:g*"

    def generation_of_key(self, key: str) -> int | None:
        """The generation number in a key matched by `generations_pattern`, if it has one."""
        parts = key.split(":", 3)
        if len(parts) < 3 or not parts[2].startswith("g") or not parts[2][1:].isdigit():
            return None
        return int(parts[2][1:])


# --- history: an account's states over time (balances as of an instant, statements by time) ---

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_POSITION_WIDTH = 20
_VERSION_WIDTH = 20


def epoch_micros(instant: datetime) -> int:
    """An aware instant as integer microseconds since the epoch: the score of the history sets
    (exact in a Redis score, a double, until the year 2255)."""
    return (instant - _EPOCH) // _MICROSECOND


def instant_of(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def history_score(recorded_at: datetime, previous_score: int | None) -> int:
    """An event's place in time within its account: when it was recorded, but never earlier than
    the account's event before it. Recorded times follow the store's order unless the clock
    stepped back; clamped, an account's scores never decrease with its version, so "as of T" is
    always a prefix of its history (every event up to the first one recorded after T)."""
    score = epoch_micros(recorded_at)
    return score if previous_score is None else max(score, previous_score)


class HistoryState(msgspec.Struct, frozen=True, array_like=True):
    """The part of `AccountBalance` that changes with events, as stored in a history member. A
    field added to `AccountBalance` that events change belongs here too (last, with a default for
    the members written before it), in `history_member` and in `state_from_history`."""

    balance: int
    overdraft_limit: int
    version: int
    status: str
    held: int = 0
    """Cents held by pending outgoing holds then (members written before holds: none)."""


_history_state = msgspec.json.Decoder(HistoryState)


def history_member(state: AccountBalance) -> str:
    """The account's state after an event: its fixed-width position first (so members with one
    score order by position), then `HistoryState` as JSON. Identical when a batch is replayed."""
    stored = HistoryState(
        state.balance, state.overdraft_limit, state.version, state.status, state.held
    )
    return f"{state.position:0{_POSITION_WIDTH}d}:{msgspec.json.encode(stored).decode()}"


def state_from_history(now: AccountBalance, member: str, score: int) -> AccountBalance:
    """The account as a history member recorded it; owner and currency are today's (`now`)."""
    position, _, encoded = member.partition(":")
    stored = _history_state.decode(encoded)
    return replace(
        now,
        balance=stored.balance,
        overdraft_limit=stored.overdraft_limit,
        version=stored.version,
        status=stored.status,
        held=stored.held,
        position=int(position),
        updated_at=instant_of(score).isoformat(),
    )


def statement_times_member(version: int) -> str:
    """Fixed width, so members with one score order by version."""
    return f"{version:0{_VERSION_WIDTH}d}"
