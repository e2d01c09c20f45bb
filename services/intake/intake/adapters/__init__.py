"""asyncpg repositories of intake."""
