"""The ASGI application uvicorn serves (`web.asgi:app`), built from the environment."""

from __future__ import annotations

from web.app import create_app

app = create_app()
