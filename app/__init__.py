"""Shared kernel: settings, event contracts, money, CLI and logging used by both sides."""
