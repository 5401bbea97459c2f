"""The command bus on a real store: load → decide → append, retries, idempotency, announcements."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from kernel.events import DomainEvent
from tests.support import age_command_records
from write_side.command_bus import CommandBus
from write_side.commands import CloseAccount, Deposit, OpenAccount, Withdraw
from write_side.domain.account import BankAccount
from write_side.domain.errors import (
    AccountExists,
    CommandTimedOut,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InsufficientFunds,
    VersionConflict,
)
from write_side.repository import AccountRepository
from write_side.store.database import create_async_store_engine
from write_side.store.event_store import EventStore
from write_side.store.records import AppendResult, CommandRecord, ConcurrencyError


class RecordingPublisher:
    """A hand-written fake: remembers every announcement."""

    def __init__(self) -> None:
        self.announced: list[tuple[str, int]] = []

    async def events_committed(self, stream_id: str, last_position: int) -> None:
        self.announced.append((stream_id, last_position))

    async def close(self) -> None:
        return None


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def bus(store: EventStore, publisher: RecordingPublisher) -> CommandBus:
    return CommandBus(AccountRepository(store, snapshot_every=10), publisher, deadline_s=10)


async def test_a_command_appends_its_event_and_answers_version_position_and_balance(
    bus: CommandBus, store: EventStore
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))

    outcome = await bus.execute(Deposit("acc-1", Decimal("12.50")))

    assert (outcome.account_id, outcome.version, outcome.balance) == ("acc-1", 2, Decimal("12.50"))
    assert outcome.position == await store.head_position()
    (_, deposited) = await store.read_stream("acc-1")
    assert deposited.type == "MoneyDeposited"
    assert deposited.payload == {"amount": "12.50"}
    assert deposited.metadata["command"] == "Deposit"


async def test_opening_without_an_id_generates_one(bus: CommandBus) -> None:
    first = await bus.execute(OpenAccount("Ada"))
    second = await bus.execute(OpenAccount("Ada"))

    assert first.account_id != second.account_id
    assert len(first.account_id) == 32


async def test_the_publisher_is_told_the_last_position_after_each_commit_only(
    bus: CommandBus, publisher: RecordingPublisher
) -> None:
    opened = await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    deposited = await bus.execute(Deposit("acc-1", Decimal("5.00")))
    with pytest.raises(InsufficientFunds):
        await bus.execute(Withdraw("acc-1", Decimal("6.00")))

    assert publisher.announced == [("acc-1", opened.position), ("acc-1", deposited.position)]


async def test_an_idempotent_retry_answers_the_first_outcome_and_appends_nothing(
    bus: CommandBus, store: EventStore, publisher: RecordingPublisher
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    first = await bus.execute(Deposit("acc-1", Decimal("5.00")), idempotency_key="k-1")
    await bus.execute(Deposit("acc-1", Decimal("1.00")))  # the account moves on meanwhile
    head = await store.head_position()

    retry = await bus.execute(Deposit("acc-1", Decimal("5.00")), idempotency_key="k-1")

    assert (retry.version, retry.position, retry.balance) == (
        first.version,
        first.position,
        first.balance,
    )
    assert retry.replayed
    assert await store.head_position() == head
    assert len(publisher.announced) == 3


async def test_an_idempotency_key_reused_for_a_different_command_is_refused(
    bus: CommandBus, store: EventStore
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    await bus.execute(Deposit("acc-1", Decimal("5.00")), idempotency_key="k-1")
    head = await store.head_position()

    for different in (
        Deposit("acc-1", Decimal("6.00")),
        Withdraw("acc-1", Decimal("5.00")),
        Deposit("acc-1", Decimal("5.00"), expected_version=2),
    ):
        with pytest.raises(IdempotencyKeyReused):
            await bus.execute(different, idempotency_key="k-1")
    assert await store.head_position() == head


async def test_concurrent_retries_with_the_same_idempotency_key_append_once(
    bus: CommandBus, store: EventStore
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))

    outcomes = await asyncio.gather(
        *(bus.execute(Deposit("acc-1", Decimal("5.00")), idempotency_key="k-1") for _ in range(6))
    )

    assert {(o.version, o.position, o.balance) for o in outcomes} == {
        (2, outcomes[0].position, Decimal("5.00"))
    }
    assert await store.stream_version("acc-1") == 2


@pytest.mark.parametrize(
    "command",
    [
        Withdraw("acc-1", Decimal("10.00")),
        Withdraw("acc-1", Decimal("1.00"), expected_version=2),
        CloseAccount("acc-1"),
        OpenAccount("Ada", account_id="acc-1"),
    ],
    ids=["withdraw-everything", "with-expected-version", "close", "open"],
)
async def test_concurrent_retries_of_a_command_all_answer_its_first_outcome_not_a_refusal(
    store: EventStore, command: Withdraw | CloseAccount | OpenAccount
) -> None:
    # A client that times out and retries can race its own first attempt. The retry may load the
    # account after the first attempt committed; it must still replay, not report that the
    # (now spent) balance is insufficient, the account closed, or the version moved on.
    bus = CommandBus(AccountRepository(store, 10), RecordingPublisher(), deadline_s=10)
    if not isinstance(command, OpenAccount):
        await bus.execute(OpenAccount("Ada", account_id="acc-1"))
        if not isinstance(command, CloseAccount):
            await bus.execute(Deposit("acc-1", Decimal("10.00")))
    version = await store.stream_version("acc-1")

    results = await asyncio.gather(
        *(bus.execute(command, idempotency_key="retry-1") for _ in range(8)),
        return_exceptions=True,
    )

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert len({(r.version, r.position, r.balance) for r in results}) == 1  # type: ignore[union-attr]
    assert await store.stream_version("acc-1") == version + 1


class KeyLookupJustTooEarly(AccountRepository):
    """The retry's first look for its key runs just before the first attempt commits."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store, 10)
        self.lookups = 0

    async def find_command(self, client: str, idempotency_key: str) -> CommandRecord | None:
        self.lookups += 1
        return None if self.lookups == 1 else await super().find_command(client, idempotency_key)


