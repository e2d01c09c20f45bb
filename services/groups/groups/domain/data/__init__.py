"""Data bundled with the groups domain (stop words, the labelled submissions)."""
