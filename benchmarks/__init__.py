"""Speed figures of Strategia on the real broker and server (`make bench`)."""
