"""`python -m notifications`: run the notifications service."""

from shared.platform.runtime import main

if __name__ == "__main__":
    main("notifications")
