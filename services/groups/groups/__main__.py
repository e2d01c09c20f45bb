"""`python -m groups`: run the groups service."""

from shared.platform.runtime import main

if __name__ == "__main__":
    main("groups")
