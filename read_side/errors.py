"""The query side's own errors. read_side/api/errors.py maps each one to an HTTP response."""

from __future__ import annotations


class QueryError(Exception):
    """A request the read models cannot answer as asked."""


class AccountNotFound(QueryError):
    def __init__(self, account_id: str) -> None:
        super().__init__(f"no account {account_id!r} in the read model")
        self.account_id = account_id


class TransferNotFound(QueryError):
    def __init__(self, transfer_id: str) -> None:
        super().__init__(f"no transfer {transfer_id!r} in the read model")
        self.transfer_id = transfer_id


class HoldNotFound(QueryError):
    def __init__(self, hold_id: str) -> None:
        super().__init__(f"no hold {hold_id!r} in the read model")
        self.hold_id = hold_id


class InvalidCursor(QueryError):
    """A cursor that this API did not hand out, or one for another sort order."""


class ProjectionBehind(QueryError):
    """The projection has not reached the position the client asked to read after."""

    def __init__(
        self, projection: str, checkpoint: int, wanted: int, retry_after_s: int = 1
    ) -> None:
        super().__init__(
            f"the {projection} projection is at position {checkpoint}, "
            f"not yet at {wanted}; retry shortly"
        )
        self.retry_after_s = retry_after_s


class InvalidInstant(QueryError):
    """A timestamp that is not RFC 3339 with a time zone, or a time range that ends before it
    starts."""
