"""Event contracts shared by the Strategia services: the envelope, topic names and payloads."""
