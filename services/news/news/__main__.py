"""`python -m news`: run the news service."""

from __future__ import annotations

from news.bootstrap import build_app, default_settings
from shared.platform.runtime import serve


def main() -> None:
    settings = default_settings()
    serve(build_app(settings), settings)


if __name__ == "__main__":
    main()