@pytest.mark.parametrize(
    ("command", "balance"),
    [
        (Withdraw("acc-1", Decimal("10.00")), "10.00"),
        (Withdraw("acc-1", Decimal("1.00"), expected_version=2), "10.00"),
        (CloseAccount("acc-1"), None),
        (OpenAccount("Ada", account_id="acc-1"), None),
    ],
    ids=["withdraw-everything", "with-expected-version", "close", "open"],
)
async def test_a_retry_that_missed_its_key_replays_instead_of_being_refused(
    store: EventStore, command: Withdraw | CloseAccount | OpenAccount, balance: str | None
) -> None:
    setup = CommandBus(AccountRepository(store, 10), RecordingPublisher(), deadline_s=10)
    if not isinstance(command, OpenAccount):
        await setup.execute(OpenAccount("Ada", account_id="acc-1"))
    if balance is not None:
        await setup.execute(Deposit("acc-1", Decimal(balance)))
    first = await setup.execute(command, idempotency_key="retry-1")
    retrying = CommandBus(KeyLookupJustTooEarly(store), RecordingPublisher(), deadline_s=10)

    retry = await retrying.execute(command, idempotency_key="retry-1")

    assert (retry.version, retry.position, retry.balance) == (
        first.version,
        first.position,
        first.balance,
    )
    assert await store.stream_version("acc-1") == first.version


async def test_opening_an_existing_account_is_refused_even_when_racing(bus: CommandBus) -> None:
    results = await asyncio.gather(
        *(bus.execute(OpenAccount("Ada", account_id="acc-1")) for _ in range(5)),
        return_exceptions=True,
    )

    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, AccountExists) for r in results if isinstance(r, BaseException))


async def test_an_expected_version_that_is_not_current_is_a_version_conflict(
    bus: CommandBus, store: EventStore
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    head = await store.head_position()

    with pytest.raises(VersionConflict) as caught:
        await bus.execute(CloseAccount("acc-1", expected_version=0))

    assert (caught.value.expected_version, caught.value.current_version) == (0, 1)
    assert await store.head_position() == head
    assert (await bus.execute(CloseAccount("acc-1", expected_version=1))).version == 2


class AlwaysLosesTheRace(AccountRepository):
    """Another writer always appends first."""

    async def save(
        self,
        account: BankAccount,
        new_events: Sequence[DomainEvent],
        expected_version: int,
        metadata: dict[str, str],
        command: CommandRecord | None = None,
    ) -> AppendResult:
        raise ConcurrencyError(account.account_id, expected_version, expected_version + 1)


async def test_a_command_that_keeps_losing_the_race_times_out_at_its_deadline(
    store: EventStore, publisher: RecordingPublisher
) -> None:
    await CommandBus(AccountRepository(store, 10), publisher, 1).execute(
        OpenAccount("Ada", account_id="acc-1")
    )
    bus = CommandBus(AlwaysLosesTheRace(store, 10), publisher, deadline_s=0.05)

    with pytest.raises(CommandTimedOut):
        await bus.execute(Deposit("acc-1", Decimal("1.00")))
    assert await store.stream_version("acc-1") == 1


# --- idempotency keys per client, expiry, in flight ----------------------------------------------


async def test_the_same_key_and_body_from_two_clients_are_two_commands(
    bus: CommandBus, store: EventStore
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))

    first = await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1", client="key-1")
    second = await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1", client="key-2")
    retry = await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1", client="key-2")

    assert (first.version, second.version) == (2, 3)
    assert not second.replayed
    assert (retry.version, retry.balance, retry.replayed) == (3, Decimal("10.00"), True)
    assert await store.stream_version("acc-1") == 3


