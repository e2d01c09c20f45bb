"""adapters layer of the groups service."""
