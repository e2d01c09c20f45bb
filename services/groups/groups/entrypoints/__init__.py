"""entrypoints layer of the groups service."""
