"""The shared kernel: what every side agrees on (event contracts, money, identifiers, the read-model
layout, settings). It imports no side, no HTTP, SQL or Redis code."""
