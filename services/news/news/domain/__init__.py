"""domain layer of the news service."""
