"""API keys as bearer tokens, shared by the write API and the query API.

Integration surface (each module is small and imports nothing heavy at import time):

- `auth.middleware.BearerAuth`: the Litestar plugin (middleware, OpenAPI scheme, errors).
- `auth.guards.requires`: the guard factory for route handlers and routers.
- `auth.sql_resolver.SqlKeyResolver` (write API: SQL plus a 5 s cache, emptied on revoke).
- `auth.revocations`: revokes announced over Redis pub/sub to the write APIs' caches.
- `auth.redis_resolver.RedisKeyResolver` (query API: the Redis mirror, never SQL).
- `auth.mirror.mirror_api_keys`: rebuilds the Redis mirror from SQL (worker sweep).
- `auth.local_key.ensure_local_key`: the key `bank up` prints.
- `app.apikey_cli.apikey`: the `bank apikey` click group.
"""
