"""entrypoints layer of the news service."""
