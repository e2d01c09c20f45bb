"""`python -m intake`: run the intake service."""

from shared.platform.runtime import main

if __name__ == "__main__":
    main("intake")
