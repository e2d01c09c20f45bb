"""`python -m web`: the web front on STRATEGIA_HTTP_HOST:STRATEGIA_HTTP_PORT (default :8000)."""

from __future__ import annotations

import logging

import uvicorn

from shared.platform.workers import serve_in_processes
from web.config import WebSettings


def main() -> None:
    settings = WebSettings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(name)s %(message)s")
    config = uvicorn.Config(
        "web.asgi:app",
        host=settings.http_host,
        port=settings.http_port,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
        log_level=settings.log_level.lower(),
    )
    if settings.http_workers > 1:
        # Each worker on a socket of its own: the kernel spreads the connections.
        serve_in_processes(config, settings.http_workers)
    else:
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
