"""The one rule for each identifier, code and free text a client sends: account ids, currencies,
idempotency keys, owners' names and references. The write API's bodies, its paths and headers, the domain and the query API's paths all
import their rule from here, so "valid" means the same everywhere.

A rule is a full match: the whole text, nothing before or after. Python's `$` also matches before
a final "\\n" (so `^[A-Z]{3}$` lets "USD\\n" through); every pattern here ends in `(?!\\n)$`,
which refuses that newline and means the same in Python and in JSON Schema (ECMA) regexes, so
the pattern the OpenAPI document shows is exactly the one enforced. Each rule also bounds the
length in characters and in UTF-8 bytes, so nothing that reaches the store can overflow its
column (`VARCHAR(64)` for stream ids, `VARCHAR(200)` for keys).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TextRule:
    what: str
    """What the text is, for error messages: "account_id"."""
    allowed: str
    """A regex character class: the characters the text may contain."""
    min_length: int
    max_length: int
    """In characters and in UTF-8 bytes: the classes are ASCII, so the two agree."""
    description: str
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    @property
    def pattern(self) -> str:
        """For msgspec `Meta(pattern=...)` and the OpenAPI document (`re.search` semantics)."""
        return f"^{self.allowed}{{{self.min_length},{self.max_length}}}(?!\\n)$"

    def matches(self, raw: str) -> bool:
        return (
            self.min_length <= len(raw) <= self.max_length
            and len(raw.encode("utf-8", "surrogatepass")) <= self.max_length
            and self._compiled.search(raw) is not None
        )


ACCOUNT_ID = TextRule("account_id", "[A-Za-z0-9_-]", 1, 64, "1 to 64 letters, digits, '_' or '-'")
RECORDED_TRANSFER_ID = TextRule(
    "transfer_id",
    "[A-Za-z0-9_.-]",
    1,
    64,
    "a transfer id: a client's (as account_id) or one the ledger derived, such as a reversal's "
    "(with a '.')",
)
"""Any id a recorded transfer may have; clients choose theirs by ACCOUNT_ID, without '.'."""
CURRENCY = TextRule("currency", "[A-Z]", 3, 3, "three upper-case letters (ISO 4217)")
IDEMPOTENCY_KEY = TextRule(
    "Idempotency-Key", "[\\x21-\\x7e]", 1, 200, "1 to 200 visible ASCII characters"
)


@dataclass(frozen=True, slots=True)
class FreeText:
    """Text for people (a name, a reference): any characters but control ones (PostgreSQL's jsonb
    cannot even store U+0000, and no name needs a newline), at most `max_length` of them."""

    what: str
    max_length: int

    def problem(self, raw: str) -> str | None:
        """Why `raw` is refused, or None when it is fine."""
        if not 1 <= len(raw) <= self.max_length:
            return f"{self.what} must be 1 to {self.max_length} characters"
        if any(unicodedata.category(ch) == "Cc" for ch in raw):
            return f"{self.what} must not contain control characters"
        return None


OWNER = FreeText("owner", 200)
REFERENCE = FreeText("reference", 140)
