"""Use cases of intake: the transactions that change state and stage events."""
