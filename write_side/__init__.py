"""The write side: commands in, events appended to the event store. Never reads Redis to decide."""
