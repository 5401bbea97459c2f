"""The Redis layout of the API-key mirror: the contract between its writer and the query API.

One hash `{prefix}:auth:keys`: field = token hash (64 hex digits), value = JSON list of scopes,
plus the field `_built_at` that marks the mirror as built. A mirror without that marker (Redis
restarted, key deleted) means "not known yet", not "no keys": the query API answers 503 until the
worker's sweep rebuilds it, instead of wrongly refusing every key.
"""

from __future__ import annotations

import json

from auth.tokens import scopes_to_text

BUILT_MARKER = "_built_at"


def mirror_key(prefix: str) -> str:
    return f"{prefix}:auth:keys"


def encode_scopes(scopes: frozenset[str]) -> str:
    return json.dumps(scopes_to_text(scopes).split())


def decode_scopes(raw: bytes | str) -> frozenset[str]:
    return frozenset(str(scope) for scope in json.loads(raw))
