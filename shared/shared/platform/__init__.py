"""Platform code every Strategia service reuses: settings, logging, database and
migrations, the transactional outbox and its relay, the idempotent consumer (inbox),
dead-letter handling, HTTP health and authentication, and the service runtime."""
