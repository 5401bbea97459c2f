"""The two Lua scripts that touch the store's head marker in Redis.

The head key tells the query API how far the store has got without it opening SQL. Many writers
announce positions concurrently and out of order, so the value may only ever be raised: a plain
SET would let a slow announcement move it backwards.
"""

from __future__ import annotations

RAISE_HEAD = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
"""
"""KEYS: head. ARGV: position."""

RAISE_HEAD_AND_FLAG = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1])
end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('RPUSH', KEYS[4], '1')
  redis.call('EXPIRE', KEYS[4], ARGV[2])
  if redis.call('EXISTS', KEYS[3]) == 0 then
    return 1
  end
end
return 0
"""
"""KEYS: head, pending flag, running marker, wake list. ARGV: position, flag expiry in seconds.
Returns 1 when this call raised the pending flag and no catch-up is running, i.e. when the caller
must enqueue a job. Raising the flag also pushes a wake token: a lingering catch-up blocked on the
list sees the flag at once, and a running one sees it before it ends and goes round once more."""