async def test_the_same_key_with_another_body_from_another_client_is_not_refused(
    bus: CommandBus, store: EventStore
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1", client="key-1")

    other = await bus.execute(Withdraw("acc-1", Decimal("2.00")), "k-1", client="key-2")

    assert (other.version, other.balance, other.replayed) == (3, Decimal("3.00"), False)
    with pytest.raises(IdempotencyKeyReused):
        await bus.execute(Withdraw("acc-1", Decimal("2.00")), "k-1", client="key-1")


async def test_an_expired_key_is_a_new_command(
    bus: CommandBus, store: EventStore, store_url: str
) -> None:
    await bus.execute(OpenAccount("Ada", account_id="acc-1"))
    await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1")
    age_command_records(store_url, timedelta(hours=25))  # past the default 24 h retention

    again = await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1")

    assert (again.version, again.replayed) == (3, False)
    assert (await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1")).replayed


class SaveHeldAtAGate(AccountRepository):
    """The first save waits at a gate: a command that is still in flight."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(store, 10)
        self.arrived = asyncio.Event()
        self.gate = asyncio.Event()

    async def save(
        self,
        account: BankAccount,
        new_events: Sequence[DomainEvent],
        expected_version: int,
        metadata: dict[str, str],
        command: CommandRecord | None = None,
    ) -> AppendResult:
        if not self.arrived.is_set():
            self.arrived.set()
            await self.gate.wait()
        return await super().save(account, new_events, expected_version, metadata, command)


async def test_a_request_whose_key_is_in_flight_waits_for_it_and_replays_its_answer(
    store: EventStore,
) -> None:
    await CommandBus(AccountRepository(store, 10), RecordingPublisher(), 10).execute(
        OpenAccount("Ada", account_id="acc-1")
    )
    repository = SaveHeldAtAGate(store)
    bus = CommandBus(repository, RecordingPublisher(), deadline_s=10)
    first = asyncio.create_task(bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1"))
    await repository.arrived.wait()

    second = asyncio.create_task(bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1"))
    repository.gate.set()

    assert ((await first).version, (await second).version) == (2, 2)
    assert (await second).replayed
    assert await store.stream_version("acc-1") == 2


async def test_a_request_whose_key_stays_in_flight_past_the_deadline_is_refused(
    store: EventStore,
) -> None:
    setup = CommandBus(AccountRepository(store, 10), RecordingPublisher(), 10)
    for account_id in ("acc-1", "acc-2"):
        await setup.execute(OpenAccount("Ada", account_id=account_id))
    repository = SaveHeldAtAGate(store)
    bus = CommandBus(repository, RecordingPublisher(), deadline_s=0.05)
    first = asyncio.create_task(bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1"))
    await repository.arrived.wait()

    with pytest.raises(IdempotencyKeyInFlight):
        await bus.execute(Deposit("acc-1", Decimal("5.00")), "k-1")
    other_client = await bus.execute(Deposit("acc-2", Decimal("5.00")), "k-1", client="key-2")

    repository.gate.set()
    assert ((await first).version, other_client.version) == (2, 2)
    assert await store.stream_version("acc-1") == 2


async def test_two_buses_on_one_database_append_a_racing_key_once(
    store: EventStore, store_url: str
) -> None:
    # Two processes' write APIs: each its own engine, batcher and in-flight map.
    other_engine = create_async_store_engine(store_url)
    try:
        buses = [
            CommandBus(AccountRepository(each, 10), RecordingPublisher(), deadline_s=10)
            for each in (store, EventStore(other_engine))
        ]
        await buses[0].execute(OpenAccount("Ada", account_id="acc-1"))

        outcomes = await asyncio.gather(
            *(
                buses[n % 2].execute(Deposit("acc-1", Decimal("5.00")), "k-1", client="key-1")
                for n in range(8)
            )
        )
    finally:
        await other_engine.dispose()

    assert {(o.version, o.position, o.balance) for o in outcomes} == {
        (2, outcomes[0].position, Decimal("5.00"))
    }
    assert await store.stream_version("acc-1") == 2


async def test_a_racing_open_without_an_id_answers_the_account_the_winner_opened(
    store: EventStore,
) -> None:
    # The retry misses the record (another process commits just after its lookup), so it draws
    # a fresh account id; the store then reports the duplicate: the answer must name the
    # account that was opened, not the id this attempt drew.
    setup = CommandBus(AccountRepository(store, 10), RecordingPublisher(), deadline_s=10)
    first = await setup.execute(OpenAccount("Ada"), "open-1")
    retrying = CommandBus(KeyLookupJustTooEarly(store), RecordingPublisher(), deadline_s=10)

    retry = await retrying.execute(OpenAccount("Ada"), "open-1")

    assert (retry.account_id, retry.version, retry.replayed) == (first.account_id, 1, True)
    assert await store.head_position() == first.position
