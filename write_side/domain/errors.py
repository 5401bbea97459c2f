"""The write side's one error hierarchy. The HTTP layer maps each class to a status and a code."""

from __future__ import annotations

from kernel.errors import ErrorCode


class LedgerError(Exception):
    """Base of every error a command can end with on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR


class InvalidCommand(LedgerError):
    code = ErrorCode.VALIDATION_ERROR


class AccountNotFound(LedgerError):
    code = ErrorCode.ACCOUNT_NOT_FOUND


class AccountExists(LedgerError):
    code = ErrorCode.ACCOUNT_EXISTS


class SameAccount(InvalidCommand):
    """A transfer from an account to itself."""

    code = ErrorCode.SAME_ACCOUNT


class TransferIdTaken(LedgerError):
    """The transfer id was already used by a transfer with another body."""

    code = ErrorCode.TRANSFER_EXISTS


class TransferNotFound(LedgerError):
    """No transfer was ever recorded with this id (reversals name the transfer they undo)."""

    code = ErrorCode.TRANSFER_NOT_FOUND


class AlreadyReversed(LedgerError):
    """The transfer was reversed before, by a request with another body."""

    code = ErrorCode.ALREADY_REVERSED


class NotReversible(LedgerError):
    """The transfer cannot be reversed: it is itself a reversal."""

    code = ErrorCode.NOT_REVERSIBLE


class TransactionError(LedgerError):
    """A business rule refused the command."""


class InsufficientFunds(TransactionError):
    code = ErrorCode.INSUFFICIENT_FUNDS


class AccountIsClosed(TransactionError):
    code = ErrorCode.ACCOUNT_CLOSED


class BalanceNotZero(TransactionError):
    code = ErrorCode.BALANCE_NOT_ZERO


class CurrencyMismatch(TransactionError):
    code = ErrorCode.CURRENCY_MISMATCH


class LimitBelowBalance(TransactionError):
    """The new overdraft limit would leave the account's debt above it."""

    code = ErrorCode.LIMIT_BELOW_BALANCE


class BatchFailed(LedgerError):
    """One command of an atomic batch was refused, so none was applied."""

    code = ErrorCode.BATCH_FAILED

    def __init__(self, failed_index: int, cause: LedgerError, size: int) -> None:
        super().__init__(
            f"command {failed_index} of the batch failed ({cause}); nothing was applied"
        )
        self.failed_index = failed_index
        self.cause = cause
        self.size = size


class VersionConflict(LedgerError):
    """The account changed since the version the client (or the handler) based its decision on."""

    code = ErrorCode.VERSION_CONFLICT

    def __init__(self, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"expected version {expected_version}, but the account is at version {current_version}"
        )
        self.expected_version = expected_version
        self.current_version = current_version


class IdempotencyKeyReused(LedgerError):
    code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class IdempotencyKeyInFlight(LedgerError):
    """A request with the same key from the same client is still running (the retry came early)."""

    code = ErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT


class CommandTimedOut(LedgerError):
    """A racing command kept losing the version race until its deadline."""

    code = ErrorCode.COMMAND_TIMED_OUT


class StoreFailure(LedgerError):
    """The event store failed, not a rule: never retried or answered from an earlier outcome."""


class StoreUnavailable(StoreFailure):
    """The event store could not be reached before the append was sent; nothing was appended."""

    code = ErrorCode.STORE_UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("the event store is unavailable; nothing was recorded, retry shortly")


class OutcomeUnknown(StoreFailure):
    """The connection was lost after the append was sent: it may or may not have committed."""

    code = ErrorCode.OUTCOME_UNKNOWN

    def __init__(self) -> None:
        super().__init__(
            "the connection to the event store was lost after the command was sent, so it may or "
            "may not have been recorded; retrying with the same Idempotency-Key is safe (it is "
            "applied at most once), without one read the account's events before retrying"
        )
