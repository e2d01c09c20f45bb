"""domain layer of the groups service."""
