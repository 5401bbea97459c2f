"""The HTTP edge both APIs share: how an error becomes a response (and nothing else yet)."""
