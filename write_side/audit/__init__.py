"""Audit tools over the event store: verify the hash chain, export and import the events."""
