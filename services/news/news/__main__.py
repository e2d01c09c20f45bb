"""`python -m news`: run the news service."""

from shared.platform.runtime import main

if __name__ == "__main__":
    main("news")
