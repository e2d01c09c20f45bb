"""Pure domain of intake: consultation windows and submission rules (no I/O)."""
