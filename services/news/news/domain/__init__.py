"""Pure domain of news: articles, Atom feeds, alerts, IMGW warnings, CAP 1.2 (no I/O)."""
