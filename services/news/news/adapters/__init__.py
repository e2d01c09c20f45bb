"""adapters layer of the news service."""
